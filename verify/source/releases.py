"""CPython release versions: parsing, ordering, and the names python.org gives their files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import TYPE_CHECKING, Any, Final

from verify.common.errors import VersionError

# [0-9] and re.ASCII: \d and int() also accept other scripts' digits, so "3.١٣.5" parsed as 3.13.5.
_VERSION_RE = re.compile(
    r"""(?P<major>3)\.(?P<minor>[0-9]{1,2})\.(?P<micro>[0-9]{1,3})
         (?:(?P<pre_kind>a|b|rc)(?P<pre_num>[0-9]{1,3}))?""",
    re.VERBOSE | re.ASCII,
)
_PRE_ORDER = {"a": 0, "b": 1, "rc": 2}
_OTHER_MAJOR_RE = re.compile(r"(?P<series>[0-9]{1,2}\.[0-9]{1,2})\.[0-9]{1,3}(?:(?:a|b|rc)[0-9]{1,3})?", re.ASCII)
"""A release of another major version (Python 2.7.18): well formed, but of a series no recipe can exist for."""
VERSION_PATTERN: Final = r"^3\.(0|[1-9][0-9]?)\.(0|[1-9][0-9]{0,2})((a|b|rc)(0|[1-9][0-9]{0,2}))?$"
"""A version as the formats write it (``str(version)``): what :meth:`Version.parse` reads, without leading zeros
or surrounding blanks, so that a version read from a file is written back as the same bytes."""

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
    from pydantic_core import CoreSchema


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A CPython release version such as ``3.13.5`` or ``3.14.0rc1`` (CPython's tag spelling)."""

    major: int
    minor: int
    micro: int
    pre_kind: str | None = None
    pre_num: int | None = None

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse a CPython release version; raise :class:`VersionError` for anything else."""
        match = _VERSION_RE.fullmatch(text.strip())
        other = _OTHER_MAJOR_RE.fullmatch(text.strip()) if match is None else None
        if other is not None:
            from verify.source.shipped import supported_series_text

            raise VersionError(f"CPython {other['series']} is not a supported series; {supported_series_text()}")
        if match is None:
            raise VersionError(
                f"not a CPython release version: {text!r} (expected X.Y.Z, X.Y.ZaN, X.Y.ZbN or X.Y.ZrcN)"
            )
        pre_num = match.group("pre_num")
        return cls(
            major=int(match.group("major")),
            minor=int(match.group("minor")),
            micro=int(match.group("micro")),
            pre_kind=match.group("pre_kind"),
            pre_num=int(pre_num) if pre_num is not None else None,
        )

    @property
    def series(self) -> str:
        """The release series, e.g. ``3.13``: the unit recipes are written for."""
        return f"{self.major}.{self.minor}"

    @property
    def base(self) -> str:
        """The final version this one leads to: python.org files ``3.14.0rc1`` under ``3.14.0/``."""
        return f"{self.major}.{self.minor}.{self.micro}"

    @property
    def is_prerelease(self) -> bool:
        """True for alphas, betas and release candidates."""
        return self.pre_kind is not None

    def _key(self) -> tuple[int, int, int, int, int]:
        pre = (_PRE_ORDER[self.pre_kind], self.pre_num or 0) if self.pre_kind else (3, 0)
        return (self.major, self.minor, self.micro, *pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        pre = f"{self.pre_kind}{self.pre_num}" if self.pre_kind else ""
        return f"{self.base}{pre}"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """A format's ``version`` field: read from its string (``"3.13.5"``), written as ``str(version)``.

        pydantic is imported here, not at the top: the commands that only hold a version do not pay for it."""
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            _version_field,
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="json"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        """The string form, as its pattern."""
        return {"type": "string", "pattern": VERSION_PATTERN}


def version_text_problem(text: object) -> str | None:
    """Why ``text`` is not a release version exactly as :class:`Version` prints one; None when it is.

    :meth:`Version.parse` decides, and the text must be what the version prints back: ``3.13.05``,
    `` 3.13.5`` or ``3.013.5`` parse, but they are other spellings of it."""
    if not isinstance(text, str):
        return f"{_short(text)} is not a release version"
    try:
        canonical = str(Version.parse(text))
    except VersionError as error:
        return error.message
    if canonical != text:
        return f"{_short(text)} is not a release version as written by this tool (it would be {canonical!r})"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _version_field(value: object) -> Version:
    """A format's version: a :class:`Version`, or the string it prints; anything else names what it must be."""
    if isinstance(value, Version):
        return value
    problem = version_text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    assert isinstance(value, str)  # version_text_problem refuses anything else
    return Version.parse(value)


def patchlevel_version(patchlevel_h: str) -> str | None:
    """Return the ``PY_VERSION`` string defined in a CPython ``Include/patchlevel.h``, if any."""
    match = re.search(r'^#define\s+PY_VERSION\s+"([^"]+)"', patchlevel_h, re.MULTILINE)
    return match.group(1) if match else None
