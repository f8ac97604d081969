"""The rebuild: verified source bytes -> configure, make, make install in a sandbox -> manifest.

:func:`rebuild` is orchestration only. Everything it touches from outside is passed in: the tarball
and its verdict, the recipe, the environment image, the runner, the settings and the cache. The
phases run as separate sandboxed commands so each has its own log, its own timing and a named
failure.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from pydantic import ValidationError

from verify.common import faults
from verify.common.errors import EXIT_ERROR, OperationalError, UnsafeArchive, VerificationFailed
from verify.common.fsutil import free_bytes, human_bytes, is_write_failure, sha256_file, tree_bytes, write_failure
from verify.common.jsonutil import loads_bounded
from verify.common.limits import PGO_TRAINING_MAX_BYTES
from verify.environments.interface import Bind, RootfsImage, Runner, SandboxSpec
from verify.environments.perturb import PROBE_SCRIPT, host_tool_versions, needs_probe, probe
from verify.rebuild.cache import RebuildCache, cache_key
from verify.rebuild.logs import DEFAULT_LOG_CAP, cap_log, log_tail
from verify.rebuild.outputs import write_manifest_for
from verify.rebuild.settings import BUILD_MOUNT, OUT_MOUNT, BuildSettings, apply_variations, canonical_variations
from verify.rebuild.training import TRAINER_RECORD_NAME, counters_digest, read_training_run
from verify.result import (
    BuildInputs,
    EnvironmentRef,
    PgoProfileRef,
    PgoTraining,
    PgoTrainingRun,
    RebuildRecord,
    RecipeRef,
    ResultDir,
    ResultDirError,
    SourceRef,
)
from verify.source.models import FetchedFile, SourceVerdict
from verify.source.recipes import BuildProfile, BuildSpec, Recipe
from verify.source.releases import Version
from verify.source.unpack import RefusedMember, extract_all_data, safe_unpack

LTO_RANDOM_SEED = "-frandom-seed=cpython-verify"
PGO_RUN_STAMP = "profile-run-stamp"
"""CPython's Makefile skips the instrumented build and the training run when this stamp exists."""
PGO_TRAINING_MEMBER = "cpython-verify-pgo.json"
"""The one member of a ``pgo-profile.tar`` that is not a ``.gcda`` file: what the profile was trained on."""
PGO_TRAINER_PATH = f"{BUILD_MOUNT}/cpython-verify-pgo-trainer.py"
"""Where a build finds cpython-verify's deterministic training task (``verify/rebuild/pgo_trainer.py``)
when its recipe profile names it in ``PROFILE_TASK``: beside, not in, the build directory, so every
variation of the build path runs the same command."""
PGO_TRAINER_RECORD_PATH = f"{BUILD_MOUNT}/{TRAINER_RECORD_NAME}"
"""Where the trainer writes the record of what it ran: beside itself (:mod:`verify.rebuild.training`)."""
PHASES = ("configure", "make", "install", "manifest")
_READ_CHUNK = 1024 * 1024


class SourceNotVerified(VerificationFailed):
    """The source was not verified, or its bytes changed after verification: nothing is unpacked or built."""


class BuildFailed(OperationalError):
    """A build phase exited non-zero. Carries the phase, the log and its last lines."""

    def __init__(self, phase: str, returncode: int, log_path: Path, tail: Sequence[str], *, note: str = "") -> None:
        super().__init__(f"the {phase} phase failed (exit status {returncode}){note}; full log: {log_path}")
        self.phase = phase
        self.returncode = returncode
        self.log_path = log_path
        self.tail = tuple(tail)


class PgoTrainingFailed(BuildFailed):
    """The PGO training did not prove it trained: the trainer's record is missing, or says it refused, or a
    test failed or errored. Raised after the make phase whatever make's exit status was (3.8 to 3.11's
    Makefile ignores the training's)."""

    def __init__(self, problems: Sequence[str], log_path: Path, tail: Sequence[str], record_path: Path | None) -> None:
        super().__init__("pgo-training", 0, log_path, tail)
        self.problems = tuple(problems)
        self.record_path = record_path
        where = f"training record: {record_path}; " if record_path is not None else ""
        self.args = (
            " ".join(f"the PGO training did not train: {'; '.join(problems)}; {where}full log: {log_path}".split()),
        )


class UnusablePgoProfile(OperationalError):
    """A pinned PGO profile that does not fit this build: trained for another release, other configure
    flags or another environment, or with no (or an unreadable) training record. Refused, exit 2."""


class PgoProfileNotPinned(SourceNotVerified):
    """A PGO profile whose bytes are not its pinned digest. An argument the rebuild refuses (exit 2),
    like every other unusable profile, not a verdict about the source."""

    exit_code = EXIT_ERROR


class UnsafePgoProfile(UnsafeArchive):
    """A PGO profile archive with a member that is not a ``.gcda`` file at a relative path (or the
    training record). Refused before anything is unpacked, exit 2 like every other unusable profile."""

    exit_code = EXIT_ERROR


