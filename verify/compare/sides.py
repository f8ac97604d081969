"""The two things being compared: a manifest file, an install tree, or a rebuild result directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from verify.compare.model import SideInfo
from verify.errors import OperationalError
from verify.manifest import Manifest, ManifestError, manifest_digest, read_manifest, scan_tree


class SideError(OperationalError):
    """A side of a comparison is neither a manifest, an install tree nor a rebuild result."""


@dataclass(frozen=True, slots=True)
class Side:
    """One side: its manifest, and the directory holding its files when the bytes are available."""

    info: SideInfo
    manifest: Manifest
    root: Path | None
    notes: tuple[str, ...] = ()


def is_rebuild_result(path: Path) -> bool:
    """A rebuild result directory holds ``manifest.json`` and the install tree in ``root/``."""
    return (path / "manifest.json").is_file() and (path / "root").is_dir()


def load_side(path: Path, label: str, *, workers: int | None = None) -> Side:
    """Read a manifest file, or scan an install tree or a rebuild result's ``root/``.

    For a rebuild result the tree is scanned (the bytes are the truth) and its recorded manifest is
    read for the inputs; if the recorded manifest disagrees with the tree, a note says so.
    """
    if path.is_file():
        manifest = read_manifest(path)
        return Side(_info(label, "manifest", path, manifest, contents=False), manifest, None)
    if not path.is_dir():
        raise SideError(f"{label}: {path} is neither a manifest file nor a directory")
    if is_rebuild_result(path):
        root = path / "root"
        entries = scan_tree(root, workers=workers)
        notes: list[str] = []
        try:
            recorded = read_manifest(path / "manifest.json")
            inputs = dict(recorded.inputs)
            if recorded.entries != entries:
                notes.append(f"{label}: the rebuild's recorded manifest.json does not match its root/ tree")
        except ManifestError as error:
            inputs = _rebuild_inputs(path)
            notes.append(f"{label}: recorded manifest not used ({error.message})")
        manifest = Manifest(inputs=inputs, entries=entries)
        return Side(_info(label, "rebuild", path, manifest, contents=True), manifest, root, tuple(notes))
    manifest = Manifest(inputs={}, entries=scan_tree(path, workers=workers))
    return Side(_info(label, "tree", path, manifest, contents=True), manifest, path)


def side_from_tree(root: Path, label: str, *, workers: int | None = None) -> Side:
    """An install tree on disk as a side (what :func:`load_side` does for a plain directory)."""
    manifest = Manifest(inputs={}, entries=scan_tree(root, workers=workers))
    return Side(_info(label, "tree", root, manifest, contents=True), manifest, root)


def _rebuild_inputs(path: Path) -> dict[str, object]:
    try:
        record = json.loads((path / "rebuild.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    inputs = record.get("inputs") if isinstance(record, dict) else None
    return inputs if isinstance(inputs, dict) else {}


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
