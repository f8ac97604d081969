"""Resource budgets: each bomb class is parsed in a child process whose peak memory and time are measured.

The hostile files are built here from real parts: a real shared library from the host with a section added by
``objcopy``, a real ``.pyc`` written by the host's ``marshal`` behind a PEP 552 header, real ``ar`` member
headers, a sysconfigdata module and release metadata as the parsers meet them.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import re
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest

from verify.common import limits
from verify.common.errors import OperationalError
from verify.compare.comparators import FilePair, explain
from verify.source.locations.http import HttpClient, HttpSettings
from verify.source.locations.local import LocalDirectory
from verify.source.locations.metadata import MetadataError, load_json
from verify.source.recipes import load_recipe

ROOT = Path(__file__).resolve().parent.parent
LIBZ = Path("/usr/lib/x86_64-linux-gnu/libz.so.1").resolve()
PEAK_MIB = 256
SECONDS = 5.0
GIB = 1 << 30

# The child imports the worktree's verify (cwd first on sys.path), runs one parser, and reports its own
# peak: VmHWM, since ru_maxrss survives execve and would report the forking pytest process.
_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    started = time.monotonic()
    kind, args = sys.argv[1], sys.argv[2:]
    if kind == "explain":
        from verify.compare.comparators import FilePair, explain
        name, kind_a, kind_b, path_a, path_b = args
        verdict = explain(FilePair(name, kind_a, kind_b, Path(path_a).read_bytes(), Path(path_b).read_bytes()))
        result = f"{verdict.comparator}|{verdict.category}|{verdict.explanation}|{' / '.join(verdict.details[:3])}"
    elif kind == "pyc":
        from verify.pyc import PycError, load_pyc
        try:
            loaded = load_pyc(Path(args[0]).read_bytes())
            result = f"loaded {type(loaded.code.consts[0]).__name__}"
        except PycError as error:
            result = f"refused: {error.message}"
    elif kind == "metadata":
        from verify.source.locations.http import HttpClient, HttpSettings
        from verify.source.locations.metadata import MetadataError, load_json
        try:
            load_json(args[0], client=HttpClient(HttpSettings()))
            result = "loaded"
        except MetadataError as error:
            result = f"refused: {error.message}"
    else:
        raise SystemExit(f"unknown kind {kind}")
    status = Path("/proc/self/status").read_text()
    hwm_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"mib": hwm_kib // 1024, "seconds": time.monotonic() - started, "result": result}))
    """
)


def _measure(*args: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    measured: dict[str, object] = json.loads(completed.stdout)
    return measured


def _assert_bounded(measured: dict[str, object]) -> str:
    assert isinstance(measured["mib"], int) and measured["mib"] < PEAK_MIB, measured
    assert isinstance(measured["seconds"], float) and measured["seconds"] < SECONDS, measured
    return str(measured["result"])


def _zlib_bomb(size: int) -> bytes:
    """A valid zlib stream of ``size`` zero bytes (a multiple of 1 MiB) in ~1 KiB per MiB, built in well under 1 s:
    a block compressed after a full flush is independent of what came before, so it can be repeated."""
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9)
    head = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    middle = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    checksum = 1
    for _ in range(size >> 20):
        checksum = zlib.adler32(chunk, checksum)
    return head + middle * ((size >> 20) - 1) + tail[:-4] + checksum.to_bytes(4, "big")


def _add_section(tmp_path: Path, name: str, content: bytes, *, compressed_flag: bool, source: Path = LIBZ) -> Path:
    """A copy of ``source`` (the host's real libz) with one more section; optionally marked SHF_COMPRESSED."""
    blob = tmp_path / "section.bin"
    blob.write_bytes(content)
    out = tmp_path / f"libz-{name.strip('.')}.so"
    subprocess.run(
        ["objcopy", "--add-section", f"{name}={blob}", str(source), str(out)], check=True, capture_output=True
    )
    if compressed_flag:
        data = bytearray(out.read_bytes())
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        (names_offset,) = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)
        for index in range(shnum):
            header = shoff + index * shentsize
            (name_index,) = struct.unpack_from("<I", data, header)
            if data[names_offset + name_index :].split(b"\0", 1)[0] == name.encode():
                (flags,) = struct.unpack_from("<Q", data, header + 8)
                struct.pack_into("<Q", data, header + 8, flags | 0x800)  # SHF_COMPRESSED
                break
        else:
            raise AssertionError(f"{name} not found in {out}")
        out.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="module")
def gib_stream() -> bytes:
    return _zlib_bomb(GIB)


