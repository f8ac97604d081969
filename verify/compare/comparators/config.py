"""Build configuration files: ``_sysconfigdata*.py`` (and 3.14's ``_sysconfig_vars_*.json``), the installed
``Makefile``, ``pyconfig.h``.

They differ by key, so they are compared by key: which variables changed and to what. Build paths
(``abs_builddir``, ``abs_srcdir``) and features configure probed (``HAVE_*``) are named as such.
"""

from __future__ import annotations

import ast
import re
from typing import Final

from verify.common.jsonutil import loads_bounded
from verify.common.limits import CONFIG_TEXT_MAX_BYTES, SYSCONFIGDATA_MAX_BYTES
from verify.compare.comparators.interface import Comparator, Declined, FilePair, capped
from verify.compare.comparators.text import replaced_everywhere, text_difference
from verify.compare.model import FileComparison
from verify.compare.paths import guess_build_paths
from verify.manifest import SYSCONFIGDATA, TEXT_KINDS

MAX_VALUE_CHARS: Final = 300
_MAKE_ASSIGNMENT: Final = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)\s*[:+?]?=\s?(.*)$")
_DEFINE: Final = re.compile(r"^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+(.*?))?\s*$")
_UNDEF: Final = re.compile(r"^\s*/\*\s*#\s*undef\s+([A-Za-z_][A-Za-z0-9_]*)\s*\*/\s*$")


def install_prefix_pair(vars_a: dict[str, object], vars_b: dict[str, object]) -> tuple[str, str] | None:
    """The two ``prefix`` values when both sides record one and they differ."""
    prefix_a, prefix_b = vars_a.get("prefix"), vars_b.get("prefix")
    if isinstance(prefix_a, str) and isinstance(prefix_b, str) and prefix_a != prefix_b and prefix_a and prefix_b:
        return prefix_a, prefix_b
    return None


def _only_prefix_differs(value_a: object, value_b: object, prefixes: tuple[str, str]) -> bool:
    """True when ``value_b`` is ``value_a`` with the prefix replaced (a key that records the prefix)."""
    if not isinstance(value_a, str) or not isinstance(value_b, str):
        return False
    return value_a.replace(prefixes[0], prefixes[1]) == value_b


def sysconfig_vars(text: str) -> dict[str, object] | None:
    """``build_time_vars`` of a sysconfigdata module, read with ``ast.literal_eval`` (never executed).

    None when the text is not such a module, or is larger than :data:`~verify.common.limits.SYSCONFIGDATA_MAX_BYTES`:
    ``ast`` costs hundreds of bytes per source byte, so a 4 MB file took 1.9 GB.
    """
    if len(text) > SYSCONFIGDATA_MAX_BYTES:
        return None
    try:
        module = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    for node in module.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "build_time_vars"
        ):
            try:
                value = ast.literal_eval(node.value)
                # str() of an int key past the interpreter's digit limit raises ValueError too.
                return {str(k): v for k, v in value.items()} if isinstance(value, dict) else None
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                return None
    return None


def sysconfig_json_vars(text: str) -> dict[str, object] | None:
    """The variables of 3.14's ``_sysconfig_vars_*.json`` (one JSON object), or None when it is not one."""
    if len(text) > SYSCONFIGDATA_MAX_BYTES:
        return None
    try:
        value = loads_bounded(text)
    except ValueError:
        return None
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else None


def makefile_vars(text: str) -> dict[str, object]:
    """Variable assignments of a Makefile (continuation lines joined; later assignments win)."""
    joined = re.sub(r"\\\n", " ", text)
    found: dict[str, object] = {}
    for line in joined.splitlines():
        match = _MAKE_ASSIGNMENT.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def pyconfig_vars(text: str) -> dict[str, object]:
    """``#define`` values of ``pyconfig.h``; ``/* #undef X */`` counts as undefined (None)."""
    found: dict[str, object] = {}
    for line in text.splitlines():
        defined = _DEFINE.match(line)
        if defined:
            found[defined.group(1)] = defined.group(2) or ""
            continue
        undefined = _UNDEF.match(line)
        if undefined:
            found[undefined.group(1)] = None
    return found


def _shown(value: object, convert: type[str] | None = None) -> str:
    # repr/str of an int past sys.get_int_max_str_digits() raises ValueError: a literal_eval'd hex literal
    # in a hostile sysconfigdata can be that large.
    try:
        return repr(value) if convert is None else convert(value)
    except ValueError:
        return "<a value too large to show>"


