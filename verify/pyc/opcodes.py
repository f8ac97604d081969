"""Opcode names per ``.pyc`` magic number, taken from real interpreters.

The tables live in ``opcodes.json`` beside this module, written by ``tests/data/pyc/make_opcode_tables.py``
running under each release's interpreter (the file records which: 3.8.18, 3.9.18, 3.10.13, 3.11.2, 3.12.1,
3.13.0, and the 3.14.4 and 3.15.0rc1 cpython-verify rebuilt, run in their own environment; 3.13.5 prints the
same table as 3.13.0). Each is keyed by the magic number that interpreter writes, so it is never applied to
bytecode from another release. Other magic numbers (pre-releases, 3.16+) have no table: their instructions
are shown by number (``<81>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Final


@dataclass(frozen=True, slots=True)
class OpcodeTable:
    """Opcode names of one bytecode format."""

    have_argument: int
    """Opcodes from this number up use their argument byte."""
    names: dict[int, str]

    def name(self, opcode: int) -> str:
        """The opcode's name, or ``<N>`` for a number this release does not define."""
        return self.names.get(opcode, f"<{opcode}>")


def _load_tables() -> dict[int, OpcodeTable]:
    document = json.loads(files("verify.pyc").joinpath("opcodes.json").read_bytes())
    return {
        int(magic): OpcodeTable(
            have_argument=int(entry["have_argument"]),
            names={int(number): str(name) for number, name in entry["names"].items()},
        )
        for magic, entry in document["tables"].items()
    }


OPCODE_TABLES: Final[dict[int, OpcodeTable]] = _load_tables()


def opcode_table(magic: int) -> OpcodeTable | None:
    """The opcode table for ``.pyc`` files with this magic number, if a real interpreter's is known."""
    return OPCODE_TABLES.get(magic)
