"""``guix challenge`` for CPython: do independent, signed rebuilds agree with ours?

Each peer attestation is verified against the trusted keys or identities first; one that fails is
listed as rejected and never counted. Agreement is on the *install tree* (``tree_sha256``), not on the
whole manifest: two rebuilders that used different runners record different inputs but may still
produce the very same files. Rebuilders are counted by identity, not by file: a signer counts once,
one rebuild (one ``rebuild.json``) signed by several signers counts once, and an attestation of our own
result, or by the signer of one, is our rebuilder again and never a second one. A rebuilder that
attested two different trees for one release is not counted at all.

``decide`` is pure: it receives the verified claims and returns the verdict.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from verify.attest.errors import AttestationError
from verify.attest.inputs import MANIFEST_SUBJECT, load_manifest, sha256_file, tree_digest
from verify.attest.peers_document import (
    DISAGREE,
    MET,
    NOT_MET,
    PEERS_FORMAT,
    ChangedFile,
    CheckedCounts,
    DissentDocument,
    PeersDocument,
    RebuilderDocument,
    RejectedDocument,
    RunDocument,
    RunsDocument,
)
from verify.attest.verification import (
    TrustPolicy,
    VerifiedAttestation,
    VerifiedProvenance,
    verify_published,
)
from verify.common.errors import VerifyError
from verify.compare.engine import diff_manifests
from verify.manifest import Manifest
from verify.result.integrity import open_finished

OURS: Final = "this rebuild"
MAX_LISTED_FILES: Final = 50


@dataclass(frozen=True, slots=True)
class FileDifference:
    """One path on which a peer's install tree differs from the reference."""

    path: str
    changes: tuple[str, ...]
    """The compare stage's names (:data:`verify.compare.model.CHANGES`); side A is the reference, side B
    the peer, so ``only-in-a`` is a path only the reference has."""


def compare_manifests(reference: Manifest, other: Manifest) -> tuple[FileDifference, ...]:
    """The paths on which a peer's attested tree differs from the reference, in path order.

    Reuses the comparison stage's manifest diff and its names, so peers and ``compare`` never
    disagree on what counts as a difference or what it is called.
    """
    return tuple(FileDifference(d.path, d.changes) for d in diff_manifests(reference, other))


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
    rebuild_sha256: str | None = None
    """sha256 of the ``rebuild.json`` the claim was made from: the identity of one rebuild's result."""
    location: Path | None = None
    """Where the claim lies on this machine (resolved): an attestation file, or our result directory."""
    job: str | None = None
    """The planned job that rebuilt, as the signed verdict names it (``rebuilder.job``), if it does."""
    machine: str | None = None
    """The machine that job ran on, as the signed verdict names it (``rebuilder.machine``), if it does."""


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
class Counted:
    """One independent rebuilder as counted: its name in the verdict, its tree, and the attestations
    (or our result directory) that make it up."""

    signer: str
    tree_sha256: str
    origins: tuple[str, ...]
    agrees: bool
    """True when its tree is the reference tree."""


@dataclass(frozen=True, slots=True)
class Run:
    """One rebuild (one ``rebuild.json``) of a rebuilder: where it ran, as its signed verdict says, and its tree."""

    origin: str
    tree_sha256: str
    job: str | None
    machine: str | None


