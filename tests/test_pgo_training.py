"""A PGO training proves it trained: cpython-verify's trainer inside real rebuilds of the tiny project.

The tiny project (tests/data/tinyproject) trains as CPython 3.8-3.11 do, ``python $(PROFILE_TASK) || true``:
make succeeds whatever the training does, so only the trainer's record can fail the build. Its training
modules call the instrumented code in-process (libtiny.so, through ctypes), so the counters the profile
stores are the training's own.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from test_rebuild import build_in, entries, make_tarball, staging_left, tiny_recipe

from verify.chain import build_twice
from verify.compare.engine import diff_manifests
from verify.environments.interface import RootfsImage
from verify.environments.podman import PodmanRunner, capped_ulimits, podman_run_command
from verify.rebuild.cache import RebuildCache
from verify.rebuild.core import (
    PGO_TRAINER_PATH,
    PGO_TRAINING_MEMBER,
    PgoTrainingFailed,
    PinnedPgoProfile,
    RebuildResult,
    UnusablePgoProfile,
    check_pgo_profile,
    pgo_trainer_for,
    runs_pgo_trainer,
)
from verify.rebuild.twice_training import second_training, trained_profile
from verify.report.rebuild import rebuild_text, training_line
from verify.result import PgoTraining, PgoTrainingRun
from verify.result.record import BlockedCall
from verify.source.models import FetchedFile
from verify.source.recipes import load_recipe

NEEDS_PODMAN = pytest.mark.skipif(
    shutil.which("podman") is None or shutil.which("runc") is None, reason="podman/runc not installed"
)


def pgo(*modules: str) -> tuple[str, ...]:
    """Configure flags of a PGO build whose training is cpython-verify's trainer on ``modules``."""
    return ("--enable-optimizations", f"PROFILE_TASK={PGO_TRAINER_PATH} {' '.join(modules)}")


@pytest.fixture
def tiny(tmp_path: Path) -> FetchedFile:
    return make_tarball(tmp_path / "tiny-1.0.tar.gz")


@pytest.fixture
def image(tinyproject_python_image: RootfsImage) -> RootfsImage:
    return tinyproject_python_image


def run_of(result: RebuildResult) -> PgoTrainingRun:
    profile = result.record.pgo_profile
    assert profile is not None and profile.trained_on is not None and profile.trained_on.run is not None
    return profile.trained_on.run


def test_a_training_records_what_it_ran_and_the_record_travels_in_the_profile_and_rebuild_json(
    tiny: FetchedFile, image: RootfsImage, tmp_path: Path
) -> None:
    result = build_in(image, tiny, RebuildCache(tmp_path / "cache"), *pgo("test_tiny"))
    run = run_of(result)
    assert run.status == "trained" and not run.problems()
    assert run.tests is not None and (run.tests.run, run.tests.skipped) == (2, 1)
    assert run.blocked == (
        BlockedCall(test="test.test_tiny.Training.test_starts_a_process", call="subprocess.Popen._execute_child"),
    )
    assert run.aslr is not None and run.aslr.off and run.hash_randomization == 0
    assert run.environment["PYTHONHASHSEED"] == "0" and run.environment["LC_ALL"] == "C.UTF-8"
    # hello's and modtool's own runs left counters, as CPython's ./python runs do: the trainer removed them.
    assert run.counters_removed == 2
    # The training read the build from a sorted copy on the sandbox's own tmpfs, and compiled into its cache.
    copy = run.training_copy
    assert copy is not None and copy.directory == "/tmp/cpython-verify-pgo-training/cpython", copy
    assert copy.file_system == "tmpfs" and copy.mount == "/tmp" and copy.files == 3
    assert copy.first_inode is not None and copy.first_inode > 256
    assert run.environment["PYTHONPYCACHEPREFIX"] == "/tmp/cpython-verify-pgo-training/cpython-verify-pgo-pycache"
    with tarfile.open(result.result_dir / "pgo-profile.tar") as archive:
        assert archive.getnames() == [PGO_TRAINING_MEMBER, "objs/build/cpython/mod.gcda"]
        stream = archive.extractfile(PGO_TRAINING_MEMBER)
        assert stream is not None
        stored = json.loads(stream.read())
    assert stored["run"] == run.model_dump(mode="json")
    profile = result.record.pgo_profile
    assert profile is not None and profile.counters == 1 and profile.counters_sha256 is not None
    log = (result.result_dir / "logs" / "make.log").read_text()
    assert "ran 2 tests, 0 failures, 0 errors, 1 skipped, 1 calls blocked" in log


