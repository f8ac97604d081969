"""Do two independent PGO training runs write the same profile? The deterministic-training experiment.

One instrumented build of a CPython release (``configure --enable-optimizations``, ``make
profile-gen-stamp``) in the recipe's pinned sandbox, then each training task is run twice from clean
counters, and the two sets of ``.gcda`` files are compared file by file. A task whose two runs agree
gives two rebuilders who share nothing the same profile, so the same optimized binaries.

    python bench/pgo_training_determinism.py --tarball ../shared/fixtures/cpython/Python-3.13.5.tar.xz \\
        --work /tmp/pgo-determinism

Tasks (``--task NAME``, repeatable; default all):
  regrtest17      CPython's regrtest on 17 tests of its --pgo set (what CI trains on), ASLR on
  regrtest17-norandom   the same with ASLR off and no --timeout watchdog thread
  plain4          test_codecs, test_re, test_array, test_difflib in one process through a bare
                  unittest.TestResult (nothing formats elapsed times), ASLR off
  plain4-aslr     the same with ASLR on
  shipped         the recipes' pgo-lto-deterministic task: cpython-verify's trainer
                  (verify/data/pgo_trainer.py) on the same four modules, started with ASLR on and
                  after a ./python run has left counters behind, as inside a real build
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path

from verify.environments import get_runner, image_for
from verify.environments.interface import Bind, SandboxSpec
from verify.rebuild.core import PGO_TRAINER_PATH, pgo_trainer
from verify.rebuild.settings import BuildSettings

REGRTEST17 = (
    "test_array test_bytes test_codecs test_collections test_datetime test_decimal test_difflib test_float "
    "test_fstring test_functools test_json test_pickle test_re test_set test_str test_struct test_xml_etree"
)
PLAIN4 = "codecs re array difflib"
# Runs the named test modules in this one process and keeps the outcome in a bare TestResult:
# unittest's text runner prints "Ran N tests in 1.234s", and formatting that float alone changes
# the counters of Python/dtoa.c from run to run.
TRAINER = """import sys, unittest
suite = unittest.defaultTestLoader.loadTestsFromNames([f"test.test_{name}" for name in sys.argv[1:]])
result = unittest.TestResult()
suite.run(result)
print("ran", result.testsRun, "failures", len(result.failures), "errors", len(result.errors))
"""
TASKS: dict[str, tuple[str, bool]] = {
    "regrtest17": (f"-m test --timeout=1200 {REGRTEST17}", True),
    "regrtest17-norandom": (f"-m test {REGRTEST17}", False),
    "plain4": (f"/build/trainer.py {PLAIN4}", False),
    "plain4-aslr": (f"/build/trainer.py {PLAIN4}", True),
    # The trainer turns ASLR off and removes earlier counters itself: it starts like the real build's.
    "shipped": (
        f"./python -c pass && ./python {PGO_TRAINER_PATH} {' '.join(f'test_{m}' for m in PLAIN4.split())}",
        True,
    ),
}
# The environment of every real build's commands (PYTHONHASHSEED fixed among them); the epoch only
# matters to tools that stamp dates, which the training does not.
ENV = replace(BuildSettings(), source_date_epoch=0).environment()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, required=True, help="a verified CPython release tarball")
    parser.add_argument("--work", type=Path, required=True, help="scratch directory (kept: the build is reused)")
    parser.add_argument("--environment", default="bookworm-cpython", help="the recipe environment to build in")
    parser.add_argument("--cache", type=Path, default=None, help="cpython-verify cache root (for the rootfs)")
    parser.add_argument("--task", action="append", choices=sorted(TASKS), help="tasks to run (default all)")
    args = parser.parse_args()
    image = image_for(args.environment, cache_dir=args.cache)
    runner = get_runner("bwrap")
    build = args.work / "build"
    source = build / "src"

    def run(command: str, log: str, *, aslr: bool = True) -> None:
        spec = SandboxSpec(binds=(Bind(build, "/build", writable=True),), env=ENV, cwd="/build/src", aslr=aslr)
        started = time.monotonic()
        result = runner.run(image, ["/bin/sh", "-c", command], spec, log_path=args.work / log)
        print(f"{log}: exit {result.returncode}, {time.monotonic() - started:.0f} s", file=sys.stderr)
        if result.returncode != 0:
            raise SystemExit(f"{command!r} failed; see {args.work / log}")

    if not (args.work / "instrumented").exists():
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        with tarfile.open(args.tarball) as archive:
            top = archive.getmembers()[0].name.split("/")[0]
            archive.extractall(build, filter="data")
        (build / top).rename(source)
        run("./configure --prefix=/opt/python --with-ensurepip=no --enable-optimizations >/dev/null", "configure.log")
        run(f"make -j{len(os.sched_getaffinity(0))} profile-gen-stamp", "instrumented-build.log")
        (args.work / "instrumented").touch()
    (build / "trainer.py").write_text(TRAINER)
    (build / Path(PGO_TRAINER_PATH).name).write_bytes(pgo_trainer())

    print("| training task | .gcda files | differing between two runs |")
    print("|---|---|---|")
    for name in args.task or list(TASKS):
        task, aslr = TASKS[name]
        profiles = []
        for attempt in (1, 2):
            for stale in source.rglob("*.gcda"):
                stale.unlink()
            command = task if task.startswith("./python") else f"./python {task}"
            run(command, f"train-{name}-{attempt}.log", aslr=aslr)
            profiles.append({str(p.relative_to(source)): hashlib.sha256(p.read_bytes()).hexdigest()
                             for p in source.rglob("*.gcda")})  # fmt: skip
        first, second = profiles
        differing = sorted(path for path in first.keys() | second.keys() if first.get(path) != second.get(path))
        print(f"| {name} | {len(first)} | {len(differing)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
