"""The comparison engine on real inputs: gcc-built ELF pairs, a real stdlib tree, real .pyc files."""

from __future__ import annotations

import json
import py_compile
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from verify.compare import compare_paths, diff_manifests
from verify.compare.comparators import FilePair, explain
from verify.manifest import Manifest, scan_tree, write_manifest
from verify.report.compare import comparison_to_json, render_html

HOST_STDLIB = Path("/usr/lib/python3.11")
PROGRAM = "#include <stdio.h>\nint main(void) { puts(__FILE__); return 0; }\n"
LIBRARY = "int answer(void) { return 42; }\n"


def _build_twice(tmp_path: Path, source: str, args: list[str], output: str) -> tuple[Path, Path]:
    """Compile the same file in two build directories (the reproducibility bug under test)."""
    results = []
    for name in ("build-one", "build-two"):
        directory = tmp_path / name
        directory.mkdir()
        (directory / "t.c").write_text(source)
        subprocess.run(["gcc", *args, "t.c", "-o", output], cwd=directory, check=True, capture_output=True)
        results.append(directory / output)
    return results[0], results[1]


def _pair(a: Path, b: Path, kind_a: str, kind_b: str) -> FilePair:
    return FilePair(a.name, kind_a, kind_b, a.read_bytes(), b.read_bytes())


def test_elf_pair_names_build_paths_and_dwarf_sections(tmp_path: Path) -> None:
    a, b = _build_twice(tmp_path, LIBRARY, ["-g", "-O1", "-fPIC", "-shared"], "libt.so")
    assert a.read_bytes() != b.read_bytes()
    verdict = explain(_pair(a, b, "elf-shared-object", "elf-shared-object"))
    assert verdict.comparator == "elf"
    assert verdict.category == "debug-info"
    assert verdict.build_paths == (str(tmp_path / "build-one"), str(tmp_path / "build-two"))
    assert any(section.startswith(".debug_") for section in verdict.sections)
    assert ".text" not in verdict.sections
    assert f"build path {tmp_path / 'build-one'} vs {tmp_path / 'build-two'}" in verdict.explanation
    assert any(line.startswith("DW_AT_comp_dir:") for line in verdict.details)
    assert any(line.startswith("build-id:") for line in verdict.details)


def test_elf_path_in_code_is_not_called_debug_info(tmp_path: Path) -> None:
    # __FILE__ with an absolute path puts the build path into .rodata: code/data, not debug info.
    results = []
    for name in ("one", "two"):
        directory = tmp_path / name
        directory.mkdir()
        (directory / "t.c").write_text(PROGRAM)
        subprocess.run(["gcc", str(directory / "t.c"), "-o", "t"], cwd=directory, check=True, capture_output=True)
        results.append(directory / "t")
    verdict = explain(_pair(results[0], results[1], "elf-executable", "elf-executable"))
    assert verdict.category == "build-path"
    assert ".rodata" in verdict.sections
    assert verdict.build_paths == (str(tmp_path / "one"), str(tmp_path / "two"))


