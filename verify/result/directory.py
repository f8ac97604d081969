"""The rebuild result directory: the only code that knows its file names.

::

    <result>/rebuild.json          RebuildRecord (cpython-verify/rebuild/v2)
    <result>/manifest.json         the install tree as data, with the record's inputs
    <result>/source-verdict.json   the source stage's verdict
    <result>/root/                 the install tree (DESTDIR)
    <result>/logs/                 the capped build logs
    <result>/pgo-profile.tar       the profile a PGO build trained (if it trained one)
    <result>/compare.html          ``--twice``: compare's HTML report of baseline vs varied build (absent
                                   for a single build, and in results written before it was published)
    <result>/check.json            ``check``'s outcome
    <result>/attestation.*.json    a signed attestation of this result

Reads and writes of ``rebuild.json`` go through :class:`verify.result.record.RebuildRecord`; a missing,
truncated, oversized or foreign record is a :class:`ResultDirError` (exit 2) with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from pydantic import ValidationError

from verify.common.errors import OperationalError
from verify.common.fsutil import write_atomic, write_json_atomic
from verify.common.jsonutil import JsonTooLarge, read_json_document, validation_summary
from verify.manifest import Manifest, read_manifest
from verify.result.record import OLDER_FORMATS, REBUILD_FORMAT, RebuildRecord
from verify.source.models import SourceVerdict
from verify.source.report import verdict_from_json, verdict_to_dict

MAX_RECORD_BYTES: Final = 16 << 20
"""``rebuild.json`` and ``source-verdict.json`` are kilobytes (a --twice record with every file
differing is still well under a megabyte); anything this large is not one."""


class ResultDirError(OperationalError):
    """A directory is not a readable rebuild result: missing, truncated or foreign files."""


def read_json_object(path: Path, what: str, *, max_bytes: int = MAX_RECORD_BYTES) -> tuple[dict[str, Any], bytes]:
    """Read a JSON object of at most ``max_bytes`` and at most ``JSON_MAX_DEPTH`` levels (a regular file
    only: a FIFO or device is refused); return it with the exact bytes read."""
    try:
        value, data = read_json_document(path, max_bytes)
    except FileNotFoundError:
        raise ResultDirError(f"{what} not found: {path}") from None
    except OSError as error:
        raise ResultDirError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except JsonTooLarge:
        raise ResultDirError(f"{what} {path} is larger than {max_bytes >> 20} MiB") from None
    except ValueError as error:
        raise ResultDirError(f"{what} {path} is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(value, dict):
        raise ResultDirError(f"{what} {path} is not a JSON object")
    return value, data


def read_rebuild_record(path: Path) -> tuple[RebuildRecord, bytes]:
    """Parse a ``rebuild.json`` (wherever it is) into the model; return it with the exact bytes read.

    An older format is named in the error (so the user knows to rebuild), anything else foreign is
    called foreign, and a record that breaks the model names the first offending field.
    """
    data, raw = read_json_object(path, "rebuild record")
    found = data.get("format")
    if found != REBUILD_FORMAT:
        if isinstance(found, str) and found in OLDER_FORMATS:
            raise ResultDirError(
                f"{path} is in the older format {found}; this cpython-verify reads {REBUILD_FORMAT}: rebuild it "
                "with this version"
            )
        shown = found if isinstance(found, str) else type(found).__name__
        raise ResultDirError(f"{path} is not a cpython-verify rebuild record (format {shown!r})")
    try:
        return RebuildRecord.model_validate_json(raw), raw
    except ValidationError as error:
        raise ResultDirError(f"{path}: malformed rebuild record: {validation_summary(error)}") from None


def read_source_verdict(path: Path) -> tuple[SourceVerdict, bytes]:
    """Parse a ``source-verdict.json`` (wherever it is); return it with the exact bytes read.

    The one reader of the file: the cache's check of an entry and ``attest`` both read it here."""
    _data, raw = read_json_object(path, "source verdict")  # size, depth and "an object" first, as for the record
    try:
        return verdict_from_json(raw), raw
    except ValueError as error:
        raise ResultDirError(f"{path}: malformed source verdict: {error}") from None


