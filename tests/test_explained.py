""" "Explained" needs both a documented cause and matching evidence (issue 18, item 3).

A recipe's expectation names the path globs *and* the comparator categories a variation's measured
difference showed. The planted cases are real ELF files built here with the host's gcc: the same source
compiled in two build directories (their DWARF records the directory: ``debug-info``), and one of them
with a machine-code byte of ``.text`` changed. The expectations are the shipped 3.13 recipe's own, so
the paths are the ones its globs match.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from verify.common.errors import OperationalError
from verify.compare.engine import compare_sides
from verify.compare.sides import side_from_tree
from verify.compare.twice import recorded_differences
from verify.source.recipes import BuildSpec, load_recipe

SERIES = "3.13"
PYTHON_O = "opt/python/lib/python3.13/config-3.13-x86_64-linux-gnu/python.o"
LIBPYTHON = "opt/python/lib/libpython3.13.a"
SOURCES = {
    "m.o": "int answer(void) { return 42; }\n",
    "n.o": "int scaled(int x) { return x * 42 + 7; }\n",
    # Machine code in a section named like debug info: the name is a claim, the flags say executable.
    "d.o": '__attribute__((section(".debug_hidden"))) int hidden(void) { return 42; }\n',
}


def _compile(directory: Path, name: str) -> bytes:
    """One object, compiled with debug info in ``directory`` (the build path its DWARF records)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / name.replace(".o", ".c")
    source.write_text(SOURCES[name])
    subprocess.run(["gcc", "-g", "-O1", "-c", source.name, "-o", name], cwd=directory, check=True, capture_output=True)
    return (directory / name).read_bytes()


def with_code_changed(data: bytes, section: str = ".text") -> bytes:
    """``data`` with one byte of its ``section`` changed: the constant 42 in the machine code becomes 43."""
    text = ELFFile(io.BytesIO(data)).get_section_by_name(section)
    start, size = text["sh_offset"], text["sh_size"]
    at = data.index(b"\x2a", start, start + size)
    return data[:at] + b"\x2b" + data[at + 1 :]


def _archive(directory: Path, members: dict[str, bytes]) -> bytes:
    for name, data in members.items():
        (directory / name).write_bytes(data)
    subprocess.run(["ar", "rcsD", "lib.a", *members], cwd=directory, check=True, capture_output=True)
    return (directory / "lib.a").read_bytes()


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def _spec() -> BuildSpec:
    recipe = load_recipe(SERIES)
    assert recipe.build is not None
    return recipe.build


def _record(tmp_path: Path, a: dict[str, bytes], b: dict[str, bytes], profile: str = "pgo-lto"):  # type: ignore[no-untyped-def]
    comparison = compare_sides(side_from_tree(_tree(tmp_path / "A", a), "A"),
                               side_from_tree(_tree(tmp_path / "B", b), "B"), workers=1)  # fmt: skip
    differences = recorded_differences(comparison, _spec(), frozenset({"build_path"}), profile)
    return {difference.path: difference for difference in differences}


@pytest.fixture
def objects(tmp_path: Path) -> dict[str, tuple[bytes, bytes]]:
    """Each object built in two build directories (``/.../one``, ``/.../two``): debug info differs."""
    return {name: (_compile(tmp_path / "one", name), _compile(tmp_path / "two", name)) for name in SOURCES}


def test_a_code_change_in_an_object_the_expectation_matches_stays_unexplained(
    tmp_path: Path, objects: dict[str, tuple[bytes, bytes]]
) -> None:
    one, two = objects["m.o"]
    assert one != two
    recorded = _record(tmp_path / "debug", {PYTHON_O: one}, {PYTHON_O: two})[PYTHON_O]
    assert recorded.category == "debug-info" and recorded.explained, recorded
    assert recorded.expected_by == ("build_path",)

    # The same path, also varied in build path, with the machine code changed: the recipe documents a
    # debug-info difference there, so a code difference is not explained, whatever the glob matches.
    planted = with_code_changed(two)
    recorded = _record(tmp_path / "code", {PYTHON_O: one}, {PYTHON_O: planted})[PYTHON_O]
    assert recorded.category == "code", recorded
    assert not recorded.explained and recorded.unexplained_changes == ("content",) and recorded.expected_by == ()
    assert ".text" in (recorded.explanation or "")
    # Only the code changed (same build directory): still code, still unexplained.
    alone = _record(tmp_path / "alone", {PYTHON_O: one}, {PYTHON_O: with_code_changed(one)})[PYTHON_O]
    assert alone.category == "code" and not alone.explained


def test_code_in_a_section_named_like_debug_info_is_code(
    tmp_path: Path, objects: dict[str, tuple[bytes, bytes]]
) -> None:
    one, _two = objects["d.o"]
    planted = with_code_changed(one, ".debug_hidden")
    recorded = _record(tmp_path, {PYTHON_O: one}, {PYTHON_O: planted})[PYTHON_O]
    assert recorded.category == "code" and not recorded.explained, recorded


