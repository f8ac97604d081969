"""The two things being compared: a manifest file, an install tree, or a rebuild result directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from verify.common.errors import OperationalError
from verify.common.filekind import describe_head, looks_like_json_object, read_head
from verify.compare.model import SideInfo
from verify.manifest import Manifest, manifest_digest, read_manifest, scan_tree
from verify.result import ResultDir, ResultDirError
from verify.result.integrity import describe, differing_paths, open_finished


class SideError(OperationalError):
    """A side of a comparison is neither a manifest, an install tree nor a rebuild result."""


@dataclass(frozen=True, slots=True)
class Side:
    """One side: its manifest, and the directory holding its files when the bytes are available."""

    info: SideInfo
    manifest: Manifest
    root: Path | None
    notes: tuple[str, ...] = ()


def load_side(path: Path, label: str, *, workers: int | None = None) -> Side:
    """Read a manifest file, or scan an install tree or a rebuild result's ``root/``.

    For a rebuild result the tree is scanned (the bytes are the truth) and its record is read for the
    inputs; if the recorded manifest disagrees with the tree, a note says so.
    """
    if path.is_file():
        _check_is_manifest(path, label)
        manifest = read_manifest(path)
        return Side(_info(label, "manifest", path, manifest, contents=False), manifest, None)
    if not path.is_dir():
        raise SideError(f"{label}: {path} is neither a manifest file nor a directory")
    if ResultDir.looks_like(path):
        return side_from_result(open_finished(path, tree=False), label, workers=workers)
    manifest = Manifest(inputs={}, entries=scan_tree(path, workers=workers))
    return Side(_info(label, "tree", path, manifest, contents=True), manifest, path)


def _check_is_manifest(path: Path, label: str) -> None:
    """Refuse a file that is not a JSON object, naming what compare reads and what ``path`` is instead."""
    try:
        head = read_head(path)
    except OSError as error:
        raise SideError(f"{label}: cannot read {path}: {error.strerror or error}") from error
    if looks_like_json_object(head):
        return
    kind = describe_head(head)
    hint = (
        "; unpack it and compare the directory" if kind.endswith(("compressed file", "archive", "tar archive")) else ""
    )
    raise SideError(
        f"{label}: {path} is {kind}, not a manifest: compare reads a manifest (a JSON file such as a rebuild's "
        f"manifest.json), an install tree or a rebuild result directory{hint}"
    )


def side_from_tree(root: Path, label: str, *, workers: int | None = None) -> Side:
    """An install tree on disk as a side (what :func:`load_side` does for a plain directory)."""
    manifest = Manifest(inputs={}, entries=scan_tree(root, workers=workers))
    return Side(_info(label, "tree", root, manifest, contents=True), manifest, root)


def side_from_result(result: ResultDir, label: str, *, workers: int | None = None, rescan: bool = True) -> Side:
    """A rebuild result directory as a side: its install tree, with the inputs its record names.

    With ``rescan`` (any result handed to us) the tree is scanned again, because the bytes are the
    truth, and a tree that is not the one its manifest describes is refused: the result is damaged or
    was never finished (:func:`verify.result.integrity.open_finished` checked the rest). Without it (a
    result this process has just built and written the manifest of) the recorded manifest is used as it is.
    """
    record = result.read_record()
    if not rescan:
        manifest = result.read_manifest()
        return Side(_info(label, "rebuild", result.path, manifest, contents=True), manifest, result.root)
    entries = scan_tree(result.root, workers=workers)
    recorded = result.read_manifest().entries
    if recorded != entries:
        raise ResultDirError(describe(result.path, differing_paths(recorded, entries)))
    manifest = Manifest(inputs=record.inputs.to_json(), entries=entries)
    return Side(_info(label, "rebuild", result.path, manifest, contents=True), manifest, result.root)


def _info(label: str, source: str, path: Path, manifest: Manifest, *, contents: bool) -> SideInfo:
    return SideInfo(
        label=label,
        source=source,
        location=str(path),
        entries=len(manifest.entries),
        manifest_sha256=manifest_digest(manifest),
        inputs=dict(manifest.inputs),
        contents_available=contents,
    )
