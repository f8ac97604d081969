"""Add the opcode table of the interpreter that runs this script to ``verify/pyc/opcodes.json``.

Run it with each real interpreter, e.g. ``python3.12 tests/data/pyc/make_opcode_tables.py verify/pyc/opcodes.json``:
the table is stored under the interpreter's magic number (replacing one already there), so it is only ever
applied to ``.pyc`` files that this interpreter's version would have written. Without an argument the entry
is printed instead. The script runs unchanged on every interpreter from 3.8 on.
"""

import importlib.util
import json
import sys

try:
    import _opcode_metadata as source  # 3.13+: the generated table (``opcode`` itself needs the _opcode module)
except ImportError:
    import opcode as source  # type: ignore[no-redef]

GENERATED_BY = "tests/data/pyc/make_opcode_tables.py"

magic = int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")
names = sorted((number, name) for name, number in source.opmap.items() if number < 256)
entry = {
    "python": sys.version.split()[0],
    "have_argument": source.HAVE_ARGUMENT,
    "names": {str(number): name for number, name in names},
}

if len(sys.argv) > 1:
    path = sys.argv[1]
    with open(path, encoding="utf-8") as stream:
        tables = json.load(stream)["tables"]
    tables[str(magic)] = entry
    # Numeric order, not json's string order, so the file reads (and diffs) from the oldest format up.
    ordered = {key: tables[key] for key in sorted(tables, key=int)}
    with open(path, "w", encoding="utf-8") as stream:
        json.dump({"generated_by": GENERATED_BY, "tables": ordered}, stream, indent=1)
        stream.write("\n")
    print(f"{path}: table for magic {magic} (Python {entry['python']})")
else:
    print(json.dumps({str(magic): entry}, indent=1))
