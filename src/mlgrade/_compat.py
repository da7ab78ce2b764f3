"""What mlgrade needs from Python 3.11 and later, on Python 3.10 too.

Import from here instead of the standard library: ``tomllib`` (the ``tomli`` backport on
3.10) and ``StrEnum`` (on 3.10, a ``str`` enum whose ``str()`` and format are its value, as
3.11's is). Other 3.11-only features (``typing.Self``, ``datetime.UTC``, ``ExceptionGroup``)
are simply not used in mlgrade.
"""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum

    import tomllib
else:  # pragma: no cover - exercised by the Python 3.10 install tests
    import tomli as tomllib

    class StrEnum(str, Enum):
        """``enum.StrEnum`` of Python 3.11: members are strings and print as their value."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str(self.value).__format__(spec)

        @staticmethod
        def _generate_next_value_(name: str, start: int, count: int, last_values: list[str]) -> str:
            return name.lower()


__all__ = ["Enum", "StrEnum", "tomllib"]
