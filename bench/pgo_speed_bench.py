"""How much faster is an optimized rebuild than a plain one? Ratios from one interleaved run.

Runs a fixed subset of pyperformance's benchmarks (their ``run_benchmark.py`` scripts, with pyperf)
under each rebuilt interpreter, alternating the interpreters round by round (one pyperf worker
process each per round) so that load on a shared machine falls on all of them alike. Each
interpreter's figure for a benchmark is its fastest round's mean, the round least disturbed by
other work; the ratio to the first interpreter (the reference, normally the plain build) above 1
is a speed-up.

The reference figures are the plain build's own times; nothing is compared across runs.

    pip download --no-deps --no-binary :all: pyperformance==1.11.0 && tar xzf pyperformance-1.11.0.tar.gz
    pip install --target pyperf-lib pyperf==2.9.0
    python bench/pgo_speed_bench.py --pyperf pyperf-lib \\
        --benchmarks pyperformance-1.11.0/pyperformance/data-files/benchmarks \\
        --python plain=RESULT_A/root/opt/python/bin/python3.13 \\
        --python pgo-lto=RESULT_B/root/opt/python/bin/python3.13
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Pure-Python benchmarks with no third-party dependency: interpreter loop, objects, floats, strings,
# json and regular expressions, the code paths PGO's training reaches.
BENCHMARKS = (
    "chaos", "deltablue", "fannkuch", "float", "go", "json_dumps",
    "nbody", "nqueens", "raytrace", "regex_v8", "richards", "spectral_norm",
)  # fmt: skip


def one_round(python: Path, script: Path, pyperf_dir: Path) -> float:
    """The mean seconds per iteration of one pyperf worker process running ``script`` under ``python``."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "result.json"
        env = {**os.environ, "PYTHONPATH": str(pyperf_dir)}
        command = [str(python), str(script), "--processes", "1", "--values", "3", "--warmups", "1",
                   "--quiet", "--output", str(output)]  # fmt: skip
        subprocess.run(command, env=env, check=True, cwd=script.parent, stdout=subprocess.DEVNULL)
        data = json.loads(output.read_text())
    values = [value for run in data["benchmarks"][0]["runs"] for value in run.get("values", [])]
    return statistics.mean(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", required=True, metavar="LABEL=PATH",
                        help="an interpreter to measure; the first is the reference")  # fmt: skip
    parser.add_argument("--benchmarks", type=Path, required=True, help="pyperformance's data-files/benchmarks")
    parser.add_argument("--pyperf", type=Path, required=True, help="a directory where pyperf is installed (--target)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per benchmark (one worker process each)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmark names")
    args = parser.parse_args()
    pythons = [(label, Path(path)) for label, _, path in (item.partition("=") for item in args.python)]
    names = [name for name in args.only.split(",") if name]
    means: dict[str, dict[str, float]] = {}
    for name in names:
        script = args.benchmarks / f"bm_{name}" / "run_benchmark.py"
        rounds: dict[str, list[float]] = {label: [] for label, _ in pythons}
        for _ in range(args.rounds):
            for label, python in pythons:
                rounds[label].append(one_round(python, script, args.pyperf))
        means[name] = {label: min(values) for label, values in rounds.items()}
        print(name, {label: f"{seconds * 1000:.2f} ms" for label, seconds in means[name].items()}, file=sys.stderr)
    reference = pythons[0][0]
    header = ["benchmark", *(f"{label} (ms)" for label, _ in pythons)]
    header += [f"{label} speed-up" for label, _ in pythons[1:]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    ratios: dict[str, list[float]] = {label: [] for label, _ in pythons[1:]}
    for name in names:
        row = [name, *(f"{means[name][label] * 1000:.1f}" for label, _ in pythons)]
        for label, _ in pythons[1:]:
            ratio = means[name][reference] / means[name][label]
            ratios[label].append(ratio)
            row.append(f"{ratio:.2f}x")
        print("| " + " | ".join(row) + " |")
    geometric = [f"{statistics.geometric_mean(values):.2f}x" for values in ratios.values()]
    print("| geometric mean | " + " | ".join("" for _ in pythons) + " | " + " | ".join(geometric) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
