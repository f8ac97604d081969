"""Reproduce docs/reproducibility.md: release x profile x variations -> identical / explained / differs.

For each release and profile it runs the real command a user runs,

    cpython-verify rebuild VERSION --profile PROFILE --twice --vary VARY [--bisect] --from DIR --offline

then reads the published result through the one record model and prints one Markdown table row:
the verdict, how many paths differ, the comparator categories of the content differences (what a
recipe's expectation must name), the variations the recipe declares inapplicable to the profile and
skipped, the culprits (with --bisect) and the wall time of the run.

    .venv/bin/python bench/reproducibility_bench.py --from ../shared/fixtures/cpython \\
        --release 3.13.5 --release 3.11.2:--allow-missing=openpgp --profile default --vary all

A release may carry extra source options after a colon (comma-separated), e.g. ``3.11.2:--allow-missing=openpgp``.
Every build is cached (--cache), so a second run of the script only re-verifies and re-compares.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verify.result import ResultDir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="from_dir", required=True, type=Path, help="directory of release files")
    parser.add_argument("--release", action="append", required=True, help="VERSION[:--opt=value,...] (repeatable)")
    parser.add_argument("--profile", action="append", help="recipe profile (repeatable; default: default)")
    parser.add_argument("--vary", default="all", help="variations for the second build (default: all)")
    parser.add_argument("--bisect", action="store_true", help="name the culprit variations of any difference")
    parser.add_argument("--cache", type=Path, default=None, help="cache root (default: the tool's)")
    parser.add_argument("--out", type=Path, default=Path("reproducibility-results"), help="where results go")
    arguments = parser.parse_args()

    print(
        "| release | profile | varied | skipped | verdict | differing paths | content categories | culprits "
        "| wall time |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    failed = False
    for release in arguments.release:
        version, _, extra = release.partition(":")
        for profile in arguments.profile or ["default"]:
            out = arguments.out / f"{version}-{profile}"
            command = [
                sys.executable, "-m", "verify", "rebuild", version, "--profile", profile, "--twice",
                "--vary", arguments.vary, "--from", str(arguments.from_dir), "--offline", "--out", str(out),
                *(["--bisect"] if arguments.bisect else []),
                *(["--cache", str(arguments.cache)] if arguments.cache else []),
                *(part for option in extra.split(",") if option for part in option.split("=", 1)),
            ]  # fmt: skip
            started = time.monotonic()
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
            seconds = time.monotonic() - started
            if completed.returncode == 2:
                failed = True
                reason = (completed.stderr.strip().splitlines() or ["?"])[-1]
                print(f"| {version} | {profile} | {arguments.vary} | | error: {reason} | | | | {seconds:.0f} s |")
                continue
            check = ResultDir.open(out).read_record().reproducibility
            assert check is not None
            verdict = "identical" if check.reproducible else "explained" if check.explained else "differs"
            culprits = ", ".join(name for name, guilty in sorted(check.culprits.items()) if guilty) or "-"
            categories: dict[str, int] = {}
            for difference in check.differences:
                if "content" in difference.changes:
                    key = f"{difference.category or 'unclassified'}{'' if difference.explained else ' (unexplained)'}"
                    categories[key] = categories.get(key, 0) + 1
            tally = ", ".join(f"{count} {name}" for name, count in sorted(categories.items())) or "-"
            skipped = ", ".join(sorted(check.skipped)) or "-"
            print(f"| {version} | {profile} | {', '.join(check.variations)} | {skipped} | {verdict} | "
                  f"{len(check.differences)} | {tally} | {culprits} | {seconds:.0f} s |")  # fmt: skip
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
