"""Does cpython-verify's ``.pyc`` reader load what CPython's own ``marshal`` loads? The oracle check.

For a rebuilt (or any installed) interpreter, every ``.pyc`` of its standard library is read twice: by that
interpreter's own ``marshal`` (``tests/data/pyc/dump_code_objects.py`` runs under it) and by
``verify.pyc`` on this host, whatever this host's Python version. Every code object is compared on the
fields ``tests/test_pyc.py`` compares for the host's own stdlib: qualified name, file name, first line,
bytecode, names, line and exception tables, argument counts, flags, stack size, local names (as a set) and
the non-code constants (frozensets, slices and frozendicts included, in a canonical order).

    python bench/pyc_oracle.py rebuild-3.14.4-default           # a rebuild result directory
    python bench/pyc_oracle.py --python PREFIX/bin/python3.14t   # an interpreter that runs on this host

A rebuilt interpreter runs in the pinned environment its ``rebuild.json`` names (the bwrap runner; a 3.14
built on trixie needs trixie's glibc), its install tree bound read-only at ``/out``. It prints one line
per interpreter (files, code objects, the magic number and cache tag it wrote) and exits 0 when every
file agrees, 1 when one does not (the first few are listed), 2 when the interpreter cannot be found or run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from verify.pyc import CodeObject, PycError, load_pyc
from verify.pyc.values import FrozenDictValue, FrozenSetValue, SliceValue, Value

DUMPER = Path(__file__).resolve().parent.parent / "tests" / "data" / "pyc" / "dump_code_objects.py"
SHOWN_MISMATCHES = 10


def canonical_constant(value: Value) -> str:
    """The same text ``dump_code_objects.canonical_constant`` gives the real constant."""
    if isinstance(value, CodeObject):
        return f"<code {value.display_name}>"
    if isinstance(value, tuple):
        return "(" + ", ".join(canonical_constant(item) for item in value) + ",)"
    if isinstance(value, FrozenSetValue):
        return "frozenset(" + ", ".join(sorted(canonical_constant(item) for item in value.items)) + ")"
    if isinstance(value, SliceValue):
        return "slice(" + ", ".join(canonical_constant(v) for v in (value.start, value.stop, value.step)) + ")"
    if isinstance(value, FrozenDictValue):
        pairs = (f"{canonical_constant(k)}: {canonical_constant(v)}" for k, v in value.items)
        return "frozendict(" + ", ".join(pairs) + ")"
    if isinstance(value, float | complex):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, int) and not isinstance(value, bool):
        return "int:" + hex(value)
    return ascii(value)


def _walk(code: CodeObject) -> list[CodeObject]:
    out = [code]
    for const in code.consts:
        if isinstance(const, CodeObject):
            out.extend(_walk(const))
    return out


def _digest(record: dict[str, object]) -> str:
    """``dump_code_objects.digest``: sha256 of the record's canonical JSON."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode("ascii")).hexdigest()


def _read_one(path: Path) -> tuple[int, list[str]] | str:
    """(magic, the digest of every code object) as our reader sees the file, or why it refused it."""
    try:
        loaded = load_pyc(path.read_bytes())
    except PycError as error:
        return f"our reader refused it: {error}"
    return loaded.header.magic, [_digest(record) for record in describe(loaded.code)]


def describe(code: CodeObject) -> list[dict[str, object]]:
    """Our reader's view of ``code``, in ``dump_code_objects.describe``'s shape."""
    return [
        {
            "qualname": item.qualname,
            "filename": item.filename,
            "firstlineno": item.firstlineno,
            "code": item.code.hex(),
            "names": list(item.names),
            "linetable": item.linetable.hex(),
            "exceptiontable": item.exceptiontable.hex(),
            "counts": [item.argcount, item.posonlyargcount, item.kwonlyargcount, item.flags, item.stacksize],
            "locals": sorted(set(item.localsplusnames)),
            "consts": [canonical_constant(c) for c in item.consts if not isinstance(c, CodeObject)],
        }
        for item in _walk(code)
    ]


@dataclass
class OracleResult:
    """The outcome for one interpreter's standard library."""

    python: Path
    stdlib: Path
    files: int = 0
    code_objects: int = 0
    magics: set[int] = field(default_factory=set)
    cache_tags: set[str] = field(default_factory=set)
    mismatches: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        """Every file read, and read alike by both (nothing read is never agreement)."""
        return self.files > 0 and not self.mismatches


@dataclass(frozen=True)
class Target:
    """An interpreter and its standard library; ``result`` set when it is a rebuild's, run in its sandbox."""

    python: Path
    stdlib: Path
    prefix: Path
    result: Path | None = None


