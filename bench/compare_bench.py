"""Benchmarks for manifests, compare and audit, against sha256sum and diffoscope.

Run: .venv/bin/python bench/compare_bench.py [--tree DIR] [--source-tarball TGZ] [--skip-diffoscope]

Until a real 3.13.5 rebuild exists, the tree is the host's /usr/lib/python3.11 copied twice; the second
copy gets ~20 realistic changes (patched .py, recompiled .pyc, a build path in sysconfigdata, an
appended byte in an extension module, mode and presence changes).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from verify.audit import audit_installation
from verify.compare import compare_paths
from verify.manifest import scan_tree
from verify.source.releases import Version
from verify.source.unpack import extract_all_data

ROOT = Path(__file__).resolve().parent.parent


def timed(label: str, function):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - started
    print(f"{label:<58} {seconds:8.2f} s")
    return result, seconds


def diffoscope(a: Path, b: Path, timeout: float) -> float | None:
    started = time.perf_counter()
    try:
        subprocess.run(
            ["diffoscope", "--no-progress", "--text", os.devnull, str(a), str(b)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - started


def alter(tree: Path) -> int:
    """About twenty changes of the kinds real rebuilds show."""
    changed = 0
    for name in ("os.py", "argparse.py", "ast.py", "base64.py", "csv.py"):
        with (tree / name).open("a") as stream:
            stream.write("\n# patched\n")
        changed += 1
    for name in ("heapq.py", "bisect.py", "keyword.py", "abc.py", "types.py", "string.py"):
        cfile = importlib.util.cache_from_source(str(tree / name))
        py_compile.compile(
            str(tree / name),
            cfile=cfile,
            dfile=f"/usr/lib/python3.11/{name}",
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
        changed += 1
    sysconfig = next(tree.glob("_sysconfigdata__x86_64*.py"))
    sysconfig.write_text(sysconfig.read_text().replace("/usr", "/build/other"))
    changed += 1
    for so in sorted((tree / "lib-dynload").glob("*.so"))[:4]:
        with so.open("ab") as stream:
            stream.write(b"\0")
        changed += 1
    (tree / "this.py").chmod(0o600)
    (tree / "json" / "tool.py").unlink()
    (tree / "extra.txt").write_text("extra\n")
    (tree / "__pycache__" / "calendar.cpython-311.pyc").write_bytes(
        (tree / "__pycache__" / "locale.cpython-311.pyc").read_bytes()
    )
    return changed + 4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, default=Path("/usr/lib/python3.11"))
    parser.add_argument(
        "--source-tarball", type=Path, default=ROOT.parent / "shared" / "fixtures" / "cpython" / "Python-3.11.2.tgz"
    )
    parser.add_argument("--skip-diffoscope", action="store_true")
    parser.add_argument("--diffoscope-timeout", type=float, default=900)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compare-bench-") as scratch:
        work = Path(scratch)
        a, b = work / "a", work / "b"
        shutil.copytree(args.tree, a, symlinks=True)
        shutil.copytree(args.tree, b, symlinks=True)
        files = sum(1 for p in a.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in a.rglob("*") if p.is_file() and not p.is_symlink())
        print(f"tree: {args.tree}: {files} files, {size / 1e6:.0f} MB")
        scan_tree(a)
        timed("scan_tree (hash + kinds, threads)", lambda: scan_tree(a))
        timed(
            "sha256sum via find | xargs",
            lambda: subprocess.run(
                f"find {a} -type f -print0 | xargs -0 sha256sum > /dev/null", shell=True, check=True
            ),
        )

        identical, ours_same = timed("compare identical trees", lambda: compare_paths(a, b))
        assert identical.identical
        if not args.skip_diffoscope:
            theirs = diffoscope(a, b, args.diffoscope_timeout)
            print(
                f"{'diffoscope identical trees':<58} {theirs if theirs is not None else float('nan'):8.2f} s"
                + ("  (timed out)" if theirs is None else f"  -> {theirs / ours_same:.0f}x")
            )

        changed = alter(b)
        result, ours_diff = timed(f"compare trees with {changed} changes (explained)", lambda: compare_paths(a, b))
        categories = result.counts_by_category()
        print(f"  {len(result.differences)} differences; categories: {categories}")
        if not args.skip_diffoscope:
            theirs = diffoscope(a, b, args.diffoscope_timeout)
            print(
                f"{'diffoscope trees with changes':<58} {theirs if theirs is not None else float('nan'):8.2f} s"
                + ("  (timed out)" if theirs is None else f"  -> {theirs / ours_diff:.0f}x")
            )

        if args.tree == Path("/usr/lib/python3.11") and args.source_tarball.is_file():
            source = work / "source"
            with tarfile.open(args.source_tarball) as archive:
                members = [m for m in archive.getmembers() if "/Lib/" in m.name]
                extract_all_data(archive, source, members)
            tree = next(source.iterdir())
            report, _ = timed(
                "audit /usr (3.11.2), headers only",
                lambda: audit_installation(Path("/usr"), Version.parse("3.11.2"), tree),
            )
            report, _ = timed(
                f"audit /usr (3.11.2), recompiled with {sys.executable}",
                lambda: audit_installation(
                    Path("/usr"), Version.parse("3.11.2"), tree, reference_python=Path(sys.executable)
                ),
            )
            print(
                f"  {report.sources.checked} .py, {report.pyc.checked} .pyc, {report.pyc.recompiled} recompiled, "
                f"{len(report.sources.modified)} modified, {len(report.pyc.mismatched)} code mismatches"
            )


if __name__ == "__main__":
    main()
