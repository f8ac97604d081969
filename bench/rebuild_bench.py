"""Benchmark the rebuild stage against the bare commands it wraps.

    .venv/bin/python bench/rebuild_bench.py --rootfs ROOTFS.tar [--tarball Python-3.13.5.tar.xz] [--skip-bare]

Measures, on the same runner and tarball:
  1. overhead: rebuild() (verify bytes, unpack, 3 sandboxed phases, manifest, commit) against a bare
     ``configure && make && make install`` in the same sandbox            (target <= 1.10x)
  2. manifest: write_manifest_for() on the install tree against ``find -type f | xargs sha256sum``
                                                                           (target <= 1.0x)
  3. cache hit: a repeated rebuild() with the same inputs                  (target <= 3 s)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verify.environments import image_from_tarball
from verify.environments.bwrap import BwrapRunner, unpacked_rootfs
from verify.environments.interface import Bind, SandboxSpec
from verify.rebuild import BuildSettings, ChosenProfile, RebuildCache, rebuild, unpack_release
from verify.rebuild.outputs import write_manifest_for
from verify.source.assembly import SourceOptions, require_verified, verify_release_source
from verify.source.recipes import load_recipe
from verify.source.releases import Version

DEFAULT_TARBALL = Path(__file__).resolve().parent.parent.parent / "shared/fixtures/cpython/Python-3.13.5.tar.xz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rootfs", type=Path, required=True, help="rootfs tarball of the recipe's environment")
    parser.add_argument("--tarball", type=Path, default=DEFAULT_TARBALL)
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    parser.add_argument("--skip-bare", action="store_true", help="do not run the bare build (saves minutes)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="rebuild-bench-"))
    image = image_from_tarball("bookworm-cpython", args.rootfs)
    runner = BwrapRunner()
    unpacked_rootfs(image)  # check the digest and unpack once (beside the tarball), outside every timing
    recipe = load_recipe("3.13")
    assert recipe.build is not None
    flags = list(recipe.build.profiles["default"].configure)
    # The real source stage (offline, from the tarball's directory with its signatures), outside every timing.
    verdict = verify_release_source(
        Version.parse("3.13.5"), SourceOptions(from_dirs=(args.tarball.parent,), offline=True), recipe=recipe
    )
    tarball = require_verified(verdict)
    build_profile = ChosenProfile.of(recipe, "default")

    bare = None
    if not args.skip_bare:
        started = time.monotonic()
        build_host, out_host = work / "bare/build", work / "bare/out"
        unpack_release(args.tarball, build_host / "cpython")
        out_host.mkdir(parents=True)
        settings = BuildSettings(source_date_epoch=1749000000)
        spec = SandboxSpec(
            binds=(Bind(build_host, "/build", writable=True), Bind(out_host, "/out", writable=True)),
            env=settings.environment(),
            cwd="/build/cpython",
        )
        script = f"./configure {' '.join(flags)} && make -j{settings.make_jobs()} && make install DESTDIR=/out/root"
        result = runner.run(image, ["/bin/sh", "-c", script], spec, log_path=work / "bare.log")
        assert result.returncode == 0, f"bare build failed: see {work / 'bare.log'}"
        bare = time.monotonic() - started
        print(f"bare configure && make && make install: {bare:.1f} s")

    cache = RebuildCache(work / "cache")
    started = time.monotonic()
    built = rebuild(
        tarball=tarball, verdict=verdict, build_profile=build_profile, image=image, runner=runner, cache=cache
    )
    full = time.monotonic() - started
    print(f"rebuild(): {full:.1f} s; phases {built.record.phase_seconds}")
    if bare:
        print(f"  overhead: {full / bare:.3f}x (target <= 1.10x)")

    root = built.result.root
    started = time.monotonic()
    write_manifest_for(root, {}, work / "manifest.json")
    ours = time.monotonic() - started
    started = time.monotonic()
    subprocess.run(f"find {root} -type f -print0 | xargs -0 sha256sum > /dev/null", shell=True, check=True)
    theirs = time.monotonic() - started
    print(f"manifest: {ours:.2f} s vs find|xargs sha256sum {theirs:.2f} s: {ours / theirs:.2f}x (target <= 1.0x)")

    started = time.monotonic()
    hit = rebuild(
        tarball=tarball, verdict=verdict, build_profile=build_profile, image=image, runner=runner, cache=cache
    )
    assert hit.from_cache
    print(f"cache hit: {time.monotonic() - started:.3f} s (target <= 3 s)")
    print(f"scratch: {work}")


if __name__ == "__main__":
    main()
