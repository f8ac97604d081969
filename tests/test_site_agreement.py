"""Agreement between rebuilders on the status site, empty and rejected merges, and signed names.

Every attestation here is made by ``attest`` with a real offline key (openssl) over a real rebuild
result; the hostile ones are real attestations whose Statement was edited and signed again with the
same trusted key, as a producer that lies (or a broken one) would sign it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from test_attest_support import TARBALL, make_result, openssl_keypair

from verify.attest import load_private_key, sign_offline

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def rebuilders(tmp_path_factory: pytest.TempPathFactory, cpython_fixtures: Path) -> dict[str, Path]:
    """Three independent rebuilders of 3.13.5 ``default``, each with its own key: alice and bob built
    one install tree (on different runners), carol another (one file differs). Each publishes
    ``NAME.intoto.json`` (and the provenance beside it) and ``NAME.manifest.json`` in ``incoming``."""
    base = tmp_path_factory.mktemp("rebuilders")
    incoming = base / "incoming"
    incoming.mkdir()
    paths: dict[str, Path] = {"incoming": incoming, "base": base}
    for name, variant, runner in (("alice", "", "bwrap"), ("bob", "", "podman"), ("carol", " (patched)", "bwrap")):
        result = make_result(base / name, cpython_fixtures / TARBALL, variant=variant, runner=runner)
        private, public = openssl_keypair(base, name)
        out = incoming / f"{name}.intoto.json"
        completed = run_cli("attest", result, "--signing-key", private, "--rebuilder-id", name, "--out", out)
        assert completed.returncode == 0, completed.stderr
        shutil.copyfile(result / "manifest.json", incoming / f"{name}.manifest.json")
        paths[name], paths[f"{name}.pem"], paths[f"{name}.pub"], paths[f"{name}.result"] = out, private, public, result
    return paths


def _keys(paths: dict[str, Path], *names: str) -> list[object]:
    return [argument for name in names for argument in ("--public-key", paths[f"{name}.pub"])]


def _tree(result: Path) -> str:
    from verify.attest.inputs import load_manifest, tree_digest

    return tree_digest(load_manifest(result / "manifest.json"))


def _row_of(status: dict[str, Any], rebuilder: str) -> dict[str, Any]:
    return next(row for row in status["rows"] if row["rebuilder"] == rebuilder)


def _html_row(page: str, attestation: str) -> str:
    """The index's <tr> of the result whose attestation link is ``attestation``."""
    for row in page.split('<tr class="row"')[1:]:
        row = row.split("</tr>", 1)[0]
        if f'href="{attestation}"' in row:
            return row
    raise AssertionError(f"no row links {attestation}")


# -- item 2: the site shows the k-of-n verdict peers computes ---------------------------------------------


