"""Downloading pinned .deb files from a real HTTP server on 127.0.0.1: digests, missing versions, snapshots."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from httpserver import Fault, FaultyServer
from test_env_lock import build_deb

from verify.common.errors import EXIT_ERROR, EXIT_FAILED, OperationalError
from verify.environments.errors import PackageDigestMismatch, PackageUnavailable
from verify.environments.fetch import (
    DEFAULT_MAX_DEB_CACHE_BYTES,
    MAX_DEB_CACHE_BYTES_SETTING,
    DebCache,
    fetch_debs,
)
from verify.environments.lock import LockedPackage
from verify.source.locations.http import HttpClient, HttpSettings


def fast_client() -> HttpClient:
    """The one HTTP client, with fast retries so fault tests take milliseconds."""
    return HttpClient.quiet(HttpSettings(connect_timeout=2.0, read_timeout=2.0, attempts=3, backoff=0.01))


class Archive:
    """A tiny Debian-like archive served over real HTTP: path -> bytes, with a request log."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        archive = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                archive.requests.append(self.path)
                body = archive.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # the client hanging up on an oversized body is expected, not noise

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def archive() -> Iterator[Archive]:
    served = Archive()
    served.thread.start()
    yield served
    served.close()


@pytest.fixture
def real_deb(tmp_path: Path) -> tuple[LockedPackage, bytes]:
    (tmp_path / "debs").mkdir()
    deb = build_deb(tmp_path / "debs", "demo-tool", "1.0-1")
    data = deb.read_bytes()
    package = LockedPackage(
        name="demo-tool",
        version="1.0-1",
        architecture="all",
        path=f"pool/main/d/demo-tool/{deb.name}",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return package, data


def test_download_verifies_and_caches_by_digest(
    archive: Archive, real_deb: tuple[LockedPackage, bytes], tmp_path: Path
) -> None:
    package, data = real_deb
    archive.files[f"/debian/{package.path}"] = data
    cache = DebCache(tmp_path / "cache")
    paths = fetch_debs([package], cache, mirror=f"{archive.url}/debian", snapshot=None)
    assert paths[package] == cache.directory / f"{package.sha256}.deb"
    assert paths[package].read_bytes() == data
    # A second fetch is a cache hit: no request reaches the server.
    fetch_debs([package], cache, mirror=f"{archive.url}/debian", snapshot=None)
    assert archive.requests == [f"/debian/{package.path}"]
    assert list(cache.directory.iterdir()) == [paths[package]]


def test_served_bytes_that_differ_from_the_lock_are_refused_and_not_cached(
    archive: Archive, real_deb: tuple[LockedPackage, bytes], tmp_path: Path
) -> None:
    package, data = real_deb
    tampered = data[:-1] + bytes([data[-1] ^ 1])  # same size, one bit flipped
    archive.files[f"/debian/{package.path}"] = tampered
    cache = DebCache(tmp_path / "cache")
    with pytest.raises(PackageDigestMismatch, match="the lock pins") as error:
        fetch_debs([package], cache, mirror=f"{archive.url}/debian", snapshot=None)
    assert error.value.exit_code == EXIT_FAILED
    assert hashlib.sha256(tampered).hexdigest() in error.value.message
    assert list(cache.directory.iterdir()) == []  # neither the file nor a partial download remains


def test_oversized_response_is_cut_off(archive: Archive, real_deb: tuple[LockedPackage, bytes], tmp_path: Path) -> None:
    package, data = real_deb
    archive.files[f"/debian/{package.path}"] = data + b"\0" * (4 << 20)
    cache = DebCache(tmp_path / "cache")
    with pytest.raises(PackageDigestMismatch):
        fetch_debs([package], cache, mirror=f"{archive.url}/debian", snapshot=None)
    assert list(cache.directory.iterdir()) == []


def test_version_gone_from_mirror_points_at_snapshot_setting(
    archive: Archive, real_deb: tuple[LockedPackage, bytes], tmp_path: Path
) -> None:
    package, _ = real_deb
    with pytest.raises(PackageUnavailable, match="CPYTHON_VERIFY_DEBIAN_SNAPSHOT") as error:
        fetch_debs([package], DebCache(tmp_path / "cache"), mirror=f"{archive.url}/debian", snapshot=None)
    assert error.value.exit_code == EXIT_ERROR
    assert "demo-tool 1.0-1" in error.value.message and "\n" not in error.value.message


def test_snapshot_archive_serves_old_pins(
    archive: Archive, real_deb: tuple[LockedPackage, bytes], tmp_path: Path
) -> None:
    package, data = real_deb
    snapshot = f"{archive.url}/archive/debian/20250520T000000Z"
    archive.files[f"/archive/debian/20250520T000000Z/{package.path}"] = data
    paths = fetch_debs([package], DebCache(tmp_path / "cache"), mirror=f"{archive.url}/debian", snapshot=snapshot)
    assert paths[package].read_bytes() == data
    assert archive.requests == [f"/debian/{package.path}", f"/archive/debian/20250520T000000Z/{package.path}"]
    # ... and when the snapshot lacks it too, the message says so.
    archive.files.clear()
    with pytest.raises(PackageUnavailable, match="does not have it either"):
        fetch_debs([package], DebCache(tmp_path / "other"), mirror=f"{archive.url}/debian", snapshot=snapshot)


def test_server_error_and_unreachable_mirror_are_operational(
    archive: Archive, real_deb: tuple[LockedPackage, bytes], tmp_path: Path
) -> None:
    package, _ = real_deb
    archive.files[f"/debian/{package.path}"] = b""
    with pytest.raises(PackageDigestMismatch):
        fetch_debs([package], DebCache(tmp_path / "a"), mirror=f"{archive.url}/debian", snapshot=None)
    closed = Archive()  # bound, then closed: a port on 127.0.0.1 where nothing listens
    port_url = closed.url
    closed.server.server_close()
    with pytest.raises(PackageUnavailable, match="cannot download") as error:
        # Fast back-off: the default client retries a refused connection for 7.5 s before giving up.
        fetch_debs([package], DebCache(tmp_path / "b"), mirror=port_url, snapshot=None, client=fast_client())
    assert "connection refused (gave up after 3 attempts)" in error.value.message


def test_damaged_cache_entry_is_replaced(
    archive: Archive, real_deb: tuple[LockedPackage, bytes], tmp_path: Path
) -> None:
    package, data = real_deb
    archive.files[f"/debian/{package.path}"] = data
    cache = DebCache(tmp_path / "cache")
    cache.directory.mkdir()
    cache.path_for(package).write_bytes(b"bit rot")
    paths = fetch_debs([package], cache, mirror=f"{archive.url}/debian", snapshot=None)
    assert paths[package].read_bytes() == data
    assert len(archive.requests) == 1


def test_download_goes_through_the_http_client_and_resumes_after_a_reset(
    real_deb: tuple[LockedPackage, bytes], tmp_path: Path
) -> None:
    package, data = real_deb
    path = f"/debian/{package.path}"
    with FaultyServer() as server:
        server.add(path, data)
        server.fail(path, Fault(reset_after=len(data) // 2))
        paths = fetch_debs(
            [package], DebCache(tmp_path / "cache"), mirror=f"{server.url}/debian", snapshot=None, client=fast_client()
        )
        first, second = server.requests_for(path)
    assert paths[package].read_bytes() == data
    assert "Range" not in first.headers and second.headers["Range"].startswith("bytes=")
    assert int(second.headers["Range"].removeprefix("bytes=").rstrip("-")) > 0, "resumed, not restarted"


def test_a_mirror_below_the_speed_floor_is_left_for_the_snapshot_archive(
    real_deb: tuple[LockedPackage, bytes], tmp_path: Path
) -> None:
    package, data = real_deb
    notes: list[str] = []
    client = HttpClient.quiet(HttpSettings(read_timeout=30.0, attempts=3, backoff=0.01, speed_window=0.5))
    with FaultyServer() as server:
        server.add(f"/debian/{package.path}", data)
        server.always(f"/debian/{package.path}", Fault(drip=0.05))
        server.add(f"/snapshot/{package.path}", data)
        started = time.monotonic()
        paths = fetch_debs([package], DebCache(tmp_path / "cache"), mirror=f"{server.url}/debian",
                           snapshot=f"{server.url}/snapshot", client=client, progress=notes.append)  # fmt: skip
        assert time.monotonic() - started < 5
        assert len(server.requests_for(f"/debian/{package.path}")) == 1
    assert paths[package].read_bytes() == data
    [note] = [line for line in notes if "speed floor" in line]
    assert f"{server.url}/debian/{package.path}: slower than the speed floor of 1.0 KiB/s for 0.5 s" in note
    assert note.endswith(f"; trying {server.url}/snapshot")


def _locked(deb: Path) -> LockedPackage:
    data = deb.read_bytes()
    name, version, _ = deb.name.split("_")
    return LockedPackage(name=name, version=version, architecture="all",
                         path=f"pool/main/{name[0]}/{name}/{deb.name}", size=len(data),
                         sha256=hashlib.sha256(data).hexdigest())  # fmt: skip


def test_deb_cache_evicts_least_recently_used_beyond_its_bound_never_this_runs(
    archive: Archive, tmp_path: Path
) -> None:
    built = tmp_path / "built"
    built.mkdir()
    old, older, kept, new = (_locked(build_deb(built, f"pkg-{n}", "1.0-1")) for n in ("old", "older", "kept", "new"))
    for package in (old, older, kept, new):
        archive.files[f"/debian/{package.path}"] = (built / package.filename).read_bytes()
    directory = tmp_path / "cache"
    # An earlier run (an older lock) left three packages; `kept` is the oldest, but this run uses it.
    fetch_debs([old, older, kept], DebCache(directory), mirror=f"{archive.url}/debian", snapshot=None)
    for age, package in ((400, kept), (300, older), (200, old)):
        stamp = time.time() - age
        os.utime(DebCache(directory).path_for(package), (stamp, stamp))
    # This run uses `kept` (a cache hit) and downloads `new`, with room for about two packages.
    bound = kept.size + new.size + 100
    cache = DebCache(directory, max_bytes=bound)
    paths = fetch_debs([kept, new], cache, mirror=f"{archive.url}/debian", snapshot=None)
    assert sorted(path.name for path in directory.iterdir()) == sorted(path.name for path in paths.values())
    assert sum(path.stat().st_size for path in directory.iterdir()) <= bound
    # A bound smaller than this run's own packages leaves them all in place (the rootfs needs them).
    tiny = DebCache(directory, max_bytes=1)
    fetch_debs([kept, new], tiny, mirror=f"{archive.url}/debian", snapshot=None)
    assert tiny.evict() == [] and len(list(directory.iterdir())) == 2
    # A later run that uses neither deletes the least recently used first.
    stamp = time.time() - 50
    os.utime(cache.path_for(kept), (stamp, stamp))
    assert DebCache(directory, max_bytes=new.size).evict() == [cache.path_for(kept).name]
    assert [path.name for path in directory.iterdir()] == [cache.path_for(new).name]


def test_deb_cache_bound_is_read_from_its_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(MAX_DEB_CACHE_BYTES_SETTING, raising=False)
    assert DebCache(tmp_path).max_bytes == DEFAULT_MAX_DEB_CACHE_BYTES
    monkeypatch.setenv(MAX_DEB_CACHE_BYTES_SETTING, "12345")
    assert DebCache(tmp_path).max_bytes == 12345
    monkeypatch.setenv(MAX_DEB_CACHE_BYTES_SETTING, "1G")
    with pytest.raises(OperationalError) as error:
        DebCache(tmp_path)
    assert error.value.exit_code == EXIT_ERROR
    assert error.value.message == f"{MAX_DEB_CACHE_BYTES_SETTING}='1G': expected a number of bytes"
