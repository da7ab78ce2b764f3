"""The progress displays of `mlgrade grade` (no kernel)."""

from __future__ import annotations

import io

from rich.console import Console

from mlgrade.batch.runner import Graded, Tally
from mlgrade.commands.batch import RichProgress


def test_rich_progress_shows_count_and_live_pass_error_counts() -> None:
    buf = io.StringIO()
    progress = RichProgress(Console(file=buf, force_terminal=True, width=160, color_system=None))
    progress.started(3)
    tally = Tally(total=3, done=2, full_marks=1, errored=1)
    progress.recorded(Graded("ann", "ann.ipynb", "graded", 15, 15, 1.0, None, None), tally)
    progress.stop()
    text = buf.getvalue()
    assert "2/3" in text and "1 full marks" in text and "1 errored" in text and "ETA" in text
