"""The release listing (``cpython-verify/releases/v1``): what ``releases --json`` writes and ``plan --releases``
reads, one model for both.

A module of its own so that ``releases`` without ``--json`` does not import pydantic.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from verify.common.errors import OperationalError
from verify.common.limits import PLAN_MAX_BYTES
from verify.common.strict import StrictModel, read_json_model, table_error
from verify.source import names
from verify.source.name_fields import SeriesName
from verify.source.releases import Version


class ListingError(OperationalError):
    """A release listing cannot be read or is not one (one line, exit 2)."""


def _moment(text: str) -> str:
    """An ISO 8601 time with its offset, as ``datetime.isoformat`` writes a release date."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"must be an ISO 8601 time, not {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"must be an ISO 8601 time with its UTC offset, not {text[:40]!r}")
    return text


class ListedRelease(StrictModel):
    """One release of the listing."""

    version: Version
    series: SeriesName
    """The version's series."""
    released_at: Annotated[str, AfterValidator(_moment), Field(json_schema_extra={"format": "date-time"})] | None
    """When python.org says it was released (``2025-06-11T21:35:00+00:00``); None when the feed has no date."""
    pre_release: bool
    page: str | None
    """python.org's release page, when the feed names one."""

    @model_validator(mode="after")
    def _series_is_the_version_s(self) -> ListedRelease:
        problem = names.series_problem(self.series, self.version)
        if problem is not None:
            raise table_error(problem)
        return self


class ReleaseListing(StrictModel):
    """The releases ``releases`` chose, newest first."""

    format: Literal["cpython-verify/releases/v1"]
    releases: tuple[ListedRelease, ...] = Field(strict=False)


def read_release_listing(path: Path) -> ReleaseListing:
    """The listing in ``path`` (``releases --json`` output); :class:`ListingError`, one line naming the file and
    the field, for anything else."""
    return read_json_model(path, ReleaseListing, what="releases file", max_bytes=PLAN_MAX_BYTES, error=ListingError)
