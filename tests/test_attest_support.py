"""Helpers shared by the attestation, peers and status-page tests (no tests here).

A rebuild result directory is made from small real files: real ELF binaries from this machine's
Python as ``bin/python3.13`` and libpython, a manifest written by the manifest stage, a source verdict
about the real 3.13.5 tarball written by the source report, and a ``rebuild.json`` shaped as the
rebuild stage writes it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The CLI runner lives in conftest; the name stays importable from here for test files that still do.
from conftest import run_cli as run_cli

from verify.manifest import Manifest, scan_tree, write_manifest
from verify.result import (
    BuildInputs,
    EnvironmentRef,
    RebuildRecord,
    RecipeRef,
    RecordedDifference,
    ReproducibilityCheck,
    ResultDir,
    SourceRef,
)
from verify.source.models import (
    CheckStatus,
    DigestCheck,
    DigestClaim,
    FetchedFile,
    SignatureEvidence,
    SignatureKind,
    SourceVerdict,
)
from verify.source.releases import Version
from verify.source.report import verdict_to_json

TARBALL = "Python-3.13.5.tar.xz"
TARBALL_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
RECIPE_SHA256 = "cd0941158f9df66392431b0d850983e9ebd2e07d7ff67839641b4dfa121eee24"
ROOTFS_SHA256 = "7af9c5e5e34f3fdfd208012c2540aa7db052fef3b60964c71c95b08c2a8bce73"
STARTED_AT = "2025-06-12T03:00:00Z"
FINISHED_AT = "2025-06-12T03:41:07Z"
SETTINGS: dict[str, str | int | bool | None] = {
    "build_dir": "/build/cpython",
    "cflags": "-ffile-prefix-map=/build/cpython=.",
    "destdir": "/out/root",
    "locale": "C.UTF-8",
    "make_jobs": 2,
    "pythonhashseed": "0",
    "source_date_epoch": 1749583394,
    "tz": "UTC",
    "umask": "022",
    "file_prefix_map": True,
    "cpus": None,
}


def real_elf_files() -> tuple[Path, Path]:
    """An executable and a shared object of this machine's Python (real ELF files, small)."""
    import _json

    return Path(sys.executable).resolve(), Path(_json.__file__)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_verdict(tarball: Path) -> str:
    """The source report's JSON for the real 3.13.5 tarball, with the evidence the fixtures document."""
    verdict = SourceVerdict(
        version=Version.parse("3.13.5"),
        recipe_series="3.13",
        recipe_sha256=RECIPE_SHA256,
        tarball=FetchedFile(TARBALL, tarball, sha256(tarball), tarball.stat().st_size, str(tarball)),
        signatures=(
            SignatureEvidence(
                SignatureKind.OPENPGP,
                CheckStatus.VERIFIED,
                "good signature by Thomas Wouters",
                signer="7169605F62C751356D054A26A821E680E5FA6305",
                signer_name="Thomas Wouters <thomas@python.org>",
                signed_at=datetime(2025, 6, 11, 21, 35, tzinfo=UTC),
            ),
            SignatureEvidence(
                SignatureKind.SIGSTORE,
                CheckStatus.VERIFIED,
                "verified bundle for thomas@python.org",
                signer="thomas@python.org",
                signer_name="https://accounts.google.com",
            ),
        ),
        digests=(DigestCheck(DigestClaim("pyenv python-build", TARBALL_SHA256), True),),
        patchlevel_version="3.13.5",
    )
    return verdict_to_json(verdict)


def make_result(
    directory: Path,
    tarball: Path,
    *,
    variant: str = "",
    runner: str = "bwrap",
    reproducible: bool | None = True,
    differences: list[dict[str, Any]] | None = None,
) -> Path:
    """A rebuild result directory, written through the one record model; ``variant`` changes one
    installed text file (a different tree). ``differences`` are ``{"path", "kind", "changes"}`` and
    optionally the comparator's ``category`` and ``explanation``."""
    executable, library = real_elf_files()
    root = directory / "root" / "opt" / "python"
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "python3.13").mkdir(parents=True)
    shutil.copyfile(executable, root / "bin" / "python3.13")
    (root / "bin" / "python3.13").chmod(0o755)
    (root / "bin" / "python3").symlink_to("python3.13")
    shutil.copyfile(library, root / "lib" / "libpython3.13.so.1.0")
    (root / "lib" / "python3.13" / "os.py").write_text("import sys\n")
    (root / "lib" / "python3.13" / "LICENSE.txt").write_text("PSF license" + variant + "\n")
    manifest = Manifest(inputs={"runner": runner}, entries=scan_tree(directory / "root"))
    manifest_sha256 = write_manifest(manifest, directory / "manifest.json")
    (directory / "source-verdict.json").write_text(source_verdict(tarball))
    recorded = tuple(
        RecordedDifference(
            path=d["path"],
            kind=d["kind"],
            changes=tuple(d["changes"]),
            unexplained_changes=tuple(d["changes"]),
            category=d.get("category"),
            explanation=d.get("explanation"),
        )
        for d in differences or []
    )
    inputs = BuildInputs(
        source=SourceRef(name=TARBALL, sha256=TARBALL_SHA256),
        recipe=RecipeRef(series="3.13", sha256=RECIPE_SHA256, profile="default", configure=("--prefix=/opt/python",)),
        environment=EnvironmentRef(name="bookworm-cpython", lock_sha256=None, rootfs_sha256=ROOTFS_SHA256),
        runner=runner,
        settings=SETTINGS,
        variations=(),
    )
    record = RebuildRecord(
        version="3.13.5",
        inputs=inputs,
        source_date_epoch=SETTINGS["source_date_epoch"],
        pip="not installed (--with-ensurepip=no)",
        cache_key="0" * 64,
        phase_seconds={"configure": 1.0},
        commands={"configure": ("./configure", "--prefix=/opt/python")},
        manifest_sha256=manifest_sha256,
        started_at=STARTED_AT,
        finished_at=FINISHED_AT,
        reproducibility=None
        if reproducible is None
        else ReproducibilityCheck(
            variations=("build_path", "umask"), differences=recorded, first="/cache/a", second="/cache/b"
        ),
    )
    ResultDir(directory).write_record(record)
    return directory


def openssl_keypair(directory: Path, name: str, algorithm: str = "ed25519") -> tuple[Path, Path]:
    """A key pair made with the openssl commands docs/attestation.md documents."""
    private, public = directory / f"{name}.pem", directory / f"{name}.pub"
    if algorithm == "ed25519":
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", private], check=True)
    else:
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", private],
            check=True,
        )
    subprocess.run(["openssl", "pkey", "-in", private, "-pubout", "-out", public], check=True)
    return private, public
