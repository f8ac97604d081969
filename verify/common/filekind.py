"""What a file is, by its first bytes, in words for an error message: ``an xz-compressed file``, ``text``.

Every command that takes a file of one kind (a manifest, a verdict, an attestation) and is handed another
says what it expected and what it got, instead of the error of a parser that never should have seen it
(``Extra data``, ``'utf-8' codec can't decode``). Detection is by content, never by the file's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

HEAD_BYTES: Final = 512
"""Bytes read to tell the kinds apart (a tar header's magic is at offset 257)."""

_MAGICS: Final = (
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"!<arch>\n", "an ar archive (a .deb package?)"),
    (b"\x7fELF", "an ELF file"),
    (b"-----BEGIN PGP", "an OpenPGP armored file"),
)


def read_head(path: Path) -> bytes:
    """The first :data:`HEAD_BYTES` bytes of ``path`` (OSError as ``open`` raises it)."""
    with path.open("rb") as stream:
        return stream.read(HEAD_BYTES)


def looks_like_json_object(head: bytes) -> bool:
    """Whether a document starting with ``head`` is meant as a JSON object (its first non-blank byte is ``{``)."""
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n").startswith(b"{")


def describe_head(head: bytes) -> str:
    """What a file starting with ``head`` is, as words after "is": ``an xz-compressed file``, ``empty``..."""
    if not head:
        return "empty"
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar":
        return "a tar archive"
    if looks_like_json_object(head):
        return "a JSON object"
    if head.lstrip(b" \t\r\n").startswith(b"["):
        return "a JSON array"
    if b"\0" in head:
        return "binary data"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut at the end of the head
            return "binary data"
    return "text"
