"""cpython-verify's deterministic PGO training task (verify/data/pgo_trainer.py), run for real.

The interpreter here stands in for a build's instrumented ./python: the trainer must re-execute itself
with ASLR off, remove the counters earlier runs left in the build directory, and run the named test
modules in one process. (Its determinism on a real instrumented CPython is bench/pgo_training_determinism.py's
"shipped" task.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from verify.rebuild.core import pgo_trainer

TEST_MODULE = textwrap.dedent(
    """\
    import unittest

    class Personality(unittest.TestCase):
        def test_runs_with_aslr_off(self):
            with open("/proc/self/personality") as personality:
                self.assertTrue(int(personality.read(), 16) & 0x0040000)

        def test_a_failure_is_counted_not_fatal(self):
            self.fail("a failing test still trains")
    """
)


def _trainer(tmp_path: Path) -> Path:
    path = tmp_path / "trainer.py"
    path.write_bytes(pgo_trainer())
    return path


def _build_dir(tmp_path: Path) -> Path:
    build = tmp_path / "build"
    (build / "test").mkdir(parents=True)
    (build / "test" / "__init__.py").write_text("")
    (build / "test" / "test_personality.py").write_text(TEST_MODULE)
    (build / "Objects").mkdir()
    (build / "Objects" / "dictobject.gcda").write_bytes(b"counts from a run with ASLR on")
    return build


def test_the_trainer_runs_the_modules_with_aslr_off_after_removing_earlier_counters(tmp_path: Path) -> None:
    build = _build_dir(tmp_path)
    # In a real build ./python finds the test package in the source tree's Lib/; here PYTHONPATH stands in.
    completed = subprocess.run(
        [sys.executable, str(_trainer(tmp_path)), "test_personality"],
        cwd=build, capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(build)},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "removed 1 earlier .gcda files; ran 2 tests, 1 failures, 0 errors" in completed.stdout
    assert not list(build.rglob("*.gcda"))


def test_the_trainer_fails_when_it_has_nothing_to_train_on(tmp_path: Path) -> None:
    build = _build_dir(tmp_path)
    trainer = _trainer(tmp_path)
    bare = subprocess.run([sys.executable, str(trainer)], cwd=build, capture_output=True, text=True, check=False)
    assert bare.returncode == 2 and "name the test modules" in bare.stderr
    missing = subprocess.run(
        [sys.executable, str(trainer), "test_nonexistent"], cwd=build, capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(build)},
    )  # fmt: skip
    # An unimportable module is one errored test in unittest, not zero: the training still fails the
    # build only when no test ran at all, so a module list with a typo is visible in the counts.
    assert "ran 1 tests, 0 failures, 1 errors" in missing.stdout
