"""What the two sides' recorded inputs add to a comparator's verdict: the build directories and the
optimisation flags.

A comparator sees only bytes, and a byte string that looks like a path pair is weak evidence on its
own. When both sides are rebuild results (or manifests with inputs), the record says where each was
built and how: two builds in the same directory cannot differ by their build path, and two PGO builds
whose code differs most likely trained different profiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from verify.compare.model import FileComparison

BINARY_COMPARATORS: Final = ("elf", "static-archive")
_WITHOUT_PATH: Final = {"build-path": "code", "embedded-date-and-path": "embedded-date"}
"""An ELF category that blames a build path, and what it is when the build paths are known to be equal."""


@dataclass(frozen=True, slots=True)
class RecordedInputs:
    """The facts about both sides that bear on why their binaries differ (None: not recorded)."""

    build_dirs: tuple[str, str] | None = None
    pgo: bool = False
    """At least one side was configured with ``--enable-optimizations``."""
    lto: bool = False
    """At least one side was configured with ``--with-lto``."""
    shared_profile: str | None = None
    """The sha256 of the pinned PGO profile both sides reused, when they did."""

    @property
    def same_build_dir(self) -> bool:
        """True when both sides are recorded as built in the same directory."""
        return self.build_dirs is not None and self.build_dirs[0] == self.build_dirs[1]


def _build_dir(inputs: Mapping[str, Any]) -> str | None:
    settings = inputs.get("settings")
    value = settings.get("build_dir") if isinstance(settings, Mapping) else None
    return value if isinstance(value, str) and value else None


def _configure(inputs: Mapping[str, Any]) -> list[str]:
    recipe = inputs.get("recipe")
    flags = recipe.get("configure") if isinstance(recipe, Mapping) else None
    return [flag for flag in flags if isinstance(flag, str)] if isinstance(flags, list | tuple) else []


def recorded_inputs(a: Mapping[str, Any], b: Mapping[str, Any]) -> RecordedInputs:
    """Read the two sides' ``inputs`` (a rebuild record's or a manifest's; either may be empty)."""
    dir_a, dir_b = _build_dir(a), _build_dir(b)
    flags = _configure(a) + _configure(b)
    profile_a, profile_b = a.get("pgo_profile_sha256"), b.get("pgo_profile_sha256")
    return RecordedInputs(
        build_dirs=(dir_a, dir_b) if dir_a and dir_b else None,
        pgo="--enable-optimizations" in flags,
        lto=any(flag == "--with-lto" or flag.startswith("--with-lto=") for flag in flags),
        shared_profile=profile_a if isinstance(profile_a, str) and profile_a == profile_b else None,
    )


def with_recorded_inputs(verdict: FileComparison, recorded: RecordedInputs) -> FileComparison:
    """``verdict`` corrected and completed by what the inputs say.

    - Built in the same directory: a binary's difference is never a build path; the category becomes
      ``code`` (or ``embedded-date``) and the pair is dropped.
    - A ``code`` difference of a binary in an optimised build names the likely cause: different PGO
      profiles, or LTO.
    """
    if verdict.comparator not in BINARY_COMPARATORS:
        return verdict
    if recorded.same_build_dir and verdict.build_paths is not None:
        assert recorded.build_dirs is not None
        where = ", ".join(verdict.sections[:6]) or "the members' code or data"
        category = _WITHOUT_PATH.get(verdict.category, verdict.category)
        explanation = verdict.explanation
        if category != verdict.category:
            explanation = (
                f"code or data differ in {where} although both sides were built in {recorded.build_dirs[0]}: "
                f"not a build path (the path-like strings {verdict.build_paths[0]} vs {verdict.build_paths[1]} "
                "are chance bytes)"
            )
        verdict = replace(verdict, category=category, explanation=explanation, build_paths=None)
    if verdict.category == "code":
        cause = _likely_cause(recorded)
        if cause:
            verdict = replace(verdict, explanation=f"{verdict.explanation}; {cause}")
    return verdict


def _likely_cause(recorded: RecordedInputs) -> str | None:
    if recorded.pgo and recorded.shared_profile:
        return (
            f"both sides reused the pinned PGO profile {recorded.shared_profile[:12]}, so not the profile: "
            "look at LTO partitioning or the compiler"
        )
    if recorded.pgo:
        return (
            "the inputs show --enable-optimizations: each PGO build compiles with the profile of its own "
            "training run, so different profiles (.gcda) are the likely cause; reuse one pinned profile "
            "(--pgo-profile) to remove it"
        )
    if recorded.lto:
        return "the inputs show --with-lto: LTO partitioning or unseeded names (-frandom-seed) are a likely cause"
    return None


def comparison_build_paths(recorded: RecordedInputs, guessed: tuple[str, str] | None) -> tuple[str, str] | None:
    """The build-path pair of a whole comparison: the recorded directories when known (None when
    equal), else the pair most differing files embed."""
    if recorded.build_dirs is None:
        return guessed
    return None if recorded.same_build_dir else recorded.build_dirs
