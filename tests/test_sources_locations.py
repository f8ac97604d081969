"""Local directories, python.org-layout mirrors, the cache, and the location factory, with real files."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_cli
from httpserver import Fault, FaultyServer

from verify.common.errors import FetchError
from verify.common.fsutil import cache_root
from verify.environments.rootfs import EnvironmentCache
from verify.rebuild import rebuild_cache_dir
from verify.source.checks import fetch_first
from verify.source.locations.cache import Cache, CachedReleaseFiles
from verify.source.locations.debian import DebianArchive
from verify.source.locations.http import HttpClient, HttpSettings
from verify.source.locations.local import LocalDirectory
from verify.source.locations.select import build_locations
from verify.source.locations.upstream import UpstreamLocation
from verify.source.recipes import load_recipe
from verify.source.releases import Version

V3135 = Version.parse("3.13.5")
TARBALL = "Python-3.13.5.tar.xz"
TARBALL_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def quiet_client() -> HttpClient:
    return HttpClient.quiet(HttpSettings(attempts=2, backoff=0.01, read_timeout=5))


# --- local directories -------------------------------------------------------------------------


def test_local_directory_with_python_org_names(cpython_fixtures: Path, cache: Cache) -> None:
    local = LocalDirectory(cpython_fixtures, cache=cache, debian_package="python3.13")
    fetched = local.fetch(V3135, TARBALL)
    assert fetched is not None
    assert (fetched.name, fetched.sha256, fetched.size) == (TARBALL, TARBALL_SHA256, 22_856_016)
    assert fetched.origin == str(cpython_fixtures / TARBALL)
    assert fetched.path.parent.parent == cache.quarantine_root, "a copy in the quarantine, not the user's file"
    assert cache.admit(fetched).path == cache.root / "sha256" / TARBALL_SHA256
    sigstore = local.fetch(V3135, TARBALL + ".sigstore")
    assert sigstore is not None and sigstore.name == TARBALL + ".sigstore"
    assert local.fetch(V3135, "Python-3.13.5.tgz") is None
    assert local.description == f"local {cpython_fixtures}"


def test_local_directory_with_debian_names(cpython_fixtures: Path, tmp_path: Path, cache: Cache) -> None:
    distfiles = tmp_path / "distfiles"
    distfiles.mkdir()
    (distfiles / "python3.13_3.13.5.orig.tar.xz").symlink_to(cpython_fixtures / TARBALL)
    (distfiles / "python3.13_3.13.5.orig.tar.xz.asc").symlink_to(cpython_fixtures / (TARBALL + ".asc"))
    (distfiles / "python3.11_3.11.2.orig.tar.gz").symlink_to(cpython_fixtures / "Python-3.11.2.tgz")
    local = LocalDirectory(distfiles, cache=cache, debian_package="python3.13")
    fetched = local.fetch(V3135, TARBALL)
    assert fetched is not None and fetched.sha256 == TARBALL_SHA256 and fetched.name == TARBALL
    assert fetched.origin == str(distfiles / "python3.13_3.13.5.orig.tar.xz")
    signature = local.fetch(V3135, TARBALL + ".asc")
    assert signature is not None and signature.name == TARBALL + ".asc"
    py311 = LocalDirectory(distfiles, cache=cache, debian_package="python3.11").fetch(
        Version.parse("3.11.2"), "Python-3.11.2.tgz"
    )
    assert py311 is not None
    assert py311.sha256 == "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"
    assert LocalDirectory(distfiles, cache=cache).fetch(V3135, TARBALL) is None, "Debian names only when enabled"


def test_local_copy_is_immune_to_later_changes(tmp_path: Path, cpython_fixtures: Path, cache: Cache) -> None:
    distfiles = tmp_path / "distfiles"
    distfiles.mkdir()
    original = (cpython_fixtures / (TARBALL + ".asc")).read_bytes()
    (distfiles / (TARBALL + ".asc")).write_bytes(original)
    fetched = LocalDirectory(distfiles, cache=cache).fetch(V3135, TARBALL + ".asc")
    assert fetched is not None
    (distfiles / (TARBALL + ".asc")).write_bytes(b"swapped after hashing")
    assert fetched.path.read_bytes() == original
    assert hashlib.sha256(fetched.path.read_bytes()).hexdigest() == fetched.sha256


def test_local_errors_are_fetch_errors(tmp_path: Path, cache: Cache) -> None:
    (tmp_path / TARBALL).mkdir()
    with pytest.raises(FetchError, match="is a directory"):
        LocalDirectory(tmp_path, cache=cache).fetch(V3135, TARBALL)
    (tmp_path / "big.tar.xz").write_bytes(b"x" * 5000)
    with pytest.raises(FetchError, match="size cap of 1000 bytes"):
        LocalDirectory(tmp_path, cache=cache, max_bytes=1000).fetch(V3135, "big.tar.xz")
    assert not (cache.root / "sha256").exists()
    assert [path for path in cache.quarantine_root.glob("*/**/*") if path.is_file()] == []  # the run's own lock aside
    with pytest.raises(ValueError, match="not a plain file name"):
        LocalDirectory(tmp_path, cache=cache).fetch(V3135, "../etc/passwd")


# --- cache -----------------------------------------------------------------------------------


def test_cache_lookup_rehashes_and_discards_corruption(cpython_fixtures: Path, cache: Cache) -> None:
    fetched = LocalDirectory(cpython_fixtures, cache=cache).fetch(V3135, TARBALL + ".asc")
    assert fetched is not None
    fetched = cache.admit(fetched)
    assert cache.lookup(fetched.sha256) == fetched.path
    assert cache.lookup(fetched.sha256.upper()) == fetched.path
    fetched.path.write_bytes(b"bit rot")
    assert cache.lookup(fetched.sha256) is None
    assert not fetched.path.exists(), "a corrupt entry is deleted, never served"
    assert cache.lookup("0" * 64) is None
    with pytest.raises(ValueError, match="not a lower-case sha256"):
        cache.path_for("../../etc/passwd")


def test_failed_store_leaves_nothing(cache: Cache) -> None:
    with pytest.raises(RuntimeError), cache.pending() as entry:
        entry.write(b"half a file")
        raise RuntimeError("killed")
    assert not (cache.root / "sha256").exists()
    assert [path for path in cache.quarantine_root.glob("*/**/*") if path.is_file()] == []  # the run's own lock aside


def test_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CPYTHON_VERIFY_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit", "an explicit --cache wins over the variable"
    monkeypatch.delenv("CPYTHON_VERIFY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "cpython-verify"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says relative paths are invalid
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "cpython-verify"
    # Every cache is a fixed subdirectory of the one root.
    assert Cache.at().root == cache_root()
    assert EnvironmentCache.at(None).root == cache_root() / "environments"
    assert rebuild_cache_dir() == cache_root() / "rebuilds"
    assert rebuild_cache_dir(tmp_path / "x") == tmp_path / "x" / "rebuilds"
    assert rebuild_cache_dir(tmp_path / "x", tmp_path / "mine") == tmp_path / "mine"


# --- upstream layout over real HTTP -------------------------------------------------------------


def test_mirror_layout_uses_the_base_version(server: FaultyServer, cache: Cache) -> None:
    mirror = UpstreamLocation.mirror(server.url + "/ftp/python/", client=quiet_client(), cache=cache)
    assert mirror.description == server.url + "/ftp/python"
    fetched = mirror.fetch(V3135, TARBALL)
    assert fetched is not None and fetched.sha256 == TARBALL_SHA256
    assert fetched.origin == f"{server.url}/ftp/python/3.13.5/{TARBALL}"
    assert mirror.fetch(Version.parse("3.13.5rc1"), "Python-3.13.5rc1.tar.xz") is None
    assert server.requests[-1].path == "/ftp/python/3.13.5/Python-3.13.5rc1.tar.xz", "pre-releases live under base"


def test_mirror_url_must_be_http(cache: Cache) -> None:
    with pytest.raises(FetchError, match="must be an http:// or https:// URL"):
        UpstreamLocation.mirror("ftp://mirror.invalid/python", client=quiet_client(), cache=cache)
    with pytest.raises(FetchError, match="must be an http:// or https:// URL"):
        UpstreamLocation.mirror("/srv/mirror", client=quiet_client(), cache=cache)


def test_python_org_location_from_the_recipe(cache: Cache) -> None:
    location = UpstreamLocation.python_org(load_recipe("3.13"), client=quiet_client(), cache=cache)
    assert location.description == "https://www.python.org/ftp/python"


def test_fetch_first_skips_a_broken_mirror(server: FaultyServer, cache: Cache, tmp_path: Path) -> None:
    server.always(f"/broken/3.13.5/{TARBALL}", Fault(status=500))
    locations = [
        LocalDirectory(tmp_path, cache=cache),
        UpstreamLocation.mirror(server.url + "/broken", client=quiet_client(), cache=cache),
        UpstreamLocation.mirror(server.url + "/ftp/python", client=quiet_client(), cache=cache),
    ]
    fetched, notes = fetch_first(locations, V3135, TARBALL)
    assert fetched is not None and fetched.sha256 == TARBALL_SHA256
    assert notes[0] == f"{TARBALL}: not at local {tmp_path}"
    assert "HTTP 500" in notes[1] and "/broken/3.13.5/" in notes[1]


def test_a_dripping_mirror_is_abandoned_after_the_speed_window_and_the_next_one_used(
    server: FaultyServer, cache: Cache, cpython_fixtures: Path
) -> None:
    # One byte every 10 ms (~100 B/s) never trips a read timeout, and the size-scaled deadline would
    # give a 22 MB tarball ~12 minutes; the speed floor gives up after its window.
    drip_path = f"/dripping/3.13.5/{TARBALL}"
    server.add(drip_path, (cpython_fixtures / TARBALL).read_bytes())
    server.always(drip_path, Fault(drip=0.01))
    client = HttpClient.quiet(HttpSettings(attempts=3, backoff=0.01, read_timeout=30, speed_window=1.0))
    dripping = UpstreamLocation.mirror(server.url + "/dripping", client=client, cache=cache)
    good = UpstreamLocation.mirror(server.url + "/ftp/python", client=client, cache=cache)
    started = time.monotonic()
    fetched, notes = fetch_first([dripping, good], V3135, TARBALL)
    elapsed = time.monotonic() - started
    assert fetched is not None and fetched.sha256 == TARBALL_SHA256
    assert fetched.origin == f"{server.url}/ftp/python/3.13.5/{TARBALL}", "the next location was used"
    assert elapsed < 10, elapsed
    assert len(server.requests_for(drip_path)) == 1, "a location below the floor is not retried"
    [note] = notes
    assert note.startswith(f"{TARBALL}: {server.url}/dripping: {server.url}{drip_path}: slower than the speed "
                           "floor of 1.0 KiB/s for 1 s (measured "), note  # fmt: skip
    measured = re.search(r"measured (\d+) B/s", note)
    assert measured is not None and 20 <= int(measured.group(1)) <= 200, note


def test_a_mirror_that_never_answers_is_abandoned_after_the_speed_window(server: FaultyServer, cache: Cache) -> None:
    # Accepts the connection, never sends a status line: a read timeout of 30 s and five attempts would
    # cost minutes per file; the speed window ends it once, and the next location is used.
    dead_path = f"/dead/3.13.5/{TARBALL}"
    server.always(dead_path, Fault(delay=120))
    client = HttpClient.quiet(HttpSettings(attempts=5, backoff=0.01, read_timeout=30, speed_window=1.0))
    dead = UpstreamLocation.mirror(server.url + "/dead", client=client, cache=cache)
    good = UpstreamLocation.mirror(server.url + "/ftp/python", client=client, cache=cache)
    started = time.monotonic()
    fetched, notes = fetch_first([dead, good], V3135, TARBALL)
    assert fetched is not None and fetched.origin == f"{server.url}/ftp/python/3.13.5/{TARBALL}"
    assert time.monotonic() - started < 10
    assert len(server.requests_for(dead_path)) == 1
    assert notes == [f"{TARBALL}: {server.url}/dead: {server.url}{dead_path}: no answer in 1 s, below the speed "
                     "floor of 1.0 KiB/s; this location is abandoned"]  # fmt: skip


# --- factory ---------------------------------------------------------------------------------


def test_build_locations_order_and_choices(tmp_path: Path, cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPYTHON_VERIFY_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    recipe = load_recipe("3.13")
    client = quiet_client()
    locations = build_locations(
        recipe, from_dirs=[tmp_path], mirrors=["https://m.invalid/python"], debian=True, cache=cache, client=client
    )
    assert [location.description for location in locations] == [
        f"local {tmp_path}",
        f"cache {cache.root}",
        "https://m.invalid/python",
        "https://www.python.org/ftp/python",
        "Debian http://127.0.0.1:9/debian (bookworm trixie sid)",
    ]
    local = locations[0]
    assert isinstance(local, LocalDirectory) and local.debian_package == "python3.13"
    assert isinstance(locations[4], DebianArchive) and locations[4].package == "python3.13"
    offline = build_locations(recipe, from_dirs=[tmp_path], upstream=False, cache=cache, client=client)
    assert [type(location) for location in offline] == [LocalDirectory, CachedReleaseFiles]


# --- local before network ----------------------------------------------------------------------

V3112 = Version.parse("3.11.2")
NAMES_3112 = ("Python-3.11.2.tar.xz", "Python-3.11.2.tgz")


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/ftp/python"


def test_a_local_copy_of_any_name_is_used_before_the_network(
    cpython_fixtures: Path, cache: Cache, tmp_path: Path
) -> None:
    """The preferred .tar.xz is on the mirror, the .tgz in --from: the local .tgz wins, the mirror is never asked."""
    www = tmp_path / "www" / "ftp" / "python" / "3.11.2"
    www.mkdir(parents=True)
    (www / NAMES_3112[0]).write_bytes(b"a mirror's copy")
    distfiles = tmp_path / "distfiles"
    distfiles.mkdir()
    (distfiles / NAMES_3112[1]).symlink_to(cpython_fixtures / NAMES_3112[1])
    with FaultyServer(tmp_path / "www") as server:
        # The network location comes first in the list: locality, not list order, decides.
        locations = [
            UpstreamLocation.mirror(server.url + "/ftp/python", client=quiet_client(), cache=cache),
            LocalDirectory(distfiles, cache=cache),
        ]
        fetched, notes = fetch_first(locations, V3112, NAMES_3112)
        assert server.requests == []
    assert fetched is not None and fetched.name == NAMES_3112[1]
    assert fetched.origin == str(distfiles / NAMES_3112[1])
    assert notes == [f"{NAMES_3112[0]}: not at local {distfiles}"]


def test_an_unreachable_network_location_is_a_note_beside_a_local_tarball(
    cpython_fixtures: Path, cache: Cache, tmp_path: Path
) -> None:
    """`source 3.11.2 --from DIR` with the network down: the local .tgz is verified; the .asc fetch is a note."""
    import dataclasses

    from verify.source.assembly import SourceOptions, source_checks, source_request
    from verify.source.checks import verify_source

    options = SourceOptions(
        from_dirs=(cpython_fixtures,), offline=True, allow_missing=("openpgp",), cache_dir=cache.root
    )
    request = source_request(V3112, options, load_recipe(V3112.series))
    checks = source_checks(request.recipe, options, cache)
    down = UpstreamLocation.mirror(_closed_port_url(), client=quiet_client(), cache=cache)
    checks = dataclasses.replace(checks, locations=[down, *checks.locations], claim_providers=())
    verdict = verify_source(request, checks)
    assert verdict.tarball.name == NAMES_3112[1] and verdict.verified
    assert any(note.startswith(f"{NAMES_3112[1]}.asc: http://127.0.0.1:") for note in verdict.notes), verdict.notes
    # Without a local copy the same failure is still an error: nothing to fall back on.
    empty = tmp_path / "empty"
    empty.mkdir()
    checks = dataclasses.replace(checks, locations=[down, LocalDirectory(empty, cache=cache)])
    with pytest.raises(FetchError):
        verify_source(request, checks)


# --- the cache is a local location -------------------------------------------------------------


def _cli(cache_root: Path, *args: object) -> subprocess.CompletedProcess[str]:
    # python.org (a network location and a digest witness) fails at once, even on a machine with a network.
    no_network = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}
    return run_cli(*args, cache=cache_root, env=no_network)


def test_only_verified_release_files_are_found_by_name(cpython_fixtures: Path, cache: Cache, tmp_path: Path) -> None:
    cached_files = CachedReleaseFiles(cache)
    assert cached_files.is_local and cached_files.description == f"cache {cache.root}"
    fetched = LocalDirectory(cpython_fixtures, cache=cache).fetch(V3135, TARBALL)
    assert fetched is not None
    cache.remember_name(fetched)  # still quarantined: not verified, so not named
    assert cached_files.fetch(V3135, TARBALL) is None
    cache.remember_name(cache.admit(fetched))
    found = cached_files.fetch(V3135, TARBALL)
    assert found is not None and (found.sha256, found.size) == (TARBALL_SHA256, 22_856_016)
    assert found.origin == f"cache {cache.root / 'sha256' / TARBALL_SHA256}"
    # An entry corrupted on disk is deleted by the lookup, never served.
    (cache.root / "sha256" / TARBALL_SHA256).write_bytes(b"corrupt")
    assert cached_files.fetch(V3135, TARBALL) is None and not (cache.root / "sha256" / TARBALL_SHA256).exists()
    for hostile in ("../names/x", ".hidden", "", "a/b"):
        assert cached_files.fetch(V3135, hostile) is None


@pytest.mark.parametrize("network", ["down", "errors"])
def test_a_verified_release_in_the_cache_is_used_when_the_network_fails(
    cpython_fixtures: Path, tmp_path: Path, network: str
) -> None:
    """Issue 12: the cache, like --from, is tried before any network location, and a failing one is a note."""
    cache_root = tmp_path / "cache"
    first = _cli(cache_root, "source", "3.11.2", "--from", cpython_fixtures, "--offline", "--allow-missing", "openpgp")
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(path.name for path in (cache_root / "names").iterdir()) == [
        "Python-3.11.2.tgz",
        "Python-3.11.2.tgz.sigstore",
    ]
    with FaultyServer(tmp_path / "empty-www") as server:
        if network == "down":
            mirror = _closed_port_url()
        else:
            mirror = server.url + "/ftp/python"
            server.always("/ftp/python/3.11.2/Python-3.11.2.tgz.asc", Fault(status=503))
        second = _cli(cache_root, "source", "3.11.2", "--mirror", mirror, "--allow-missing", "openpgp", "--json")
        requested = sorted({request.path for request in server.requests})
    assert second.returncode == 0, second.stdout + second.stderr
    verdict = json.loads(second.stdout)
    assert verdict["verified"] and verdict["tarball"]["origin"].startswith(f"cache {cache_root}/sha256/")
    sigstore = next(item for item in verdict["signatures"] if item["kind"] == "sigstore")
    assert sigstore["status"] == "verified" and sigstore["signature_origin"].startswith("cache ")
    assert any(note.startswith("Python-3.11.2.tgz.asc: http://127.0.0.1:") for note in verdict["notes"]), verdict
    if network == "errors":
        # Only the signature the cache does not hold was asked for: never the tarball.
        assert requested == ["/ftp/python/3.11.2/Python-3.11.2.tgz.asc"]
        assert any("503" in note for note in verdict["notes"]), verdict["notes"]
