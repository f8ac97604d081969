"""``rebuild.json``: the one typed record of a rebuild, written by the rebuild stage and read by every other.

The record is a frozen, versioned pydantic model. Nothing reads ``rebuild.json`` with ``.get`` chains:
:class:`verify.result.ResultDir` parses it into :class:`RebuildRecord` (or fails with one line naming the
file and the format it found), and every reader — check, compare, attest, peers, the tests — works on
the model's fields.

``inputs`` is recorded once: it is exactly what the manifest's ``inputs`` holds, so the manifest and
the record cannot disagree about what was built.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from verify.source import names
from verify.source.releases import Version

REBUILD_FORMAT: Final = "cpython-verify/rebuild/v2"
"""The format this cpython-verify writes and reads."""
OLDER_FORMATS: Final = frozenset({"cpython-verify/rebuild/v1"})
"""Formats earlier versions wrote: named in the error, never read."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Timestamp = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")]
"""A UTC time, RFC 3339 to the second (``2025-06-11T21:35:00Z``)."""
SettingValue = str | int | bool | None
# The names a rebuild records follow the rules they are made by (verify.source.names); attest signs them and
# every reader of an attestation applies the same rules.
Series = Annotated[str, StringConstraints(pattern=names.SERIES_PATTERN)]
Profile = Annotated[str, StringConstraints(pattern=names.PROFILE_PATTERN)]
Runner = Annotated[str, StringConstraints(pattern=names.RUNNER_PATTERN)]
EnvironmentName = Annotated[str, StringConstraints(pattern=names.ENVIRONMENT_PATTERN)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SourceRef(_Frozen):
    """The verified tarball a rebuild unpacked."""

    name: Text
    sha256: Sha256


class RecipeRef(_Frozen):
    """The recipe (by series and the sha256 of its bytes), the profile chosen and its configure flags."""

    series: Series
    sha256: Sha256
    profile: Profile
    configure: tuple[str, ...]


class EnvironmentRef(_Frozen):
    """The pinned build environment: its name, lock file digest and rootfs tarball digest."""

    name: EnvironmentName
    lock_sha256: str | None = None
    rootfs_sha256: str | None = None


class BuildInputs(_Frozen):
    """Everything that determines the bytes of a rebuild; the manifest records the same object."""

    source: SourceRef
    recipe: RecipeRef
    environment: EnvironmentRef
    runner: Runner
    settings: dict[str, SettingValue]
    """Every :class:`verify.rebuild.settings.BuildSettings` field, plus ``make_jobs`` and ``cflags`` as used."""
    variations: tuple[str, ...]
    """The variations applied to *this* build (empty for a baseline)."""
    pgo_profile_sha256: Sha256 | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form, as it appears in the manifest's ``inputs``."""
        return self.model_dump(mode="json")


PGO_TRAINING_RUN_FORMAT: Final = "cpython-verify/pgo-training-run/v1"
"""The format of the record cpython-verify's trainer (``verify/rebuild/pgo_trainer.py``) writes of its run."""
Count = Annotated[int, Field(ge=0)]
Listed = Annotated[str, StringConstraints(max_length=4096)]


class TrainingTestOutcome(_Frozen):
    """One test the training listed by name (a failure, an error or a skip) and its last message line."""

    test: Listed
    message: Listed


class TrainingTests(_Frozen):
    """What the training's test run counted (the first 100 of each list are named)."""

    run: Count
    failures: tuple[TrainingTestOutcome, ...] = Field(max_length=100)
    failures_total: Count
    errors: tuple[TrainingTestOutcome, ...] = Field(max_length=100)
    """A test module that does not import is one error."""
    errors_total: Count
    unexpected_successes: tuple[Listed, ...] = Field(max_length=100)
    unexpected_successes_total: Count
    expected_failures: Count
    skipped: Count
    skips: tuple[TrainingTestOutcome, ...] = Field(max_length=100)


class BlockedCall(_Frozen):
    """A process, thread or timer a test tried to start, which the trainer refused (the test was skipped)."""

    test: Listed | None = None
    """The test that tried (or what was running: loading a module); None between tests."""
    call: Listed


class TrainingAslr(_Frozen):
    """The training process's address space layout randomisation, as it saw it."""

    off: bool
    personality: Listed
    """``/proc/self/personality`` (hex)."""
    how: Listed = ""
    """How it was turned off: already off, ``personality(ADDR_NO_RANDOMIZE)`` or ``setarch -R`` (empty in a
    refusal written before the first stage's record was read)."""


class TrainingHost(_Frozen):
    """A host as ``os.uname()`` and ``os.cpu_count()`` describe it."""

    sysname: Listed
    nodename: Listed
    release: Listed
    version: Listed
    machine: Listed
    cpu_count: Count | None = None


class TrainingCopy(_Frozen):
    """Where the training ran: a sorted copy of the build directory on the sandbox's own tmpfs, or, for a
    tree that is not a CPython build directory, the build directory itself (``skipped`` says why)."""

    directory: Listed | None = None
    files: Count | None = None
    mount: Listed | None = None
    file_system: Listed | None = None
    device: Count | None = None
    """The copy's device number (its file system's; a cached small int up to 256, allocated above)."""
    first_inode: Count | None = None
    """The inode number the file system had reached before the copy (moved past the small ints)."""
    made_in: Literal["sorted order", "reverse sorted order"] | None = None
    """The order the copy's entries were created in (reverse only when measuring, by the bench)."""
    listing_order: Literal["creation order", "newest first", "neither"] | None = None
    """How the copy's file system lists a directory's names (tmpfs: by kernel version). The training's
    start-up lists the copy's directories before the trainer can sort what it lists, and the order of
    those names reached the counters; so the copy is made to list in sorted order either way."""
    directories_reordered: Count | None = None
    """Directories whose entries were moved so that the file system lists them in sorted order."""
    directories_unsorted: Count | None = None
    """Directories still listed out of sorted order (on a file system that lists ``neither`` way)."""
    skipped: Listed | None = None


class PgoTrainingRun(_Frozen):
    """The record cpython-verify's trainer wrote of one training run: what it ran, what it set, how it went.

    The rebuild reads it after the training and fails the build unless :meth:`problems` is empty,
    whatever CPython's Makefile did with the trainer's exit status. It travels in the profile's
    training record (``pgo-profile.tar``) and in ``rebuild.json``."""

    format: Literal["cpython-verify/pgo-training-run/v1"] = PGO_TRAINING_RUN_FORMAT
    status: Literal["trained", "refused", "failed"]
    reason: Listed | None = None
    """Why the trainer refused or failed (None when it trained)."""
    modules: tuple[Listed, ...] = Field(max_length=1000)
    python: Listed
    """The instrumented interpreter's version."""
    aslr: TrainingAslr | None = None
    environment: dict[str, Listed] = Field(default_factory=dict, max_length=100)
    """The whole environment the training ran with, as the trainer set it."""
    environment_removed: tuple[Listed, ...] = Field(default=(), max_length=1000)
    """Names of the build's variables the trainer removed (a preloaded libfaketime, a varied locale...)."""
    hash_randomization: int | None = None
    """``sys.flags.hash_randomization`` in the training process: 0 when ``PYTHONHASHSEED=0`` held."""
    umask: Listed | None = None
    stack_limit: Listed | None = None
    """The training process's soft stack limit, as the trainer set it (it sizes the gap below which memory
    maps go, so object addresses depend on it even with ASLR off)."""
    descriptors_closed: Count | None = None
    """Descriptors beyond 0, 1 and 2 the trainer closed before re-executing (make's jobserver pipe...)."""
    access_times_pinned: Count | None = None
    """Entries under the build directory and the trainer's whose access time the trainer set to one value
    (a timestamp's nanoseconds decide which int path stat takes, so the counters followed them)."""
    signals_reset: Count | None = None
    """Signals the training was started with ignored, which the trainer set back to their default (an
    ignored disposition survives exec, and the interpreter's start-up looks at each)."""
    host: TrainingHost | None = None
    """What the host said about itself, read by the first stage (never seen by the tests)."""
    host_view: TrainingHost | None = None
    """What the training saw instead: the same on every host (the hostname, kernel release and CPU count
    were allocated as the training ran, so they moved objects and changed identity-hashed counters)."""
    random_seed: int | None = None
    """The seed of ``random`` before every test, and of every ``random.Random()`` made without one."""
    counters_removed: Count | None = None
    """``.gcda`` files removed before the tests ran (the build's own runs of ``./python`` left them)."""
    training_copy: TrainingCopy | None = None
    """Where the training read the build from (the first stage copied it; absent from older records)."""
    tests: TrainingTests | None = None
    blocked: tuple[BlockedCall, ...] = Field(default=(), max_length=100)
    blocked_total: Count = 0

    def problems(self) -> tuple[str, ...]:
        """Why this run does not count as a training (empty when it does), judged from the counts and
        states themselves, not only from the trainer's own status."""
        if self.status == "refused":
            return (f"the trainer refused: {self.reason or 'no reason given'}",)
        found = []
        if self.aslr is None or not self.aslr.off:
            found.append("ASLR was not off in the training process")
        if self.hash_randomization != 0 or self.environment.get("PYTHONHASHSEED") != "0":
            found.append("string hashing was not fixed (PYTHONHASHSEED=0)")
        if self.tests is None:
            found.append("no test outcome was recorded")
        else:
            if not self.tests.run:
                found.append("no test ran")
            for total, named, what in (
                (self.tests.failures_total, self.tests.failures, "failed"),
                (self.tests.errors_total, self.tests.errors, "errored"),
            ):
                if total:
                    first = f" (first: {named[0].test}: {named[0].message})" if named else ""
                    found.append(f"{total} test(s) {what}{first}")
            if self.tests.unexpected_successes_total:
                found.append(f"{self.tests.unexpected_successes_total} unexpected success(es)")
        if self.status != "trained" and not found:
            found.append(f"the trainer {self.status}: {self.reason or 'no reason given'}")
        return tuple(found)

    def summary(self) -> str:
        """One line: the tests, the blocked calls, ASLR, the hash seed and the counters removed."""
        tests = self.tests
        ran = (
            f"ran {tests.run} tests: {tests.failures_total} failures, {tests.errors_total} errors, "
            f"{tests.skipped} skipped"
            if tests
            else "ran no test"
        )
        aslr = "ASLR off" if self.aslr and self.aslr.off else "ASLR ON"
        seed = f"PYTHONHASHSEED={self.environment.get('PYTHONHASHSEED', 'unset')}"
        removed = f"{self.counters_removed} earlier counters removed" if self.counters_removed is not None else ""
        parts = [ran, f"{self.blocked_total} process/thread/timer calls blocked", aslr, seed, removed]
        return "; ".join(part for part in parts if part)


PGO_TRAINING_FORMAT: Final = "cpython-verify/pgo-training/v1"
"""The format of the training record stored inside ``pgo-profile.tar``."""


class PgoTraining(_Frozen):
    """What a stored PGO profile was trained on: the build whose training run wrote its ``.gcda`` files.

    It travels inside the digest-pinned ``pgo-profile.tar`` itself (member ``cpython-verify-pgo.json``),
    so whoever holds only the tar and its sha256 holds the record too. A profile is reused only by a
    build of the same release (version and tarball), configure flags and environment.
    """

    format: Literal["cpython-verify/pgo-training/v1"] = PGO_TRAINING_FORMAT
    version: Version
    """The release the profile was trained for: read from its string, as the rebuild record's version is."""
    series: Text
    source: SourceRef
    """The verified tarball the instrumented build unpacked."""
    profile: Text
    """The recipe profile's name (for readers; the flags are what must match)."""
    configure: tuple[str, ...]
    """The recipe profile's configure flags, as the recipe lists them."""
    environment: Text
    """The build environment's name."""
    rootfs_sha256: Sha256
    """The digest of the rootfs tarball the instrumented build and its training run ran in."""
    build_dir: Text | None = None
    """The sandbox build directory the training ran in (None in records written before it was kept).
    Objects compiled from absolute source paths (3.11's setup.py modules) find their profile only under
    this same directory: GCC names their ``.gcda`` files and identifies their static functions by it."""
    run: PgoTrainingRun | None = None
    """The trainer's record of the training run, for a profile trained by cpython-verify's trainer (None for
    CPython's own training task, and in records written before the trainer kept one)."""


class PgoProfileRef(_Frozen):
    """The ``.gcda`` profile a PGO build used: reused (pinned by digest) or trained in this build."""

    sha256: Sha256
    origin: Literal["reused", "trained in this build"]
    file: str | None = None
    """``pgo-profile.tar`` in the result directory when this build trained it."""
    trained_on: PgoTraining | None = None
    """The profile's training record (None only in records written before profiles carried one)."""
    counters: Count | None = None
    """How many ``.gcda`` files the profile holds (None in records written before it was kept)."""
    counters_sha256: Sha256 | None = None
    """The sha256 of the sorted ``<sha256>  <path>`` lines of those files: equal for two trainings that wrote
    the same counters, whatever else their training records say."""


class RecordedDifference(_Frozen):
    """One path on which two rebuilds differ, in the compare stage's vocabulary."""

    path: str
    kind: str
    """The manifest kind (``elf-executable``, ``pyc``, ``python-source``, ``directory``, ...)."""
    changes: tuple[str, ...]
    """Which of :data:`verify.compare.model.CHANGES` apply."""
    category: str | None = None
    """The comparator's category for a content difference (``build-path``, ``reference-flags-only``, ...)."""
    explanation: str | None = None
    """The comparator's one-line explanation of a content difference."""
    expected_by: tuple[str, ...] = ()
    """The chosen variations whose recipe ``[build.expect]`` entry accounts for some of the changes."""
    unexplained_changes: tuple[str, ...] = ()
    """The changes no chosen variation is documented to cause (for ``content``: with this ``category``)."""

    @property
    def explained(self) -> bool:
        """True when every change is one a chosen variation is documented (in the recipe) to cause."""
        return not self.unexplained_changes


TrainingMode = Literal["two independent trainings", "the baseline's profile reused", "one pinned profile"]


class TwoTrainings(_Frozen):
    """How the two PGO builds of ``--twice`` got their profiles, with both profiles' digests."""

    mode: TrainingMode
    why: Text
    first_sha256: Sha256
    """The baseline's profile (``pgo-profile.tar``)."""
    second_sha256: Sha256
    """The second build's: the same digest unless it trained its own."""
    first_counters_sha256: Sha256 | None = None
    """The digest of the baseline profile's ``.gcda`` files alone (None for a reused or older profile)."""
    second_counters_sha256: Sha256 | None = None
    counters: Count | None = None
    """How many ``.gcda`` files the baseline's profile holds."""

    @property
    def counters_identical(self) -> bool | None:
        """For two trainings: whether they wrote the same ``.gcda`` files (None when that is not known)."""
        if self.first_counters_sha256 is None or self.second_counters_sha256 is None:
            return None
        return self.first_counters_sha256 == self.second_counters_sha256


class ReproducibilityCheck(_Frozen):
    """``--twice``: a baseline and a varied build compared path by path."""

    variations: tuple[str, ...]
    """The variations the second build applied."""
    differences: tuple[RecordedDifference, ...]
    culprits: dict[str, bool] = Field(default_factory=dict)
    """After ``--bisect``: variation -> whether it alone makes the outputs differ."""
    skipped: dict[str, Text] = Field(default_factory=dict)
    """Requested variations the second build did not apply -> why: the recipe declares them inapplicable
    to this profile (``[build.profiles.<name>.inapplicable.<variation>]``), because their documented
    effect there is a real code change that no expectation may explain."""
    first: str
    """The baseline's cache directory."""
    second: str
    """The varied build's cache directory."""
    pgo_training: TwoTrainings | None = None
    """For a PGO profile: whether the second build trained its own profile or reused one, and both digests."""

    @property
    def reproducible(self) -> bool:
        """True when the two install trees are identical in every path, mode, link and byte."""
        return not self.differences

    @property
    def unexplained(self) -> tuple[RecordedDifference, ...]:
        """The differences no chosen variation is documented to cause."""
        return tuple(difference for difference in self.differences if not difference.explained)

    @property
    def explained(self) -> bool:
        """True when every difference is one the chosen variations are documented to cause."""
        return not self.unexplained


class RebuildRecord(_Frozen):
    """What one rebuild (and, with ``--twice``, its comparison with a varied build) recorded."""

    format: Literal["cpython-verify/rebuild/v2"] = REBUILD_FORMAT
    version: Version
    """The release rebuilt: the source verdict's version, the same value (written as ``str(version)``)."""
    inputs: BuildInputs
    source_date_epoch: int | None
    pip: Text
    cache_key: Text
    phase_seconds: dict[str, float]
    commands: dict[str, tuple[str, ...]]
    pgo_profile: PgoProfileRef | None = None
    manifest_sha256: Sha256
    reproducibility: ReproducibilityCheck | None = None
    """Set by ``--twice``; ``None`` for a single build."""
    started_at: Timestamp | None = None
    """When the (baseline) build started: unpacking the source. The provenance's ``startedOn``."""
    finished_at: Timestamp | None = None
    """When it finished: the manifest written. The provenance's ``finishedOn``. Both are None in records
    written before they were recorded."""
    cache_notes: tuple[Text, ...] = ()
    """What the caches met on the way to this result that its reader should know: a cache entry that failed
    its check and was removed and built again, never used (empty when nothing happened)."""

    @property
    def profile(self) -> str:
        """The recipe profile built."""
        return self.inputs.recipe.profile

    @property
    def source(self) -> SourceRef:
        """The verified tarball."""
        return self.inputs.source

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to ``rebuild.json``.

        ``cache_notes`` appears only when there is one: a record without it is exactly what versions
        before it wrote and read, so results and cache entries stay readable across versions.
        """
        data = self.model_dump(mode="json")
        if not data["cache_notes"]:
            del data["cache_notes"]
        return data
