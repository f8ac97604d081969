"""Nothing unverified is kept: downloads wait in a quarantine, and only a verified source enters the
cache; the cache's size is bounded. ``cpython-verify source`` against a real HTTP server on 127.0.0.1
serving the real release files, a tampered tarball, or a captive portal's HTML page."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, cli_command, cli_environment, run_cli
from httpserver import Fault, FaultyServer

from verify.source.locations.cache import MAX_CACHE_BYTES_SETTING, Cache
from verify.source.models import FetchedFile

RELEASE = "Python-3.13.5.tar.xz"
RELEASE_PATH = f"/ftp/python/3.13.5/{RELEASE}"
SIGNATURES = (RELEASE + ".asc", RELEASE + ".sigstore")
CAPTIVE_PORTAL = (
    b"<!DOCTYPE html><html><body><form action='/login'>Please sign in to the hotel Wi-Fi</form></body></html>"
)


# python.org's release API (an extra digest witness) is unreachable here, fast, even on a machine
# with a network; the mirror on 127.0.0.1 is plain http and not proxied.
NO_RELEASE_API = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}


def _source_args(server: FaultyServer) -> list[str]:
    return ["source", "3.13.5", "--mirror", server.url + "/ftp/python"]


def run_source(server: FaultyServer, cache: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*_source_args(server), cache=cache, env={**NO_RELEASE_API, **extra})


def cached(cache: Path) -> set[str]:
    objects = cache / "sha256"
    return {path.name for path in objects.iterdir()} if objects.is_dir() else set()


def quarantined(cache: Path) -> list[Path]:
    """Every file and directory left in a quarantine."""
    root = cache / "quarantine"
    return sorted(root.rglob("*")) if root.is_dir() else []


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plant_entry(cache: Path, body: bytes, *, age: float) -> str:
    """A verified entry used ``age`` seconds ago."""
    name = hashlib.sha256(body).hexdigest()
    path = cache / "sha256" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    then = time.time() - age
    os.utime(path, (then, then))
    return name


def test_verified_download_is_committed(server: FaultyServer, tmp_path: Path, cpython_fixtures: Path) -> None:
    cache = tmp_path / "cache"
    result = run_source(server, cache)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = {digest(cpython_fixtures / name) for name in (RELEASE, *SIGNATURES)}
    assert cached(cache) == expected, "the tarball and both signatures that verified"
    assert quarantined(cache) == []


def test_tampered_tarball_is_not_kept(server: FaultyServer, tmp_path: Path, cpython_fixtures: Path) -> None:
    cache = tmp_path / "cache"
    earlier = plant_entry(cache, b"an entry verified by an earlier run", age=60)
    tampered = bytearray((cpython_fixtures / RELEASE).read_bytes())
    tampered[10_000_000] ^= 0x01
    server.add(RELEASE_PATH, bytes(tampered))
    result = run_source(server, cache)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "NOT VERIFIED" in result.stdout
    assert len(server.requests_for(RELEASE_PATH)) == 1, "the tampered tarball was downloaded"
    assert cached(cache) == {earlier}, "nothing new under sha256/, and nothing earlier lost"
    assert quarantined(cache) == []


def test_captive_portal_page_is_not_kept(server: FaultyServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for name in (RELEASE, *SIGNATURES):
        server.add(f"/ftp/python/3.13.5/{name}", CAPTIVE_PORTAL)
    result = run_source(server, cache)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert server.requests_for(RELEASE_PATH) and server.requests_for(RELEASE_PATH.replace(RELEASE, SIGNATURES[0]))
    assert cached(cache) == set()
    assert quarantined(cache) == []


def test_interrupted_download_leaves_no_quarantine(server: FaultyServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    server.always(RELEASE_PATH, Fault(stall_after=1_000_000))
    process = subprocess.Popen(
        cli_command(*_source_args(server)),
        env=cli_environment(cache=cache, extra=NO_RELEASE_API),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # A suite started as a background job ignores SIGINT, and so would the child: give it Ctrl-C back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partial = [path for path in (cache / "quarantine").glob("run-*/partial-*") if path.suffix != ".lock"]
            if partial and partial[0].stat().st_size >= 1_000_000:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the download never started")
        process.send_signal(signal.SIGINT)  # Ctrl-C
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # reap it and close its pipes, whatever happened above
    assert process.returncode != 0
    assert b"Traceback" not in stderr
    assert quarantined(cache) == []
    assert cached(cache) == set()


def test_size_bound_evicts_the_least_recently_used(
    server: FaultyServer, tmp_path: Path, cpython_fixtures: Path
) -> None:
    cache = tmp_path / "cache"
    oldest = plant_entry(cache, b"o" * 4000, age=3600)
    recent = plant_entry(cache, b"r" * 4000, age=60)
    this_run = sum((cpython_fixtures / name).stat().st_size for name in (RELEASE, *SIGNATURES))
    result = run_source(server, cache, **{MAX_CACHE_BYTES_SETTING: str(this_run + 5000)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert oldest not in cached(cache) and recent in cached(cache)
    assert {digest(cpython_fixtures / name) for name in (RELEASE, *SIGNATURES)} <= cached(cache)
    assert sum(path.stat().st_size for path in (cache / "sha256").iterdir()) <= this_run + 5000


def test_bad_size_bound_setting_is_a_one_line_error(server: FaultyServer, tmp_path: Path) -> None:
    result = run_source(server, tmp_path / "cache", **{MAX_CACHE_BYTES_SETTING: "2G"})
    assert result.returncode == 2
    assert f"{MAX_CACHE_BYTES_SETTING}='2G': expected a number of bytes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert server.requests == [], "refused before any download"


def _quarantined_file(cache: Cache, body: bytes) -> FetchedFile:
    with cache.pending() as entry:
        entry.write(body)
        size, sha256 = entry.size, entry.sha256
        path = entry.commit()
    return FetchedFile(name="f", path=path, sha256=sha256, size=size, origin="test")


def test_eviction_never_removes_what_this_run_uses(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    old = plant_entry(root, b"x" * 100, age=3600)
    run = Cache(root, max_bytes=150)
    first = run.admit(_quarantined_file(run, b"a" * 100))
    assert cached(root) == {first.sha256}, "the old entry made room"
    second = run.admit(_quarantined_file(run, b"b" * 100))
    assert cached(root) == {first.sha256, second.sha256}, "over the bound, but both are this run's"
    assert old not in cached(root)
    next_run = Cache(root, max_bytes=150)
    assert next_run.lookup(second.sha256) == second.path
    assert next_run.evict() == [first.sha256], "the next run keeps what it uses and evicts the rest"


def test_only_quarantined_files_are_admitted_and_discarded(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    outside = tmp_path / "elsewhere"
    outside.write_bytes(b"data")
    stray = FetchedFile(name="x", path=outside, sha256=digest(outside), size=4, origin="test")
    with pytest.raises(ValueError, match="neither in this run's quarantine nor in the cache"):
        cache.admit(stray)
    cache.discard(stray)
    assert outside.exists(), "discard only ever deletes from the quarantine"
    with cache.quarantine():
        pending = _quarantined_file(cache, b"unverified")
        assert pending.path.exists()
    assert not pending.path.exists() and quarantined(cache.root) == []
