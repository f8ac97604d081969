"""Turn a rebuild result (``manifest.json``, ``source-verdict.json``, ``rebuild.json``) into a predicate.

The three files come from other stages and may be old, truncated or edited: every field used is
checked for type, the files must agree with each other (same version, same tarball digest, the
manifest's digest as ``rebuild.json`` recorded it), and anything else is refused with one line that
names the file. Nothing is attested from a result that does not hold together.

Each file is read once, into :class:`RebuildInputs`: from a result directory, the values its integrity
check read (:func:`verify.result.integrity.read_finished`: the very bytes checked are the bytes signed);
from files given one by one, here. :func:`build_content` then only converts typed values.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from verify import __version__
from verify.attest.errors import AttestationError
from verify.attest.predicate import BUILD_TYPE, RebuildVerdict, parse_predicate
from verify.attest.provenance import INSTALL_TREE_SUBJECT, build_provenance, builder_uri
from verify.common import fsutil
from verify.manifest import Manifest, ManifestError, manifest_digest, read_manifest
from verify.result import RebuildRecord, ResultDirError
from verify.result.directory import read_rebuild_record, read_source_verdict
from verify.result.integrity import FinishedResult, read_finished
from verify.source.models import SourceVerdict

MANIFEST_SUBJECT: Final = "manifest.json"
"""The file name of the manifest in a result directory and beside a published attestation."""

# The outputs worth naming as subjects of their own: the interpreter and libpython. A user holding one
# installed file can check it against the attestation without the manifest.
_KEY_OUTPUT: Final = re.compile(r"(^|/)(bin/python3\.[0-9]+t?|lib/libpython3\.[0-9]+t?\.(a|so(\.[0-9]+)*))$")
_KEY_OUTPUT_KINDS: Final = frozenset({"elf-executable", "elf-shared-object", "static-archive"})


@dataclass(frozen=True, slots=True)
class AttestedSubject:
    """One subject of the Statement: a name and the sha256 of its bytes."""

    name: str
    sha256: str


@dataclass(frozen=True, slots=True)
class RebuildInputs:
    """The three files of one rebuild result, read and found to agree: where each is, its typed value and
    the sha256 of the exact bytes it was read from."""

    manifest_path: Path
    manifest: Manifest
    manifest_sha256: str
    source_verdict_path: Path
    verdict: SourceVerdict
    verdict_sha256: str
    rebuild_path: Path
    record: RebuildRecord
    rebuild_sha256: str

    @classmethod
    def from_result_dir(cls, directory: Path) -> RebuildInputs:
        """The files of a ``cpython-verify rebuild --out DIR`` result directory, as the check that it is
        finished and intact read them (:func:`verify.result.integrity.read_finished`)."""
        return cls.of_finished(read_finished(directory))

    @classmethod
    def of_finished(cls, finished: FinishedResult) -> RebuildInputs:
        """The files of a checked result directory: the values its check read, not read again."""
        result = finished.directory
        verdict_sha256 = hashlib.sha256(finished.source_verdict_bytes).hexdigest()
        rebuild_sha256 = hashlib.sha256(finished.record_bytes).hexdigest()
        # The check compared manifest.json's sha256 with the one the record gives, before it parsed it.
        manifest_sha256 = finished.record.manifest_sha256
        paths = (result.manifest_path, result.source_verdict_path, result.record_path)
        _require_agreement(finished.source_verdict, finished.record, manifest_sha256, *paths)
        return cls(
            result.manifest_path, finished.manifest, manifest_sha256,
            result.source_verdict_path, finished.source_verdict, verdict_sha256,
            result.record_path, finished.record, rebuild_sha256,
        )  # fmt: skip

    @classmethod
    def read(cls, *, manifest: Path, source_verdict: Path, rebuild: Path) -> RebuildInputs:
        """The three files wherever they are (``attest --manifest/--source-verdict/--rebuild``): the verdict
        and the record first, then the manifest, parsed only once its digest is the one the record gives."""
        try:
            # The source verdict is read as the cache's check of a result reads it, into the source stage's value.
            verdict, verdict_bytes = read_source_verdict(source_verdict)
            record, record_bytes = read_rebuild_record(rebuild)
        except ResultDirError as error:
            raise AttestationError(error.message) from None
        manifest_sha256 = sha256_file(manifest)
        _require_agreement(verdict, record, manifest_sha256, manifest, source_verdict, rebuild)
        return cls(
            manifest, load_manifest(manifest), manifest_sha256,
            source_verdict, verdict, hashlib.sha256(verdict_bytes).hexdigest(),
            rebuild, record, hashlib.sha256(record_bytes).hexdigest(),
        )  # fmt: skip

    @classmethod
    def given(
        cls,
        finished: FinishedResult | None,
        *,
        manifest: Path | None = None,
        source_verdict: Path | None = None,
        rebuild: Path | None = None,
    ) -> RebuildInputs:
        """``attest``'s inputs: the checked result directory ``finished``, with any file given on its own in
        place of the directory's (then all three are read as files). Every file must come from somewhere."""
        if finished is not None and manifest is None and source_verdict is None and rebuild is None:
            return cls.of_finished(finished)
        result = finished.directory if finished is not None else None
        manifest = manifest or (result.manifest_path if result else None)
        source_verdict = source_verdict or (result.source_verdict_path if result else None)
        rebuild = rebuild or (result.record_path if result else None)
        if manifest is None or source_verdict is None or rebuild is None:
            raise ValueError("give a result directory, or all of the manifest, source verdict and rebuild record")
        return cls.read(manifest=manifest, source_verdict=source_verdict, rebuild=rebuild)


