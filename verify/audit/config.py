"""Question 4: which ``CONFIG_ARGS`` the installation recorded, so it can be rebuilt "like this installation"."""

from __future__ import annotations

from pathlib import Path

from verify.compare.comparators.config import sysconfig_vars


def read_config_args(stdlib: Path) -> tuple[str | None, str | None]:
    """``CONFIG_ARGS`` and the name of the ``_sysconfigdata*.py`` that holds it; (None, None) if none does."""
    for candidate in sorted(stdlib.glob("_sysconfigdata*.py")):
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        variables = sysconfig_vars(text)
        if variables and isinstance(variables.get("CONFIG_ARGS"), str):
            return str(variables["CONFIG_ARGS"]), candidate.name
    return None, None
