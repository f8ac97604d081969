"""A ``dis``-style listing of marshalled bytecode, for any supported version, without the host's ``dis``.

Arguments are resolved to constants, names and local variables where that is cheap and unambiguous;
everything else is shown as the raw number, which is stable for identical code.
"""

from __future__ import annotations

from dataclasses import dataclass

from verify.pyc.opcodes import OpcodeTable, opcode_table
from verify.pyc.values import CodeObject, short_repr

_CONST_OPS = frozenset({"LOAD_CONST", "RETURN_CONST", "KW_NAMES", "LOAD_CONST_IMMORTAL", "LOAD_CONST_MORTAL"})
_NAME_OPS = frozenset(
    {
        "LOAD_NAME",
        "STORE_NAME",
        "DELETE_NAME",
        "LOAD_GLOBAL",
        "STORE_GLOBAL",
        "DELETE_GLOBAL",
        "LOAD_ATTR",
        "STORE_ATTR",
        "DELETE_ATTR",
        "IMPORT_NAME",
        "IMPORT_FROM",
        "LOAD_METHOD",
        "LOAD_SUPER_ATTR",
        "LOAD_FROM_DICT_OR_GLOBALS",
    }
)
_LOCAL_OPS = frozenset(
    {"LOAD_FAST", "STORE_FAST", "DELETE_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_BORROW"}
)
_CELL_OPS = frozenset(
    {
        "LOAD_DEREF",
        "STORE_DEREF",
        "DELETE_DEREF",
        "LOAD_CLOSURE",
        "MAKE_CELL",
        "LOAD_CLASSDEREF",
        "LOAD_FROM_DICT_OR_DEREF",
    }
)
_PAIR_LOCAL_OPS = frozenset(
    {"LOAD_FAST_LOAD_FAST", "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"}
)


@dataclass(frozen=True, slots=True)
class Instruction:
    """One decoded instruction (inline CACHE entries are skipped, EXTENDED_ARG is folded in)."""

    offset: int
    opcode: int
    opname: str
    arg: int | None
    argrepr: str

    @property
    def text(self) -> str:
        """The instruction without its offset: what a diff should compare."""
        if self.arg is None:
            return self.opname
        suffix = f" ({self.argrepr})" if self.argrepr else ""
        return f"{self.opname} {self.arg}{suffix}"


def _series_tuple(series: str) -> tuple[int, int]:
    major, minor = series.split(".")
    return int(major), int(minor)


def decode(code: CodeObject, *, magic: int, python_version: str) -> list[Instruction]:
    """Decode ``code.code`` into instructions using the opcode table of ``magic``."""
    table = opcode_table(magic)
    version = _series_tuple(python_version)
    raw = code.code
    instructions: list[Instruction] = []
    extended = 0
    for offset in range(0, len(raw) - 1, 2):
        opcode, argbyte = raw[offset], raw[offset + 1]
        if version >= (3, 11) and opcode == 0:
            continue  # CACHE: inline cache entries, always zero in a .pyc
        name = table.name(opcode) if table else f"<{opcode}>"
        arg = (extended << 8) | argbyte
        if name == "EXTENDED_ARG":
            extended = arg
            continue
        extended = 0
        if table is not None and opcode < table.have_argument:
            instructions.append(Instruction(offset, opcode, name, None, ""))
            continue
        instructions.append(Instruction(offset, opcode, name, arg, _argrepr(code, name, arg, version, table)))
    return instructions


def _pick(items: tuple[str, ...], index: int) -> str:
    return items[index] if 0 <= index < len(items) else "?"


def _argrepr(code: CodeObject, name: str, arg: int, version: tuple[int, int], table: OpcodeTable | None) -> str:
    if table is None:
        return ""  # without the release's table a name could mean another opcode; show the number only
    if name in _CONST_OPS:
        return short_repr(code.consts[arg]) if 0 <= arg < len(code.consts) else "?"
    if name == "LOAD_SMALL_INT":
        return str(arg)  # 3.14+: the argument is the value itself
    if name in _NAME_OPS:
        shift = 0
        if (name == "LOAD_GLOBAL" and version >= (3, 11)) or (name == "LOAD_ATTR" and version >= (3, 12)):
            shift = 1
        elif name == "LOAD_SUPER_ATTR" or (name == "IMPORT_NAME" and version >= (3, 15)):
            # 3.15's IMPORT_NAME keeps the lazy/eager import flags in the two low bits (dis: arg // 4).
            shift = 2
        resolved = _pick(code.names, arg >> shift)
        # The low bit of LOAD_GLOBAL's argument (3.11+) says a NULL is pushed first, as dis shows it.
        return f"NULL + {resolved}" if name == "LOAD_GLOBAL" and shift and arg & 1 else resolved
    legacy = version < (3, 11)
    if name in _LOCAL_OPS:
        return _pick(code.varnames if legacy else code.localsplusnames, arg)
    if name in _CELL_OPS:
        return _pick(code.cellvars + code.freevars if legacy else code.localsplusnames, arg)
    if name in _PAIR_LOCAL_OPS:
        return f"{_pick(code.localsplusnames, arg >> 4)}, {_pick(code.localsplusnames, arg & 15)}"
    return ""


def listing(code: CodeObject, *, magic: int, python_version: str) -> list[str]:
    """``dis``-style lines: offset, opcode name, argument, resolved argument."""
    return [f"{ins.offset:>6} {ins.text}" for ins in decode(code, magic=magic, python_version=python_version)]
