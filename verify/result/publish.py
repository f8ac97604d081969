"""Publishing a rebuild's result directory: where ``rebuild --out`` / ``check --out`` puts the result.

:func:`check_out_dir` judges ``--out`` before anything is built; :func:`publish` assembles the result from a
finished build (hard links into the cache), seals it and renames it into place. The chain calls both, in
its order; the layout of the directory is the result stage's, so nothing above it assembles one.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from verify.common import progress
from verify.common.errors import OperationalError
from verify.common.fsutil import is_write_failure, write_failure
from verify.common.limits import PUBLISH_LOCK_TIMEOUT_SECONDS
from verify.common.locking import lock_timeout, replacing
from verify.result.directory import ResultDir
from verify.result.integrity import write_seal
from verify.result.record import RebuildRecord


def check_out_dir(out_dir: Path) -> None:
    """Refuse ``--out`` when it exists and is neither an earlier result nor an empty directory."""
    occupied = out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir()))
    if occupied and not ResultDir.looks_like(out_dir):
        raise OperationalError(f"--out {out_dir} exists and is not a cpython-verify result; not replacing it")


def publish(baseline: ResultDir, record: RebuildRecord, out_dir: Path, *, compare_html: str | None = None) -> ResultDir:
    """Assemble the result directory: the files of ``baseline``, the finished build (hard links into the
    cache), the record and, after ``--twice``, ``compare_html`` (the comparison's HTML report) as
    ``compare.html``.

    Built beside ``out_dir``, sealed (:func:`verify.result.integrity.write_seal`) and renamed into place
    (:func:`verify.common.locking.replacing`: two runs publishing to one directory take turns); an existing
    directory is replaced only if it is an earlier result (has a record), never an unrelated directory.
    """
    check_out_dir(out_dir)
    if out_dir.exists() and not ResultDir.looks_like(out_dir):
        out_dir.rmdir()
    what = f"publishing the result of CPython {record.version} {record.profile}"
    try:
        timeout = lock_timeout(PUBLISH_LOCK_TIMEOUT_SECONDS)
        lock_what = f"the result directory {out_dir}"
        with replacing(out_dir, what=lock_what, timeout=timeout, on_wait=progress.note) as staging:
            staged = ResultDir(staging)
            for name in ResultDir.PUBLISHED:
                source = baseline.path / name
                if source.is_dir():
                    _link_tree(source, staging / name)
                elif source.exists():
                    shutil.copy2(source, staging / name)
            staged.write_record(record)
            if compare_html is not None:
                staged.write_compare_html(compare_html)
            _make_readable(staged)
            write_seal(staged)
    except OSError as error:
        if is_write_failure(error):
            raise write_failure(error, error.filename or out_dir, what) from None
        raise
    return ResultDir(out_dir)


def _make_readable(result: ResultDir) -> None:
    """Logs and a trained profile are written under whatever umask the build ran with (a root shell's
    may be 077); a result is read by the next, unprivileged step, so they are made world-readable.
    The install tree is left as built: its modes are part of the output the manifest records."""
    if result.pgo_profile_path.is_file():
        result.pgo_profile_path.chmod(0o644)
    if not result.logs.is_dir():
        return
    result.logs.chmod(0o755)
    for path in result.logs.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def _link_tree(source: Path, destination: Path) -> None:
    """Copy the tree ``source`` to ``destination``: files as hard links where the file system allows
    (else copies), symlinks as symlinks, directory modes kept. The first error is raised as it is
    (``shutil.copytree`` gathers them into one message that names no errno)."""
    destination.mkdir()
    with os.scandir(source) as listing:
        children = sorted(listing, key=lambda child: child.name)
    for child in children:
        target = destination / child.name
        if child.is_symlink():
            target.symlink_to(os.readlink(child.path))  # noqa: PTH115 - the link's own text, not resolved
        elif child.is_dir(follow_symlinks=False):
            _link_tree(Path(child.path), target)
        else:
            _link_or_copy(child.path, str(target))
    shutil.copystat(source, destination, follow_symlinks=False)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            raise  # a full disk is a failure, not a reason to try a copy
        shutil.copy2(source, destination)
