"""Question 1: every installed file that comes from the source, byte for byte, and every other file explained.

The model of what ``make install`` installs comes from the verified source itself
(:mod:`verify.audit.layout`); the explanations from :mod:`verify.audit.explain` and
:mod:`verify.audit.conventions`. This module is the I/O around them: it lists both trees and reads
the bytes it compares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verify.audit.conventions import (
    copied_from_source,
    explain_extra,
    explain_modified_file,
    not_packaged,
    package_for,
)
from verify.audit.explain import explain_modified, split_lines
from verify.audit.files import regular_files, resolve_link, tree_entries
from verify.audit.layout import (
    DISABLE_TEST_MODULES,
    FIXED_COPIES,
    LIBRARY_DIRS,
    THIRD_PARTY_DIRS,
    copied_from_lib,
    extension_module_name,
    extension_modules,
    generated_reason,
    install_subdirs,
    makefile_variable,
    missing_group,
    tests_need_test_modules,
)
from verify.audit.model import UNEXPLAINED_MODIFIED, AuditError, Finding, MissingGroup, SourceAudit
from verify.audit.patches import FilePatch, Patch
from verify.common.limits import AUDIT_DIFF_MAX_LINES, AUDIT_DIFF_MAX_LINES_PER_FILE
from verify.common.linediff import unified_diff

_ELF_MAGIC = b"\x7fELF"
SOURCE_PARTS = (
    "Lib/",
    "Include/",
    "Modules/Setup",
    "Modules/xxmodule.c",
    "Makefile.pre.in",
    "setup.py",
    "LICENSE",
    "Tools/i18n/",
    "Tools/scripts/",
)
"""The parts of a source tree the audit reads: unpacking only these saves most of the unpacking time.

