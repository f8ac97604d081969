"""The interface every source of release files implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from verify.source.models import DigestClaim, FetchedFile
from verify.source.releases import Version


class SourceLocation(ABC):
    """One place release files can be obtained from (python.org, a mirror, a directory, Debian)."""

    @property
    @abstractmethod
    def description(self) -> str:
        """A short human name for reports, e.g. ``https://mirror.example/ftp/python`` or ``local /srv/distfiles``."""

    @property
    def is_local(self) -> bool:
        """True when fetching reads local disk only (no network): such locations are tried first."""
        return False

    @abstractmethod
    def fetch(self, version: Version, filename: str) -> FetchedFile | None:
        """Obtain ``filename`` of ``version``; ``None`` when this location does not have it.

        Raises :class:`verify.common.errors.FetchError` when the location has the file but it cannot be
        obtained whole (network failure, size cap, truncated body).
        """

    def digest_claims(self, version: Version, filename: str) -> list[DigestClaim]:
        """Independent sha256 statements this location publishes about ``filename`` (default none)."""
        return []
