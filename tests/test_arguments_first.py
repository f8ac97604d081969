"""Every command judges its arguments before its first side effect: a bad argument exits 2 with one
line (an audit input that holds no Python at all: 1, a verdict), before any download, copy into the cache,
environment build or rebuild.

Each case gives the command real source files (``--from`` the real fixtures, or a peer attestation
URL on a real local HTTP server), so a check made too late would leave files in the cache directory
or requests on the server.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from httpserver import FaultyServer


@pytest.fixture
def peer_server() -> Iterator[FaultyServer]:
    with FaultyServer() as running:
        running.add("/peer.intoto.json", b"{}")
        yield running


def _occupied(tmp_path: Path, name: str, inside: str = "someone-elses-file") -> Path:
    directory = tmp_path / name
    directory.mkdir(parents=True)
    (directory / inside).mkdir()
    return directory


def _garbage_key(tmp_path: Path) -> Path:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    return key


def _pgo_profile(tmp_path: Path) -> Path:
    profile = tmp_path / "pgo-profile.tar"
    profile.write_bytes(b"\0" * 1024)
    return profile


def _prefix(tmp_path: Path) -> Path:
    (tmp_path / "prefix" / "lib" / "python3.13").mkdir(parents=True)
    return tmp_path / "prefix"


Case = Callable[[Path, Path, str], list[str | Path]]
"""(tmp_path, fixtures, server URL) -> the command line's arguments."""

SOURCE = ["3.13.5", "--offline", "--from"]
TRUST = ["--identity", "rebuilder@example.org", "--issuer", "https://issuer.example.org"]
CASES: dict[str, tuple[Case, str]] = {
    "source --sha256 malformed": (
        lambda t, f, u: ["source", *SOURCE, f, "--sha256", "xyz"],
        "expected [LABEL=]<64 hex digits>",
    ),
    "rebuild --profile nosuch": (
        lambda t, f, u: ["rebuild", *SOURCE, f, "--profile", "nosuch"],
        "recipe has no profile 'nosuch'",
    ),
    "rebuild --pgo-profile without PGO": (
        lambda t, f, u: ["rebuild", *SOURCE, f, "--pgo-profile", _garbage_key(t), "--pgo-profile-sha256", "0" * 64],
        "no --enable-optimizations",
    ),
    "rebuild --runner nosuch": (
        lambda t, f, u: ["rebuild", *SOURCE, f, "--runner", "nosuch"],
        "'nosuch' is not one of 'bwrap', 'docker', 'podman'",
    ),
    "rebuild --pgo-profile-sha256 malformed": (
        lambda t, f, u: ["rebuild", *SOURCE, f, "--pgo-profile", _pgo_profile(t), "--pgo-profile-sha256", "abc"],
        "--pgo-profile needs --pgo-profile-sha256 with the profile's 64-hex-digit sha256",
    ),
    "rebuild --out occupied": (
        lambda t, f, u: ["rebuild", *SOURCE, f, "--out", _occupied(t, "out")],
        "exists and is not a cpython-verify result; not replacing it",
    ),
    "check --key unusable": (
        lambda t, f, u: ["check", *SOURCE, f, "--signing-key", _garbage_key(t)],
        "is not a PEM private key",
    ),
    "check --out occupied": (
        lambda t, f, u: ["check", *SOURCE, f, "--out", _occupied(t, "out")],
        "exists and is not a cpython-verify result; not replacing it",
    ),
    "env run --env malformed": (
        lambda t, f, u: ["env", "run", "bookworm-cpython", "--env", "NOEQUALS", "true"],
        "NOEQUALS",
    ),
    "plan --runner nosuch": (
        lambda t, f, u: ["plan", "3.13.5", "--runner", "nosuch"],
        "'nosuch' is not one of 'bwrap', 'docker', 'podman'",
    ),
    "peers --ours not a result": (
        lambda t, f, u: [
            "peers",
            "3.13.5",
            "--ours",
            _occupied(t, "ours"),
            "--attestation",
            u + "/peer.intoto.json",
            *TRUST,
        ],
        "is not a rebuild result",
    ),
    "peers --threshold 0": (
        lambda t, f, u: ["peers", "3.13.5", "--threshold", "0", "--attestation", u + "/peer.intoto.json", *TRUST],
        "--threshold",
    ),
    "releases --since malformed": (lambda t, f, u: ["releases", "--since", "yesterday"], "--since"),
    "compare missing input": (lambda t, f, u: ["compare", t / "a", t / "b"], "does not exist"),
    "attest missing result": (lambda t, f, u: ["attest", t / "no-result", "--signing-key", t / "new.pem"], "no-result"),
    "verify-attestation missing file": (
        lambda t, f, u: ["verify-attestation", t / "no.intoto.json", *TRUST],
        "no.intoto.json",
    ),
    "merge missing source": (lambda t, f, u: ["merge", t / "no-such-dir", "--out", t / "site"], "does not exist"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_argument_exits_2_before_any_side_effect(
    name: str, tmp_path: Path, cpython_fixtures: Path, peer_server: FaultyServer
) -> None:
    build, fragment = CASES[name]
    # Run from a scratch directory, so nothing lands in the checkout.
    result = run_cli(
        *build(tmp_path, cpython_fixtures, peer_server.url),
        cache=tmp_path / "cache",
        cwd=tmp_path,
        env={"XDG_CACHE_HOME": str(tmp_path / "xdg")},
        timeout=120,
    )
    _assert_refused_first(result, 2, fragment, tmp_path, peer_server)


def _assert_refused_first(
    result: subprocess.CompletedProcess[str], code: int, fragment: str, tmp_path: Path, peer_server: FaultyServer
) -> None:
    """Exit ``code`` with one line holding ``fragment``, and not one side effect."""
    combined = result.stdout + result.stderr
    assert result.returncode == code, combined
    assert "Traceback" not in combined and combined.count("\n") == 1, combined
    assert fragment in combined, combined
    assert not (tmp_path / "cache").exists(), "nothing was written to the cache directory"
    assert not (tmp_path / "xdg").exists()
    assert peer_server.requests == [], "nothing was downloaded"
    assert not (tmp_path / "site").exists()


def test_an_audit_input_without_python_fails_before_any_side_effect(
    tmp_path: Path, cpython_fixtures: Path, peer_server: FaultyServer
) -> None:
    """audit judges first whether the input holds an installation at all. One that holds nothing of the
    standard library nor the interpreter is not an operational error but a verdict (exit 1): it is not the
    Python it is said to be, and nothing of it could be compared."""
    result = run_cli(
        "audit",
        "3.13.5",
        _occupied(tmp_path, "not-a-prefix"),
        "--offline",
        "--from",
        cpython_fixtures,
        cache=tmp_path / "cache",
        cwd=tmp_path,
        env={"XDG_CACHE_HOME": str(tmp_path / "xdg")},
        timeout=120,
    )
    _assert_refused_first(
        result,
        1,
        "no file of the standard library or interpreter of Python 3.13 was in the input",
        tmp_path,
        peer_server,
    )
