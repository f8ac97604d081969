"""Two machines in CI (issue 20): the plan gives a profile two independent rebuild jobs, each signed verdict
names its job and machine, and merge, the status page and ``peers`` show whether the runs agree, apart
from the k of n, which counts signers.

Every attestation is made by ``attest`` with a real offline key (openssl) over a real result directory; the
nightly steps are scripts/nightly-step's, run as the workflow runs them.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT, cli_environment, run_cli
from schema_support import assert_matches_schema
from test_attest_support import TARBALL, make_result, openssl_keypair

from verify.attest.inputs import load_manifest, tree_digest
from verify.result import ResultDir
from verify.result.record import RebuildRecord

STEP = PROJECT_ROOT / "scripts" / "nightly-step"
JOBS = ("3.13.5-default-bwrap-a", "3.13.5-default-bwrap-b")


def _plan(*jobs: str) -> dict[str, Any]:
    return {
        "format": "cpython-verify/plan/v1",
        "include": [
            {"version": "3.13.5", "profile": "default", "runner": "bwrap", "series": "3.13", "id": job,
             "rebuilder": job[-1]}
            for job in jobs
        ],
    }  # fmt: skip


def _separate_run(result: Path, seconds: float) -> None:
    """Make ``result`` another run's record: a separate rebuild writes its own rebuild.json (its own phase
    times), so its attestation is a second rebuild, not the same one attested twice."""
    directory = ResultDir(result)
    data = json.loads(directory.record_path.read_text())
    data["phase_seconds"] = {"configure": seconds}
    directory.record_path.unlink()
    directory.write_record(RebuildRecord.model_validate_json(json.dumps(data)))


def _tree(result: Path) -> str:
    return tree_digest(load_manifest(result / "manifest.json"))


def _step(work: Path, *args: object) -> subprocess.CompletedProcess[str]:
    env = cli_environment(extra={"CPYTHON_VERIFY": f"{sys.executable} -m verify"})
    return subprocess.run([STEP, *map(str, args)], capture_output=True, text=True, cwd=work, env=env, timeout=300,
                          check=False)  # fmt: skip


@pytest.fixture
def two_jobs(tmp_path: Path, cpython_fixtures: Path) -> Path:
    """A work directory as two rebuild jobs of one release x profile x runner leave it: result/JOB-a and
    result/JOB-b (separate rebuilds of the same tree), the plan naming both, and one offline key: the CI
    signs every job with the workflow's one identity."""
    work = tmp_path / "work"
    for seconds, job in enumerate(JOBS, start=1):
        make_result(work / "result" / job, cpython_fixtures / TARBALL)
        _separate_run(work / "result" / job, float(seconds))
    (work / "plan.json").write_text(json.dumps(_plan(*JOBS)))
    openssl_keypair(work, "rebuilder")
    return work


def _attest(work: Path, job: str, machine: str) -> None:
    (work / "publish").mkdir(exist_ok=True)
    out = work / "publish" / f"{job}.intoto.json"
    completed = run_cli("attest", work / "result" / job, "--signing-key", work / "rebuilder.pem",
                        "--rebuilder-id", "nightly", "--job", job, "--machine", machine, "--out", out)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    shutil.copyfile(work / "result" / job / "manifest.json", work / "publish" / f"{job}.manifest.json")


# -- plan ---------------------------------------------------------------------------------------------------


def test_plan_gives_a_profile_independent_rebuild_jobs_with_distinct_ids() -> None:
    planned = run_cli("plan", "3.13.5", "--profile", "default", "--profile", "pgo-lto-deterministic",
                      "--independent-rebuilds", "pgo-lto-deterministic=2", "--json")  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert_matches_schema(plan, "cpython-verify/plan/v1")
    jobs = [(job["id"], job["profile"], job["rebuilder"]) for job in plan["include"]]
    assert jobs == [
        ("3.13.5-default-bwrap", "default", "a"),  # planned once: the id it always had
        ("3.13.5-pgo-lto-deterministic-bwrap-a", "pgo-lto-deterministic", "a"),
        ("3.13.5-pgo-lto-deterministic-bwrap-b", "pgo-lto-deterministic", "b"),
    ]


