"""The one reader of Debian's deb822 format: Sources and Packages indexes, Release files, ``.deb``
control files and apt's ``.sources`` files.

Why not ``python-debian``'s ``debian.deb822``: without ``apt_pkg`` (python3-apt, not installable from
PyPI) it parsed bookworm's 50 MB ``main/binary-amd64/Packages`` (63,440 paragraphs) in 10-13 s,
against 1.3 s here, and it has no notion of an input limit. Size caps belong to the code that reads
the bytes (see :mod:`verify.source.locations.debian`), which knows where they came from.

Rules (Debian Policy 5.1): paragraphs are separated by blank lines (whitespace only); a line
starting with ``#`` is a comment; a line starting with a space or tab continues the previous field
and is kept as written (leading whitespace included), joined with ``\\n``, so a multi-line value
such as ``Description`` or ``Checksums-Sha256`` can be written back unchanged. A line that is
neither a field nor a continuation is ignored, as apt and python-debian ignore it; callers check
the fields they need and say what is wrong in one line.
"""

from __future__ import annotations

from collections.abc import Iterator


def iter_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """The paragraphs of a deb822 document, in order, as field name -> value (first line stripped)."""
    paragraph: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        first = line[:1]
        if first in (" ", "\t"):
            if not line.strip():
                if paragraph:
                    yield paragraph
                paragraph, key = {}, ""
            elif key:
                paragraph[key] += "\n" + line
        elif not line:
            if paragraph:
                yield paragraph
            paragraph, key = {}, ""
        elif first != "#":
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip()
                paragraph[key] = value.strip()
    if paragraph:
        yield paragraph


def first_paragraph(text: str) -> dict[str, str]:
    """The fields of the first paragraph of ``text`` (empty when there is none)."""
    return next(iter_paragraphs(text), {})
