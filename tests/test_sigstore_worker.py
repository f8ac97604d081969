"""The Sigstore check in its worker process: the same evidence as a check in this process, and every way the
worker can fail (killed, crashed, silent, saying something else) is one line and exit 2, never a green.

Real sigstore-python with its embedded trust root, real bundles, real worker processes: forked from this
process, or a new interpreter when this process has other threads. A few tests give the worker another
command line (a real process that dies or answers nonsense) to show what the parent makes of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import cli_environment, run_cli

from verify.common.errors import OperationalError
from verify.source.models import CheckStatus
from verify.source.recipes import SigstorePolicy, load_recipe
from verify.source.signatures.sigstore import verify_sigstore
from verify.source.signatures.sigstore_worker import SigstoreWorker, SigstoreWorkerError

TARBALL = "Python-3.13.5.tar.xz"
TARBALL_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"


def _policy() -> SigstorePolicy:
    policy = load_recipe("3.13").sigstore
    assert policy is not None
    return policy


def _bundle(cpython_fixtures: Path) -> bytes:
    return (cpython_fixtures / f"{TARBALL}.sigstore").read_bytes()


def _fields(**changed: object) -> dict[str, object]:
    """A well-formed VERIFIED answer for the 3.13 recipe's signer, with ``changed`` fields."""
    answer: dict[str, object] = {
        "status": "verified",
        "detail": "signed by thomas@python.org",
        "signer": "thomas@python.org",
        "signer_name": "https://accounts.google.com",
        "signed_at": None,
        "notes": [],
    }
    return answer | changed


def _answering(document: object, status: int = 0) -> list[str]:
    """A worker command line that ignores its request and answers ``document`` (text as it is, anything else
    as JSON) with exit ``status``."""
    text = document if isinstance(document, str) else json.dumps(document)
    script = f"import sys; sys.stdin.read(); sys.stdout.write({text!r}); sys.exit({status})"
    return [sys.executable, "-c", script]


@pytest.mark.parametrize("threads", ["forked", "new interpreter"])
def test_the_worker_judges_exactly_like_a_check_in_this_process(cpython_fixtures: Path, threads: str) -> None:
    """Verified, a wrong identity, a wrong issuer and a bundle for other bytes: the worker's evidence is the
    in-process evidence, field for field (a process with another thread gets a new interpreter)."""
    bundle = _bundle(cpython_fixtures)
    right = _policy()
    cases = [
        (TARBALL_SHA256, right),
        (TARBALL_SHA256, replace(right, identity="hugo@python.org")),
        (TARBALL_SHA256, replace(right, issuer="https://github.com/login/oauth")),
        ("0" * 64, right),
    ]
    stop = threading.Event()
    other = threading.Thread(target=stop.wait) if threads == "new interpreter" else None
    if other is not None:
        other.start()
        cases = cases[::3]  # a new interpreter per case costs a second: the verified one and the other bytes
    try:
        for digest, policy in cases:
            with SigstoreWorker(offline=True) as worker:
                answered = worker.check(digest, bundle, policy, bundle_origin="fixtures")
            assert answered == verify_sigstore(digest, bundle, policy, bundle_origin="fixtures")
    finally:
        stop.set()
        if other is not None:
            other.join()
    good = SigstoreWorker(offline=True).check(TARBALL_SHA256, bundle, right)
    assert good.status is CheckStatus.VERIFIED, good.detail
    assert good.signed_at is not None and good.signed_at.isoformat() == "2025-06-11T17:46:23+00:00"


def test_a_malformed_bundle_fails_in_the_worker_with_one_line() -> None:
    evidence = SigstoreWorker(offline=True, preload=False).check(TARBALL_SHA256, b"not json at all", _policy())
    assert evidence.status is CheckStatus.FAILED
    assert evidence.detail.startswith("not a Sigstore bundle"), evidence.detail
    assert "\n" not in evidence.detail


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], "killed by SIGKILL"),
        ([sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(3)"], "exited with status 3"),
        ([sys.executable, "-c", "raise RuntimeError('the worker broke\\nover two lines')"], "status 1: over two lines"),
        (_answering("not json"), "not JSON"),
        (_answering(""), "not JSON"),
        (_answering({"status": "verified"}), "malformed"),
        (_answering(_fields(status="missing")), "malformed"),
        (_answering(_fields(signer="mallory@example.org")), "not the recipe's thomas@python.org"),
        (_answering(_fields(signed_at="2025-06-11T17:46:23")), "no time zone"),
        (_answering({"error": "surprise", "message": "x"}), "malformed"),
    ],
)
def test_a_worker_that_gives_no_well_formed_answer_is_an_operational_error(
    cpython_fixtures: Path, command: list[str], fragment: str
) -> None:
    worker = SigstoreWorker(command=command)
    with pytest.raises(SigstoreWorkerError) as raised:
        worker.check(TARBALL_SHA256, _bundle(cpython_fixtures), _policy())
    message = raised.value.message
    assert raised.value.exit_code == 2
    assert fragment in message and "\n" not in message and len(message) < 600, message


def test_an_error_the_worker_reports_is_raised_as_its_kind(cpython_fixtures: Path) -> None:
    worker = SigstoreWorker(command=_answering({"error": "trust-root", "message": "cannot load the trust root: x"}))
    with pytest.raises(OperationalError, match=r"^cannot load the trust root: x$"):
        worker.check(TARBALL_SHA256, _bundle(cpython_fixtures), _policy())


def test_a_worker_never_asked_is_stopped_and_a_stopped_one_refuses(cpython_fixtures: Path) -> None:
    worker = SigstoreWorker(offline=True)
    process = worker._ready
    assert process is not None and process.returncode is None
    worker.close()
    assert process.returncode == -signal.SIGKILL or process.returncode == 0  # killed, or it had already exited
    with pytest.raises(SigstoreWorkerError, match="already stopped"):
        worker.check(TARBALL_SHA256, _bundle(cpython_fixtures), _policy())


def test_a_worker_outlives_no_parent(tmp_path: Path) -> None:
    """The parent killed by SIGKILL (no cleanup runs): its preloaded worker sees its request pipe close and exits."""
    script = (
        "import os, sys, time\n"
        "from verify.source.signatures.sigstore_worker import SigstoreWorker\n"
        "worker = SigstoreWorker(offline=True)\n"
        "print(worker._ready._pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=cli_environment(cache=tmp_path)
    )
    assert parent.stdout is not None
    with parent.stdout:
        pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return  # exited; only its reaping by the init process is left
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the worker kept running after its parent was killed")


def test_a_killed_worker_is_one_line_and_exit_2_never_a_verdict(tmp_path: Path, cpython_fixtures: Path) -> None:
    """The real command line, its Sigstore worker killed (SIGKILL) after reading its request: one line, exit 2,
    no verdict on stdout, and nothing admitted into the cache."""
    distfiles = tmp_path / "distfiles"
    distfiles.mkdir()
    for name in (TARBALL, f"{TARBALL}.asc", f"{TARBALL}.sigstore"):
        (distfiles / name).symlink_to(cpython_fixtures / name)
    cache = tmp_path / "cache"
    result = run_cli(
        "source", "3.13.5", "--from", distfiles, "--offline", "--json",
        cache=cache, env={"CPYTHON_VERIFY_TEST_KILL_AT": "sigstore-worker"},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "cpython-verify: error: the Sigstore check's worker process was killed by SIGKILL without an answer"
    ]
    admitted = [path for path in cache.rglob("*") if path.is_file() and "quarantine" not in path.parts]
    assert not [path for path in admitted if path.stat().st_size == (cpython_fixtures / TARBALL).stat().st_size]