def _require_agreement(
    verdict: SourceVerdict,
    record: RebuildRecord,
    manifest_sha256: str,
    manifest_path: Path,
    source_verdict_path: Path,
    rebuild_path: Path,
) -> None:
    """Refuse files that do not hold together: another release, an unverified source, another tarball, or a
    manifest that is not the one the record names."""
    if record.version != verdict.version:
        raise AttestationError(f"the rebuild is of {record.version} but the source verdict is about {verdict.version}")
    if not verdict.verified:
        # The rebuild stage refuses unverified source; a result claiming otherwise was not made by it.
        raise AttestationError(f"{source_verdict_path.name}: the source was not verified; refusing to attest")
    if record.source.sha256 != verdict.tarball.sha256:
        raise AttestationError(
            f"the rebuild used tarball sha256 {record.source.sha256} but the source verdict is about "
            f"{verdict.tarball.sha256}"
        )
    if record.manifest_sha256 != manifest_sha256:
        raise AttestationError(
            f"{manifest_path} has sha256 {manifest_sha256} but {rebuild_path.name} recorded "
            f"{record.manifest_sha256}: the result directory was changed after the rebuild"
        )


@dataclass(frozen=True, slots=True)
class AttestationContent:
    """What will be signed: the subjects, the verdict and the SLSA provenance (two Statements, same subjects)."""

    subjects: tuple[AttestedSubject, ...]
    predicate: RebuildVerdict
    provenance: dict[str, Any]
    """The SLSA Provenance v1 predicate, as JSON data."""


def sha256_file(path: Path) -> str:
    """:func:`verify.common.fsutil.sha256_file`, with a file that cannot be read an :class:`AttestationError`."""
    try:
        return fsutil.sha256_file(path)
    except OSError as error:
        raise AttestationError(f"cannot read {path}: {error.strerror or error}") from None


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """Which run of a rebuilder this is: the planned job and the machine it ran on (signed in the verdict's
    ``rebuilder.job`` and ``rebuilder.machine``)."""

    job: str
    machine: str