@dataclass(frozen=True, slots=True)
class RebuilderRuns:
    """The runs of one rebuilder (what :func:`group_rebuilders` groups: one signer, or the signers of one
    rebuild) when it attested more than one rebuild of a release and profile, e.g. the nightly workflow's
    two jobs of ``plan --independent-rebuilds``.

    Their agreement says the build reproduces across runs and machines; it is never a second independent
    rebuilder (the k of n counts signers). Their disagreement is the rebuilder disagreeing with itself:
    :attr:`PeersVerdict.inconsistent`, red."""

    signer: str
    signers: int
    """How many signers the rebuilder is (one, unless one rebuild was signed by several)."""
    runs: tuple[Run, ...]

    @property
    def trees(self) -> tuple[str, ...]:
        """The distinct install trees the runs produced, sorted."""
        return tuple(sorted({run.tree_sha256 for run in self.runs}))

    @property
    def agree(self) -> bool:
        """True when every run produced the same install tree."""
        return len(self.trees) == 1

    @property
    def machines(self) -> tuple[str, ...]:
        """The distinct machines the signed verdicts name, in order of first appearance."""
        return tuple(dict.fromkeys(run.machine for run in self.runs if run.machine is not None))

    def counts(self) -> str:
        """ "2 runs on 2 machines": a run whose verdict names no machine is counted as a run, never as a machine."""
        machines = len(self.machines)
        unnamed = sum(run.machine is None for run in self.runs)
        where = f"{len(self.runs)} runs on {machines} machine{'s' if machines != 1 else ''}"
        if unnamed:
            where += f" ({unnamed} run(s) name no machine)"
        return where

    def summary(self) -> str:
        """One line, e.g. "2 runs on 2 machines agree (1 signer: ...), tree ..."."""
        where = self.counts()
        who = f"({self.signers} signer{'s' if self.signers != 1 else ''}: {self.signer})"
        if self.agree:
            return f"{where} agree {who}, tree {self.trees[0]}"
        return f"{where} DISAGREE {who}: trees {', '.join(self.trees)}"


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
    counted: tuple[Counted, ...] = ()
    """Every rebuilder counted, in the order of :attr:`agreeing` then :attr:`dissenting`."""
    inconsistent: tuple[str, ...] = ()
    """Rebuilders that attested more than one tree for this release and profile (not counted): a
    rebuilder that disagrees with itself."""
    considered: int = 0
    """How many attestations were judged (our result aside): the verified claims and the rejected ones."""
    runs: tuple[RebuilderRuns, ...] = ()
    """Each rebuilder (other than us) that attested more than one rebuild: whether its runs agree. Reported
    apart from the k of n, which counts signers."""

    @property
    def independent(self) -> int:
        """How many distinct rebuilders were counted (n)."""
        return len(self.agreeing) + len(self.dissenting)

    @property
    def met(self) -> bool:
        """True when at least ``threshold`` independent rebuilders produced the reference tree."""
        return self.reference_sha256 is not None and len(self.agreeing) >= self.threshold

    @property
    def disagreement(self) -> bool:
        """True when rebuilders' trees differ: one dissents from the reference, the counted rebuilders
        split evenly (no reference), or one rebuilder attested two trees. A red finding whether or not
        the threshold is met."""
        tie = self.reference_sha256 is None and self.independent > 1
        return bool(self.dissenting) or bool(self.inconsistent) or tie

    @property
    def state(self) -> str:
        """:data:`DISAGREE` when rebuilders' trees differ (:attr:`disagreement`), else :data:`MET` or
        :data:`NOT_MET`."""
        if self.disagreement:
            return DISAGREE
        return MET if self.met else NOT_MET

    def summary(self) -> str:
        """One line: the verdict."""
        agree = f"{len(self.agreeing)} of {self.independent} independent rebuilders agree"
        dissent = f"; {len(self.dissenting)} DISAGREE" if self.dissenting else ""
        dissent += f"; {len(self.inconsistent)} attested two different trees" if self.inconsistent else ""
        dissent += "".join(f"; {runs.summary()}" for runs in self.runs)
        if self.reference_sha256 is None:
            return f"NOT MET: no reference tree ({self.reference}); threshold {self.threshold}{dissent}"
        if self.threshold > self.independent:
            return (
                f"NOT MET: threshold {self.threshold} cannot be met, only {self.independent} independent "
                f"rebuilder(s) counted; {agree}{dissent}"
            )
        word = "MET" if self.met else "NOT MET"
        return (
            f"{word}: {agree} with {self.reference} (threshold {self.threshold}, tree {self.reference_sha256}){dissent}"
        )

    def coverage(self) -> str:
        """One line: what was checked, as counts and the reference digest."""
        tree = (
            f"{len(self.agreeing)} on the reference tree {self.reference_sha256}"
            if self.reference_sha256
            else "no reference tree"
        )
        return (
            f"checked: {self.considered} attestation(s){' and our result' if self.reference == OURS else ''} "
            f"for CPython {self.version} profile {self.profile}, "
            f"{len(self.rejected)} rejected; {self.independent} independent rebuilder(s) counted, {tree}"
        )


def peers_to_json(verdict: PeersVerdict) -> dict[str, Any]:
    """What ``peers --json`` prints: the verdict with its format id
    (:class:`verify.attest.peers_document.PeersDocument`)."""
    return PeersDocument.model_construct(format=PEERS_FORMAT, **verdict_fields(verdict)).to_json()


