"""Every compare category and every piece of advice, each on a planted case that gives the evidence for it.

One row per (planted change, expected comparator, expected category, the advice the explanation must
give). The pairs are real: gcc-built ELF files and ``ar`` archives, real ``.pyc`` from ``py_compile``,
real configuration texts. Cases covered elsewhere are listed at the end, so the table is the index.
"""

from __future__ import annotations

import marshal
import py_compile
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from verify.compare.comparators import FilePair, explain
from verify.compare.engine import digest_only_verdict
from verify.compare.model import FileComparison
from verify.compare.recorded import recorded_inputs, with_recorded_inputs
from verify.manifest import ManifestEntry
from verify.pyc import parse_header

MODULE = "int answer(void) { return 42; }\n"
DATED = '#include <stdio.h>\nint main(void) { puts(__DATE__ " " __TIME__); return 0; }\n'
DATED_WITH_PATH = '#include <stdio.h>\nint main(void) { puts(__DATE__ " " __TIME__); puts(__FILE__); return 0; }\n'


def _gcc(directory: Path, source: str, output: str, *args: str, env: dict[str, str] | None = None) -> bytes:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "m.c").write_text(source)
    subprocess.run(
        ["gcc", *args, str(directory / "m.c"), "-o", output], cwd=directory, check=True, capture_output=True, env=env
    )
    return (directory / output).read_bytes()


def _elf(a: bytes, b: bytes, kind: str = "elf-shared-object") -> FilePair:
    return FilePair("lib/x.so", kind, kind, a, b)


def layout(tmp: Path) -> FilePair:
    """Data appended after the sections (as a tool that stamps binaries might do)."""
    built = _gcc(tmp, MODULE, "m.so", "-shared", "-fPIC")
    return _elf(built, built + b"\0" * 64)


def build_id_only(tmp: Path) -> FilePair:
    """Two links that differ only in the build-id they were given."""
    return _elf(
        _gcc(tmp / "a", MODULE, "m.so", "-shared", "-fPIC", "-Wl,--build-id=0x1111"),
        _gcc(tmp / "a", MODULE, "m.so", "-shared", "-fPIC", "-Wl,--build-id=0x2222"),
    )


def lto_random_seed(tmp: Path) -> FilePair:
    """LTO objects compiled twice in one place, the same way: without -frandom-seed GCC picks a random
    section-name suffix each time (a seed given on the command line would differ in ``.gnu.lto_.opts`` too)."""
    return _elf(_gcc(tmp, MODULE, "m.o", "-c", "-flto"), _gcc(tmp, MODULE, "m.o", "-c", "-flto"), "elf-relocatable")


def embedded_date(tmp: Path) -> FilePair:
    """__DATE__/__TIME__ under two SOURCE_DATE_EPOCH values, in one build directory."""
    return _elf(
        _gcc(tmp, DATED, "m", env={"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": "0"}),
        _gcc(tmp, DATED, "m", env={"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": "1700000000"}),
        "elf-executable",
    )


def embedded_date_and_path(tmp: Path) -> FilePair:
    """__DATE__ and an absolute __FILE__, built at two times in two directories."""
    return _elf(
        _gcc(tmp / "one", DATED_WITH_PATH, "m", env={"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": "0"}),
        _gcc(tmp / "two", DATED_WITH_PATH, "m", env={"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": "1700000000"}),
        "elf-executable",
    )