@dataclass(frozen=True, slots=True)
class ResultDir:
    """A rebuild result directory on disk (which may not be complete yet while it is being written)."""

    path: Path

    RECORD: ClassVar[str] = "rebuild.json"
    MANIFEST: ClassVar[str] = "manifest.json"
    SOURCE_VERDICT: ClassVar[str] = "source-verdict.json"
    ROOT: ClassVar[str] = "root"
    LOGS: ClassVar[str] = "logs"
    PGO_PROFILE: ClassVar[str] = "pgo-profile.tar"
    COMPARE_HTML: ClassVar[str] = "compare.html"
    CHECK: ClassVar[str] = "check.json"
    OFFLINE_ATTESTATION: ClassVar[str] = "attestation.intoto.json"
    SIGSTORE_ATTESTATION: ClassVar[str] = "attestation.sigstore.json"
    PUBLISHED: ClassVar[tuple[str, ...]] = (ROOT, LOGS, MANIFEST, SOURCE_VERDICT, PGO_PROFILE)
    """What a rebuild's result consists of (besides the record), in the order it is copied."""

    @classmethod
    def open(cls, path: Path) -> ResultDir:
        """An existing result directory; :class:`ResultDirError` unless it holds a ``rebuild.json``."""
        if not path.is_dir():
            raise ResultDirError(f"{path} is not a rebuild result directory (not a directory)")
        result = cls(path)
        if not result.record_path.is_file():
            raise ResultDirError(f"rebuild record not found: {result.record_path} ({path} is not a rebuild result)")
        return result

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        """True when ``path`` is a result directory, readable or not, finished or not: it holds a
        ``rebuild.json``, or a ``manifest.json`` beside a ``root/`` (a run stopped before the record)."""
        return (path / cls.RECORD).is_file() or ((path / cls.MANIFEST).is_file() and (path / cls.ROOT).is_dir())

    @property
    def record_path(self) -> Path:
        """``rebuild.json``."""
        return self.path / self.RECORD

    @property
    def manifest_path(self) -> Path:
        """``manifest.json``: the install tree as data."""
        return self.path / self.MANIFEST

    @property
    def source_verdict_path(self) -> Path:
        """``source-verdict.json``: the source stage's verdict."""
        return self.path / self.SOURCE_VERDICT

    @property
    def root(self) -> Path:
        """The install tree (``DESTDIR``)."""
        return self.path / self.ROOT

    @property
    def logs(self) -> Path:
        """The capped build logs."""
        return self.path / self.LOGS

    @property
    def pgo_profile_path(self) -> Path:
        """The profile a PGO build trained, when it trained one."""
        return self.path / self.PGO_PROFILE

    @property
    def compare_html_path(self) -> Path:
        """``compare.html``: the ``--twice`` comparison as a self-contained page (optional)."""
        return self.path / self.COMPARE_HTML

    @property
    def check_path(self) -> Path:
        """``check.json``."""
        return self.path / self.CHECK

    def attestation_path(self, *, sigstore: bool) -> Path:
        """Where an attestation of this result is written by default."""
        return self.path / (self.SIGSTORE_ATTESTATION if sigstore else self.OFFLINE_ATTESTATION)

    def read_record(self) -> RebuildRecord:
        """Parse ``rebuild.json``; one line naming the file and the problem otherwise."""
        return self.read_record_with_bytes()[0]

    def read_record_with_bytes(self) -> tuple[RebuildRecord, bytes]:
        """Parse ``rebuild.json`` and return it with the exact bytes read (to hash them)."""
        return read_rebuild_record(self.record_path)

    def write_record(self, record: RebuildRecord) -> str:
        """Write ``rebuild.json`` atomically (mode 0644); return its sha256."""
        return write_json_atomic(self.record_path, record.to_json())

    def read_manifest(self) -> Manifest:
        """Parse ``manifest.json`` with the manifest stage's strict reader."""
        return read_manifest(self.manifest_path)

    def write_compare_html(self, page: str) -> str:
        """Write ``compare.html`` atomically (mode 0644); return its sha256."""
        return write_atomic(self.compare_html_path, page.encode())

    def read_source_verdict(self) -> tuple[SourceVerdict, bytes]:
        """Parse ``source-verdict.json``; return it with the exact bytes read (to hash them)."""
        return read_source_verdict(self.source_verdict_path)

    def write_source_verdict(self, verdict: SourceVerdict) -> str:
        """Write the source stage's verdict atomically (mode 0644); return its sha256."""
        return write_json_atomic(self.source_verdict_path, verdict_to_dict(verdict))