@pytest.mark.parametrize("value", ["pgo-lto-deterministic", "pgo-lto-deterministic=0", "=2", "default=x", "a=11"])
def test_a_malformed_independent_rebuilds_is_one_line_and_exit_2(value: str) -> None:
    planned = run_cli("plan", "3.13.5", "--independent-rebuilds", value, "--json")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "--independent-rebuilds" in planned.stderr and "is not PROFILE=N with N from 1 to 10" in planned.stderr
    assert "Traceback" not in planned.stderr
    assert not planned.stdout


# -- the signed run identity ---------------------------------------------------------------------------------


def test_the_signed_verdict_names_the_job_and_the_machine(two_jobs: Path) -> None:
    _attest(two_jobs, JOBS[0], "runner-vm-1")
    statement = json.loads(base64_payload(two_jobs / "publish" / f"{JOBS[0]}.intoto.json"))
    rebuilder = statement["predicate"]["rebuilder"]
    assert (rebuilder["job"], rebuilder["machine"]) == (JOBS[0], "runner-vm-1")
    provenance = json.loads(base64_payload(two_jobs / "publish" / f"{JOBS[0]}.provenance.intoto.json"))
    assert provenance["predicate"]["runDetails"]["metadata"]["invocationId"] == JOBS[0]

    # The nightly step signs its job id and this host's name, as a runner job would sign its machine's.
    attested = _step(two_jobs, "attest", JOBS[1], "--signing-key", two_jobs / "rebuilder.pem")
    assert attested.returncode == 0, attested.stderr
    statement = json.loads(base64_payload(two_jobs / "publish" / f"{JOBS[1]}.intoto.json"))
    rebuilder = statement["predicate"]["rebuilder"]
    assert (rebuilder["job"], rebuilder["machine"]) == (JOBS[1], socket.gethostname())


def base64_payload(path: Path) -> bytes:
    import base64

    return base64.b64decode(json.loads(path.read_text())["payload"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--machine", "m1"], "--machine needs --job"),
        (["--job", ""], "--job and --machine must not be empty"),
        (["--job", "j", "--machine", " "], "--job and --machine must not be empty"),
    ],
)
def test_attest_refuses_a_machine_without_a_job_or_empty_names(two_jobs: Path, args: list[str], message: str) -> None:
    completed = run_cli("attest", two_jobs / "result" / JOBS[0], "--signing-key", two_jobs / "rebuilder.pem",
                        *args, "--out", two_jobs / "x.intoto.json")  # fmt: skip
    assert completed.returncode == 2 and message in completed.stderr, completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (two_jobs / "x.intoto.json").exists()


# -- agreement: two runs of one signer -------------------------------------------------------------------------


