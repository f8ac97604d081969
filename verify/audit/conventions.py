"""Known packaging conventions, per distribution: what each one is and what it does. Pure data.

A convention explains a file that is neither in the signed source nor produced by ``make install``
(or a file that is absent), but only when the file has the exact form the table names: a
``sitecustomize.py`` that is a regular file, or a link to anywhere but ``/etc/pythonX.Y/``, is not
Debian's hook and stays unexplained. The table is documented in ``docs/audit.md``; a test keeps the
two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Convention:
    """One packaging convention of one distribution."""

    id: str
    distribution: str
    title: str
    effect: str
    """What it does to the interpreter's behaviour, in a sentence for the report."""


CONVENTIONS: Final = {
    convention.id: convention
    for convention in (
        Convention(
            "externally-managed", "debian", "PEP 668 EXTERNALLY-MANAGED marker",
            "pip refuses to install packages into this interpreter's environment outside a virtual environment; "
            "it changes no code that runs.",
        ),
        Convention(
            "sitecustomize-etc", "debian", "sitecustomize.py hook into /etc",
            "a startup hook: the site module imports sitecustomize at every interpreter start, so the file in "
            "/etc/pythonX.Y/ runs in every Python process; that file is configuration outside this audit.",
        ),
        Convention(
            "distutils-system-mod", "debian", "Debian's install-scheme module _distutils_system_mod.py",
            "imported by distutils and setuptools to install into /usr/local and dist-packages instead of "
            "site-packages.",
        ),
        Convention(
            "pic-static-library", "debian", "position-independent static libpython in the config directory",
            "a second static library for embedding; nothing runs it.",
        ),
        Convention(
            "idle-help-rebuilt", "debian", "IDLE's help page rebuilt from the documentation",
            "idlelib/help.html is regenerated from Doc/library/idle.rst at build time; it is HTML shown by "
            "IDLE's help viewer, not code.",
        ),
        Convention(
            "graminit-header", "debian", "an empty graminit.h kept for old C extensions",
            "an empty header, so that C extensions that still include it build; it holds no code.",
        ),
        Convention(
            "shebang-rewrite", "debian", "stdlib scripts' first line rewritten to the installed interpreter",
            "running such a module as a script uses /usr/bin/pythonX.Y instead of whatever python3 is on PATH; "
            "importing it is unaffected.",
        ),
        Convention(
            "split-packages", "debian", "stdlib split across several packages",
            "tests, tkinter, IDLE, distutils, lib2to3, ensurepip and turtledemo ship in their own packages; "
            "absent here, they are simply not importable.",
        ),
    )
}

DEBIAN_SPLIT: Final = (
    ("test-dir", "libpython{series}-testsuite"),
    ("idlelib", "idle-python{series}"),
    ("tkinter", "python3-tk"),
    ("turtledemo", "python{series}-examples"),
    ("distutils", "python3-distutils"),
    ("lib2to3", "python3-lib2to3"),
    ("ensurepip", "python{series}-venv"),
)
"""Where Debian ships the parts of the stdlib its core packages leave out (bookworm and later)."""


def debian_package_for(group: str, series: str) -> str:
    """The Debian package that ships the missing group ``group`` (a test directory or a top-level module)."""
    top = group.split("/", 1)[0]
    is_test = group.rsplit("/", 1)[-1] in ("test", "tests", "idle_test")
    for key, package in DEBIAN_SPLIT:
        if (key == "test-dir" and is_test) or key == top:
            return package.format(series=series)
    return ""


def explain_modified_file(stdlib_rel: str, distribution: str | None) -> str | None:
    """The convention id that explains why the stdlib file ``stdlib_rel`` differs from the source, if any."""
    if distribution == "debian" and stdlib_rel == "idlelib/help.html":
        return "idle-help-rebuilt"
    return None


def explain_extra(
    stdlib_rel: str, link_target: str | None, series: str, distribution: str | None, *, size: int | None = None
) -> str | None:
    """The convention id that explains the stdlib entry ``stdlib_rel`` (a link to ``link_target``), if any.

    Header paths are given as ``include/<rel>``; ``size`` is the file's size where the form depends on it.
    """
    if distribution != "debian":
        return None
    if stdlib_rel == "include/graminit.h" and link_target is None and size == 0:
        return "graminit-header"
    if stdlib_rel == "EXTERNALLY-MANAGED" and link_target is None:
        return "externally-managed"
    if stdlib_rel == "sitecustomize.py" and link_target == f"/etc/python{series}/sitecustomize.py":
        return "sitecustomize-etc"
    if stdlib_rel == "_distutils_system_mod.py" and link_target is None:
        return "distutils-system-mod"
    if re.fullmatch(rf"config-{re.escape(series)}[^/]*/libpython{re.escape(series)}-pic\.a", stdlib_rel):
        return "pic-static-library"
    return None