class ProgressSink(Protocol):
    """Told when each phase starts and ends (the CLI shows it; tests record it)."""

    def phase_started(self, phase: str) -> None:
        """``phase`` (one of :data:`PHASES`) has begun."""

    def phase_finished(self, phase: str, seconds: float) -> None:
        """``phase`` ended successfully after ``seconds``."""


class _Silent:
    def phase_started(self, phase: str) -> None:
        pass

    def phase_finished(self, phase: str, seconds: float) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ChosenProfile:
    """A recipe and the build profile chosen from it, checked once where it is chosen (:meth:`of`)."""

    recipe: Recipe
    spec: BuildSpec
    """The recipe's ``[build]`` section."""
    profile: BuildProfile

    @classmethod
    def of(cls, recipe: Recipe, profile_name: str) -> ChosenProfile:
        """The recipe's profile ``profile_name``; one line (exit 2) when the recipe has no such profile."""
        if recipe.build is None:
            raise OperationalError(f"the CPython {recipe.series} recipe has no [build] section")
        if profile_name not in recipe.build.profiles:
            known = ", ".join(sorted(recipe.build.profiles))
            raise OperationalError(
                f"the CPython {recipe.series} recipe has no profile {profile_name!r}; known: {known}"
            )
        return cls(recipe, recipe.build, recipe.build.profiles[profile_name])

    @property
    def name(self) -> str:
        """The profile's name (a key of the recipe's ``[build.profiles]``)."""
        return self.profile.name

    @property
    def configure_flags(self) -> tuple[str, ...]:
        """The profile's configure flags."""
        return self.profile.configure

    @property
    def trains_deterministically(self) -> bool:
        """Whether the profile's PGO training runs cpython-verify's deterministic trainer (:func:`runs_pgo_trainer`)."""
        return runs_pgo_trainer(self.configure_flags)


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """A finished rebuild: its result directory in the cache and the record it holds."""

    result: ResultDir
    cache_key: str
    from_cache: bool
    record: RebuildRecord
    notes: tuple[str, ...] = ()
    """What the cache met on the way (a damaged entry removed and built again): the result's ``cache_notes``."""

    @property
    def result_dir(self) -> Path:
        """The cache entry's directory."""
        return self.result.path


def rebuild(
    *,
    tarball: FetchedFile,
    verdict: SourceVerdict,
    build_profile: ChosenProfile,
    image: RootfsImage,
    runner: Runner,
    cache: RebuildCache,
    settings: BuildSettings | None = None,
    variations: frozenset[str] = frozenset(),
    force: bool = False,
    progress: ProgressSink | None = None,
    log_cap: int = DEFAULT_LOG_CAP,
    failed_logs_dir: Path | None = None,
    pgo_profile_tar: PinnedPgoProfile | None = None,
    independent_training: int = 1,
) -> RebuildResult:
    """Rebuild a verified CPython source tarball and return its result directory (cached by inputs).

    ``verdict`` is the source stage's verdict; nothing is unpacked unless it says verified, names the
    same sha256 as ``tarball``, and the file still has that sha256 as it is copied. ``build_profile`` is the
    recipe and its build profile (its configure flags). ``pgo_profile_tar`` is a digest-pinned tar of
    ``.gcda`` files (the ``pgo-profile.tar`` an earlier ``--enable-optimizations`` rebuild produced), read
    once by :func:`check_pgo_profile`: it replaces the training run, so every rebuilder optimises with the
    same profile, and what it was trained on is compared with this build's inputs before the first step.
    ``independent_training`` numbers the independent trainings of one set of inputs: a build that trains
    with a number above 1 has its own cache entry, so it trains afresh instead of returning the first
    training's result (``--twice`` with a deterministic training).
    A failed build's logs are kept in ``failed_logs_dir`` (default: ``failed/`` in the cache); staging
    happens inside the cache so a finished result is committed with one rename.
    """
    plan = _plan_build(
        tarball=tarball,
        verdict=verdict,
        build_profile=build_profile,
        image=image,
        settings=settings or BuildSettings(),
        variations=variations,
        pgo_profile_tar=pgo_profile_tar,
        independent_training=independent_training,
    )
    if not force:
        hit = _cached_result(cache, plan)
        if hit is not None:
            return hit
    build = _BuildRun(
        plan=plan,
        tarball=tarball,
        recipe=build_profile.recipe,
        image=image,
        runner=runner,
        cache=cache,
        sink=progress or _Silent(),
        log_cap=log_cap,
        failed_logs=failed_logs_dir or cache.root / "failed",
        pgo_profile_tar=pgo_profile_tar,
    )
    staging = cache.staging(plan.key)
    try:
        record = build.run(staging)
        entry = cache.commit(staging, plan.key)
    except BaseException as error:
        # Failure, full disk, Ctrl-C: nothing half-written stays under the key.
        written = tree_bytes(staging) if is_write_failure(error) else 0
        cache.discard(staging)
        if isinstance(error, OSError) and is_write_failure(error):
            what = (
                f"building CPython {plan.version} {build_profile.name}, "
                f"which had written {written >> 20} MiB when it failed"
            )
            raise write_failure(error, error.filename or staging, what) from None
        raise
    return RebuildResult(ResultDir(entry), plan.key, from_cache=False, record=record, notes=cache.notes_for(plan.key))