def test_two_agreeing_jobs_of_one_signer_are_two_machines_not_two_rebuilders(two_jobs: Path) -> None:
    for job, machine in zip(JOBS, ("runner-vm-1", "runner-vm-2"), strict=True):
        _attest(two_jobs, job, machine)
    site = two_jobs / "site"
    merged = run_cli("merge", two_jobs / "publish", "--plan", two_jobs / "plan.json", "--public-key",
                     two_jobs / "rebuilder.pub", "--out", site, "--json")  # fmt: skip
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert_matches_schema(json.loads(merged.stdout), "cpython-verify/merge/v1")
    tree = _tree(two_jobs / "result" / JOBS[0])
    status = json.loads((site / "status.json").read_text())
    [verdict] = status["agreement"]
    # k of n counts signers: one CI identity is one rebuilder, however many jobs it ran.
    assert (verdict["independent"], len(verdict["agreeing"]), verdict["state"]) == (1, 1, "met")
    [runs] = verdict["runs"]
    assert runs["agree"] is True and runs["signers"] == 1 and runs["trees"] == [tree]
    assert runs["machines"] == ["runner-vm-1", "runner-vm-2"]
    assert sorted((run["job"], run["machine"]) for run in runs["runs"]) == [
        (JOBS[0], "runner-vm-1"), (JOBS[1], "runner-vm-2")]  # fmt: skip
    assert runs["summary"].startswith("2 runs on 2 machines agree (1 signer: key:")
    assert "1 of 1 independent rebuilders agree" in verdict["summary"]
    assert sorted(row["job"] for row in status["rows"]) == list(JOBS)
    assert not [row for row in status["rows"] if row["verdict"] == "missing"]

    page = (site / "index.html").read_text()
    table = page.split('<table id="agreement">', 1)[1].split("</table>", 1)[0]
    assert "one rebuilder (one signer), 2 runs on 2 machines agree" in table
    assert 'data-runs-agree="true"' in table and "job 3.13.5-default-bwrap-b on machine runner-vm-2" in table
    results = page.split('id="status"', 1)[1]
    assert "job 3.13.5-default-bwrap-a on machine runner-vm-1" in results
    assert results.count("the only rebuilder (one signer); 2 runs on 2 machines agree") == 2
    row_page = (site / status["rows"][0]["page"]).read_text()
    assert "<dt>Machine</dt><dd>runner-vm-1</dd>" in row_page and "<dt>Machine</dt><dd>runner-vm-2</dd>" in row_page
    agreement_page = (site / verdict["page"]).read_text()
    assert '<ul id="runs">' in agreement_page and f"<code>{tree}</code>" in agreement_page

    # Two jobs of one signer never make two independent rebuilders: a threshold of 2 is not met.
    strict = run_cli("merge", two_jobs / "publish", "--plan", two_jobs / "plan.json", "--public-key",
                     two_jobs / "rebuilder.pub", "--out", two_jobs / "site2", "--threshold", "2")  # fmt: skip
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "NOT MET: threshold 2 cannot be met, only 1 independent rebuilder(s) counted" in strict.stdout

    text = run_cli("peers", "3.13.5", "--dir", two_jobs / "publish", "--public-key", two_jobs / "rebuilder.pub",
                   "--threshold", "1")  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "  runs:      2 runs on 2 machines agree (1 signer: key:" in text.stdout
    assert f"job {JOBS[1]}, machine runner-vm-2: tree {tree}" in text.stdout

    # peers says the same, from the same code.
    peers = run_cli("peers", "3.13.5", "--dir", two_jobs / "publish", "--public-key", two_jobs / "rebuilder.pub",
                    "--threshold", "1", "--json")  # fmt: skip
    assert peers.returncode == 0, peers.stderr
    by_peers = json.loads(peers.stdout)
    assert_matches_schema(by_peers, "cpython-verify/peers/v1")
    assert by_peers["summary"] == verdict["summary"]
    for runs in (by_peers["runs"], verdict["runs"]):  # the origins are files here, site links there
        for run in runs[0]["runs"]:
            del run["origin"]
    assert by_peers["runs"] == verdict["runs"]


def test_one_result_attested_twice_under_two_job_names_is_one_run(two_jobs: Path) -> None:
    """Two runs rest on two rebuild records: the same rebuild.json signed under two job names is one run."""
    _attest(two_jobs, JOBS[0], "runner-vm-1")
    shutil.rmtree(two_jobs / "result" / JOBS[1])
    shutil.copytree(two_jobs / "result" / JOBS[0], two_jobs / "result" / JOBS[1], symlinks=True)
    _attest(two_jobs, JOBS[1], "runner-vm-2")
    peers = run_cli("peers", "3.13.5", "--dir", two_jobs / "publish", "--public-key", two_jobs / "rebuilder.pub",
                    "--threshold", "1", "--json")  # fmt: skip
    assert peers.returncode == 0, peers.stderr
    assert json.loads(peers.stdout)["runs"] == []


