"""What ``make install`` puts into an installation, read from the verified source's own build files. Pure.

``libinstall`` copies every top-level ``Lib/*.py`` and every file of the directories named in
``LIBSUBDIRS`` and ``TESTSUBDIRS`` of ``Makefile.pre.in`` (except ``*.py[co]``, ``*.orig``, ``*~``
and ``CVS``), then ``LICENSE`` as ``LICENSE.txt``; ``inclinstall`` copies ``Include/``. Everything
else it writes is generated at build time (sysconfigdata, ``.pyc``, extension modules, the
``config-X.Y`` directory, ``pyconfig.h``). These functions turn the Makefile text and the source's
file list into that model; the audit compares an installation with it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Final

_VARIABLE_RE: Final = r"^{name}=((?:.*\\\n)*.*)$"
_REFERENCE_RE: Final = re.compile(r"\$\((\w+)\)")
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo", ".orig", "~", "CVS")
FIXED_COPIES: Final = {"LICENSE.txt": "LICENSE", "distutils/tests/xxmodule.c": "Modules/xxmodule.c"}
"""Stdlib files ``libinstall`` copies from outside ``Lib/``: installed name -> source path."""

THIRD_PARTY_DIRS: Final = frozenset({"site-packages", "dist-packages"})
"""Third-party locations inside the stdlib directory: their contents are not the stdlib."""

LIBRARY_DIRS: Final = ("lib", "lib64")
"""Where ``make install`` can put ``pythonX.Y`` under the prefix: ``$(PLATLIBDIR)``, ``lib`` unless configured
``--with-platlibdir`` (Fedora, RHEL and openSUSE choose ``lib64``). The first is preferred when both qualify."""

STDLIB_MARKERS: Final = frozenset({"os.py", "lib-dynload"})
"""Names only a standard library directory holds: a ``lib/pythonX.Y`` beside a ``lib64/pythonX.Y`` may hold
site-packages (Fedora puts pure-Python packages there) or stray files, but never these."""

GENERATED_PREFIXES: Final = ("_sysconfigdata", "_sysconfig_vars")
"""Modules ``make install`` generates at build time: not in ``Lib/``, expected in every installation."""

CONFIG_DIR_FILES: Final = frozenset(
    {
        "Makefile",
        "Setup",
        "Setup.bootstrap",
        "Setup.local",
        "Setup.stdlib",
        "config.c",
        "config.c.in",
        "install-sh",
        "makesetup",
        "python-config.py",
        "python.o",
    }
)
"""What ``libainstall`` writes into ``config-X.Y*`` besides libpython itself."""

_MODULE_LINE_RE: Final = re.compile(r"^(?:@MODULE_\w+_TRUE@)?\s*([A-Za-z_][\w.]*)\s+\S", re.M)
_EXTENSION_RE: Final = re.compile(r"Extension\(\s*['\"]([\w.]+)['\"]")
_EXT_SUFFIX_RE: Final = re.compile(r"^([A-Za-z_]\w*)(?:\.(?:cpython-\d+[a-z]*(?:-[\w-]+)?|abi3))?\.so$")


def makefile_variable(text: str, name: str) -> list[str]:
    """The words of the Makefile variable ``name``, line continuations joined and ``$(VAR)`` expanded."""
    match = re.search(_VARIABLE_RE.format(name=re.escape(name)), text, re.M)
    if match is None:
        return []
    words: list[str] = []
    for word in match.group(1).replace("\\\n", " ").split():
        reference = _REFERENCE_RE.fullmatch(word)
        if reference is not None and reference.group(1) != name:
            words += makefile_variable(text, reference.group(1))
        elif reference is None:
            words.append(word)
    return words


def install_subdirs(makefile_text: str) -> tuple[str, ...]:
    """``LIBSUBDIRS`` then ``TESTSUBDIRS``: the ``Lib/`` directories whose files ``make install`` copies."""
    return tuple(makefile_variable(makefile_text, "LIBSUBDIRS") + makefile_variable(makefile_text, "TESTSUBDIRS"))


_TEST_MODULES_GATE: Final = re.compile(
    r'if test "\$\(TEST_MODULES\)" = yes; then\s*\\\s*\n\s*subdirs="\$\(LIBSUBDIRS\) \$\(TESTSUBDIRS\)"'
)


def tests_need_test_modules(makefile_text: str) -> bool:
    """True when ``libinstall`` copies ``TESTSUBDIRS`` only if ``TEST_MODULES`` is ``yes`` (3.10+): configured
    ``--disable-test-modules``, ``make install`` leaves the test directories out."""
    return _TEST_MODULES_GATE.search(makefile_text) is not None


DISABLE_TEST_MODULES: Final = "--disable-test-modules"
"""The configure option that sets ``TEST_MODULES`` to ``no``."""


def copied_from_lib(lib_files: Iterable[str], subdirs: Iterable[str]) -> set[str]:
    """The ``Lib/``-relative paths of ``lib_files`` that ``libinstall`` copies, given its ``subdirs``."""
    wanted = set(subdirs)
    copied = set()
    for rel in lib_files:
        directory, _, name = rel.rpartition("/")
        if name.endswith(_SKIPPED_SUFFIXES):
            continue
        if (directory == "" and name.endswith(".py")) or directory in wanted:
            copied.add(rel)
    return copied


def extension_modules(setup_texts: Iterable[str], setup_py: str = "") -> set[str]:
    """Extension module names declared in ``Modules/Setup*`` files and ``setup.py``'s ``Extension(...)``."""
    names: set[str] = set(_EXTENSION_RE.findall(setup_py))
    for text in setup_texts:
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "*")) or "=" in stripped.split()[0]:
                continue
            match = _MODULE_LINE_RE.match(line)
            if match is not None:
                names.add(match.group(1))
    return names


