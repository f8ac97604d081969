"""Do two independent PGO training runs write the same profile? The deterministic-training experiment.

One instrumented build of a CPython release (``configure --enable-optimizations``, ``make
profile-gen-stamp``) in the recipe's pinned sandbox is kept untouched; every training run starts
from a fresh copy of it, so each run starts from exactly the state a real build's training starts
from (no ``.gcda`` file, and only the ``.pyc`` files the build itself wrote: the training compiles
the test modules' ``.pyc`` itself, every time). Each pair of runs is compared file by file; a task
whose pairs agree gives two rebuilders who share nothing the same profile, so the same optimized
binaries.

    python bench/pgo_training_determinism.py --tarball ../shared/fixtures/cpython/Python-3.13.5.tar.xz \\
        --work /tmp/pgo-determinism --task shipped --pairs 5 --concurrent --hog 1

``--concurrent`` runs the two trainings of a pair side by side (two copies, two sandboxes), as two
rebuilders on one loaded machine would; ``--hog N`` keeps N busy-looping processes beside them.
``--second-work DIR`` keeps the second copy of each pair in DIR (another file system: ``/dev/shm`` is a
tmpfs). ``--vary NAME[,NAME...]`` trains the second run of each pair in a sandbox varied as ``rebuild --vary``
varies a build (``check``'s defaults: ``cpus,hostname,locale,time,timezone``): what the varied sandbox
changes in the training alone, with the instrumented build left the same.
Exit status 0 when every pair of every task wrote identical ``.gcda`` files, 1 otherwise.

Tasks (``--task NAME``, repeatable; default all):
  regrtest17      CPython's regrtest on 17 tests of its --pgo set (what CI trains on), ASLR on
  regrtest17-norandom   the same with ASLR off and no --timeout watchdog thread
  plain4          test_codecs, test_re, test_array, test_difflib in one process through a bare
                  unittest.TestResult (nothing formats elapsed times), ASLR off
  plain4-aslr     the same with ASLR on
  shipped         the recipe's pgo-lto-deterministic PROFILE_TASK for the release's series:
                  cpython-verify's trainer (verify/rebuild/pgo_trainer.py), started with ASLR on and
                  after a ./python run has left counters behind, as inside a real build; its
                  training record is read and summarised
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from verify.environments import get_runner, image_for
from verify.environments.interface import Bind, RootfsImage, Runner
from verify.rebuild.core import PGO_TRAINER_PATH, PGO_TRAINER_RECORD_PATH, pgo_trainer, sandbox_spec
from verify.rebuild.settings import BUILD_MOUNT, DEFAULT_BUILD_DIR, BuildSettings, apply_variations
from verify.rebuild.training import COPY_REVERSED_VARIABLE, counters_digest, read_training_run
from verify.source.recipes import load_recipe
from verify.source.unpack import extract_all_data

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
PLAIN_TRAINER_PATH = f"{BUILD_MOUNT}/trainer.py"
# The environment of every real build's commands (PYTHONHASHSEED fixed among them); the epoch only
# matters to tools that stamp dates, which the training does not.
BASELINE = replace(BuildSettings(), source_date_epoch=0)
ENV = BASELINE.environment()
TRAINING_ONLY_UNSUPPORTED = frozenset({"build_path", "user_group"})
"""Variations that change where the tree is or who owns it: they need their own instrumented build."""
SOURCE = Path(DEFAULT_BUILD_DIR).relative_to(BUILD_MOUNT)
"""Where the source tree sits under each copy's ``/build``: the path a real build uses."""
CONFIGURE = "./configure --prefix=/opt/python --with-ensurepip=no --enable-optimizations"


@dataclass(frozen=True)
class Task:
    """One training task: the shell command run in the source directory, and whether ASLR stays on."""

    command: str
    aslr: bool


