"""What a comparator is: it recognises a pair of differing files and explains how they differ.

Comparators run only on pairs whose sha256 differ; they receive both files' bytes and the kinds the
manifest detected. They return data (:class:`~verify.compare.model.FileComparison`), never print, and
raise nothing for malformed input: a file a comparator cannot parse is explained by the next one down
the registry (the byte comparator always recognises), with the reason in the details. A comparator that
can say why it could not read the files returns :class:`Declined` with that reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Final

from verify.compare.model import FileComparison

MAX_DETAIL_LINES: Final = 80


@dataclass(frozen=True, slots=True)
class FilePair:
    """Two versions of one path, with the bytes of each."""

    path: str
    kind_a: str
    kind_b: str
    data_a: bytes
    data_b: bytes

    @property
    def name(self) -> str:
        """The last component of the path."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Declined:
    """A comparator recognised the kinds but could not read the bytes, and says why (one line)."""

    reason: str


class Comparator(ABC):
    """One file format's comparator."""

    name: ClassVar[str]

    @abstractmethod
    def recognizes(self, pair: FilePair) -> bool:
        """True when this comparator understands both files of ``pair``."""

    @abstractmethod
    def compare(self, pair: FilePair) -> FileComparison | Declined | None:
        """Explain how the two files differ; :class:`Declined` or None when they turn out not to be of this format."""


def capped(lines: list[str], limit: int = MAX_DETAIL_LINES) -> tuple[tuple[str, ...], bool]:
    """At most ``limit`` lines, and whether any were cut."""
    if len(lines) <= limit:
        return tuple(lines), False
    return (*lines[:limit], f"... {len(lines) - limit} more line(s)"), True