def extension_module_name(filename: str) -> str | None:
    """``_ssl`` for ``_ssl.cpython-311-x86_64-linux-gnu.so``; None when the name is not an extension's."""
    match = _EXT_SUFFIX_RE.match(filename)
    return match.group(1) if match else None


def generated_reason(stdlib_rel: str, series: str) -> str | None:
    """Why ``make install`` writes the stdlib file ``stdlib_rel`` itself (None when it does not)."""
    directory, _, name = stdlib_rel.rpartition("/")
    if not directory and name.startswith(GENERATED_PREFIXES):
        return "build configuration written by make install"
    if not directory and name == "build-details.json":
        return "build description written by make install (PEP 739)"
    if directory == "lib2to3" and name.endswith(".pickle"):
        return "lib2to3 grammar pickled at install time"
    top = stdlib_rel.split("/", 1)[0]
    libpython = re.fullmatch(rf"libpython{re.escape(series)}[a-z]*\.(a|so(\.[\d.]+)?)", name)
    if top.startswith(f"config-{series}") and directory == top and (name in CONFIG_DIR_FILES or libpython):
        return "written by make install into the config directory (libainstall)"
    return None


def in_test_dir(stdlib_rel: str) -> str | None:
    """The test directory ``stdlib_rel`` lies in (``test``, ``ctypes/test``, ``idlelib/idle_test``), or None."""
    parts = stdlib_rel.split("/")[:-1]
    for depth, part in enumerate(parts):
        if part in ("test", "tests", "idle_test"):
            return "/".join(parts[: depth + 1])
    return None


def missing_group(stdlib_rel: str) -> str:
    """The group a file absent from an installation is counted under: its test directory or top-level module."""
    test_dir = in_test_dir(stdlib_rel)
    if test_dir is not None:
        return test_dir
    return stdlib_rel.split("/", 1)[0].removesuffix(".py")


def stdlib_candidates(listings: Mapping[str, Collection[str]]) -> tuple[str, ...]:
    """The library directories whose ``pythonX.Y`` holds a standard library, given the names in each.

    ``listings`` maps a library directory (``lib``, ``lib64``) to the names in its ``pythonX.Y``. A
    directory with nothing but site-packages holds none. When several hold more, those with a
    :data:`STDLIB_MARKERS` name are kept: one left is the answer, several are ambiguous (the caller asks).
    """
    holding = [
        libdir
        for libdir in LIBRARY_DIRS
        if libdir in listings and any(name not in THIRD_PARTY_DIRS for name in listings[libdir])
    ]
    if len(holding) > 1:
        marked = [libdir for libdir in holding if STDLIB_MARKERS & set(listings[libdir])]
        holding = marked or holding
    return tuple(holding)


def installation_scope(prefix_rel: str, series: str, libdir: str) -> str | None:
    """Which part of the installation ``prefix_rel`` belongs to, or None when it lies outside it.

    Parts: ``stdlib`` (``LIBDIR/pythonX.Y``, ``libdir`` being where the standard library is),
    ``third-party`` (the site-packages of ``lib/pythonX.Y`` or ``lib64/pythonX.Y``: both are on
    ``sys.path`` when the stdlib is in ``lib64``), ``headers`` (``include/pythonX.Y``), ``interpreter``
    (``bin/pythonX[.Y][-config]``), ``libpython`` (in ``lib`` or ``lib64``, or a subdirectory of either).
    """
    major = series.split(".", 1)[0]
    parts = prefix_rel.split("/")
    if len(parts) > 2 and parts[0] in LIBRARY_DIRS and parts[1] == f"python{series}":
        if parts[2] in THIRD_PARTY_DIRS:
            return "third-party"
        return "stdlib" if parts[0] == libdir else None
    if prefix_rel.startswith(f"include/python{series}/"):
        return "headers"
    if prefix_rel in {
        f"bin/python{series}",
        f"bin/python{major}",
        f"bin/python{series}-config",
        f"bin/python{major}-config",
    }:
        return "interpreter"
    directory, _, name = prefix_rel.rpartition("/")
    if name.startswith(f"libpython{series}") and (
        directory in LIBRARY_DIRS or posixpath.dirname(directory) in LIBRARY_DIRS
    ):
        return "libpython"
    return None