def verdict_fields(verdict: PeersVerdict) -> dict[str, Any]:
    """Every field of the verdict's document (:class:`verify.attest.peers_document.VerdictBody`), built from
    ``verdict`` without validating its values again: a report is written after the work is done."""
    return {
        "version": verdict.version,
        "profile": verdict.profile,
        "threshold": verdict.threshold,
        "met": verdict.met,
        "state": verdict.state,
        "disagreement": verdict.disagreement,
        "independent": verdict.independent,
        "reference": verdict.reference,
        "reference_tree_sha256": verdict.reference_sha256,
        "checked": CheckedCounts.model_construct(
            attestations=verdict.considered,
            rejected=len(verdict.rejected),
            rebuilders=verdict.independent,
            agreeing=len(verdict.agreeing),
            trees=tuple(sorted({counted.tree_sha256 for counted in verdict.counted})),
        ),
        "rebuilders": tuple(
            RebuilderDocument.model_construct(
                signer=c.signer, tree_sha256=c.tree_sha256, origins=c.origins, agrees=c.agrees
            )
            for c in verdict.counted
        ),
        "agreeing": verdict.agreeing,
        "dissenting": tuple(_dissent_document(d) for d in verdict.dissenting),
        "inconsistent": verdict.inconsistent,
        "runs": tuple(_runs_document(runs) for runs in verdict.runs),
        "rejected": tuple(RejectedDocument.model_construct(origin=r.origin, reason=r.reason) for r in verdict.rejected),
        "notes": verdict.notes,
        "summary": verdict.summary(),
    }


def _dissent_document(dissent: Dissent) -> DissentDocument:
    return DissentDocument.model_construct(
        signer=dissent.signer,
        origin=dissent.origin,
        tree_sha256=dissent.tree_sha256,
        files=None
        if dissent.differences is None
        else tuple(ChangedFile.model_construct(path=f.path, changes=f.changes) for f in dissent.differences),
        note=dissent.note,
    )


def _runs_document(runs: RebuilderRuns) -> RunsDocument:
    return RunsDocument.model_construct(
        signer=runs.signer,
        signers=runs.signers,
        agree=runs.agree,
        trees=runs.trees,
        machines=runs.machines,
        runs=tuple(
            RunDocument.model_construct(
                origin=run.origin, job=run.job, machine=run.machine, tree_sha256=run.tree_sha256
            )
            for run in runs.runs
        ),
        summary=runs.summary(),
    )


def decide(
    claims: Sequence[Claim],
    *,
    version: str,
    profile: str,
    threshold: int,
    ours: Claim | None = None,
    rejected: Iterable[Rejected] = (),
) -> PeersVerdict:
    """Count independent agreement with the reference tree: ours if given, else the largest agreeing group.

    Rebuilders are counted by identity (:func:`group_rebuilders`): a signer counts once, one rebuild
    signed by several signers counts once, and an attestation of our own result (or by our own
    signer) never counts as a second rebuilder; the notes say which attestations were recognised as ours.
    """
    if threshold < 1:
        raise AttestationError("--threshold must be at least 1")
    refused = list(rejected)
    considered = len(claims) + len(refused)
    eligible: list[bool] = []
    for claim in claims:
        if claim.version != version:
            refused.append(Rejected(claim.origin, f"attests CPython {claim.version}, not {version}"))
        elif claim.profile != profile:
            refused.append(Rejected(claim.origin, f"attests profile {claim.profile}, not {profile}"))
        eligible.append(claim.version == version and claim.profile == profile)

    notes: list[str] = []
    counted: list[tuple[Claim, tuple[str, ...]]] = []
    inconsistent: list[str] = []
    several_runs: list[RebuilderRuns] = []
    grouping = group_rebuilders(claims, ours)
    for index, why in grouping.ours.items():
        claim = claims[index]
        if not eligible[index]:
            continue
        assert ours is not None
        if claim.tree_sha256 == ours.tree_sha256:
            notes.append(f"{claim.origin} was recognised as ours ({why}); not counted as another rebuilder")
        else:
            refused.append(
                Rejected(
                    claim.origin,
                    f"recognised as ours ({why}) but attests tree {claim.tree_sha256}, not our result's "
                    f"{ours.tree_sha256}: the result changed after it was attested, or the attestation is stale",
                )
            )
    for members in grouping.others:
        signed = [claims[index] for index in members if eligible[index]]
        if not signed:
            continue
        label = _label(signed)
        trees = {claim.tree_sha256 for claim in signed}
        runs = _runs(signed)
        if len(runs) > 1:
            several_runs.append(RebuilderRuns(label, len(_signers(signed)), runs))
        if len(trees) > 1:
            inconsistent.append(label)
            refused.extend(
                Rejected(
                    claim.origin,
                    f"{label} attested {len(trees)} different trees for {version}: {', '.join(sorted(trees))}",
                )
                for claim in signed
            )
            continue
        if len(_signers(signed)) > 1:
            notes.append(f"{label} signed one and the same rebuild result (the same rebuild.json); counted once")
        elif len(signed) > 1:
            notes.append(f"{label} attested the same tree {len(signed)} times; counted once")
        counted.append((replace(signed[0], signer=label), tuple(claim.origin for claim in signed)))

    if ours is not None:
        reference_sha256: str | None = ours.tree_sha256
        reference = OURS
        reference_manifest = ours.manifest
        mine = tuple(claims[index].origin for index in grouping.ours if eligible[index])
        counted.insert(0, (ours, (ours.origin, *mine)))
    else:
        reference_sha256, reference = _majority([claim for claim, _ in counted])
        reference_manifest = next(
            (c.manifest for c, _ in counted if c.tree_sha256 == reference_sha256 and c.manifest is not None), None
        )

    ordered = sorted(counted, key=lambda item: item[0].tree_sha256 != reference_sha256)  # stable: agreeing first
    return PeersVerdict(
        version=version,
        profile=profile,
        threshold=threshold,
        reference_sha256=reference_sha256,
        reference=reference,
        agreeing=tuple(claim.signer for claim, _ in ordered if claim.tree_sha256 == reference_sha256),
        dissenting=tuple(
            _dissent(claim, reference_manifest) for claim, _ in ordered if claim.tree_sha256 != reference_sha256
        ),
        rejected=tuple(refused),
        notes=tuple(notes),
        counted=tuple(
            Counted(claim.signer, claim.tree_sha256, origins, claim.tree_sha256 == reference_sha256)
            for claim, origins in ordered
        ),
        inconsistent=tuple(inconsistent),
        considered=considered,
        runs=tuple(several_runs),
    )


