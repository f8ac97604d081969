"""Frozen values passed between the stages of the pipeline.

Each stage receives one of these and returns the next; none of them does I/O. Anything rendered for
the user (text, JSON, HTML) is derived from these values alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from verify.source.releases import Version


class SignatureKind(StrEnum):
    """A kind of release signature python.org publishes."""

    OPENPGP = "openpgp"
    SIGSTORE = "sigstore"

    @property
    def file_suffix(self) -> str:
        """What python.org appends to the tarball's name for this kind's signature file."""
        return {"openpgp": ".asc", "sigstore": ".sigstore"}[self.value]


class CheckStatus(StrEnum):
    """The outcome of one check; only ``VERIFIED`` counts as evidence."""

    VERIFIED = "verified"
    FAILED = "failed"
    MISSING = "missing"
    """Required, but the file could not be found: a failure."""
    NOT_REQUIRED = "not-required"
    """Not found, and the user knowingly allowed it to be missing (``--allow-missing``)."""


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """A file obtained from some source, with the digest of the exact bytes at ``path``.

    Being fetched says nothing about being trusted: only a :class:`SourceVerdict` does.
    """

    name: str
    path: Path
    sha256: str
    size: int
    origin: str
    """Where the bytes came from: a URL or a local path."""


@dataclass(frozen=True, slots=True)
class SignatureEvidence:
    """What checking one signature established."""

    kind: SignatureKind
    status: CheckStatus
    detail: str
    """One line: who signed and when, or why it failed."""
    signer: str | None = None
    """OpenPGP primary-key fingerprint, or the Sigstore certificate identity."""
    signer_name: str | None = None
    """OpenPGP user id, or the Sigstore OIDC issuer."""
    signed_at: datetime | None = None
    signature_origin: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DigestClaim:
    """An independent statement of a file's sha256, and who made it."""

    source: str
    sha256: str
    size: int | None = None
    """The file's size in bytes, where the source states it (release metadata, a Debian index)."""


@dataclass(frozen=True, slots=True)
class DigestCheck:
    """A claim compared with the digest of the bytes actually fetched."""

    claim: DigestClaim
    agrees: bool


@dataclass(frozen=True, slots=True)
class SourceVerdict:
    """The evidence about one release's source tarball: signatures, digests, unpacked version."""

    version: Version
    recipe_series: str
    recipe_sha256: str
    tarball: FetchedFile
    signatures: tuple[SignatureEvidence, ...]
    digests: tuple[DigestCheck, ...]
    patchlevel_version: str | None
    """``PY_VERSION`` found in the tarball's ``Include/patchlevel.h`` (None when not found)."""
    notes: tuple[str, ...] = field(default=())
    archive_problem: str | None = None
    """Why the tarball could not be read (truncated, corrupt, hostile), if it could not."""
    allowed_missing: tuple[SignatureKind, ...] = ()
    """The kinds ``--allow-missing`` let be absent: the relaxations the verdict was reached under."""

    @property
    def patchlevel_ok(self) -> bool:
        """True when the tarball's own version string is the requested version."""
        return self.patchlevel_version == str(self.version)

    @property
    def verified(self) -> bool:
        """True only when every required signature verified, every digest claim agrees, and the
        unpacked version is the requested one. At least one signature must have verified."""
        statuses = [evidence.status for evidence in self.signatures]
        return (
            CheckStatus.VERIFIED in statuses
            and all(status in (CheckStatus.VERIFIED, CheckStatus.NOT_REQUIRED) for status in statuses)
            and all(check.agrees for check in self.digests)
            and self.patchlevel_ok
        )

    def relaxations(self) -> tuple[str, ...]:
        """One line per relaxation the user asked for (``--allow-missing KIND``), saying whether it was used."""
        lines = []
        for kind in self.allowed_missing:
            statuses = {evidence.status for evidence in self.signatures if evidence.kind is kind}
            if CheckStatus.NOT_REQUIRED in statuses:
                lines.append(f"--allow-missing {kind}: no {kind} signature was found, and none was required")
            else:
                lines.append(f"--allow-missing {kind}: not used (the {kind} signature was found and checked)")
        return tuple(lines)

    @property
    def signatures_verified(self) -> int:
        """How many signatures verified."""
        return sum(1 for evidence in self.signatures if evidence.status is CheckStatus.VERIFIED)

    @property
    def signatures_checked(self) -> int:
        """How many signatures were checked (verified or failed), as opposed to missing or not required."""
        return sum(1 for evidence in self.signatures if evidence.status in (CheckStatus.VERIFIED, CheckStatus.FAILED))

    @property
    def digests_agreeing(self) -> int:
        """How many independent digest claims agree with the tarball's sha256."""
        return sum(1 for check in self.digests if check.agrees)

    def incomplete(self) -> str | None:
        """``incomplete: 10,000,000 of 22,856,016 bytes (...)`` when a digest claim states a larger size than
        the tarball has: a cut download or copy, the cause of the bad signature and digest that follow."""
        for check in self.digests:
            stated = check.claim.size
            if stated is not None and self.tarball.size < stated:
                return f"incomplete: {self.tarball.size:,} of {stated:,} bytes (the size {check.claim.source} states)"
        return None

    def failures(self) -> list[str]:
        """One line per reason the source is not verified (empty when verified), the tarball's being
        incomplete first when a claim says so: it explains the others."""
        incomplete = self.incomplete()
        reasons = [] if incomplete is None else [f"the tarball is {incomplete}"]
        reasons += [
            f"{evidence.kind}: {evidence.detail}"
            for evidence in self.signatures
            if evidence.status in (CheckStatus.FAILED, CheckStatus.MISSING)
        ]
        if self.signatures and all(e.status is CheckStatus.NOT_REQUIRED for e in self.signatures):
            reasons.append("no signature was checked: at least one must verify")
        if not self.signatures:
            reasons.append("no signature was checked: at least one must verify")
        reasons += [
            f"sha256 disagrees with {check.claim.source}: it says {check.claim.sha256}, "
            f"the file is {self.tarball.sha256}"
            for check in self.digests
            if not check.agrees
        ]
        if self.archive_problem is not None:
            reasons.append(f"the tarball cannot be read: {self.archive_problem}")
        elif not self.patchlevel_ok:
            found = self.patchlevel_version or "no PY_VERSION"
            reasons.append(f"Include/patchlevel.h says {found}, requested {self.version}")
        return reasons
