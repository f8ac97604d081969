"""Run diffoscope on the differing files only, with a time and an output cap per file."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_TIMEOUT: Final = 120.0
DEFAULT_MAX_OUTPUT: Final = 200_000
DEFAULT_BUDGET: Final = 600.0


@dataclass(frozen=True, slots=True)
class DiffoscopeSettings:
    """Caps for ``--diffoscope``: seconds per file, characters of output per file, seconds in total."""

    timeout: float = DEFAULT_TIMEOUT
    max_output: int = DEFAULT_MAX_OUTPUT
    budget: float = DEFAULT_BUDGET
    program: str = "diffoscope"


def find_diffoscope(settings: DiffoscopeSettings) -> str | None:
    """The diffoscope executable, or None when it is not installed."""
    return shutil.which(settings.program)


def run_diffoscope(program: str, a: Path, b: Path, settings: DiffoscopeSettings) -> str:
    """diffoscope's text report on one pair, cut to ``settings.max_output`` characters.

    A timeout or a crash of diffoscope becomes a line in the result, never an exception: diffoscope is
    an optional second opinion.
    """
    command = [
        program,
        "--text",
        "-",
        "--no-progress",
        "--max-text-report-size",
        str(settings.max_output),
        "--timeout",
        str(int(settings.timeout)),
        str(a),
        str(b),
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, timeout=settings.timeout + 30, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return f"[diffoscope did not finish within {settings.timeout + 30:.0f} s]"
    except OSError as error:
        return f"[diffoscope could not run: {error.strerror or error}]"
    # diffoscope exits 0 (identical) or 1 (different); anything else is its own failure.
    text = completed.stdout.decode("utf-8", "replace")
    if completed.returncode not in (0, 1):
        last = completed.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        text = f"[diffoscope failed with exit {completed.returncode}: {last[0]}]\n" + text
    if len(text) > settings.max_output:
        text = text[: settings.max_output] + f"\n[... cut at {settings.max_output} characters]"
    return text


def run_all(pairs: list[tuple[str, Path, Path]], settings: DiffoscopeSettings) -> tuple[dict[str, str], list[str]]:
    """diffoscope output per path, and notes (not installed, budget exhausted)."""
    program = find_diffoscope(settings)
    if program is None:
        return {}, ["--diffoscope: diffoscope is not installed (Debian package diffoscope-minimal); skipped"]
    results: dict[str, str] = {}
    notes: list[str] = []
    deadline = time.monotonic() + settings.budget
    for index, (path, a, b) in enumerate(pairs):
        if time.monotonic() > deadline:
            notes.append(
                f"--diffoscope: time budget of {settings.budget:.0f} s used up; {len(pairs) - index} file(s) not run"
            )
            break
        results[path] = run_diffoscope(program, a, b, settings)
    return results, notes