def test_disagreeing_rebuilders_are_red_on_the_site_with_both_digests(
    rebuilders: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 18's scenario: two rebuilders report one install tree, the third another. Today all three
    rows were green "reproducible" and nothing said they disagree."""
    site = tmp_path / "site"
    merged = run_cli(
        "merge", rebuilders["incoming"], *_keys(rebuilders, "alice", "bob", "carol"), "--threshold", "2", "--out", site
    )
    assert merged.returncode == 1, merged.stdout + merged.stderr  # rebuilders disagree: a red finding
    assert "3.13.5 default: MET: 2 of 3 independent rebuilders agree" in merged.stdout
    assert "1 DISAGREE" in merged.stdout and "Traceback" not in merged.stderr

    majority, minority = _tree(rebuilders["alice.result"]), _tree(rebuilders["carol.result"])
    assert majority != minority == _tree(rebuilders["carol.result"])
    status = json.loads((site / "status.json").read_text())
    [verdict] = status["agreement"]
    assert (verdict["version"], verdict["profile"], verdict["state"]) == ("3.13.5", "default", "disagree")
    assert verdict["met"] is True and verdict["disagreement"] is True
    assert verdict["checked"] == {
        "attestations": 3,
        "rejected": 0,
        "rebuilders": 3,
        "agreeing": 2,
        "trees": sorted([majority, minority]),
    }
    assert verdict["reference_tree_sha256"] == majority
    carol = _row_of(status, "carol")
    [dissent] = verdict["dissenting"]
    assert (dissent["origin"], dissent["tree_sha256"]) == (carol["attestation"], minority)
    assert dissent["files"] == [{"path": "opt/python/lib/python3.13/LICENSE.txt", "changes": ["content"]}]
    assert dissent["comparison"] == f"{verdict['page']}#dissent-1"

    # The very verdict `peers` prints over the same attestations: the same code, not a copy.
    peers = run_cli(
        "peers",
        "3.13.5",
        "--dir",
        rebuilders["incoming"],
        *_keys(rebuilders, "alice", "bob", "carol"),
        "--threshold",
        "2",
        "--json",
    )
    assert peers.returncode == 0, peers.stderr
    by_peers = json.loads(peers.stdout)
    for key in ("summary", "state", "met", "independent", "reference_tree_sha256", "checked", "threshold"):
        assert verdict[key] == by_peers[key], key
    assert [d["tree_sha256"] for d in by_peers["dissenting"]] == [minority]

    page = (site / "index.html").read_text()
    row = _html_row(page, carol["attestation"])
    assert 'class="agreement a-disagree"' in row and 'data-role="disagrees"' in row
    assert f"<code>{minority}</code>" in row and f"<code>{majority}</code>" in row  # both digests
    assert f'href="{dissent["comparison"]}"' in row
    for name in ("alice", "bob"):
        assert 'data-role="agrees"' in _html_row(page, _row_of(status, name)["attestation"])
    table = page.split('<table id="agreement">', 1)[1].split("</table>", 1)[0]
    assert 'data-state="disagree"' in table and "a-disagree" in table and "REBUILDERS DISAGREE" in table
    assert page.index('id="agreement"') < page.index('id="status"')  # the first thing on the page

    comparison = (site / verdict["page"]).read_text()
    section = comparison.split('id="dissent-1"', 1)[1].split("</section>", 1)[0]
    assert f"<code>{minority}</code>" in section and f"<code>{majority}</code>" in section
    assert "opt/python/lib/python3.13/LICENSE.txt" in section and "1 path(s) differ" in section
    assert f'href="../{carol["attestation"]}"' in section and (site / carol["attestation"]).is_file()


def test_peers_says_what_it_checked_in_text(rebuilders: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.intoto.json"
    junk.write_text("garbage\n")
    completed = run_cli(
        "peers",
        "3.13.5",
        "--dir",
        rebuilders["incoming"],
        "--attestation",
        junk,
        *_keys(rebuilders, "alice", "bob", "carol"),
        "--threshold",
        "2",
    )
    assert completed.returncode == 0, completed.stderr
    majority, minority = _tree(rebuilders["alice.result"]), _tree(rebuilders["carol.result"])
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("MET: 2 of 3 independent rebuilders agree") and lines[0].endswith("; 1 DISAGREE")
    assert lines[1] == (
        f"checked: 4 attestation(s) for CPython 3.13.5 profile default, 1 rejected; "
        f"3 independent rebuilder(s) counted, 2 on the reference tree {majority}"
    )
    assert sum("agrees:    key:" in line and f"(tree {majority}, " in line for line in lines) == 2
    assert any(
        line.startswith("  DISAGREES: key:") and f"(tree {minority}, reference tree {majority}, " in line
        for line in lines
    )
    assert any(line.startswith(f"  rejected:  {junk}: ") for line in lines)


def test_agreeing_rebuilders_meet_the_threshold_and_say_what_was_checked(
    rebuilders: dict[str, Path], tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for name in ("alice", "bob"):
        for suffix in (".intoto.json", ".manifest.json"):
            shutil.copyfile(rebuilders["incoming"] / f"{name}{suffix}", incoming / f"{name}{suffix}")
    site = tmp_path / "site"
    merged = run_cli("merge", incoming, *_keys(rebuilders, "alice", "bob"), "--threshold", "2", "--out", site)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    [verdict] = json.loads((site / "status.json").read_text())["agreement"]
    assert verdict["state"] == "met" and verdict["dissenting"] == [] and verdict["independent"] == 2
    page = (site / "index.html").read_text()
    assert 'data-state="met"' in page and "2 of 2 rebuilders agree (threshold 2 met)" in page
    assert "checked: 2 attestation(s) for CPython 3.13.5 profile default, 0 rejected; 2 independent" in page

    # k = 3 cannot be met by two rebuilders: not met, exit 1, but no disagreement.
    again = run_cli("merge", incoming, *_keys(rebuilders, "alice", "bob"), "--threshold", "3", "--out", site)
    assert again.returncode == 1
    [verdict] = json.loads((site / "status.json").read_text())["agreement"]
    assert verdict["state"] == "not-met" and "threshold 3 cannot be met" in verdict["summary"]


def test_a_dissenter_without_a_published_manifest_is_red_with_files_unknown(
    rebuilders: dict[str, Path], tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    shutil.copytree(rebuilders["incoming"], incoming)
    (incoming / "carol.manifest.json").unlink()
    site = tmp_path / "site"
    merged = run_cli("merge", incoming, *_keys(rebuilders, "alice", "bob", "carol"), "--threshold", "2", "--out", site)
    assert merged.returncode == 1
    status = json.loads((site / "status.json").read_text())
    [dissent] = status["agreement"][0]["dissenting"]
    assert dissent["files"] is None and dissent["comparison"] is None
    assert "no manifest was published with it" in dissent["note"]
    row = _html_row((site / "index.html").read_text(), _row_of(status, "carol")["attestation"])
    assert "a-disagree" in row and "files unknown" in row and "#dissent-" not in row


def test_a_tie_is_disagreement_not_agreement(rebuilders: dict[str, Path], tmp_path: Path) -> None:
    site = tmp_path / "site"
    merged = run_cli(
        "merge", rebuilders["alice"], rebuilders["carol"], *_keys(rebuilders, "alice", "carol"), "--out", site
    )
    assert merged.returncode == 1
    [verdict] = json.loads((site / "status.json").read_text())["agreement"]
    assert verdict["state"] == "disagree" and verdict["reference_tree_sha256"] is None
    assert "no majority" in verdict["summary"]


# -- item 5: nothing is a silent empty success; every rejection is named ---------------------------------


def test_merge_with_no_attestation_is_exit_1_in_one_line(tmp_path: Path, rebuilders: dict[str, Path]) -> None:
    empty = tmp_path / "attestations"
    empty.mkdir()
    (empty / "alice.manifest.json").write_text("{}\n")  # a published file, but no attestation
    site = tmp_path / "site"
    merged = run_cli("merge", empty, *_keys(rebuilders, "alice"), "--out", site)
    assert merged.returncode == 1, merged.stdout
    assert len(merged.stderr.strip().splitlines()) == 1 and "no attestation to merge" in merged.stderr
    assert merged.stdout == "" and not site.exists()


def test_peers_over_a_directory_without_attestations_is_exit_1_in_one_line(
    rebuilders: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "alice.manifest.json").write_text("{}\n")
    completed = run_cli("peers", "3.13.5", "--dir", tmp_path, *_keys(rebuilders, "alice"))
    assert completed.returncode == 1 and completed.stdout == ""
    assert completed.stderr.strip().splitlines() == [
        f"cpython-verify: error: no attestation (*.intoto.json or *.sigstore.json verdict) in {tmp_path}: "
        "nothing to compare"
    ]


def test_every_rejected_attestation_is_named_with_its_reason(rebuilders: dict[str, Path], tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    shutil.copyfile(rebuilders["alice"], incoming / "alice.intoto.json")
    shutil.copyfile(rebuilders["bob"], incoming / "bob.intoto.json")  # bob's key is not trusted here
    (incoming / "junk.intoto.json").write_text("not json\n")
    plan = tmp_path / "plan.json"  # bob's file is named after a planned job: its row takes the job's release
    plan.write_text(
        json.dumps(
            {
                "include": [
                    {"version": "3.13.5", "profile": "default", "runner": "podman", "series": "3.13", "id": "bob"}
                ]
            }
        )
    )
    site = tmp_path / "site"
    merged = run_cli("merge", incoming, *_keys(rebuilders, "alice"), "--plan", plan, "--out", site)
    assert merged.returncode == 1
    stderr = merged.stderr.strip().splitlines()
    assert len(stderr) == 2, merged.stderr
    assert re.search(r"rejected \S*bob\.intoto\.json: .*no signature verifies", merged.stderr)
    assert re.search(r"rejected \S*junk\.intoto\.json: .*not valid JSON", merged.stderr)
    status = json.loads((site / "status.json").read_text())
    rejected = {row["origin"]: row["detail"] for row in status["rows"] if row["verdict"] == "rejected"}
    assert set(rejected) == {"bob.intoto.json", "junk.intoto.json"}
    rows = (site / "index.html").read_text().split("</table>")[-2].split('<tr class="row"')[1:]
    for origin, reason in rejected.items():
        [row] = [row for row in rows if 'data-verdict="rejected"' in row and origin in row]
        assert reason in row
    # The planned job's own agreement verdict counts the rejected attestation, and says why.
    verdict = next(v for v in status["agreement"] if v["version"] == "3.13.5")
    assert [r["origin"] for r in verdict["rejected"]] == ["bob.intoto.json"]


@pytest.mark.parametrize("planted", ["garbage", "carol's provenance"])
def test_a_verdict_whose_provenance_is_bad_is_rejected_by_merge_and_peers(
    planted: str, rebuilders: dict[str, Path], tmp_path: Path
) -> None:
    """merge and peers judge the provenance attest wrote beside each verdict, as verify-attestation does."""
    incoming = tmp_path / "incoming"
    shutil.copytree(rebuilders["incoming"], incoming)
    provenance = incoming / "bob.provenance.intoto.json"
    if planted == "garbage":
        provenance.write_text("garbage\n")
    else:
        shutil.copyfile(incoming / "carol.provenance.intoto.json", provenance)
    reason = "is not valid JSON" if planted == "garbage" else "the verdict says"
    keys = _keys(rebuilders, "alice", "bob", "carol")
    merged = run_cli("merge", incoming, *keys, "--out", tmp_path / "site")
    assert merged.returncode == 1
    assert re.search(
        rf"rejected \S*bob\.intoto\.json: .*the provenance beside it, \S*bob\.provenance\.intoto\.json: "
        rf".*{reason}",
        merged.stderr,
    ), merged.stderr
    peers = run_cli("peers", "3.13.5", "--dir", incoming, *keys, "--json")
    [rejected] = json.loads(peers.stdout)["rejected"]
    assert rejected["origin"].endswith("bob.intoto.json") and reason in rejected["reason"]


# -- item 7: signed text is trusted only as far as the schema ----------------------------------------------


def _statement(envelope: Path) -> dict[str, Any]:
    document = json.loads(envelope.read_text())
    statement: dict[str, Any] = json.loads(base64.b64decode(document["payload"]))
    return statement


def _resign(statement: dict[str, Any], key: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(sign_offline(json.dumps(statement).encode(), load_private_key(key)))
    return out


HOSTILE_VERDICTS = {
    "profile-path": (lambda p: p["recipe"].update(profile="x/../../../../tmp/pwned"), "recipe.profile"),
    "profile-newline": (lambda p: p["recipe"].update(profile="default\nfake row"), "recipe.profile"),
    "version-spelling": (lambda p: p.update(version="3.13.05"), "not a release version as written by this tool"),
    "version-series": (lambda p: p.update(version="3.12.5"), "not the series of version 3.12.5"),
    "runner": (lambda p: p["build"].update(runner="../bwrap"), "build.runner"),
    "environment": (lambda p: p["build"]["environment"].update(name="../../etc/x"), "build.environment.name"),
    "tarball": (lambda p: p["source"]["tarball"].update(name="../Python-3.13.5.tar.xz"), "source.tarball.name"),
    "difference-path": (
        lambda p: p["result"].update(
            reproducible=False,
            explained=False,
            differences=[{"path": "../../etc/passwd", "kind": "text", "change": "content", "explained": False}],
        ),
        "is not a path in the install tree",
    ),
    "green-with-differences": (
        lambda p: p["result"].update(
            differences=[
                {"path": "opt/python/bin/python3.13", "kind": "elf-executable", "change": "content", "explained": False}
            ]
        ),
        "reproducible is true with 1 difference(s)",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_VERDICTS))
def test_signed_names_that_break_the_rules_are_rejected_everywhere(
    case: str, rebuilders: dict[str, Path], tmp_path: Path
) -> None:
    edit, reason = HOSTILE_VERDICTS[case]
    statement = _statement(rebuilders["alice"])
    edit(statement["predicate"])
    hostile = _resign(statement, rebuilders["alice.pem"], tmp_path / "incoming" / "hostile.intoto.json")

    checked = run_cli("verify-attestation", hostile, *_keys(rebuilders, "alice"))
    assert checked.returncode == 1, checked.stdout
    assert reason in checked.stderr and len(checked.stderr.strip().splitlines()) == 1, checked.stderr

    peers = run_cli("peers", "3.13.5", "--attestation", hostile, *_keys(rebuilders, "alice"), "--json")
    assert peers.returncode == 1
    [rejected] = json.loads(peers.stdout)["rejected"]
    assert rejected["origin"] == str(hostile) and reason in rejected["reason"]

    site = tmp_path / "site"
    merged = run_cli("merge", hostile.parent, *_keys(rebuilders, "alice"), "--out", site)
    assert merged.returncode == 1
    assert f"rejected {hostile}: " in merged.stderr and reason in merged.stderr
    status = json.loads((site / "status.json").read_text())
    assert [row["verdict"] for row in status["rows"]] == ["rejected"]
    assert not list((site / "attestations").iterdir())
    assert not Path("/tmp/pwned").exists()


def test_a_provenance_with_a_hostile_profile_is_rejected(rebuilders: dict[str, Path], tmp_path: Path) -> None:
    provenance = rebuilders["alice"].with_name("alice.provenance.intoto.json")
    statement = _statement(provenance)
    statement["predicate"]["buildDefinition"]["externalParameters"]["profile"] = "x/../../../../tmp/pwned"
    hostile = _resign(statement, rebuilders["alice.pem"], tmp_path / "hostile.provenance.intoto.json")
    checked = run_cli("verify-attestation", hostile, *_keys(rebuilders, "alice"))
    assert checked.returncode == 1
    assert "externalParameters.profile" in checked.stderr and len(checked.stderr.strip().splitlines()) == 1


# The producers apply the same rules: a recipe, a rebuild.json and a plan that break them are refused.


@pytest.mark.parametrize("profile", ["x/../../../../tmp/pwned", "..", "Default", "a" * 65])
def test_a_recipe_profile_that_is_not_a_profile_name_is_refused(profile: str, tmp_path: Path) -> None:
    from verify.common.errors import RecipeError
    from verify.source.recipes import load_recipe, parse_recipe

    text = (
        load_recipe("3.13")
        .path.read_text()
        .replace(
            "[build.profiles.default]", f'[build.profiles."{profile}"]\nconfigure = []\n[build.profiles.default]', 1
        )
    )
    with pytest.raises(RecipeError, match="is not a profile name"):
        parse_recipe(
            text.replace('"keys/', f'"{load_recipe("3.13").path.parent}/keys/').encode(), tmp_path / "cpython-3.13.toml"
        )


@pytest.mark.parametrize(("field", "value"), [("profile", "x/../../../../tmp/pwned"), ("series", "3.013")])
def test_attest_refuses_a_rebuild_record_whose_names_break_the_rules(
    field: str, value: str, tmp_path: Path, cpython_fixtures: Path
) -> None:
    result = make_result(tmp_path / "result", cpython_fixtures / TARBALL)
    record = json.loads((result / "rebuild.json").read_text())
    record["inputs"]["recipe"][field] = value
    (result / "rebuild.json").write_text(json.dumps(record))
    private, _ = openssl_keypair(tmp_path, "key")
    completed = run_cli("attest", result, "--signing-key", private)
    assert completed.returncode == 2, completed.stdout
    assert f"inputs.recipe.{field}" in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    assert not (result / "attestation.intoto.json").exists()


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (
            {"version": "3.13.05", "series": "3.13", "profile": "default", "runner": "bwrap"},
            "not a release version as written",
        ),
        ({"version": "3.13.5", "series": "3.13", "profile": "../../x", "runner": "bwrap"}, "is not a profile name"),
        ({"version": "3.13.5", "series": "3.13", "profile": "default", "runner": "bw rap"}, "is not a runner name"),
    ],
)
def test_merge_refuses_a_plan_whose_names_break_the_rules(
    job: dict[str, str], message: str, rebuilders: dict[str, Path], tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"include": [{**job, "id": "job"}]}))
    merged = run_cli(
        "merge", rebuilders["alice"], *_keys(rebuilders, "alice"), "--plan", plan, "--out", tmp_path / "site"
    )
    assert merged.returncode == 2 and message in merged.stderr and len(merged.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "site").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/bootstrap-test installs it on Debian)")
@pytest.mark.parametrize("width", [1280, 390])
def test_the_agreement_shows_without_overflow_in_chromium(
    rebuilders: dict[str, Path], tmp_path: Path, width: int
) -> None:
    """The index (its agreement table and red Agreement cell, full digests in them) and the agreement page
    fit a desktop and a phone window, and the disagreement is red in the rendered page."""
    from test_status_page import _dump_dom, _png_colors

    site = tmp_path / "site"
    run_cli("merge", rebuilders["incoming"], *_keys(rebuilders, "alice", "bob", "carol"), "--out", site)
    [verdict] = json.loads((site / "status.json").read_text())["agreement"]
    for shown in (site / "index.html", site / verdict["page"]):
        probe = shown.with_name("probe.html")
        probe.write_text(
            f'<!DOCTYPE html><html><body style="margin:0"><iframe id="f" src="{shown.name}" '
            f'style="border:0;width:{width}px;height:2400px"></iframe><script>'
            "document.getElementById('f').addEventListener('load',()=>{const e=document.getElementById('f')"
            ".contentDocument.documentElement;document.body.setAttribute('data-widths',e.scrollWidth+'/'+e.clientWidth)})"
            "</script></body></html>"
        )
        dom = _dump_dom(probe, "--allow-file-access-from-files", "--hide-scrollbars", "--window-size=1400,900")
        scroll, client = map(int, dom.split('data-widths="', 1)[1].split('"', 1)[0].split("/"))
        assert client == width and scroll <= client, f"{shown.name} is {scroll} px wide in a {client} px window"
        shot = tmp_path / f"{shown.stem}-{width}.png"
        completed = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--allow-file-access-from-files",
                "--hide-scrollbars",
                f"--screenshot={shot}",
                f"--window-size={width},2400",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert (0xF9, 0xB4, 0xB4) in _png_colors(shot.read_bytes()), f"{shown.name}: no red (disagree) pixels"
        probe.unlink()
