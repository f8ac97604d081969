"""How much of what ``make install`` installs an audit compared, per part, and whether that covers its subject. Pure.

An audit's green says "everything inside this installation is explained"; it is worth as much as what
was compared to reach it. This module says, for each part of a ``make install`` tree (the standard
library, the interpreter, libpython, the headers, the build configuration), how many files ``make
install`` installs, how many the input holds and how many were compared with independent evidence (the
verified source's bytes, or a rebuild's). Two rules turn that into part of the verdict
(``docs/audit.md#coverage``):

* nothing compared is never a pass;
* the subject of an audit is what it was given: a set of packages holds a share of an installation,
  and what the set lacks is "not in this package set"; anything else (a directory, an image, an
  archive) is an installation, and a file ``make install`` installs that is absent from it is a
  shortfall unless something accounts for it (the distribution ships it in another package, or the
  installation was configured without test modules).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from verify.audit.layout import GENERATED_PREFIXES, LIBRARY_DIRS, THIRD_PARTY_DIRS

STDLIB: Final = "stdlib"
INTERPRETER: Final = "interpreter"
LIBPYTHON: Final = "libpython"
HEADERS: Final = "headers"
CONFIG: Final = "config"
PARTS: Final = (STDLIB, INTERPRETER, LIBPYTHON, HEADERS, CONFIG)
"""The parts of what ``make install`` installs, in the order reports list them."""

PACKAGE_SET: Final = "package set"
INSTALLATION: Final = "installation"
"""What an audit's subject is: the share of an installation a set of packages holds, or a whole installation."""

SUBJECT_PARTS: Final = (STDLIB, HEADERS, INTERPRETER)
"""The parts whose absent files count against an installation: what ``make install`` installs of them does not
depend on how CPython was configured (libpython's form and the configuration files do)."""


def installation_part(prefix_rel: str, series: str, libdir: str) -> str | None:
    """Which part of a ``make install`` tree the prefix-relative ``prefix_rel`` is, or None (third-party, elsewhere).

    ``libdir`` is the library directory holding the standard library (``lib`` or ``lib64``). Inside
    ``LIBDIR/pythonX.Y``: ``config-X.Y*/libpythonX.Y*`` is libpython, the rest of ``config-X.Y*/``, the
    ``_sysconfigdata*`` / ``_sysconfig_vars*`` modules and ``build-details.json`` are config, the
    site-packages are third-party (None), everything else is the standard library. ``include/pythonX.Y``
    is the headers but for ``pyconfig.h`` (config); ``bin/pythonX[.Y][-config]`` the interpreter;
    ``libpythonX.Y*`` in a library directory or one of its subdirectories (Debian's multiarch) libpython.
    """
    parts = prefix_rel.split("/")
    if len(parts) > 2 and parts[0] == libdir and parts[1] == f"python{series}":
        top = parts[2]
        if top in THIRD_PARTY_DIRS:
            return None
        if top.startswith(f"config-{series}"):
            return LIBPYTHON if parts[-1].startswith(f"libpython{series}") else CONFIG
        if len(parts) == 3 and (top.startswith(GENERATED_PREFIXES) or top == "build-details.json"):
            return CONFIG
        return STDLIB
    if prefix_rel.startswith(f"include/python{series}/"):
        return CONFIG if prefix_rel == f"include/python{series}/pyconfig.h" else HEADERS
    major = series.split(".", 1)[0]
    if re.fullmatch(rf"bin/python(?:{re.escape(series)}|{major})[a-z]?(?:-config)?", prefix_rel):
        return INTERPRETER
    directory, _, name = prefix_rel.rpartition("/")
    if name.startswith(f"libpython{series}") and (
        directory in LIBRARY_DIRS or posixpath.dirname(directory) in LIBRARY_DIRS
    ):
        return LIBPYTHON
    return None


def counted(prefix_rel: str) -> bool:
    """Whether a file counts in the coverage: ``.pyc`` files are derived from their source (question 2)."""
    return not prefix_rel.endswith(".pyc")


