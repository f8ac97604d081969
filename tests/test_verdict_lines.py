"""``rebuild`` and ``check`` reports state what they checked and end with exactly one verdict line.

Real builds of the tiny project (the mechanism is the same as CPython's), a real source verdict of the
3.13.5 release from the fixtures (real gpg, real Sigstore), and real comparisons.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_rebuild import NEEDS_BWRAP, Build, build, tiny, tiny_recipe  # noqa: F401 - build, tiny: fixtures

from verify.chain import CheckOutcome, PeerOutcome, RebuildOutcome
from verify.compare import compare_paths
from verify.compare.twice import compare_builds
from verify.rebuild.cache import RebuildCache
from verify.report.check import check_text, check_to_json
from verify.report.rebuild import rebuild_closing_line, reproducibility_text
from verify.result.publish import publish
from verify.source.assembly import SourceOptions, verify_release_source
from verify.source.models import FetchedFile
from verify.source.recipes import load_recipe
from verify.source.releases import Version

pytestmark = NEEDS_BWRAP
SHA256_3135 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"


def test_rebuild_and_check_end_with_one_verdict_line_stating_what_was_compared(
    tiny: FetchedFile,  # noqa: F811 - the fixture imported above
    build: Build,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    cpython_fixtures: Path,
) -> None:
    cache = RebuildCache(tmp_path / "cache")
    spec = tiny_recipe().build
    assert spec is not None
    baseline = build(tiny, cache)
    once = publish(baseline.result, baseline.record, tmp_path / "once")
    entries = len(once.read_manifest().entries)
    digest = baseline.record.manifest_sha256
    assert rebuild_closing_line(baseline.record, entries) == (
        f"REBUILT: CPython 3.13.0 (profile default): manifest sha256 {digest}, {entries} entries; reproducibility not "
        "checked (--twice)"
    )

    by_path = frozenset({"build_path"})
    explained = compare_builds(baseline, build(tiny, cache, variations=by_path), by_path, spec, "default")
    record = baseline.record.model_copy(update={"reproducibility": explained.check})
    assert rebuild_closing_line(record, entries) == (
        f"EXPLAINED: CPython 3.13.0 (profile default): 1 of {entries} entries differ, every one as the varied "
        f"build_path is documented to cause (manifest sha256 {digest}, {entries} entries)"
    )
    both = frozenset({"build_path", "umask"})
    unexplained = compare_builds(baseline, build(tiny, cache, variations=both), both, spec, "default")
    failed = baseline.record.model_copy(update={"reproducibility": unexplained.check})
    assert rebuild_closing_line(failed, entries).startswith(
        f"NOT REPRODUCIBLE: CPython 3.13.0 (profile default): 9 of {entries} entries differ, 9 unexplained (varied: "
        "build_path, umask;"
    )
    assert "  … and" not in "\n".join(reproducibility_text(unexplained.check)), "9 fit in the lists: none cut"

    verdict = verify_release_source(
        Version.parse("3.13.5"),
        SourceOptions(from_dirs=(cpython_fixtures,), offline=True, cache_dir=tmp_path / "source-cache"),
        recipe=load_recipe("3.13"),
    )
    result = publish(baseline.result, record, tmp_path / "result")
    same = PeerOutcome(result.path, compare_paths(result.path, result.path), tmp_path / "same.json")
    outcome = CheckOutcome(RebuildOutcome(verdict, baseline, result, record), (same,))
    text = check_text(outcome).splitlines()
    assert text[-1] == (
        f"CHECK PASSED: source Python-3.13.5.tar.xz sha256 {SHA256_3135} verified (2 of 2 signature(s) verified); "
        f"2 builds differ in 1 of {entries} entries, all explained; 1 of 1 peer(s) identical"
    )
    assert sum(line.startswith("CHECK ") for line in text) == 1
    assert f"({entries} entries)" in text[text.index(next(t for t in text if t.startswith("  manifest")))]
    document = check_to_json(outcome)
    assert document["verdict"] == text[-1] and document["rebuild"]["entries"] == entries
    assert document["source"]["tarball"] == {
        "name": "Python-3.13.5.tar.xz",
        "sha256": SHA256_3135,
        "size": (cpython_fixtures / "Python-3.13.5.tar.xz").stat().st_size,
    }
    assert {s["kind"]: s["status"] for s in document["source"]["signatures"]} == {
        "openpgp": "verified",
        "sigstore": "verified",
    }
    assert document["peers"][0]["coverage"] == {
        "ours": entries,
        "theirs": entries,
        "in_both": entries,
        "same_in_both": entries,
    }
    json.dumps(document)  # check.json is JSON

    varied = publish(
        (unexplained_result := build(tiny, cache, variations=both)).result,
        unexplained_result.record,
        tmp_path / "varied",
    )
    differs = PeerOutcome(varied.path, compare_paths(result.path, varied.path), tmp_path / "differs.json")
    failing = check_text(CheckOutcome(RebuildOutcome(verdict, baseline, result, record), (same, differs)))
    assert failing.splitlines()[-1].startswith("CHECK FAILED: ") and failing.splitlines()[-1].endswith(
        "1 of 2 peer(s) identical"
    )