def tasks(series: str) -> dict[str, Task]:
    """The tasks for a release of ``series``; ``shipped`` is that series' recipe's own PROFILE_TASK."""
    recipe = load_recipe(series)
    if recipe.build is None or "pgo-lto-deterministic" not in recipe.build.profiles:
        raise SystemExit(f"the {series} recipe has no pgo-lto-deterministic profile")
    profile_task = next(
        flag.removeprefix("PROFILE_TASK=")
        for flag in recipe.build.profiles["pgo-lto-deterministic"].configure
        if flag.startswith("PROFILE_TASK=")
    )
    return {
        "regrtest17": Task(f"./python -m test --timeout=1200 {REGRTEST17}", aslr=True),
        "regrtest17-norandom": Task(f"./python -m test {REGRTEST17}", aslr=False),
        "plain4": Task(f"./python {PLAIN_TRAINER_PATH} {' '.join(PLAIN4.split())}", aslr=False),
        "plain4-aslr": Task(f"./python {PLAIN_TRAINER_PATH} {' '.join(PLAIN4.split())}", aslr=True),
        # The trainer turns ASLR off and removes earlier counters itself: it starts like the real build's.
        "shipped": Task(f"./python -c pass && ./python {profile_task}", aslr=True),
    }


def series_of(tarball: Path) -> str:
    """``3.13`` for ``Python-3.13.5.tar.xz``."""
    match = re.match(r"Python-(\d+)\.(\d+)\.", tarball.name)
    if match is None:
        raise SystemExit(f"{tarball.name}: not a CPython release tarball name")
    return f"{match[1]}.{match[2]}"


class Sandbox:
    """Runs commands in the recipe's sandbox with one copy of the build tree bound at ``/build``."""

    def __init__(self, runner: Runner, image: RootfsImage, logs: Path) -> None:
        self.runner, self.image, self.logs = runner, image, logs

    def run(self, tree: Path, command: str, log: str, *, aslr: bool = True, settings: BuildSettings = BASELINE) -> None:
        """Run ``command`` with ``tree`` as ``/build`` in the sandbox ``settings`` describe (the baseline's
        unless a pair's second run is varied); raise SystemExit if it fails."""
        # The sandbox a real build with these settings gets; a task that turns ASLR off turns it off for itself.
        spec = sandbox_spec(settings, (Bind(tree, BUILD_MOUNT, writable=True),))
        spec = replace(spec, aslr=aslr and spec.aslr)
        started = time.monotonic()
        result = self.runner.run(self.image, ["/bin/sh", "-c", command], spec, log_path=self.logs / log)
        print(f"{log}: exit {result.returncode}, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        if result.returncode != 0:
            raise SystemExit(f"{command!r} failed; see {self.logs / log}")


def instrumented_build(tarball: Path, pristine: Path, sandbox: Sandbox) -> None:
    """Configure and ``make profile-gen-stamp`` in ``pristine`` (kept, never trained in)."""
    shutil.rmtree(pristine, ignore_errors=True)
    pristine.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        top = archive.getmembers()[0].name.split("/")[0]
        extract_all_data(archive, pristine)
    (pristine / top).rename(pristine / SOURCE)
    sandbox.run(pristine, f"{CONFIGURE} >/dev/null", "configure.log")
    sandbox.run(pristine, f"make -j{len(os.sched_getaffinity(0))} profile-gen-stamp", "instrumented-build.log")
    (pristine / ".instrumented").touch()


def access_times_as_unpacked(tree: Path) -> None:
    """Every file's access time set to its modification time, as a tree unpacked and never read since has
    them (the first copy of a fresh build, or a noatime mount): the other copy of a pair keeps the
    access times the copy gave it."""
    for directory, _dirnames, filenames in os.walk(tree):
        for name in filenames:
            path = os.path.join(directory, name)
            status = os.lstat(path)
            os.utime(path, ns=(status.st_mtime_ns, status.st_mtime_ns), follow_symlinks=False)


def fresh_copy(pristine: Path, copy: Path, *, keep_counters: bool, trainer: bytes) -> None:
    """``copy`` becomes a copy of the untouched instrumented tree, with the task's trainer beside it. The
    instrumented build ran ``./python`` itself (sysconfig; 3.11's setup.py), which left counters: the
    shipped trainer must remove them itself (``keep_counters``); for the other tasks they go now."""
    shutil.rmtree(copy, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(pristine), str(copy)], check=True)
    if not keep_counters:
        for stale in copy.rglob("*.gcda"):
            stale.unlink()
    # Only the trainer the task runs sits beside the build directory, as in a real build: the trainer's own
    # directory is the first entry of sys.path, and what the import system finds listed there is counted.
    if keep_counters:
        (copy / Path(PGO_TRAINER_PATH).name).write_bytes(trainer)
    else:
        (copy / Path(PLAIN_TRAINER_PATH).name).write_text(TRAINER)


