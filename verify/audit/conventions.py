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
    source: str = ""
    """Where the distribution documents or implements it (a public URL or a repository path)."""


_DEBIAN_PACKAGING: Final = "Debian's python3.11 source package (bookworm): debian/rules, debian/control, debian/patches"
_ALPINE_APKBUILD: Final = "alpinelinux/aports: main/python3/APKBUILD (python3 3.12.5-r1)"
_ALPINE_MARKER: Final = "alpinelinux/aports: main/python3/externally-managed, installed by main/python3/APKBUILD"
_ARCH_PKGBUILD: Final = (
    "https://gitlab.archlinux.org/archlinux/packaging/packages/python: PKGBUILD "
    "(python 3.13.5-3; cgi.py's sed until cgi left the stdlib, e.g. 3.7.0-4)"
)

DEBIAN: Final = (
    Convention(
        "externally-managed",
        "debian",
        "PEP 668 EXTERNALLY-MANAGED marker",
        "pip refuses to install packages into this interpreter's environment outside a virtual environment; "
        "it changes no code that runs.",
        _DEBIAN_PACKAGING,
    ),
    Convention(
        "sitecustomize-etc",
        "debian",
        "sitecustomize.py hook into /etc",
        "a startup hook: the site module imports sitecustomize at every interpreter start, so the file in "
        "/etc/pythonX.Y/ runs in every Python process; that file is configuration outside this audit.",
        _DEBIAN_PACKAGING,
    ),
    Convention(
        "distutils-system-mod",
        "debian",
        "Debian's install-scheme module _distutils_system_mod.py",
        "imported by distutils and setuptools to install into /usr/local and dist-packages instead of site-packages.",
        _DEBIAN_PACKAGING,
    ),
    Convention(
        "pic-static-library",
        "debian",
        "position-independent static libpython in the config directory",
        "a second static library for embedding; nothing runs it.",
        _DEBIAN_PACKAGING,
    ),
    Convention(
        "idle-help-rebuilt",
        "debian",
        "IDLE's help page rebuilt from the documentation",
        "idlelib/help.html is regenerated from Doc/library/idle.rst at build time; it is HTML shown by "
        "IDLE's help viewer, not code.",
        _DEBIAN_PACKAGING,
    ),
    Convention(
        "graminit-header",
        "debian",
        "an empty graminit.h kept for old C extensions",
        "an empty header, so that C extensions that still include it build; it holds no code.",
        _DEBIAN_PACKAGING,
    ),
    Convention(
        "shebang-rewrite",
        "debian",
        "stdlib scripts' first line rewritten to the installed interpreter",
        "running such a module as a script uses /usr/bin/pythonX.Y instead of whatever python3 is on PATH; "
        "importing it is unaffected.",
        _DEBIAN_PACKAGING,
    ),
    Convention(
        "split-packages",
        "debian",
        "stdlib split across several packages",
        "tests, tkinter, IDLE, distutils, lib2to3, ensurepip and turtledemo ship in their own packages; "
        "absent here, they are simply not importable.",
        _DEBIAN_PACKAGING,
    ),
    Convention(
        "not-packaged",
        "debian",
        "stdlib files Debian does not package",
        "debian/rules deletes ctypes/macholib (the macOS Mach-O loader) and ensurepip's bundled wheels (Debian's "
        "ensurepip takes its wheels from /usr/share/python-wheels); absent, ctypes.macholib is not importable.",
        _DEBIAN_PACKAGING,
    ),
)

ALPINE: Final = (
    Convention(
        "externally-managed",
        "alpine",
        "PEP 668 EXTERNALLY-MANAGED marker (Alpine's, pointing to apk)",
        "pip refuses to install packages into this interpreter's environment outside a virtual environment "
        "and tells the user to use apk or a venv; it changes no code that runs.",
        _ALPINE_MARKER,
    ),
    Convention(
        "split-packages",
        "alpine",
        "stdlib split across several packages",
        "the test package (python3-tests), tkinter and idlelib (python3-tkinter), ensurepip and venv "
        "(python3-venv) ship in their own packages; absent here, they are simply not importable.",
        _ALPINE_APKBUILD,
    ),
)