# Machine code reads like text by chance: 0x482f762f is "/v/H" in memory, and x86 prologues
# (push %r13; push %r12; push %rbp) read "AUATUH". The old guess paired such bytes into "/v/H vs /v/HAUATUH"
# and called a PGO build's code difference a build path.
OPTIMISED_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static const char *names[] = {"alpha", "bravo", "charlie", "delta"};
static unsigned table[256];
unsigned mix(unsigned x) { for (int i = 0; i < 7; i++) x = (x * 2654435761u) ^ (x >> 13) ^ table[x & 255]; return x; }
int compare(const void *a, const void *b) { return strcmp(*(const char **)a, *(const char **)b); }
int main(int argc, char **argv) {
    for (int i = 0; i < 256; i++) table[i] = mix(i + 0x482f762fu);
    unsigned total = 0;
    for (int i = 1; i < argc; i++) total += mix(strtoul(argv[i], NULL, 0));
    qsort(names, 4, sizeof *names, compare);
    if (argc > 5) printf("%s\n", names[total & 3]); else printf("%u %s\n", total, names[0]);
    return 0;
}
"""


def _same_path_builds(tmp_path: Path, *builds: list[list[str]]) -> list[bytes]:
    """Build prog.c in one directory once per entry (each a list of command lines), keeping each result."""
    directory = tmp_path / "build"
    directory.mkdir()
    (directory / "prog.c").write_text(OPTIMISED_PROGRAM)
    results = []
    for commands in builds:
        for gcda in directory.glob("*.gcda"):
            gcda.unlink()
        for argv in commands:
            subprocess.run(argv, cwd=directory, check=True, capture_output=True)
        results.append((directory / "prog").read_bytes())
    return results


@pytest.mark.parametrize("how", ["optimisation flags", "two PGO profiles"])
def test_code_differences_under_one_build_path_are_code_not_a_build_path(tmp_path: Path, how: str) -> None:
    """Planted case: the same source, in the same directory, compiled two ways."""
    compile_ = ["gcc", "-g", "-O2", "-o", "prog", "prog.c"]
    if how == "optimisation flags":
        builds = [[["gcc", "-g", "-O1", "-o", "prog", "prog.c"]], [[*compile_, "-O3", "-funroll-loops"]]]
    else:
        instrumented = [*compile_, "-fprofile-generate"]
        optimised = [*compile_, "-fprofile-use", "-fprofile-correction", "-Wno-missing-profile"]
        builds = [[instrumented, ["./prog", *"1234567"], optimised],
                  [instrumented, *(["./prog", digit] for digit in "123456789"), optimised]]  # fmt: skip
    a, b = _same_path_builds(tmp_path, *builds)
    assert a != b
    verdict = explain(FilePair("opt/python/bin/prog", "elf-executable", "elf-executable", a, b))
    assert verdict.category == "code", verdict.explanation
    assert verdict.build_paths is None and "build path" not in verdict.explanation
    assert ".text" in verdict.sections


def test_recorded_inputs_correct_and_complete_a_binarys_verdict() -> None:
    from verify.compare.model import FileComparison
    from verify.compare.recorded import comparison_build_paths, recorded_inputs, with_recorded_inputs

    def inputs(build_dir: str, *configure: str, profile: str | None = None) -> dict[str, object]:
        return {"settings": {"build_dir": build_dir}, "recipe": {"configure": list(configure)},
                "pgo_profile_sha256": profile}  # fmt: skip

    guessed = FileComparison("elf", "build-path", "code/data sections .text embed build path /v vs /v/H",
                             sections=(".text", ".rodata"), build_paths=("/v", "/v/H"))  # fmt: skip
    pgo = recorded_inputs(inputs("/build/cpython", "--enable-optimizations", "--with-lto"),
                          inputs("/build/cpython", "--enable-optimizations", "--with-lto"))  # fmt: skip
    verdict = with_recorded_inputs(guessed, pgo)
    assert verdict.category == "code" and verdict.build_paths is None
    assert "both sides were built in /build/cpython: not a build path" in verdict.explanation
    assert "different profiles (.gcda) are the likely cause" in verdict.explanation
    assert comparison_build_paths(pgo, ("/v", "/v/H")) is None
    # A pinned profile on both sides is not the cause; a plain build names none.
    pinned = recorded_inputs(inputs("/b/x", "--enable-optimizations", profile="a" * 64),
                             inputs("/b/x", "--enable-optimizations", profile="a" * 64))  # fmt: skip
    assert "reused the pinned PGO profile aaaaaaaaaaaa" in with_recorded_inputs(guessed, pinned).explanation
    plain = recorded_inputs(inputs("/b/x"), inputs("/b/x"))
    explained = with_recorded_inputs(guessed, plain).explanation
    assert explained.endswith("(the path-like strings /v vs /v/H are chance bytes)")
    # Different recorded build directories: the real pair, and the verdict is left alone.
    moved = recorded_inputs(inputs("/build/cpython"), inputs("/build/elsewhere"))
    assert with_recorded_inputs(guessed, moved) == guessed
    assert comparison_build_paths(moved, ("/v", "/v/H")) == ("/build/cpython", "/build/elsewhere")
    # Nothing recorded (two plain trees): the comparators' guess stands.
    assert comparison_build_paths(recorded_inputs({}, {}), ("/a", "/b")) == ("/a", "/b")


def test_static_archives_are_compared_member_by_member(tmp_path: Path) -> None:
    objects = _build_twice(tmp_path, LIBRARY, ["-g", "-c"], "m.o")
    archives = []
    for obj in objects:
        subprocess.run(["ar", "rcs", "libm.a", "m.o"], cwd=obj.parent, check=True)
        archives.append(obj.parent / "libm.a")
    verdict = explain(_pair(archives[0], archives[1], "static-archive", "static-archive"))
    assert verdict.comparator == "static-archive"
    assert verdict.category == "debug-info"
    assert "1 of" in verdict.explanation and "m.o" in "\n".join(verdict.details)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xa7\x0d\x0d\x0a\x00\x00", "truncated"),
        (b"\x01\x02\x0d\x0a" + b"\x00" * 20, "unknown magic"),
    ],
)
def test_unreadable_pyc_falls_back_to_bytes(data: bytes, why: str) -> None:
    good = (HOST_STDLIB / "__pycache__" / "abc.cpython-311.pyc").read_bytes()
    verdict = explain(FilePair("x.pyc", "pyc", "pyc", good, data))
    assert verdict.comparator == "binary", why
    assert verdict.details[0].startswith("not readable as pyc")


def test_non_elf_so_is_a_kind_change_not_a_crash() -> None:
    real = next((HOST_STDLIB / "lib-dynload").glob("_ssl*.so")).read_bytes()
    verdict = explain(FilePair("_ssl.so", "elf-shared-object", "text", real, b"not an ELF\n"))
    assert verdict.category == "kind-changed"
    # Claimed ELF by the manifest but not parseable: the ELF comparator declines, bytes explain.
    broken = explain(FilePair("x.so", "elf-shared-object", "elf-shared-object", real, real[:200]))
    assert broken.comparator == "binary" and "not readable as elf" in broken.details[0]


@pytest.fixture(scope="module")
def stdlib_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two copies of the host's real stdlib; B carries one change of every sort."""
    base = tmp_path_factory.mktemp("stdlib")
    a, b = base / "a", base / "b"
    shutil.copytree(HOST_STDLIB, a, symlinks=True)
    shutil.copytree(HOST_STDLIB, b, symlinks=True)
    with (b / "os.py").open("a") as stream:
        stream.write("# patched\n")
    sysconfig = b / "_sysconfigdata__x86_64-linux-gnu.py"
    sysconfig.write_text(sysconfig.read_text().replace("/usr", "/build/elsewhere"))
    (b / "abc.py").chmod(0o600)
    (b / "json" / "tool.py").unlink()
    (b / "NEWS.txt").write_text("new\n")
    py_compile.compile(
        str(b / "base64.py"),
        cfile=str(b / "__pycache__" / "base64.cpython-311.pyc"),
        dfile="/usr/lib/python3.11/base64.py",
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    (b / "__pycache__" / "bisect.cpython-311.pyc").write_bytes(
        (a / "__pycache__" / "heapq.cpython-311.pyc").read_bytes()
    )
    return a, b


def test_identical_trees(stdlib_pair: tuple[Path, Path]) -> None:
    comparison = compare_paths(stdlib_pair[0], stdlib_pair[0])
    assert comparison.identical and comparison.deep


def test_real_tree_differences_are_classified_and_explained(stdlib_pair: tuple[Path, Path]) -> None:
    comparison = compare_paths(*stdlib_pair)
    found = {d.path: d for d in comparison.differences}
    assert set(found) == {
        "os.py",
        "_sysconfigdata__x86_64-linux-gnu.py",
        "abc.py",
        "json/tool.py",
        "NEWS.txt",
        "__pycache__/base64.cpython-311.pyc",
        "__pycache__/bisect.cpython-311.pyc",
    }
    assert found["abc.py"].changes == ("mode",)
    assert found["json/tool.py"].changes == ("only-in-a",)
    assert found["NEWS.txt"].changes == ("only-in-b",)
    sysconfig = found["_sysconfigdata__x86_64-linux-gnu.py"].comparison
    # "/usr" replaced everywhere is a different --prefix, not a build path (issue 12): named as such, and
    # never offered as the comparison's build-path pair.
    assert sysconfig is not None and sysconfig.category == "install-prefix"
    assert sysconfig.build_paths == ("/usr", "/build/elsewhere")
    assert comparison.build_paths != ("/usr", "/build/elsewhere")
    assert "--prefix /usr vs /build/elsewhere" in sysconfig.explanation and "fixed" not in sysconfig.explanation
    assert any(line.startswith("BINDIR: '/usr/bin' -> '/build/elsewhere/bin'") for line in sysconfig.details)
    header_only = found["__pycache__/base64.cpython-311.pyc"].comparison
    assert header_only is not None and header_only.category == "header-only"
    assert "SOURCE_DATE_EPOCH" in header_only.explanation
    semantic = found["__pycache__/bisect.cpython-311.pyc"].comparison
    assert semantic is not None and semantic.category == "semantic"
    text = found["os.py"].comparison
    assert text is not None and "+# patched" in text.details
    assert comparison.counts_by_kind()["python-source"] == {"content": 1, "mode": 1, "only-in-a": 1}


def test_manifests_only_say_they_could_not_open_the_bytes(stdlib_pair: tuple[Path, Path], tmp_path: Path) -> None:
    for label, tree in zip("ab", stdlib_pair, strict=True):
        write_manifest(Manifest(inputs={"side": label}, entries=scan_tree(tree)), tmp_path / f"{label}.json")
    comparison = compare_paths(tmp_path / "a.json", tmp_path / "b.json")
    assert not comparison.deep
    pyc = next(d for d in comparison.differences if d.path == "__pycache__/base64.cpython-311.pyc").comparison
    assert pyc is not None and pyc.comparator == "digest" and pyc.category == "pyc-header"
    assert "only the manifests' digests were available" in pyc.explanation
    assert any("manifest only" in note for note in comparison.notes)
    assert len(comparison.differences) == 7


def test_diff_manifests_is_pure_and_ordered() -> None:
    from verify.manifest import ManifestEntry

    left = Manifest(entries=(ManifestEntry("a", "text", 0o644, 1, "0" * 64), ManifestEntry("d", "directory", 0o755)))
    right = Manifest(entries=(ManifestEntry("a", "directory", 0o755), ManifestEntry("e", "symlink", 0o777, target="a")))
    result = diff_manifests(left, right)
    assert [(d.path, d.changes) for d in result] == [("a", ("type",)), ("d", ("only-in-a",)), ("e", ("only-in-b",))]


def test_cli_exit_codes_json_and_html(stdlib_pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = stdlib_pair
    same = run_cli("compare", a, a, "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["identical"] is True
    html_path = tmp_path / "report.html"
    differ = run_cli("compare", a, b, "--json", "--html", html_path)
    assert differ.returncode == 1, differ.stderr
    document = json.loads(differ.stdout)
    assert document["format"] == "cpython-verify/compare/v1"
    assert document["summary"]["by_category"]["semantic"] == 1
    page = html_path.read_text()
    assert "7 path(s) differ" in page and "<script" not in page and "http" not in page.split("<body>")[1]
    missing = run_cli("compare", a, tmp_path / "nope", timeout=60)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_every_compare_report_states_what_it_compared_and_ends_with_one_verdict(
    stdlib_pair: tuple[Path, Path],
) -> None:
    """Counts of what was compared on each side, in JSON and as the text's one closing line (issue 18)."""
    a, b = stdlib_pair
    entries = len(scan_tree(a))
    differ = run_cli("compare", a, b, "--json")
    coverage = json.loads(differ.stdout)["coverage"]
    # B lost json/tool.py and gained NEWS.txt; the other 5 differing paths are in both.
    assert coverage == {
        "a_entries": entries,
        "b_entries": entries,
        "in_both": entries - 1,
        "same_in_both": entries - 1 - 5,
        "only_in_a": 1,
        "only_in_b": 1,
        "contents_compared_by": "comparators",
    }
    text = run_cli("compare", a, b).stdout.splitlines()
    assert text[-1] == (
        f"DIFFERENT: 7 path(s) differ: {entries - 1:,} path(s) in both compared, {entries - 6:,} the "
        f"same; 1 only in A, 1 only in B (A: {entries:,} entries, B: {entries:,} entries)"
    )
    assert json.loads(differ.stdout)["verdict"] == text[-1]
    same = run_cli("compare", a, a).stdout.splitlines()
    assert same[-1].startswith(
        f"IDENTICAL: every path, mode, link target and sha256 is the same: {entries:,} path(s) in both compared"
    )
    assert sum(line.startswith(("IDENTICAL", "DIFFERENT")) for line in [*text, *same]) == 2


def test_two_empty_sides_compare_nothing_and_do_not_pass(tmp_path: Path) -> None:
    """Two empty trees are identical, and prove nothing: nothing compared is never a pass."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    result = run_cli("compare", tmp_path / "a", tmp_path / "b")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("NOTHING COMPARED: neither side has a single entry")
    document = json.loads(run_cli("compare", tmp_path / "a", tmp_path / "b", "--json").stdout)
    assert document["identical"] is True and document["passed"] is False


def test_reports_are_stable(stdlib_pair: tuple[Path, Path]) -> None:
    first, second = compare_paths(*stdlib_pair), compare_paths(*stdlib_pair)
    assert comparison_to_json(first) == comparison_to_json(second)
    assert render_html(first) == render_html(second)


@pytest.mark.skipif(shutil.which("diffoscope") is None, reason="diffoscope is not installed")
def test_diffoscope_runs_on_differing_files_only(tmp_path: Path) -> None:
    from verify.compare import DiffoscopeSettings

    a, b = tmp_path / "a", tmp_path / "b"
    for root, text in ((a, "one\n"), (b, "two\n")):
        root.mkdir()
        (root / "same.txt").write_text("same\n")
        (root / "changed.txt").write_text(text)
    comparison = compare_paths(a, b, diffoscope=DiffoscopeSettings(timeout=60, max_output=2000))
    (difference,) = comparison.differences
    assert difference.path == "changed.txt"
    assert difference.diffoscope is not None and "+two" in difference.diffoscope


def test_build_path_guess_is_not_fooled_by_path_like_noise_in_binary_data() -> None:
    """Two build dirs that share no suffix (build-one / build-two) against a stray "/I" from binary data:
    the pair sharing a parent directory wins (it once lost a tie to the shorter noise token)."""
    from verify.compare.paths import guess_build_paths

    one, two = "/tmp/pytest-of-root/pytest-7/test_x0/build-one", "/tmp/pytest-of-root/pytest-7/test_x0/build-two"
    assert guess_build_paths(["/I", one], [two]) == (one, two)


# --- explanations shared with audit: each category and piece of advice on a planted case ----------

SYSCONFIG = (
    "build_time_vars = {{'prefix': '{prefix}', 'BINDIR': '{prefix}/bin', 'abs_builddir': '{build}/b', "
    "'CONFIG_ARGS': \"'--prefix={prefix}'\", 'CFLAGS': '-O2 -ffile-prefix-map={build}=.'}}\n"
)


def _sysconfig(prefix: str, build: str) -> bytes:
    return SYSCONFIG.format(prefix=prefix, build=build).encode()


def test_a_prefix_change_is_an_install_prefix_not_a_build_path(tmp_path: Path) -> None:
    name = "lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py"
    prefix_change = explain(
        FilePair(
            name,
            "sysconfigdata",
            "sysconfigdata",
            _sysconfig("/opt/python", "/build/x"),
            _sysconfig("/usr/local", "/build/x"),
        )
    )
    assert prefix_change.category == "install-prefix"
    assert "configured with --prefix /opt/python vs /usr/local" in prefix_change.explanation
    assert "same --prefix" in prefix_change.explanation and "fixed path" not in prefix_change.explanation
    build_change = explain(
        FilePair(
            name,
            "sysconfigdata",
            "sysconfigdata",
            _sysconfig("/opt/python", "/build/one"),
            _sysconfig("/opt/python", "/build/two"),
        )
    )
    assert build_change.category == "build-path" and build_change.build_paths == ("/build/one", "/build/two")
    assert "use a fixed build path" in build_change.explanation
    both = explain(
        FilePair(
            name,
            "sysconfigdata",
            "sysconfigdata",
            _sysconfig("/opt/python", "/build/one"),
            _sysconfig("/usr/local", "/build/two"),
        )
    )
    assert both.category != "install-prefix", "a build path differs too: not only the prefix"
    # Whole trees: a script that records the prefix follows the configuration's verdict.
    for side, prefix in (("a", "/opt/python"), ("b", "/usr/local")):
        root = tmp_path / side
        (root / "lib/python3.11").mkdir(parents=True)
        (root / name).write_bytes(_sysconfig(prefix, "/build/x"))
        (root / "bin").mkdir()
        (root / "bin/python3.11-config").write_text(f"#!/bin/sh\nprefix_real={prefix}\necho {prefix}/include\n")
    comparison = compare_paths(tmp_path / "a", tmp_path / "b")
    verdicts = {d.path: d.comparison for d in comparison.differences}
    assert {v.category for v in verdicts.values() if v is not None} == {"install-prefix"}, verdicts
    assert comparison.build_paths is None


def test_3_14_sysconfig_vars_json_is_compared_key_by_key(tmp_path: Path) -> None:
    # 3.14 installs the same variables as _sysconfigdata*.py a second time, as one JSON object.
    name = "_sysconfig_vars__linux_x86_64-linux-gnu.json"
    for side, build in (("a", "/build/cpython"), ("b", "/build/varied-build-path/cpython-rebuild")):
        stdlib = tmp_path / side / "opt/python/lib/python3.14"
        stdlib.mkdir(parents=True)
        variables = {
            "prefix": "/opt/python",
            "abs_builddir": build,
            "abs_srcdir": build,
            "Py_DEBUG": 0,
            "CFLAGS": f"-O3 -ffile-prefix-map={build}=.",
            "TZPATH": "/usr/share/zoneinfo",
        }
        (stdlib / name).write_text(json.dumps(variables, indent=2))
    kinds = {entry.path: entry.kind for entry in scan_tree(tmp_path / "a")}
    assert kinds[f"opt/python/lib/python3.14/{name}"] == "sysconfigdata"
    comparison = compare_paths(tmp_path / "a", tmp_path / "b")
    (difference,) = comparison.differences
    assert difference.comparison is not None
    assert difference.comparison.category == "build-path", difference.comparison
    assert difference.comparison.details[0].startswith("CFLAGS: ")
    assert [line.split(":")[0] for line in difference.comparison.details] == ["CFLAGS", "abs_builddir", "abs_srcdir"]
    # Not a JSON object: compared as lines, never an error.
    broken = FilePair(name, "sysconfigdata", "sysconfigdata", b"[1, 2]", b"{not json")
    assert explain(broken).category != "build-path"


def test_checked_hash_pyc_that_no_longer_matches_its_source_is_not_header_only(tmp_path: Path) -> None:
    trees = []
    for side in ("a", "b"):
        root = tmp_path / side
        (root / "__pycache__").mkdir(parents=True)
        (root / "m.py").write_text("X = 1\n")
        trees.append(root)
    a, b = trees
    # A: a timestamp .pyc; B: a checked-hash .pyc of the same source -> header-only, SOURCE_DATE_EPOCH helps.
    py_compile.compile(str(a / "m.py"), cfile=str(a / "__pycache__/m.cpython-311.pyc"), dfile="m.py")
    py_compile.compile(
        str(b / "m.py"),
        cfile=str(b / "__pycache__/m.cpython-311.pyc"),
        dfile="m.py",
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    verdict = compare_paths(a, b).differences[0].comparison
    assert verdict is not None and verdict.category == "header-only" and "SOURCE_DATE_EPOCH" in verdict.explanation
    # A: checked-hash too, but of another source whose code compiles the same; then the source changes back.
    (a / "m.py").write_text("X = 1  # a comment changes the hash, not the code\n")
    py_compile.compile(
        str(a / "m.py"),
        cfile=str(a / "__pycache__/m.cpython-311.pyc"),
        dfile="m.py",
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    pair = FilePair(
        "__pycache__/m.cpython-311.pyc",
        "pyc",
        "pyc",
        (a / "__pycache__/m.cpython-311.pyc").read_bytes(),
        (b / "__pycache__/m.cpython-311.pyc").read_bytes(),
    )
    both_hashed = explain(pair)
    assert both_hashed.category == "source-hash" and "SOURCE_DATE_EPOCH" not in both_hashed.explanation
    assert "the sources differ" in both_hashed.explanation
    (a / "m.py").write_text("X = 1\n")  # A's .pyc is now stale for A's source
    verdict = compare_paths(a, b).differences[0].comparison
    assert verdict is not None and verdict.category == "stale-source-hash", verdict
    assert "A: its checked source hash does not match m.py" in verdict.explanation
    assert "recompile or ignore" in verdict.explanation and "SOURCE_DATE_EPOCH would change nothing" in (
        verdict.explanation
    )