def test_two_independent_trainings_write_the_same_counters_whatever_the_build_varies(
    tiny: FetchedFile, image: RootfsImage, tmp_path: Path
) -> None:
    """The trainer sets its own environment and view of the host: a preloaded libfaketime, another locale,
    time zone and hostname and one CPU change nothing in the counters (test_tiny_host's work follows the
    training process's initial environment and its uname, hostname and CPU count), and two builds with
    nothing shared are identical."""
    first = build_in(image, tiny, RebuildCache(tmp_path / "a"), *pgo("test_tiny", "test_tiny_host"))
    second = build_in(image, tiny, RebuildCache(tmp_path / "b"), *pgo("test_tiny", "test_tiny_host"),
                      variations=frozenset({"time", "locale", "timezone", "cpus", "hostname"}))  # fmt: skip
    ours, theirs = first.record.pgo_profile, second.record.pgo_profile
    assert ours is not None and theirs is not None
    assert ours.counters_sha256 == theirs.counters_sha256
    assert run_of(first).environment == run_of(second).environment
    assert {"FAKETIME", "LD_PRELOAD"} <= set(run_of(second).environment_removed)
    # What each host said is kept (read by the first stage); what the training saw is one view.
    hosts = [run_of(result).host for result in (first, second)]
    assert [host.nodename for host in hosts if host] == ["build", "reprotest-varied"]
    assert run_of(first).host_view == run_of(second).host_view and run_of(first).host_view is not None
    assert diff_manifests(first.result.read_manifest(), second.result.read_manifest()) == ()


@pytest.mark.parametrize(
    ("modules", "problem"),
    [
        (("test_tiny", "test_tiny_failing"),
         r"1 test\(s\) failed \(first: test\.test_tiny_failing\.Failing\.test_fails: "
         r"AssertionError: 1 != 2 : TINY-TRAINING-FAILURE\)"),
        (("test_tiny", "test_tiny_missing"), r"1 test\(s\) errored \(first: .*test_tiny_missing: "
         r"ModuleNotFoundError: No module named 'test\.test_tiny_missing'\)"),
        (("test_tiny_exiting",), r"the trainer wrote no record of its run"),
    ],
    ids=["a-failing-test", "a-module-that-does-not-import", "a-training-stopped-before-its-record"],
)  # fmt: skip
def test_a_training_that_did_not_train_fails_the_build_though_make_ignores_its_exit_status(
    tiny: FetchedFile, image: RootfsImage, tmp_path: Path, modules: tuple[str, ...], problem: str
) -> None:
    cache = RebuildCache(tmp_path / "cache")
    with pytest.raises(PgoTrainingFailed, match=f"the PGO training did not train: {problem}") as caught:
        build_in(image, tiny, cache, *pgo(*modules), failed_logs_dir=tmp_path / "failed")
    failure = caught.value
    assert failure.phase == "pgo-training" and failure.exit_code == 2
    assert "|| true" in failure.log_path.read_text(), "make itself succeeded: the Makefile ignored the training"
    if failure.record_path is not None:
        assert json.loads(failure.record_path.read_text())["status"] == "failed"
    assert entries(cache) == [] and staging_left(cache) == []


class PodmanWithItsDefaultSeccomp(PodmanRunner):
    """The shipped podman runner without the one seccomp grant it adds: what a container engine's default
    profile (podman's, docker's) allows. ``personality(ADDR_NO_RANDOMIZE)`` is denied there."""

    def sandbox_command(self, image, command, spec, *, interactive, name):  # type: ignore[no-untyped-def]
        shipped = super().sandbox_command(image, command, spec, interactive=interactive, name=name)
        assert any(option.startswith("seccomp=") for option in shipped), "the shipped runner grants ASLR off"
        return podman_run_command(self.ensure_image(image), command, spec, ulimits=capped_ulimits(), name=name)


