"""Every reader of a cpython-verify JSON format refuses hostile input the same way: one line naming the file
(and, for a document that parses, the field), exit 2, never a traceback and never a hang.

Each reader is tried with the same hostile inputs: bytes that are not JSON, a document of the wrong
top-level type, a missing, an unknown and a mistyped field, 50,000 levels of nesting (alone and inside an
otherwise valid document), and a FIFO or a directory where the file should be. In process for every case,
and through the CLI for a few, to see the exit code and stderr a user sees.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from test_attest_support import openssl_keypair

from verify.common.errors import EXIT_ERROR, VerifyError
from verify.manifest import MANIFEST_FORMAT, read_manifest
from verify.site.plan import PLAN_FORMAT, read_plan
from verify.site.release_listing import read_release_listing

DEEP = 50_000


@dataclass(frozen=True)
class Reader:
    """A format's reader, a valid document of the format, and three ways to break one of its fields."""

    read: Callable[[Path], object]
    valid: dict[str, Any]
    missing: tuple[str, ...]
    """Where a required key is taken out (keys from the top), and its name."""
    mistyped: tuple[tuple[str | int, ...], object, str]
    """Where a value of another type goes, the value, and the field the message must name."""
    deep_at: tuple[str | int, ...]
    """Where 50,000 levels of nesting replace a value."""


READERS = {
    "plan": Reader(
        read=read_plan,
        valid={
            "format": PLAN_FORMAT,
            "include": [
                {
                    "version": "3.13.5",
                    "series": "3.13",
                    "profile": "default",
                    "runner": "bwrap",
                    "id": "x",
                    "rebuilder": "a",
                }
            ],
        },
        missing=("include", 0, "series"),
        mistyped=(("include", 0, "runner"), 7, "runner"),
        deep_at=("include", 0, "id"),
    ),
    "releases": Reader(
        read=read_release_listing,
        valid={
            "format": "cpython-verify/releases/v1",
            "releases": [
                {
                    "version": "3.13.5",
                    "series": "3.13",
                    "released_at": "2025-06-11T21:35:00+00:00",
                    "pre_release": False,
                    "page": None,
                }
            ],
        },
        missing=("releases", 0, "pre_release"),
        mistyped=(("releases", 0, "pre_release"), "no", "pre_release"),
        deep_at=("releases", 0, "page"),
    ),
    "manifest": Reader(
        read=read_manifest,
        valid={
            "format": MANIFEST_FORMAT,
            "inputs": {"runner": "bwrap"},
            "entries": [
                {"path": "opt", "kind": "directory", "mode": "0755"},
                {"path": "opt/x", "kind": "text", "mode": "0644", "sha256": "0" * 64, "size": 3},
            ],
        },
        missing=("entries", 1, "mode"),
        mistyped=(("entries", 1, "size"), "3", "size"),
        deep_at=("inputs", "runner"),
    ),
}


def _set(document: dict[str, Any], where: tuple[str | int, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target: Any = changed
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    return changed


def _without(document: dict[str, Any], where: tuple[str | int, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target: Any = changed
    for step in where[:-1]:
        target = target[step]
    del target[where[-1]]
    return changed


def _deep() -> Any:
    value: Any = []
    for _ in range(DEEP - 1):
        value = [value]
    return value


def _write(path: Path, data: bytes | dict[str, Any] | list[Any] | str) -> None:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        # json.dumps of 50,000 levels recurses too: write the nesting by hand where it is.
        path.write_text(json.dumps(data).replace('"@DEEP@"', "[" * DEEP + "]" * DEEP))


# case -> (what to put at the file's path, words the one line must hold besides the file's name)
def _cases(reader: Reader) -> dict[str, tuple[Callable[[Path], None], tuple[str, ...]]]:
    where, value, field = reader.mistyped
    return {
        "not-json": (lambda p: _write(p, b"{not json\n"), ("not valid JSON",)),
        "an-elf-file": (lambda p: _write(p, b"\x7fELF\x02\x01\x01" + b"\0" * 60), ("not valid JSON", "ELF")),
        "a-list": (lambda p: _write(p, []), ("must be an object, not a list",)),
        "a-string": (lambda p: _write(p, "plan"), ("must be an object, not a string",)),
        "missing-field": (
            lambda p: _write(p, _without(reader.valid, reader.missing)),
            (f"missing key '{reader.missing[-1]}'",),
        ),
        "unknown-field": (lambda p: _write(p, {**reader.valid, "surprise": 1}), ("unknown key(s): surprise",)),
        "unknown-nested-field": (
            lambda p: _write(p, _set(reader.valid, (*reader.missing[:-1], "surprise"), 1)),
            ("unknown key(s): surprise",),
        ),
        "mistyped-field": (lambda p: _write(p, _set(reader.valid, where, value)), (f"'{field}'",)),
        "nested-50000": (lambda p: _write(p, b"[" * DEEP + b"]" * DEEP), ("nested deeper than 64 levels",)),
        "nested-50000-inside": (
            lambda p: _write(p, _set(reader.valid, reader.deep_at, "@DEEP@")),
            ("nested deeper than 64 levels",),
        ),
        "fifo": (lambda p: os.mkfifo(p), ("not a regular file",)),
        "directory": (lambda p: p.mkdir(), ("Is a directory",)),
    }


@pytest.mark.parametrize("name", sorted(READERS))
def test_the_valid_document_is_read(name: str, tmp_path: Path) -> None:
    path = tmp_path / "document.json"
    _write(path, READERS[name].valid)
    READERS[name].read(path)


@pytest.mark.parametrize("case", sorted(_cases(READERS["plan"])))
@pytest.mark.parametrize("name", sorted(READERS))
def test_hostile_input_is_one_line_naming_the_file_and_field(name: str, case: str, tmp_path: Path) -> None:
    reader = READERS[name]
    damage, words = _cases(reader)[case]
    path = tmp_path / "document.json"
    damage(path)
    with pytest.raises(VerifyError) as caught:
        reader.read(path)
    message = caught.value.message
    assert caught.value.exit_code == EXIT_ERROR, message
    assert str(path) in message and "\n" not in message and len(message) < 400, message
    for word in words:
        assert word in message, message


def _cli(name: str, path: Path, tmp_path: Path) -> tuple[object, ...]:
    if name == "plan":
        _private, public = openssl_keypair(tmp_path, "k")
        return ("merge", tmp_path, "--public-key", public, "--plan", path, "--out", tmp_path / "site")
    if name == "releases":
        return ("plan", "--releases", path)
    return ("compare", path, path)


CLI_CASES = [
    ("plan", "unknown-field"),
    ("plan", "fifo"),
    ("releases", "mistyped-field"),
    ("releases", "a-list"),
    ("manifest", "nested-50000-inside"),
]


@pytest.mark.parametrize(("name", "case"), CLI_CASES)
def test_through_the_cli_it_is_exit_2_and_one_line(name: str, case: str, tmp_path: Path) -> None:
    damage, words = _cases(READERS[name])[case]
    path = tmp_path / "document.json"
    damage(path)
    completed = run_cli(*_cli(name, path, tmp_path), timeout=60)
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert str(path) in lines[0] and all(word in lines[0] for word in words), lines[0]
    assert not (tmp_path / "site").exists()
