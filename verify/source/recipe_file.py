"""The recipe file format (``recipes/cpython-X.Y.toml``): one frozen, strict pydantic model per table.

The models are the format's specification: a key they do not name, a value of another type, or a value
that breaks a rule (a template's placeholders, a fingerprint's form, a category that is a real
difference) is refused with one line naming the file, the table and the key
(:func:`verify.common.strict.parse_model`). :func:`verify.source.recipes.parse_recipe` validates a
recipe's TOML against :class:`RecipeFile` and turns it into the :class:`verify.source.recipes.Recipe` the
stages use. Only that parse imports pydantic: the stages that only hold a recipe's values do not pay
for it.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from verify.common.errors import VersionError
from verify.common.strict import StrictModel, table_error
from verify.source import names
from verify.source.recipe_terms import (
    CONTENT_CHANGE,
    EXPECTABLE_CATEGORIES,
    EXPECTABLE_CHANGES,
    FINGERPRINT_RE,
    INAPPLICABLE_NAME_RE,
    PLACEHOLDERS,
    REAL_DIFFERENCE_CATEGORIES,
    RECIPE_SCHEMA,
    SERIES_RE,
    SIGNATURE_KINDS,
)
from verify.source.releases import Version


def _template(template: str, allowed: frozenset[str]) -> str:
    """Allow only bare known placeholders: ``str.format`` would also follow ``{version.attr}``, index
    ``{version[0]}``, convert ``{version!r}`` and pad ``{version:>300000000}`` (300 MB from a 30-byte recipe)."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"is not a valid template ({error}): {template!r}") from None
    unknown = {name for _literal, name, _spec, _conversion in fields if name is not None} - allowed
    if unknown:
        raise ValueError(f"uses unknown placeholder(s) {sorted(unknown)}: {template!r}")
    for _literal, name, spec, conversion in fields:
        if name is not None and (spec or conversion is not None):
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion: {template!r}")
    return template


def _filename_template(template: str) -> str:
    _template(template, PLACEHOLDERS - {"filename"})
    if "/" in template or template in ("", ".", "..") or "\0" in template:
        raise ValueError(f"must be a plain file name: {template!r}")
    return template


def _url_template(template: str) -> str:
    _template(template, PLACEHOLDERS)
    if not template.startswith("https://"):
        raise ValueError(f"must use https: {template!r}")
    return template


def _at_least_one(message: str) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError(message)
        return values

    return check


def _schema(value: int) -> int:
    if value != RECIPE_SCHEMA:
        raise ValueError(f"names unsupported schema {value}; this cpython-verify reads schema {RECIPE_SCHEMA}")
    return value


def _series(value: str) -> str:
    if not SERIES_RE.fullmatch(value):
        raise ValueError(f"must be of the form 3.N, not {value!r}")
    return value


def _fingerprint(value: str) -> str:
    if not FINGERPRINT_RE.match(value):
        raise ValueError(f"is not a full 40-hex-digit upper-case fingerprint: {value!r}")
    return value


def _signature_kind(value: str) -> str:
    if value not in SIGNATURE_KINDS:
        raise ValueError(f"is an unknown signature kind {value!r}; known: {', '.join(SIGNATURE_KINDS)}")
    return value


def _https(value: str) -> str:
    if not value.startswith("https://"):
        raise ValueError(f"must be an https URL, not {value!r}")
    return value


def _release(value: str) -> str:
    if value:  # empty: no release of the series publishes one yet
        try:
            Version.parse(value)
        except VersionError:
            raise ValueError(f"must be a CPython version, not {value!r}") from None
    return value


def _glob(glob: str) -> str:
    if glob.startswith("/") or ".." in glob.split("/") or len(glob) > 512:
        raise ValueError(f"must be relative to the install tree (at most 512 characters): {glob!r}")
    return glob


def _one_line(purpose: str) -> Callable[[str], str]:
    def check(why: str) -> str:
        if not why.strip() or "\n" in why:
            raise ValueError(f"must say, on one line, {purpose}")
        return why

    return check


def _name(problem: Callable[[object], str | None]) -> Callable[[str], str]:
    def check(name: str) -> str:
        found = problem(name)
        if found is not None:
            raise ValueError(found)
        return name

    return check


def _inapplicable_name(name: str) -> str:
    if not INAPPLICABLE_NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a variation name")
    return name


def _check_categories(categories: tuple[str, ...] | None, changes: tuple[str, ...]) -> None:
    """A content change names the comparator categories its measurement showed; no other change does."""
    if CONTENT_CHANGE not in changes:
        if categories:
            raise table_error("'categories' apply to content changes only, and 'changes' has no 'content'")
        return
    if categories is None:
        raise table_error("missing key 'categories'")
    if not categories:
        raise table_error("'categories' must name at least one category the content change showed")
    for category in categories:
        if category in REAL_DIFFERENCE_CATEGORIES:
            raise table_error(
                f"category {category!r} is a real difference, never an expected one: declare the variation "
                "inapplicable to the profile ([build.profiles.<name>.inapplicable.<variation>]) instead"
            )
        if category not in EXPECTABLE_CATEGORIES:
            raise table_error(f"unknown category {category!r}; known: {', '.join(EXPECTABLE_CATEGORIES)}")


# TOML arrays arrive as lists: each list field takes one (lax for the container only; its items stay strict).
_Strings = Annotated[tuple[str, ...], Field(strict=False)]
_Globs = Annotated[tuple[Annotated[str, AfterValidator(_glob)], ...], Field(strict=False)]
_VariationName = Annotated[str, AfterValidator(_name(names.variation_problem))]


