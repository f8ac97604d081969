"""Every JSON output and on-disk format has a format id and a JSON Schema shipped in the package, and
real outputs of the CLI match them. (Every ``--json`` report any test produces through ``run_cli`` is
also checked, by ``tests/schema_support.py``.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from jsonschema import Draft202012Validator
from schema_support import assert_file_matches_schema, assert_matches_schema, schema_problems
from test_attest_support import TARBALL, make_result, openssl_keypair

from verify.report.schemas import generated_schemas
from verify.site.formats import SCHEMAS, load_schema

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "verify" / "schemas"


def test_every_format_has_a_valid_schema_that_names_it() -> None:
    assert {path.name for path in SCHEMA_DIR.glob("*.json")} == set(SCHEMAS.values())
    for format_id in SCHEMAS:
        schema = load_schema(format_id)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["additionalProperties"] is False, f"{format_id}: the top level is closed"
        if format_id.startswith("cpython-verify/"):
            assert schema["properties"]["format"]["const"] == format_id
            assert "format" in schema["required"]


def test_every_shipped_schema_is_generated_from_a_model() -> None:
    """No schema is written by hand: each format's model is its one definition, and the drift test below
    covers every file the package ships."""
    assert sorted(generated_schemas()) == sorted(SCHEMAS.values())


@pytest.mark.parametrize("name", sorted(generated_schemas()))
def test_committed_schemas_are_the_ones_generated_from_the_models(name: str) -> None:
    committed = json.loads((SCHEMA_DIR / name).read_text())
    assert committed == generated_schemas()[name], f"regenerate verify/schemas/{name} (python -m verify.report.schemas)"


def test_a_field_the_format_does_not_have_is_refused(cpython_fixtures: Path, tmp_path: Path) -> None:
    completed = run_cli("source", "3.13.5", "--from", cpython_fixtures, "--offline", "--json", cache=tmp_path / "c")
    document = json.loads(completed.stdout)
    assert_matches_schema(document, "cpython-verify/source-verdict/v1")
    assert schema_problems({**document, "surprise": 1})
    assert schema_problems({**document, "tarball": {**document["tarball"], "sha256": "not hex"}})
    del document["verdict"]
    assert schema_problems(document)


def test_real_attest_verify_peers_merge_outputs_and_result_files_match(cpython_fixtures: Path, tmp_path: Path) -> None:
    """One rebuild result (written through the record model and the manifest writer) taken through every
    attestation command with --json: each output, and the files on disk, match their schemas."""
    result = make_result(tmp_path / "result", cpython_fixtures / TARBALL)
    assert_file_matches_schema(result / "rebuild.json", "cpython-verify/rebuild/v2")
    assert_file_matches_schema(result / "manifest.json", "cpython-verify/manifest/v1")
    assert_file_matches_schema(result / "source-verdict.json", "cpython-verify/source-verdict/v1")
    private, public = openssl_keypair(tmp_path, "rebuilder")
    published = tmp_path / "published"
    published.mkdir()
    signed = published / "3.13.5.intoto.json"
    attested = run_cli("attest", result, "--signing-key", private, "--out", signed, "--json")
    assert attested.returncode == 0, attested.stderr
    assert_matches_schema(json.loads(attested.stdout), "cpython-verify/attest/v1")
    shutil.copyfile(result / "manifest.json", published / "3.13.5.manifest.json")
    verified = run_cli("verify-attestation", signed, "--public-key", public, "--result", result, "--json")
    assert verified.returncode == 0, verified.stderr
    assert_matches_schema(json.loads(verified.stdout), "cpython-verify/verify-attestation/v1")
    peers = run_cli("peers", "3.13.5", "--dir", published, "--public-key", public, "--threshold", "1", "--json")
    assert peers.returncode == 0, peers.stderr
    assert_matches_schema(json.loads(peers.stdout), "cpython-verify/peers/v1")
    site = tmp_path / "site"
    merged = run_cli("merge", published, "--public-key", public, "--out", site, "--json")
    assert merged.returncode == 0, merged.stderr
    assert_matches_schema(json.loads(merged.stdout), "cpython-verify/merge/v1")
    assert_file_matches_schema(site / "status.json", "cpython-verify/site/v1")


def test_releases_plan_and_cache_check_outputs_match(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text(
        json.dumps(
            [
                {
                    "name": "Python 3.13.5",
                    "version": 3,
                    "is_published": True,
                    "pre_release": False,
                    "release_date": "2025-06-11T21:35:00Z",
                    "resource_uri": "https://example.org/3.13.5/",
                },
                {
                    "name": "Python 3.14.0b3",
                    "version": 3,
                    "is_published": True,
                    "pre_release": True,
                    "release_date": "2025-06-17T10:00:00Z",
                    "resource_uri": "https://example.org/3.14.0b3/",
                },
            ]
        )
    )
    listed = run_cli("releases", "--url", feed, "--prereleases", "--json")
    assert listed.returncode == 0, listed.stderr
    releases = json.loads(listed.stdout)
    assert_matches_schema(releases, "cpython-verify/releases/v1")
    assert [release["version"] for release in releases["releases"]][-1] == "3.13.5"
    listing = tmp_path / "releases.json"
    listing.write_text(listed.stdout)
    planned = run_cli("plan", "--releases", listing, "--runner", "bwrap", "--runner", "podman", "--json")
    assert planned.returncode == 0, planned.stderr
    assert_matches_schema(json.loads(planned.stdout), "cpython-verify/plan/v1")
    checked = run_cli("cache", "check", "--cache", tmp_path / "cache", "--json")
    assert checked.returncode == 0, checked.stderr
    assert_matches_schema(json.loads(checked.stdout), "cpython-verify/cache-check/v1")


def test_the_generated_schemas_and_the_models_know_the_tool_s_vocabulary(tmp_path: Path) -> None:
    """A report read back through its model (or checked against its schema) may only use the words the tool
    has: a comparator category, a change, a manifest kind that no comparator gives is refused."""
    from pydantic import ValidationError

    from verify.report.compare_document import ComparisonDocument

    a, b = tmp_path / "a", tmp_path / "b"
    for side, text in ((a, "one\n"), (b, "two\n")):
        side.mkdir()
        (side / "file.txt").write_text(text)
    completed = run_cli("compare", a, b, "--json")
    assert completed.returncode == 1, completed.stderr
    document = json.loads(completed.stdout)
    assert ComparisonDocument.model_validate(document).to_json() == document
    difference = document["differences"][0]
    for field, value in (("category", "harmless-trust-me"), ("comparator", 7)):
        changed = {
            **document,
            "differences": [{**difference, "comparison": {**difference["comparison"], field: value}}],
        }
        assert schema_problems(changed), field
        with pytest.raises(ValidationError):
            ComparisonDocument.model_validate(changed)
    for field, value in (("kind", "elf-executable-ish"), ("changes", ["content", "vibes"])):
        changed = {**document, "differences": [{**difference, field: value}]}
        assert schema_problems(changed), field
        with pytest.raises(ValidationError):
            ComparisonDocument.model_validate(changed)
