"""The chain: source -> rebuild -> compare -> attest. The only module that knows the order.

Commands parse options into a typed request (:class:`RebuildRequest`, :class:`CheckRequest`), call
:func:`run_rebuild` or :func:`run_check`, and render the typed outcome. Every verdict in an outcome is
read from the evidence that produced it: the source verdict says whether the source verified, the
reproducibility check whether the two builds agree, each comparison whether a peer is identical.

Where each stage lives:

* source: :func:`verify.assembly.verify_release_source` (wires :mod:`verify.pipeline`'s source stage to
  :mod:`verify.sources` and :mod:`verify.signatures`);
* environment and sandbox: :mod:`verify.environments`;
* rebuild: :func:`verify.rebuild.core.rebuild`, ``--twice``/``--bisect``: :mod:`verify.rebuild.variations`;
* result directory and record: :mod:`verify.result`;
* compare: :mod:`verify.compare.engine`;
* attest: :func:`verify.attest.signing.sign_result`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from verify.assembly import SourceOptions, require_verified, verify_release_source
from verify.attest.signing import OfflineKeySigner, SignedAttestation, SigstoreSigning
from verify.compare.model import Comparison
from verify.errors import OperationalError
from verify.fsutil import make_result_directory, replace_directory, write_json_atomic
from verify.models import FetchedFile, SourceVerdict
from verify.rebuild.core import BuildFailed, ProgressSink, RebuildResult
from verify.releases import Version
from verify.result import RebuildRecord, ReproducibilityCheck, ResultDir

# What differs between two rebuilders' machines and must not change a byte: the clock, the CPU count,
# and the host's name, locale and time zone (the sandbox pins the last three; varying them shows the
# pins hold). Not varied by default: build_path and umask, which are pinned because they are known to
# change outputs (sysconfigdata; __pycache__ modes), and user.
CHECK_VARIATIONS = frozenset({"time", "cpus", "hostname", "locale", "timezone"})


class RebuildObserver(Protocol):
    """Told about each build as the chain runs it (the CLI shows progress; tests may record it)."""

    def build_started(self, label: str) -> ProgressSink:
        """A build labelled ``label`` begins; the returned sink hears its phases."""

    def build_finished(self, label: str, result: RebuildResult) -> None:
        """The build ended (``result.from_cache`` says whether it was a cache hit)."""

    def build_failed(self, label: str, failure: BuildFailed) -> None:
        """A phase of the build failed; the failure carries the log tail."""


class _Quiet:
    def phase_started(self, phase: str) -> None:
        pass

    def phase_finished(self, phase: str, seconds: float) -> None:
        pass

    def build_started(self, label: str) -> ProgressSink:
        return self

    def build_finished(self, label: str, result: RebuildResult) -> None:
        pass

    def build_failed(self, label: str, failure: BuildFailed) -> None:
        pass


@dataclass(frozen=True)
class RebuildRequest:
    """One release to rebuild: where its source comes from, how to build it, and where the result goes."""

    version: Version
    source: SourceOptions
    profile: str = "default"
    runner: str = "bwrap"
    rootfs: Path | None = None
    """A rootfs tarball to use as the recipe's environment instead of building it."""
    twice: bool = False
    variations: frozenset[str] = frozenset()
    """What the second build of ``twice`` varies."""
    bisect: bool = False
    pgo_profile: FetchedFile | None = None
    """A digest-pinned ``pgo-profile.tar`` replacing the training run."""
    force: bool = False
    jobs: int | None = None
    out_dir: Path | None = None
    rebuild_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.bisect and not self.twice:
            raise OperationalError("--bisect needs --twice")

    @property
    def result_path(self) -> Path:
        """Where the result directory is published."""
        return self.out_dir or Path(f"rebuild-{self.version}-{self.profile}")


@dataclass(frozen=True)
class RebuildOutcome:
    """A published rebuild: the source verdict it rests on, the baseline build, and the result directory."""

    source: SourceVerdict
    baseline: RebuildResult
    result: ResultDir
    record: RebuildRecord
    """The published record: the baseline's, with the ``--twice`` comparison when there was one."""
    measured_on: tuple[str, ...] = ()
    """The releases the recipe says its profile was measured on (empty: an unmeasured profile)."""
    recipe_status: str = ""
    """One line saying so, for reports (:meth:`verify.recipes.BuildProfile.status`)."""

    @property
    def reproducibility(self) -> ReproducibilityCheck | None:
        """The ``--twice`` comparison, if one ran."""
        return self.record.reproducibility


@dataclass(frozen=True)
class CheckRequest:
    """``check``: rebuild twice, compare with peers, and attest when a signer is given."""

    rebuild: RebuildRequest
    peers: tuple[Path, ...] = ()
    signer: OfflineKeySigner | SigstoreSigning | None = None
    rebuilder_id: str = ""
    create_key: bool = False
    """With an offline signer whose key file does not exist: create a new Ed25519 key there first."""


@dataclass(frozen=True)
class PeerOutcome:
    """Our result compared with one peer's or published build."""

    location: Path
    comparison: Comparison
    report: Path


