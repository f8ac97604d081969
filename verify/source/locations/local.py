"""A local directory of release files: a packager's distfiles, a ports tree, an offline mirror.

Files are found by python.org's name or by Debian's ``.orig`` name. The file is copied into the
content-addressed cache while it is hashed, in one read: later stages unpack the cached copy, whose
bytes are exactly the hashed bytes even if the user's file changes meanwhile.
"""

from __future__ import annotations

from pathlib import Path

from verify.common.errors import LocalFileError
from verify.common.fsutil import open_regular_file
from verify.source.locations.cache import Cache
from verify.source.locations.debian_names import debian_name
from verify.source.locations.http import DEFAULT_MAX_BYTES
from verify.source.locations.interface import SourceLocation
from verify.source.models import FetchedFile
from verify.source.releases import Version


class LocalDirectory(SourceLocation):
    """Release files in one directory, under python.org's or Debian's names."""

    def __init__(
        self,
        directory: Path,
        *,
        cache: Cache,
        debian_package: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        """``debian_package`` (e.g. ``python3.13``) enables Debian names; ``max_bytes`` caps a file's size."""
        self.directory = directory
        self.debian_package = debian_package
        self._cache = cache
        self._max_bytes = max_bytes

    @property
    def description(self) -> str:
        """``local <directory>``."""
        return f"local {self.directory}"

    @property
    def is_local(self) -> bool:
        """A directory on this machine: always tried before any network location."""
        return True

    def candidates(self, version: Version, filename: str) -> list[str]:
        """The names ``filename`` may have here, in the order they are tried."""
        if "/" in filename or filename in ("", ".", ".."):
            raise ValueError(f"not a plain file name: {filename!r}")
        names = [filename]
        if self.debian_package:
            debian = debian_name(self.debian_package, version, filename)
            if debian is not None:
                names.append(debian)
        return names

    def fetch(self, version: Version, filename: str) -> FetchedFile | None:
        """Copy the first candidate that exists into the cache; ``None`` when none does."""
        for name in self.candidates(version, filename):
            path = self.directory / name
            try:
                # Only regular files: a FIFO named like the tarball would block the read forever.
                stream = open_regular_file(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except IsADirectoryError:
                raise LocalFileError(f"{path}: is a directory, not a release file") from None
            except OSError as exc:
                raise LocalFileError(f"{path}: cannot read: {exc.strerror}") from None
            with stream:
                try:
                    cached, digest, size = self._cache.store_stream(stream, max_bytes=self._max_bytes, what=str(path))
                except OSError as exc:
                    raise LocalFileError(f"{path}: cannot read: {exc.strerror}") from None
            return FetchedFile(name=filename, path=cached, sha256=digest, size=size, origin=str(path))
        return None