@dataclass(frozen=True, slots=True)
class _BuildPlan:
    """What :func:`rebuild` decided before its first step: every input of the cache key, each judged once."""

    version: Version
    verdict: SourceVerdict
    profile_name: str
    """The recipe's build profile (a key of ``[build.profiles]``)."""
    configure_flags: tuple[str, ...]
    """That profile's configure flags."""
    training: PgoTraining | None
    """What the profile's PGO training is (or, with a pinned ``.gcda`` tarball, was) trained on."""
    trainer: bytes | None
    """cpython-verify's deterministic training task, when the profile's ``PROFILE_TASK`` runs it."""
    variations: frozenset[str]
    settings: BuildSettings
    """The settings with the variations applied."""
    host_tools: dict[str, str]
    key: str


def _plan_build(
    *,
    tarball: FetchedFile,
    verdict: SourceVerdict,
    build_profile: ChosenProfile,
    image: RootfsImage,
    settings: BuildSettings,
    variations: frozenset[str],
    pgo_profile_tar: PinnedPgoProfile | None,
    independent_training: int,
) -> _BuildPlan:
    """Judge the verdict, the profile and a pinned ``.gcda`` tarball, and compute the cache key."""
    _require_verified(tarball, verdict)
    version, configure_flags = verdict.version, build_profile.configure_flags
    training = pgo_training(version, build_profile, tarball, image) if _uses_pgo(configure_flags) else None
    if pgo_profile_tar is not None:
        # Judged before the cache, the staging area or any build step: a profile trained for another
        # build must cost nothing. Its bytes and record were judged when it was read; the bytes are
        # hashed again as they are copied in (make phase).
        training = pgo_profile_tar.check(
            configure_flags,
            version=version,
            environment=image.name,
            source_sha256=tarball.sha256,
            rootfs_sha256=image.sha256,
        )
    trainer = pgo_trainer_for(configure_flags)
    variations = canonical_variations(variations)
    effective = apply_variations(settings, variations)
    build_section: dict[str, Any] = {
        "environment": build_profile.spec.environment,
        "profile": build_profile.name,
        "configure": list(configure_flags),
        "pgo_profile_sha256": pgo_profile_tar.sha256 if pgo_profile_tar else None,
    }
    if training is not None and pgo_profile_tar is None and independent_training > 1:
        build_section["independent_training"] = independent_training
    # The host tools a variation uses (libfaketime, setarch, disorderfs) are not in the rootfs: their
    # versions are recorded with the settings instead, and a missing one stops the build before it starts.
    host_tools = _host_tools_record(effective)
    if trainer is not None:
        # The trainer decides the profile, so its digest is an input like the host tools' versions.
        host_tools["pgo_trainer_sha256"] = hashlib.sha256(trainer).hexdigest()
    key = cache_key(
        source_sha256=tarball.sha256,
        build_section=build_section,
        environment_sha256=image.sha256,
        settings={**effective.to_json(), **host_tools},
        variations=variations,
    )
    return _BuildPlan(
        version, verdict, build_profile.name, configure_flags, training, trainer, variations, effective, host_tools, key
    )


def _cached_result(cache: RebuildCache, plan: _BuildPlan) -> RebuildResult | None:
    """The cached result of these inputs, unless there is none or it cannot be reused as it is."""
    hit = cache.lookup(plan.key)
    if hit is None:
        return None
    try:
        cached = ResultDir(hit)
        cached_record = cached.read_record()
    except ResultDirError:
        return None  # an entry an older cpython-verify wrote, or a damaged one: build again and replace it
    # A profile trained before profiles carried their training record (or, for the trainer's profiles,
    # the record of the training run) cannot be reused by anyone (check_pgo_profile refuses it): such an
    # entry is built again like an old one.
    if plan.training is not None and not _proves_its_training(cached_record, plan.trainer is not None):
        return None
    return RebuildResult(cached, plan.key, from_cache=True, record=cached_record, notes=cache.notes_for(plan.key))