@dataclass(frozen=True)
class AttestationOutcome:
    """The attestation ``check`` signed, or why it signed none."""

    signed: SignedAttestation | None
    why_not: str | None = None
    new_public_key: Path | None = None


@dataclass(frozen=True)
class CheckOutcome:
    """Everything ``check`` established about one release."""

    rebuild: RebuildOutcome
    peers: tuple[PeerOutcome, ...] = ()
    attestation: AttestationOutcome = field(default_factory=lambda: AttestationOutcome(None, "not attested"))

    @property
    def source_verified(self) -> bool:
        """What the source verdict says (the rebuild refuses unverified source, so it is True here)."""
        return self.rebuild.source.verified

    @property
    def reproducible_or_explained(self) -> bool:
        """True when the two rebuilds agree, identically or only as the variations explain."""
        check = self.rebuild.reproducibility
        return check is not None and check.explained

    @property
    def ok(self) -> bool:
        """The check passes: verified source, agreeing rebuilds, every peer identical."""
        return (
            self.source_verified
            and self.reproducible_or_explained
            and all(peer.comparison.identical for peer in self.peers)
        )


def run_rebuild(request: RebuildRequest, observer: RebuildObserver | None = None) -> RebuildOutcome:
    """Verify the source, build (twice with ``request.twice``), and publish the result directory."""
    from verify import progress
    from verify.environments import get_runner, image_for
    from verify.environments.lock import load_lock
    from verify.rebuild.cache import RebuildCache, rebuild_cache_dir
    from verify.rebuild.core import check_pgo_profile, rebuild
    from verify.rebuild.settings import BuildSettings
    from verify.rebuild.variations import bisect_variations, compare_builds
    from verify.recipes import load_recipe
    from verify.report.rebuild import twice_report_html

    watcher: RebuildObserver = observer or _Quiet()
    recipe = load_recipe(request.version.series, request.source.recipes_dir)
    if recipe.build is None:
        raise OperationalError(f"the CPython {recipe.series} recipe has no [build] section")
    if request.profile not in recipe.build.profiles:
        known = ", ".join(sorted(recipe.build.profiles))
        raise OperationalError(f"the CPython {recipe.series} recipe has no profile {request.profile!r}; known: {known}")
    configure = recipe.build.profiles[request.profile].configure
    if request.pgo_profile is not None:
        # What the profile was trained on is compared as each fact becomes known, always before the
        # first build step: release, flags and environment now; the tarball once it is downloaded and
        # verified; the rootfs digest from the lock now, or from --rootfs once it is hashed.
        check_pgo_profile(
            request.pgo_profile,
            configure,
            version=str(request.version),
            environment=recipe.build.environment,
            rootfs_sha256=None if request.rootfs else load_lock(recipe.build.environment).rootfs_sha256,
        )
    runner = get_runner(request.runner)
    runner.check_available()
    # Every argument is judged before the first download or environment build.
    check_out_dir(request.result_path)
    verdict = verify_release_source(request.version, request.source)
    tarball = require_verified(verdict)
    if request.pgo_profile is not None:
        check_pgo_profile(request.pgo_profile, configure, source_sha256=tarball.sha256)
    with progress.phase(f"environment {recipe.build.environment}: rootfs (built if not cached)"):
        image = image_for(recipe.build.environment, cache_dir=request.source.cache_dir, rootfs=request.rootfs)
    # rebuild() compares every fact again, the rootfs digest of --rootfs included, before its first step.
    cache = RebuildCache(rebuild_cache_dir(request.source.cache_dir, request.rebuild_cache))
    settings = BuildSettings() if request.jobs is None else replace(BuildSettings(), jobs=request.jobs)

    def build(chosen: frozenset[str], pgo_profile: FetchedFile | None = request.pgo_profile) -> RebuildResult:
        label = f"{request.version} {request.profile}" + (f" [{','.join(sorted(chosen))}]" if chosen else "")
        sink = watcher.build_started(label)
        try:
            result = rebuild(
                tarball,
                verdict,
                recipe,
                request.profile,
                image,
                runner,
                settings,
                chosen,
                None,
                cache,
                force=request.force,
                progress=sink,
                pgo_profile=pgo_profile,
            )
        except BuildFailed as failure:
            watcher.build_failed(label, failure)
            raise
        watcher.build_finished(label, result)
        return result

    baseline = build(frozenset())
    record = baseline.record
    compare_html = None
    if request.twice:
        # A PGO baseline that trained its own profile pins it for the other builds: two independent
        # training runs give different .gcda counters, so without this --twice would measure the
        # training's nondeterminism rather than the build's (docs/reproducibility.md). The profile is
        # an input like the tarball: its digest is in both records and in the cache key.
        trained = trained_profile(baseline)
        pinned = request.pgo_profile or trained

        def build_with_pinned_profile(chosen: frozenset[str]) -> RebuildResult:
            return build(chosen, pinned)

        varied = build_with_pinned_profile(request.variations)
        twice = compare_builds(baseline, varied, request.variations, recipe.build, request.profile)
        if request.bisect and not twice.check.reproducible:
            twice = replace(twice, check=bisect_variations(build_with_pinned_profile, baseline, twice.check))
        record = record.model_copy(update={"reproducibility": twice.check})
        # The same comparison, for people: rendered from the value just computed (no tree hashed again).
        compare_html = twice_report_html(twice, version=str(request.version), profile=request.profile)
    published = publish(baseline, record, request.result_path, compare_html=compare_html)
    chosen_profile = recipe.build.profiles[request.profile]
    return RebuildOutcome(
        source=verdict,
        baseline=baseline,
        result=published,
        record=record,
        measured_on=chosen_profile.measured,
        recipe_status=chosen_profile.status(recipe.series),
    )