def test_every_budget_is_in_the_one_table_with_its_value() -> None:
    table = (ROOT / "docs" / "limits.md").read_text()
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `verify\.common\.limits\.(\w+)`[^|]*\| ([^|]+) \|", table, re.MULTILINE)
    }
    constants = {name: value for name, value in vars(limits).items() if name.isupper()}
    assert set(constants) == set(rows), set(constants) ^ set(rows)
    for name, value in constants.items():
        shown = rows[name].strip()
        amount, _, unit = shown.partition(" ")
        factor = {"": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]
        assert int(amount.replace(",", "")) * factor == value, (name, shown, value)


def test_every_download_limit_is_in_the_table_with_its_value() -> None:
    """The HTTP client's budgets stay beside it (verify.source.locations.http); each one is a row with its value."""
    from verify.source.locations import http

    table = (ROOT / "docs" / "limits.md").read_text()
    row = r"^\| `verify\.source\.locations\.http\.(\w+)`[^|]*\| ([^|]+) \|"
    rows = {match.group(1): match.group(2).strip() for match in re.finditer(row, table, re.MULTILINE)}
    constants = {name: value for name, value in vars(http).items()
                 if name.isupper() and not name.startswith("_") and isinstance(value, int | float)}  # fmt: skip
    assert {"SPEED_FLOOR_BYTES_PER_SECOND", "SPEED_WINDOW_SECONDS"} <= set(constants)
    assert set(constants) <= set(rows), set(constants) - set(rows)
    factors = {"": 1, "s": 1, "B/s": 1, "KiB": 1 << 10, "KiB/s": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    for name, value in constants.items():
        amount, _, unit = rows[name].partition(" ")
        assert float(amount.replace(",", "")) * factors[unit] == value, (name, rows[name], value)
    settings = http.HttpSettings()
    assert (settings.speed_floor, settings.speed_window) == (constants["SPEED_FLOOR_BYTES_PER_SECOND"],
                                                             constants["SPEED_WINDOW_SECONDS"])  # fmt: skip


def test_compressed_elf_section_that_inflates_to_a_gib_is_refused_from_its_header(
    tmp_path: Path, gib_stream: bytes
) -> None:
    # Elf64_Chdr: ch_type ELFCOMPRESS_ZLIB, reserved, ch_size 1 GiB, ch_addralign 1; then the stream.
    bomb = _add_section(tmp_path, ".debug_bomb", struct.pack("<IIQQ", 1, 0, GIB, 1) + gib_stream, compressed_flag=True)
    assert bomb.stat().st_size < 2 << 20
    result = _assert_bounded(
        _measure("explain", "libz.so", "elf-shared-object", "elf-shared-object", str(LIBZ), str(bomb))
    )
    assert "unparseable ELF in B" in result and "ElfBudgetExceeded" in result and "not readable as elf" in result


def test_zdebug_section_that_lies_about_its_size_is_measured_before_pyelftools_inflates_it(
    tmp_path: Path, gib_stream: bytes
) -> None:
    # The old GNU format: "ZLIB" and a big-endian size that claims 4 KiB, then a stream of 1 GiB.
    bomb = _add_section(
        tmp_path, ".zdebug_info", b"ZLIB" + (4096).to_bytes(8, "big") + gib_stream, compressed_flag=False
    )
    result = _assert_bounded(
        _measure("explain", "libz.so", "elf-shared-object", "elf-shared-object", str(LIBZ), str(bomb))
    )
    assert "unparseable ELF in B" in result and "section .zdebug_info decompresses" in result


def _pyc_with_const(value: object) -> bytes:
    code = compile("x = 1", "<hostile>", "exec")
    code = code.replace(co_consts=(value, *code.co_consts[1:]))
    return importlib.util.MAGIC_NUMBER + b"\0" * 12 + marshal.dumps(code)


def test_pyc_holding_one_long_integer_is_read_in_linear_time_or_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.pyc"
    huge.write_bytes(_pyc_with_const(2 ** (15 * 150_000) - 1))  # 300 KB: over the digit budget
    assert huge.stat().st_size > 300_000
    assert "exceeds the budget of 65536 digits" in _assert_bounded(_measure("pyc", str(huge)))
    within = tmp_path / "within.pyc"
    within.write_bytes(_pyc_with_const(2 ** (15 * limits.PYC_MAX_LONG_DIGITS) - 1))
    assert _assert_bounded(_measure("pyc", str(within))) == "loaded int"


def test_two_pyc_files_with_huge_different_constants_compare_without_repr_failing(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pyc", tmp_path / "b.pyc"
    a.write_bytes(_pyc_with_const(2 ** (15 * 60_000) - 1))
    b.write_bytes(_pyc_with_const(2 ** (15 * 60_000) - 3))
    result = _assert_bounded(_measure("explain", "m.pyc", "pyc", "pyc", str(a), str(b)))
    assert result.startswith("pyc|semantic|") and "<int of 900000 bits>" in result


def _ar_member(name: str, body: bytes) -> bytes:
    header = (f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{len(body):<10}").encode() + b"`\n"
    return header + body + (b"\n" if len(body) % 2 else b"")


def test_archive_of_twenty_thousand_members_of_one_name(tmp_path: Path) -> None:
    members = [_ar_member("same.o/", b"x%05d" % index) for index in range(20_000)]
    a, b = tmp_path / "a.a", tmp_path / "b.a"
    a.write_bytes(b"!<arch>\n" + b"".join(members))
    b.write_bytes(b"!<arch>\n" + b"".join(members[:-1]) + _ar_member("same.o/", b"changed"))
    result = _assert_bounded(_measure("explain", "libx.a", "static-archive", "static-archive", str(a), str(b)))
    assert result.startswith("static-archive|") and "1 of 20000 members differ" in result
    assert "same.o#20000" in result


def test_big_sysconfigdata_is_not_handed_to_ast(tmp_path: Path) -> None:
    body = "".join(f"    'KEY_{index}': {index},\n" for index in range(200_000))
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("build_time_vars = {\n" + body + "}\n")
    b.write_text("build_time_vars = {\n" + body.replace("'KEY_7': 7", "'KEY_7': 8") + "}\n")
    assert a.stat().st_size > 4 << 20
    result = _assert_bounded(
        _measure("explain", "_sysconfigdata__x.py", "sysconfigdata", "sysconfigdata", str(a), str(b))
    )
    assert "not readable as config (larger than the 256 KiB budget" in result
    assert result.startswith("text|content|")


def test_text_diff_of_alternating_lines_is_bounded(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("".join("ab"[i % 2] + "\n" for i in range(20_000)))
    b.write_text("".join("ba"[i % 3 == 0] + "\n" for i in range(20_000)))
    result = _assert_bounded(_measure("explain", "x.txt", "text", "text", str(a), str(b)))
    assert result.startswith("text|content|")


def test_release_metadata_nested_100000_deep(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert "nested deeper than 64 levels" in _assert_bounded(_measure("metadata", str(deep)))
    just_over = tmp_path / "over.json"
    just_over.write_text("[" * 65 + "]" * 65)
    with pytest.raises(MetadataError, match="nested deeper"):
        load_json(str(just_over), client=HttpClient(HttpSettings()))


def test_a_fifo_named_like_the_tarball_is_refused_at_once(tmp_path: Path) -> None:
    from verify.source.locations.cache import Cache
    from verify.source.releases import Version

    directory = tmp_path / "from"
    directory.mkdir()
    os.mkfifo(directory / "Python-3.13.5.tar.xz")
    location = LocalDirectory(directory, cache=Cache(tmp_path / "cache"))
    started = time.monotonic()
    with pytest.raises(OperationalError, match="not a regular file"):
        location.fetch(Version.parse("3.13.5"), "Python-3.13.5.tar.xz")
    assert time.monotonic() - started < SECONDS


def test_metadata_from_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "metadata.json"
    os.mkfifo(fifo)
    with pytest.raises(MetadataError, match="not a regular file"):
        load_json(str(fifo), client=HttpClient(HttpSettings()))


def test_recipe_that_links_to_dev_zero_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cpython-3.13.toml").symlink_to("/dev/zero")
    with pytest.raises(OperationalError, match="not a regular file"):
        load_recipe("3.13", tmp_path)
    big = tmp_path / "cpython-3.12.toml"
    big.write_text("# padding\n" * 30_000)
    with pytest.raises(OperationalError, match="larger than 256 KiB"):
        load_recipe("3.12", tmp_path)


def test_elf_with_many_compressed_sections_shares_one_budget(tmp_path: Path) -> None:
    # Five sections of 60 MiB each pass the per-section cap; together they exceed the per-file one.
    content = struct.pack("<IIQQ", 1, 0, 60 << 20, 1) + _zlib_bomb(60 << 20)
    path = LIBZ
    for index in range(5):
        work = tmp_path / f"step{index}"
        work.mkdir()
        path = _add_section(work, f".debug_part{index}", content, compressed_flag=True, source=path)
    verdict = explain(
        FilePair("libz.so", "elf-shared-object", "elf-shared-object", LIBZ.read_bytes(), path.read_bytes())
    )
    assert verdict.comparator == "binary"
    assert "more than 256 MiB in all" in verdict.explanation
