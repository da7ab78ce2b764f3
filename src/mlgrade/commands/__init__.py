"""The CLI's command modules. Each owns a typer sub-app (``app``) that ``mlgrade.cli`` adds to
the root; shared helpers live in :mod:`mlgrade.commands._common`. Keep grading logic out."""
