"""How the second build of ``--twice`` gets its PGO profile, and the record's account of both profiles.

The rebuild stage's knowledge of PGO trainings: which trainings are deterministic, when a profile is trained
again and when the baseline's is pinned. The chain asks :func:`second_training` after the baseline, runs
the second build as it says, and records :func:`two_trainings`.
"""

from __future__ import annotations

from dataclasses import dataclass

from verify.rebuild.core import PinnedPgoProfile, RebuildResult, check_pgo_profile
from verify.result import TwoTrainings
from verify.result.record import TrainingMode
from verify.source.models import FetchedFile


@dataclass(frozen=True)
class SecondTraining:
    """Where the second build of ``--twice`` gets its PGO profile: its own training (``profile`` None) or a
    pinned profile; ``mode`` is None for a build without PGO."""

    mode: TrainingMode | None
    why: str
    profile: PinnedPgoProfile | None


def second_training(
    trained: PinnedPgoProfile | None,
    *,
    pinned: PinnedPgoProfile | None,
    reuse_profile: bool,
    deterministic: bool,
    profile: str,
) -> SecondTraining:
    """Decide how the second build of ``--twice`` gets its profile (``trained``: the one the baseline trained;
    ``pinned``: ``--pgo-profile``; ``reuse_profile``: ``--reuse-profile``).

    A profile whose training is deterministic (cpython-verify's trainer) is trained again, from the second
    build's own instrumented build: nothing is shared but the recipe, the verified tarball and the pinned
    rootfs, which is what two rebuilders who never met have. ``--reuse-profile`` pins the baseline's
    profile instead. Any other training (CPython's own ``--pgo`` task) is not deterministic: two trainings
    write different counters, so the second build reuses the baseline's profile, pinned by its digest,
    and --twice measures the build rather than the training's randomness.
    """
    if pinned is not None:
        return SecondTraining("one pinned profile", "both builds used the profile given with --pgo-profile", pinned)
    if trained is None:
        return SecondTraining(None, "no PGO profile", None)
    if reuse_profile:
        why = "--reuse-profile: the second build reused the profile the baseline trained, pinned by its digest"
        return SecondTraining("the baseline's profile reused", why, trained)
    if deterministic:
        why = (
            "the profile trains with cpython-verify's deterministic trainer, so the second build trained its own "
            "from its own instrumented build, sharing only the recipe, the verified tarball and the pinned rootfs"
        )
        return SecondTraining("two independent trainings", why, None)
    why = (
        f"profile {profile!r} trains with CPython's own task, which is not deterministic (two trainings "
        "write different counters: docs/reproducibility.md), so the second build reused the baseline's "
        "profile, pinned by its digest"
    )
    return SecondTraining("the baseline's profile reused", why, trained)


def two_trainings(plan: SecondTraining, first: RebuildResult, second: RebuildResult) -> TwoTrainings | None:
    """The record's account of both builds' profiles (None when either has none)."""
    ours, theirs = first.record.pgo_profile, second.record.pgo_profile
    if plan.mode is None or ours is None or theirs is None:
        return None
    return TwoTrainings(
        mode=plan.mode,
        why=plan.why,
        first_sha256=ours.sha256,
        second_sha256=theirs.sha256,
        first_counters_sha256=ours.counters_sha256,
        second_counters_sha256=theirs.counters_sha256,
        counters=ours.counters,
    )


def trained_profile(result: RebuildResult) -> PinnedPgoProfile | None:
    """The ``pgo-profile.tar`` a build trained, pinned by the digest its record gives and read
    (:func:`~verify.rebuild.core.check_pgo_profile`, for the configure flags the build recorded); None when
    the build trained none."""
    ref = result.record.pgo_profile
    if ref is None or ref.origin != "trained in this build":
        return None
    path = result.result.pgo_profile_path
    trained = FetchedFile(path.name, path, ref.sha256, path.stat().st_size, f"trained by the baseline build ({path})")
    return check_pgo_profile(trained, result.record.inputs.recipe.configure)
