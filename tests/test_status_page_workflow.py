"""The example GitHub Actions workflow: every action pinned by commit SHA, permissions least."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

WORKFLOWS = sorted((Path(__file__).resolve().parent.parent / ".github" / "workflows").glob("*.yml"))
# Jobs that may mint an OIDC token: the one that signs, and the Pages deployment.
OIDC_JOBS = {"rebuild", "deploy"}


def _load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    return {("on" if key is True else key): value for key, value in document.items()}


def test_there_is_a_workflow() -> None:
    assert WORKFLOWS, "no .github/workflows/*.yml"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_full_sha(path: Path) -> None:
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)", path.read_text(), re.MULTILINE)
    assert uses
    for reference in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", reference), f"not pinned by SHA: {reference}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least(path: Path) -> None:
    workflow = _load(path)
    assert workflow.get("permissions") == {}, "the workflow must grant nothing by default"
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"job {name} must declare its permissions"
        allowed = {"contents": "read"} | ({"id-token": "write"} if name in OIDC_JOBS else {})
        if name == "deploy":
            allowed |= {"pages": "write"}
        extra = {key: value for key, value in permissions.items() if allowed.get(key) != value}
        assert not extra, f"job {name} asks for more than it needs: {extra}"
        if "id-token" in permissions:
            assert name in OIDC_JOBS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_the_chain_is_complete(path: Path) -> None:
    workflow = _load(path)
    assert "schedule" in workflow["on"]
    text = path.read_text()
    if "scripts/nightly-step" in text:
        # The run: bodies live in scripts/nightly-step (shared with scripts/nightly-local), where the
        # command cpython-verify is "${cli[@]}".
        step_script = path.parents[2] / "scripts" / "nightly-step"
        text += step_script.read_text().replace('"${cli[@]}"', "cpython-verify")
    for step in (
        "scripts/bootstrap",
        "cpython-verify releases",
        "cpython-verify plan",
        "rebuild",
        "--twice",
        "attest",
        "--sigstore",
        "cpython-verify merge",
        "--identity",
    ):
        assert step in text, f"the workflow never runs {step}"
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if "actions/checkout" in step.get("uses", ""):
                assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_the_status_site_is_restored_before_merge_and_saved_after(path: Path) -> None:
    """History across nights: merge adds to the previous site only if the workflow brings it back."""
    workflow = _load(path)
    if "merge" not in workflow["jobs"]:
        pytest.skip("no merge job")
    steps = workflow["jobs"]["merge"]["steps"]
    uses = [str(step.get("uses", "")) for step in steps]
    runs = [str(step.get("run", "")) for step in steps]
    merge = next(index for index, run in enumerate(runs) if "nightly-step merge" in run)
    restore = next(index for index, use in enumerate(uses) if use.startswith("actions/cache/restore@"))
    save = next(index for index, use in enumerate(uses) if use.startswith("actions/cache/save@"))
    assert restore < merge < save
    assert steps[restore]["with"]["path"] == steps[save]["with"]["path"] == "site"
    assert steps[restore]["with"]["restore-keys"] and "default_branch" in steps[save]["if"]