``Tools/`` is there for the conventions that copy scripts from it (Arch's ``tools-scripts``)."""


@dataclass(frozen=True, slots=True)
class SourceModel:
    """What the verified source says an installation of it contains."""

    stdlib: dict[str, str]
    """Stdlib-relative path -> source-relative path of every file ``make install`` copies into the stdlib."""
    headers: dict[str, str]
    """``include/pythonX.Y``-relative path -> source-relative path (``Include/...``)."""
    extensions: frozenset[str]
    """Extension module names the source can build."""
    test_only: frozenset[str] = frozenset()
    """Stdlib-relative paths ``make install`` copies only because their directory is in ``TESTSUBDIRS``."""
    tests_optional: bool = False
    """True when the source's ``libinstall`` copies ``TESTSUBDIRS`` only if ``TEST_MODULES`` is ``yes`` (3.10+):
    an installation configured ``--disable-test-modules`` has none of :attr:`test_only`."""


def read_source_model(source_tree: Path) -> SourceModel:
    """Read ``Makefile.pre.in``, ``Lib/``, ``Include/`` and the module lists of the verified source tree."""
    lib = source_tree / "Lib"
    makefile = source_tree / "Makefile.pre.in"
    if not lib.is_dir():
        raise AuditError(f"no Lib/ directory in the source tree {source_tree}")
    try:
        makefile_text = makefile.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        # A tree without its Makefile (a test's partial unpack): fall back to every file under Lib/.
        makefile_text = None
    lib_files = [rel for rel, _ in regular_files(lib)]
    test_only: set[str] = set()
    if makefile_text is None:
        copied = {rel for rel in lib_files if not rel.endswith((".pyc", ".pyo"))}
    else:
        copied = copied_from_lib(lib_files, install_subdirs(makefile_text))
        test_only = copied - copied_from_lib(lib_files, makefile_variable(makefile_text, "LIBSUBDIRS"))
    stdlib = {rel: f"Lib/{rel}" for rel in copied}
    for installed, origin in FIXED_COPIES.items():
        parent = installed.rpartition("/")[0]
        if (source_tree / origin).is_file() and (not parent or parent in {r.rpartition("/")[0] for r in copied}):
            stdlib[installed] = origin
    include = source_tree / "Include"
    # inclinstall copies the headers (*.h) of Include/ and its subdirectories, nothing else.
    headers = {}
    if include.is_dir():
        headers = {rel: f"Include/{rel}" for rel, _ in regular_files(include) if rel.endswith(".h")}
    modules = source_tree / "Modules"
    setup_texts = (
        [p.read_text(encoding="utf-8", errors="replace") for p in sorted(modules.glob("Setup*")) if p.is_file()]
        if modules.is_dir()
        else []
    )
    setup_py = source_tree / "setup.py"
    setup_text = setup_py.read_text(encoding="utf-8", errors="replace") if setup_py.is_file() else ""
    return SourceModel(
        stdlib,
        headers,
        frozenset(extension_modules(setup_texts, setup_text)),
        frozenset(test_only),
        makefile_text is not None and tests_need_test_modules(makefile_text),
    )


def _patch_index(patches: Sequence[Patch]) -> dict[str, list[tuple[str, FilePatch]]]:
    index: dict[str, list[tuple[str, FilePatch]]] = {}
    for patch in patches:
        for file_patch in patch.files:
            index.setdefault(file_patch.path, []).append((patch.name, file_patch))
    return index


@dataclass
class _Comparison:
    """The running state of one audit of the files from the source."""

    prefix: Path
    install_prefix: str
    source_tree: Path
    patch_index: dict[str, list[tuple[str, FilePatch]]]
    interpreters: frozenset[str]
    distribution: str | None = None
    checked: int = 0
    identical: int = 0

    def __post_init__(self) -> None:
        self.diff_lines = 0
        self.compared: list[str] = []
        self.modified: list[Finding] = []
        self.extra: list[Finding] = []
        self.expected: list[Finding] = []

    def installed_bytes(self, shown: str, link: str | None) -> bytes | None:
        """The bytes behind ``shown`` (following a link inside the prefix); None when a link leaves it."""
        if link is None:
            return (self.prefix / shown).read_bytes()
        resolved = resolve_link(self.prefix, self.install_prefix, shown, link)
        if resolved is None or not (self.prefix / resolved).is_file():
            return None
        return (self.prefix / resolved).read_bytes()

    def compare(self, shown: str, link: str | None, origin: str, label: str) -> bool:
        """Compare the installed ``shown`` with the source file ``origin``; True when they are identical."""
        self.checked += 1
        self.compared.append(shown)
        mine = self.installed_bytes(shown, link)
        if mine is None:
            self.modified.append(Finding(shown, "modified", f"a link to {link}, outside the installation"))
            return False
        theirs = (self.source_tree / origin).read_bytes()
        if mine == theirs:
            self.identical += 1
            return True
        explanation = explain_modified(
            split_lines(theirs), split_lines(mine), self.patch_index.get(origin, []), self.interpreters
        )
        detail = explanation.detail.replace("against Lib/", f"against {label}")
        convention = (
            explain_modified_file(origin.removeprefix("Lib/"), self.distribution, upstream=theirs, installed=mine)
            if origin.startswith("Lib/")
            else None
        )
        if not explanation.explained and convention is not None:
            self.modified.append(Finding(shown, "convention", detail, explanation.patches, convention=convention))
            return False
        diff, diff_note = (
            self.bounded_diff(theirs, mine, origin, shown) if explanation.status in UNEXPLAINED_MODIFIED else ((), "")
        )
        self.modified.append(
            Finding(
                shown,
                explanation.status,
                detail,
                explanation.patches,
                explanation.transform,
                diff=diff,
                diff_note=diff_note,
            )
        )
        return False

    def bounded_diff(self, theirs: bytes, mine: bytes, origin: str, shown: str) -> tuple[tuple[str, ...], str]:
        """The unified diff of the source's ``origin`` against the installed ``shown``, and what was left out.

        Each file's diff is cut at :data:`~verify.common.limits.AUDIT_DIFF_MAX_LINES_PER_FILE` lines and all of them
        together at :data:`~verify.common.limits.AUDIT_DIFF_MAX_LINES`, so that a hostile installation cannot fill
        memory or a report; what was cut is said, never silently dropped.
        """
        if b"\0" in theirs or b"\0" in mine:
            return (), "no diff: not a text file"
        try:
            upstream, installed = theirs.decode("utf-8"), mine.decode("utf-8")
        except UnicodeDecodeError:
            return (), "no diff: not UTF-8 text"
        left = AUDIT_DIFF_MAX_LINES - self.diff_lines
        if left <= 0:
            return (), f"no diff kept: the audit keeps at most {AUDIT_DIFF_MAX_LINES:,} diff lines in all"
        lines = list(unified_diff(upstream.splitlines(), installed.splitlines(), f"a/{origin}", f"b/{shown}"))
        keep = min(len(lines), AUDIT_DIFF_MAX_LINES_PER_FILE, left)
        self.diff_lines += keep
        if keep == len(lines):
            return tuple(lines), ""
        return tuple(lines[:keep]), (
            f"{len(lines) - keep:,} of its {len(lines):,} diff lines cut (at most "
            f"{AUDIT_DIFF_MAX_LINES_PER_FILE:,} per file, {AUDIT_DIFF_MAX_LINES:,} in all)"
        )

    def copied_by_convention(self, shown: str, rel: str, link: str | None) -> bool:
        """True (and recorded) when a convention copies ``rel`` from the source tree and the source has it.

        The copy is compared byte for byte like a file from ``Lib/``: identical, it is expected (the
        convention named); different, it is a modified file that only a patch or transform can explain.
        """
        copied = copied_from_source(rel, link, self.distribution)
        if copied is None or not (self.source_tree / copied[1]).is_file():
            return False
        convention, origin = copied
        if self.compare(shown, link, origin, f"{origin} of the source"):
            self.expected.append(
                Finding(shown, "convention", f"identical to {origin} of the verified source", convention=convention)
            )
        return True

    def added_by_patch(self, shown: str, link: str | None, origin: str) -> bool:
        """True (and recorded) when a patch of the series creates ``origin`` with exactly the installed lines."""
        candidates = [(name, fp) for name, fp in self.patch_index.get(origin, []) if fp.creates]
        if not candidates or link is not None:
            return False
        explanation = explain_modified([], split_lines((self.prefix / shown).read_bytes()), candidates, frozenset())
        if explanation.status != "patched":
            return False
        self.expected.append(
            Finding(shown, "added-by-patch", f"added by {', '.join(explanation.patches)}", explanation.patches)
        )
        return True


def audit_sources(
    prefix: Path,
    series: str,
    source_tree: Path,
    *,
    install_prefix: str = "",
    patches: Sequence[Patch] = (),
    distribution: str | None = None,
    model: SourceModel | None = None,
    libdir: str,
    package_set: bool = False,
    without_test_modules: bool = False,
) -> SourceAudit:
    """Every stdlib and header file under ``prefix`` against the verified ``source_tree``, each difference explained.

    ``install_prefix`` is where ``prefix`` lives on its own system (``/usr``; default: ``prefix``),
    used for absolute links and to recognise the installation's own interpreter in a shebang.
    ``libdir`` is the library directory whose ``pythonX.Y`` is the stdlib (``lib`` or ``lib64``); the
    site-packages of the other one's ``pythonX.Y`` are counted as third-party too.
    ``package_set`` says the input is a set of packages (absent files are "not in this package set"),
    not an installation (absent files are "not installed"); ``without_test_modules`` that the installation
    was configured ``--disable-test-modules``, which accounts for absent test directories where the source's
    ``make install`` honours it.
    """
    model = model or read_source_model(source_tree)
    install_prefix = install_prefix or str(prefix)
    base = install_prefix.rstrip("/")
    major = series.split(".", 1)[0]
    interpreters = frozenset({f"{base}/bin/python{series}", f"{base}/bin/python{major}"})
    run = _Comparison(prefix, install_prefix, source_tree, _patch_index(patches), interpreters, distribution)
    stdlib_base = f"{libdir}/python{series}"
    installed = dict(tree_entries(prefix / stdlib_base))
    third_party: Counter[str] = Counter(_other_site_packages(prefix, series, libdir))
    dynload: list[str] = []
    for rel in sorted(installed):
        link = installed[rel]
        shown = f"{stdlib_base}/{rel}"
        parts = rel.split("/")
        if parts[0] in ("site-packages", "dist-packages") and len(parts) > 1:
            third_party[parts[0]] += 1
            continue
        if rel.endswith(".pyc"):
            continue  # question 2
        origin = model.stdlib.get(rel)
        if origin is not None:
            run.compare(shown, link, origin, "Lib/" if origin.startswith("Lib/") else origin)
            continue
        convention = explain_extra(rel, link, series, distribution)
        reason = generated_reason(rel, series)
        if run.added_by_patch(shown, link, f"Lib/{rel}"):
            pass  # a patch of the series is the most precise explanation there is
        elif run.copied_by_convention(shown, rel, link):
            pass
        elif convention is not None:
            run.expected.append(
                Finding(shown, "convention", f"see the {distribution} conventions", convention=convention)
            )
        elif reason is not None:
            run.expected.append(Finding(shown, "generated", reason))
        elif (
            parts[0] == "lib-dynload"
            and len(parts) == 2
            and link is None
            and _is_extension(prefix / shown, parts[1], model.extensions)
        ):
            dynload.append(shown)
        else:
            what = f"a link to {link}" if link is not None else "a file"
            run.extra.append(
                Finding(shown, "extra", f"{what} that is neither in the verified source nor made by make install")
            )
    status = "not-in-package-set" if package_set else "not-installed"
    # Lib/site-packages/README.txt is make install's too, but the site-packages are third-party, not the stdlib.
    absent_stdlib = sorted(
        rel for rel in model.stdlib.keys() - installed.keys() if rel.split("/", 1)[0] not in THIRD_PARTY_DIRS
    )
    removed = {rel: directory for rel in absent_stdlib if (directory := not_packaged(distribution, rel)) is not None}
    missing = [Finding(f"{stdlib_base}/{rel}", status, removed.get(rel) or missing_group(rel)) for rel in absent_stdlib]
    include_base = f"include/python{series}"
    headers = dict(tree_entries(prefix / include_base))
    _audit_headers(run, series, headers, model)
    missing += [
        Finding(f"{include_base}/{rel}", status, "headers") for rel in sorted(model.headers.keys() - headers.keys())
    ]
    if dynload:
        run.expected.append(
            Finding(
                f"{stdlib_base}/lib-dynload",
                "generated",
                f"{len(dynload)} extension module(s) the source's Modules/ builds",
            )
        )
    run.expected.extend(
        Finding(
            directory if "/" in directory else f"{stdlib_base}/{directory}",
            "third-party",
            f"{count} file(s): site packages, not the stdlib",
        )
        for directory, count in sorted(third_party.items())
    )
    tests_left_out = without_test_modules and model.tests_optional
    test_groups = {missing_group(rel) for rel in absent_stdlib if rel in model.test_only and rel not in removed}
    other_groups = {missing_group(rel) for rel in absent_stdlib if rel not in model.test_only and rel not in removed}
    groups = Counter(finding.detail for finding in missing)
    missing_groups = tuple(
        _missing_group(
            group,
            count,
            package_for(distribution, group, series),
            distribution,
            removed=group in removed.values(),
            left_out_by_configure=tests_left_out and group in test_groups and group not in other_groups,
        )
        for group, count in sorted(groups.items())
    )
    return SourceAudit(
        checked=run.checked,
        identical=run.identical,
        modified=tuple(sorted(run.modified, key=lambda f: f.path)),
        missing=tuple(missing),
        extra=tuple(sorted(run.extra, key=lambda f: f.path)),
        expected_extra=tuple(sorted(run.expected, key=lambda f: f.path)),
        missing_groups=missing_groups,
        compared=tuple(run.compared),
    )


def _missing_group(
    group: str, count: int, package: str, distribution: str | None, *, removed: bool, left_out_by_configure: bool
) -> MissingGroup:
    """A group of absent files, with what accounts for their absence (the distribution deletes them, the
    package that ships them, or the configure option that leaves them out), if anything does."""
    if removed:
        return MissingGroup(group, count, "", f"not packaged: {distribution}'s rules delete it", "not-packaged")
    if package:
        return MissingGroup(group, count, package, f"ships in {package}", "split-packages")
    if left_out_by_configure:
        return MissingGroup(
            group, count, "", f"configured {DISABLE_TEST_MODULES}: make install leaves the test directories out"
        )
    return MissingGroup(group, count)


def _other_site_packages(prefix: Path, series: str, libdir: str) -> Counter[str]:
    """Files in the site-packages of the ``pythonX.Y`` of the library directories other than ``libdir``.

    Fedora's ``lib/python3.X/site-packages`` beside its ``lib64`` stdlib: on ``sys.path``, third-party.
    Keyed by prefix-relative directory; a linked directory on the way is not followed.
    """
    counts: Counter[str] = Counter()
    for other in LIBRARY_DIRS:
        if other == libdir:
            continue
        for name in sorted(THIRD_PARTY_DIRS):
            relative = f"{other}/python{series}/{name}"
            steps = [prefix / other, prefix / other / f"python{series}"]
            if any(step.is_symlink() for step in steps):
                continue
            counts[relative] += sum(1 for _ in tree_entries(prefix / relative))
    return +counts


def _audit_headers(run: _Comparison, series: str, headers: dict[str, str | None], model: SourceModel) -> None:
    """``include/pythonX.Y`` against ``Include/``; an installation without headers has nothing to compare."""
    include_base = f"include/python{series}"
    for rel, link in sorted(headers.items()):
        shown = f"{include_base}/{rel}"
        origin = model.headers.get(rel)
        if origin is not None:
            run.compare(shown, link, origin, "Include/")
        elif rel == "pyconfig.h":
            run.expected.append(Finding(shown, "generated", "written by configure"))
        elif (
            convention := explain_extra(
                f"include/{rel}", link, series, run.distribution, size=(run.prefix / shown).lstat().st_size
            )
        ) is not None:
            run.expected.append(
                Finding(shown, "convention", f"see the {run.distribution} conventions", convention=convention)
            )
        else:
            run.extra.append(Finding(shown, "extra", "a header that is not in the verified source's Include/"))


def _is_extension(path: Path, name: str, known: frozenset[str]) -> bool:
    """An ELF shared object named after an extension module the source builds."""
    module = extension_module_name(name)
    if module is None or module not in known:
        return False
    with path.open("rb") as stream:
        return stream.read(4) == _ELF_MAGIC
