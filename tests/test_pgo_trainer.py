"""cpython-verify's deterministic PGO training task (verify/rebuild/pgo_trainer.py), run for real.

The interpreter here stands in for a build's instrumented ./python: the trainer must re-execute itself
with ASLR off in an environment it sets itself, remove the counters earlier runs left in the build
directory, run the named test modules in one process with every process, thread and timer refused,
and write the record the rebuild reads. (Inside a real sandboxed build: tests/test_pgo_training.py; its
determinism on a real instrumented CPython: bench/pgo_training_determinism.py's "shipped" task.)"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from verify.rebuild.core import PGO_TRAINER_RECORD_PATH, pgo_trainer
from verify.rebuild.training import COPY_REVERSED_VARIABLE, FIRST_STAGE_NAME, TRAINER_RECORD_NAME, read_training_run

TEST_MODULE = textwrap.dedent(
    """\
    import os
    import random
    import unittest

    class Personality(unittest.TestCase):
        def test_runs_with_aslr_off(self):
            with open("/proc/self/personality") as personality:
                self.assertTrue(int(personality.read(), 16) & 0x0040000)

        def test_runs_in_the_environment_the_trainer_set(self):
            self.assertEqual(os.environ["PYTHONHASHSEED"], "0")
            self.assertEqual(os.environ["LC_ALL"], "C.UTF-8")
            self.assertEqual(os.environ["TZ"], "UTC")
            self.assertNotIn("LD_PRELOAD", os.environ)
            self.assertNotIn("FAKETIME", os.environ)

        def test_starts_with_exactly_the_environment_the_trainer_set(self):
            # The initial environment, not os.environ: a value the first stage passed and the second popped
            # was still allocated, and its length moved every later object.
            with open("/proc/self/environ", "rb") as initial:
                names = sorted(entry.split(b"=", 1)[0] for entry in initial.read().split(b"\\0") if entry)
            self.assertEqual(names, [b"CPYTHON_VERIFY_PGO_TRAINING", b"HOME", b"LANG", b"LC_ALL", b"PATH",
                                     b"PYTHONHASHSEED", b"PYTHONPYCACHEPREFIX", b"TERM", b"TMPDIR", b"TZ"])

        def test_sees_one_view_of_the_host(self):
            import socket
            self.assertEqual(os.uname()[:4], ("Linux", "build", "0.0.0", "#1"))
            self.assertEqual(socket.gethostname(), "build")
            self.assertEqual(os.cpu_count(), 1)

        def test_randomness_is_seeded(self):
            self.assertEqual(random.random(), random.Random(0).random())
            self.assertEqual(random.Random().random(), random.Random(0).random())
    """
)
STARTS_THINGS = textwrap.dedent(
    """\
    import faulthandler
    import multiprocessing
    import os
    import signal
    import subprocess
    import sys
    import threading
    import unittest
    from concurrent.futures import ThreadPoolExecutor

    class Starts(unittest.TestCase):
        def test_subprocess(self):
            subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)

        def test_fork(self):
            if os.fork() == 0:
                os._exit(0)

        def test_posix_spawn(self):
            os.posix_spawn("/bin/true", ["true"], {})

        def test_system(self):
            os.system("true")

        def test_exec(self):
            os.execv("/bin/true", ["true"])

        def test_multiprocessing(self):
            process = multiprocessing.get_context("forkserver").Process(target=print)
            process.start()
            process.join()

        def test_thread(self):
            threading.Thread(target=print).start()

        def test_timer(self):
            threading.Timer(0.01, print).start()

        def test_executor(self):
            with ThreadPoolExecutor() as pool:
                pool.submit(print).result()

        def test_alarm(self):
            signal.alarm(1)

        def test_itimer(self):
            signal.setitimer(signal.ITIMER_REAL, 0.5)

        def test_watchdog(self):
            faulthandler.dump_traceback_later(10)
    """
)


PGO_TRAINER_SOURCE = Path(__file__).resolve().parent.parent / "verify" / "rebuild" / "pgo_trainer.py"
TRAINING_COPY_FIELDS = (
    "directory", "files", "mount", "file_system", "device", "first_inode", "made_in",
    "listing_order", "directories_reordered", "directories_unsorted", "skipped",
)  # fmt: skip
NOT_A_BUILD = "not a CPython build directory (no python and pybuilddir.txt in it): trained in place"


def _build_dir(tmp_path: Path, modules: dict[str, str]) -> tuple[Path, Path]:
    """A build directory holding a stale counter, and the trainer beside it; in a real build ./python finds
    the ``test`` package in its own Lib/, here it sits beside the trainer (the script's directory is on
    sys.path, and the trainer sets PYTHONPATH aside with the rest of the environment)."""
    build = tmp_path / "build"
    (build / "Objects").mkdir(parents=True)
    (build / "Objects" / "dictobject.gcda").write_bytes(b"counts from a run with ASLR on")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "__init__.py").write_text("")
    for name, text in modules.items():
        (tmp_path / "test" / f"{name}.py").write_text(text)
    trainer = tmp_path / "trainer.py"
    trainer.write_bytes(pgo_trainer())
    return build, trainer


def _train(build: Path, trainer: Path, *modules: str, env: dict[str, str] | None = None) -> tuple[int, str, Any]:
    completed = subprocess.run(
        [sys.executable, str(trainer), *modules], cwd=build, capture_output=True, text=True, check=False,
        env=env or {"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    record_path = trainer.with_name(TRAINER_RECORD_NAME)
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    run, _problems = read_training_run(record_path)
    if run is not None:  # the record as the rebuild reads it: with the first stage's facts merged in
        record = run.model_dump(mode="json")
    return completed.returncode, completed.stdout + completed.stderr, record


def test_the_record_is_where_the_rebuild_reads_it() -> None:
    assert Path(PGO_TRAINER_RECORD_PATH).name == TRAINER_RECORD_NAME
    assert f'RECORD_NAME = "{TRAINER_RECORD_NAME}"' in pgo_trainer().decode()
    assert FIRST_STAGE_NAME == TRAINER_RECORD_NAME + ".first-stage"
    assert 'STAGE_NAME = RECORD_NAME + ".first-stage"' in pgo_trainer().decode()
    assert f'COPY_REVERSED_VARIABLE = "{COPY_REVERSED_VARIABLE}"' in pgo_trainer().decode()


def test_a_fifo_in_place_of_a_record_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    """The build writes these files: a FIFO planted at either name is refused at once, in one line."""
    record = tmp_path / TRAINER_RECORD_NAME
    os.mkfifo(record)
    run, problems = read_training_run(record)
    assert run is None and problems == (
        "the trainer's record cannot be read: not a regular file (a FIFO, socket or device)",
    )
    record.unlink()
    record.write_text(
        json.dumps(
            {"format": "cpython-verify/pgo-training-run/v1", "status": "trained", "modules": ["x"], "python": "3.13.5"}
        )
    )
    os.mkfifo(tmp_path / FIRST_STAGE_NAME)
    run, problems = read_training_run(record)
    assert run is None and len(problems) == 1
    assert problems[0].startswith(f"the trainer's record is not a training record: {FIRST_STAGE_NAME} cannot be read")


def test_the_trainer_trains_with_aslr_off_in_its_own_environment_and_records_it(tmp_path: Path) -> None:
    build, trainer = _build_dir(tmp_path, {"test_personality": TEST_MODULE})
    varied = {"PATH": "/usr/bin:/bin", "LC_ALL": "fr_CH.UTF-8", "TZ": "GMT+12", "PYTHONHASHSEED": "random",
              "LD_PRELOAD": "", "FAKETIME": "+397d", "HOME": "/nonexistent"}  # fmt: skip
    status, output, record = _train(build, trainer, "test_personality", env=varied)
    assert status == 0, output
    assert "removed 1 earlier .gcda files; training from the build directory itself" in output
    assert "ran 5 tests, 0 failures, 0 errors, 0 skipped" in output
    assert record["training_copy"] == {**dict.fromkeys(TRAINING_COPY_FIELDS), "skipped": NOT_A_BUILD}
    assert not list(build.rglob("*.gcda"))
    assert record["status"] == "trained" and record["reason"] is None
    assert record["aslr"]["off"] and record["aslr"]["personality"] == "0x00040000"
    assert record["hash_randomization"] == 0 and record["random_seed"] == 0 and record["umask"] == "022"
    assert record["environment"]["PYTHONHASHSEED"] == "0" and record["environment"]["HOME"] == "/tmp"
    assert {"FAKETIME", "LD_PRELOAD"} <= set(record["environment_removed"])
    assert record["counters_removed"] == 1 and record["tests"]["run"] == 5 and record["blocked"] == []
    assert record["host"]["nodename"] == os.uname().nodename and record["host_view"]["nodename"] == "build"
    # Every entry of the build directory (and beside the trainer) got one access time with a fixed fraction.
    assert record["access_times_pinned"] >= 4
    assert {os.stat(path).st_atime_ns % 10**9 for path in (build, build / "Objects", trainer)} == {500_000_000}
    run, problems = read_training_run(trainer.with_name(TRAINER_RECORD_NAME))
    assert run is not None and problems == ()
    assert run.summary().startswith("ran 5 tests: 0 failures, 0 errors, 0 skipped; 0 process/thread/timer calls")


def test_the_trainer_pins_its_personality_stack_limit_and_descriptors_whatever_it_inherits(tmp_path: Path) -> None:
    """A 2.6 uname personality, an unlimited stack (another memory layout) and an inherited descriptor (make's
    jobserver pipe with -j) are all set back before the training starts."""
    build, trainer = _build_dir(tmp_path, {"test_personality": TEST_MODULE})
    read_end, write_end = os.pipe()
    try:
        completed = subprocess.run(
            ["setarch", os.uname().machine, "--uname-2.6", "/bin/sh", "-c",
             'ulimit -s unlimited && exec "$@"', "sh", sys.executable, str(trainer),
             "test_personality"],
            cwd=build, capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"},
            pass_fds=(read_end,),
        )  # fmt: skip
    finally:
        os.close(read_end)
        os.close(write_end)
    assert completed.returncode == 0, completed.stderr
    run, problems = read_training_run(trainer.with_name(TRAINER_RECORD_NAME))
    assert run is not None and problems == (), problems
    record = run.model_dump(mode="json")
    assert record["aslr"]["personality"] == "0x00040000", "exactly ASLR off: the 2.6 uname is gone"
    assert record["stack_limit"] == str(8 << 20)
    assert record["descriptors_closed"] >= 1


def test_every_process_thread_and_timer_a_test_starts_is_refused_skipped_and_named(tmp_path: Path) -> None:
    """Whatever a test module contains, the training stays one process and one thread: each way to start a
    process (a -I child would even ignore the hash seed), a thread or a timer skips its test instead."""
    build, trainer = _build_dir(tmp_path, {"test_starts": STARTS_THINGS})
    status, output, record = _train(build, trainer, "test_starts")
    assert status == 0, output
    assert record["tests"]["run"] == 12 and record["tests"]["skipped"] == 12, record["tests"]
    blocked = {entry["test"].rsplit(".", 1)[1]: entry["call"] for entry in record["blocked"]}
    assert blocked == {
        "test_subprocess": "subprocess.Popen._execute_child",
        "test_fork": "os.fork",
        "test_posix_spawn": "os.posix_spawn",
        "test_system": "os.system",
        "test_exec": "os.execv",
        "test_multiprocessing": "_posixsubprocess.fork_exec",
        "test_thread": "threading.Thread.start",
        "test_timer": "threading.Thread.start",
        "test_executor": "threading.Thread.start",
        "test_alarm": "signal.alarm",
        "test_itimer": "signal.setitimer",
        "test_watchdog": "faulthandler.dump_traceback_later",
    }
    assert record["blocked_total"] == 12
    assert "12 calls blocked" in output


def test_a_training_with_a_failure_or_an_unimportable_module_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    failing = "import unittest\nclass F(unittest.TestCase):\n    def test_f(self):\n        self.fail('TINY')\n"
    build, trainer = _build_dir(tmp_path, {"test_failing": failing})
    status, output, record = _train(build, trainer, "test_failing", "test_nonexistent")
    assert status == 1, output
    assert record["status"] == "failed" and record["reason"] == "1 failures, 1 errors, 0 unexpected successes"
    assert record["tests"]["failures"] == [{"test": "test.test_failing.F.test_f", "message": "AssertionError: TINY"}]
    assert record["tests"]["errors"][0]["message"] == "ModuleNotFoundError: No module named 'test.test_nonexistent'"
    run, problems = read_training_run(trainer.with_name(TRAINER_RECORD_NAME))
    assert run is not None and run.status == "failed"
    assert "1 test(s) failed (first: test.test_failing.F.test_f: AssertionError: TINY)" in problems


def test_a_module_that_skips_itself_on_import_counts_as_a_skip(tmp_path: Path) -> None:
    skipping = "import unittest\nraise unittest.SkipTest('not on this platform')\n"
    build, trainer = _build_dir(tmp_path, {"test_personality": TEST_MODULE, "test_windows": skipping})
    status, output, record = _train(build, trainer, "test_personality", "test_windows")
    assert status == 0, output
    assert record["tests"]["run"] == 6 and record["tests"]["skipped"] == 1
    assert record["tests"]["skips"] == [{"test": "test.test_windows", "message": "not on this platform"}]


def test_the_trainer_refuses_without_modules_and_in_a_second_stage_it_did_not_set_up(tmp_path: Path) -> None:
    build, trainer = _build_dir(tmp_path, {"test_personality": TEST_MODULE})
    status, output, record = _train(build, trainer)
    assert status == 2 and "no test module was named" in output and record["status"] == "refused"
    # Started as if re-executed, without the environment the trainer sets (nor ASLR off): refused, recorded.
    status, output, record = _train(build, trainer, "test_personality",
                                    env={"PATH": "/usr/bin:/bin", "CPYTHON_VERIFY_PGO_TRAINING": "1"})  # fmt: skip
    assert status == 1 and record["status"] == "refused", output
    assert list(build.rglob("*.gcda")), "a refused training removes nothing"


def _make_build(build: Path) -> None:
    """A small tree shaped like a CPython build directory, as the trainer's copy sees one."""
    (build / "Lib" / "encodings" / "__pycache__").mkdir(parents=True)
    (build / "Modules").mkdir()
    (build / "build" / "lib.linux-x86_64-3.13").mkdir(parents=True)
    (build / "python").write_bytes(b"\x7fELF interpreter")
    (build / "pybuilddir.txt").write_text("build/lib.linux-x86_64-3.13")
    (build / "Modules" / "Setup.local").write_text("")
    (build / "Modules" / "_json.so").write_bytes(b"module")
    (build / "Modules" / "_json.gcda").write_bytes(b"counts")
    os.symlink("../../Modules/_json.so", build / "build" / "lib.linux-x86_64-3.13" / "_json.so")
    for name in ("zzz.py", "aaa.py", "encodings/utf_8.py", "encodings/__pycache__/utf_8.cpython-313.pyc"):
        (build / "Lib" / name).write_text(name)
    (build / "Lib" / "stale.pyc").write_bytes(b"bytecode")