@dataclass(frozen=True, slots=True)
class Rebuilders:
    """Claims grouped by who made them (indexes into the claims given to :func:`group_rebuilders`)."""

    others: tuple[tuple[int, ...], ...]
    """One group per rebuilder other than us, in order of first appearance."""
    ours: dict[int, str] = field(default_factory=dict)
    """Claims that are our own rebuilder's, each with why it was recognised as ours."""


def group_rebuilders(claims: Sequence[Claim], ours: Claim | None = None) -> Rebuilders:
    """Group claims by rebuilder identity.

    One rebuilder is everything linked by a shared signer (a key or a Sigstore identity) or a shared
    result (the same ``rebuild.json`` digest): a signer is one rebuilder wherever it signs, and one
    rebuild signed by two keys is still one rebuild. Our rebuilder is the group holding our result: an
    attestation of our ``rebuild.json`` or one lying inside our result directory, and with it every
    attestation by the same signer.
    """
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    def union(first: str, second: str) -> None:
        parent[find(first)] = find(second)

    ours_node = "ours"
    direct: dict[int, str] = {}
    for index, claim in enumerate(claims):
        signer = f"signer:{claim.signer}"
        find(signer)
        if claim.rebuild_sha256 is not None:
            union(signer, f"result:{claim.rebuild_sha256}")
        why = _why_ours(claim, ours) if ours is not None else None
        if why is not None:
            direct[index] = why
            union(signer, ours_node)
    ours_root = find(ours_node) if direct else None
    ours_signers = {claims[index].signer for index in direct}

    groups: dict[str, list[int]] = {}
    mine: dict[int, str] = {}
    for index, claim in enumerate(claims):
        root = find(f"signer:{claim.signer}")
        if root != ours_root:
            groups.setdefault(root, []).append(index)
        elif index in direct:
            mine[index] = direct[index]
        elif claim.signer in ours_signers:
            mine[index] = f"signed by {claim.signer}, the signer of our own rebuild's attestation"
        else:
            mine[index] = "it shares a signer or a rebuild.json with our own rebuild's attestations"
    return Rebuilders(tuple(tuple(members) for members in groups.values()), mine)


def _why_ours(claim: Claim, ours: Claim) -> str | None:
    """Why ``claim`` is directly about our own result, or None."""
    if ours.rebuild_sha256 is not None and claim.rebuild_sha256 == ours.rebuild_sha256:
        return f"it attests our rebuild.json, sha256 {ours.rebuild_sha256}"
    if claim.location is not None and ours.location is not None and claim.location.is_relative_to(ours.location):
        return f"it lies inside our result directory {ours.location}"
    return None