@dataclass(slots=True)
class _BuildRun:
    """One build in a staging directory: unpack, run the phases in the sandbox, write manifest and record."""

    plan: _BuildPlan
    tarball: FetchedFile
    recipe: Recipe
    image: RootfsImage
    runner: Runner
    cache: RebuildCache
    sink: ProgressSink
    log_cap: int
    failed_logs: Path
    pgo_profile_tar: PinnedPgoProfile | None
    timings: dict[str, float] = field(default_factory=dict)
    profile_record: PgoProfileRef | None = None

    def run(self, staging: Path) -> RebuildRecord:
        """Build into ``staging`` and return the record written there."""
        started_at = _utc_now()
        logs = staging / "logs"
        logs.mkdir()
        build_host, source_host, settings = self._unpack(staging)
        out_host = staging / "out"
        out_host.mkdir()
        spec = sandbox_spec(
            settings, (Bind(build_host, BUILD_MOUNT, writable=True), Bind(out_host, OUT_MOUNT, writable=True))
        )
        commands = phase_commands(self.plan.configure_flags, settings)
        if needs_probe(spec):
            self._probe(spec, logs)
            commands = [("probe", ["/bin/sh", "-c", PROBE_SCRIPT]), *commands]
        for phase, command in commands:
            if phase != "probe":
                self._run_phase(phase, command, spec, staging, build_host, source_host, settings)
        return self._record(staging, build_host, out_host, settings, commands, started_at)

    def _unpack(self, staging: Path) -> tuple[Path, Path, BuildSettings]:
        """Copy the verified bytes, unpack them where the build finds them, and place the trainer beside them."""
        settings = self.plan.settings
        private_copy = staging / "source" / self.tarball.name
        _copy_verified_bytes(self.tarball, private_copy)
        build_host = staging / "build"
        source_host = build_host / PurePosixPath(settings.build_dir).relative_to(BUILD_MOUNT)
        newest_mtime = unpack_release(private_copy, source_host)
        private_copy.unlink()
        if self.plan.trainer is not None:
            (build_host / PurePosixPath(PGO_TRAINER_PATH).relative_to(BUILD_MOUNT)).write_bytes(self.plan.trainer)
        if settings.source_date_epoch is None:
            settings = replace(settings, source_date_epoch=newest_mtime)
        return build_host, source_host, settings

    def _probe(self, spec: SandboxSpec, logs: Path) -> None:
        """Prove, inside this very sandbox, that each host-applied variation is in effect (a preload that
        failed to load or a personality lost on the way would otherwise be silent)."""
        started = time.monotonic()
        report = probe(self.runner, self.image, spec, logs / "variations-probe.log")
        with (logs / "variations-probe.log").open("a") as log:
            log.writelines(f"PROVED {name}: {proof}\n" for name, proof in sorted(report.proofs.items()))
        self.timings["probe"] = round(time.monotonic() - started, 3)

    def _run_phase(
        self,
        phase: str,
        command: list[str],
        spec: SandboxSpec,
        staging: Path,
        build_host: Path,
        source_host: Path,
        settings: BuildSettings,
    ) -> None:
        """Run one phase in the sandbox; keep its logs and raise :class:`BuildFailed` when it fails."""
        plan, pinned = self.plan, self.pgo_profile_tar
        if phase == "make" and pinned is not None:
            _install_pgo_profile(pinned.file, staging / "pgo-input", source_host)
            self.profile_record = PgoProfileRef(sha256=pinned.sha256, origin="reused", trained_on=plan.training)
        self.sink.phase_started(phase)
        started = time.monotonic()
        log_path = staging / "logs" / f"{phase}.log"
        faults.while_running(phase, log_path)
        result = self.runner.run(self.image, command, spec, log_path=log_path)
        faults.reached(phase)
        cap_log(log_path, self.log_cap)
        if result.returncode != 0:
            tail = log_tail(log_path)  # read here: on a full disk the kept copy may be cut short
            kept = _keep_failed_logs(staging / "logs", self.failed_logs, plan.key)
            note = _disk_full_note(tail, staging)
            raise BuildFailed(phase, result.returncode, kept / log_path.name, tail, note=note)
        self.timings[phase] = round(time.monotonic() - started, 3)
        self.sink.phase_finished(phase, self.timings[phase])
        if phase == "make" and pinned is None and plan.training is not None:
            self._keep_trained_profile(staging, build_host, source_host, settings, log_path)

    def _keep_trained_profile(
        self, staging: Path, build_host: Path, source_host: Path, settings: BuildSettings, make_log: Path
    ) -> None:
        """Store the profile this build trained (before the build tree is deleted), so others can reuse it."""
        assert self.plan.training is not None
        run = None
        if self.plan.trainer is not None:
            run = _proven_training_run(build_host, staging / "logs", make_log, self.failed_logs, self.plan.key)
        trained_here = self.plan.training.model_copy(update={"build_dir": settings.build_dir, "run": run})
        produced = _collect_pgo_profile(source_host, staging / ResultDir.PGO_PROFILE, settings, trained_here)
        self.profile_record = PgoProfileRef(
            sha256=produced.sha256,
            origin="trained in this build",
            file=ResultDir.PGO_PROFILE,
            trained_on=trained_here,
            counters=produced.counters,
            counters_sha256=produced.counters_sha256,
        )

    def _record(
        self,
        staging: Path,
        build_host: Path,
        out_host: Path,
        settings: BuildSettings,
        commands: list[tuple[str, list[str]]],
        started_at: str,
    ) -> RebuildRecord:
        """Move the install tree into the result, write its manifest, the source verdict and the record."""
        plan = self.plan
        self.sink.phase_started("manifest")
        started = time.monotonic()
        # The build tree is large and not part of the result; the install tree moves to root/.
        shutil.rmtree(build_host)
        install_host = out_host / PurePosixPath(settings.destdir).relative_to(OUT_MOUNT)
        if not install_host.is_dir():
            raise OperationalError(f"make install produced nothing at {settings.destdir}")
        staged = ResultDir(staging)
        install_host.rename(staged.root)
        shutil.rmtree(out_host)
        inputs = BuildInputs(
            source=SourceRef(name=self.tarball.name, sha256=self.tarball.sha256),
            recipe=RecipeRef(
                series=self.recipe.series,
                sha256=self.recipe.sha256,
                profile=plan.profile_name,
                configure=plan.configure_flags,
            ),
            environment=EnvironmentRef(
                name=self.image.name, lock_sha256=self.image.lock_sha256, rootfs_sha256=self.image.sha256
            ),
            runner=self.runner.name,
            settings={**settings.to_json(), **plan.host_tools},
            variations=tuple(sorted(plan.variations)),
            pgo_profile_sha256=self.pgo_profile_tar.sha256 if self.pgo_profile_tar else None,
        )
        manifest_sha256 = write_manifest_for(staged.root, inputs.to_json(), staged.manifest_path)
        faults.reached("manifest")
        self.timings["manifest"] = round(time.monotonic() - started, 3)
        record = RebuildRecord(
            version=plan.version,
            inputs=inputs,
            source_date_epoch=settings.source_date_epoch,
            pip="not installed (--with-ensurepip=no)"
            if "--with-ensurepip=no" in plan.configure_flags
            else "installed by the recipe's configure flags",
            cache_key=plan.key,
            phase_seconds=dict(self.timings),
            commands={phase: tuple(command) for phase, command in commands},
            pgo_profile=self.profile_record,
            manifest_sha256=manifest_sha256,
            started_at=started_at,
            finished_at=_utc_now(),
        )
        staged.write_source_verdict(plan.verdict)
        staged.write_record(record)
        self.sink.phase_finished("manifest", self.timings["manifest"])
        return record


