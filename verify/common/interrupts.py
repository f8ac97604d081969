"""Ctrl-C, SIGTERM and SIGHUP: one clean exit, from one place.

:func:`install` (called once, by the console entry point) turns the first of these signals into
:class:`Interrupted`, raised in the main thread wherever it is: waiting on a download, hashing a tree,
or waiting for a sandboxed ``make``. It is a :class:`BaseException`, like :class:`KeyboardInterrupt`,
so no ``except Exception`` swallows it and every ``finally`` and ``except BaseException`` cleanup on
the way out runs: staging directories and quarantines are removed, partial files deleted. Signals
that arrive while that cleanup runs are ignored, so a second Ctrl-C can neither cut the cleanup short
nor be needed (SIGKILL remains the way to skip it). The CLI then prints one line and exits
``128 + signal`` (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as a shell reports a process a
signal ended.

A child process does not die with its parent by itself, and a sandbox may not die with its child:
:func:`run_child` waits for one and, when interrupted, stops it the way that child needs (a
container engine's own stop command, SIGTERM and a grace period for a program that cleans up after
itself) before the exception goes on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that stop cpython-verify cleanly (SIGKILL cannot be caught; nothing can clean up after it)."""

DEFAULT_GRACE_SECONDS = 10.0
"""How long an interrupted child may take to stop after it was asked to, before SIGKILL."""


class Interrupted(BaseException):
    """The process received SIGINT, SIGTERM or SIGHUP; raised once, in the main thread."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal_name(signum)}")

    @property
    def exit_code(self) -> int:
        """``128 + signal number``: what a shell reports for a process the signal ended."""
        return 128 + self.signum

    @property
    def name(self) -> str:
        """``SIGINT``, ``SIGTERM`` or ``SIGHUP``."""
        return signal_name(self.signum)


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; the number for a signal Python does not know."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class _FirstSignal:
    """The handler: raise :class:`Interrupted` for the first signal, ignore the ones after it."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # cleanup for the first one is running: let it finish
        self.received = signum
        raise Interrupted(signum)


def install() -> None:
    """Make the first SIGINT, SIGTERM or SIGHUP raise :class:`Interrupted` in the main thread.

    A signal the caller set to be ignored stays ignored: a shell starts background jobs with SIGINT
    ignored, and ``nohup`` ignores SIGHUP, on purpose.
    """
    _install(_FirstSignal())


def _install(handler: _FirstSignal) -> None:
    for signum in INTERRUPT_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """:func:`install` for the duration, then the previous handlers again (a CLI run called in-process,
    by a test, must not change its caller's signal handling), or, after an interrupt, none: the
    signals are then ignored while the run reports it and exits. Outside the main thread, where
    Python cannot set handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in INTERRUPT_SIGNALS}
    handler = _FirstSignal()
    _install(handler)
    try:
        yield
    finally:
        if handler.received is not None:
            settle()  # interrupted: the run is ending, and a second signal must not interrupt its report
        else:
            for signum, earlier in previous.items():
                signal.signal(signum, earlier)


def settle() -> None:
    """Ignore these signals from now on: the outcome is decided and being reported, and a late signal
    must not turn an exit into a traceback from the interpreter's shutdown."""
    for signum in INTERRUPT_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


@contextlib.contextmanager
def ignoring(signum: int) -> Iterator[None]:
    """Ignore ``signum`` in this process for the duration (an interactive child handles it itself)."""
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def terminate(process: subprocess.Popen[Any]) -> None:
    """The default way to stop a child: SIGTERM to its process group (it and everything it started),
    which lets each clean up after itself."""
    _signal_group(process, signal.SIGTERM)


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(0) == _group_of(process):
            process.send_signal(signum)  # it shares our group (an interactive child): never signal ourselves
        else:
            # A child of run_child leads its own group, whose id is its pid. A child that has exited can
            # leave members behind (apt under mmdebstrap): they are signalled too.
            os.killpg(process.pid, signum)


def _group_of(process: subprocess.Popen[Any]) -> int:
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return process.pid  # gone (or a zombie not yet reaped): it led its own group, or it is past signalling


def run_child(
    argv: Sequence[str],
    *,
    stop: Callable[[subprocess.Popen[Any]], None] = terminate,
    grace: float = DEFAULT_GRACE_SECONDS,
    own_group: bool = True,
    **popen: Any,
) -> int:
    """Run ``argv`` to completion and return its exit status; when this process is interrupted (or
    anything else ends the wait), stop the child before the exception goes on.

    The child leads a process group of its own, so that a signal meant for it reaches everything it
    started and nothing of ours (mmdebstrap ignores SIGTERM in its main process and relies on its
    group being signalled, and signals its own group when it fails). ``stop`` asks the child to end
    (default: SIGTERM to its group); after ``grace`` seconds the group is killed. Either way the
    child is waited for. ``own_group=False`` keeps the child in this process's group, for one that
    reads the terminal (a group in the background cannot). ``popen`` are :class:`subprocess.Popen`'s
    keyword arguments.
    """
    process = subprocess.Popen(argv, process_group=0 if own_group else None, **popen)
    try:
        return process.wait()
    except BaseException:
        _stop(process, stop, grace)
        raise


def _stop(process: subprocess.Popen[Any], stop: Callable[[subprocess.Popen[Any]], None], grace: float) -> None:
    try:
        stop(process)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    finally:
        _signal_group(process, signal.SIGKILL)  # whatever of the group is left, the child included
        process.wait()


__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "INTERRUPT_SIGNALS",
    "Interrupted",
    "handling",
    "ignoring",
    "install",
    "run_child",
    "settle",
    "signal_name",
    "terminate",
]
