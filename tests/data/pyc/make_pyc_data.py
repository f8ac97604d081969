"""Write real ``.pyc`` test inputs with the interpreter that runs this script.

Usage: ``pythonX.Y make_pyc_data.py OUTDIR`` (run from this directory). It writes, for that version
(``<tag>`` is ``cpython-XY``, plus ``t`` for a free-threaded interpreter such as ``python3.14t``):

* ``sample.<tag>.<mode>.pyc`` for each PEP 552 invalidation mode (``py_compile``);
* ``refs-a.<tag>.pyc`` / ``refs-b.<tag>.pyc``: one code object marshalled twice, the second time while an
  extra reference to one of its constants is held, so CPython sets FLAG_REF differently (same code);
* ``path-a.<tag>.pyc`` / ``path-b.<tag>.pyc``: ``sample.py`` compiled under two build paths (``dfile``);
* ``changed.<tag>.pyc``: ``sample_changed.py`` (one expression differs) under sample.py's path;
* ``expected.<tag>.json``: what the real interpreter says about every code object (fields and ``dis``).
"""

import dis
import hashlib
import importlib.util
import json
import marshal
import py_compile
import sys
import sysconfig
import types

OUT = sys.argv[1]
# A free-threaded build writes the same cache tag and magic number; "t" keeps its files apart here.
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
TAG = "cpython-{}{}".format(*sys.version_info[:2]) + ("t" if FREE_THREADED else "")
MODES = {
    "timestamp": py_compile.PycInvalidationMode.TIMESTAMP,
    "checked-hash": py_compile.PycInvalidationMode.CHECKED_HASH,
    "unchecked-hash": py_compile.PycInvalidationMode.UNCHECKED_HASH,
}


def out(name):
    return f"{OUT}/{name}.{TAG}.pyc"


for mode_name, mode in MODES.items():
    py_compile.compile(
        "sample.py", cfile=out("sample." + mode_name), dfile="sample.py", invalidation_mode=mode, doraise=True
    )

with open("sample.py", "rb") as f:
    source = f.read()


def hash_header(flags=0b11):
    return importlib.util.MAGIC_NUMBER + flags.to_bytes(4, "little") + importlib.util.source_hash(source)


# Reference flags: marshal sets FLAG_REF only on objects whose reference count is above one.
code = compile(source, "sample.py", "exec", dont_inherit=True)
plain = marshal.dumps(code)
for const in code.co_consts:
    held = const  # an extra reference to this constant while marshalling
    flagged = marshal.dumps(code)
    if flagged != plain:
        break
else:
    raise SystemExit("no constant changed the marshal output when referenced twice")
del held
assert marshal.loads(flagged).co_consts == marshal.loads(plain).co_consts
with open(out("refs-a"), "wb") as f:
    f.write(hash_header() + plain)
with open(out("refs-b"), "wb") as f:
    f.write(hash_header() + flagged)

for side in ("a", "b"):
    py_compile.compile(
        "sample.py",
        cfile=out("path-" + side),
        dfile=f"/build/{side}/Lib/sample.py",
        invalidation_mode=MODES["checked-hash"],
        doraise=True,
    )
py_compile.compile(
    "sample_changed.py", cfile=out("changed"), dfile="sample.py", invalidation_mode=MODES["checked-hash"], doraise=True
)


def describe(co):
    # A name instruction also records the name dis resolves its argument to (from 3.14's data on).
    instructions = [
        [ins.offset, ins.opname, ins.arg] + ([ins.argval] if ins.opcode in dis.hasname else [])
        for ins in dis.get_instructions(co)
        if ins.opname not in ("EXTENDED_ARG", "CACHE")
    ]
    record = {
        "name": co.co_name,
        "qualname": getattr(co, "co_qualname", co.co_name),
        "filename": co.co_filename,
        "firstlineno": co.co_firstlineno,
        "argcount": co.co_argcount,
        "posonlyargcount": co.co_posonlyargcount,
        "kwonlyargcount": co.co_kwonlyargcount,
        "stacksize": co.co_stacksize,
        "flags": co.co_flags,
        "code_sha256": hashlib.sha256(co.co_code).hexdigest(),
        "names": list(co.co_names),
        "varnames": list(co.co_varnames),
        "freevars": list(co.co_freevars),
        "cellvars": list(co.co_cellvars),
        "consts": [repr(c) if not isinstance(c, types.CodeType) else "<code>" for c in co.co_consts],
        "instructions": instructions,
    }
    return [record] + [r for c in co.co_consts if isinstance(c, types.CodeType) for r in describe(c)]


with open(out("sample.timestamp"), "rb") as f:
    loaded = marshal.loads(f.read()[16:])
with open(f"{OUT}/expected.{TAG}.json", "w") as f:
    json.dump(
        {
            "version": "{}.{}".format(*sys.version_info[:2]),
            "full_version": sys.version.split()[0],
            "magic": int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little"),
            "cache_tag": sys.implementation.cache_tag,
            "free_threaded": FREE_THREADED,
            "code_objects": describe(loaded),
        },
        f,
        indent=1,
    )
    f.write("\n")
