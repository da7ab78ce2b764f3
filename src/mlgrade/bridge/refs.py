"""Handles on objects kept in the learner's kernel: plain values both bridge halves share.

The codec decodes ``{"t": "ref"}`` into a :class:`Ref`; the client sends :class:`Target`s.
They live here, below both, so the codec does not import the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ref:
    """A handle on an object kept alive in the kernel (``keep=True``), e.g. a fitted model."""

    id: str
    type: str

    def attr(self, path: str) -> Target:
        return Target(ref=self.id, path=path)


@dataclass(frozen=True)
class Target:
    """What a request names: a dotted path in the notebook, or one under a kept object."""

    ref: str | None = None
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "path": self.path} if self.ref else {"path": self.path}

    def label(self) -> str:
        return self.path or "the object"
