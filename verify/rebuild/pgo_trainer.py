"""cpython-verify's deterministic PGO training task: ``PROFILE_TASK=<this file> TEST_MODULE...``.

Run by a CPython build's instrumented ``./python`` in place of the test suite. Two independent
trainings with this task are meant to write identical ``.gcda`` files, so two rebuilders who share
nothing get the same optimized binaries (measured with ``bench/pgo_training_determinism.py``;
docs/reproducibility.md says on which releases and how). What the counters depend on, the task sets
itself, whatever the build's sandbox, its variations or a future test module do:

1. ASLR off. With ASLR, object addresses (``id()``, hashes of objects without ``__hash__``, the
   type method cache's slots) change from run to run, and dict and set layouts with them. The task
   turns randomization off for itself (``personality(ADDR_NO_RANDOMIZE)``, else ``setarch -R``)
   and re-executes itself; it refuses to train if ASLR is still on.
2. Its own environment. The re-executed task gets exactly :data:`ENVIRONMENT` (hash seed 0,
   C.UTF-8, UTC, a fixed HOME, TMPDIR and PATH) plus the few variables that say how ``./python``
   itself runs (:data:`KEPT`); everything else (a preloaded libfaketime, a varied locale) is
   removed. It refuses to train if string hashing is still randomized. ``random`` is seeded before
   every test, and ``random.Random()`` without a seed gets the same fixed seed.
   Nothing else of the first stage reaches the training process: what it saw and did (the names it
   removed, how ASLR went off, the descriptors it closed, the host) goes to :data:`STAGE_NAME`, which
   only the rebuild reads and merges into the record. Every string the instrumented process handles,
   before, during or after the tests (until it exits and writes its counters), is allocated and
   parsed by counted code, so a varying one (an environment value listing the removed names, a
   hostname in the record) moves every later object and changes the counters of identity-hashed
   tables (``_json``'s and ``_pickle``'s memos, sets, dicts) and of the JSON codec itself.
3. One view of the host. The kernel's name for the host and its release (``os.uname()``, which
   ``test.support`` calls on import; ``socket.gethostname()``) and the number of CPUs differ from
   machine to machine and, allocated as strings, moved objects the same way: the training sees
   :data:`HOST_UNAME` and :data:`HOST_CPU_COUNT` instead, and the record keeps both the view and what the host said.
4. One file system. What the training reads of the build (the interpreter, ``pybuilddir.txt``,
   ``Modules/Setup.local``, ``Lib/`` and the directory of the built extension modules) is copied, in
   sorted order and without bytecode caches, to :data:`COPY_ROOT` on the sandbox's own fresh tmpfs, and
   the training runs from there. Every ``stat`` result becomes Python ints: the device and inode numbers
   of the build's file system (a cached small int on tmpfs, an allocated one on ext4), a directory's
   size and the order the file system lists names in all changed the counters, so two trainings of one
   build on ext4 and on tmpfs differed in 171 of 264 files. The tmpfs's inode numbers are first moved
   past the small ints. The copy has one name (:data:`COPY_NAME`) whatever the build directory is
   called. The training's start-up lists directories before this task can sort what it lists, and
   tmpfs lists names newest first in some kernel versions and in creation order in others: every
   directory of the copy is made to list its names in sorted order (3.13.5's start-up reading the
   other order wrote other counters). A tree that is not a CPython build directory (no
   ``pybuilddir.txt`` beside the interpreter) trains in place, and the record says so.
5. Only the training's own counts. The instrumented build runs ``./python`` itself (sysconfig,
   setup.py, frozen modules) with ASLR on, and the first process here ran before the re-execution:
   every ``.gcda`` file under the build directory is removed (by the first stage, so that the
   training process never lists the build's file system) before the tests run.
6. No process, thread or timer. Whatever a test module contains, starting a process (``fork``,
   ``exec``, ``posix_spawn``, ``subprocess``, ``multiprocessing``, ``os.system``: a child started
   with ``-I`` would even ignore the hash seed), a thread (``threading``, ``_thread``, executors) or
   a timer (``signal.alarm``, ``signal.setitimer``, ``faulthandler.dump_traceback_later``) raises
   ``unittest.SkipTest`` instead: the test is skipped and the record names it and the call.
7. No timing. The outcome goes to a bare ``unittest.TestResult``: unittest's text runner prints
   "Ran N tests in 1.234s", and formatting that float alone changes ``Python/dtoa.c``'s counters.

The task writes what it ran to ``cpython-verify-pgo-training-run.json`` beside itself: the tests
run, each failure and error, the skips, every blocked call, the ASLR state, the counters removed,
the environment it set and removed. The rebuild reads that record after the training: a missing
record, a refusal, or any failure or error (a test module that does not import is one) fails the
build, in every series, whatever CPython's Makefile does with this task's exit status (3.8 to 3.11
run ``$(PROFILE_TASK) || true``).

The build's instrumented interpreter runs this file, so it keeps to what Python 3.8 understands.
"""