def test_disagreeing_jobs_are_red_with_both_digests_and_fail_the_gate(two_jobs: Path, cpython_fixtures: Path) -> None:
    # Job b's machine produced another tree (one installed file differs): planted before attest.
    shutil.rmtree(two_jobs / "result" / JOBS[1])
    make_result(two_jobs / "result" / JOBS[1], cpython_fixtures / TARBALL, variant=" (patched)")
    for job in JOBS:
        attested = _step(two_jobs, "attest", job, "--signing-key", two_jobs / "rebuilder.pem")
        assert attested.returncode == 0, attested.stderr
    shutil.copytree(two_jobs / "publish", two_jobs / "attestations")
    merged = _step(two_jobs, "merge", "attestations", "--public-key", two_jobs / "rebuilder.pub")
    # The merge step publishes the page (it shows the disagreement); the gate fails the run.
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "2 runs on 1 machine DISAGREE (1 signer" in merged.stdout
    ours, theirs = _tree(two_jobs / "result" / JOBS[0]), _tree(two_jobs / "result" / JOBS[1])
    assert ours != theirs

    site = two_jobs / "site"
    status = json.loads((site / "status.json").read_text())
    [verdict] = status["agreement"]
    assert verdict["state"] == "disagree" and verdict["disagreement"] is True
    [runs] = verdict["runs"]
    assert runs["agree"] is False and runs["trees"] == sorted([ours, theirs])
    page = (site / "index.html").read_text()
    table = page.split('<table id="agreement">', 1)[1].split("</table>", 1)[0]
    assert 'data-state="disagree"' in table and "RUNS OF ONE REBUILDER DISAGREE" in table
    assert 'class="a-disagree" data-runs-agree="false"' in table
    assert f"<code>{ours}</code>" in table and f"<code>{theirs}</code>" in table
    rows = page.split('id="status"', 1)[1]
    assert rows.count('data-role="disagrees"') == 2 and f"<code>{ours}</code>" in rows and theirs in rows

    gate = _step(two_jobs, "gate")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    [line] = gate.stderr.strip().splitlines()
    assert "3.13.5 default disagree" in line and ours in line and theirs in line


def test_agreeing_jobs_pass_the_gate_and_a_missing_job_is_shown(two_jobs: Path) -> None:
    for job in JOBS:
        assert _step(two_jobs, "attest", job, "--signing-key", two_jobs / "rebuilder.pem").returncode == 0
    shutil.copytree(two_jobs / "publish", two_jobs / "attestations")
    merged = _step(two_jobs, "merge", "attestations", "--public-key", two_jobs / "rebuilder.pub")
    assert merged.returncode == 0, merged.stderr
    assert "2 runs on 1 machine agree (1 signer" in merged.stdout  # both jobs ran here: one machine, honestly
    assert _step(two_jobs, "gate").returncode == 0

    # Job b produced nothing: its row says so (not hidden behind job a's row of the same runner).
    for name in (f"{JOBS[1]}.intoto.json", f"{JOBS[1]}.provenance.intoto.json", f"{JOBS[1]}.manifest.json"):
        (two_jobs / "attestations" / name).unlink()
    shutil.rmtree(two_jobs / "site")
    merged = _step(two_jobs, "merge", "attestations", "--public-key", two_jobs / "rebuilder.pub")
    assert merged.returncode == 0, merged.stderr
    rows = json.loads((two_jobs / "site" / "status.json").read_text())["rows"]
    assert sorted((row["job"], row["verdict"]) for row in rows) == [(JOBS[0], "reproducible"), (JOBS[1], "missing")]


def test_the_nightly_plans_pgo_lto_deterministic_on_two_runner_jobs(tmp_path: Path) -> None:
    """What the workflow's plan step plans, by default: every release with `default` once and
    `pgo-lto-deterministic` as two jobs, rebuilder a and b."""
    planned = _step(tmp_path, "plan", "--version", "3.13.5")
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.strip() == "3"
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert_matches_schema(plan, "cpython-verify/plan/v1")
    assert [(job["id"], job["rebuilder"]) for job in plan["include"]] == [
        ("3.13.5-default-bwrap", "a"),
        ("3.13.5-pgo-lto-deterministic-bwrap-a", "a"),
        ("3.13.5-pgo-lto-deterministic-bwrap-b", "b"),
    ]
