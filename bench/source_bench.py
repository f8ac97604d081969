"""Benchmark: ``cpython-verify source 3.13.5 --from FIXTURES`` against ``sha256sum`` + ``gpgv``.

Reference: what a careful person does by hand on the same files — hash the tarball and check its
OpenPGP signature with gpgv against the release manager's key. cpython-verify also checks the Sigstore
bundle and reads Include/patchlevel.h, and its CLI import time counts. Target: ratio <= 1.5.

Run: .venv/bin/python bench/source_bench.py [--fixtures ../shared/fixtures] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _time(command: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=ROOT.parent / "shared" / "fixtures")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cpython = args.fixtures / "cpython"
    tarball = cpython / "Python-3.13.5.tar.xz"
    key = ROOT / "recipes" / "keys" / "thomas-wouters.debian-trixie-python3.13.asc"

    with tempfile.TemporaryDirectory() as scratch:
        keyring = Path(scratch) / "keyring.gpg"
        subprocess.run(["gpg", "--batch", "--dearmor", "-o", str(keyring), str(key)], check=True)
        # gpgv exits non-zero for an expired key even when the signature is good; time it anyway.
        reference_cmd = [
            "sh",
            "-c",
            f"sha256sum {tarball} >/dev/null && gpgv --keyring {keyring} {tarball}.asc {tarball} 2>/dev/null; true",
        ]
        reference = _time(reference_cmd, args.runs)
        env = dict(os.environ, CPYTHON_VERIFY_CACHE=str(Path(scratch) / "cache"))
        cli = [str(ROOT / ".venv" / "bin" / "cpython-verify"), "source", "3.13.5", "--from", str(cpython), "--offline"]
        subprocess.run(cli, check=True, stdout=subprocess.DEVNULL, env=env)  # warm the cache once
        ours = _time(cli, args.runs, env)
        import_only = _time([sys.executable, "-c", "import verify.cli"], args.runs)
    print(f"reference  sha256sum + gpgv                  {reference:7.3f} s (median of {args.runs})")
    print(f"ours       cpython-verify source 3.13.5      {ours:7.3f} s (both signatures, patchlevel.h)")
    print(f"           of which: import verify.cli       {import_only:7.3f} s")
    print(f"ratio      {ours / reference:.2f}x  (target <= 1.5x)")
    if shutil.which("hyperfine") is None:
        print("(install hyperfine for finer statistics)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
