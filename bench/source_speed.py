"""Benchmark: ``cpython-verify source VERSION --from DIR --offline`` against the peer CLIs, side by side.

Reference (named in the output): the same verifications done by the tools a careful person runs by hand,
one after another on the same files:

  1. sigstore-python's ``python -m sigstore verify identity --offline`` (its embedded trust root) with the
     recipe's identity and OIDC issuer, when the release has a ``.sigstore`` bundle;
  2. ``gpgv`` with a keyring of the recipe's pinned key files, when the release has an ``.asc``;
  3. ``sha256sum`` of the tarball.

cpython-verify does all of that plus reading ``Include/patchlevel.h`` from the tarball and copying the
tarball into its cache, and its own start-up counts. Both sides run from compiled bytecode, as installed
tools do (:func:`_bench_env`). Runs are interleaved in pairs (A B, B A, ...), after one untimed run of
each side; the ratio of each pair is ours / reference, and the median ratio of each release is compared
with ``--max-ratio``. The CPU time of each side (user + system of every process it ran) and its median
ratio are printed beside it, with the load average before and after each release: on a machine whose
cores are busy, the wall ratio follows the CPU ratio. Every timed run must succeed: a peer that fails, or
a verdict that does not list every signature as verified, stops the benchmark (exit 2).

With ``--patchlevel-peer`` it also times what a person would add to check the version inside, the read of
``Include/patchlevel.h`` (``xz -dc TARBALL | tar -xO --occurrence=1 …``), and prints the ratio against the
reference plus that read: informational, the target is judged against the reference alone.

Run: .venv/bin/python bench/source_speed.py [VERSION ...] [--from DIR] [--pairs 7] [--max-ratio 1.0] [--patchlevel-peer]
(default versions 3.13.5, both signatures, and 3.14.4, Sigstore only; default DIR: the fixtures' cpython/).
Exit 0 when every median ratio is within --max-ratio, 1 when one is not, 2 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verify.source.recipes import Recipe, load_recipe  # noqa: E402
from verify.source.releases import Version  # noqa: E402

REFERENCE = "peer CLIs one after another: python -m sigstore verify identity --offline, gpgv, sha256sum"


class BenchError(Exception):
    """A run failed or the setup is incomplete: no timing is meaningful."""


@dataclass(frozen=True)
class Release:
    """One release's files in DIR and the commands that verify them."""

    version: str
    tarball: Path
    ours: list[str]
    peers: list[list[str]]
    kinds: tuple[str, ...]
    patchlevel_peer: list[str] | None = None
    """With ``--patchlevel-peer``: the shell pipeline that reads ``Include/patchlevel.h`` as a person would."""


def _default_from_dir() -> Path:
    fixtures = os.environ.get("CPYTHON_VERIFY_FIXTURES")
    base = Path(fixtures) if fixtures else ROOT.parent / "shared" / "fixtures"
    return base / "cpython"


