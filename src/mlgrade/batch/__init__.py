"""Batch grading for study-group leads: a folder of submissions into a SQLite gradebook.

The flow, one module per stage::

    submissions (discover, zip) -> workers (local processes or Dask) -> gradebook (SQLite)
                                                                      -> report / export / feedback

Nothing here imports rich or typer: progress reaches the CLI through a callback.
"""
