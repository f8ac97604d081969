"""Safe unpacking: hostile tarballs built here are refused and leave nothing behind; real ones unpack."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import stat
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from verify.common.errors import OperationalError, UnsafeArchive
from verify.source import unpack
from verify.source.unpack import MAX_METADATA_BYTES, UnpackWriteError, read_member, safe_unpack

Adder = Callable[[tarfile.TarFile], None]


def _info(name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_700_000_000
    return info


def _file(name: str, data: bytes = b"hello\n") -> Adder:
    return lambda archive: archive.addfile(_info(name, size=len(data)), io.BytesIO(data))


def _entry(name: str, kind: bytes, link: str = "") -> Adder:
    return lambda archive: archive.addfile(_info(name, kind, link=link))


def _make(path: Path, *adders: Adder, mode: str = "w:xz", fmt: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, mode, format=fmt) as archive:  # type: ignore[call-overload]
        for add in adders:
            add(archive)
    return path


GOOD = (
    _entry("pkg", tarfile.DIRTYPE),
    _file("pkg/README", b"readme\n"),
    _entry("pkg/Include", tarfile.DIRTYPE),
    _file("pkg/Include/patchlevel.h", b'#define PY_VERSION "3.99.1"\n'),
    _entry("pkg/link", tarfile.SYMTYPE, "Include/patchlevel.h"),
    _entry("pkg/hard", tarfile.LNKTYPE, "pkg/README"),
)


def _assert_refused_and_clean(tarball: Path, dest: Path, fragment: str, **limits: int) -> UnsafeArchive:
    with pytest.raises(UnsafeArchive) as caught:
        safe_unpack(tarball, dest, **limits)
    message = caught.value.message
    assert fragment in message, message
    assert "\n" not in message
    assert tarball.name in message
    # A refused unpack leaves no staging directory and no partial tree.
    assert not dest.exists() or list(dest.iterdir()) == []
    return caught.value


@pytest.mark.parametrize("mode", ["w:xz", "w:gz"])
def test_good_archive_unpacks_atomically_into_dest(tmp_path: Path, mode: str) -> None:
    tarball = _make(tmp_path / "good.tar", *GOOD, mode=mode)
    top = safe_unpack(tarball, tmp_path / "out")
    assert top == tmp_path / "out" / "pkg"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pkg"]
    assert (top / "README").read_bytes() == b"readme\n"
    assert (top / "link").is_symlink() and (top / "link").read_bytes().startswith(b"#define")
    assert os.stat(top / "hard").st_ino == os.stat(top / "README").st_ino
    assert stat.S_IMODE((top / "README").stat().st_mode) == 0o644


def test_unpacking_twice_refuses_to_overwrite(tmp_path: Path) -> None:
    tarball = _make(tmp_path / "good.tar.xz", *GOOD)
    safe_unpack(tarball, tmp_path / "out")
    # Exit 2, not 1: an occupied destination is an operational problem, not a verdict on the archive.
    with pytest.raises(UnpackWriteError, match="already exists") as caught:
        safe_unpack(tarball, tmp_path / "out")
    assert isinstance(caught.value, OperationalError) and caught.value.exit_code == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pkg"]


HOSTILE: dict[str, tuple[tuple[Adder, ...], str]] = {
    "traversal": ((_entry("pkg", tarfile.DIRTYPE), _file("pkg/../../evil")), "'..' in path"),
    "absolute": ((_entry("pkg", tarfile.DIRTYPE), _file("/tmp/evil")), "absolute path"),
    "symlink-escape": ((_entry("pkg", tarfile.DIRTYPE), _entry("pkg/out", tarfile.SYMTYPE, "../../etc")), "outside"),
    "symlink-absolute": (
        (_entry("pkg", tarfile.DIRTYPE), _entry("pkg/out", tarfile.SYMTYPE, "/etc/passwd")),
        "absolute",
    ),
    "symlink-to-top-sibling": (
        (_entry("pkg", tarfile.DIRTYPE), _entry("pkg/up", tarfile.SYMTYPE, "..")),
        "outside the tree",
    ),
    "write-through-symlink": (
        (_entry("pkg", tarfile.DIRTYPE), _entry("pkg/s", tarfile.SYMTYPE, "."), _file("pkg/s/x")),
        "lies under the symlink",
    ),
    "hardlink-out": ((_entry("pkg", tarfile.DIRTYPE), _entry("pkg/h", tarfile.LNKTYPE, "/etc/passwd")), "hard link"),
    "hardlink-traversal": (
        (_entry("pkg", tarfile.DIRTYPE), _entry("pkg/h", tarfile.LNKTYPE, "pkg/../../etc/passwd")),
        "outside the tree",
    ),
    "hardlink-to-missing": ((_entry("pkg", tarfile.DIRTYPE), _entry("pkg/h", tarfile.LNKTYPE, "pkg/none")), "earlier"),
    "char-device": ((_entry("pkg", tarfile.DIRTYPE), _entry("pkg/null", tarfile.CHRTYPE)), "device node"),
    "block-device": ((_entry("pkg", tarfile.DIRTYPE), _entry("pkg/sda", tarfile.BLKTYPE)), "device node"),
    "fifo": ((_entry("pkg", tarfile.DIRTYPE), _entry("pkg/pipe", tarfile.FIFOTYPE)), "FIFO"),
    "two-top-dirs": ((_entry("a", tarfile.DIRTYPE), _file("a/x"), _entry("b", tarfile.DIRTYPE)), "second top-level"),
    "top-level-file": ((_file("README"),), "not a directory"),
    "duplicate": ((_entry("pkg", tarfile.DIRTYPE), _file("pkg/x"), _file("pkg/x", b"other")), "appears twice"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_naming_the_entry(tmp_path: Path, case: str) -> None:
    adders, fragment = HOSTILE[case]
    tarball = _make(tmp_path / f"{case}.tar.xz", *adders)
    dest = tmp_path / "out"
    _assert_refused_and_clean(tarball, dest, fragment)
    # read_member refuses the same archives instead of searching them.
    with pytest.raises(UnsafeArchive, match=fragment.replace(".", r"\.")):
        read_member(tarball, "never/there", max_bytes=100)
    # Nothing escaped into the directories around dest.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([tarball.name, "out"])


def test_entry_cap(tmp_path: Path) -> None:
    files = [_file(f"pkg/f{i}") for i in range(20)]
    tarball = _make(tmp_path / "many.tar.gz", _entry("pkg", tarfile.DIRTYPE), *files, mode="w:gz")
    _assert_refused_and_clean(tarball, tmp_path / "out", "more than 10 entries", max_entries=10)
    assert safe_unpack(tarball, tmp_path / "ok", max_entries=21).name == "pkg"


def test_total_size_cap_names_the_entry(tmp_path: Path) -> None:
    tarball = _make(
        tmp_path / "big.tar.xz", _entry("pkg", tarfile.DIRTYPE), _file("pkg/a", b"x" * 600), _file("pkg/b", b"y" * 600)
    )
    _assert_refused_and_clean(tarball, tmp_path / "out", "'pkg/b': 600 bytes would bring", max_total_bytes=1000)


def _zeros_xz_stream(size: int) -> bytes:
    compressor = lzma.LZMACompressor(preset=0)
    chunk = bytes(1 << 20)
    out = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(out) + compressor.flush()


def _write_bomb(path: Path, header: bytes, total_zeros: int) -> None:
    """A tar.xz of ``header`` followed by ``total_zeros`` zero bytes, built by streaming.

    xz files may be a concatenation of streams, so one 64 MiB stream of zeros is compressed once and
    repeated: a 1 GiB bomb costs a fraction of a second to build and is ~150 KB on disk.
    """
    block = 64 << 20
    zeros = _zeros_xz_stream(block)
    with path.open("wb") as out:
        out.write(lzma.compress(header, preset=0))
        for _ in range(total_zeros // block):
            out.write(zeros)


def test_xz_bomb_stops_at_the_cap_quickly(tmp_path: Path) -> None:
    gib = 1 << 30
    header = _info("bomb", tarfile.DIRTYPE).tobuf(tarfile.GNU_FORMAT)
    header += _info("bomb/zeros", size=gib).tobuf(tarfile.GNU_FORMAT)
    tarball = tmp_path / "bomb.tar.xz"
    _write_bomb(tarball, header, gib)
    assert tarball.stat().st_size < 1_000_000
    started = time.monotonic()
    _assert_refused_and_clean(tarball, tmp_path / "out", "'bomb/zeros'", max_total_bytes=10 << 20)
    with pytest.raises(UnsafeArchive, match="bomb/zeros"):
        read_member(tarball, "zeros", max_bytes=1 << 20, max_total_bytes=10 << 20)
    assert time.monotonic() - started < 5


def test_oversized_pax_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    # A pax header claiming 1 GiB: tarfile would read it whole into memory.
    gib = 1 << 30
    header = _info("pkg", tarfile.DIRTYPE).tobuf(tarfile.GNU_FORMAT)
    header += _info("././@PaxHeader", tarfile.XHDTYPE, size=gib).tobuf(tarfile.USTAR_FORMAT)
    tarball = tmp_path / "paxbomb.tar.xz"
    _write_bomb(tarball, header, gib)
    started = time.monotonic()
    error = _assert_refused_and_clean(tarball, tmp_path / "out", "metadata header")
    assert str(MAX_METADATA_BYTES) in error.message
    assert time.monotonic() - started < 5


def test_decompressed_stream_cap_is_a_backstop(tmp_path: Path) -> None:
    # Each pax header is under the per-header limit and the file data under the size cap, but together
    # the metadata makes the tar stream larger than the caps allow: the stream cap stops it.
    def with_comment(name: str) -> Adder:
        info = _info(name, size=1)
        info.pax_headers = {"comment": "c" * (MAX_METADATA_BYTES - 4096)}
        return lambda archive: archive.addfile(info, io.BytesIO(b"x"))

    files = [with_comment(f"pkg/f{i}") for i in range(4)]
    tarball = _make(tmp_path / "stream.tar.gz", _entry("pkg", tarfile.DIRTYPE), *files, mode="w:gz")
    _assert_refused_and_clean(
        tarball, tmp_path / "out", "decompresses to more than", max_total_bytes=1000, max_entries=10
    )
    # With the default caps the same archive is fine: the backstop is not a tighter limit in disguise.
    assert safe_unpack(tarball, tmp_path / "ok").name == "pkg"


def test_truncated_tarball_is_a_clear_error(tmp_path: Path, cpython_fixtures: Path) -> None:
    data = (cpython_fixtures / "Python-3.11.2.tgz").read_bytes()
    truncated = tmp_path / "Python-3.11.2.tgz"
    truncated.write_bytes(data[: len(data) // 2])
    _assert_refused_and_clean(truncated, tmp_path / "out", "corrupt or truncated")
    # Cut in the last few bytes: everything but the end of the stream is there.
    small = _make(tmp_path / "small.tar.xz", *GOOD).read_bytes()
    (tmp_path / "small-cut.tar.xz").write_bytes(small[:-10])
    _assert_refused_and_clean(tmp_path / "small-cut.tar.xz", tmp_path / "out2", "corrupt or truncated")


def test_corrupt_and_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    good = _make(tmp_path / "good.tar.xz", *GOOD).read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flipped.tar.xz").write_bytes(bytes(flipped))
    _assert_refused_and_clean(tmp_path / "flipped.tar.xz", tmp_path / "out", "corrupt or truncated")
    (tmp_path / "plain.tar").write_bytes(b"not compressed at all" * 100)
    _assert_refused_and_clean(tmp_path / "plain.tar", tmp_path / "out", "not an xz or gzip")
    (tmp_path / "garbage.tar.gz").write_bytes(gzip.compress(b"\x01" * 4096))
    _assert_refused_and_clean(tmp_path / "garbage.tar.gz", tmp_path / "out", "corrupt or truncated")
    with pytest.raises(UnsafeArchive, match="cannot read"):
        safe_unpack(tmp_path / "missing.tar.xz", tmp_path / "out")


def test_read_member_finds_streams_and_caps(tmp_path: Path) -> None:
    tarball = _make(tmp_path / "good.tar.xz", *GOOD)
    assert read_member(tarball, "Include/patchlevel.h", max_bytes=1000) == b'#define PY_VERSION "3.99.1"\n'
    assert read_member(tarball, "./Include//patchlevel.h", max_bytes=1000) is not None
    assert read_member(tarball, "Include/missing.h", max_bytes=1000) is None
    # A symlink is not the file itself: not followed.
    assert read_member(tarball, "link", max_bytes=1000) is None
    with pytest.raises(UnsafeArchive, match="more than the 10-byte limit"):
        read_member(tarball, "Include/patchlevel.h", max_bytes=10)
    with pytest.raises(ValueError, match="inside the tree"):
        read_member(tarball, "../etc/passwd", max_bytes=10)


def test_real_cpython_tarball_unpacks(tmp_path: Path, cpython_fixtures: Path) -> None:
    tarball = cpython_fixtures / "Python-3.13.5.tar.xz"
    started = time.monotonic()
    top = safe_unpack(tarball, tmp_path / "src")
    elapsed = time.monotonic() - started
    assert top.name == "Python-3.13.5"
    assert b'PY_VERSION              "3.13.5"' in (top / "Include" / "patchlevel.h").read_bytes()
    with tarfile.open(tarball) as reference:
        names = reference.getnames()
    unpacked = [p for p in top.rglob("*")]
    assert len(unpacked) + 1 == len(names)  # + the top directory itself
    assert elapsed < 60, elapsed


def test_real_patchlevel_without_unpacking(cpython_fixtures: Path) -> None:
    for name, version in (("Python-3.13.5.tar.xz", b"3.13.5"), ("Python-3.11.2.tgz", b"3.11.2")):
        data = read_member(cpython_fixtures / name, "Include/patchlevel.h", max_bytes=64 * 1024)
        assert data is not None
        assert b'#define PY_VERSION              "' + version + b'"' in data


# -- the data policy with and without PEP 706's filters (Debian 12's own python3, 3.11.2, has none) ----

WITH_AND_WITHOUT_FILTERS = pytest.mark.parametrize(
    "filters", [pytest.param(True, id="pep706-filters"), pytest.param(False, id="without-filters")]
)


def _use_filters(monkeypatch: pytest.MonkeyPatch, filters: bool) -> None:
    if filters and not unpack.HAS_EXTRACTION_FILTERS:
        pytest.skip("this interpreter has no PEP 706 extraction filters")
    monkeypatch.setattr(unpack, "HAS_EXTRACTION_FILTERS", filters)


@WITH_AND_WITHOUT_FILTERS
def test_a_good_archive_unpacks_the_same_with_or_without_extraction_filters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: bool
) -> None:
    _use_filters(monkeypatch, filters)
    risky = _info("pkg/setuid", size=2)
    risky.mode = 0o4777
    tarball = _make(tmp_path / "good.tar.xz", *GOOD, lambda archive: archive.addfile(risky, io.BytesIO(b"x\n")))
    root = safe_unpack(tarball, tmp_path / "dest")
    assert (root / "link").read_bytes() == b'#define PY_VERSION "3.99.1"\n'
    assert (root / "hard").read_bytes() == b"readme\n"
    # No set-id bit and no group or other write, whatever the archive says.
    assert stat.S_IMODE((root / "setuid").stat().st_mode) == 0o755


@WITH_AND_WITHOUT_FILTERS
@pytest.mark.parametrize(
    ("member", "fragment"),
    [
        (_info("../escape"), "outside the destination"),
        (_info("pkg/up", tarfile.SYMTYPE, link="../../outside"), "outside the destination"),
        (_info("pkg/abs", tarfile.SYMTYPE, link="/etc/passwd"), ""),
        (_info("pkg/hard", tarfile.LNKTYPE, link="../outside"), ""),
        (_info("pkg/device", tarfile.CHRTYPE), ""),
        (_info("pkg/fifo", tarfile.FIFOTYPE), ""),
    ],
    ids=["dotdot", "symlink-up", "symlink-absolute", "hardlink-up", "device", "fifo"],
)
def test_the_data_policy_refuses_what_leaves_the_destination_with_or_without_filters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: bool, member: tarfile.TarInfo, fragment: str
) -> None:
    _use_filters(monkeypatch, filters)
    tarball = _make(tmp_path / "one.tar", lambda archive: archive.addfile(member), mode="w")
    destination = tmp_path / "dest"
    destination.mkdir()
    with tarfile.open(tarball) as archive, pytest.raises(unpack.RefusedMember, match=fragment or None):
        unpack.extract_data_member(archive, archive.getmembers()[0], destination)
    assert list(destination.iterdir()) == []
    assert not (tmp_path / "outside").exists() and not (tmp_path / "escape").exists()
