"""Version parsing and ordering."""

from __future__ import annotations

import pytest

from verify.common.errors import VersionError
from verify.source.releases import Version, patchlevel_version


@pytest.mark.parametrize(
    ("text", "series", "base", "pre"),
    [
        ("3.13.5", "3.13", "3.13.5", False),
        ("3.14.0rc1", "3.14", "3.14.0", True),
        ("3.15.0a8", "3.15", "3.15.0", True),
        ("3.10.0b4", "3.10", "3.10.0", True),
    ],
)
def test_parse(text: str, series: str, base: str, pre: bool) -> None:
    version = Version.parse(text)
    assert (str(version), version.series, version.base, version.is_prerelease) == (text, series, base, pre)


@pytest.mark.parametrize("text", ["3.13", "3.13.5.1", "3.13.5-rc1", "3.13.5+", "v3.13.5", "", "3.13.5rc"])
def test_reject(text: str) -> None:
    with pytest.raises(VersionError, match="not a CPython release version"):
        Version.parse(text)


@pytest.mark.parametrize(("text", "series"), [("2.7.18", "2.7"), ("4.0.0", "4.0"), ("2.7.0rc1", "2.7")])
def test_another_major_s_release_names_its_series_and_the_supported_ones(text: str, series: str) -> None:
    with pytest.raises(VersionError, match=rf"CPython {series} is not a supported series; supported: 3\.8, 3\.9, "):
        Version.parse(text)


def test_order() -> None:
    texts = ["3.14.0", "3.14.0rc1", "3.14.0a5", "3.13.10", "3.14.0b1", "3.13.9"]
    assert [str(v) for v in sorted(map(Version.parse, texts))] == [
        "3.13.9",
        "3.13.10",
        "3.14.0a5",
        "3.14.0b1",
        "3.14.0rc1",
        "3.14.0",
    ]


def test_patchlevel() -> None:
    text = '#define PY_MINOR_VERSION 13\n#define PY_VERSION      "3.13.5"\n'
    assert patchlevel_version(text) == "3.13.5"
    assert patchlevel_version("nothing") is None