def _runs(claims: Sequence[Claim]) -> tuple[Run, ...]:
    """One :class:`Run` per rebuild among one rebuilder's claims: attestations of one ``rebuild.json`` (by
    several signers, or twice) are one run."""
    runs: dict[str, Run] = {}
    for claim in claims:
        key = claim.rebuild_sha256 or f"origin:{claim.origin}"
        runs.setdefault(key, Run(claim.origin, claim.tree_sha256, claim.job, claim.machine))
    return tuple(runs.values())


def _signers(claims: Sequence[Claim]) -> list[str]:
    return list(dict.fromkeys(claim.signer for claim in claims))


def _label(claims: Sequence[Claim]) -> str:
    """How one rebuilder is named in the verdict: its signer, or its signers joined when there are several."""
    return " + ".join(_signers(claims))


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


def load_claim(path: Path, trust: TrustPolicy) -> Claim | None:
    """Verify one attestation (and the provenance ``attest`` wrote beside it, :func:`verify_published`) and
    pair it with its published manifest when that matches the attested digest.

    A SLSA provenance is verified like a verdict (a bad one is rejected) but is not a claim: it is the
    same rebuild as the verdict signed beside it, which is what is counted (None).
    """
    attestation = verify_published(path, trust)
    if isinstance(attestation, VerifiedProvenance):
        return None
    manifest_path = published_manifest(path)
    manifest: Manifest | None = None
    note: str | None = None
    if not manifest_path.is_file():
        note = f"no manifest published beside {path.name}: the differing files are unknown"
    elif sha256_file(manifest_path) != attestation.manifest_sha256:
        note = f"{manifest_path} is not the attested manifest (sha256 differs); ignored"
    else:
        manifest = load_manifest(manifest_path)
    return claim_of(attestation, origin=str(path), manifest=manifest, note=note, location=path.resolve())


def claim_of(
    attestation: VerifiedAttestation,
    *,
    origin: str,
    manifest: Manifest | None = None,
    note: str | None = None,
    location: Path | None = None,
) -> Claim:
    """The claim a verified verdict makes (``peers`` and the status site build theirs here). ``manifest``
    is the attested manifest when it was published (its sha256 checked by the caller), else ``note``
    says why the differing files cannot be known."""
    predicate = attestation.predicate
    return Claim(
        origin=origin,
        signer=attestation.signer,
        version=predicate.version,
        profile=predicate.recipe.profile,
        tree_sha256=attestation.tree_sha256,
        manifest=manifest,
        note=note,
        rebuild_sha256=predicate.build.rebuild_sha256,
        location=location,
        job=predicate.rebuilder.job,
        machine=predicate.rebuilder.machine,
    )


def load_claims(paths: Iterable[Path], trust: TrustPolicy) -> tuple[list[Claim], list[Rejected]]:
    """Verify every attestation; one that fails is a :class:`Rejected` entry, not the end of the run.
    Provenance statements, once verified, are left out (see :func:`load_claim`)."""
    claims, rejected = [], []
    for path in paths:
        try:
            claim = load_claim(path, trust)
        except VerifyError as error:
            rejected.append(Rejected(str(path), error.message))
            continue
        if claim is not None:
            claims.append(claim)
    return claims, rejected


PROVENANCE_SUFFIXES: Final = (".provenance.intoto.json", ".provenance.sigstore.json")
"""How ``attest`` names the SLSA provenance beside a verdict (``signing.provenance_path_for``)."""


def attestations_in(directory: Path) -> list[Path]:
    """Every ``*.intoto.json`` and ``*.sigstore.json`` verdict under ``directory``, in a stable order.

    The SLSA provenance ``attest`` writes beside each verdict (``*.provenance.intoto.json``) is left out:
    it is the same rebuild, not another rebuilder's claim.
    """
    if not directory.is_dir():
        raise AttestationError(f"{directory} is not a directory")
    found = {*directory.rglob("*.intoto.json"), *directory.rglob("*.sigstore.json")}
    return sorted(path for path in found if not path.name.endswith(PROVENANCE_SUFFIXES))


def our_claim(result_dir: Path) -> Claim:
    """Our own rebuild result (unsigned: it is the local evidence) as the reference claim.

    It carries what recognises attestations of this very result: the sha256 of ``rebuild.json`` (which
    an attestation records as ``build.rebuild_sha256``) and the directory's resolved location.
    """
    result = open_finished(result_dir)
    record, record_bytes = result.read_record_with_bytes()
    manifest = load_manifest(result.manifest_path)
    return Claim(
        str(result_dir),
        OURS,
        str(record.version),
        record.profile,
        tree_digest(manifest),
        manifest,
        rebuild_sha256=hashlib.sha256(record_bytes).hexdigest(),
        location=result_dir.resolve(),
    )