ARCH: Final = (
    Convention(
        "externally-managed",
        "arch",
        "PEP 668 EXTERNALLY-MANAGED marker (Arch's, pointing to pacman)",
        "pip refuses to install packages into this interpreter's environment outside a virtual environment; "
        "it changes no code that runs.",
        _ARCH_PKGBUILD,
    ),
    Convention(
        "tools-scripts",
        "arch",
        "scripts from the source's Tools/ copied into the stdlib directory",
        "Tools/i18n/msgfmt.py, Tools/i18n/pygettext.py and Tools/scripts/ are installed under "
        "lib/pythonX.Y/Tools/ (FS#46146) byte for byte as in the verified source; they run only when "
        "someone runs them, and nothing imports them.",
        _ARCH_PKGBUILD,
    ),
    Convention(
        "cgi-shebang",
        "arch",
        "cgi.py's first line rewritten to /usr/bin/python",
        "running cgi.py as a script uses /usr/bin/python instead of /usr/local/bin/python (FS#23997); "
        "importing it is unaffected.",
        _ARCH_PKGBUILD,
    ),
    Convention(
        "split-packages",
        "arch",
        "the test suite in its own package",
        "test and idlelib/idle_test ship in python-tests; absent here, they are simply not importable.",
        _ARCH_PKGBUILD,
    ),
)

TABLES: Final[dict[str, dict[str, Convention]]] = {
    name: {convention.id: convention for convention in table}
    for name, table in (("debian", DEBIAN), ("alpine", ALPINE), ("arch", ARCH))
}
"""Each distribution's documented convention table (docs/audit.md), by the ``ID`` its os-release gives."""

DISTRIBUTIONS: Final = tuple(TABLES)


def convention_of(distribution: str | None, convention_id: str) -> Convention | None:
    """The convention ``convention_id`` of ``distribution``'s table; None when that table has none."""
    return TABLES.get(distribution or "", {}).get(convention_id)


SPLIT_PACKAGES: Final = {
    # Debian: bookworm and later, from the binary packages' file lists.
    "debian": (
        ("test-dir", "libpython{series}-testsuite"),
        ("idlelib", "idle-python{series}"),
        ("tkinter", "python3-tk"),
        ("turtledemo", "python{series}-examples"),
        ("distutils", "python3-distutils"),
        ("lib2to3", "python3-lib2to3"),
        ("ensurepip", "python{series}-venv"),
        ("headers", "libpython{series}-dev"),
        ("interpreter", "python{series}-minimal"),
    ),
    # Alpine: APKBUILD's package() removes idlelib and tkinter ("provided by python3-tkinter"),
    # tests() moves usr/lib/pythonX.Y/test, venv() moves ensurepip and venv.
    "alpine": (
        ("test", "python3-tests"),
        ("idlelib", "python3-tkinter"),
        ("tkinter", "python3-tkinter"),
        ("ensurepip", "python3-venv"),
        ("venv", "python3-venv"),
        ("headers", "python3-dev"),
    ),
    # Arch: package_python() removes {test,idlelib/idle_test}; package_python-tests() keeps test.
    "arch": (
        ("test", "python-tests"),
        ("idlelib/idle_test", "python-tests"),
    ),
}
"""Where each distribution ships the parts of the stdlib its core package leaves out.

A key is a top-level module, a test directory's group (``idlelib/idle_test``), ``test-dir``: any
test directory, ``headers`` (``include/pythonX.Y``) or ``interpreter`` (``bin/pythonX.Y``)."""

CORE_PACKAGES: Final = {
    # Debian: python3.X-minimal holds bin/python3.X, libpython3.X-minimal the core of the stdlib
    # (os, site, encodings...), libpython3.X-stdlib the rest.
    "debian": ("libpython{series}-stdlib", "libpython{series}-minimal", "python{series}-minimal"),
    "alpine": ("python3",),
    "arch": ("python",),
}
"""The packages of each distribution that hold the standard library and the interpreter: what an input
holding neither must add."""


