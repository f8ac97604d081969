"""Failures that name their cause and the option or file that fixes it: a missing signature, an unreadable
one, an unreachable network, ``--offline`` with only the cache."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, cli_command, cli_environment, run_cli

from verify.common.errors import FetchError
from verify.source.locations.cache import Cache
from verify.source.locations.http import HttpClient, HttpSettings
from verify.source.locations.upstream import UpstreamLocation
from verify.source.recipes import load_recipe
from verify.source.releases import Version

V3135 = Version.parse("3.13.5")
TARBALL = "Python-3.13.5.tar.xz"


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/ftp/python"


def test_a_missing_required_signature_names_the_options_that_fix_it(cpython_fixtures: Path, tmp_path: Path) -> None:
    result = run_cli("source", "3.11.2", "--offline", "--from", cpython_fixtures, cache=tmp_path / "c")
    assert result.returncode == 1, result.stderr
    verdict = result.stdout.splitlines()[-1]
    assert verdict.startswith("NOT VERIFIED") and "openpgp signature not found" in verdict
    assert "put the tarball's .asc file beside it in a --from DIR" in verdict
    assert "--allow-missing openpgp" in verdict


def test_an_unreadable_signature_is_a_permission_error_not_a_missing_one(
    cpython_fixtures: Path, tmp_path: Path
) -> None:
    distfiles = tmp_path / "distfiles"
    distfiles.mkdir()
    for name in (TARBALL, f"{TARBALL}.sigstore", f"{TARBALL}.asc"):
        shutil.copyfile(cpython_fixtures / name, distfiles / name)
    (distfiles / f"{TARBALL}.asc").chmod(0)
    args: list[object] = ["source", "3.13.5", "--offline", "--from", distfiles]
    if os.geteuid() == 0:  # root reads any file: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]
        result = _run_prefixed(prefix, args, tmp_path / "c")
    else:
        result = run_cli(*args, cache=tmp_path / "c")
    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stderr.strip()
    assert line.count("\n") == 0 and "Traceback" not in line, line
    assert f"{distfiles / TARBALL}.asc: cannot read: Permission denied" in line, line
    assert "not found" not in line


def _run_prefixed(prefix: list[str], args: list[object], cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *cli_command(*args)], capture_output=True, text=True, env=cli_environment(cache=cache),
        cwd=PROJECT_ROOT, timeout=300, check=False,
    )  # fmt: skip


def test_an_unreachable_host_is_given_its_retries_once_per_run(tmp_path: Path) -> None:
    delays: list[float] = []
    client = HttpClient(HttpSettings(attempts=3, backoff=0.25), progress=None, sleep=delays.append)
    url = _closed_port_url()
    with pytest.raises(FetchError, match=r"connection refused \(gave up after 3 attempts\)"):
        client.download(f"{url}/3.13.5/{TARBALL}", Cache(tmp_path / "cache"))
    assert delays == [0.25, 0.5]  # the retry policy, whole, for the first file
    with pytest.raises(FetchError, match=r"connection refused \(every attempt at 127\.0\.0\.1:\d+ failed earlier"):
        client.download(f"{url}/3.13.5/Python-3.13.5.tgz", Cache(tmp_path / "cache"))
    assert delays == [0.25, 0.5]  # the host's next file waits no more


def test_a_network_failure_suggests_from_and_offline(tmp_path: Path) -> None:
    from verify.source.assembly import SourceOptions, source_checks, source_request
    from verify.source.checks import verify_source

    cache = Cache(tmp_path / "cache")
    options = SourceOptions(offline=True, cache_dir=cache.root)
    request = source_request(V3135, options, load_recipe(V3135.series))
    checks = source_checks(request.recipe, options, cache)
    quiet = HttpClient.quiet(HttpSettings(attempts=2, backoff=0.01))
    down = UpstreamLocation.mirror(_closed_port_url(), client=quiet, cache=cache)
    checks = dataclasses.replace(checks, locations=[*checks.locations, down], claim_providers=())
    with pytest.raises(FetchError) as raised:
        verify_source(request, checks)
    message = raised.value.message
    assert "connection refused" in message and "--from DIR --offline" in message, message


def test_offline_uses_the_cache_alone(cpython_fixtures: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    empty = run_cli("source", "3.13.5", "--offline", cache=cache)
    assert empty.returncode == 2 and "give a directory that holds it with --from DIR" in empty.stderr, empty.stderr
    first = run_cli("source", "3.13.5", "--offline", "--from", cpython_fixtures, cache=cache)
    assert first.returncode == 0, first.stderr
    again = run_cli("source", "3.13.5", "--offline", cache=cache)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].startswith("VERIFIED: CPython 3.13.5 source Python-3.13.5.tar.xz")
    assert "2 of 2 signature(s) verified" in again.stdout


def test_a_truncated_tarball_is_named_incomplete_when_metadata_gives_its_size(
    cpython_fixtures: Path, tmp_path: Path
) -> None:
    distfiles = tmp_path / "distfiles"
    distfiles.mkdir()
    with (cpython_fixtures / TARBALL).open("rb") as whole:
        (distfiles / TARBALL).write_bytes(whole.read(10_000_000))
    for name in (f"{TARBALL}.asc", f"{TARBALL}.sigstore"):
        shutil.copyfile(cpython_fixtures / name, distfiles / name)
    metadata = cpython_fixtures / "release-metadata" / "3.13.5.json"
    result = run_cli(
        "source", "3.13.5", "--from", distfiles, "--offline", "--release-metadata", metadata, cache=tmp_path / "c"
    )
    assert result.returncode == 1, result.stderr
    verdict = result.stdout.splitlines()[-1]
    assert verdict.startswith("NOT VERIFIED")
    # The cause first, then the failures it causes (which stay: a cut file is not verified either).
    assert ": the tarball is incomplete: 10,000,000 of 22,856,016 bytes (the size " in verdict, verdict
    assert "BAD signature" in verdict