def build_content(
    inputs: RebuildInputs, *, rebuilder_id: str, now: datetime | None = None, run: RunIdentity | None = None
) -> AttestationContent:
    """Convert one rebuild result, read and cross-checked (:class:`RebuildInputs`), into the subjects and
    predicate to sign.

    ``run`` names the job and machine when the rebuild ran as one job of a plan (the nightly workflow)."""
    record, verdict, manifest = inputs.record, inputs.verdict, inputs.manifest
    predicate_data = {
        "version": str(verdict.version),
        "recipe": _recipe(record),
        "source": _source(verdict, inputs.verdict_sha256),
        "build": _build(record, inputs.rebuild_sha256),
        "result": _result(record, inputs.manifest_sha256, tree_digest(manifest)),
        "rebuilder": {
            "id": builder_uri(rebuilder_id),
            "name": rebuilder_id.strip(),
            "tool": f"cpython-verify {__version__}",
            **({"job": run.job, "machine": run.machine} if run is not None else {}),
        },
        "attested_at": (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    predicate = parse_predicate(json.dumps(predicate_data).encode(), error_type=AttestationError)
    # Outputs only: the source tarball is an input (a resolved dependency of the provenance).
    subjects = (AttestedSubject(INSTALL_TREE_SUBJECT, predicate.result.tree_sha256), *key_outputs(manifest))
    provenance = build_provenance(predicate, record, source_verdict_sha256=inputs.verdict_sha256)
    return AttestationContent(subjects=subjects, predicate=predicate, provenance=provenance)


def load_manifest(path: Path) -> Manifest:
    """Read a manifest with the manifest stage's strict reader; its errors become attestation errors."""
    try:
        return read_manifest(path)
    except ManifestError as error:
        raise AttestationError(error.message) from None


def tree_digest(manifest: Manifest) -> str:
    """sha256 of the canonical manifest with empty inputs: the install tree alone."""
    return manifest_digest(Manifest(manifest.format, {}, manifest.entries))


def key_outputs(manifest: Manifest) -> tuple[AttestedSubject, ...]:
    """The interpreter and libpython files listed in a manifest, as subjects (path in the install tree)."""
    return tuple(
        AttestedSubject(entry.path, entry.sha256)
        for entry in manifest.entries
        if entry.sha256 is not None and entry.kind in _KEY_OUTPUT_KINDS and _KEY_OUTPUT.search(entry.path)
    )


def _recipe(record: RebuildRecord) -> dict[str, Any]:
    recipe = record.inputs.recipe
    return {
        "series": recipe.series,
        "sha256": recipe.sha256,
        "profile": recipe.profile,
        "configure": list(recipe.configure),
    }


def _source(verdict: SourceVerdict, verdict_sha256: str) -> dict[str, Any]:
    tarball = verdict.tarball
    return {
        "verified": True,
        "tarball": {
            "name": tarball.name,
            "sha256": tarball.sha256,
            "size": tarball.size,
            "origin": tarball.origin or None,
        },
        "signatures": [
            {
                "kind": str(signature.kind),
                "status": str(signature.status),
                "detail": signature.detail,
                "signer": signature.signer or None,
                "signer_name": signature.signer_name or None,
                "signed_at": signature.signed_at.isoformat() if signature.signed_at else None,
            }
            for signature in verdict.signatures
        ],
        "digests": [
            {"source": check.claim.source, "sha256": check.claim.sha256, "agrees": check.agrees}
            for check in verdict.digests
        ],
        "patchlevel": verdict.patchlevel_version or None,
        "verdict_sha256": verdict_sha256,
    }


def _build(record: RebuildRecord, rebuild_sha256: str) -> dict[str, Any]:
    inputs = record.inputs
    environment = inputs.environment.model_dump(mode="json")
    # A rebuild in a given rootfs tarball (--rootfs) has no lock: rebuild.json records "", the predicate null.
    environment["lock_sha256"] = environment.get("lock_sha256") or None
    return {
        "build_type": BUILD_TYPE,
        "runner": inputs.runner,
        "environment": environment,
        "settings": dict(inputs.settings),
        "variations": list(record.reproducibility.variations if record.reproducibility else ()),
        "rebuild_sha256": rebuild_sha256,
    }


def _result(record: RebuildRecord, manifest_sha256: str, tree_sha256: str) -> dict[str, Any]:
    check = record.reproducibility
    if check is None:
        return {
            "manifest_sha256": manifest_sha256,
            "tree_sha256": tree_sha256,
            "reproducible": None,
            "explained": None,
            "differences": [],
            "culprits": {},
        }
    return {
        "manifest_sha256": manifest_sha256,
        "tree_sha256": tree_sha256,
        "reproducible": check.reproducible,
        "explained": check.explained,
        "differences": [
            {
                "path": difference.path,
                "kind": difference.kind,
                "change": ",".join(difference.changes),
                "explained": difference.explained,
                "category": difference.category,
                "explanation": difference.explanation,
            }
            for difference in check.differences
        ],
        "culprits": dict(check.culprits),
    }


def describe_subjects(subjects: Sequence[AttestedSubject]) -> list[str]:
    """One line per subject, for the CLI."""
    return [f"{subject.sha256}  {subject.name}" for subject in subjects]