def core_packages(distribution: str | None, series: str) -> tuple[str, ...]:
    """The packages ``distribution`` ships the standard library and the interpreter in (empty: no table)."""
    return tuple(package.format(series=series) for package in CORE_PACKAGES.get(distribution or "", ()))


NOT_PACKAGED: Final = {
    # debian/rules (bookworm's python3.11): rm -rf .../ctypes/macholib ("remove files, which are not
    # packaged"); rm -rf .../ensurepip/_bundled ("don't ship the prebuilt ensurepip/_bundled wheels").
    "debian": ("ctypes/macholib", "ensurepip/_bundled"),
}
"""Stdlib directories (stdlib-relative) a distribution deletes from its installation and ships in no package."""


def not_packaged(distribution: str | None, stdlib_rel: str) -> str | None:
    """The directory of :data:`NOT_PACKAGED` that ``stdlib_rel`` lies in for ``distribution``, if any."""
    for directory in NOT_PACKAGED.get(distribution or "", ()):
        if stdlib_rel.startswith(directory + "/"):
            return directory
    return None


def package_for(distribution: str | None, group: str, series: str) -> str:
    """The package of ``distribution`` that ships the missing group ``group`` (a test directory or a module)."""
    top = group.split("/", 1)[0]
    is_test = group.rsplit("/", 1)[-1] in ("test", "tests", "idle_test")
    for key, package in SPLIT_PACKAGES.get(distribution or "", ()):
        if (key == "test-dir" and is_test) or key in (group, top):
            return package.format(series=series)
    return ""


_ARCH_CGI_SHEBANG: Final = re.compile(rb"^#.* /usr/local/bin/python")
"""The PKGBUILD's ``sed -e "s|^#.* /usr/local/bin/python|#!/usr/bin/python|" Lib/cgi.py`` (FS#23997)."""


def _arch_cgi_rewrite(upstream: bytes) -> bytes:
    """``upstream`` as Arch's sed leaves it: each matching comment line's start replaced."""
    return b"".join(
        _ARCH_CGI_SHEBANG.sub(b"#!/usr/bin/python", line, count=1) for line in upstream.splitlines(keepends=True)
    )


def explain_modified_file(
    stdlib_rel: str, distribution: str | None, *, upstream: bytes | None = None, installed: bytes | None = None
) -> str | None:
    """The convention id that explains why the stdlib file ``stdlib_rel`` differs from the source, if any.

    ``upstream`` and ``installed`` are both sides' bytes, for conventions that are an exact edit.
    """
    if distribution == "debian" and stdlib_rel == "idlelib/help.html":
        return "idle-help-rebuilt"
    if (
        distribution == "arch"
        and stdlib_rel == "cgi.py"
        and upstream is not None
        and installed is not None
        and upstream != installed
        and _arch_cgi_rewrite(upstream) == installed
    ):
        return "cgi-shebang"
    return None


ARCH_TOOLS: Final = re.compile(r"Tools/(?:i18n/(?:msgfmt|pygettext)\.py|scripts/(?:README|[^/]+\.py))")
"""What package_python() installs from the source's Tools/ into lib/pythonX.Y/Tools/ (FS#46146)."""


def copied_from_source(stdlib_rel: str, link_target: str | None, distribution: str | None) -> tuple[str, str] | None:
    """``(convention id, source path)`` when a convention copies ``stdlib_rel`` verbatim from the source tree.

    The caller compares the bytes: a copy that differs from the verified source is not explained.
    """
    if distribution == "arch" and link_target is None and ARCH_TOOLS.fullmatch(stdlib_rel):
        return "tools-scripts", stdlib_rel
    return None


def explain_extra(
    stdlib_rel: str, link_target: str | None, series: str, distribution: str | None, *, size: int | None = None
) -> str | None:
    """The convention id that explains the stdlib entry ``stdlib_rel`` (a link to ``link_target``), if any.

    Header paths are given as ``include/<rel>``; ``size`` is the file's size where the form depends on it.
    """
    if distribution in ("alpine", "arch"):
        # Both install their marker file with install -Dm644 into usr/lib/pythonX.Y/.
        return "externally-managed" if stdlib_rel == "EXTERNALLY-MANAGED" and link_target is None else None
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