def _proves_its_training(record: RebuildRecord, by_trainer: bool) -> bool:
    """Whether a cached PGO build's profile carries what a profile must carry now: its training record and,
    when cpython-verify's trainer trained it, the record of the training run."""
    profile = record.pgo_profile
    if profile is None or profile.trained_on is None:
        return False
    return profile.origin == "reused" or not by_trainer or profile.trained_on.run is not None


def _proven_training_run(build_host: Path, logs: Path, make_log: Path, failed_logs: Path, key: str) -> PgoTrainingRun:
    """The trainer's record of the training that just ran; raise :class:`PgoTrainingFailed` (keeping the
    logs and the record) unless it proves a training."""
    record_path = build_host / TRAINER_RECORD_NAME
    run, problems = read_training_run(record_path)
    if run is not None and not problems:
        return run
    written = record_path.is_file()
    if written:
        shutil.copyfile(record_path, logs / TRAINER_RECORD_NAME)
    kept = _keep_failed_logs(logs, failed_logs, key)
    kept_record = kept / TRAINER_RECORD_NAME if written else None
    raise PgoTrainingFailed(problems, kept / make_log.name, log_tail(kept / make_log.name), kept_record)


def _utc_now() -> str:
    """The wall-clock time in UTC, to the second, as the record stores it (RFC 3339)."""
    # Wall clock, not monotonic: these are when the build ran, for the provenance's startedOn/finishedOn.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sandbox_spec(settings: BuildSettings, binds: tuple[Bind, ...]) -> SandboxSpec:
    """The sandbox every command of a build with ``settings`` runs in, with ``binds``: its environment,
    hostname, build directory, user, CPUs and the variations applied from the host."""
    return SandboxSpec(
        binds=binds,
        env=settings.environment(),
        hostname=settings.hostname,
        cwd=settings.build_dir,
        user=settings.user,
        cpus=settings.cpus,
        **_host_variations(settings),
    )


def _host_variations(settings: BuildSettings) -> dict[str, Any]:
    """The :class:`SandboxSpec` fields of the variations a runner applies from the host."""
    return {
        "clock_offset": settings.clock_offset,
        "uname_2_6": settings.uname_2_6,
        "aslr": settings.aslr,
        "reversed_directory_order": settings.reversed_directory_order,
    }


def _host_tools_record(settings: BuildSettings) -> dict[str, str]:
    """``{"host_tool_<name>": "<package> <version>, <file> sha256 <hex>"}`` for the tools the varied
    settings need (nothing for a baseline); raises :class:`~verify.common.errors.ToolMissing` if one is absent."""
    spec = SandboxSpec(**_host_variations(settings))
    return {f"host_tool_{name}": version for name, version in host_tool_versions(spec).items()}


def _uses_pgo(configure_flags: Sequence[str]) -> bool:
    return "--enable-optimizations" in configure_flags


