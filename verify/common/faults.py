"""Fault injection for tests: make this very process die by SIGKILL at a named point. Inert unless set.

``$CPYTHON_VERIFY_TEST_KILL_AT`` names one point of :data:`POINTS`; when the process reaches it, it sends
itself SIGKILL, exactly as ``kill -9`` or the kernel's OOM killer would: no handler, no ``finally``, no
cleanup runs. The fault-injection tests kill the real command line this way at each phase and then
check that the next run, and ``cpython-verify cache check``, find the cache and the outputs complete or
absent, never half-made. Without the variable (every real run) each call is one dictionary look-up and
does nothing.

A sandboxed build phase (``configure``, ``make``, ``install``) is killed while its command runs: once
its log shows the command has started (the sandbox and its children are alive, and ``--die-with-parent``
must take them down), or at the latest when the command returns, before anything else happens. Either
way the run dies inside that phase, not by timing luck.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Final

KILL_AT_SETTING: Final = "CPYTHON_VERIFY_TEST_KILL_AT"
"""The environment variable naming the point at which the process kills itself (tests only)."""
POINTS: Final = (
    "download",
    "sigstore-worker",
    "verify",
    "unpack",
    "rootfs-build",
    "rootfs-unpack",
    "configure",
    "make",
    "install",
    "manifest",
    "commit",
    "publish",
    "attest",
    "merge",
)
"""Where a process can be told to die: while bytes arrive in the download quarantine; in the Sigstore worker
process, with its request read and before it answers (the worker dies, not the command); after the source
checks, before admission; with the source half unpacked; with a rootfs tarball half written; with the
sandbox's rootfs half unpacked; during each sandboxed build phase; with the manifest written but not
the record; with a finished entry sealed but not yet renamed into the cache; between the two renames
that replace a result directory or site; between an attestation's two statements; with a status site
assembled but not yet in place."""
_POLL_SECONDS: Final = 0.005


def kill_point() -> str | None:
    """The point named by ``$CPYTHON_VERIFY_TEST_KILL_AT`` (None in every real run)."""
    return os.environ.get(KILL_AT_SETTING) or None


def reached(point: str) -> None:
    """Test-only: die by SIGKILL here if ``$CPYTHON_VERIFY_TEST_KILL_AT`` is ``point``; otherwise nothing."""
    if kill_point() == point:
        _die()


def while_running(point: str, log: Path) -> None:
    """Test-only: if ``$CPYTHON_VERIFY_TEST_KILL_AT`` is ``point``, die as soon as ``log`` has output (the
    sandboxed command of that phase is running); otherwise nothing. Call :func:`reached` with the same
    point when the command returns, so a phase that ends before its first output is seen still dies
    before the next step."""
    if kill_point() != point:
        return

    def watch() -> None:
        while True:
            try:
                if log.stat().st_size > 0:
                    _die()
            except FileNotFoundError:
                pass
            time.sleep(_POLL_SECONDS)

    threading.Thread(target=watch, name=f"kill-at-{point}", daemon=True).start()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
