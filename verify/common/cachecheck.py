"""``cache check``'s model: what a full check of every kind of cache entry found and removed.

Each cache checks its own entries (:meth:`verify.source.locations.cache.Cache.check_all`,
:meth:`verify.environments.fetch.DebCache.check_all`, :meth:`verify.environments.rootfs.EnvironmentCache.check_all`,
:meth:`verify.rebuild.cache.RebuildCache.check_all`) the way it checks one before use, and reports into a
:class:`KindCheck`; this module only holds the results and judges them. An entry that fails its check is
removed (unless the cache is read-only); a staging area no live process holds is removed as housekeeping.

``cache check --json`` (``cpython-verify/cache-check/v1``) is written through :class:`CacheCheckDocument`, a
frozen, strict pydantic model, and ``verify/schemas/cache-check-v1.json`` is generated from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import Field

from verify.common.strict import Count, StrictModel

CACHE_CHECK_FORMAT: Final = "cpython-verify/cache-check/v1"


class PathAndReason(StrictModel):
    """A path of the cache, and why it is listed."""

    path: str
    why: str

    @classmethod
    def all_of(cls, pairs: Sequence[tuple[str, str]]) -> tuple[PathAndReason, ...]:
        """Each ``(path, why)`` pair as a document."""
        return tuple(cls.model_construct(path=path, why=why) for path, why in pairs)


class KindDocument(StrictModel):
    """One kind of cache entry in one directory, as checked (:class:`KindCheck`)."""

    kind: str
    """``downloads``, ``debs``, ``rootfs``, ``rebuilds``, ..."""
    location: str
    checked: Count
    """Entries checked (hashed, or compared with their manifest) and found intact or damaged."""
    damaged: tuple[PathAndReason, ...] = Field(strict=False)
    """Every entry that failed its check."""
    removed: tuple[PathAndReason, ...] = Field(strict=False)
    """Everything removed: damaged entries, and staging areas no live process holds."""
    in_use: tuple[str, ...] = Field(strict=False)
    """Entries another process was building or checking at the time: left alone, not judged."""
    kept: tuple[PathAndReason, ...] = Field(strict=False)
    """Files that are not entries and were left alone (a rootfs kept for inspection, files of an earlier
    version)."""


class CacheCheckDocument(StrictModel):
    """``cache check --json``: whether every entry was intact, and what each kind's check found and removed."""

    format: Literal["cpython-verify/cache-check/v1"]
    ok: bool
    """True when no entry failed its check (housekeeping removals do not count)."""
    checked: Count
    """Entries checked, over every kind."""
    kinds: tuple[KindDocument, ...] = Field(strict=False)


@dataclass
class KindCheck:
    """One kind of cache entry (``downloads``, ``debs``, ``rootfs``, ``rebuilds``, ...) in one directory."""

    kind: str
    location: str
    checked: int = 0
    """Entries checked (hashed, or compared with their manifest) and found intact or damaged."""
    damaged: list[tuple[str, str]] = field(default_factory=list)
    """(path, why) for every entry that failed its check."""
    removed: list[tuple[str, str]] = field(default_factory=list)
    """(path, why) for everything removed: damaged entries, and staging areas no live process holds."""
    in_use: list[str] = field(default_factory=list)
    """Entries another process was building or checking at the time: left alone, not judged."""
    kept: list[tuple[str, str]] = field(default_factory=list)
    """(path, why) for files that are not entries and were left alone (a rootfs kept for inspection, files of
    an earlier version)."""

    def remove(self, path: object, why: str) -> None:
        """Record that ``path`` was removed because ``why``."""
        self.removed.append((str(path), why))

    def damage(self, path: object, why: str, *, removed: bool) -> None:
        """Record a damaged entry (and its removal, when it could be removed)."""
        self.damaged.append((str(path), why if removed else f"{why} (not removed: the cache is read-only)"))
        if removed:
            self.removed.append((str(path), why))


@dataclass(frozen=True)
class CacheCheck:
    """Every kind checked, in order."""

    kinds: tuple[KindCheck, ...]

    @property
    def ok(self) -> bool:
        """True when no entry failed its check (housekeeping removals do not count)."""
        return not any(kind.damaged for kind in self.kinds)

    @property
    def checked(self) -> int:
        """Entries checked, over every kind."""
        return sum(kind.checked for kind in self.kinds)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form (:class:`CacheCheckDocument`), built from the check's values without validating
        them again: a report is written after the work is done."""
        return CacheCheckDocument.model_construct(
            format=CACHE_CHECK_FORMAT,
            ok=self.ok,
            checked=self.checked,
            kinds=tuple(
                KindDocument.model_construct(
                    kind=kind.kind,
                    location=kind.location,
                    checked=kind.checked,
                    damaged=PathAndReason.all_of(kind.damaged),
                    removed=PathAndReason.all_of(kind.removed),
                    in_use=tuple(kind.in_use),
                    kept=PathAndReason.all_of(kind.kept),
                )
                for kind in self.kinds
            ),
        ).to_json()

    def text(self) -> list[str]:
        """The lines ``cache check`` prints."""
        lines = []
        for kind in self.kinds:
            damaged = f", {len(kind.damaged)} damaged" if kind.damaged else ""
            busy = f", {len(kind.in_use)} in use (not checked)" if kind.in_use else ""
            lines.append(f"{kind.kind}: {kind.checked} checked{damaged}{busy} ({kind.location})")
            lines += [f"  damaged: {path}: {why}" for path, why in kind.damaged]
            lines += [f"  removed: {path}: {why}" for path, why in kind.removed]
            lines += [f"  left alone: {path}: {why}" for path, why in kind.kept]
        removed = sum(len(kind.removed) for kind in self.kinds)
        verdict = "CACHE OK" if self.ok else "CACHE DAMAGED"
        lines.append(f"{verdict}: {self.checked} entries checked, {removed} removed")
        return lines