def _archive(tmp: Path, members: dict[str, tuple[str, tuple[str, ...]]]) -> bytes:
    """``ar rcs`` of objects compiled in ``tmp`` (name -> (source, gcc flags))."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name, (source, flags) in members.items():
        _gcc(tmp, source, name, "-c", *flags)
        (tmp / name).rename(tmp / f"keep-{name}")
    for name in members:
        (tmp / f"keep-{name}").rename(tmp / name)
    subprocess.run(["ar", "rcs", "lib.a", *members], cwd=tmp, check=True, capture_output=True)
    return (tmp / "lib.a").read_bytes()


def archive_code(tmp: Path) -> FilePair:
    """One member compiled with other optimisation."""
    return FilePair(
        "lib/libx.a",
        "static-archive",
        "static-archive",
        _archive(tmp / "a", {"m.o": (MODULE, ("-O0",))}),
        _archive(tmp / "b", {"m.o": (MODULE, ("-O2",))}),
    )


def archive_membership(tmp: Path) -> FilePair:
    """A member only one archive has."""
    return FilePair(
        "lib/libx.a",
        "static-archive",
        "static-archive",
        _archive(tmp / "a", {"m.o": (MODULE, ())}),
        _archive(tmp / "b", {"m.o": (MODULE, ()), "n.o": ("int n(void) { return 1; }\n", ())}),
    )


def archive_mixed(tmp: Path) -> FilePair:
    """A member added, and a member built under another path (debug info)."""
    return FilePair(
        "lib/libx.a",
        "static-archive",
        "static-archive",
        _archive(tmp / "a", {"m.o": (MODULE, ("-g",))}),
        _archive(tmp / "b", {"m.o": (MODULE, ("-g",)), "n.o": ("int n(void) { return 1; }\n", ())}),
    )


def _text(name: str, a: str, b: str, kind: str = "text") -> FilePair:
    return FilePair(name, kind, kind, a.encode(), b.encode())


def probed_features(tmp: Path) -> FilePair:
    """configure found a header in one environment only."""
    return _text(
        "include/python3.11/pyconfig.h",
        "#define HAVE_SEM_OPEN 1\n#define SIZEOF_INT 4\n",
        "/* #undef HAVE_SEM_OPEN */\n#define SIZEOF_INT 4\n",
    )


def settings(tmp: Path) -> FilePair:
    """Other compiler flags recorded in the installed Makefile."""
    return _text("lib/python3.11/config-3.11-x86_64-linux-gnu/Makefile", "OPT=-O2\nCC=gcc\n", "OPT=-O3\nCC=gcc\n")


def config_same_variables(tmp: Path) -> FilePair:
    """A Makefile whose variables agree: the lines are diffed as text."""
    return _text(
        "lib/python3.11/config-3.11-x86_64-linux-gnu/Makefile", "OPT=-O2\nall:\n\ttrue\n", "OPT=-O2\nall:\n\tfalse\n"
    )


def text_build_path(tmp: Path) -> FilePair:
    return _text("lib/python3.11/x.txt", "built in /build/one/Modules/x.c\n", "built in /build/two/Modules/x.c\n")


def text_whitespace(tmp: Path) -> FilePair:
    return _text("lib/python3.11/x.txt", "a\nb\n", "a\r\nb\r\n")


def text_content(tmp: Path) -> FilePair:
    return _text("lib/python3.11/x.txt", "a\nb\n", "a\nc\n")


def binary_build_path(tmp: Path) -> FilePair:
    return FilePair(
        "lib/x.bin",
        "data",
        "data",
        b"\x00\x01/build/one/Modules/x.c\x00\xff",
        b"\x00\x01/build/two/Modules/x.c\x00\xff",
    )


def binary_content(tmp: Path) -> FilePair:
    return FilePair("lib/x.bin", "data", "data", b"\x00\x01\x02\x03", b"\x00\x01\x02\x04")


def _pyc(tmp: Path, source: str, **kwargs: object) -> bytes:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "m.py").write_text(source)
    py_compile.compile(str(tmp / "m.py"), cfile=str(tmp / "m.pyc"), doraise=True, **kwargs)  # type: ignore[arg-type]
    return (tmp / "m.pyc").read_bytes()


def reference_flags_only(tmp: Path) -> FilePair:
    """The same code marshalled with and without reference flags (marshal version 2 writes none)."""
    data = _pyc(tmp, "A = ('x', 'x', 'y')\nB = 'x'\n", dfile="m.py")
    code = marshal.loads(data[16:])
    return FilePair("m.pyc", "pyc", "pyc", data, data[:16] + marshal.dumps(code, 2))


def path_only(tmp: Path) -> FilePair:
    """Compiled for two install paths (compileall -d)."""
    return FilePair(
        "m.pyc", "pyc", "pyc", _pyc(tmp, "X = 1\n", dfile="/opt/one/m.py"), _pyc(tmp, "X = 1\n", dfile="/opt/two/m.py")
    )


Case = tuple[str, Callable[[Path], FilePair], str, str, tuple[str, ...]]
CASES: list[Case] = [
    ("layout", layout, "elf", "layout", ("headers, padding or appended data",)),
    ("build-id-only", build_id_only, "elf", "build-id-only", ("compare the unstripped files",)),
    ("lto-random-seed", lto_random_seed, "elf", "lto-random-seed", ("-frandom-seed",)),
    ("embedded-date", embedded_date, "elf", "embedded-date", ("set SOURCE_DATE_EPOCH",)),
    (
        "embedded-date-and-path",
        embedded_date_and_path,
        "elf",
        "embedded-date-and-path",
        ("set SOURCE_DATE_EPOCH", "use a fixed build path"),
    ),
    ("archive code", archive_code, "static-archive", "code", ("1 of",)),
    ("archive membership", archive_membership, "static-archive", "membership", ("1 membership",)),
    ("archive mixed", archive_mixed, "static-archive", "mixed", ("membership",)),
    ("probed-features", probed_features, "config", "probed-features", ("the build environments differ",)),
    ("settings", settings, "config", "settings", ("configure arguments or compiler flags differ",)),
    ("config, same variables", config_same_variables, "config", "content", ("Makefile (same variables)",)),
    ("text build-path", text_build_path, "text", "build-path", ("use a fixed build path",)),
    ("text whitespace", text_whitespace, "text", "whitespace", ("line endings or a final newline",)),
    ("text content", text_content, "text", "content", ("1 line(s) differ",)),
    ("binary build-path", binary_build_path, "binary", "build-path", ("use a fixed build path",)),
    ("binary content", binary_content, "binary", "content", ("from byte 3",)),
    (
        "reference-flags-only",
        reference_flags_only,
        "pyc",
        "reference-flags-only",
        ("compile the .pyc files exactly as the Makefile does",),
    ),
    ("path-only", path_only, "pyc", "path-only", ("same install path/DESTDIR",)),
]
"""Covered elsewhere, on planted cases too: elf ``debug-info``, ``build-path``, ``code`` and archive
``debug-info`` (test_compare.py, gcc in two directories / two flag sets / two PGO profiles); pyc
``header-only``, ``semantic``, ``source-hash``, ``stale-source-hash``; config ``install-prefix`` (also
on a script) and ``build-path``; binary ``kind-changed``; digest ``pyc-header``; the recorded inputs'
PGO / pinned-profile advice (test_compare.py). The rest of the advice is below."""


@pytest.mark.parametrize(
    ("planted", "comparator", "category", "advice"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_each_category_on_its_planted_case(
    tmp_path: Path, planted: Callable[[Path], FilePair], comparator: str, category: str, advice: tuple[str, ...]
) -> None:
    pair = planted(tmp_path)
    assert pair.data_a != pair.data_b
    verdict = explain(pair)
    assert (verdict.comparator, verdict.category) == (comparator, category), verdict
    for fragment in advice:
        assert fragment in verdict.explanation, verdict.explanation


def test_the_reference_flags_case_is_what_it_claims(tmp_path: Path) -> None:
    """Equal headers and equal code, different bytes: only marshal's reference flags can differ."""
    pair = reference_flags_only(tmp_path)
    assert parse_header(pair.data_a) == parse_header(pair.data_b)
    assert marshal.loads(pair.data_a[16:]) == marshal.loads(pair.data_b[16:])
    assert pair.data_a[16:] != pair.data_b[16:]