def pgo_trainer() -> bytes:
    """The source of cpython-verify's deterministic training task (``verify/rebuild/pgo_trainer.py``)."""
    return (resources.files("verify.rebuild") / "pgo_trainer.py").read_bytes()


def runs_pgo_trainer(configure_flags: Sequence[str]) -> bool:
    """Whether a build profile with ``configure_flags`` trains with cpython-verify's deterministic trainer:
    it uses PGO, and its ``PROFILE_TASK`` runs the trainer."""
    return _uses_pgo(configure_flags) and any(
        flag.startswith("PROFILE_TASK=") and PGO_TRAINER_PATH in flag for flag in configure_flags
    )


def pgo_trainer_for(configure_flags: Sequence[str]) -> bytes | None:
    """:func:`pgo_trainer`, if a PGO profile's ``PROFILE_TASK`` runs it (else None)."""
    return pgo_trainer() if runs_pgo_trainer(configure_flags) else None


def phase_commands(configure_flags: Sequence[str], settings: BuildSettings) -> list[tuple[str, list[str]]]:
    """The sandboxed command of each build phase. Pure: the same flags and settings, the same commands."""
    flags = list(configure_flags)
    extra_cflags = settings.cflags()
    # With LTO, GCC writes the debug info at link time from the link command's flags, and CPython
    # links with LDFLAGS, not CFLAGS: without the build-path map there too, every LTO binary records
    # the build directory (measured on 3.13.5 pgo-lto under a varied build path; docs/rebuild.md).
    extra_ldflags = settings.cflags() if "--with-lto" in flags else ""
    if "--with-lto" in flags or _uses_pgo(flags):
        # GCC names LTO sections and some symbols from a random seed; fix it so objects repeat.
        extra_cflags = f"{extra_cflags} {LTO_RANDOM_SEED}".strip()
    _append_to_variable(flags, "CFLAGS", extra_cflags)
    _append_to_variable(flags, "LDFLAGS", extra_ldflags)
    # The umask is set by a shell in front of each phase: the sandbox cannot set it for us.
    wrap = ["/bin/sh", "-c", f'umask {settings.umask} && exec "$@"', "sh"]
    return [
        ("configure", [*wrap, "./configure", *flags]),
        ("make", [*wrap, "make", f"-j{settings.make_jobs()}"]),
        ("install", [*wrap, "make", "install", f"DESTDIR={settings.destdir}"]),
    ]


def _append_to_variable(flags: list[str], name: str, extra: str) -> None:
    """Append ``extra`` to the ``NAME=`` configure argument in ``flags``, adding one if there is none."""
    if not extra:
        return
    for index, flag in enumerate(flags):
        if flag.startswith(f"{name}="):
            flags[index] = f"{flag} {extra}"
            return
    flags.append(f"{name}={extra}")


def unpack_release(tarball: Path, destination: Path) -> int:
    """Unpack a release tarball's single top-level directory as ``destination``; return its newest file mtime.

    :func:`verify.source.unpack.safe_unpack` refuses traversal, links out of the tree, devices, more than one
    top-level directory and bombs. The newest mtime is taken over files and symlinks only: directory
    mtimes are rewritten by extraction itself.
    """
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=parent))
    try:
        top = safe_unpack(tarball, staging)
        faults.reached("unpack")
        newest = 0
        for directory, _dirnames, filenames in os.walk(top):
            for name in filenames:
                newest = max(newest, int(os.lstat(os.path.join(directory, name)).st_mtime))  # noqa: PTH118
        top.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return newest


def _require_verified(tarball: FetchedFile, verdict: SourceVerdict) -> None:
    """Raise unless ``verdict`` says ``tarball`` is verified."""
    if not verdict.verified:
        raise SourceNotVerified(f"refusing to build unverified source {tarball.name}: {'; '.join(verdict.failures())}")
    digest = verdict.tarball.sha256
    if digest != tarball.sha256:
        raise SourceNotVerified(
            f"refusing to build {tarball.name}: the verdict is about sha256 {digest}, the tarball is {tarball.sha256}"
        )


def _copy_verified_bytes(
    tarball: FetchedFile, destination: Path, refused: type[SourceNotVerified] = SourceNotVerified
) -> None:
    """Copy the tarball into the private staging area, hashing exactly the bytes copied; raise ``refused``
    when they are not the verified digest.

    Unpacking the private copy (not the original path) is what makes "the bytes unpacked are the
    bytes verified" true even if someone rewrites the original file meanwhile.
    """
    destination.parent.mkdir(parents=True)
    digest = hashlib.sha256()
    with tarball.path.open("rb") as source, destination.open("wb") as target:
        while chunk := source.read(_READ_CHUNK):
            digest.update(chunk)
            target.write(chunk)
    if digest.hexdigest() != tarball.sha256:
        raise refused(
            f"refusing to build {tarball.name}: its bytes changed since verification "
            f"(verified {tarball.sha256}, now {digest.hexdigest()})"
        )