from __future__ import annotations

import sys

# Neither stage writes a .pyc into the build tree: which modules the first stage imports depends on its
# path (ctypes only when ASLR was on), and a __pycache__ entry the second stage lists changes its counters.
sys.dont_write_bytecode = True

import contextlib  # noqa: E402 - after the line above, so that not even these imports write bytecode
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

FORMAT = "cpython-verify/pgo-training-run/v1"
RECORD_NAME = "cpython-verify-pgo-training-run.json"
"""The record's file name, in the trainer's own directory (the rebuild knows the same name)."""
ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",  # noqa: S108 - the sandbox's private tmpfs
    "TMPDIR": "/tmp",  # noqa: S108
    "LC_ALL": "C.UTF-8",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "PYTHONHASHSEED": "0",
    "TERM": "dumb",
}
"""The whole environment of the training process, beside :data:`KEPT` and the stage marker."""
KEPT = ("LD_LIBRARY_PATH", "LLVM_PROFILE_FILE", "GCOV_PREFIX", "GCOV_PREFIX_STRIP")
"""Kept from the build when set: how a shared ``./python`` finds its library (``RUNSHARED``) and where
the instrumented binary writes its counters."""
RANDOM_SEED = 0
HOST_UNAME = ("Linux", "build", "0.0.0", "#1")
"""What the training's ``os.uname()`` says but its ``machine`` (the interpreter's own, from its multiarch
triplet): sysname, nodename (``socket.gethostname()`` too), release and version, the same everywhere."""
HOST_CPU_COUNT = 1
"""What the training's ``os.cpu_count()`` and ``os.process_cpu_count()`` say."""
PYCACHE_NAME = "cpython-verify-pgo-pycache"
"""The training's bytecode cache (``PYTHONPYCACHEPREFIX``), beside the trainer, made empty by the first stage."""
COPY_ROOT = "/tmp/cpython-verify-pgo-training"  # noqa: S108 - the sandbox's private tmpfs
"""Where the first stage copies what the training reads, on the sandbox's own tmpfs (every runner gives
its sandbox a private ``/tmp``): the trainer, its bytecode cache and the copy of the build directory."""
COPY_NAME = "cpython"
"""The copy's directory under :data:`COPY_ROOT`, whatever the build directory is called (a varied build
path names it otherwise, and every path the training handles is a string its counters follow)."""
COPIED_PARTS = ("python", "pybuilddir.txt", "Modules/Setup.local", "Lib")
"""What the training reads of a CPython build directory, beside the extension modules' directory that
``pybuilddir.txt`` names (the interpreter finds its ``Lib/`` through ``Modules/Setup.local`` up to 3.10
and through ``pybuilddir.txt`` from 3.11). The recipes build in the source tree (``VPATH`` is ``.``), so
``Lib/`` is beside the interpreter."""
COPY_REVERSED_VARIABLE = "CPYTHON_VERIFY_PGO_COPY_REVERSED"
"""Set to ``1`` in the first stage's environment (``bench/pgo_training_determinism.py --reverse-copy``), the
copy is made in reverse sorted order, as a file system that lists names the other way round would list a
copy made in sorted order. For measuring only; a rebuild's sandbox never sets it, and the training
process never sees it."""
MOVING_NAME = ".cpython-verify-moving"
"""The name an entry has for a moment while it is moved to the place the file system lists it in."""
SMALL_INTS = 256
"""CPython's cached small ints end here: a device or inode number at or below it takes another path."""
STAGE_NAME = RECORD_NAME + ".first-stage"
"""What the first stage saw and did, beside the record; the second stage only checks that it exists (the
rebuild knows the same name and merges it into the record)."""
UMASK = 0o022
ACCESS_TIME_AHEAD = 86400
ACCESS_TIME_FRACTION = 500_000_000
STACK_LIMIT = 8 << 20
"""The soft stack limit of the training process. With ASLR off, the kernel still places memory maps below
a gap sized by the stack limit (at least 128 MiB), and an unlimited stack selects another layout
altogether: pinning it keeps object addresses, and so identity hashes, the same on every host."""
_STAGE = "CPYTHON_VERIFY_PGO_TRAINING"
_ADDR_NO_RANDOMIZE = 0x0040000
_QUERY_PERSONALITY = 0xFFFFFFFF
_LISTED = 100
"""At most this many failures, errors, skips or blocked calls are listed one by one (all are counted)."""