def _entry(kind: str, size: int = 10) -> ManifestEntry:
    return ManifestEntry("lib/x", kind, 0o644, size, "0" * 64)


def test_digest_only_categories_say_they_saw_no_bytes() -> None:
    changed = digest_only_verdict(_entry("text"), _entry("elf-shared-object"))
    assert changed.category == "kind-changed" and "compare the install trees" in changed.explanation
    content = digest_only_verdict(_entry("data", 10), _entry("data", 12))
    assert content.category == "content" and "10 vs 12 bytes" in content.explanation


def test_unreadable_file_is_its_own_category(tmp_path: Path) -> None:
    from verify.compare.engine import explain_files

    (tmp_path / "a").write_bytes(b"x")
    verdict = explain_files("x", str(tmp_path / "a"), str(tmp_path / "missing"), "data", "data")
    assert verdict.category == "unreadable" and "could not be read" in verdict.explanation


def test_lto_advice_of_the_recorded_inputs() -> None:
    code = FileComparison("elf", "code", "code or data differ in .text", sections=(".text",))
    lto = {"recipe": {"configure": ["--with-lto"]}}
    verdict = with_recorded_inputs(code, recorded_inputs(lto, lto))
    assert verdict.category == "code" and "--with-lto: LTO partitioning or unseeded names" in verdict.explanation
    assert with_recorded_inputs(code, recorded_inputs({}, {})) == code, "no inputs, no advice"
