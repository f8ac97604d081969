"""Print one opcode table for ``verify/pyc/opcodes.py`` from the interpreter that runs this script.

Run it with each real interpreter (e.g. ``python3.12 make_opcode_tables.py``) and paste the output into
``_TABLES`` there; a table is keyed by the interpreter's magic number, so it is only ever applied to
``.pyc`` files that this interpreter's version would have written.
"""

import importlib.util
import sys

try:
    import _opcode_metadata as source  # 3.13+: the generated table (``opcode`` itself needs the _opcode module)
except ImportError:
    import opcode as source  # type: ignore[no-redef]

magic = int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")
names = sorted((number, name) for name, number in source.opmap.items() if number < 256)
print(f"    # Python {sys.version.split()[0]}: opcode number, name")
print(f"    {magic}: ({source.HAVE_ARGUMENT}, \"\"\"")
for number, name in names:
    print(f"{number} {name}")
print('"""),')
