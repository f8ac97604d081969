"""Reading what the user hands the audit: a quilt patch directory, and the installation inputs.

Nothing here executes anything from an input; archives are unpacked by :mod:`verify.source.unpack` under
its hostile-archive rules.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, cast

from verify.audit.conventions import TABLES
from verify.audit.model import AuditError, NothingToAudit
from verify.audit.patches import MAX_PATCH_BYTES, Patch, PatchError, parse_patch, parse_series
from verify.common.errors import UnsafeArchive
from verify.common.jsonutil import JsonLimitError, loads_bounded
from verify.source.unpack import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_LAYERS,
    BoundedTarInfo,
    FileSlice,
    RootBuilder,
    UnpackLimits,
)


def _read_capped(path: Path, limit: int, what: str) -> str:
    """The text of the regular file ``path`` (no link followed), refused past ``limit`` bytes."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise PatchError(f"{what}: cannot read {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise PatchError(f"{what}: {path} is not a regular file")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise PatchError(f"{what}: {path} is larger than {limit} bytes")
    return data.decode("utf-8", "surrogateescape")


def read_patch_series(directory: Path) -> list[Patch]:
    """Every patch named in ``directory/series``, in order (a Debian source package's ``debian/patches``).

    Patch names and the paths inside patches must stay inside their trees: a name with ``..`` or an
    absolute path, or a link, is refused with :class:`PatchError`.
    """
    series = _read_capped(directory / "series", MAX_PATCH_BYTES, "--patches")
    patches = []
    for name in parse_series(series):
        text = _read_capped(directory / name, MAX_PATCH_BYTES, f"--patches {name}")
        patches.append(parse_patch(name, text))
    return patches


# --- installation inputs ---------------------------------------------------------------------------

MAX_INDEX_BYTES: Final = 4 * 1024 * 1024
"""Largest manifest / index / config JSON read from an image."""
MAX_AR_MEMBERS: Final = 16
MAX_CONTROL_BYTES: Final = 1024 * 1024
_AR_MAGIC: Final = b"!<arch>\n"
_AR_HEADER: Final = 60


class InputError(AuditError):
    """An input cannot be audited: unknown kind, malformed, or hostile (one line, exit 2)."""


@dataclass(frozen=True, slots=True)
class UnpackedInputs:
    """Where the inputs' files now are and what they were."""

    root: Path
    descriptions: tuple[str, ...]
    packages: tuple[str, ...]
    """``name version`` of every ``.deb`` given."""
    skipped_special: int


def _json_document(data: bytes, where: str) -> Any:
    if len(data) > MAX_INDEX_BYTES:
        raise InputError(f"{where}: larger than {MAX_INDEX_BYTES} bytes")
    try:
        return loads_bounded(data)  # nesting-bounded: an image's index nested 100,000 deep is one line, not a crash
    except JsonLimitError as error:
        raise InputError(f"{where}: {error}") from None
    except ValueError as error:  # UnicodeDecodeError is one
        raise InputError(f"{where}: not valid JSON ({error})") from None


class _Blobs:
    """Named files of an image: members of an outer tar archive, or files of an OCI layout directory."""

    def __init__(self, name: str, archive: tarfile.TarFile | None, directory: Path | None) -> None:
        self.name = name
        self._archive = archive
        self._directory = directory
        self._members: dict[str, tarfile.TarInfo] = {}
        if archive is not None:
            for count, member in enumerate(archive, start=1):
                if count > DEFAULT_MAX_ENTRIES:
                    raise InputError(f"{name}: more than {DEFAULT_MAX_ENTRIES} entries")
                normal = posixpath.normpath(member.name)
                if member.isreg():
                    self._members[normal] = member

    def has(self, path: str) -> bool:
        if self._archive is not None:
            return posixpath.normpath(path) in self._members
        assert self._directory is not None
        return (self._directory / path).is_file()

    @contextmanager
    def open(self, path: str) -> Iterator[BinaryIO]:
        normal = posixpath.normpath(path)
        if normal.startswith(("/", "../")) or normal == "..":
            raise InputError(f"{self.name}: refused blob path {path!r}: outside the image")
        if self._archive is not None:
            member = self._members.get(normal)
            extracted = self._archive.extractfile(member) if member is not None else None
            if extracted is None:
                raise InputError(f"{self.name}: no {path} in the image")
            with extracted:
                yield cast(BinaryIO, extracted)
            return
        assert self._directory is not None
        try:
            descriptor = os.open(self._directory / normal, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as error:
            raise InputError(f"{self.name}: cannot read {path}: {error.strerror}") from None
        with os.fdopen(descriptor, "rb") as stream:
            yield stream

    def read(self, path: str) -> bytes:
        with self.open(path) as stream:
            data = stream.read(MAX_INDEX_BYTES + 1)
        return data


def _oci_layers(blobs: _Blobs) -> list[tuple[str, str | None]]:
    """The layers (blob path, expected sha256) of the first image of an OCI layout's ``index.json``."""
    index = _json_document(blobs.read("index.json"), f"{blobs.name}: index.json")
    document = index
    for _ in range(4):  # an index may point to an index (multi-platform); a manifest has "layers"
        if isinstance(document, dict) and isinstance(document.get("layers"), list):
            break
        manifests = document.get("manifests") if isinstance(document, dict) else None
        if not isinstance(manifests, list) or not manifests or not isinstance(manifests[0], dict):
            raise InputError(f"{blobs.name}: no image manifest in index.json")
        digest = str(manifests[0].get("digest", ""))
        document = _json_document(blobs.read(_blob_path(blobs.name, digest)), f"{blobs.name}: {digest}")
    else:
        raise InputError(f"{blobs.name}: image indexes nested too deep")
    layers: list[tuple[str, str | None]] = []
    for layer in document["layers"]:
        digest = str(layer.get("digest", "")) if isinstance(layer, dict) else ""
        layers.append((_blob_path(blobs.name, digest), digest.removeprefix("sha256:")))
    return layers


def _blob_path(name: str, digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
        raise InputError(f"{name}: refused digest {digest!r}: expected sha256:<64 hex digits>")
    return f"blobs/sha256/{hexdigest}"


def _docker_layers(blobs: _Blobs) -> list[tuple[str, str | None]]:
    """The layers of the first image of a ``docker save`` / ``podman save`` archive's ``manifest.json``."""
    manifest = _json_document(blobs.read("manifest.json"), f"{blobs.name}: manifest.json")
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise InputError(f"{blobs.name}: manifest.json lists no image")
    layers = manifest[0].get("Layers")
    if not isinstance(layers, list) or not all(isinstance(layer, str) for layer in layers):
        raise InputError(f"{blobs.name}: manifest.json has no list of layers")
    return [(layer, None) for layer in layers]


class _HashingReader:
    """Hashes what it reads, so a layer blob's digest is checked against its name as it streams."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.hash.update(data)
        return data

    def seek(self, position: int, whence: int = 0) -> int:
        if position != 0 or whence != 0:
            raise OSError("only a rewind to the start is supported")
        self.hash = hashlib.sha256()
        return self._inner.seek(0)


def _apply_image(blobs: _Blobs, builder: RootBuilder) -> None:
    if blobs.has("manifest.json"):
        layers = _docker_layers(blobs)
    elif blobs.has("index.json"):
        layers = _oci_layers(blobs)
    else:
        raise InputError(f"{blobs.name}: neither manifest.json (docker-archive) nor index.json (OCI) found")
    if len(layers) > builder.max_layers:
        raise InputError(f"{blobs.name}: refused: {len(layers)} layers, more than {builder.max_layers}")
    for path, digest in layers:
        with blobs.open(path) as stream:
            reader = _HashingReader(stream)
            builder.add_layer(cast(BinaryIO, reader), f"{blobs.name}: {path}")
            if digest is not None:
                while reader.read(1 << 20):
                    pass
                if reader.hash.hexdigest() != digest:
                    raise InputError(f"{blobs.name}: layer {path} does not match its digest")


def read_ar_members(stream: BinaryIO, name: str, file_size: int) -> list[tuple[str, int, int]]:
    """(name, offset, size) of each member of the ``ar`` archive ``stream``, every header bounds-checked."""
    stream.seek(0)
    if stream.read(len(_AR_MAGIC)) != _AR_MAGIC:
        raise InputError(f"{name}: not an ar archive")
    members: list[tuple[str, int, int]] = []
    offset = len(_AR_MAGIC)
    while offset < file_size:
        if len(members) >= MAX_AR_MEMBERS:
            raise InputError(f"{name}: more than {MAX_AR_MEMBERS} ar members")
        stream.seek(offset)
        header = stream.read(_AR_HEADER)
        if len(header) != _AR_HEADER or header[58:60] != b"`\n":
            raise InputError(f"{name}: malformed ar header at byte {offset}")
        member_name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size_field = header[48:58].decode("ascii", "replace").strip()
        if not size_field.isdigit():
            raise InputError(f"{name}: malformed ar member size {size_field!r}")
        size = int(size_field)
        start = offset + _AR_HEADER
        if start + size > file_size:
            raise InputError(f"{name}: ar member {member_name!r} runs past the end of the file")
        members.append((member_name, start, size))
        offset = start + size + (size % 2)
    return members


def _control_fields(stream: BinaryIO, name: str) -> dict[str, str]:
    """``Package`` and ``Version`` from a ``control.tar.*`` member, read without writing anything."""
    fields: dict[str, str] = {}
    scratch = RootBuilder(
        Path(tempfile.mkdtemp(prefix="cpython-verify-control-")),
        UnpackLimits(max_total_bytes=MAX_CONTROL_BYTES, max_entries=64),
        max_layers=1,
    )
    try:
        scratch.add_layer(stream, name)
        control = scratch.root / "control"
        if control.is_file() and not control.is_symlink():
            for line in control.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key in ("Package", "Version"):
                    fields[key] = value.strip()
    finally:
        shutil.rmtree(scratch.root, ignore_errors=True)
    return fields


def _apply_deb(path: Path, builder: RootBuilder) -> str:
    """Unpack a ``.deb``'s ``data.tar.*`` into the root; return ``package version``. dpkg is never run."""
    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        members = read_ar_members(stream, path.name, size)
        names = [member[0] for member in members]
        if not names or names[0] != "debian-binary":
            raise InputError(f"{path.name}: not a Debian package (first ar member is not debian-binary)")
        package = ""
        for member_name, offset, length in members:
            if member_name.startswith("control.tar"):
                fields = _control_fields(
                    cast(BinaryIO, FileSlice(stream, offset, length)), f"{path.name}: {member_name}"
                )
                package = f"{fields.get('Package', path.name)} {fields.get('Version', '')}".strip()
        data = [member for member in members if member[0].startswith("data.tar")]
        if len(data) != 1:
            raise InputError(f"{path.name}: expected exactly one data.tar member, found {len(data)}")
        member_name, offset, length = data[0]
        builder.add_layer(cast(BinaryIO, FileSlice(stream, offset, length)), f"{path.name}: {member_name}")
    return package or path.name


def _kind(path: Path) -> str:
    """``directory``, ``oci-layout``, ``deb``, ``image-archive`` or ``tar``, by content, not by name."""
    if path.is_dir():
        return "oci-layout" if (path / "oci-layout").is_file() and (path / "index.json").is_file() else "directory"
    with path.open("rb") as stream:
        head = stream.read(512)
    if head.startswith(_AR_MAGIC):
        return "deb"
    if head[257:262] == b"ustar":
        try:
            with tarfile.open(path, "r:", tarinfo=BoundedTarInfo) as archive:
                # docker-archive puts manifest.json after the layers: every header is looked at (seeking
                # past the data), up to the entry cap.
                for count, member in enumerate(archive):
                    if posixpath.normpath(member.name) in ("manifest.json", "index.json", "oci-layout"):
                        return "image-archive"
                    if count > DEFAULT_MAX_ENTRIES:
                        break
        except tarfile.TarError:
            pass
    return "tar"


def unpack_inputs(
    inputs: Sequence[Path], scratch: Path, *, limits: UnpackLimits | None = None, max_layers: int = DEFAULT_MAX_LAYERS
) -> UnpackedInputs:
    """Unpack images, packages and archives (never a directory) one over the other into ``scratch/root``."""
    builder = RootBuilder(
        scratch / "root", limits or UnpackLimits(max_total_bytes=8 * 1024**3, max_entries=400_000), max_layers
    )
    descriptions: list[str] = []
    packages: list[str] = []
    try:
        for path in inputs:
            kind = _kind(path)
            if kind == "directory":
                raise InputError(f"{path}: a directory can only be audited on its own, not with other inputs")
            if kind == "deb":
                package = _apply_deb(path, builder)
                packages.append(package)
                descriptions.append(f"{path} (Debian package {package})")
            elif kind == "oci-layout":
                _apply_image(_Blobs(str(path), None, path), builder)
                descriptions.append(f"{path} (OCI layout)")
            elif kind == "image-archive":
                with tarfile.open(path, "r:", tarinfo=BoundedTarInfo) as archive:
                    _apply_image(_Blobs(path.name, archive, None), builder)
                descriptions.append(f"{path} (image archive)")
            else:
                with path.open("rb") as stream:
                    builder.add_layer(stream, path.name)
                descriptions.append(f"{path} (tar archive)")
    except UnsafeArchive as error:
        # A hostile input is not a verdict on the source: an operational error, exit 2.
        raise InputError(error.message) from None
    except tarfile.TarError as error:
        raise InputError(f"cannot read the image archive: {error}") from None
    return UnpackedInputs(builder.root, tuple(descriptions), tuple(packages), builder.skipped_special)


def _holds_stdlib(directory: Path, pattern: re.Pattern[str]) -> bool:
    """True when ``directory/LIBDIR/pythonX.Y`` (``lib`` or ``lib64``, no link on the way) has more than
    site-packages."""
    from verify.audit.layout import LIBRARY_DIRS, stdlib_candidates

    for libdir in LIBRARY_DIRS:
        lib = directory / libdir
        if not lib.is_dir() or lib.is_symlink():
            continue
        for child in sorted(lib.iterdir()):
            if (
                pattern.fullmatch(child.name)
                and child.is_dir()
                and not child.is_symlink()
                and stdlib_candidates({libdir: {entry.name for entry in child.iterdir()}})
            ):
                return True
    return False


def _stdlib_name(series: str | None, abi: str | None) -> re.Pattern[str]:
    """``pythonX.Y`` (``abi`` ``""``), ``pythonX.Yt`` (``"t"``, free-threaded) or either (None)."""
    version = re.escape(series) if series else r"\d+\.\d+"
    suffix = "t?" if abi is None else re.escape(abi)
    return re.compile(rf"python{version}{suffix}")


def find_prefixes(root: Path, series: str | None, *, max_depth: int = 4, abi: str | None = "") -> list[str]:
    """Root-relative prefixes holding ``lib/pythonX.Y`` or ``lib64/pythonX.Y`` with more than site-packages in it
    ('' for the root). Links are never followed: a root's ``lib64 -> usr/lib64`` is found as ``usr``.
    ``abi`` ``t`` looks for a free-threaded build's ``pythonX.Yt`` instead, None for either."""
    found: list[str] = []
    pending: list[tuple[str, int]] = [("", 0)]
    pattern = _stdlib_name(series, abi)
    while pending:
        relative, depth = pending.pop()
        directory = root / relative if relative else root
        if _holds_stdlib(directory, pattern):
            found.append(relative)
        if depth >= max_depth:
            continue
        try:
            children = sorted(directory.iterdir())
        except OSError:
            continue
        for child in children:
            if child.is_dir() and not child.is_symlink() and child.name not in ("proc", "sys", "dev", "lib", "lib64"):
                pending.append((f"{relative}/{child.name}" if relative else child.name, depth + 1))
    return sorted(found)


def os_release_id(*candidates: Path) -> str | None:
    """The distribution whose convention table applies, from the first ``os-release`` file that names one.

    Its ``ID``, then each ``ID_LIKE`` in order, is looked up among the documented tables: Debian
    and its derivatives give ``debian``, Alpine ``alpine``, Arch and its derivatives ``arch``.
    """
    for candidate in candidates:
        try:
            if candidate.is_symlink() or not candidate.is_file():
                continue
            text = candidate.read_text(encoding="utf-8", errors="replace")[:MAX_CONTROL_BYTES]
        except OSError:
            continue
        values = {}
        for line in text.splitlines():
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
        for name in (values.get("ID", ""), *values.get("ID_LIKE", "").split()):
            if name in TABLES:
                return name
    return None


@dataclass(frozen=True, slots=True)
class LocatedInstallation:
    """The installation to audit, found in the inputs."""

    prefix: Path
    """On this machine: the directory holding ``LIBDIR/pythonX.Y``."""
    install_prefix: str
    """Where that prefix lives on the system it was made for (``/usr``)."""
    distribution: str | None
    descriptions: tuple[str, ...]
    packages: tuple[str, ...]
    out_of_scope: tuple[str, ...]
    notes: tuple[str, ...]
    libdir: str = "lib"
    """The library directory whose ``pythonX.Y`` is the standard library: ``lib``, or ``lib64`` (Fedora's)."""
    abi: str = ""
    """``t`` when the installation is a free-threaded build (``pythonX.Yt``, PEP 703), else empty."""


def locate_installation(
    inputs: Sequence[Path],
    series: str,
    scratch: Path,
    prefix: str | None,
    distribution: str,
    libdir: str | None = None,
    free_threaded: bool = False,
) -> LocatedInstallation:
    """Unpack ``inputs`` when needed and find the prefix, its library directory and the distribution whose
    conventions apply.

    A single directory is audited in place: it is a prefix when it holds ``lib/pythonX.Y`` or
    ``lib64/pythonX.Y``, else a root file system searched for one. Every other input is unpacked under
    ``scratch``. ``libdir`` (``--libdir``) names the library directory when both hold a standard library.
    A free-threaded build (``pythonX.Yt``) is audited when ``free_threaded`` asks for it, or when it is the
    only build of the series in the prefix (the notes say so).
    """
    from verify.audit.files import find_library_dir, library_listings, linked_library_dirs

    notes: list[str] = []
    single_directory = len(inputs) == 1 and inputs[0].is_dir() and _kind(inputs[0]) == "directory"
    packages: tuple[str, ...] = ()
    out_of_scope: tuple[str, ...] = ()
    found: str | None = None
    if single_directory:
        root = inputs[0]
        descriptions: tuple[str, ...] = (f"{root} (directory)",)
        notes.append("a directory is audited in place: files outside the installation were not walked")
        if prefix is None and _holds_stdlib(root, _stdlib_name(series, None)):
            found = ""
    else:
        unpacked = unpack_inputs(inputs, scratch / "inputs")
        root, descriptions, packages = unpacked.root, unpacked.descriptions, unpacked.packages
        if unpacked.skipped_special:
            notes.append(f"{unpacked.skipped_special} device node(s) or FIFO(s) in the inputs were not unpacked")
    if found is None and prefix is not None:
        relative = posixpath.normpath(prefix.strip("/")) if prefix.strip("/") else ""
        if relative.startswith("..") or relative.startswith("/"):
            raise InputError(f"--prefix {prefix!r}: must be a path inside the input")
        found = relative if relative != "." else ""
    elif found is None:
        candidates = find_prefixes(root, series, abi="t" if free_threaded else None)
        if not candidates:
            # A root whose library directory is a link out of the input (or a loop) says why it has none.
            problems = [line for line, inside in linked_library_dirs(root, series, root) if not inside]
            if problems:
                raise InputError(
                    f"no lib/python{series} with a standard library (nor lib64/python{series}) in "
                    f"{', '.join(map(str, inputs))}: {problems[0]}; refused"
                )
            raise nothing_to_audit(inputs, series, root, _distribution(distribution, root, root, packages), packages)
        if len(candidates) > 1:
            shown = ", ".join(f"/{c}" if c else "/" for c in candidates)
            raise InputError(f"several Python {series} prefixes ({shown}); choose one with --prefix")
        found = candidates[0]
    located = root / found if found else root
    plain = _holds_stdlib(located, _stdlib_name(series, ""))
    threaded = _holds_stdlib(located, _stdlib_name(series, "t"))
    abi = "t" if free_threaded or (threaded and not plain) else ""
    if abi and not free_threaded:
        notes.append(f"a free-threaded build (python{series}t, PEP 703): its files are named python{series}t")
    elif threaded and not abi:
        notes.append(f"a free-threaded python{series}t is installed beside it and was not audited (--free-threaded)")
    layout = series + abi
    if not library_listings(located, layout) and not linked_library_dirs(located, layout, root):
        raise nothing_to_audit(inputs, series, root, _distribution(distribution, root, located, packages), packages)
    library = find_library_dir(located, layout, boundary=root, choice=libdir)
    if not stdlib_files(located, layout, library.name):
        raise nothing_to_audit(inputs, series, root, _distribution(distribution, root, located, packages), packages)
    notes.extend(library.notes)
    if not single_directory:
        out_of_scope = _out_of_scope(root, found, series + abi, library.name)
    install_prefix = str(root.absolute()) if single_directory and found == "" and prefix is None else "/" + found
    return LocatedInstallation(
        located,
        install_prefix,
        _distribution(distribution, root, located, packages),
        descriptions,
        packages,
        out_of_scope,
        tuple(notes),
        library.name,
        abi,
    )


def stdlib_files(prefix: Path, series: str, libdir: str) -> int:
    """How many files (and links) of the standard library ``PREFIX/LIBDIR/pythonX.Y`` holds: its site-packages,
    its ``config-X.Y*`` directory and the configuration modules ``make install`` writes are not the stdlib
    (:func:`verify.audit.coverage.installation_part`)."""
    from verify.audit.coverage import STDLIB, installation_part
    from verify.audit.files import tree_entries

    base = f"{libdir}/python{series}"
    return sum(
        1 for rel, _ in tree_entries(prefix / base) if installation_part(f"{base}/{rel}", series, libdir) == STDLIB
    )


def interpreters_in(root: Path, series: str, *, max_depth: int = 4) -> list[str]:
    """Root-relative ``PREFIX/bin/pythonX.Y`` files or links in ``root`` (links never followed on the way)."""
    found: list[str] = []
    pending: list[tuple[Path, int]] = [(root, 0)]
    while pending:
        directory, depth = pending.pop()
        candidate = directory / "bin" / f"python{series}"
        try:
            if candidate.is_symlink() or candidate.is_file():
                found.append(candidate.relative_to(root).as_posix())
        except OSError:
            pass  # unreadable: not evidence of an interpreter
        if depth >= max_depth:
            continue
        try:
            children = sorted(directory.iterdir())
        except OSError:
            continue
        pending.extend(
            (child, depth + 1)
            for child in children
            if child.is_dir() and not child.is_symlink() and child.name not in ("proc", "sys", "dev")
        )
    return sorted(found)


def nothing_to_audit(
    inputs: Sequence[Path], series: str, root: Path, distribution: str | None, packages: Sequence[str]
) -> NothingToAudit:
    """The one-line failure for inputs that hold no file of the standard library: what they hold of the
    interpreter, and what to add (the distribution's packages that hold them, or what ``make install`` makes)."""
    from verify.audit.conventions import core_packages

    shown = _listed(inputs)
    interpreters = interpreters_in(root, series)
    given = {package.split()[0] for package in packages}
    wanted = [package for package in core_packages(distribution, series) if package not in given]
    if wanted:
        add = f"add {_joined(wanted)}"
    elif distribution is not None and core_packages(distribution, series):
        add = "every package that holds them was given, yet they hold none of it: are they Python " + series + "'s?"
    else:
        add = (
            f"add the standard library (lib/python{series}/, as make install installs it) and the interpreter "
            f"(bin/python{series}), or audit the prefix that holds them"
        )
    if interpreters:
        return NothingToAudit(
            f"no file of the standard library of Python {series} was in the input ({shown}), "
            f"only the interpreter ({_joined(interpreters)}): {add}"
        )
    return NothingToAudit(
        f"no file of the standard library or interpreter of Python {series} was in the input ({shown}): {add}"
    )


def _listed(inputs: Sequence[Path], limit: int = 3) -> str:
    names = [str(path) for path in inputs[:limit]]
    if len(inputs) > limit:
        names.append(f"… and {len(inputs) - limit} more")
    return ", ".join(names)


def _joined(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _distribution(choice: str, root: Path, prefix: Path, packages: tuple[str, ...]) -> str | None:
    if choice != "auto":
        return None if choice == "none" else choice
    if packages:
        return "debian"
    return os_release_id(
        root / "etc" / "os-release",
        root / "usr" / "lib" / "os-release",
        prefix / "lib" / "os-release",
        prefix.parent / "etc" / "os-release",
    )


def _out_of_scope(root: Path, prefix: str, series: str, libdir: str) -> tuple[str, ...]:
    """Top directories (two levels, root-relative) of unpacked files that are not part of the installation."""
    from verify.audit.files import tree_entries
    from verify.audit.layout import installation_scope

    groups: set[str] = set()
    base = prefix + "/" if prefix else ""
    for relative, _link in tree_entries(root):
        inside = relative.startswith(base) and installation_scope(relative[len(base) :], series, libdir) is not None
        if not inside:
            groups.add("/".join(relative.split("/")[:2]))
    return tuple(sorted(groups))
