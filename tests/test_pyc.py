"""Tests for verify.pyc: real .pyc files from CPython 3.8-3.13, the host's stdlib, and hostile inputs.

Stored inputs under tests/data/pyc/ were written by real interpreters with make_pyc_data.py (see there);
3.11 inputs are also produced live by the interpreter running the tests.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import marshal
import opcode
import py_compile
import random
import re
import struct
import sys
import time
import types
from pathlib import Path

import pytest

from verify.common.errors import OperationalError
from verify.pyc import (
    CodeObject,
    MarshalError,
    PycError,
    PycHeaderError,
    compare_pyc,
    decode,
    load_code,
    load_pyc,
    parse_header,
    python_version_for_magic,
    read_marshal,
    semantic_digest,
)
from verify.pyc.header import MAGIC_RANGES
from verify.pyc.opcodes import OPCODE_TABLES
from verify.pyc.values import FrozenDictValue, FrozenSetValue, SliceValue, short_repr

DATA = Path(__file__).parent / "data" / "pyc"
SAMPLE = DATA / "sample.py"
STORED_TAGS = sorted(path.name.split(".")[1] for path in DATA.glob("expected.*.json"))
HOST_MAGIC = int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")


def walk(code: CodeObject) -> list[CodeObject]:
    out = [code]
    for const in code.consts:
        if isinstance(const, CodeObject):
            out.extend(walk(const))
    return out


def host_walk(code: types.CodeType) -> list[types.CodeType]:
    out = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out.extend(host_walk(const))
    return out


def compile_host(tmp_path: Path, mode: py_compile.PycInvalidationMode, *, dfile: str = "sample.py") -> bytes:
    target = tmp_path / f"out-{mode.name}-{abs(hash(dfile))}.pyc"
    py_compile.compile(str(SAMPLE), cfile=str(target), dfile=dfile, invalidation_mode=mode, doraise=True)
    return target.read_bytes()


def hash_header(source: bytes) -> bytes:
    return importlib.util.MAGIC_NUMBER + (0b11).to_bytes(4, "little") + importlib.util.source_hash(source)


# -- headers -------------------------------------------------------------------------------------------


def test_stored_data_covers_every_series_and_the_free_threaded_builds() -> None:
    every = ["cpython-38", "cpython-39", "cpython-310", "cpython-311", "cpython-312", "cpython-313", "cpython-314",
             "cpython-314t", "cpython-315", "cpython-315t"]  # fmt: skip
    assert sorted(every) == STORED_TAGS
    # Every series with stored data has its own interpreter's opcode table, keyed by the magic it wrote.
    for tag in STORED_TAGS:
        expected = json.loads((DATA / f"expected.{tag}.json").read_text())
        assert expected["magic"] in OPCODE_TABLES, tag


@pytest.mark.parametrize("mode", list(py_compile.PycInvalidationMode))
def test_header_of_each_invalidation_mode_from_the_host(tmp_path: Path, mode: py_compile.PycInvalidationMode) -> None:
    data = compile_host(tmp_path, mode)
    header = parse_header(data)
    source = SAMPLE.read_bytes()
    assert header.magic == HOST_MAGIC
    assert header.python_version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    if mode is py_compile.PycInvalidationMode.TIMESTAMP:
        assert header.kind == "timestamp"
        assert header.mtime == int(SAMPLE.stat().st_mtime) & 0xFFFFFFFF
        assert header.source_size == len(source)
        assert header.source_hash is None
    else:
        expected = "checked-hash" if mode is py_compile.PycInvalidationMode.CHECKED_HASH else "unchecked-hash"
        assert header.kind == expected
        assert header.source_hash == importlib.util.source_hash(source)
        assert header.mtime is None and header.source_size is None


@pytest.mark.parametrize("tag", STORED_TAGS)
def test_stored_headers_name_the_version_that_wrote_them(tag: str) -> None:
    expected = json.loads((DATA / f"expected.{tag}.json").read_text())
    for mode in ("timestamp", "checked-hash", "unchecked-hash"):
        header = parse_header((DATA / f"sample.{mode}.{tag}.pyc").read_bytes())
        assert (header.magic, header.python_version, header.kind) == (expected["magic"], expected["version"], mode)


def test_magic_ranges_cover_3_8_to_3_15_without_gaps() -> None:
    assert [series for _low, _high, series in MAGIC_RANGES] == [f"3.{minor}" for minor in range(8, 16)]
    for (_l1, high, _s1), (low, _h2, _s2) in itertools.pairwise(MAGIC_RANGES):
        assert low == high + 1
    # Final magic numbers of releases, from CPython's list; 3.14.0 is 3627, 3.15's first is 3650.
    for magic, series in {3413: "3.8", 3425: "3.9", 3439: "3.10", 3495: "3.11", 3531: "3.12", 3571: "3.13"}.items():
        assert python_version_for_magic(magic) == series
    assert python_version_for_magic(3627) == "3.14"
    assert python_version_for_magic(3650) == "3.15"
    assert python_version_for_magic(3394) is None  # 3.7
    assert python_version_for_magic(3700) is None  # 3.16


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated .pyc: 0 bytes"),
        (importlib.util.MAGIC_NUMBER + b"\0" * 4, "truncated .pyc: 8 bytes"),
        (b"\x42\x0d\x0d\x0a" + b"\0" * 12, "unsupported magic number 3394"),
        (b"\x74\x0e\x0d\x0a" + b"\0" * 12, "unsupported magic number 3700"),
        (b"PK\x03\x04" + b"\0" * 12, "not a .pyc file"),
        (importlib.util.MAGIC_NUMBER + b"\x04\0\0\0" + b"\0" * 8, "invalid .pyc flags 0x4"),
    ],
)
def test_bad_headers_are_one_line_errors(data: bytes, message: str) -> None:
    with pytest.raises(PycHeaderError) as caught:
        parse_header(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, OperationalError)


# -- the marshal reader against real interpreters --------------------------------------------------------


def host_stdlib_pycs() -> list[Path]:
    return sorted(Path("/usr/lib/python3.11").rglob(f"*.cpython-{sys.version_info[0]}{sys.version_info[1]}.pyc"))


def test_every_host_stdlib_pyc_loads_to_what_the_host_marshal_loads() -> None:
    files = host_stdlib_pycs()
    if not files:
        pytest.skip("no Debian python3.11 stdlib .pyc files on this machine")
    assert len(files) > 500
    for path in files:
        data = path.read_bytes()
        mine = walk(load_code(data))
        real = host_walk(marshal.loads(data[16:]))
        assert len(mine) == len(real), path
        for ours, theirs in zip(mine, real, strict=True):
            assert (ours.qualname, ours.filename, ours.firstlineno) == (
                theirs.co_qualname,
                theirs.co_filename,
                theirs.co_firstlineno,
            )
            assert ours.code == theirs.co_code, path
            assert ours.names == theirs.co_names
            assert ours.linetable == theirs.co_linetable
            assert ours.exceptiontable == theirs.co_exceptiontable
            assert (ours.argcount, ours.posonlyargcount, ours.kwonlyargcount, ours.flags, ours.stacksize) == (
                theirs.co_argcount,
                theirs.co_posonlyargcount,
                theirs.co_kwonlyargcount,
                theirs.co_flags,
                theirs.co_stacksize,
            )
            assert set(ours.localsplusnames) == set(theirs.co_varnames + theirs.co_cellvars + theirs.co_freevars)
            plain = [c for c in theirs.co_consts if not isinstance(c, types.CodeType | frozenset)]
            assert [c for c in ours.consts if not isinstance(c, CodeObject | FrozenSetValue)] == plain


@pytest.mark.parametrize("tag", STORED_TAGS)
def test_stored_pycs_match_what_their_interpreter_said(tag: str) -> None:
    expected = json.loads((DATA / f"expected.{tag}.json").read_text())
    loaded = load_pyc((DATA / f"sample.timestamp.{tag}.pyc").read_bytes())
    ours = walk(loaded.code)
    assert len(ours) == len(expected["code_objects"])
    legacy = expected["version"] in ("3.8", "3.9", "3.10")
    for code, record in zip(ours, expected["code_objects"], strict=True):
        assert code.name == record["name"]
        assert code.display_name == (record["name"] if legacy else record["qualname"])
        assert (code.filename, code.firstlineno, code.flags, code.stacksize) == (
            record["filename"],
            record["firstlineno"],
            record["flags"],
            record["stacksize"],
        )
        assert list(code.names) == record["names"]
        if legacy:
            assert (list(code.varnames), list(code.freevars), list(code.cellvars)) == (
                record["varnames"],
                record["freevars"],
                record["cellvars"],
            )
        instructions = decode(code, magic=loaded.header.magic, python_version=loaded.header.python_version)
        assert [[i.offset, i.opname, i.arg] for i in instructions] == [r[:3] for r in record["instructions"]]
        for ours, theirs in zip(instructions, record["instructions"], strict=True):
            if len(theirs) == 4:  # the name dis resolved a name instruction's argument to (3.14's data on)
                assert ours.argrepr.removeprefix("NULL + ") == theirs[3], (ours, theirs)
        reprs = [
            "<code>" if isinstance(c, CodeObject) else repr(c) for c in code.consts if not isinstance(c, FrozenSetValue)
        ]
        assert reprs == [r for r in record["consts"] if not r.startswith("frozenset")]


def test_opcode_table_of_the_host_is_the_host_opcode_module() -> None:
    table = OPCODE_TABLES[HOST_MAGIC]
    assert table.names == {number: name for number, name in enumerate(opcode.opname) if not name.startswith("<")}
    assert table.have_argument == opcode.HAVE_ARGUMENT


def test_semantic_digest_ignores_the_header_and_sees_the_code(tmp_path: Path) -> None:
    timestamp = compile_host(tmp_path, py_compile.PycInvalidationMode.TIMESTAMP)
    checked = compile_host(tmp_path, py_compile.PycInvalidationMode.CHECKED_HASH)
    other_path = compile_host(tmp_path, py_compile.PycInvalidationMode.CHECKED_HASH, dfile="/elsewhere/sample.py")
    assert semantic_digest(timestamp) == semantic_digest(checked)
    assert semantic_digest(checked) != semantic_digest(other_path)
    assert len(semantic_digest(checked)) == 64


# -- comparison categories -------------------------------------------------------------------------------


def test_reference_flag_pair_made_live_is_reference_flags_only() -> None:
    # The chroot-vs-bwrap finding: the same code marshalled while a constant had one more reference.
    source = SAMPLE.read_bytes()
    code = compile(source, "sample.py", "exec", dont_inherit=True)
    plain = marshal.dumps(code)
    extra = [const for const in code.co_consts if isinstance(const, float)]  # the only other reference
    flagged = marshal.dumps(code)
    assert extra and plain != flagged
    a, b = hash_header(source) + plain, hash_header(source) + flagged
    result = compare_pyc(a, b)
    assert result.category == "reference-flags-only", result.explanation
    assert result.header_differences == () and result.code_differences == ()
    assert semantic_digest(a) == semantic_digest(b)
    assert load_pyc(a).flagged_objects < load_pyc(b).flagged_objects


@pytest.mark.parametrize("tag", STORED_TAGS)
def test_stored_pairs_are_classified(tag: str) -> None:
    def read(name: str) -> bytes:
        return (DATA / f"{name}.{tag}.pyc").read_bytes()

    refs = compare_pyc(read("refs-a"), read("refs-b"))
    assert refs.category == "reference-flags-only"
    assert read("refs-a") != read("refs-b") and semantic_digest(read("refs-a")) == semantic_digest(read("refs-b"))

    header = compare_pyc(read("sample.timestamp"), read("sample.checked-hash"))
    assert header.category == "header-only"
    assert header.header_differences == ("invalidation mode: timestamp vs checked-hash",)

    assert compare_pyc(read("sample.checked-hash"), read("sample.checked-hash")).category == "identical"

    path = compare_pyc(read("path-a"), read("path-b"), path_prefixes=("/build/a/", "/build/b/"))
    assert path.category == "path-only", path.explanation
    assert {d.field for d in path.code_differences} == {"filename"}
    assert compare_pyc(read("path-a"), read("path-b"), path_prefixes=("/build/a/", "/build/c/")).category == "semantic"

    changed = compare_pyc(read("sample.checked-hash"), read("changed"))
    assert changed.category == "semantic"
    assert changed.header_differences[0].startswith("source hash: ")
    bytecode = [d for d in changed.code_differences if d.field == "code"]
    assert [d.path for d in bytecode] == ["<module>/outer/inner"]
    added = [line for line in bytecode[0].detail if line.startswith("+ ")]
    # Every instruction is named by its release's own table: no raw "<93>" where dis says STORE_NAME.
    assert not [line for line in bytecode[0].detail if re.search(r" <\d+>", line)], bytecode[0].detail
    # The constant 1 the changed line adds, by each release's own instruction (3.14: LOAD_SMALL_INT).
    loads_one = [line for line in added if ("LOAD_CONST" in line or "LOAD_SMALL_INT" in line) and "(1)" in line]
    assert loads_one, bytecode[0].detail


@pytest.mark.parametrize("series", [("314", 3627), ("315", 3666)])
@pytest.mark.parametrize("name", ["sample.checked-hash", "sample.unchecked-hash", "changed", "path-a"])
def test_a_free_threaded_build_writes_the_same_code_with_other_reference_flags(
    name: str, series: tuple[str, int]
) -> None:
    # Real files from the rebuilt 3.14.4/3.14.4t and 3.15.0rc1/3.15.0rc1t (--disable-gil): one magic
    # number, one cache tag, the same code objects. The bytes differ: marshal sets FLAG_REF by reference
    # count, and the counts differ in the free-threaded build; the semantic digest erases exactly that.
    digits, magic = series
    default = (DATA / f"{name}.cpython-{digits}.pyc").read_bytes()
    threaded = (DATA / f"{name}.cpython-{digits}t.pyc").read_bytes()
    assert default != threaded
    assert parse_header(default) == parse_header(threaded)
    result = compare_pyc(default, threaded)
    assert result.category == "reference-flags-only", result.explanation
    assert semantic_digest(default) == semantic_digest(threaded)
    expected = json.loads((DATA / f"expected.cpython-{digits}t.json").read_text())
    assert (expected["magic"], expected["cache_tag"], expected["free_threaded"]) == (magic, f"cpython-{digits}", True)


def test_different_versions_are_semantic() -> None:
    result = compare_pyc(
        (DATA / "sample.timestamp.cpython-312.pyc").read_bytes(),
        (DATA / "sample.timestamp.cpython-313.pyc").read_bytes(),
    )
    assert result.category == "semantic"
    assert result.header_differences[0] == "magic: 3531 (3.12) vs 3571 (3.13)"


def test_trailing_bytes_are_reported_as_header_noise(tmp_path: Path) -> None:
    data = compile_host(tmp_path, py_compile.PycInvalidationMode.CHECKED_HASH)
    result = compare_pyc(data, data + b"\0\0")
    assert result.category == "header-only"
    assert result.header_differences == ("trailing bytes after the code object: 0 vs 2",)


# -- hand-encoded marshal data (formats the host cannot write) --------------------------------------------


def w_long(value: int) -> bytes:
    return struct.pack("<i", value)


def short_ascii(text: str, *, flag: int = 0) -> bytes:
    return bytes([ord("z") | flag, len(text)]) + text.encode("ascii")


def code_311(consts: bytes, *, code: bytes = b"\x97\x00\x64\x00\x53\x00", filename: str = "x.py") -> bytes:
    """A 3.11+-layout code object: RESUME 0, LOAD_CONST 0, RETURN_VALUE."""
    return (
        b"c"
        + w_long(0) * 3
        + w_long(1)
        + w_long(0)
        + b"s"
        + w_long(len(code))
        + code
        + consts
        + b")\x00"
        + b")\x00"
        + b"s"
        + w_long(0)
        + short_ascii(filename)
        + short_ascii("<module>")
        + short_ascii("<module>")
        + w_long(1)
        + b"s"
        + w_long(0)
        + b"s"
        + w_long(0)
    )


def pyc(magic: int, body: bytes) -> bytes:
    return struct.pack("<H", magic) + b"\r\n" + (0b11).to_bytes(4, "little") + b"\x01" * 8 + body


def test_hand_encoded_3_14_pyc_with_a_slice_constant() -> None:
    consts = b")\x02" + b":" + b"i" + w_long(1) + b"N" + b"N" + b"g" + struct.pack("<d", 2.5)
    # 3.14.4's own numbers: RESUME 0, LOAD_CONST 0, RETURN_VALUE (3.14 renumbered RESUME to 128).
    body = code_311(consts, code=bytes([128, 0, 82, 0, 35, 0]))
    loaded = load_pyc(pyc(3627, body))
    assert loaded.header.python_version == "3.14"
    assert loaded.code.consts == (SliceValue(1, None, None), 2.5)
    instructions = decode(loaded.code, magic=3627, python_version="3.14")
    assert [i.text for i in instructions] == ["RESUME 0", "LOAD_CONST 0 (slice(1, None, None))", "RETURN_VALUE"]
    # A pre-release magic without a table (3.14rc2's 3626): instructions by number, never by a guessed name.
    unknown = load_pyc(pyc(3626, body))
    assert [i.opname for i in decode(unknown.code, magic=3626, python_version="3.14")] == ["<128>", "<82>", "<35>"]


def test_hand_encoded_3_15_pyc_with_a_frozendict_constant() -> None:
    # marshal format 6 (3.15): '}' is a frozendict, NULL-terminated like a dict, its reference reserved first.
    pairs = short_ascii("a") + b"i" + w_long(1) + short_ascii("b") + b"N" + b"0"
    loaded = load_pyc(pyc(3666, code_311(b")\x02" + b"\xfd" + pairs + b"r" + w_long(0))))
    frozen = loaded.code.consts[0]
    assert loaded.code.consts[1] is frozen and loaded.back_references == 1
    assert loaded.header.python_version == "3.15" and loaded.header.marshal_version == 6
    assert frozen == FrozenDictValue((("a", 1), ("b", None)))
    assert short_repr(frozen) == "frozendict({...})"
    # A dict of the same items is another value: the digest tells them apart.
    as_dict = pyc(3666, code_311(b")\x01" + b"{" + pairs))
    assert semantic_digest(as_dict) != semantic_digest(pyc(3666, code_311(b")\x01" + b"}" + pairs)))
    # Insertion order is part of a frozendict, unlike a frozenset's order.
    swapped = short_ascii("b") + b"N" + short_ascii("a") + b"i" + w_long(1) + b"0"
    assert semantic_digest(pyc(3666, code_311(b")\x01}" + swapped))) != semantic_digest(
        pyc(3666, code_311(b")\x01}" + pairs))
    )


@pytest.mark.parametrize(
    ("magic", "constant", "code"),
    [
        (3627, b"}" + b"0", "0x7d"),  # frozendict in a 3.14 .pyc: marshal format 5 has no such type
        (3571, b":" + b"NNN", "0x3a"),  # slice in a 3.13 .pyc: format 4 has none
        (3495, b":" + b"NNN", "0x3a"),
    ],
)
def test_a_type_code_newer_than_the_series_marshal_format_is_refused(magic: int, constant: bytes, code: str) -> None:
    with pytest.raises(MarshalError, match=f"type code {code} at offset .* is not in marshal format"):
        load_pyc(pyc(magic, code_311(b")\x01" + constant)))
    # The same constant is read in a file of the series that introduced it.
    load_pyc(pyc(3666, code_311(b")\x01" + constant)))


def test_frozenset_order_and_string_representation_do_not_change_the_digest() -> None:
    items = [short_ascii(name) for name in ("alpha", "beta", "gamma")]
    first = b">" + w_long(3) + b"".join(items)
    second = b">" + w_long(3) + b"".join(reversed(items))
    a, b = pyc(3571, code_311(b")\x01" + first)), pyc(3571, code_311(b")\x01" + second))
    assert semantic_digest(a) == semantic_digest(b)
    assert compare_pyc(a, b).category == "reference-flags-only"
    # The same text as a short ASCII string, an interned string, or a long UTF-8 string is the same value.
    variants = [short_ascii("beta"), b"Z\x04beta", b"u" + w_long(4) + b"beta", b"a" + w_long(4) + b"beta"]
    assert len({semantic_digest(pyc(3571, code_311(b")\x01" + v))) for v in variants}) == 1
    # ...but a different constant is a different digest, and so are 0.0 and -0.0.
    zero = b"g" + struct.pack("<d", 0.0)
    negative_zero = b"g" + struct.pack("<d", -0.0)
    assert semantic_digest(pyc(3571, code_311(b")\x01" + zero))) != semantic_digest(
        pyc(3571, code_311(b")\x01" + negative_zero))
    )


def test_big_ints_in_15_bit_digits_and_legacy_types() -> None:
    for number in (0, 1, -1, 2**31, -(2**31) - 1, 2**100 + 12345, -(7**200)):
        assert read_marshal(marshal.dumps(number)) == number
    assert read_marshal(b"I" + struct.pack("<q", -(2**40))) == -(2**40)  # TYPE_INT64, no longer written
    assert read_marshal(b"f\x031.5") == 1.5  # text float, marshal format 0
    assert read_marshal(marshal.dumps(3 + 4j, 1)) == 3 + 4j
    assert read_marshal(marshal.dumps([1, {"k": (2,)}, {3}])) is not None


# -- hostile and broken input ----------------------------------------------------------------------------


def test_every_truncation_of_a_real_pyc_is_a_clear_error(tmp_path: Path) -> None:
    data = compile_host(tmp_path, py_compile.PycInvalidationMode.CHECKED_HASH)
    for length in range(len(data)):
        with pytest.raises(PycError) as caught:
            load_pyc(data[:length])
        assert "\n" not in str(caught.value)


def test_random_corruption_never_escapes_as_another_exception(tmp_path: Path) -> None:
    data = compile_host(tmp_path, py_compile.PycInvalidationMode.CHECKED_HASH)
    rng = random.Random(552)
    start = time.monotonic()
    failures = 0
    for _ in range(3000):
        mutated = bytearray(data)
        for _flip in range(rng.randint(1, 3)):
            mutated[rng.randrange(16, len(mutated))] = rng.randrange(256)
        try:
            semantic_digest(bytes(mutated))
        except PycError:
            failures += 1
    assert failures > 100  # the corruption really was detected, not silently accepted every time
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b")\x01" * 3000 + b"N", "nesting deeper than 2000 levels"),
        (b"(" + w_long(0x7FFFFFFF), "exceeds the"),
        (b"s" + w_long(0x7FFFFFFF), "exceeds the"),
        (b"l" + w_long(-0x7FFFFFFF), "truncated marshal data: long of"),
        (b"\xa9\x01r" + w_long(0), "points into an object still being read"),  # a tuple containing itself
        (b"r" + w_long(5), "invalid reference 5"),
        (b"?", "unknown type code 0x3f"),
        (b"0", "NULL object at top level"),
        (b"l" + w_long(1) + b"\x00\x00", "unnormalized long"),
        (b"l" + w_long(1) + b"\x00\x80", "digit out of range"),
        (b"u" + w_long(1) + b"\xff", "invalid UTF-8"),
        (b"f\x041_00", "invalid float text"),
    ],
)
def test_malformed_marshal_data_fails_fast_with_one_line(body: bytes, message: str) -> None:
    start = time.monotonic()
    with pytest.raises(MarshalError) as caught:
        read_marshal(body)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert time.monotonic() - start < 1


def test_a_code_object_with_a_wrong_field_type_is_refused() -> None:
    broken = code_311(b")\x00").replace(short_ascii("x.py"), b"i" + w_long(7), 1)
    with pytest.raises(MarshalError, match="field filename is int, not str"):
        load_pyc(pyc(3571, broken))
    with pytest.raises(MarshalError, match="not code"):
        load_pyc(pyc(3571, b"N"))


def test_shared_references_cannot_blow_up_digest_or_comparison() -> None:
    # 60 levels of (x, x) where x is the previous level: 2**60 leaves if expanded, 60 tuples if shared.
    # Containers take their reference index before their children, so the outermost tuple is index 0
    # and the innermost (first built here) is index 60: level L refers to the tuple with index 60 - L.
    body = b"\xa9\x02NN"
    for level in range(60):
        body = b"\xa9\x02" + body + b"r" + w_long(60 - level)
    consts = b")\x01" + body
    a, b = pyc(3571, code_311(consts)), pyc(3571, code_311(consts, filename="y.py"))
    start = time.monotonic()
    assert semantic_digest(a) != semantic_digest(b)
    assert compare_pyc(a, b).category == "path-only"
    assert time.monotonic() - start < 2
