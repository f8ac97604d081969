"""Print what an interpreter's own ``marshal`` loads from every ``.pyc`` under a directory, as JSON lines.

Usage: ``pythonX.Y dump_code_objects.py DIR`` with the interpreter whose ``.pyc`` files are under DIR
(e.g. a rebuilt ``python3.14`` on its own ``lib/python3.14``). Each line is one file: its path relative to
DIR, its magic number, and for every code object in it (depth first through ``co_consts``, as
``tests/test_pyc.py`` walks them) the sha256 of the canonical JSON of the fields that test compares with
cpython-verify's reader (``bench/pyc_oracle.py`` computes the same from its side): names,
location, bytecode, line and exception tables, argument counts, flags, stack size, the local names as a
set, and the constants that are not code objects. Constants are written in one canonical text form, so a
3.11 host can compare them with the values its own reader loaded (``canonical_constant`` in the test).

It runs on 3.11 and later, keeps to the standard library and writes nothing but standard output.
"""

import hashlib
import json
import marshal
import sys
import types
from pathlib import Path


def canonical_constant(value):
    """A text that two equal constants share and two different ones do not (``repr`` with fixed order)."""
    if isinstance(value, types.CodeType):
        return "<code " + value.co_qualname + ">"
    if isinstance(value, tuple):
        return "(" + ", ".join(canonical_constant(item) for item in value) + ",)"
    if isinstance(value, frozenset):
        return "frozenset(" + ", ".join(sorted(canonical_constant(item) for item in value)) + ")"
    if isinstance(value, slice):
        return "slice(" + ", ".join(canonical_constant(v) for v in (value.start, value.stop, value.step)) + ")"
    if type(value).__name__ == "frozendict":
        return (
            "frozendict("
            + ", ".join(canonical_constant(k) + ": " + canonical_constant(v) for k, v in value.items())
            + ")"
        )
    if isinstance(value, float | complex):
        return type(value).__name__ + ":" + repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return "int:" + hex(value)  # repr of a huge int can exceed the digit limit
    # ascii, not repr: which characters repr escapes follows each version's Unicode database.
    return ascii(value)


def describe(code):
    """The compared fields of ``code`` and of every code object in its constants, depth first."""
    record = {
        "qualname": code.co_qualname,
        "filename": code.co_filename,
        "firstlineno": code.co_firstlineno,
        "code": code.co_code.hex(),
        "names": list(code.co_names),
        "linetable": code.co_linetable.hex(),
        "exceptiontable": code.co_exceptiontable.hex(),
        "counts": [code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags, code.co_stacksize],
        "locals": sorted(set(code.co_varnames + code.co_cellvars + code.co_freevars)),
        "consts": [canonical_constant(c) for c in code.co_consts if not isinstance(c, types.CodeType)],
    }
    nested = [r for c in code.co_consts if isinstance(c, types.CodeType) for r in describe(c)]
    return [record, *nested]


def digest(record):
    """sha256 of a record's canonical JSON: what is compared, so that a whole stdlib's dump stays small."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode("ascii")).hexdigest()


def main(top):
    root = Path(top)
    for path in sorted(root.rglob("*.pyc")):
        data = path.read_bytes()
        line = {"path": path.relative_to(root).as_posix(), "magic": int.from_bytes(data[:2], "little")}
        try:
            line["code_objects"] = [digest(record) for record in describe(marshal.loads(data[16:]))]
        except (ValueError, EOFError, TypeError) as error:
            line["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(line, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