def trained_profile(result: RebuildResult) -> FetchedFile | None:
    """The ``pgo-profile.tar`` a build trained, pinned by the digest its record gives; None otherwise."""
    ref = result.record.pgo_profile
    if ref is None or ref.origin != "trained in this build":
        return None
    path = result.result.pgo_profile_path
    return FetchedFile(path.name, path, ref.sha256, path.stat().st_size, f"trained by the baseline build ({path})")


def run_check(
    request: CheckRequest,
    observer: RebuildObserver | None = None,
    *,
    compare: Callable[[Path, Path], Comparison] | None = None,
) -> CheckOutcome:
    """The whole chain for one release: verify, rebuild twice, compare with peers, attest; write check.json."""
    from verify.compare import compare_paths
    from verify.report.check import check_to_json
    from verify.report.compare import comparison_to_dict

    rebuilt = run_rebuild(replace(request.rebuild, twice=True), observer)
    result = rebuilt.result
    peers = []
    for peer in request.peers:
        comparison = (compare or compare_paths)(result.path, peer)
        report = result.path / f"compare-{peer.name or 'peer'}.json"
        write_json_atomic(report, comparison_to_dict(comparison))
        peers.append(PeerOutcome(peer, comparison, report))
    attestation = _attest(request, result)
    outcome = CheckOutcome(rebuilt, tuple(peers), attestation)
    write_json_atomic(result.check_path, check_to_json(outcome))
    return outcome


def _attest(request: CheckRequest, result: ResultDir) -> AttestationOutcome:
    from verify.attest.inputs import RebuildInputs
    from verify.attest.signing import generate_private_key, sign_result

    signer = request.signer
    if signer is None:
        return AttestationOutcome(None, "no --key or --sigstore given: the result is not attested")
    new_public_key = None
    if isinstance(signer, OfflineKeySigner) and request.create_key and not signer.key_path.exists():
        signer.key_path.parent.mkdir(parents=True, exist_ok=True)
        new_public_key = generate_private_key(signer.key_path)
    signed = sign_result(
        RebuildInputs.from_result_dir(result.path),
        signer,
        rebuilder_id=request.rebuilder_id,
        out=result.attestation_path(sigstore=signer.sigstore),
    )
    return AttestationOutcome(signed, None, new_public_key)


def check_out_dir(out_dir: Path) -> None:
    """Refuse ``--out`` when it exists and is neither an earlier result nor an empty directory."""
    occupied = out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir()))
    if occupied and not ResultDir.looks_like(out_dir):
        raise OperationalError(f"--out {out_dir} exists and is not a cpython-verify result; not replacing it")


def publish(
    baseline: RebuildResult, record: RebuildRecord, out_dir: Path, *, compare_html: str | None = None
) -> ResultDir:
    """Assemble the result directory: the baseline's files (hard links into the cache), the record and,
    after ``--twice``, ``compare_html`` (the comparison's HTML report) as ``compare.html``.

    Built beside ``out_dir`` and renamed into place; an existing directory is replaced only if it is
    an earlier result (has a record), never an unrelated directory.
    """
    check_out_dir(out_dir)
    if out_dir.exists() and not ResultDir.looks_like(out_dir):
        out_dir.rmdir()
    staging = make_result_directory(out_dir.parent, f".{out_dir.name}.")
    try:
        staged = ResultDir(staging)
        for name in ResultDir.PUBLISHED:
            source = baseline.result.path / name
            if source.is_dir():
                shutil.copytree(source, staging / name, symlinks=True, copy_function=_link_or_copy)
            elif source.exists():
                shutil.copy2(source, staging / name)
        staged.write_record(record)
        if compare_html is not None:
            staged.write_compare_html(compare_html)
        _make_readable(staged)
        replace_directory(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ResultDir(out_dir)


def _make_readable(result: ResultDir) -> None:
    """Logs and a trained profile are written under whatever umask the build ran with (a root shell's
    may be 077); a result is read by the next, unprivileged step, so they are made world-readable.
    The install tree is left as built: its modes are part of the output the manifest records."""
    if result.pgo_profile_path.is_file():
        result.pgo_profile_path.chmod(0o644)
    if not result.logs.is_dir():
        return
    result.logs.chmod(0o755)
    for path in result.logs.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