def _trainer_module(copy_root: Path) -> ModuleType:
    """The trainer, imported as a module (as the build's interpreter runs it), copying under ``copy_root``."""
    spec = importlib.util.spec_from_file_location("pgo_trainer_under_test", PGO_TRAINER_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.COPY_ROOT = str(copy_root)  # type: ignore[attr-defined]
    return module


def test_the_training_reads_a_sorted_copy_of_the_build_without_bytecode_or_counters(tmp_path: Path) -> None:
    """What the interpreter reads of a CPython build directory is copied: links followed (build/lib.*/
    links to Modules/*.so), no __pycache__, .pyc or counters, entries made in sorted order, the trainer and an
    empty bytecode cache beside; a part missing from the build is not made up. The copy's name is the same
    whatever the build directory is called (a varied build path)."""
    build = tmp_path / "varied-build-path" / "cpython-rebuild"
    _make_build(build)
    trainer = _trainer_module(tmp_path / "copy")
    copied = trainer.training_copy(build)
    copy = tmp_path / "copy" / "cpython"
    assert copied["directory"] == str(copy) and copied["files"] == 7
    assert copied["first_inode"] > 256 and copied["file_system"] != "unknown"
    assert sorted(str(path.relative_to(copy)) for path in copy.rglob("*")) == [
        "Lib", "Lib/aaa.py", "Lib/encodings", "Lib/encodings/utf_8.py", "Lib/zzz.py", "Modules", "Modules/Setup.local",
        "build", "build/lib.linux-x86_64-3.13", "build/lib.linux-x86_64-3.13/_json.so", "pybuilddir.txt", "python",
    ]  # fmt: skip
    linked = copy / "build" / "lib.linux-x86_64-3.13" / "_json.so"
    assert not linked.is_symlink() and linked.read_bytes() == b"module"
    # Made in sorted order: a file system that numbers inodes as it creates them (a fresh tmpfs) numbers them so.
    made = [os.lstat(copy / "Lib" / name).st_ino for name in ("aaa.py", "encodings", "zzz.py")]
    assert made == sorted(made) or copied["file_system"] != "tmpfs"
    assert (tmp_path / "copy" / PGO_TRAINER_SOURCE.name).read_bytes() == PGO_TRAINER_SOURCE.read_bytes()
    assert list((tmp_path / "copy" / "cpython-verify-pgo-pycache").iterdir()) == []
    # Not a CPython build directory: nothing is copied, and the record says why.
    assert trainer.training_copy(tmp_path / "copy" / "cpython" / "Lib") == {"skipped": NOT_A_BUILD}


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a tmpfs at /dev/shm")
def test_the_copy_on_tmpfs_lists_every_directory_in_sorted_order_whatever_the_kernel_lists_first() -> None:
    """The training's start-up lists the copy's directories before the trainer sorts what it lists, and
    tmpfs lists names newest first in some kernel versions and in creation order in others (measured on
    3.13.5: the two orders give different counters). Made in sorted order, then moved where needed, every
    directory of the copy lists its names sorted, and the record says how the file system listed."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as scratch:
        _make_build(Path(scratch) / "build")
        trainer = _trainer_module(Path(scratch) / "copy")
        copied = trainer.training_copy(Path(scratch) / "build")
        assert copied["file_system"] == "tmpfs" and copied["listing_order"] in ("creation order", "newest first")
        assert copied["directories_unsorted"] == 0 and copied["made_in"] == "sorted order"
        if copied["listing_order"] == "newest first":
            assert copied["directories_reordered"] > 0
        listed = {
            str(directory): os.listdir(directory)
            for directory in (Path(scratch) / "copy", *(p for p in (Path(scratch) / "copy").rglob("*") if p.is_dir()))
        }
        assert all(names == sorted(names) for names in listed.values()), listed
        # One more name in the copy's root (the first stage's file), and the root is put in order again.
        (Path(scratch) / "copy" / "a-new-name").touch()
        trainer.list_sorted(Path(scratch) / "copy", copied["listing_order"])
        names = os.listdir(Path(scratch) / "copy")
        assert names == sorted(names)
        # Made in the other order (as the bench's --reverse-copy makes it), it still lists sorted.
        os.environ[trainer.COPY_REVERSED_VARIABLE] = "1"
        try:
            again = trainer.training_copy(Path(scratch) / "build")
        finally:
            del os.environ[trainer.COPY_REVERSED_VARIABLE]
        assert again["made_in"] == "reverse sorted order" and again["directories_unsorted"] == 0
        for directory in (p for p in (Path(scratch) / "copy").rglob("*") if p.is_dir()):
            assert os.listdir(directory) == sorted(os.listdir(directory)), directory


def test_a_link_loop_in_the_build_is_refused_not_followed(tmp_path: Path) -> None:
    """A link to a directory the copy is inside would be followed until the stack ran out: it is an
    OSError naming the loop, which the first stage turns into a refusal."""
    build = tmp_path / "cpython"
    _make_build(build)
    os.symlink("..", build / "Lib" / "encodings" / "up")
    trainer = _trainer_module(tmp_path / "copy")
    with pytest.raises(OSError, match="a loop"):
        trainer.training_copy(build)


def test_a_mount_point_with_an_escaped_space_is_read_as_the_kernel_means_it(tmp_path: Path) -> None:
    """/proc/self/mountinfo writes a space in a mount point as \\040."""
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw - ext4 /dev/vda rw\n30 22 0:40 / /tmp/with\\040space rw,nosuid - tmpfs tmpfs rw\n"
    )
    trainer = _trainer_module(tmp_path / "copy")
    assert trainer.mount_of("/tmp/with space/x", str(mountinfo)) == ("/tmp/with space", "tmpfs")
