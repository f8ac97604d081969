"""The names of :mod:`verify.source.names` as pydantic field types, for the formats' models.

Each is refused in the words of its rule (``'../x' is not a profile name ...``), and its JSON Schema states
the same rule as a pattern or an enum. A module of its own so that :mod:`verify.source.names` stays free of
pydantic.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from verify.common.strict import rule
from verify.source import names
from verify.source.releases import VERSION_PATTERN

Sha256 = Annotated[str, Field(pattern=names.SHA256_PATTERN)]
"""A sha256 as the tool writes one: 64 lower-case hex digits."""
SeriesName = Annotated[str, Field(pattern=names.SERIES_PATTERN)]
"""A release series (``3.13``)."""
ProfileName = Annotated[str, rule(names.profile_problem), Field(json_schema_extra={"pattern": names.PROFILE_PATTERN})]
"""A recipe profile's name."""
KnownRunner = Annotated[
    str, rule(names.known_runner_problem), Field(json_schema_extra={"enum": list(names.RUNNER_NAMES)})
]
"""One of the runners this cpython-verify has."""
FileName = Annotated[str, rule(names.file_name_problem), Field(json_schema_extra={"pattern": names.FILE_NAME_PATTERN})]
"""A plain file name (a plan job's ``id``)."""
ReleaseVersionText = Annotated[
    str, rule(names.release_version_problem), Field(json_schema_extra={"pattern": VERSION_PATTERN})
]
"""A release version held as the text the tool wrote (a verdict about signed claims keeps their text)."""