def test_an_archive_with_one_member_whose_code_changed_stays_unexplained(
    tmp_path: Path, objects: dict[str, tuple[bytes, bytes]]
) -> None:
    (m_one, m_two), (n_one, n_two) = objects["m.o"], objects["n.o"]
    side_a = _archive(tmp_path / "one", {"m.o": m_one, "n.o": n_one})
    debug_only = _archive(tmp_path / "two", {"m.o": m_two, "n.o": n_two})
    recorded = _record(tmp_path / "debug", {LIBPYTHON: side_a}, {LIBPYTHON: debug_only})[LIBPYTHON]
    assert recorded.category == "debug-info" and recorded.explained, recorded

    # Every member's debug info differs, and one member's .text too: the archive is code, per member.
    planted = _archive(tmp_path / "two", {"m.o": m_two, "n.o": with_code_changed(n_two)})
    recorded = _record(tmp_path / "code", {LIBPYTHON: side_a}, {LIBPYTHON: planted})[LIBPYTHON]
    assert recorded.category == "code" and not recorded.explained, recorded
    assert "1 code" in (recorded.explanation or "") and "1 debug-info" in (recorded.explanation or "")


def test_a_plain_profile_explains_no_debug_info_difference_of_lto_objects(
    tmp_path: Path, objects: dict[str, tuple[bytes, bytes]]
) -> None:
    """The debug-info expectation is the LTO profiles' own: the default profile's builds document none."""
    one, two = objects["m.o"]
    recorded = _record(tmp_path, {PYTHON_O: one}, {PYTHON_O: two}, profile="default")[PYTHON_O]
    assert recorded.category == "debug-info" and not recorded.explained


def test_the_recipes_category_names_are_the_comparators_own() -> None:
    from verify.compare.model import CATEGORIES
    from verify.source.recipes import EXPECTABLE_CATEGORIES, REAL_DIFFERENCE_CATEGORIES

    assert set(EXPECTABLE_CATEGORIES) | set(REAL_DIFFERENCE_CATEGORIES) == set(CATEGORIES)
    assert not set(EXPECTABLE_CATEGORIES) & set(REAL_DIFFERENCE_CATEGORIES)
    assert list(CATEGORIES)[: len(EXPECTABLE_CATEGORIES)] == list(EXPECTABLE_CATEGORIES)


def test_every_content_expectation_of_every_shipped_recipe_names_its_categories() -> None:
    from verify.rebuild.settings import VARIATIONS
    from verify.source.recipes import load_all_recipes

    for series, recipe in load_all_recipes().items():
        assert recipe.build is not None
        tables = [recipe.build.expect, *(profile.expect for profile in recipe.build.profiles.values())]
        for table in tables:
            for name, entry in table.items():
                assert name in VARIATIONS, (series, name)
                assert ("content" in entry.changes) == bool(entry.categories), (series, name)
        for profile in recipe.build.profiles.values():
            assert set(profile.inapplicable) <= set(VARIATIONS), (series, profile.name)


def test_a_variation_inapplicable_to_a_profile_is_skipped_with_the_recipes_reason() -> None:
    """3.8 to 3.11 build lib-dynload with setup.py: under another build path a reused PGO profile does
    not reach those modules (a real code change), so build_path does not apply to their PGO profiles."""
    from verify.rebuild.variations import choose_variations

    for series in ("3.8", "3.9", "3.10", "3.11"):
        spec = load_recipe(series).build
        assert spec is not None
        for profile in ("pgo-lto", "pgo-lto-deterministic"):
            applied, skipped = choose_variations(spec, frozenset({"build_path", "hostname"}), profile)
            assert applied == {"hostname"} and list(skipped) == ["build_path"], (series, profile)
            assert "setup.py" in skipped["build_path"] and "\n" not in skipped["build_path"]
            with pytest.raises(OperationalError, match=f"no requested variation applies to profile {profile}"):
                choose_variations(spec, frozenset({"build_path"}), profile)
        assert choose_variations(spec, frozenset({"build_path"}), "default") == ({"build_path"}, {})
    spec = load_recipe("3.13").build
    assert spec is not None
    assert choose_variations(spec, frozenset({"build_path"}), "pgo-lto") == ({"build_path"}, {})


def test_rebuild_refuses_with_one_line_when_every_requested_variation_is_skipped(
    cpython_fixtures: Path, tmp_path: Path
) -> None:
    """``--vary build_path`` on a 3.11 PGO profile would vary nothing: exit 2, one line, before any build."""
    from conftest import run_cli

    completed = run_cli("rebuild", "3.11.2", "--from", cpython_fixtures, "--offline", "--allow-missing", "openpgp",
                        "--profile", "pgo-lto", "--twice", "--vary", "build_path", "--out", tmp_path / "out",
                        cache=tmp_path / "cache")  # fmt: skip
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "no requested variation applies to profile pgo-lto: build_path: 3.11" in lines[0]
    assert "setup.py" in lines[0] and "Traceback" not in completed.stderr
    assert not (tmp_path / "cache" / "rebuilds").exists() and not (tmp_path / "out").exists()