def _short(value: object) -> str:
    text = _shown(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


class ConfigComparator(Comparator):
    """Key-by-key comparison of sysconfigdata, the installed Makefile and pyconfig.h."""

    name = "config"

    def recognizes(self, pair: FilePair) -> bool:
        if pair.kind_a == SYSCONFIGDATA and pair.kind_b == SYSCONFIGDATA:
            return True
        texts = pair.kind_a in TEXT_KINDS and pair.kind_b in TEXT_KINDS
        return texts and (pair.name in ("Makefile", "pyconfig.h") or pair.name.endswith(".mk"))

    def compare(self, pair: FilePair) -> FileComparison | Declined | None:
        budget = SYSCONFIGDATA_MAX_BYTES if pair.kind_a == SYSCONFIGDATA else CONFIG_TEXT_MAX_BYTES
        if max(len(pair.data_a), len(pair.data_b)) > budget:
            return Declined(f"larger than the {budget >> 10} KiB budget for reading configuration key by key")
        text_a = pair.data_a.decode("utf-8", "replace")
        text_b = pair.data_b.decode("utf-8", "replace")
        if pair.kind_a == SYSCONFIGDATA:
            what = "sysconfigdata"
            read = sysconfig_json_vars if pair.name.endswith(".json") else sysconfig_vars
            vars_a, vars_b = read(text_a), read(text_b)
            if vars_a is None or vars_b is None:
                return text_difference(pair, self.name, "sysconfigdata (not a plain build_time_vars dict)")
        elif pair.name == "pyconfig.h":
            what, vars_a, vars_b = "pyconfig.h", pyconfig_vars(text_a), pyconfig_vars(text_b)
        else:
            what, vars_a, vars_b = "Makefile", makefile_vars(text_a), makefile_vars(text_b)
        keys = sorted(k for k in vars_a.keys() | vars_b.keys() if vars_a.get(k, _MISSING) != vars_b.get(k, _MISSING))
        if not keys:
            # Same variables: the difference is in rules, comments or order; show the lines.
            return text_difference(pair, self.name, f"{what} (same variables)")
        lines = [f"{k}: {_short(vars_a.get(k, '<absent>'))} -> {_short(vars_b.get(k, '<absent>'))}" for k in keys]
        details, truncated = capped(lines)
        values_a = [_shown(vars_a[k], str) for k in keys if k in vars_a]
        values_b = [_shown(vars_b[k], str) for k in keys if k in vars_b]
        build_paths = guess_build_paths(values_a, values_b)
        probed = [k for k in keys if k.startswith(("HAVE_", "WITH_", "SIZEOF_", "POSIX_SEMAPHORES", "USE_"))]
        prefixes = install_prefix_pair(vars_a, vars_b)
        path_keys = [k for k in keys if build_paths and (build_paths[0] in _shown(vars_a.get(k, ""), str))]
        shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
        if probed:
            category = "probed-features"
            explanation = (
                f"{what}: configure probed different features ({', '.join(probed[:6])}): the build environments "
                "differ (missing /dev/shm, devpts, headers or libraries in one of them)"
            )
        elif prefixes is not None and all(_only_prefix_differs(vars_a.get(k), vars_b.get(k), prefixes) for k in keys):
            # A different --prefix is a different installation, not a build path leaking into it: the
            # prefix is meant to be recorded, and building under one fixed path would change nothing.
            category = "install-prefix"
            build_paths = prefixes
            explanation = (
                f"{what}: configured with --prefix {prefixes[0]} vs {prefixes[1]}; {len(keys)} key(s) record the "
                f"installation prefix ({shown}): configure both with the same --prefix to compare them"
            )
        elif build_paths is not None and len(path_keys) == len(keys) and replaced_everywhere(pair, build_paths):
            category = "build-path"
            explanation = (
                f"{what}: {len(keys)} key(s) embed build path {build_paths[0]} vs {build_paths[1]} ({shown}); "
                "use a fixed build path (-ffile-prefix-map is not enough: the flag itself lands here)"
            )
        else:
            category = "settings"
            explanation = f"{what}: {len(keys)} key(s) differ ({shown}): configure arguments or compiler flags differ"
            if build_paths is not None:
                explanation += f"; build path {build_paths[0]} vs {build_paths[1]} also differs"
        return FileComparison(self.name, category, explanation, details, (), build_paths, truncated)


class _Missing:
    """A value no variable can have, so an absent key never equals a present one."""


_MISSING: Final = _Missing()
