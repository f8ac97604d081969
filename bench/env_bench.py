"""Benchmark: pinned environment build (cold, warm) and sandbox start-up overhead.

- cold: ``ensure_environment`` with no cached rootfs (the .deb cache is kept unless --cold-debs:
  downloads measure the mirror, not this project).
- warm: ``ensure_environment`` again: a cache hit, which re-hashes the ~490 MB tarball.
- start-up: median wall time of running ``true`` in each available runner, against running
  ``true`` directly (the first run of each runner unpacks/imports the image and is reported apart).

Run: .venv/bin/python bench/env_bench.py [--env bookworm-cpython] [--cache DIR] [--runs 10] [--cold-debs]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from verify.common.errors import OperationalError
from verify.environments import ensure_environment, get_runner
from verify.environments.interface import SandboxSpec
from verify.environments.rootfs import EnvironmentCache


def _seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="bookworm-cpython")
    parser.add_argument(
        "--cache", dest="cache_dir", type=Path, default=None, help="default: a fresh temporary directory"
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cold-debs", action="store_true", help="also empty the .deb cache before the cold build")
    args = parser.parse_args()
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="env-bench-"))
    cache = EnvironmentCache.at(cache_dir)

    shutil.rmtree(cache.rootfs_dir, ignore_errors=True)
    if args.cold_debs:
        shutil.rmtree(cache.debs.directory, ignore_errors=True)
    cold = _seconds(lambda: ensure_environment(args.env, cache_dir=cache_dir))
    image = ensure_environment(args.env, cache_dir=cache_dir)
    warm = statistics.median(_seconds(lambda: ensure_environment(args.env, cache_dir=cache_dir)) for _ in range(3))
    print(f"rootfs {image.sha256[:16]}… {image.tarball.stat().st_size / 1e6:.0f} MB")
    print(f"build cold: {cold:7.2f} s{' (including .deb downloads)' if args.cold_debs else ' (.deb cache kept)'}")
    print(f"build warm: {warm:7.2f} s (cache hit: re-hash of the tarball)")

    direct = statistics.median(_seconds(lambda: subprocess.run(["true"], check=True)) for _ in range(args.runs))
    print(f"true directly: {direct * 1000:7.1f} ms")
    spec = SandboxSpec(env={"PATH": "/usr/bin:/bin"})
    for name in ("bwrap", "podman", "docker"):
        runner = get_runner(name)
        try:
            runner.check_available()
        except OperationalError as error:
            print(f"true in {name}: skipped ({error.message})")
            continue
        first = _seconds(lambda: runner.run(image, ["true"], spec))  # noqa: B023 (called before the loop moves on)
        samples = [_seconds(lambda: runner.run(image, ["true"], spec)) for _ in range(args.runs)]  # noqa: B023
        print(
            f"true in {name}: {statistics.median(samples) * 1000:7.1f} ms median of {args.runs} "
            f"(first run, with unpack/import: {first:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
