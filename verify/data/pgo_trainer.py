"""cpython-verify's deterministic PGO training task: ``PROFILE_TASK=<this file> TEST_MODULE...``.

Run by a CPython build's instrumented ``./python`` in place of the test suite. Two independent
trainings with this task write identical ``.gcda`` files, so two rebuilders who share nothing get
the same optimized binaries (measured with ``bench/pgo_training_determinism.py``). Three things
make it so, each the cause of differing counters in CPython's own training:

1. ASLR off. With ASLR, object addresses (``id()``, hashes of objects without ``__hash__``) change
   from run to run, and dict and set layouts with them. The task re-executes itself under
   ``setarch -R`` and refuses to train if ASLR is still on.
2. Only the training's own counts. The instrumented build runs ``./python`` itself (sysconfig,
   setup.py, frozen modules) with ASLR on, and the first process here ran before the re-execution:
   every ``.gcda`` file under the build directory is removed before the tests run.
3. No timing, no threads, no subprocesses. The named test modules run in this one process and
   their outcome goes to a bare ``unittest.TestResult``: unittest's text runner prints "Ran N
   tests in 1.234s", and formatting that float alone changes the counters of ``Python/dtoa.c``.

The build's instrumented interpreter runs this file, so it keeps to what Python 3.8 understands.
"""

from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path

_RE_EXECUTED = "CPYTHON_VERIFY_PGO_TRAINING"
_ADDR_NO_RANDOMIZE = 0x0040000


def aslr_is_off() -> bool:
    """True when this process runs with address space layout randomisation turned off."""
    with open("/proc/self/personality") as personality:
        return int(personality.read(), 16) & _ADDR_NO_RANDOMIZE != 0


def remove_counters(top: Path) -> int:
    """Remove every ``.gcda`` file under ``top``; return how many there were."""
    counters = [path for path in top.rglob("*.gcda") if path.is_file()]
    for path in counters:
        path.unlink()
    return len(counters)


def main(modules: list[str]) -> int:
    """Train on ``modules`` (names under ``test``); the exit status of the training run."""
    if not modules:
        print("pgo_trainer: name the test modules to train on (test_codecs ...)", file=sys.stderr)
        return 2
    if os.environ.get(_RE_EXECUTED) != "1":
        os.environ[_RE_EXECUTED] = "1"
        command = ["setarch", os.uname().machine, "-R", sys.executable, str(Path(__file__).resolve()), *modules]
        os.execvp(command[0], command)  # noqa: S606 (a fixed argument list; PATH is the sandbox's)
    if not aslr_is_off():
        print("pgo_trainer: ASLR is still on after setarch -R; refusing to train", file=sys.stderr)
        return 1
    removed = remove_counters(Path.cwd())
    suite = unittest.defaultTestLoader.loadTestsFromNames(["test." + name for name in modules])
    result = unittest.TestResult()
    suite.run(result)
    print(
        "pgo_trainer: removed", removed, "earlier .gcda files; ran", result.testsRun, "tests,",
        len(result.failures), "failures,", len(result.errors), "errors,", len(result.skipped), "skipped",
    )  # fmt: skip
    return 0 if result.testsRun else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
