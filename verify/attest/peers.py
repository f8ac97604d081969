"""``guix challenge`` for CPython: do independent, signed rebuilds agree with ours?

Each peer attestation is verified against the trusted keys or identities first; one that fails is
listed as rejected and never counted. Agreement is on the *install tree* (``tree_sha256``), not on the
whole manifest: two rebuilders that used different runners record different inputs but may still
produce the very same files. Each signer counts once (independence is per signer, not per file); a
signer that attested two different trees for one release is not counted at all.

``decide`` is pure: it receives the verified claims and returns the verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from verify.attest.errors import AttestationError
from verify.attest.inputs import MANIFEST_SUBJECT, load_manifest, sha256_file, tree_digest
from verify.attest.verification import TrustPolicy, verify_attestation_file
from verify.compare import model as compare_model
from verify.compare.engine import diff_manifests
from verify.errors import VerifyError
from verify.manifest import Manifest
from verify.result import ResultDir

OURS: Final = "this rebuild"
MAX_LISTED_FILES: Final = 50


@dataclass(frozen=True, slots=True)
class FileDifference:
    """One path on which two install trees differ."""

    path: str
    change: str
    """``content``, ``mode``, ``kind``, ``target``, ``only-in-reference`` or ``only-in-peer``."""


# The comparison stage's change names, in the order that says most about a peer's tree, mapped to the
# words the peers verdict uses (its side A is our reference, side B the peer).
_PEER_CHANGE = {
    compare_model.ONLY_IN_A: "only-in-reference",
    compare_model.ONLY_IN_B: "only-in-peer",
    compare_model.TYPE: "kind",
    compare_model.CONTENT: "content",
    compare_model.LINK_TARGET: "target",
    compare_model.MODE: "mode",
}


def compare_manifests(reference: Manifest, other: Manifest) -> tuple[FileDifference, ...]:
    """The paths on which a peer's attested tree differs from the reference, in path order.

    Reuses the comparison stage's manifest diff, so peers and ``compare`` never disagree on what
    counts as a difference; each path is named by its most telling change.
    """
    differences = []
    for difference in diff_manifests(reference, other):
        change = next(name for key, name in _PEER_CHANGE.items() if key in difference.changes)
        differences.append(FileDifference(difference.path, change))
    return tuple(differences)


@dataclass(frozen=True, slots=True)
class Claim:
    """One rebuilder's verified statement about one release: who, which tree, and (if published) the manifest."""

    origin: str
    signer: str
    version: str
    profile: str
    tree_sha256: str
    manifest: Manifest | None = None
    note: str | None = None
    """Why the manifest is not available for a file-level comparison."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """An attestation that was not counted, and why."""

    origin: str
    reason: str


@dataclass(frozen=True, slots=True)
class Dissent:
    """A rebuilder whose tree differs from the reference, and on which files."""

    signer: str
    origin: str
    tree_sha256: str
    differences: tuple[FileDifference, ...] | None
    """None when either manifest is unavailable: the trees differ, the files are unknown."""
    note: str | None = None


@dataclass(frozen=True, slots=True)
class PeersVerdict:
    """The k-of-n verdict over independent rebuilds of one release."""

    version: str
    profile: str
    threshold: int
    reference_sha256: str | None
    reference: str
    """Where the reference tree comes from: our rebuild, or the largest group of agreeing signers."""
    agreeing: tuple[str, ...]
    dissenting: tuple[Dissent, ...]
    rejected: tuple[Rejected, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def independent(self) -> int:
        """How many distinct rebuilders were counted (n)."""
        return len(self.agreeing) + len(self.dissenting)

    @property
    def met(self) -> bool:
        """True when at least ``threshold`` independent rebuilders produced the reference tree."""
        return self.reference_sha256 is not None and len(self.agreeing) >= self.threshold

    def summary(self) -> str:
        """One line: the verdict."""
        agree = f"{len(self.agreeing)} of {self.independent} independent rebuilders agree"
        if self.reference_sha256 is None:
            return f"NOT MET: no reference tree ({self.reference}); threshold {self.threshold}"
        if self.threshold > self.independent:
            return (
                f"NOT MET: threshold {self.threshold} cannot be met, only {self.independent} independent "
                f"rebuilder(s) counted; {agree}"
            )
        word = "MET" if self.met else "NOT MET"
        return f"{word}: {agree} with {self.reference} (threshold {self.threshold}, tree {self.reference_sha256})"


def decide(
    claims: Sequence[Claim],
    *,
    version: str,
    profile: str,
    threshold: int,
    ours: Claim | None = None,
    rejected: Iterable[Rejected] = (),
) -> PeersVerdict:
    """Count independent agreement with the reference tree: ours if given, else the largest agreeing group."""
    if threshold < 1:
        raise AttestationError("--threshold must be at least 1")
    refused = list(rejected)
    eligible: list[Claim] = []
    for claim in claims:
        if claim.version != version:
            refused.append(Rejected(claim.origin, f"attests CPython {claim.version}, not {version}"))
        elif claim.profile != profile:
            refused.append(Rejected(claim.origin, f"attests profile {claim.profile}, not {profile}"))
        else:
            eligible.append(claim)

    by_signer: dict[str, list[Claim]] = {}
    for claim in eligible:
        by_signer.setdefault(claim.signer, []).append(claim)
    notes: list[str] = []
    counted: list[Claim] = []
    for signer, signed in by_signer.items():
        trees = {claim.tree_sha256 for claim in signed}
        if len(trees) > 1:
            refused.extend(
                Rejected(claim.origin, f"{signer} attested {len(trees)} different trees for {version}")
                for claim in signed
            )
            continue
        if len(signed) > 1:
            notes.append(f"{signer} attested the same tree {len(signed)} times; counted once")
        counted.append(signed[0])

    if ours is not None:
        reference_sha256: str | None = ours.tree_sha256
        reference = OURS
        reference_manifest = ours.manifest
        counted = [claim for claim in counted if claim.signer != ours.signer]
        counted.insert(0, ours)
    else:
        reference_sha256, reference = _majority(counted)
        reference_manifest = next(
            (c.manifest for c in counted if c.tree_sha256 == reference_sha256 and c.manifest is not None), None
        )

    agreeing = tuple(claim.signer for claim in counted if claim.tree_sha256 == reference_sha256)
    dissenting = tuple(
        _dissent(claim, reference_manifest) for claim in counted if claim.tree_sha256 != reference_sha256
    )
    return PeersVerdict(
        version=version,
        profile=profile,
        threshold=threshold,
        reference_sha256=reference_sha256,
        reference=reference,
        agreeing=agreeing,
        dissenting=dissenting,
        rejected=tuple(refused),
        notes=tuple(notes),
    )


def _majority(claims: Sequence[Claim]) -> tuple[str | None, str]:
    counts = Counter(claim.tree_sha256 for claim in claims).most_common()
    if not counts:
        return None, "no attestation was counted"
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, f"no majority: {counts[0][1]} rebuilder(s) each for {len(counts)} different trees"
    return counts[0][0], "the largest group of agreeing rebuilders"


def _dissent(claim: Claim, reference_manifest: Manifest | None) -> Dissent:
    if claim.manifest is None or reference_manifest is None:
        note = claim.note or ("the reference manifest is not available" if claim.manifest is not None else None)
        return Dissent(claim.signer, claim.origin, claim.tree_sha256, None, note)
    return Dissent(claim.signer, claim.origin, claim.tree_sha256, compare_manifests(reference_manifest, claim.manifest))


# --------------------------------------------------------------------------- I/O edges


def published_manifest(attestation: Path) -> Path:
    """Where a rebuilder publishes the manifest beside its attestation.

    ``NAME.intoto.json`` / ``NAME.sigstore.json`` -> ``NAME.manifest.json``; an attestation inside a
    rebuild result directory uses that directory's ``manifest.json``.
    """
    for suffix in (".intoto.json", ".sigstore.json"):
        if attestation.name.endswith(suffix):
            sibling = attestation.with_name(attestation.name[: -len(suffix)] + ".manifest.json")
            if sibling.is_file():
                return sibling
    return attestation.with_name(MANIFEST_SUBJECT)


def load_claim(path: Path, trust: TrustPolicy) -> Claim:
    """Verify one attestation and pair it with its published manifest when that matches the attested digest."""
    attestation = verify_attestation_file(path, trust)
    predicate = attestation.predicate
    manifest_path = published_manifest(path)
    manifest: Manifest | None = None
    note: str | None = None
    if not manifest_path.is_file():
        note = f"no manifest published beside {path.name}: the differing files are unknown"
    elif sha256_file(manifest_path) != attestation.manifest_sha256:
        note = f"{manifest_path} is not the attested manifest (sha256 differs); ignored"
    else:
        manifest = load_manifest(manifest_path)
    return Claim(
        origin=str(path),
        signer=attestation.signer,
        version=predicate.version,
        profile=predicate.recipe.profile,
        tree_sha256=predicate.result.tree_sha256,
        manifest=manifest,
        note=note,
    )


def load_claims(paths: Iterable[Path], trust: TrustPolicy) -> tuple[list[Claim], list[Rejected]]:
    """Verify every attestation; one that fails is a :class:`Rejected` entry, not the end of the run."""
    claims, rejected = [], []
    for path in paths:
        try:
            claims.append(load_claim(path, trust))
        except VerifyError as error:
            rejected.append(Rejected(str(path), error.message))
    return claims, rejected


def attestations_in(directory: Path) -> list[Path]:
    """Every ``*.intoto.json`` and ``*.sigstore.json`` under ``directory``, in a stable order."""
    if not directory.is_dir():
        raise AttestationError(f"{directory} is not a directory")
    found = {*directory.rglob("*.intoto.json"), *directory.rglob("*.sigstore.json")}
    return sorted(found)


def our_claim(result_dir: Path) -> Claim:
    """Our own rebuild result (unsigned: it is the local evidence) as the reference claim."""
    result = ResultDir.open(result_dir)
    record = result.read_record()
    manifest = load_manifest(result.manifest_path)
    return Claim(str(result_dir), OURS, record.version, record.profile, tree_digest(manifest), manifest)
