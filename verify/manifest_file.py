"""The manifest's JSON form (``cpython-verify/manifest/v1``): one frozen, strict pydantic model per object.

:func:`verify.manifest.read_manifest` validates the first line (or the document's top level) with
:class:`ManifestHeader` and every entry with :class:`EntryDocument`, then keeps each entry as the slotted
:class:`verify.manifest.ManifestEntry` value (a tenth of a model's memory: a manifest can hold millions of
entries). :func:`verify.manifest.write_manifest` writes every line through the same models
(:meth:`EntryDocument.of`), and ``verify/schemas/manifest-v1.json`` is generated from :class:`ManifestDocument`.

Paths and link targets are plain strings checked by Python rules, not pydantic string constraints: a file
name that is not UTF-8 is written as lone surrogate escapes (``"\\udcff"``), which pydantic's constraints
refuse. A module of its own, beside :mod:`verify.manifest`, so that holding a manifest does not import
pydantic.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import Field, model_validator

from verify.common.strict import OMITTED, Omittable, StrictModel, rule, table_error
from verify.manifest import (
    FILE_KINDS,
    KINDS,
    PYC,
    SYMLINK,
    ManifestEntry,
    PycFields,
    check_relative_path,
)
from verify.source.names import SHA256_PATTERN

_MODE: Final = re.compile(r"[0-7]{4}")
_SHA256: Final = re.compile(SHA256_PATTERN.removeprefix("^").removesuffix("$"))
_KIND_NAMES: Final = tuple(sorted(KINDS))
_INTERNED: Final = {kind: kind for kind in KINDS}
"""Each kind as one string object: a million entries share thirteen strings instead of holding one each."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _path_problem(text: str) -> str | None:
    problem = check_relative_path(text)
    return None if problem is None else f"{problem}: {_short(text)}"


def _kind_problem(text: str) -> str | None:
    return None if text in KINDS else f"is not a manifest kind: {_short(text)}"


def _mode_problem(text: str) -> str | None:
    return None if _MODE.fullmatch(text) else f"must be four octal digits (0644), not {_short(text)}"


def _sha256_problem(text: str) -> str | None:
    return None if _SHA256.fullmatch(text) else f"must be 64 lower-case hex digits, not {_short(text)}"


def _target_problem(text: str) -> str | None:
    return None if text and "\x00" not in text else f"must be a non-empty link target without NUL, not {_short(text)}"


NonNegative = Annotated[int, Field(ge=0)]


class PycHeader(StrictModel):
    """A ``.pyc`` entry's PEP 552 header (:class:`verify.manifest.PycFields`)."""

    magic: int
    python_version: str
    invalidation: Literal["timestamp", "checked-hash", "unchecked-hash"]
    mtime: NonNegative | None = None
    """A timestamp ``.pyc``'s source mtime (left out otherwise)."""
    source_size: NonNegative | None = None
    source_hash: Annotated[str, Field(pattern=r"^[0-9a-f]*$")] | None = None
    """Hex of the 8-byte SipHash of the source (hash-based ``.pyc`` only)."""

    def fields(self) -> PycFields:
        """The header as the manifest value holds it."""
        return PycFields(
            self.magic, self.python_version, self.invalidation, self.mtime, self.source_size, self.source_hash
        )


class EntryDocument(StrictModel):
    """One path of the install tree, as one line of the manifest."""

    path: Annotated[str, rule(_path_problem)]
    """Relative, POSIX, normalised: no ``.``/``..`` or empty components, no leading or trailing ``/``."""
    kind: Annotated[str, rule(_kind_problem), Field(json_schema_extra={"enum": list(_KIND_NAMES)})]
    """Detected from the bytes (``elf-executable``, ``pyc``, ``text``...), never from the name alone."""
    mode: Annotated[str, rule(_mode_problem), Field(json_schema_extra={"pattern": "^[0-7]{4}$"})]
    """Permission bits, setuid/setgid/sticky included, as four octal digits."""
    size: Omittable[NonNegative] = OMITTED
    """A regular file's bytes (only a regular file has one)."""
    sha256: Omittable[Annotated[str, rule(_sha256_problem), Field(json_schema_extra={"pattern": SHA256_PATTERN})]] = (
        OMITTED
    )
    """A regular file's sha256 (only a regular file has one)."""
    target: Omittable[Annotated[str, rule(_target_problem), Field(json_schema_extra={"minLength": 1})]] = OMITTED
    """A symlink's target, exactly as stored (only a symlink has one)."""
    pyc: Omittable[PycHeader] = OMITTED
    """A ``.pyc`` file's header (only a ``pyc`` has one, and only when it is readable)."""

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> EntryDocument:
        if self.kind in FILE_KINDS:
            if self.sha256 is None or self.size is None:
                raise table_error(f"a {self.kind} file needs 'sha256' and 'size'")
        elif self.sha256 is not None or self.size is not None:
            raise table_error(f"a {self.kind} has no 'sha256' or 'size'")
        if self.kind == SYMLINK and self.target is None:
            raise table_error("a symlink needs a 'target'")
        if self.kind != SYMLINK and self.target is not None:
            raise table_error(f"a {self.kind} has no 'target'")
        if self.kind != PYC and self.pyc is not None:
            raise table_error(f"a {self.kind} has no 'pyc' header")
        return self

    @classmethod
    def of(cls, entry: ManifestEntry) -> EntryDocument:
        """The line of a manifest value's entry (built without validation: the value is the tool's own)."""
        pyc = entry.pyc
        return cls.model_construct(
            path=entry.path,
            kind=entry.kind,
            mode=f"{entry.mode:04o}",
            size=entry.size if entry.sha256 is not None else None,
            sha256=entry.sha256,
            target=entry.target,
            pyc=None
            if pyc is None
            else PycHeader.model_construct(
                magic=pyc.magic,
                python_version=pyc.python_version,
                invalidation=pyc.invalidation,
                mtime=pyc.mtime,
                source_size=pyc.source_size,
                source_hash=pyc.source_hash,
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The line's object (keys left out rather than null)."""
        return self.model_dump(exclude_none=True)

    def entry(self) -> ManifestEntry:
        """The entry as the manifest value holds it."""
        return ManifestEntry(
            self.path,
            _INTERNED[self.kind],
            int(self.mode, 8),
            self.size or 0,
            self.sha256,
            self.target,
            None if self.pyc is None else self.pyc.fields(),
        )


class ManifestHeader(StrictModel):
    """The manifest's first line: its format and the inputs that produced the tree."""

    format: Literal["cpython-verify/manifest/v1"]
    inputs: dict[str, Any]
    """Source digest, recipe, environment, runner, settings, variations: whatever the producer knew (a rebuild
    writes its record's ``inputs`` here)."""


class ManifestDocument(ManifestHeader):
    """A whole manifest: the header's keys and one entry per path, sorted by path."""

    entries: tuple[EntryDocument, ...] = Field(strict=False)
