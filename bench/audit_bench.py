"""Benchmark: ``audit`` against its floor, side by side.

The floor is what any audit has to do at least: verify the source (``cpython-verify source``), unpack
its ``Lib/``, and ``sha256sum`` every file of both trees. Cases:

* the host's Debian python3.11 (``/usr``), with ``--patches`` when given;
* Debian ``.deb`` files (``--debs DIR``), audited directly (the floor unpacks them with ``dpkg-deb -x``);
* a full install tree made the way ``make install`` copies the verified ``Lib/`` (with ``.pyc``), as a
  directory and as an OCI image (``podman import`` + ``podman save``; skipped without podman).

Run (from the checkout): PYTHONPATH=. .venv/bin/python bench/audit_bench.py [--patches DIR] [--debs DIR]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from verify.source.unpack import extract_all_data

ROOT = Path(__file__).resolve().parent.parent
VERSION = "3.11.2"
TARBALL = f"Python-{VERSION}.tgz"


def run(command: Sequence[object], **kwargs: object) -> float:
    """Seconds one command took; it must succeed (audit: exit 0 or 1)."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        check=False,
        cwd=ROOT,
        env=dict(os.environ, NO_COLOR="1"),
        **kwargs,
    )  # type: ignore[call-overload]
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"{command[:4]} failed ({result.returncode}): {result.stderr.decode()[-400:]}")
    return seconds


def sha256_tree(tree: Path) -> float:
    """``sha256sum`` over every regular file of ``tree`` (find + xargs, as a person would)."""
    started = time.perf_counter()
    subprocess.run(f"find {tree} -type f -print0 | xargs -0 -P1 sha256sum > /dev/null", shell=True, check=True)
    return time.perf_counter() - started


def source_args(fixtures: Path) -> list[object]:
    return ["--from", fixtures, "--offline", "--allow-missing", "openpgp"]


def floor(fixtures: Path, installed: Path, work: Path) -> float:
    """cpython-verify source + unpack Lib/ + sha256sum over both trees."""
    seconds = run([sys.executable, "-m", "verify", "source", VERSION, *source_args(fixtures)])
    target = work / "floor-source"
    target.mkdir()
    started = time.perf_counter()
    with tarfile.open(fixtures / TARBALL) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(f"Python-{VERSION}/Lib/")]
        extract_all_data(archive, target, members)
    seconds += time.perf_counter() - started
    seconds += sha256_tree(target) + sha256_tree(installed)
    shutil.rmtree(target)
    return seconds


def audit(fixtures: Path, inputs: Sequence[object], extra: Sequence[object] = ()) -> float:
    return run(
        [
            sys.executable,
            "-m",
            "verify",
            "audit",
            VERSION,
            *inputs,
            *source_args(fixtures),
            "--json",
            *extra,
        ]
    )


def report(label: str, audited: float, floor_seconds: float, files: int) -> None:
    print(
        f"{label:<44} {files:>6} files  audit {audited:6.2f} s  floor {floor_seconds:6.2f} s  "
        f"ratio {audited / floor_seconds:4.2f}x"
    )


def make_install_tree(fixtures: Path, work: Path) -> Path:
    """``PREFIX/lib/python3.11`` as make install copies it from the verified Lib/, compiled like libinstall."""
    from verify.audit.sources import read_source_model

    source = work / "src"
    with tarfile.open(fixtures / TARBALL) as archive:
        wanted = ("Lib/", "Include/", "Modules/Setup", "Makefile.pre.in", "setup.py", "LICENSE")
        members = [m for m in archive.getmembers() if m.name.startswith(tuple(f"Python-{VERSION}/{w}" for w in wanted))]
        extract_all_data(archive, source, members)
    tree = source / f"Python-{VERSION}"
    prefix = work / "rootfs" / "opt" / "python"
    model = read_source_model(tree)
    for rel, origin in model.stdlib.items():
        target = prefix / "lib" / "python3.11" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tree / origin, target)
    compileall.compile_dir(
        prefix / "lib" / "python3.11",
        quiet=2,
        workers=0,
        rx=__import__("re").compile(r"bad_coding|badsyntax|site-packages|lib2to3/tests/data"),
    )
    shutil.rmtree(source)
    return prefix


def count_files(tree: Path) -> int:
    return sum(1 for path in tree.rglob("*") if path.is_file() and not path.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=ROOT.parent / "shared" / "fixtures" / "cpython")
    parser.add_argument("--patches", type=Path, help="debian/patches of the python3.11 source package")
    parser.add_argument("--debs", type=Path, help="a directory of python3.11 .deb files")
    args = parser.parse_args()
    patch_args: list[object] = ["--patches", args.patches] if args.patches else []
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as scratch:
        work = Path(scratch)
        stdlib = Path("/usr/lib/python3.11")
        report(
            "Debian /usr (directory)" + (" + patches" if args.patches else ""),
            audit(args.fixtures, ["/usr"], patch_args),
            floor(args.fixtures, stdlib, work),
            count_files(stdlib),
        )
        if args.debs:
            debs = sorted(args.debs.glob("*.deb"))
            unpacked = work / "debs"
            started = time.perf_counter()
            for deb in debs:  # reading the packages is part of any audit of them: dpkg-deb -x, no scripts run
                subprocess.run(["dpkg-deb", "-x", deb, unpacked], check=True)
            floor_seconds = time.perf_counter() - started + floor(args.fixtures, unpacked / "usr/lib/python3.11", work)
            report(
                f"Debian .deb x{len(debs)}" + (" + patches" if args.patches else ""),
                audit(args.fixtures, debs, patch_args),
                floor_seconds,
                count_files(unpacked / "usr/lib/python3.11"),
            )
        prefix = make_install_tree(args.fixtures, work)
        installed = prefix / "lib" / "python3.11"
        report(
            "make-install tree (directory, with .pyc)",
            audit(args.fixtures, [prefix]),
            floor(args.fixtures, installed, work),
            count_files(installed),
        )
        if shutil.which("podman"):
            rootfs_tar = work / "rootfs.tar"
            with tarfile.open(rootfs_tar, "w") as archive:
                archive.add(work / "rootfs", arcname=".")
            tag = f"localhost/cpython-verify-audit-bench:{os.getpid()}"
            subprocess.run(["podman", "import", rootfs_tar, tag], check=True, capture_output=True)
            image = work / "image.tar"
            try:
                subprocess.run(
                    ["podman", "save", "--format", "oci-archive", "-o", image, tag], check=True, capture_output=True
                )
            finally:
                subprocess.run(["podman", "rmi", "-f", tag], check=False, capture_output=True)
            report(
                "make-install tree as an OCI image",
                audit(args.fixtures, [image]),
                floor(args.fixtures, installed, work),
                count_files(installed),
            )


if __name__ == "__main__":
    main()