@NEEDS_PODMAN
def test_under_a_default_seccomp_profile_the_training_refuses_and_the_build_fails(
    tiny: FetchedFile, image: RootfsImage, tmp_path: Path
) -> None:
    with pytest.raises(PgoTrainingFailed, match=r"personality\(ADDR_NO_RANDOMIZE\) was denied") as caught:
        build_in(image, tiny, RebuildCache(tmp_path / "cache"), *pgo("test_tiny"), runner=PodmanWithItsDefaultSeccomp(),
                 failed_logs_dir=tmp_path / "failed")  # fmt: skip
    assert caught.value.record_path is not None
    assert json.loads(caught.value.record_path.read_text())["status"] == "refused"


@NEEDS_PODMAN
def test_the_podman_runner_grants_the_training_exactly_aslr_off(
    tiny: FetchedFile, image: RootfsImage, tmp_path: Path
) -> None:
    result = build_in(image, tiny, RebuildCache(tmp_path / "cache"), *pgo("test_tiny"), runner=PodmanRunner())
    run = run_of(result)
    assert run.aslr is not None and run.aslr.how == "turned off by personality(ADDR_NO_RANDOMIZE)"
    assert not run.problems()


def test_the_second_build_of_twice_trains_its_own_profile_unless_told_to_reuse(
    tiny: FetchedFile, image: RootfsImage, tmp_path: Path
) -> None:
    """``--twice`` with a deterministic training: the second build trains afresh from its own instrumented
    build (its own cache entry, even with nothing varied), and the record says "two independent trainings"
    with both digests. ``--reuse-profile`` pins the baseline's profile instead."""
    flags = pgo("test_tiny")
    recipe = tiny_recipe(*flags)
    assert recipe.build is not None
    cache = RebuildCache(tmp_path / "cache")
    baseline = build_in(image, tiny, cache, *flags)

    def build(chosen: frozenset[str], profile: PinnedPgoProfile | None, independent_training: int) -> RebuildResult:
        return build_in(image, tiny, cache, *flags, variations=chosen, pgo_profile_tar=profile,  # type: ignore[no-any-return]
                        independent_training=independent_training)  # fmt: skip

    deterministic = runs_pgo_trainer(recipe.build.profiles["default"].configure)
    plan = second_training(trained_profile(baseline), pinned=None, reuse_profile=False, deterministic=deterministic,
                           profile="default")  # fmt: skip
    twice, _ = build_twice(baseline, build, plan, recipe.build, frozenset(), skipped={}, profile="default")
    trainings = twice.check.pgo_training
    assert trainings is not None and trainings.mode == "two independent trainings"
    second = Path(twice.check.second)
    assert second != baseline.result_dir, "nothing varied, yet the second build is not the baseline's cache entry"
    assert "TINY-TRAINING-RUN" in (second / "logs" / "make.log").read_text()
    assert trainings.first_sha256 == baseline.record.pgo_profile.sha256  # type: ignore[union-attr]
    assert trainings.counters_identical and twice.check.reproducible
    record = baseline.record.model_copy(update={"reproducibility": twice.check})
    text = "\n".join(rebuild_text(baseline.result, record))
    assert (
        f"two independent trainings: profiles sha256 {trainings.first_sha256} and {trainings.second_sha256}, "
        "counters identical (1 .gcda files)" in text
    )
    assert "training: ran 2 tests: 0 failures, 0 errors, 1 skipped; 1 process/thread/timer calls blocked" in text

    reuse = second_training(trained_profile(baseline), pinned=None, reuse_profile=True, deterministic=deterministic,
                            profile="default")  # fmt: skip
    reused, _ = build_twice(
        baseline, build, reuse, recipe.build, frozenset({"hostname"}), skipped={}, profile="default"
    )
    assert reused.check.pgo_training is not None and reused.check.pgo_training.mode == "the baseline's profile reused"
    assert reused.check.pgo_training.second_sha256 == trainings.first_sha256
    assert "TINY-TRAINING-RUN" not in (Path(reused.check.second) / "logs" / "make.log").read_text()
    assert "the baseline's profile reused (sha256 " in training_line(reused.check.pgo_training)