def _dump_on_host(target: Target) -> str:
    completed = subprocess.run(
        [str(target.python), "-I", "-S", str(DUMPER), str(target.stdlib)],
        capture_output=True, text=True, check=False,
        env={"PYTHONHOME": str(target.prefix), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if completed.returncode != 0:
        raise SystemExit(f"pyc_oracle: {target.python} failed: {completed.stderr.strip().splitlines()[-1:]}")
    return completed.stdout


def _dump_in_sandbox(target: Target, scratch: Path) -> str:
    """The dump, run by the rebuilt interpreter in the environment it was built in (the result's record)."""
    from verify.environments import get_runner, image_for
    from verify.environments.interface import Bind, SandboxSpec

    assert target.result is not None
    record = json.loads((target.result / "rebuild.json").read_text())
    image = image_for(record["inputs"]["environment"]["name"])
    root = target.result / "root"
    inside = "/out/" + target.python.relative_to(root).as_posix()
    stdlib = "/out/" + target.stdlib.relative_to(root).as_posix()
    tools = scratch / "tools"
    tools.mkdir()
    (tools / DUMPER.name).write_bytes(DUMPER.read_bytes())
    log = scratch / "dump.log"
    spec = SandboxSpec(binds=(Bind(root, "/out"), Bind(tools, "/src")), env={"PATH": "/usr/bin:/bin"})
    ran = get_runner("bwrap").run(image, [inside, "-I", "-S", f"/src/{DUMPER.name}", stdlib], spec, log_path=log)
    output = log.read_text(errors="replace")
    if ran.returncode != 0:
        raise SystemExit(f"pyc_oracle: {inside} failed in {image.name}: {output.strip().splitlines()[-1:]}")
    return output


def check(target: Target, jobs: int | None = None) -> OracleResult:
    """Run the target's marshal over its stdlib and compare each file with :func:`verify.pyc.load_pyc`."""
    if target.result is None:
        output = _dump_on_host(target)
    else:
        with tempfile.TemporaryDirectory(prefix="pyc-oracle-") as scratch:
            output = _dump_in_sandbox(target, Path(scratch))
    stdlib = target.stdlib
    result = OracleResult(target.python, stdlib)
    theirs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    paths = [stdlib / item["path"] for item in theirs]
    with ProcessPoolExecutor(max_workers=jobs) as pool:  # our reader is pure Python: one process per core
        ours_all = list(pool.map(_read_one, paths, chunksize=64))
    for item, ours in zip(theirs, ours_all, strict=True):
        result.files += 1
        result.cache_tags.update(part for part in Path(item["path"]).name.split(".") if part.startswith("cpython-"))
        if "error" in item:
            result.mismatches.append(f"{item['path']}: its own marshal refused it: {item['error']}")
            continue
        if isinstance(ours, str):
            result.mismatches.append(f"{item['path']}: {ours}")
            continue
        magic, digests = ours
        result.magics.add(magic)
        result.code_objects += len(digests)
        if digests != item["code_objects"]:
            pairs = zip(digests, item["code_objects"], strict=False)
            first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
            where = "a different number of code objects" if first is None else f"code object #{first}"
            result.mismatches.append(f"{item['path']}: {where} differs")
    return result


def locate(result_dir: Path) -> Target:
    """The interpreter and standard library of a rebuild result (``root/opt/python``), run in its sandbox."""
    python, stdlib, prefix = _from_prefix(result_dir / "root" / "opt" / "python")
    return Target(python, stdlib, prefix, result_dir)


def _from_prefix(prefix: Path) -> tuple[Path, Path, Path]:
    stdlibs = sorted(p for p in (prefix / "lib").glob("python3.*") if (p / "os.py").is_file())
    if len(stdlibs) != 1:
        raise SystemExit(f"pyc_oracle: expected one lib/python3.* stdlib under {prefix}, found {len(stdlibs)}")
    stdlib = stdlibs[0]
    python = prefix / "bin" / stdlib.name
    if not python.is_file():
        raise SystemExit(f"pyc_oracle: no interpreter {python}")
    return python, stdlib, prefix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="*", type=Path, help="rebuild result directories")
    parser.add_argument("--python", action="append", type=Path, default=[], help="an installed interpreter")
    args = parser.parse_args(argv)
    try:
        targets = [locate(r) for r in args.results]
        targets += [Target(*_from_prefix(p.resolve().parent.parent)) for p in args.python]
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    if not targets:
        parser.error("name at least one rebuild result or --python")
    status = 0
    for target in targets:
        try:
            result = check(target)
        except SystemExit as error:
            print(error, file=sys.stderr)
            return 2
        verdict = "agree" if result.agrees else f"DIFFER in {len(result.mismatches)} file(s)"
        print(
            f"{target.python}: {result.files} .pyc, {result.code_objects} code objects, magic "
            f"{sorted(result.magics)}, cache tag {sorted(result.cache_tags)}: {verdict}"
        )
        for line in result.mismatches[:SHOWN_MISMATCHES]:
            print(f"  {line}")
        if not result.agrees:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
