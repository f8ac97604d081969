"""Digest claims from the real release-tracker records and from python.org's API served on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpserver import Fault, FaultyServer

from verify.source.locations.http import HttpClient, HttpSettings
from verify.source.locations.metadata import (
    MetadataError,
    PythonOrgReleaseAPI,
    ReleaseMetadataFiles,
    claims_from_release_metadata,
    load_json,
)
from verify.source.releases import Version

TARBALL_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
V31312_XZ = "2a84cd31dd8d8ea8aaff75de66fc1b4b0127dd5799aa50a64ae9a313885b4593"


def quiet_client() -> HttpClient:
    return HttpClient.quiet(HttpSettings(attempts=2, backoff=0.01, read_timeout=2))


def tracker(cpython_fixtures: Path, version: str) -> Any:
    return json.loads((cpython_fixtures / "release-metadata" / f"{version}.json").read_text())


def test_tracker_record_without_python_org_sha256(cpython_fixtures: Path) -> None:
    # python.org's own sha256 field is null for 3.13.5: only the tracker's computed digest is a claim.
    claims = claims_from_release_metadata(tracker(cpython_fixtures, "3.13.5"), "Python-3.13.5.tar.xz", origin="t.json")
    assert [(claim.source, claim.sha256) for claim in claims] == [
        ("cpython-release-tracker's own sha256 of the download (t.json)", TARBALL_SHA256)
    ]


def test_tracker_record_with_both_digests_gives_two_labelled_claims(cpython_fixtures: Path) -> None:
    claims = claims_from_release_metadata(
        tracker(cpython_fixtures, "3.13.12"), "Python-3.13.12.tar.xz", origin="3.13.12.json"
    )
    assert [claim.source for claim in claims] == [
        "python.org release-file sha256 (as recorded by 3.13.12.json)",
        "cpython-release-tracker's own sha256 of the download (3.13.12.json)",
    ]
    assert {claim.sha256 for claim in claims} == {V31312_XZ}


def test_other_files_and_bad_shapes(cpython_fixtures: Path) -> None:
    assert claims_from_release_metadata(tracker(cpython_fixtures, "3.13.5"), "Python-3.13.6.tar.xz", origin="x") == []
    with pytest.raises(MetadataError, match="JSON list of file records"):
        claims_from_release_metadata({"files": []}, "a", origin="x")
    with pytest.raises(MetadataError, match="neither 'raw' nor 'url'"):
        claims_from_release_metadata([{"name": "a"}], "a", origin="x")
    with pytest.raises(MetadataError, match="not a sha256 digest"):
        claims_from_release_metadata([{"url": "https://h.invalid/a", "sha256_sum": "abc"}], "a", origin="x")


def test_release_metadata_files_provider(cpython_fixtures: Path, tmp_path: Path) -> None:
    source = str(cpython_fixtures / "release-metadata" / "3.13.5.json")
    provider = ReleaseMetadataFiles([source], client=quiet_client())
    (claim,) = provider(Version.parse("3.13.5"), "Python-3.13.5.tar.xz")
    assert claim.sha256 == TARBALL_SHA256 and source in claim.source
    with pytest.raises(MetadataError, match=r"states no sha256 for Python-3\.13\.6\.tar\.xz"):
        provider(Version.parse("3.13.6"), "Python-3.13.6.tar.xz")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        load_json(str(tmp_path / "bad.json"), client=quiet_client())
    with pytest.raises(MetadataError, match="cannot read: No such file"):
        load_json(str(tmp_path / "missing.json"), client=quiet_client())


def test_release_metadata_from_a_url(cpython_fixtures: Path) -> None:
    with FaultyServer(cpython_fixtures / "release-metadata") as server:
        provider = ReleaseMetadataFiles([server.url + "/3.13.12.json"], client=quiet_client())
        assert len(provider(Version.parse("3.13.12"), "Python-3.13.12.tar.xz")) == 2
        with pytest.raises(MetadataError, match="not found"):
            load_json(server.url + "/9.9.9.json", client=quiet_client())


@pytest.fixture
def api(cpython_fixtures: Path) -> Iterator[FaultyServer]:
    """python.org's download API (DRF shape), with 3.13.12's real release-file records."""
    with FaultyServer() as server:
        records = [
            {
                "name": entry["raw"]["url"].rsplit("/", 1)[1],
                "url": entry["raw"]["url"],
                "md5_sum": entry["raw"]["md5"],
                "sha256_sum": entry["raw"]["sha256"] or "",
                "filesize": entry["raw"]["filesize"],
                "release": f"{server.url}/api/v2/downloads/release/1001/",
            }
            for entry in tracker(cpython_fixtures, "3.13.12")
        ]
        release = [{"name": "Python 3.13.12", "resource_uri": f"{server.url}/api/v2/downloads/release/1001/"}]
        server.add("/api/v2/downloads/release/", json.dumps(release).encode())
        server.add("/api/v2/downloads/release_file/", json.dumps(records).encode())
        yield server


def test_python_org_api_claim(api: FaultyServer) -> None:
    provider = PythonOrgReleaseAPI(client=quiet_client(), api=api.url + "/api/v2/downloads/")
    (claim,) = provider(Version.parse("3.13.12"), "Python-3.13.12.tar.xz")
    assert claim.sha256 == V31312_XZ and claim.source.startswith("python.org release API sha256_sum (")
    assert provider.notes == []
    names = [request.path for request in api.requests]
    assert names == ["/api/v2/downloads/release/", "/api/v2/downloads/release_file/"]


def test_python_org_api_unknown_release_is_a_note(api: FaultyServer) -> None:
    provider = PythonOrgReleaseAPI(client=quiet_client(), api=api.url + "/api/v2/downloads")
    assert provider(Version.parse("3.13.13"), "Python-3.13.13.tar.xz") == []
    assert provider.notes == ["python.org release API knows no release named 'Python 3.13.13'"]


def test_python_org_api_unreachable_is_a_note() -> None:
    with FaultyServer() as gone:
        url = gone.url
    provider = PythonOrgReleaseAPI(client=quiet_client(), api=url + "/api/v2/downloads")
    assert provider(Version.parse("3.13.12"), "Python-3.13.12.tar.xz") == []
    assert provider.notes[0].startswith("python.org release API not consulted: ")
    assert "connection refused" in provider.notes[0]


def test_python_org_api_server_error_is_a_note(api: FaultyServer) -> None:
    api.always("/api/v2/downloads/release_file/", Fault(status=503))
    provider = PythonOrgReleaseAPI(client=quiet_client(), api=api.url + "/api/v2/downloads")
    assert provider(Version.parse("3.13.12"), "Python-3.13.12.tar.xz") == []
    assert "HTTP 503" in provider.notes[0]