def test_only_the_trainers_profiles_train_twice_and_pgo_lto_says_why_it_reuses() -> None:
    recipe = load_recipe("3.13")
    assert recipe.build is not None
    profiles = recipe.build.profiles
    assert pgo_trainer_for(profiles["pgo-lto-deterministic"].configure) is not None
    assert pgo_trainer_for(profiles["pgo-lto"].configure) is None
    assert runs_pgo_trainer(profiles["pgo-lto-deterministic"].configure)
    assert not runs_pgo_trainer(profiles["pgo-lto"].configure)
    from test_rebuild import training_record

    baseline_profile = PinnedPgoProfile(
        FetchedFile("pgo-profile.tar", Path("pgo-profile.tar"), "a" * 64, 1, "baseline"),
        PgoTraining.model_validate_json(json.dumps(training_record())),
    )
    plan = second_training(baseline_profile, pinned=None, reuse_profile=False, deterministic=False, profile="pgo-lto")
    assert plan.mode == "the baseline's profile reused" and plan.profile is baseline_profile
    assert "CPython's own task, which is not deterministic" in plan.why


def test_a_pinned_trainer_profile_must_carry_a_run_that_trained(tmp_path: Path) -> None:
    """A profile the trainer made is reused only with the record of a run that trained."""
    from test_rebuild import training_record, write_profile_tar

    flags = ["--enable-optimizations", f"PROFILE_TASK={PGO_TRAINER_PATH} test_tiny"]
    record = training_record(configure=flags)
    good_run = {
        "status": "trained", "modules": ["test_tiny"], "python": "3.13.5",
        "aslr": {"off": True, "personality": "0x00040000", "how": "turned off by personality(ADDR_NO_RANDOMIZE)"},
        "environment": {"PYTHONHASHSEED": "0"}, "hash_randomization": 0,
        "tests": {"run": 2, "failures": [], "failures_total": 0, "errors": [], "errors_total": 0,
                  "unexpected_successes": [], "unexpected_successes_total": 0, "expected_failures": 0,
                  "skipped": 0, "skips": []},
    }  # fmt: skip

    def pinned(run: dict[str, object] | None) -> FetchedFile:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.tar"
        body = {**record, **({"run": run} if run is not None else {})}
        write_profile_tar(path, [(PGO_TRAINING_MEMBER, json.dumps(body).encode()), ("x.gcda", b"gcda")])
        return FetchedFile(path.name, path, hashlib.sha256(path.read_bytes()).hexdigest(), 1, "test")

    assert check_pgo_profile(pinned(good_run), flags).training.run is not None
    with pytest.raises(UnusablePgoProfile, match="carries no record of its training run"):
        check_pgo_profile(pinned(None), flags)
    errored = {**good_run, "tests": {**good_run["tests"], "errors_total": 1,  # type: ignore[dict-item]
                                     "errors": [{"test": "test.test_x", "message": "ImportError: x"}]}}  # fmt: skip
    with pytest.raises(UnusablePgoProfile, match=r"its training did not train: 1 test\(s\) errored"):
        check_pgo_profile(pinned(errored), flags)
    seeded = {**good_run, "hash_randomization": 1}
    with pytest.raises(UnusablePgoProfile, match=r"string hashing was not fixed"):
        check_pgo_profile(pinned(seeded), flags)
    aslr_on = {**good_run, "aslr": {"off": False, "personality": "0x00000000", "how": ""}}
    with pytest.raises(UnusablePgoProfile, match="ASLR was not off"):
        check_pgo_profile(pinned(aslr_on), flags)
    # CPython's own training task keeps no run record: its profiles need none.
    plain = ["--enable-optimizations", "PROFILE_TASK=-m test --pgo"]
    record["configure"] = plain
    assert check_pgo_profile(pinned(None), plain).training.run is None


def test_the_seccomp_grant_is_the_default_profile_plus_exactly_aslr_off() -> None:
    from verify.environments.podman import ADDR_NO_RANDOMIZE, UNAME26, seccomp_granting_aslr_off

    default = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    granted = seccomp_granting_aslr_off(default)
    assert granted["defaultAction"] == "SCMP_ACT_ERRNO" and granted["syscalls"][0] == default["syscalls"][0]
    added = granted["syscalls"][1:]
    assert {rule["names"][0] for rule in added} == {"personality"}
    assert [rule["args"] for rule in added] == [
        [{"index": 0, "value": ADDR_NO_RANDOMIZE, "op": "SCMP_CMP_EQ"}],
        [{"index": 0, "value": ADDR_NO_RANDOMIZE | UNAME26, "op": "SCMP_CMP_EQ"}],
    ]