def personality() -> int:
    """This process's personality(2) flags."""
    with open("/proc/self/personality") as flags:
        return int(flags.read(), 16)


def aslr_is_off() -> bool:
    """True when this process runs with address space layout randomisation turned off."""
    return personality() & _ADDR_NO_RANDOMIZE != 0


def record_path() -> Path:
    """Where this trainer writes its record: beside the trainer the build started (the second stage, which
    may run from a copy, is told that directory by the first)."""
    told = os.environ.get(_STAGE, "")
    if Path(told).is_absolute():  # a string test only: the training process never stats the build's file system
        return Path(told) / RECORD_NAME
    return Path(__file__).resolve().with_name(RECORD_NAME)


def pycache_dir(trainer_dir: Path) -> Path:
    """Where the training reads and writes ``.pyc`` files: its own empty directory, beside the trainer it runs."""
    return trainer_dir / PYCACHE_NAME


def stage_path() -> Path:
    """Where the first stage leaves what it saw and did for the second: beside the record."""
    return Path(__file__).resolve().with_name(STAGE_NAME)


def write_record(record: dict[str, Any]) -> None:
    """Write the record atomically (a reader never sees half of it)."""
    path = record_path()
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    partial.replace(path)


def refuse(record: dict[str, Any], reason: str) -> int:
    """Record and print why the task will not train; the exit status of a refusal."""
    record.update(status="refused", reason=reason)
    write_record(record)
    print("pgo_trainer: refusing to train:", reason, file=sys.stderr)
    return 1


def own_environment(trainer_dir: Path) -> dict[str, str]:
    """The variables the trainer sets itself when the training runs the trainer in ``trainer_dir``:
    :data:`ENVIRONMENT` and its own bytecode cache."""
    return dict(ENVIRONMENT, PYTHONPYCACHEPREFIX=str(pycache_dir(trainer_dir)))


