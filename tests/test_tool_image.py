"""The tool's own image: FROM scratch, the pinned rootfs plus a CPython that `rebuild` made and verified.

The fast tests check the build script's refusals and the Dockerfile's shape; the slow test builds the
image with podman from a verified, attested 3.13.5 result (CI's one real build, from the session's shared
rebuild cache) and runs ``source`` inside it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, run_cli

BUILD = PROJECT_ROOT / "scripts" / "build-tool-image"
DOCKERFILE = PROJECT_ROOT / "docker" / "cpython-verify.Dockerfile"
LOCKS = [PROJECT_ROOT / "docker" / name for name in ("requirements.lock", "pip.lock")]
PODMAN_RUN = ["podman", "run", "--rm", "--runtime", "runc", "--network", "none",
              "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=8192:8192"]  # fmt: skip


def _build(*args: str | Path, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON=sys.executable, NO_COLOR="1")
    return subprocess.run([BUILD, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=3600, check=False)  # fmt: skip


def test_the_image_starts_from_nothing_and_installs_only_hashed_wheels() -> None:
    text = DOCKERFILE.read_text()
    assert re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE) == ["scratch"]
    assert "ADD rootfs.tar /" in text and "COPY python/ /opt/python/" in text
    assert "--require-hashes --no-deps" in text and "--no-index" in text
    for lock in LOCKS:
        requirements = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
        assert requirements, f"{lock.name} is empty"
        for line in requirements:
            assert re.match(r"^[A-Za-z0-9_.-]+==\S+ --hash=sha256:[0-9a-f]{64}  # \S+\.whl$", line), line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "usage"),
        (["/nonexistent"], "is not a directory"),
        (["{empty}"], "say who must have signed"),
        (["{empty}", "--public-key", "k.pub", "--engine", "kaniko"], "--engine must be"),
        (["{empty}", "--public-key", "k.pub"], "has no attestation"),
    ],
)
def test_bad_arguments_and_unattested_results_are_refused_before_any_build(
    args: list[str], message: str, tmp_path: Path
) -> None:
    empty = tmp_path / "result"
    empty.mkdir()
    completed = _build(*[arg.replace("{empty}", str(empty)) for arg in args])
    assert completed.returncode == 2
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1, completed.stderr


# -- the slow build ----------------------------------------------------------------------------------


def _podman_works() -> bool:
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def verified_result(
    cpython_fixtures: Path, shared_rebuild_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A rebuilt, attested 3.13.5 result and its public key. The build is CI's one real build (the recipe's
    default profile, found in the shared cache when test_rebuild_real made it first); ``rebuild`` + ``attest``
    rather than ``check``, whose second, varied build CI does not make (docs/testing.md)."""
    from test_attest_support import openssl_keypair

    directory = tmp_path_factory.mktemp("tool-image-result")
    key, public_key = openssl_keypair(directory, "rebuilder")
    out = directory / "result"
    rebuilt = run_cli("rebuild", "3.13.5", "--from", cpython_fixtures, "--offline",
                      "--rebuild-cache", shared_rebuild_cache, "--out", out, timeout=7200)  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    attested = run_cli("attest", out, "--signing-key", key)
    assert attested.returncode == 0, attested.stdout + attested.stderr
    return out, public_key


@pytest.fixture
def image_tag() -> Iterator[str]:
    tag = "localhost/cpython-verify-test:3.13.5"
    yield tag
    subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False)


@pytest.mark.slow
def test_tool_image_built_from_its_own_verified_rebuild_runs_source(
    verified_result: tuple[Path, Path], cpython_fixtures: Path, image_tag: str, tmp_path: Path
) -> None:
    if not _podman_works():
        pytest.skip("podman is not usable here")
    result, public_key = verified_result
    digest_file = tmp_path / "digest.txt"
    built = _build(result, "--public-key", public_key, "--tag", image_tag, "--digest-file", digest_file)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "signature: verified" in built.stderr, "the attestation was not checked before the build"
    recorded = dict(line.split(" ", 1) for line in digest_file.read_text().splitlines())
    assert recorded["digest"].startswith("sha256:") and recorded["python"] == "3.13.5"
    print(f"tool image {image_tag}: id {recorded['id']} digest {recorded['digest']}")  # recorded in the test log

    source = subprocess.run([*PODMAN_RUN, "-v", f"{cpython_fixtures}:/src:ro", image_tag,
                             "source", "3.13.5", "--from", "/src", "--offline"],
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert source.returncode == 0, source.stdout + source.stderr
    assert "VERIFIED: CPython 3.13.5 source" in source.stdout

    # The interpreter in the image is byte for byte the attested one, and carries its evidence.
    probe = subprocess.run([*PODMAN_RUN, "--entrypoint", "/bin/sh", image_tag, "-c",
                            "sha256sum /opt/python/bin/python3.13 && ls /opt/python/.cpython-verify && "
                            "python3.13 -c 'import sys; print(sys.executable)'"],
                           capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    with (result / "root/opt/python/bin/python3.13").open("rb") as stream:
        attested = hashlib.file_digest(stream, "sha256").hexdigest()
    assert probe.stdout.split()[0] == attested
    for name in ("attestation.intoto.json", "rebuild.json", "manifest.json", "source-verdict.json", "signer.pub"):
        assert name in probe.stdout.split()
    assert probe.stdout.strip().endswith("/opt/python/bin/python3.13")


@pytest.mark.slow
def test_a_result_changed_after_attestation_is_refused(verified_result: tuple[Path, Path], tmp_path: Path) -> None:
    result, public_key = verified_result
    tampered = tmp_path / "tampered"
    # Hard links: a cheap copy of the tree; the one file changed is replaced, not edited in place.
    subprocess.run(["cp", "-al", str(result), str(tampered)], check=True)
    victim = tampered / "root/opt/python/lib/python3.13/os.py"
    data = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(data + b"\n# changed after the attestation was signed\n")
    completed = _build(tampered, "--public-key", public_key, "--tag", "localhost/cpython-verify-test:never")
    assert completed.returncode == 2
    assert "does not verify: not building an image from it" in completed.stderr
    assert "podman build" not in completed.stderr
