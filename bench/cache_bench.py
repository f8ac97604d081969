"""Benchmark the check a cached rebuild passes before it is served, against hashing its files with coreutils.

    .venv/bin/python bench/cache_bench.py RESULT_DIR [--rounds 3]

RESULT_DIR is a rebuild cache entry or a published result (``rebuild --out``), e.g. of 3.13.5. Measures,
warm (files in the page cache, as right after a build or a first check), the best of ``--rounds``:
  1. check: verify.result.integrity.check_result (seal, record, manifest, and every path of root/ against
     the manifest: type, mode, target, size, sha256) against ``find root -type f -print0 | xargs -0
     sha256sum``, which hashes the same files and checks nothing                  (target <= 1.0x)
  2. for scale: verify.manifest.scan_tree (what writing the manifest costs: the same hashing plus kind
     detection), and ``xargs -P`` with one sha256sum per core.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verify.manifest import scan_tree
from verify.result import ResultDir
from verify.result.integrity import check_result


def best(rounds: int, work: Callable[[], object]) -> float:
    """The fastest of ``rounds`` runs of ``work``, in seconds."""
    times = []
    for _ in range(rounds):
        started = time.monotonic()
        work()
        times.append(time.monotonic() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", type=Path, help="a rebuild result directory or cache entry")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = ResultDir(args.result)
    root = result.root
    files = sum(1 for path in root.rglob("*") if path.is_file() and not path.is_symlink())
    size = sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())
    print(f"{root}: {files} files, {size / 2**20:.0f} MiB, {len(os.sched_getaffinity(0))} CPUs")

    def check() -> None:
        problems = check_result(result, tree=True)
        assert not problems, problems[:3]

    def coreutils(parallel: int) -> Callable[[], object]:
        command = f"find {root} -type f -print0 | xargs -0 -P {parallel} -n 256 sha256sum > /dev/null"
        return lambda: subprocess.run(command, shell=True, check=True)

    coreutils(1)()  # warm the page cache
    ours = best(args.rounds, check)
    theirs = best(args.rounds, coreutils(1))
    parallel = best(args.rounds, coreutils(len(os.sched_getaffinity(0))))
    scan = best(args.rounds, lambda: scan_tree(root))
    print(f"check_result: {ours:.2f} s vs find|xargs sha256sum {theirs:.2f} s: {ours / theirs:.2f}x (target <= 1.0x)")
    print(f"for scale: xargs -P{len(os.sched_getaffinity(0))} sha256sum {parallel:.2f} s; scan_tree {scan:.2f} s")


if __name__ == "__main__":
    main()