def training_environment(current: dict[str, str], trainer_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The environment the training runs with (its trainer in ``trainer_dir``), and the names removed from
    ``current``. The stage marker names the directory of the trainer the build started, where the record
    goes: the same path in every build (``/build``)."""
    environment = own_environment(trainer_dir)
    for name in KEPT:
        if name in current:
            environment[name] = current[name]
    environment[_STAGE] = str(Path(__file__).resolve().parent)
    removed = sorted(name for name in current if name not in environment)
    return environment, removed


def disable_aslr() -> str | None:
    """Make the next ``exec`` run with exactly ``PER_LINUX | ADDR_NO_RANDOMIZE`` (ASLR off, and no other
    flag such as a 2.6 uname) with personality(2); None if this interpreter has no ctypes, else how it
    went (``"ok"`` or the error)."""
    try:
        import ctypes
    except ImportError:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    # personality(2) takes an unsigned long: a plain int argument would be sign-extended, and a seccomp
    # profile compares the value exactly.
    libc.personality.argtypes = [ctypes.c_ulong]
    if libc.personality(_ADDR_NO_RANDOMIZE) == -1:
        return os.strerror(ctypes.get_errno())
    return "ok"


def pin_access_times(tops: list[Path]) -> int:
    """Give every file, directory and link under ``tops`` one access time, a day ahead, with a fixed
    fraction of a second; return how many entries were set.

    The training stats files, and each timestamp becomes a Python int: a nanosecond part of 0 (a file
    unpacked from the tarball and never read since) is a cached small int, any other an allocated one,
    so counters in posixmodule, longobject and object followed which files happened to have been read
    before, by the build, by a copy, or not at all on a noatime mount. An access time after the change
    time is not updated again by a read on a relatime or noatime mount, so every stat in the training
    sees this value."""
    target = (int(time.time()) + ACCESS_TIME_AHEAD) * 10**9 + ACCESS_TIME_FRACTION
    pinned = 0
    pending = list(tops)
    while pending:
        top = pending.pop()
        try:
            os.utime(str(top), ns=(target, os.lstat(str(top)).st_mtime_ns), follow_symlinks=False)
            pinned += 1
            if not top.is_dir() or top.is_symlink():
                continue
            with os.scandir(str(top)) as entries:
                for entry in entries:
                    pending.append(Path(entry.path))
        except OSError:
            continue  # gone or not ours to change: left as it is
    return pinned


def copy_sorted(source: Path, destination: Path) -> int:
    """Copy the file or tree ``source`` to ``destination``, entries created in sorted name order (a fresh
    tmpfs numbers inodes, and lists names, in creation order), links followed (the build links its
    extension modules), bytecode caches and counters left out; return how many files were copied."""
    return _copy_sorted(source, destination, ())


def _copy_sorted(source: Path, destination: Path, inside: tuple[str, ...]) -> int:
    """:func:`copy_sorted`, inside the directories ``inside`` (their real paths): a link back to one of
    them is a loop, refused with an :class:`OSError` rather than followed until the stack runs out."""
    if not source.is_dir():
        shutil.copy2(str(source), str(destination))
        return 1
    real = os.path.realpath(str(source))
    if real in inside:
        raise OSError(f"{source} links back to {real}, a directory it is inside: a loop")
    destination.mkdir()
    copied = 0
    reverse = os.environ.get(COPY_REVERSED_VARIABLE) == "1"
    for child in sorted(source.iterdir(), key=lambda entry: entry.name, reverse=reverse):
        if child.name == "__pycache__" or child.name.endswith((".pyc", ".gcda", ".gcno")):
            continue
        copied += _copy_sorted(child, destination / child.name, (*inside, real))
    shutil.copystat(str(source), str(destination))
    return copied


def listing_order(scratch: Path) -> str:
    """How the file system ``scratch`` is on lists a directory: ``creation order``, ``newest first``
    (tmpfs lists names newest first in some kernel versions and in creation order in others), or
    ``neither`` (a hashed order, as ext4's)."""
    scratch.mkdir()
    for name in ("a", "b"):
        (scratch / name).touch()
    listed = [entry.name for entry in scratch.iterdir()]
    for name in ("a", "b"):
        (scratch / name).unlink()
    scratch.rmdir()
    if listed == ["a", "b"]:
        return "creation order"
    return "newest first" if listed == ["b", "a"] else "neither"


def list_sorted(directory: Path, order: str) -> bool:
    """Make the file system list ``directory``'s names in sorted order, by moving each entry (a rename
    there and back puts it last on a file system that lists in ``creation order``, first on one that
    lists ``newest first``); return whether it had to. Names and inode numbers stay as they are."""
    names = [entry.name for entry in directory.iterdir()]
    if names == sorted(names) or order not in ("creation order", "newest first"):
        return False
    moving = directory / MOVING_NAME
    if os.path.lexists(str(moving)):
        raise OSError(f"{moving} exists: cannot reorder {directory}")
    for name in sorted(names, reverse=order == "newest first"):
        (directory / name).rename(moving)
        moving.rename(directory / name)
    return True


def list_tree_sorted(top: Path, order: str) -> tuple[int, int]:
    """:func:`list_sorted` on every directory under ``top`` (links not followed); return how many were
    reordered and how many are still listed out of sorted order."""
    reordered = unsorted = 0
    pending = [top]
    while pending:
        directory = pending.pop()
        reordered += list_sorted(directory, order)
        names = [entry.name for entry in directory.iterdir()]
        unsorted += names != sorted(names)
        pending.extend(
            directory / name for name in names if (directory / name).is_dir() and not (directory / name).is_symlink()
        )
    return reordered, unsorted


def mount_of(path: str, mountinfo: str = "/proc/self/mountinfo") -> tuple[str, str]:
    """The mount point and file system type ``path`` is on, from ``mountinfo``."""
    best = ("", "unknown")
    try:
        with open(mountinfo) as mounts:
            for line in mounts:
                fields = line.split()
                # The kernel writes a space, tab, newline or backslash in a mount point as an octal escape.
                point = re.sub(r"\\([0-7]{3})", lambda code: chr(int(code.group(1), 8)), fields[4])
                fstype = fields[fields.index("-") + 1]
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best[0]):
                    best = (point, fstype)
    except (OSError, ValueError, IndexError):
        pass
    return best


def move_inode_numbers_past_small_ints(scratch: Path) -> int:
    """Create and remove empty files under ``scratch`` until the file system hands out an inode number
    past :data:`SMALL_INTS` (a fresh tmpfs starts at 1 and never reuses one); return the last number."""
    scratch.mkdir()
    number = 0
    for index in range(4 * SMALL_INTS):
        path = scratch / str(index)
        path.touch()
        number = os.lstat(str(path)).st_ino
        path.unlink()
        if number > SMALL_INTS:
            break
    scratch.rmdir()
    return number


def training_copy(build: Path) -> dict[str, Any]:
    """Copy what the training reads of the CPython build directory ``build``, and the trainer, under
    :data:`COPY_ROOT`; return what the record says of it (``skipped`` and why, for a tree that is not a
    CPython build directory)."""
    marker = build / "pybuilddir.txt"
    if not (build / "python").is_file() or not marker.is_file():
        return {"skipped": "not a CPython build directory (no python and pybuilddir.txt in it): trained in place"}
    root = Path(COPY_ROOT)
    shutil.rmtree(str(root), ignore_errors=True)
    root.mkdir()
    last_inode = move_inode_numbers_past_small_ints(root / "inodes")
    order = listing_order(root / "listing")
    copy = root / COPY_NAME
    copy.mkdir()
    shutil.copy2(str(Path(__file__).resolve()), str(root / Path(__file__).name))
    copied = 0
    for relative in (*COPIED_PARTS, marker.read_text().strip()):
        # A part missing from the build is not made up; one inside a part already copied is not copied twice.
        if not relative or not os.path.lexists(str(build / relative)) or os.path.lexists(str(copy / relative)):
            continue
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        copied += copy_sorted(build / relative, copy / relative)
    pycache_dir(root).mkdir()
    reordered, unsorted = list_tree_sorted(root, order)
    point, fstype = mount_of(COPY_ROOT)
    return {
        "directory": str(copy), "files": copied, "mount": point, "file_system": fstype,
        "device": os.lstat(str(root)).st_dev, "first_inode": last_inode,
        "made_in": "reverse sorted order" if os.environ.get(COPY_REVERSED_VARIABLE) == "1" else "sorted order",
        "listing_order": order, "directories_reordered": reordered, "directories_unsorted": unsorted,
    }  # fmt: skip


def reset_signals() -> int:
    """Every signal's disposition back to the default and none blocked; return how many were ignored.

    An ignored disposition and the blocked mask survive ``exec``, and the interpreter looks at each
    signal's disposition as it starts: the counters of signalmodule (and of object and longobject,
    through the handler objects) followed whether the build was started by ``nohup``, in the
    background of a shell (SIGINT and SIGQUIT ignored) or by a CI runner."""
    import signal

    ignored = 0
    for signum in sorted(signal.valid_signals()):
        try:
            if signal.getsignal(signum) == signal.SIG_IGN:
                ignored += 1
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            continue  # SIGKILL, SIGSTOP and the real-time signals the C library keeps for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    return ignored


def pin_process_state() -> tuple[str, int]:
    """Before the re-execution: the soft stack limit set to :data:`STACK_LIMIT`, and every descriptor but
    0, 1 and 2 closed (make's jobserver pipe, for one, is inherited with ``-j`` and not with ``-j1``).
    Returns the stack limit as set (or why not) and how many descriptors were closed."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if hard != resource.RLIM_INFINITY and hard < STACK_LIMIT:
        stack = f"left at its hard limit {hard} (below {STACK_LIMIT})"
    else:
        resource.setrlimit(resource.RLIMIT_STACK, (STACK_LIMIT, hard))
        stack = str(STACK_LIMIT)
    try:
        inherited = [int(path.name) for path in Path("/proc/self/fd").iterdir() if int(path.name) > 2]
    except OSError:
        inherited = []
    closed = 0
    for descriptor in inherited:
        try:
            os.close(descriptor)
            closed += 1
        except OSError:
            pass  # the descriptor listdir itself used, already gone
    return stack, closed


def reexecute(modules: list[str], record: dict[str, Any]) -> int:
    """Start the training again in its own environment with ASLR off (does not return unless it fails).

    The second stage's environment is :func:`training_environment`'s and nothing else, the same on every
    host: what this stage saw and did goes to :func:`stage_path` instead."""
    build = Path.cwd()
    first_stage: dict[str, Any] = {"counters_removed": remove_counters(build)}
    try:
        first_stage["training_copy"] = copied = training_copy(build)
    except OSError as error:
        return refuse(record, f"cannot copy the build directory for the training: {error}")
    trainer_dir = Path(COPY_ROOT) if "directory" in copied else Path(__file__).resolve().parent
    environment, first_stage["environment_removed"] = training_environment(dict(os.environ), trainer_dir)
    interpreter = str(Path(copied["directory"]) / "python") if "directory" in copied else sys.executable
    command = [interpreter, str(trainer_dir / Path(__file__).name), *modules]
    if personality() == _ADDR_NO_RANDOMIZE:
        first_stage["aslr"] = "off before the task started"
    else:
        outcome = disable_aslr()
        if outcome is None:
            # No ctypes in this build: setarch (util-linux) makes the same call, then executes the task.
            first_stage["aslr"] = "turned off by setarch -R"
            command = ["setarch", os.uname().machine, "-R", *command]
            # Left in place only if setarch itself fails (it prints why): the re-executed task replaces it.
            record.update(reason="setarch -R could not turn ASLR off or start the task (its message is in the log)")
            write_record(record)
        elif outcome != "ok":
            return refuse(
                record,
                f"personality(ADDR_NO_RANDOMIZE) was denied ({outcome}): this sandbox cannot turn ASLR off "
                "(a container engine's default seccomp profile denies it; cpython-verify's bwrap and podman "
                "runners allow it)",
            )
        else:
            first_stage["aslr"] = "turned off by personality(ADDR_NO_RANDOMIZE)"
    first_stage["stack_limit"], first_stage["descriptors_closed"] = pin_process_state()
    first_stage["signals_reset"] = reset_signals()
    # Every module the training imports is compiled from its source into an empty cache, whatever .pyc
    # files the build, an earlier run or this first stage (ctypes, for ASLR) left in __pycache__.
    if "directory" not in copied:
        shutil.rmtree(str(pycache_dir(trainer_dir)), ignore_errors=True)
        pycache_dir(trainer_dir).mkdir()
    # Everything of the build the training can stat: the copy, or the build tree and the trainer beside it.
    beside = Path(__file__).resolve().parent
    inside = str(build).startswith(str(beside) + os.sep)
    tops = [Path(COPY_ROOT)] if "directory" in copied else [beside] if inside else [beside, build]
    first_stage["access_times_pinned"] = pin_access_times(tops)
    host = os.uname()
    first_stage["host"] = {
        "sysname": host.sysname, "nodename": host.nodename, "release": host.release, "version": host.version,
        "machine": host.machine, "cpu_count": os.cpu_count(),
    }  # fmt: skip
    # The rebuild reads the first stage's facts beside the record; the training only checks that a file
    # of that name is beside the trainer it runs.
    for stage in dict.fromkeys((stage_path(), trainer_dir / STAGE_NAME)):
        partial = stage.with_name(stage.name + ".partial")
        partial.write_text(json.dumps(first_stage, sort_keys=True) + "\n")
        partial.replace(stage)
    if "directory" in copied:
        # The stage file is a new name in the copy's root, which the training lists at its start.
        list_sorted(Path(COPY_ROOT), copied["listing_order"])
    print("pgo_trainer: removed", first_stage["counters_removed"], "earlier .gcda files; training from",
          copied.get("directory", "the build directory itself"), flush=True)  # fmt: skip
    try:
        os.chdir(copied.get("directory", str(build)))
        os.execvpe(command[0], command, environment)  # noqa: S606 - a fixed argument list, the fixed PATH
    except OSError as error:
        return refuse(record, f"cannot re-execute the task ({command[0]}: {error.strerror})")
    return 1  # not reached: exec replaced this process


def machine() -> str:
    """This interpreter's machine (``x86_64``), from its multiarch triplet: no call to the kernel."""
    multiarch = getattr(sys.implementation, "_multiarch", "") or "unknown"
    return str(multiarch).split("-")[0]


def pin_host_view() -> dict[str, Any]:
    """Make ``os.uname()``, ``socket.gethostname()`` and the CPU counts answer :data:`HOST_UNAME` and
    :data:`HOST_CPU_COUNT`; return the view as the record shows it."""
    import _socket

    sysname, nodename, release, version = HOST_UNAME
    uname = os.uname_result((sysname, nodename, release, version, machine()))

    def pinned_uname() -> os.uname_result:
        return uname

    def pinned_hostname() -> str:
        return nodename

    def pinned_cpu_count() -> int:
        return HOST_CPU_COUNT

    os.uname = pinned_uname
    _socket.gethostname = pinned_hostname
    os.cpu_count = pinned_cpu_count
    if hasattr(os, "process_cpu_count"):  # 3.13+
        os.process_cpu_count = pinned_cpu_count
    return {
        "sysname": sysname, "nodename": nodename, "release": release, "version": version, "machine": uname.machine,
        "cpu_count": HOST_CPU_COUNT,
    }  # fmt: skip


class _Listed:
    """What ``os.scandir`` returns, over entries already read and sorted."""

    def __init__(self, entries: list[os.DirEntry[Any]]) -> None:
        self._entries = iter(entries)

    def __iter__(self) -> _Listed:
        return self

    def __next__(self) -> os.DirEntry[Any]:
        return next(self._entries)

    def __enter__(self) -> _Listed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing is open: the directory was read and closed already."""
        self._entries = iter(())


def sort_directory_listings() -> None:
    """From now on, ``os.listdir`` and ``os.scandir`` (the import system's, ``glob``'s, ``os.walk``'s,
    ``pathlib``'s) list names in sorted order, and the import system lists every directory again.

    The order a file system lists a directory in is its own (ext4 orders large directories by a hash
    seeded when the file system was made; disorderfs reverses it): the import system builds a set of the
    names in that order, and a set's probe counts follow its insertion order."""
    import importlib
    import posix

    real_listdir, real_scandir = posix.listdir, posix.scandir

    def listdir(path: Any = None) -> list[Any]:
        return sorted(real_listdir() if path is None else real_listdir(path))

    def scandir(path: Any = None) -> _Listed:
        with real_scandir() if path is None else real_scandir(path) as entries:
            return _Listed(sorted(entries, key=lambda entry: entry.name))

    posix.listdir = os.listdir = listdir
    posix.scandir = os.scandir = scandir  # type: ignore[assignment]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


def remove_counters(top: Path) -> int:
    """Remove every ``.gcda`` file under ``top``; return how many there were."""
    counters = [path for path in top.rglob("*.gcda") if path.is_file()]
    for path in counters:
        path.unlink()
    return len(counters)


class Guard:
    """Replaces every way to start a process, a thread or a timer with a call that skips the test."""

    def __init__(self) -> None:
        self.current_test: str | None = None
        self.blocked: list[dict[str, str | None]] = []
        self.blocked_total = 0

    def blocker(self, what: str) -> Callable[..., NoReturn]:
        """A stand-in for ``what`` that records the attempt and skips the running test."""

        def blocked(*args: object, **kwargs: object) -> NoReturn:
            self.blocked_total += 1
            if len(self.blocked) < _LISTED:
                self.blocked.append({"test": self.current_test, "call": what})
            raise unittest.SkipTest(f"pgo_trainer: {what} is not run in a deterministic training")

        return blocked

    def replace(self, owner: object, names: tuple[str, ...], prefix: str) -> None:
        """Replace each of ``owner``'s ``names`` it has."""
        for name in names:
            if hasattr(owner, name):
                setattr(owner, name, self.blocker(f"{prefix}.{name}"))

    def install(self) -> None:
        """Block processes, threads and timers at every level Python code reaches them from."""
        import _thread
        import faulthandler
        import signal
        import subprocess
        import threading

        self.replace(os, PROCESS_CALLS, "os")
        try:
            import _posixsubprocess
        except ImportError:
            pass
        else:
            self.replace(_posixsubprocess, ("fork_exec",), "_posixsubprocess")
        self.replace(subprocess, ("_fork_exec",), "subprocess")
        self.replace(subprocess.Popen, ("_execute_child",), "subprocess.Popen")
        self.replace(_thread, ("start_new_thread", "start_new", "start_joinable_thread"), "_thread")
        self.replace(threading, ("_start_new_thread", "_start_joinable_thread"), "threading")
        self.replace(threading.Thread, ("start",), "threading.Thread")
        self.replace(signal, ("alarm", "setitimer"), "signal")
        self.replace(faulthandler, ("dump_traceback_later",), "faulthandler")


PROCESS_CALLS = (
    "fork", "forkpty", "vfork", "posix_spawn", "posix_spawnp", "system", "popen",
    "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
    "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
)  # fmt: skip
"""Every ``os`` function that starts or replaces a process (``multiprocessing`` and ``pty`` use these too)."""


def seed_randomness() -> None:
    """Seed ``random`` now, and make ``random.Random()`` without a seed use the same fixed seed."""
    import random

    unseeded = random.Random.seed

    def seed(self: random.Random, a: Any = None, *args: Any, **kwargs: Any) -> None:
        unseeded(self, RANDOM_SEED if a is None else a, *args, **kwargs)

    random.Random.seed = seed  # type: ignore[method-assign]
    # The module's functions are bound methods of one hidden instance, bound at import: bind seed again.
    random.seed = random._inst.seed
    random.seed(RANDOM_SEED)


class RecordingResult(unittest.TestResult):
    """A bare ``TestResult`` (prints nothing, times nothing) that tells the guard which test runs and
    reseeds ``random`` before each."""

    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard

    def startTest(self, test: unittest.TestCase) -> None:
        """Start ``test`` with ``random`` seeded afresh."""
        import random

        self.guard.current_test = test.id()
        random.seed(RANDOM_SEED)
        super().startTest(test)

    def stopTest(self, test: unittest.TestCase) -> None:
        """``test`` has ended."""
        super().stopTest(test)
        self.guard.current_test = None


def _listed(pairs: list[tuple[unittest.TestCase, str]]) -> list[dict[str, str]]:
    return [{"test": test.id(), "message": _last_line(text)} for test, text in pairs[:_LISTED]]


def _last_line(text: str) -> str:
    """A traceback's last line (the exception and its message), or a skip's reason; at most 300 characters."""
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:300]


class _NotLoaded(unittest.TestCase):
    """Stands for a test module that could not be loaded, so its outcome is counted like a test's."""

    def __init__(self, module: str) -> None:
        super().__init__("runTest")
        self.module = module

    def id(self) -> str:
        """The module's name: what the record lists."""
        return "test." + self.module

    def runTest(self) -> None:
        """Never run: the loader reports the outcome directly."""


def load(modules: list[str], guard: Guard, result: RecordingResult) -> unittest.TestSuite:
    """The named modules' tests. A module that skips itself on import counts as one skipped test, one
    that fails to import as one error (as unittest counts them)."""
    suite = unittest.TestSuite()
    for module in modules:
        guard.current_test = "(loading test." + module + ")"
        try:
            suite.addTest(unittest.defaultTestLoader.loadTestsFromName("test." + module))
        except unittest.SkipTest as skip:
            placeholder = _NotLoaded(module)
            result.testsRun += 1
            result.addSkip(placeholder, str(skip))
        except Exception:  # noqa: BLE001 - any failure to load is the module's error, recorded with its traceback
            placeholder = _NotLoaded(module)
            result.testsRun += 1
            result.addError(placeholder, sys.exc_info())
    guard.current_test = None
    return suite


def outcome(result: RecordingResult) -> dict[str, Any]:
    """The counts (and the first failures, errors and skips by name) of a finished run."""
    return {
        "run": result.testsRun,
        "failures": _listed(result.failures),
        "failures_total": len(result.failures),
        "errors": _listed(result.errors),
        "errors_total": len(result.errors),
        "unexpected_successes": [test.id() for test in result.unexpectedSuccesses[:_LISTED]],
        "unexpected_successes_total": len(result.unexpectedSuccesses),
        "expected_failures": len(result.expectedFailures),
        "skipped": len(result.skipped),
        "skips": _listed(result.skipped),
    }


def train(modules: list[str], record: dict[str, Any]) -> int:
    """The training itself, in the re-executed process; the task's exit status.

    Nothing this process handles varies from host to host but the tests' own outcome: the first stage's
    file is only checked for, never read."""
    record["aslr"] = {"off": aslr_is_off(), "personality": f"{personality():#010x}"}
    if not record["aslr"]["off"]:
        return refuse(record, "ASLR is still on after the task turned it off")
    record["environment"] = {name: os.environ[name] for name in sorted(os.environ) if name != _STAGE}
    record["hash_randomization"] = sys.flags.hash_randomization
    own = {name: value for name, value in record["environment"].items() if name not in KEPT}
    expected = own_environment(Path(__file__).resolve().parent)
    if own != expected or not stage_path().is_file() or sys.pycache_prefix != expected["PYTHONPYCACHEPREFIX"]:
        return refuse(record, "the environment is not the one the task sets (it was started in its second stage)")
    if sys.flags.hash_randomization or sys.flags.ignore_environment or os.environ.get("PYTHONHASHSEED") != "0":
        return refuse(record, "string hashing is still randomized (PYTHONHASHSEED=0 was not in effect)")
    record["host_view"] = pin_host_view()
    sort_directory_listings()
    os.umask(UMASK)
    record.update(umask=f"{UMASK:03o}", random_seed=RANDOM_SEED)
    guard = Guard()
    guard.install()
    seed_randomness()
    result = RecordingResult(guard)
    suite = load(modules, guard, result)
    suite.run(result)
    record["tests"] = outcome(result)
    record["blocked"] = guard.blocked
    record["blocked_total"] = guard.blocked_total
    problems = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    if not result.testsRun:
        record.update(status="failed", reason="no test ran")
    elif problems:
        record.update(
            status="failed",
            reason=f"{len(result.failures)} failures, {len(result.errors)} errors, "
            f"{len(result.unexpectedSuccesses)} unexpected successes",
        )
    else:
        record["status"] = "trained"
    write_record(record)
    print(
        "pgo_trainer: ran", result.testsRun, "tests,",
        len(result.failures), "failures,", len(result.errors), "errors,", len(result.skipped), "skipped,",
        guard.blocked_total, "calls blocked (processes, threads, timers)",
    )  # fmt: skip
    return 0 if record["status"] == "trained" else 1


def main(modules: list[str]) -> int:
    """Train on ``modules`` (names under ``test``); the exit status of the training run."""
    record = {
        "format": FORMAT,
        "status": "refused",
        "reason": None,
        "modules": list(modules),
        "python": sys.version.split()[0],
    }
    if not modules:
        refuse(record, "no test module was named (PROFILE_TASK=<trainer> test_codecs ...)")
        return 2
    if _STAGE not in os.environ:
        for stale in (record_path(), stage_path()):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        return reexecute(modules, record)
    return train(modules, record)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