def pgo_training(
    version: Version, build_profile: ChosenProfile, tarball: FetchedFile, image: RootfsImage
) -> PgoTraining:
    """What a build of ``tarball`` with the ``build_profile`` profile in ``image`` trains (or reuses) a profile for."""
    return PgoTraining(
        version=version,
        series=build_profile.recipe.series,
        source=SourceRef(name=tarball.name, sha256=tarball.sha256),
        profile=build_profile.name,
        configure=build_profile.configure_flags,
        environment=image.name,
        rootfs_sha256=image.sha256,
    )


@dataclass(frozen=True, slots=True)
class CollectedProfile:
    """A stored ``pgo-profile.tar``: its digest, and how many ``.gcda`` files it holds with their digest."""

    sha256: str
    counters: int
    counters_sha256: str


def _collect_pgo_profile(
    source_dir: Path, output: Path, settings: BuildSettings, training: PgoTraining
) -> CollectedProfile:
    """Store every ``.gcda`` of the build tree, after the training record, in a deterministic tar.

    Record first, then sorted names; fixed owner and mtime: the same profile always gives the same
    digest, so it can be pinned in a recipe or published beside an attestation, and the record of
    what it was trained on is covered by that digest.
    """
    profiles = sorted(path for path in source_dir.rglob("*.gcda") if path.is_file())
    mtime = settings.source_date_epoch or 0
    record = (
        json.dumps(
            training.model_dump(mode="json", exclude={"run"} if training.run is None else None),
            indent=2,
            sort_keys=True,
        )
        + "\n"
    ).encode()
    with tarfile.open(output, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo(PGO_TRAINING_MEMBER)
        info.size, info.mtime, info.mode = len(record), mtime, 0o644
        archive.addfile(info, io.BytesIO(record))
        for path in profiles:
            info = tarfile.TarInfo(path.relative_to(source_dir).as_posix())
            info.size = path.stat().st_size
            info.mtime = mtime
            info.mode = 0o644
            with path.open("rb") as data:
                archive.addfile(info, data)
    return CollectedProfile(sha256_file(output), len(profiles), counters_digest(source_dir, profiles))


def check_pgo_profile(
    profile: FetchedFile,
    configure_flags: Sequence[str],
    *,
    version: Version | None = None,
    environment: str | None = None,
    source_sha256: str | None = None,
    rootfs_sha256: str | None = None,
) -> PinnedPgoProfile:
    """Read a pinned PGO profile once and refuse it if it cannot be used here; return it with its training record.

    Refused (one line, exit 2): a build profile without PGO, bytes that are not the pinned digest, an
    archive holding anything but ``.gcda`` files at relative paths and one training record, no record
    (a profile stored before records existed must be trained again), or a record of another build
    (:meth:`PinnedPgoProfile.check`, with the facts given here). A fact the caller does not know yet is
    None: the returned value compares it, without reading the archive again, once it is known.
    """
    if not _uses_pgo(configure_flags):
        raise OperationalError(
            f"{profile.name}: this build profile has no --enable-optimizations, so a PGO profile cannot apply"
        )
    try:
        actual = sha256_file(profile.path)
    except OSError as error:
        raise OperationalError(f"cannot read PGO profile {profile.path}: {error.strerror or error}") from None
    if actual != profile.sha256:
        raise PgoProfileNotPinned(
            f"refusing to use {profile.name}: its bytes changed since verification or never matched the pin "
            f"(pinned {profile.sha256}, found {actual})"
        )
    pinned = PinnedPgoProfile(profile, _read_training_record(profile))
    pinned.check(
        configure_flags,
        version=version,
        environment=environment,
        source_sha256=source_sha256,
        rootfs_sha256=rootfs_sha256,
    )
    return pinned


@dataclass(frozen=True, slots=True)
class PinnedPgoProfile:
    """A ``pgo-profile.tar`` whose bytes matched their pin and whose members and training record were judged,
    once, by :func:`check_pgo_profile`. What it was trained on is compared with each fact of a build as the
    fact becomes known (:meth:`check`, no I/O); a build copies the bytes and hashes them again as it
    installs them."""

    file: FetchedFile
    training: PgoTraining
    """The record of what the profile was trained on (its ``cpython-verify-pgo.json``)."""

    @property
    def sha256(self) -> str:
        """The pinned digest of the archive."""
        return self.file.sha256

    def check(
        self,
        configure_flags: Sequence[str],
        *,
        version: Version | None = None,
        environment: str | None = None,
        source_sha256: str | None = None,
        rootfs_sha256: str | None = None,
    ) -> PgoTraining:
        """Refuse the profile (one line, exit 2) for a build with ``configure_flags`` and each fact given that
        it was not trained for, or whose training run (cpython-verify's trainer) did not train; return its
        training record. A fact that is None is not compared."""
        name, training = self.file.name, self.training
        if not _uses_pgo(configure_flags):
            raise OperationalError(
                f"{name}: this build profile has no --enable-optimizations, so a PGO profile cannot apply"
            )
        facts = (
            (version, training.version, "CPython {}"),
            (source_sha256, training.source.sha256, "a tarball with sha256 {}"),
            (tuple(configure_flags), training.configure, "configure flags {}"),
            (environment, training.environment, "environment {}"),
            (rootfs_sha256, training.rootfs_sha256, "a rootfs with sha256 {}"),
        )
        for wanted, recorded, described in facts:
            if wanted is not None and wanted != recorded:
                shown = [list(value) if isinstance(value, tuple) else value for value in (recorded, wanted)]
                raise UnusablePgoProfile(
                    f"refusing to use {name}: it was trained for {described.format(shown[0])}, "
                    f"this build is for {described.format(shown[1])}"
                )
        if runs_pgo_trainer(configure_flags):
            # The trainer's profiles carry the record of their training run: a profile whose run did not train
            # (or that predates the record) proves nothing about its counters.
            if training.run is None:
                raise UnusablePgoProfile(
                    f"refusing to use {name}: it carries no record of its training run (it was trained before "
                    "cpython-verify's trainer kept one): train it again with this cpython-verify"
                )
            problems = training.run.problems()
            if problems:
                raise UnusablePgoProfile(f"refusing to use {name}: its training did not train: {'; '.join(problems)}")
        return training


def _read_training_record(profile: FetchedFile) -> PgoTraining:
    """The training record of a profile archive whose every other member is a ``.gcda`` at a relative path."""
    try:
        with tarfile.open(profile.path) as archive:
            members = archive.getmembers()
            records = []
            for member in members:
                parts = PurePosixPath(member.name).parts
                if member.name.startswith("/") or ".." in parts:
                    raise UnsafePgoProfile(
                        f"{profile.name}: a PGO profile member escapes the build tree ({member.name!r})"
                    )
                if member.name == PGO_TRAINING_MEMBER and member.isfile():
                    records.append(member)
                elif not member.isfile() or not member.name.endswith(".gcda"):
                    raise UnsafePgoProfile(
                        f"{profile.name}: a PGO profile may hold only .gcda files and {PGO_TRAINING_MEMBER} "
                        f"({member.name!r})"
                    )
            if not records:
                raise UnusablePgoProfile(
                    f"refusing to use {profile.name}: it has no training record ({PGO_TRAINING_MEMBER}); it predates "
                    "profiles that record what they were trained on: train it again with this cpython-verify"
                )
            if len(records) > 1:
                raise UnsafePgoProfile(f"{profile.name}: more than one {PGO_TRAINING_MEMBER}")
            if records[0].size > PGO_TRAINING_MAX_BYTES:
                raise UnusablePgoProfile(
                    f"{profile.name}: {PGO_TRAINING_MEMBER} is larger than {PGO_TRAINING_MAX_BYTES >> 10} KiB"
                )
            stream = archive.extractfile(records[0])
            raw = stream.read(PGO_TRAINING_MAX_BYTES + 1) if stream is not None else b""
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UnsafePgoProfile(f"{profile.name}: not a readable tar archive: {error}") from None
    try:
        loads_bounded(raw)  # the nesting budget, before the model parses the same bytes
        return PgoTraining.model_validate_json(raw)
    except (ValueError, ValidationError) as error:
        reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
        raise UnusablePgoProfile(
            f"{profile.name}: unreadable training record {PGO_TRAINING_MEMBER}: {reason}"
        ) from None


def _install_pgo_profile(profile: FetchedFile, scratch: Path, source_dir: Path) -> None:
    """Put a pinned profile's ``.gcda`` files in the build tree and mark the training run as done.

    The training record stays out of the build tree: it was read, from the same pinned bytes, before
    any build step. Bytes changed since then are refused like any other profile that is not its pin (exit 2)."""
    copy = scratch / profile.name
    _copy_verified_bytes(profile, copy, PgoProfileNotPinned)
    with tarfile.open(copy) as archive:
        members = [member for member in archive.getmembers() if member.name != PGO_TRAINING_MEMBER]
        if not all(member.isfile() and member.name.endswith(".gcda") for member in members):
            raise UnsafePgoProfile(f"{profile.name}: a PGO profile may hold only .gcda files")
        try:
            extract_all_data(archive, source_dir, members)
        except RefusedMember as error:
            raise UnsafePgoProfile(f"{profile.name}: refused to unpack: {error}") from None
    (source_dir / PGO_RUN_STAMP).touch()


def _keep_failed_logs(logs: Path, directory: Path, key: str) -> Path:
    kept = directory / f"failed-{key[:16]}"
    shutil.rmtree(kept, ignore_errors=True)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(logs, kept)
    except OSError:
        pass  # a full disk: keep what could be copied; the failure itself is what gets reported
    return kept


def _disk_full_note(tail: Sequence[str], staging: Path) -> str:
    """``: no space left on device (…)`` when the failed phase's log says the disk filled up, else ""."""
    if not any("No space left on device" in line for line in tail):
        return ""
    free = free_bytes(staging)
    shown = f", {human_bytes(free)} free" if free is not None else ""
    return f": no space left on device for the build in {staging.parent}{shown}"
