"""The red-team target assignment holds hidden graders: they are run by mlgrade, not collected."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgrade.sandbox.tree import remove_tree

collect_ignore = ["assignments"]


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A TMPDIR of the test's own, traversable by the kernel's slot uid (as /tmp is)."""
    path = Path(tempfile.mkdtemp(prefix="private-tmp-"))
    os.chmod(path, 0o711)
    yield path
    remove_tree(path)