class SourceTable(StrictModel):
    """``[source]``."""

    filenames: Annotated[
        tuple[Annotated[str, AfterValidator(_filename_template)], ...],
        Field(strict=False),
        AfterValidator(_at_least_one("must name at least one file")),
    ]
    urls: Annotated[tuple[Annotated[str, AfterValidator(_url_template)], ...], Field(strict=False)]
    debian_package: str | None = None


class OpenPGPTable(StrictModel):
    """``[signatures.openpgp]``."""

    fingerprints: Annotated[
        tuple[Annotated[str, AfterValidator(_fingerprint)], ...],
        Field(strict=False),
        AfterValidator(_at_least_one("must pin at least one key")),
    ]
    keys: _Strings
    """Key files, relative to the recipe's directory."""


class SigstoreTable(StrictModel):
    """``[signatures.sigstore]``."""

    identity: str
    issuer: Annotated[str, AfterValidator(_https)]
    since: Annotated[str, AfterValidator(_release)] = ""


class SignaturesTable(StrictModel):
    """``[signatures]``: what the series publishes and who may sign it."""

    publishes: Annotated[
        tuple[Annotated[str, AfterValidator(_signature_kind)], ...],
        Field(strict=False),
        AfterValidator(_at_least_one("must name at least one signature kind")),
    ]
    openpgp: OpenPGPTable | None = None
    sigstore: SigstoreTable | None = None

    @model_validator(mode="after")
    def _each_published_kind_has_a_signer(self) -> SignaturesTable:
        for kind, policy in (("openpgp", self.openpgp), ("sigstore", self.sigstore)):
            if kind in self.publishes and policy is None:
                raise table_error(f"publishes {kind} but has no [signatures.{kind}] signer")
            if kind not in self.publishes and policy is not None:
                raise table_error(f"has a [signatures.{kind}] signer but does not list it in 'publishes'")
        return self


class ExpectEntry(StrictModel):
    """``[build.expect.<variation>]`` or ``[build.profiles.<name>.expect.<variation>]``."""

    why: str
    paths: _Globs
    changes: _Strings
    categories: _Strings | None = None

    @model_validator(mode="after")
    def _holds_together(self) -> ExpectEntry:
        unknown = sorted(set(self.changes) - set(EXPECTABLE_CHANGES))
        if unknown:
            raise table_error(f"unknown change(s) {', '.join(unknown)}; known: {', '.join(EXPECTABLE_CHANGES)}")
        _check_categories(self.categories, self.changes)
        if not self.paths or not self.changes:
            raise table_error("needs at least one of 'paths' and of 'changes'")
        return self


def _content_only(changes: tuple[str, ...]) -> tuple[str, ...]:
    # Only a comparator can show that two contents mean the same; a mode, a type or a missing file that
    # changes from build to build has no such evidence.
    if changes != (CONTENT_CHANGE,):
        raise ValueError(f"must be [{CONTENT_CHANGE!r}]: only content differences carry a comparator's evidence")
    return changes


class NondeterministicEntry(StrictModel):
    """``[build.profiles.<name>.nondeterministic]``."""

    why: Annotated[str, AfterValidator(_one_line("what upstream makes builds differ"))]
    paths: Annotated[_Globs, AfterValidator(_at_least_one("needs at least one path glob"))]
    changes: Annotated[_Strings, AfterValidator(_content_only)]
    categories: _Strings | None = None

    @model_validator(mode="after")
    def _categories_shown(self) -> NondeterministicEntry:
        _check_categories(self.categories, self.changes)
        return self


class InapplicableEntry(StrictModel):
    """``[build.profiles.<name>.inapplicable.<variation>]``."""

    why: Annotated[str, AfterValidator(_one_line("why the variation does not apply"))]


class ProfileTable(StrictModel):
    """``[build.profiles.<name>]``."""

    configure: _Strings
    description: str = ""
    expect: dict[_VariationName, ExpectEntry] = Field(default_factory=dict)
    inapplicable: dict[Annotated[str, AfterValidator(_inapplicable_name)], InapplicableEntry] = Field(
        default_factory=dict
    )
    nondeterministic: NondeterministicEntry | None = None
    measured: _Strings = ()

    @model_validator(mode="after")
    def _expected_or_inapplicable(self) -> ProfileTable:
        both = sorted(set(self.expect) & set(self.inapplicable))
        if both:
            raise table_error(f"variation(s) {', '.join(both)} both expected and inapplicable")
        return self


class BuildTable(StrictModel):
    """``[build]``."""

    environment: str
    # A profile name becomes a directory name (rebuild-VERSION-PROFILE), a plan job's id and an
    # attestation's recipe.profile, which every reader checks by this same rule.
    profiles: dict[Annotated[str, AfterValidator(_name(names.profile_problem))], ProfileTable]
    expect: dict[_VariationName, ExpectEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_a_default_profile(self) -> BuildTable:
        if "default" not in self.profiles:
            raise table_error("needs a [build.profiles.default]")
        return self


class RecipeFile(StrictModel):
    """A recipe file, ``cpython-X.Y.toml``."""

    schema_: Annotated[int, AfterValidator(_schema)] = Field(alias="schema")
    series: Annotated[str, AfterValidator(_series)]
    notes: _Strings = ()
    source: SourceTable
    signatures: SignaturesTable
    build: BuildTable | None = None

    @model_validator(mode="after")
    def _measured_releases_are_of_the_series(self) -> RecipeFile:
        for name, profile in (self.build.profiles if self.build else {}).items():
            for release in profile.measured:
                where = f"build.profiles.{name}: measured release {release!r}"
                try:
                    parsed = Version.parse(release)
                except VersionError:
                    raise table_error(f"{where} is not a CPython version") from None
                if parsed.series != self.series:
                    raise table_error(f"{where} is not a {self.series} release")
        return self
