"""The one deb822 reader, on real Debian data and on the corner cases of the format."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from verify.environments.debian import InstalledPackage, lock_packages
from verify.environments.errors import LockFileError
from verify.source.locations.apt_sources import parse_deb822_sources
from verify.source.locations.deb822 import first_paragraph, iter_paragraphs
from verify.source.locations.debian import DebianIndexError, find_package

DATA = Path(__file__).parent / "data" / "debian"


def test_real_sources_paragraphs_keep_multi_line_fields_as_written() -> None:
    text = (DATA / "sid-python3.13.Sources").read_text()
    paragraphs = list(iter_paragraphs(text))
    assert len(paragraphs) == len(re.findall(r"^Package:", text, re.MULTILINE)) == 2
    checksums = paragraphs[0]["Checksums-Sha256"].splitlines()
    assert checksums[0] == "" and all(line.startswith(" ") for line in checksums[1:])
    # Written back field by field, a paragraph is the original text (up to trailing blanks on a line).
    rebuilt = "\n".join(
        f"{key}:{value}" if value.startswith("\n") else f"{key}: {value}" for key, value in paragraphs[0].items()
    )
    original = text.split("\n\n", 1)[0]
    assert [line.rstrip() for line in rebuilt.splitlines()] == [line.rstrip() for line in original.splitlines()]


def test_format_rules_comments_continuations_blank_lines_and_junk() -> None:
    text = (
        "# a comment\nPackage: a\nDescription: short\n long line\n .\n\tend\nno colon here is ignored\n"
        "Version:1\n \t \nPackage : b\n"
    )
    first, second = iter_paragraphs(text)
    assert first == {"Package": "a", "Description": "short\n long line\n .\n\tend", "Version": "1"}
    assert second == {"Package": "b"}, "a whitespace-only line separates paragraphs; names are stripped"
    assert first_paragraph("") == {} and list(iter_paragraphs("\n\n \n")) == []
    assert first_paragraph(" orphan continuation\nKey: value\n") == {"Key": "value"}


def test_apt_sources_read_through_the_same_reader() -> None:
    text = (
        "# disabled mirror\nTypes: deb deb-src\nURIs: http://mirror.invalid/debian/\n  http://second.invalid/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://off.invalid\n"
        "Suites: bookworm\nEnabled: no\n"
    )
    sources = parse_deb822_sources(text)
    assert [source.uri for source in sources] == ["http://mirror.invalid/debian", "http://second.invalid/debian"]
    assert sources[0].suites == ("bookworm", "bookworm-updates")


def test_malformed_index_entries_are_one_line_errors() -> None:
    entry = "Package: bash\nVersion: 1\nArchitecture: amd64\nFilename: pool/b.deb\nSize: big\nSHA256: " + "2" * 64
    with pytest.raises(LockFileError, match="lacks Filename, Size or SHA256") as error:
        lock_packages([InstalledPackage("bash", "1", "amd64")], [entry])
    assert "\n" not in str(error.value)
    stanza = (DATA / "trixie-python3.13.Sources").read_text()
    broken = re.sub(r"^ [0-9a-f]{64} ", " nothex ", stanza, count=1, flags=re.MULTILINE)
    with pytest.raises(DebianIndexError, match=r"malformed Checksums-Sha256 line 'nothex") as caught:
        find_package(broken, "python3.13")
    assert "\n" not in str(caught.value)


def _largest_apt_packages_index() -> str | None:
    """This host's biggest Packages index from apt's lists (apt keeps them lz4-compressed)."""
    candidates = sorted(Path("/var/lib/apt/lists").glob("*_binary-*_Packages*"), key=lambda path: path.stat().st_size)
    if not candidates:
        return None
    largest = candidates[-1]
    if largest.suffix == ".lz4":
        if shutil.which("lz4") is None:
            return None
        return subprocess.run(["lz4", "-dc", str(largest)], capture_output=True, check=True).stdout.decode("utf-8")
    return largest.read_text(encoding="utf-8") if largest.name.endswith("_Packages") else None


def test_a_full_packages_index_is_read_in_seconds() -> None:
    text = _largest_apt_packages_index()
    if text is None:
        pytest.skip("no readable Packages index in this host's apt lists (run apt-get update)")
    started = time.monotonic()
    count = sum(1 for paragraph in iter_paragraphs(text) if "Package" in paragraph)
    elapsed = time.monotonic() - started
    assert count == len(re.findall(r"^Package:", text, re.MULTILINE))
    # Measured: 1.0-1.3 s for bookworm's 50 MB main/binary-amd64 (python-debian without apt_pkg: 10-13 s).
    assert elapsed < 0.5 + len(text) / 10_000_000, f"{len(text)} characters took {elapsed:.1f} s"
