"""The chain: source -> rebuild -> compare -> attest. The only module that knows the order.

Commands parse options into a typed request (:class:`RebuildRequest`, :class:`CheckRequest`), call
:func:`run_rebuild` or :func:`run_check`, and render the typed outcome. Every verdict in an outcome is
read from the evidence that produced it: the source verdict says whether the source verified, the
reproducibility check whether the two builds agree, each comparison whether a peer is identical.

Where each stage lives:

* source: :func:`verify.source.assembly.verify_release_source` (wires :mod:`verify.source.checks`'s source stage to
  :mod:`verify.source.locations` and :mod:`verify.source.signatures`);
* environment and sandbox: :mod:`verify.environments`;
* rebuild: :func:`verify.rebuild.core.rebuild`; ``--twice``/``--bisect``: :mod:`verify.rebuild.variations` chooses
  the variations, :mod:`verify.rebuild.twice_training` how the second build gets its PGO profile,
  :mod:`verify.compare.twice` compares the builds (the rebuild stage never imports compare);
* result directory and record: :mod:`verify.result`; ``--out`` is judged and the result published by
  :mod:`verify.result.publish`;
* compare: :mod:`verify.compare.engine`;
* attest: :func:`verify.attest.signing.attest_published` (``check``), :func:`verify.attest.signing.sign_result`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from verify.attest.signing import OfflineKeySigner, SigstoreSigning, attest_published
from verify.common.errors import OperationalError
from verify.common.fsutil import write_json_atomic
from verify.common.limits import PUBLISH_LOCK_TIMEOUT_SECONDS
from verify.common.locking import TargetLock, directory_lock, lock_timeout
from verify.compare.model import Comparison

# Re-exported: the chain's outcomes are defined below the renderer (report/), which must not import the chain.
from verify.outcomes import AttestationOutcome as AttestationOutcome
from verify.outcomes import CheckOutcome as CheckOutcome
from verify.outcomes import PeerOutcome as PeerOutcome
from verify.outcomes import RebuildOutcome as RebuildOutcome
from verify.rebuild.core import BuildFailed, PinnedPgoProfile, ProgressSink, RebuildResult, check_pgo_profile
from verify.rebuild.twice_training import SecondTraining, second_training, trained_profile, two_trainings
from verify.result.publish import check_out_dir, publish
from verify.source.assembly import SourceOptions, require_verified, verify_release_source
from verify.source.models import FetchedFile
from verify.source.releases import Version

if TYPE_CHECKING:
    from verify.compare.twice import TwiceComparison
    from verify.source.recipes import BuildSpec

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
    reuse_profile: bool = False
    """With ``twice``: the second build reuses the profile the baseline trained even when the profile's
    training is deterministic (by default such a profile is trained again, independently)."""
    force: bool = False
    jobs: int | None = None
    out_dir: Path | None = None
    rebuild_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.bisect and not self.twice:
            raise OperationalError("--bisect needs --twice")
        if self.reuse_profile and not self.twice:
            raise OperationalError("--reuse-profile needs --twice")

    @property
    def result_path(self) -> Path:
        """Where the result directory is published."""
        return self.out_dir or Path(f"rebuild-{self.version}-{self.profile}")


@dataclass(frozen=True)
class CheckRequest:
    """``check``: rebuild twice, compare with peers, and attest when a signer is given."""

    rebuild: RebuildRequest
    peers: tuple[Path, ...] = ()
    signer: OfflineKeySigner | SigstoreSigning | None = None
    rebuilder_id: str = ""
    create_key: bool = False
    """With an offline signer whose key file does not exist: create a new Ed25519 key there first."""


def run_rebuild(
    request: RebuildRequest, observer: RebuildObserver | None = None, *, hold_result: TargetLock | None = None
) -> RebuildOutcome:
    """Verify the source, build (twice with ``request.twice``), and publish the result directory.

    ``hold_result``: the result directory's lock, taken just before publishing and left held for the
    caller (``check`` adds its files to the result before another run may replace it).
    """
    from verify.common import progress
    from verify.environments import get_runner, image_for
    from verify.environments.lock import load_lock
    from verify.rebuild.cache import RebuildCache, rebuild_cache_dir
    from verify.rebuild.core import ChosenProfile, rebuild
    from verify.rebuild.settings import BuildSettings
    from verify.rebuild.variations import choose_variations
    from verify.report.rebuild import twice_report_html
    from verify.source.recipes import load_recipe

    watcher: RebuildObserver = observer or _Quiet()
    # Loaded once for the whole run: the source stage and every build are judged by these same bytes.
    recipe = load_recipe(request.version.series, request.source.recipes_dir)
    build_profile = ChosenProfile.of(recipe, request.profile)
    configure = build_profile.configure_flags
    # A variation the profile declares inapplicable is skipped (and said so), never "explained"; asking
    # only for skipped ones is refused before anything is built.
    applied, skipped = (
        choose_variations(build_profile.spec, request.variations, request.profile)
        if request.twice
        else (frozenset(), {})
    )
    pinned = None
    if request.pgo_profile is not None:
        # Read once. What it was trained on is compared as each fact becomes known, always before the
        # first build step: release, flags and environment now; the tarball once it is downloaded and
        # verified; the rootfs digest from the lock now, or from --rootfs once it is hashed (by rebuild()).
        pinned = check_pgo_profile(
            request.pgo_profile,
            configure,
            version=request.version,
            environment=build_profile.spec.environment,
            rootfs_sha256=None if request.rootfs else load_lock(build_profile.spec.environment).rootfs_sha256,
        )
    runner = get_runner(request.runner)
    runner.check_available()
    # Every argument is judged before the first download or environment build.
    check_out_dir(request.result_path)
    verdict = verify_release_source(request.version, request.source, recipe=recipe)
    tarball = require_verified(verdict)
    if pinned is not None:
        pinned.check(configure, source_sha256=tarball.sha256)
    with progress.phase(f"environment {build_profile.spec.environment}: rootfs (built if not cached)"):
        image = image_for(build_profile.spec.environment, cache_dir=request.source.cache_dir, rootfs=request.rootfs)
    # rebuild() compares every fact again, the rootfs digest of --rootfs included, before its first step.
    cache = RebuildCache(rebuild_cache_dir(request.source.cache_dir, request.rebuild_cache), on_wait=progress.note)
    settings = BuildSettings() if request.jobs is None else replace(BuildSettings(), jobs=request.jobs)

    def build(
        chosen: frozenset[str], pgo_profile: PinnedPgoProfile | None = pinned, independent_training: int = 1
    ) -> RebuildResult:
        label = f"{request.version} {request.profile}" + (f" [{','.join(sorted(chosen))}]" if chosen else "")
        sink = watcher.build_started(label)
        try:
            result = rebuild(
                tarball=tarball,
                verdict=verdict,
                build_profile=build_profile,
                image=image,
                runner=runner,
                cache=cache,
                settings=settings,
                variations=chosen,
                force=request.force,
                progress=sink,
                pgo_profile_tar=pgo_profile,
                independent_training=independent_training,
            )
        except BuildFailed as failure:
            watcher.build_failed(label, failure)
            raise
        watcher.build_finished(label, result)
        return result

    baseline = build(frozenset())
    record = baseline.record
    cache_notes = [*image.notes, *baseline.notes]
    compare_html = None
    if request.twice:
        plan = second_training(
            trained_profile(baseline),
            pinned=pinned,
            reuse_profile=request.reuse_profile,
            deterministic=build_profile.trains_deterministically,
            profile=request.profile,
        )
        twice, second_notes = build_twice(
            baseline,
            build,
            plan,
            build_profile.spec,
            applied,
            skipped=skipped,
            profile=request.profile,
            bisect=request.bisect,
        )
        cache_notes += second_notes
        record = record.model_copy(update={"reproducibility": twice.check})
        # The same comparison, for people: rendered from the value just computed (no tree hashed again).
        compare_html = twice_report_html(twice, version=request.version, profile=request.profile)
    if cache_notes:
        # The published record says what the cache met (an entry that failed its check, removed and
        # built again); the entry's own record does not, as the next run may meet nothing.
        record = record.model_copy(update={"cache_notes": tuple(cache_notes)})
    if hold_result is not None:
        hold_result.acquire()
    published = publish(baseline.result, record, request.result_path, compare_html=compare_html)
    return RebuildOutcome(
        source=verdict,
        baseline=baseline,
        result=published,
        record=record,
        measured_on=build_profile.profile.measured,
        recipe_status=build_profile.profile.status(recipe.series),
    )


SecondBuild = Callable[[frozenset[str], PinnedPgoProfile | None, int], RebuildResult]
"""Builds the second (or a bisecting) build of ``--twice``: variations, pinned profile, independent training number."""


def build_twice(
    baseline: RebuildResult,
    build: SecondBuild,
    plan: SecondTraining,
    spec: BuildSpec,
    variations: frozenset[str],
    *,
    skipped: Mapping[str, str],
    profile: str,
    bisect: bool = False,
) -> tuple[TwiceComparison, tuple[str, ...]]:
    """``--twice`` after its baseline: the second build (its profile as ``plan`` says), the comparison,
    the account of both profiles and, with ``bisect``, the culprits; with what the caches met on the way
    to the second build.

    ``variations`` are those the second build applies, ``skipped`` the requested ones the recipe declares
    inapplicable to ``profile``, with its reason."""
    from verify.compare.twice import bisect_variations, compare_builds

    def build_second(chosen: frozenset[str]) -> RebuildResult:
        return build(chosen, plan.profile, 2 if plan.mode == "two independent trainings" else 1)

    second = build_second(variations)
    twice = compare_builds(baseline, second, variations, spec, profile, skipped=skipped)
    trainings = two_trainings(plan, baseline, second)
    if trainings is not None:
        twice = replace(twice, check=twice.check.model_copy(update={"pgo_training": trainings}))
    if bisect and not twice.check.reproducible:
        twice = replace(twice, check=bisect_variations(build_second, baseline, twice.check))
    return twice, tuple(second.notes)


def run_check(
    request: CheckRequest,
    observer: RebuildObserver | None = None,
    *,
    compare: Callable[[Path, Path], Comparison] | None = None,
) -> CheckOutcome:
    """The whole chain for one release: verify, rebuild twice, compare with peers, attest; write check.json."""
    from verify.common import progress
    from verify.compare import compare_paths
    from verify.report.check import check_to_json
    from verify.report.compare import comparison_to_dict

    # From publication to check.json the result directory is held: another run replacing it (a second
    # check with the same --out) waits, so every file of the result comes from one run.
    held = directory_lock(
        request.rebuild.result_path,
        what=f"the result directory {request.rebuild.result_path}",
        timeout=lock_timeout(PUBLISH_LOCK_TIMEOUT_SECONDS),
        on_wait=progress.note,
    )
    try:
        rebuilt = run_rebuild(replace(request.rebuild, twice=True), observer, hold_result=held)
        result = rebuilt.result
        peers = []
        for peer in request.peers:
            comparison = (compare or compare_paths)(result.path, peer)
            report = result.path / f"compare-{peer.name or 'peer'}.json"
            write_json_atomic(report, comparison_to_dict(comparison))
            peers.append(PeerOutcome(peer, comparison, report))
        attestation = attest_published(
            result, request.signer, rebuilder_id=request.rebuilder_id, create_key=request.create_key
        )
        outcome = CheckOutcome(rebuilt, tuple(peers), attestation)
        write_json_atomic(result.check_path, check_to_json(outcome))
    finally:
        held.release()
    return outcome