def _bench_env(scratch: Path) -> dict[str, str]:
    """The environment of every timed run: a fresh cache, and both sides running from compiled bytecode.

    An installed tool runs from the ``.pyc`` files pip compiled when it installed it, and so does
    sigstore-python; a checkout run with ``PYTHONDONTWRITEBYTECODE`` set would compile cpython-verify's
    modules from source on every run and time that instead. Bytecode goes to a scratch prefix, written
    by the untimed first run of each side, so neither side depends on what a checkout already holds.
    """
    env = dict(os.environ, CPYTHON_VERIFY_CACHE=str(scratch / "cache"), NO_COLOR="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return env


def _our_cli() -> list[str]:
    script = Path(sys.executable).parent / "cpython-verify"
    return [str(script)] if script.exists() else [sys.executable, "-m", "verify"]


def _keyring(recipe: Recipe, scratch: Path) -> Path:
    """A binary keyring of the recipe's pinned key files, for gpgv (made once, not timed)."""
    assert recipe.openpgp is not None
    keyring = scratch / f"pinned-{recipe.series}.gpg"
    with keyring.open("wb") as out:
        for key_file in recipe.openpgp.key_files:
            dearmored = subprocess.run(
                ["gpg", "--batch", "--dearmor"], input=key_file.read_bytes(), capture_output=True, check=True
            )
            out.write(dearmored.stdout)
    return keyring


def _patchlevel_pipeline(tarball: Path, version: Version) -> list[str]:
    """``xz -dc | tar -xO --occurrence=1`` (or ``gzip -dc``) of the release's ``Include/patchlevel.h``: the
    check of the version inside that cpython-verify makes and the reference does not (informational)."""
    decompress = "gzip" if tarball.name.endswith((".tgz", ".tar.gz")) else "xz"
    member = f"Python-{version}/Include/patchlevel.h"
    script = f'{decompress} -dc "$1" | tar -xO --occurrence=1 -f - "$2" | grep -F "PY_VERSION" | grep -qF "\\"$3\\""'
    return ["sh", "-c", script, "patchlevel", str(tarball), member, str(version)]


def _release(version_text: str, from_dir: Path, scratch: Path, *, patchlevel_peer: bool = False) -> Release:
    version = Version.parse(version_text)
    recipe = load_recipe(version.series)
    names = [name for name in recipe.source.filenames_for(version) if (from_dir / name).is_file()]
    if not names:
        raise BenchError(f"{version_text}: no tarball in {from_dir}")
    tarball = from_dir / names[0]
    peers: list[list[str]] = []
    kinds: list[str] = []
    bundle = Path(f"{tarball}.sigstore")
    if recipe.sigstore is not None and bundle.is_file():
        kinds.append("sigstore")
        peers.append(
            [sys.executable, "-m", "sigstore", "verify", "identity", "--offline",
             "--cert-identity", recipe.sigstore.identity, "--cert-oidc-issuer", recipe.sigstore.issuer,
             "--bundle", str(bundle), str(tarball)]
        )  # fmt: skip
    signature = Path(f"{tarball}.asc")
    if recipe.openpgp is not None and signature.is_file():
        kinds.append("openpgp")
        peers.append(["gpgv", "--keyring", str(_keyring(recipe, scratch)), str(signature), str(tarball)])
    peers.append(["sha256sum", str(tarball)])
    ours = [*_our_cli(), "source", version_text, "--from", str(from_dir), "--offline", "--json"]
    patchlevel = _patchlevel_pipeline(tarball, version) if patchlevel_peer else None
    return Release(version_text, tarball, ours, peers, tuple(sorted(kinds)), patchlevel)


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(command, capture_output=True, env=env)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise BenchError(f"{' '.join(command[:4])} … exited {result.returncode}: {tail[0]}")
    return result


@dataclass(frozen=True)
class Sample:
    """One timed side of a pair: wall-clock seconds and the CPU seconds (user + system) its processes used."""

    wall: float
    cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_ours(release: Release, env: dict[str, str]) -> Sample:
    cpu, start = _children_cpu(), time.perf_counter()
    result = _run(release.ours, env)
    elapsed = Sample(time.perf_counter() - start, _children_cpu() - cpu)
    verdict = json.loads(result.stdout)
    verified = sorted(s["kind"] for s in verdict["signatures"] if s["status"] == "verified")
    if not verdict["verified"] or tuple(verified) != release.kinds or not verdict["patchlevel"]["ok"]:
        raise BenchError(f"{release.version}: the verdict does not verify {release.kinds} and patchlevel.h")
    return elapsed


def _time_peers(release: Release, env: dict[str, str]) -> Sample:
    cpu, start = _children_cpu(), time.perf_counter()
    for command in release.peers:
        _run(command, env)
    return Sample(time.perf_counter() - start, _children_cpu() - cpu)


def _time_patchlevel(release: Release, env: dict[str, str]) -> Sample | None:
    if release.patchlevel_peer is None:
        return None
    cpu, start = _children_cpu(), time.perf_counter()
    _run(release.patchlevel_peer, env)
    return Sample(time.perf_counter() - start, _children_cpu() - cpu)


def _bench(release: Release, pairs: int, env: dict[str, str]) -> tuple[list[Sample], list[Sample], list[Sample | None]]:
    _time_ours(release, env)  # untimed: page cache, .pyc files, the tool's cache directory
    _time_peers(release, env)
    _time_patchlevel(release, env)
    ours: list[Sample] = []
    peers: list[Sample] = []
    patchlevel: list[Sample | None] = []
    for pair in range(pairs):
        if pair % 2 == 0:
            ours.append(_time_ours(release, env))
            peers.append(_time_peers(release, env))
            patchlevel.append(_time_patchlevel(release, env))
        else:
            peers.append(_time_peers(release, env))
            patchlevel.append(_time_patchlevel(release, env))
            ours.append(_time_ours(release, env))
    return ours, peers, patchlevel


def _print_with_patchlevel(release: Release, ours: list[Sample], peers: list[Sample], read: list[Sample]) -> None:
    """The informational line of ``--patchlevel-peer``: ours against the reference plus the patchlevel.h read."""
    both = [Sample(theirs.wall + extra.wall, theirs.cpu + extra.cpu) for theirs, extra in zip(peers, read, strict=True)]
    wall_ratio = statistics.median(mine.wall / theirs.wall for mine, theirs in zip(ours, both, strict=True))
    cpu_ratio = statistics.median(mine.cpu / theirs.cpu for mine, theirs in zip(ours, both, strict=True))
    command = " ".join((release.patchlevel_peer or [])[2:3])
    print(
        f"informational: the patchlevel.h read ({command}) took {statistics.median(s.wall for s in read):.3f} s, "
        f"{statistics.median(s.cpu for s in read):.3f} s CPU; against the reference plus it, ratio "
        f"{wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU (not judged)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", default=["3.13.5", "3.14.4"])
    parser.add_argument("--from", dest="from_dir", type=Path, default=_default_from_dir())
    parser.add_argument("--pairs", type=int, default=7, help="interleaved pairs per release (default 7)")
    parser.add_argument("--max-ratio", type=float, default=1.0, help="fail above this median ratio (default 1.0)")
    parser.add_argument(
        "--patchlevel-peer",
        action="store_true",
        help="also time reading Include/patchlevel.h with xz/gzip and tar, and print the ratio against the "
        "reference plus that read (informational: the target is judged against the reference alone)",
    )
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    for tool in ("gpg", "gpgv", "sha256sum", *(("xz", "gzip", "tar") if args.patchlevel_peer else ())):
        if shutil.which(tool) is None:
            print(f"source_speed: {tool} is not installed", file=sys.stderr)
            return 2

    print(f"reference: {REFERENCE}")
    print(f"ours:      {' '.join(_our_cli())} source VERSION --from {args.from_dir} --offline --json")
    load = os.getloadavg()[0]
    print(f"machine:   {os.cpu_count()} cores, load average {load:.1f}, Python {platform.python_version()}")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="source-speed-") as scratch_name:
        scratch = Path(scratch_name)
        env = _bench_env(scratch)
        for version in args.versions:
            load_before = os.getloadavg()[0]
            try:
                release = _release(version, args.from_dir, scratch, patchlevel_peer=args.patchlevel_peer)
                ours, peers, patchlevel = _bench(release, args.pairs, env)
            except (BenchError, subprocess.CalledProcessError, OSError, ValueError) as error:
                print(f"source_speed: {error}", file=sys.stderr)
                return 2
            ratios = [mine.wall / theirs.wall for mine, theirs in zip(ours, peers, strict=True)]
            cpu_ratios = [mine.cpu / theirs.cpu for mine, theirs in zip(ours, peers, strict=True)]
            median = statistics.median(ratios)
            worst = max(worst, median)
            kinds = ", ".join(release.kinds)
            print(f"\n{version}: {release.tarball.name}, signatures {kinds} (+ patchlevel.h in ours)")
            header = ("pair", "order", "ours s", "peers s", "ratio", "ours cpu", "peers cpu", "cpu ratio")
            print("{:>4}  {:<5}  {:>7}  {:>7}  {:>6}  {:>8}  {:>9}  {:>9}".format(*header))
            for index, (mine, theirs, ratio, cpu_ratio) in enumerate(zip(ours, peers, ratios, cpu_ratios, strict=True)):
                order = "A B" if index % 2 == 0 else "B A"
                print(
                    f"{index + 1:>4}  {order:<5}  {mine.wall:7.3f}  {theirs.wall:7.3f}  {ratio:6.2f}  "
                    f"{mine.cpu:8.3f}  {theirs.cpu:9.3f}  {cpu_ratio:9.2f}"
                )
            ours_cpu = statistics.median(sample.cpu for sample in ours)
            peers_cpu = statistics.median(sample.cpu for sample in peers)
            print(
                f"median: ours {statistics.median(s.wall for s in ours):.3f} s, "
                f"reference {statistics.median(s.wall for s in peers):.3f} s, "
                f"ratio {median:.2f}x over {len(ratios)} pairs (target <= {args.max_ratio:.2f}x); "
                f"CPU (user + system) ours {ours_cpu:.3f} s, reference {peers_cpu:.3f} s, "
                f"ratio {statistics.median(cpu_ratios):.2f}x; "
                f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
            )
            read = [sample for sample in patchlevel if sample is not None]
            if read:
                _print_with_patchlevel(release, ours, peers, read)
    verdict = "within" if worst <= args.max_ratio else "OVER"
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"\nworst median ratio {worst:.2f}x: {verdict} the target {args.max_ratio:.2f}x against {REFERENCE}")
    return 0 if worst <= args.max_ratio else 1


if __name__ == "__main__":
    raise SystemExit(main())
