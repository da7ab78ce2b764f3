"""``--format json``: the stable document described by ``docs/result-schema.json``."""

from __future__ import annotations

import json

from mlgrade.results import GradeResult


def render(result: GradeResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