def count_parts(paths: Iterable[str], series: str, libdir: str) -> dict[str, int]:
    """How many of the prefix-relative ``paths`` fall in each part (``.pyc`` and other files left out)."""
    counts = dict.fromkeys(PARTS, 0)
    for path in paths:
        part = installation_part(path, series, libdir)
        if part is not None and counted(path):
            counts[part] += 1
    return counts


@dataclass(frozen=True, slots=True)
class PartCoverage:
    """One part of what ``make install`` installs, as far as this audit saw and compared it."""

    part: str
    installs: int | None
    """Files ``make install`` installs of this part, as the verified source (stdlib, headers) or the rebuild of
    ``--against`` says; None when neither does (it depends on how CPython was configured)."""
    present: int
    """Files of this part in the input (``.pyc`` not counted: they are checked against their source)."""
    compared: int
    """Of those, how many were compared with independent evidence: the verified source, or the rebuild."""
    absent: int
    """Of ``installs``, how many are not in the input."""
    unaccounted: int
    """Of ``absent``, how many nothing accounts for: a shortfall when the subject is an installation."""
    how: str
    """One line: what "compared" means for this part here, or why nothing was."""


@dataclass(frozen=True, slots=True)
class AuditCoverage:
    """The audit's coverage of what ``make install`` installs, part by part, and of its subject."""

    subject: str
    """:data:`PACKAGE_SET` or :data:`INSTALLATION`."""
    parts: tuple[PartCoverage, ...]

    def part(self, name: str) -> PartCoverage:
        """The coverage of the part ``name`` (one of :data:`PARTS`)."""
        for part in self.parts:
            if part.part == name:
                return part
        raise KeyError(name)

    @property
    def compared(self) -> int:
        """Files compared with independent evidence, over every part."""
        return sum(part.compared for part in self.parts)

    @property
    def unaccounted(self) -> int:
        """Absent files nothing accounts for, over the parts that count against an installation."""
        if self.subject != INSTALLATION:
            return 0
        return sum(part.unaccounted for part in self.parts if part.part in SUBJECT_PARTS)

    def shortfalls(self) -> tuple[str, ...]:
        """Why this coverage does not support a pass, one line each (empty when it does)."""
        reasons: list[str] = []
        if self.compared == 0:
            reasons.append("nothing was compared with the verified source or a rebuild")
        if self.unaccounted:
            missing = ", ".join(
                f"{part.unaccounted:,} {part.part}"
                for part in self.parts
                if part.part in SUBJECT_PARTS and part.unaccounted
            )
            reasons.append(
                f"{self.unaccounted:,} file(s) make install installs are absent from this installation "
                f"and nothing accounts for them ({missing})"
            )
        return tuple(reasons)

    @property
    def sufficient(self) -> bool:
        """True when the coverage supports a pass: something was compared, and nothing of the subject is short."""
        return not self.shortfalls()


def rebuild_parts(paths: Iterable[str], series: str) -> dict[str, frozenset[str]] | None:
    """What a rebuild's ``make install`` installed, per part: the prefix-relative paths of its manifest's files
    (``paths``: relative to its root, directories left out), ``.pyc`` left out.

    The rebuild's prefix is where its standard library is (``PREFIX/LIBDIR/pythonX.Y/os.py``); None when
    the manifest has no standard library of this series.
    """
    listed = list(paths)
    for path in listed:
        for libdir in LIBRARY_DIRS:
            marker = f"{libdir}/python{series}/os.py"
            if path == marker or path.endswith("/" + marker):
                base = path[: -len(marker)]
                found: dict[str, set[str]] = {part: set() for part in PARTS}
                for full in listed:
                    relative = full[len(base) :]
                    part = installation_part(relative, series, libdir) if full.startswith(base) else None
                    if part is not None and counted(relative):
                        found[part].add(relative)
                return {part: frozenset(names) for part, names in found.items()}
    return None