def counters(tree: Path) -> dict[str, str]:
    """Relative path -> sha256 of every ``.gcda`` file of a copy's source tree."""
    source = tree / SOURCE
    return {
        str(path.relative_to(source)): hashlib.sha256(path.read_bytes()).hexdigest() for path in source.rglob("*.gcda")
    }


def training_summary(tree: Path) -> str:
    """The shipped trainer's record, in one line (empty for the other tasks)."""
    path = tree / Path(PGO_TRAINER_RECORD_PATH).name
    if not path.is_file():
        return ""
    # Read as the rebuild reads it: with the first stage's facts (counters removed, the copy) merged in.
    run, problems = read_training_run(path)
    if run is None or run.tests is None:
        return f"unreadable: {'; '.join(problems)}"
    tests, copy = run.tests, run.training_copy
    where = f"from a copy on {copy.file_system}" if copy and copy.directory else "in place"
    return (
        f"{run.status}: {tests.run} tests, {tests.failures_total} failures, {tests.errors_total} errors, "
        f"{tests.skipped} skipped, {run.blocked_total} blocked calls, {run.counters_removed} counters removed, "
        f"trained {where}"
    )


def hog(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that keep one CPU each busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, required=True, help="a verified CPython release tarball")
    parser.add_argument("--work", type=Path, required=True, help="scratch directory (the instrumented build is reused)")
    parser.add_argument("--environment", default="bookworm-cpython", help="the recipe environment to build in")
    parser.add_argument("--cache", type=Path, default=None, help="cpython-verify cache root (for the rootfs)")
    parser.add_argument("--runner", default="bwrap", help="sandbox runner (default bwrap)")
    parser.add_argument("--task", action="append", help="tasks to run (default all but the experimental ones)")
    parser.add_argument("--pairs", type=int, default=1, help="pairs of trainings per task (default 1)")
    parser.add_argument("--concurrent", action="store_true", help="run the two trainings of a pair side by side")
    parser.add_argument("--hog", type=int, default=0, help="busy-looping processes kept beside the trainings")
    parser.add_argument(
        "--second-work",
        type=Path,
        default=None,
        help="put the second copy of each pair here instead (e.g. on another file system: /dev/shm for tmpfs)",
    )
    parser.add_argument(
        "--reverse-copy",
        action="store_true",
        help="the second training of each pair makes its copy of the build in reverse sorted order, as a file "
        "system listing names the other way round (tmpfs on another kernel version) lists a sorted one",
    )
    parser.add_argument("--build-only", action="store_true", help="make the instrumented build and stop")
    parser.add_argument("--keep-differing", action="store_true", help="keep the trees of a pair that differs")
    parser.add_argument(
        "--vary-access-times",
        action="store_true",
        help="the first tree of each pair gets the access times of a tree never read since it was unpacked",
    )
    parser.add_argument(
        "--vary",
        default="",
        help="comma-separated variations (rebuild --vary's names) applied to the second training of each pair",
    )
    args = parser.parse_args()
    varied_names = frozenset(name for name in args.vary.split(",") if name)
    if varied_names & TRAINING_ONLY_UNSUPPORTED:
        raise SystemExit(f"--vary {', '.join(sorted(varied_names & TRAINING_ONLY_UNSUPPORTED))}: needs its own build")
    varied = apply_variations(BASELINE, varied_names)
    known = tasks(series_of(args.tarball))
    chosen = args.task or list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; known: {', '.join(known)}")
    runner = get_runner(args.runner)
    sandbox = Sandbox(runner, image_for(args.environment, cache_dir=args.cache), args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.second_work is not None:
        args.second_work.mkdir(parents=True, exist_ok=True)
    lock = (args.work / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another run of this bench is using {args.work}") from None
    pristine = args.work / "instrumented"
    if not (pristine / ".instrumented").exists():
        instrumented_build(args.tarball, pristine, sandbox)
    if args.build_only:
        return 0

    trainer = pgo_trainer()  # read once: every run of this bench trains with the same trainer
    print(
        f"{args.tarball.name}: {'concurrent' if args.concurrent else 'sequential'} pairs, {args.hog} CPU hog(s), "
        f"{'access times varied, ' if args.vary_access_times else ''}"
        f"{f'second copy in {args.second_work}, ' if args.second_work else ''}"
        f"{'second run varied: ' + ','.join(sorted(varied_names)) + ', ' if varied_names else ''}"
        f"{'second copy made in reverse order, ' if args.reverse_copy else ''}"
        f"trainer sha256 {hashlib.sha256(trainer).hexdigest()[:12]}"
    )
    print("| training task | pair | .gcda files | differing between the two runs | counters digest | trainer records |")
    print("|---|---|---|---|---|---|")
    all_identical = True
    hogs = hog(args.hog)
    try:
        for name in chosen:
            task = known[name]
            for pair in range(1, args.pairs + 1):
                copies = [args.work / "run-a", (args.second_work or args.work) / "run-b"]
                for copy in copies:
                    fresh_copy(pristine, copy, keep_counters=name == "shipped", trainer=trainer)
                if args.vary_access_times:
                    access_times_as_unpacked(copies[0])

                def train(copy: Path, name: str = name, pair: int = pair, task: Task = task) -> None:
                    second = copy.name == "run-b"
                    settings = varied if second else BASELINE
                    command = task.command
                    if second and args.reverse_copy:
                        command = f"export {COPY_REVERSED_VARIABLE}=1 && {command}"
                    sandbox.run(
                        copy, command, f"train-{name}-{pair}-{copy.name}.log", aslr=task.aslr, settings=settings
                    )

                if args.concurrent:
                    with ThreadPoolExecutor(max_workers=2) as pool:
                        for started in [pool.submit(train, copy) for copy in copies]:
                            started.result()  # a failed training stops the bench
                else:
                    for copy in copies:
                        train(copy)
                first, second = (counters(copy) for copy in copies)
                digests = " / ".join(
                    counters_digest(copy / SOURCE, sorted((copy / SOURCE).rglob("*.gcda")))[:12] for copy in copies
                )
                if not first or not second:
                    raise SystemExit(f"{name} pair {pair}: a training wrote no .gcda file (logs in {args.work})")
                differing = sorted(path for path in first.keys() | second.keys() if first.get(path) != second.get(path))
                all_identical &= not differing
                shown = f"{len(differing)}" + (f" ({', '.join(differing[:12])})" if differing else "")
                records = " / ".join(summary for copy in copies if (summary := training_summary(copy)))
                print(f"| {name} | {pair} | {len(first)} | {shown} | {digests} | {records} |", flush=True)
                for copy in copies:
                    record = copy / Path(PGO_TRAINER_RECORD_PATH).name
                    if record.is_file():
                        shutil.copyfile(record, args.work / f"record-{name}-{pair}-{copy.name}.json")
                    if differing and args.keep_differing:
                        shutil.move(copy, args.work / f"differing-{name}-{pair}-{copy.name}")
                    else:
                        shutil.rmtree(copy)
    finally:
        for process in hogs:
            process.kill()
            process.wait()
    return 0 if all_identical else 1


if __name__ == "__main__":
    sys.exit(main())
