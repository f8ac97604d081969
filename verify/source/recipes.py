"""Load and validate per-series recipes (``recipes/cpython-X.Y.toml``).

A recipe is data: where a release's source lives, who may sign it, and how to build it. Loading is
strict: a missing key, a wrong type or an unknown key is a :class:`RecipeError`, because a typo in a
trust policy must never silently weaken it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from verify.common.errors import RecipeError
from verify.common.fsutil import read_regular_file
from verify.common.limits import RECIPE_MAX_BYTES
from verify.source.recipe_terms import EXPECTABLE_CATEGORIES as EXPECTABLE_CATEGORIES
from verify.source.recipe_terms import EXPECTABLE_CHANGES as EXPECTABLE_CHANGES
from verify.source.recipe_terms import NONDETERMINISTIC
from verify.source.recipe_terms import REAL_DIFFERENCE_CATEGORIES as REAL_DIFFERENCE_CATEGORIES
from verify.source.recipe_terms import SIGNATURE_KINDS as SIGNATURE_KINDS
from verify.source.releases import Version
from verify.source.shipped import default_recipes_dir, supported_series_text

if TYPE_CHECKING:  # the file format's models are imported when a recipe is parsed (they import pydantic)
    from verify.source.recipe_file import BuildTable, ExpectEntry, NondeterministicEntry, OpenPGPTable


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where a release's source files are named and published."""

    filenames: tuple[str, ...]
    """File name templates in order of preference, e.g. ``Python-{version}.tar.xz``."""
    url_templates: tuple[str, ...]
    """Upstream URL templates; ``{base}`` is the release directory (``3.14.0`` for ``3.14.0rc1``)."""
    debian_package: str | None
    """Debian source package that carries the tarball as its ``.orig`` file, if any."""

    def filenames_for(self, version: Version) -> tuple[str, ...]:
        """The concrete file names for ``version``, in order of preference."""
        return tuple(_expand(template, version) for template in self.filenames)

    def urls_for(self, version: Version, filename: str) -> tuple[str, ...]:
        """The upstream URLs of ``filename`` for ``version``."""
        return tuple(_expand(template, version, filename=filename) for template in self.url_templates)


@dataclass(frozen=True, slots=True)
class OpenPGPPolicy:
    """The OpenPGP keys allowed to sign a series' source tarballs."""

    fingerprints: tuple[str, ...]
    key_files: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class SigstorePolicy:
    """The Sigstore identity and OIDC issuer that sign a series' source tarballs."""

    identity: str
    issuer: str
    since: Version | None
    """First release of the series with a Sigstore bundle; earlier ones publish none."""


@dataclass(frozen=True, slots=True)
class ExpectedDifference:
    """What one variation is documented to change (``[build.expect.<variation>]``), and why."""

    variation: str
    paths: tuple[str, ...]
    """Globs over install-tree paths (``**/`` spans directories)."""
    changes: frozenset[str]
    """Which of :data:`EXPECTABLE_CHANGES` those paths may show."""
    why: str
    categories: frozenset[str] = frozenset()
    """For a ``content`` change: the comparator categories (:data:`EXPECTABLE_CATEGORIES`) the measured
    difference showed. A content difference the comparator classifies otherwise, or not at all, is not
    accounted for, whatever the path (the compare stage judges: :func:`verify.compare.twice.explain`)."""


@dataclass(frozen=True, slots=True)
class InapplicableVariation:
    """A variation that does not apply to a profile (``[build.profiles.<name>.inapplicable.<variation>]``):
    its documented effect on that profile's builds is a real code change, so varying it would test
    nothing the recipe could explain. ``rebuild --twice`` skips it and says why."""

    variation: str
    why: str


@dataclass(frozen=True, slots=True)
class BuildProfile:
    """A named set of configure flags (``default``, ``pgo-lto``, ...)."""

    name: str
    configure: tuple[str, ...]
    description: str
    expect: Mapping[str, ExpectedDifference] = field(default_factory=dict)
    """``[build.profiles.<name>.expect.<variation>]``: what a variation changes in this profile's builds
    only, beside what the series-wide ``[build.expect]`` says it changes in every profile's."""
    inapplicable: Mapping[str, InapplicableVariation] = field(default_factory=dict)
    """``[build.profiles.<name>.inapplicable.<variation>]``: variations ``rebuild --twice`` skips for this
    profile, each with the recipe's reason."""
    nondeterministic: ExpectedDifference | None = None
    """``[build.profiles.<name>.nondeterministic]``: content differences this profile's builds show between
    any two builds, varied or not (an upstream nondeterminism, e.g. the free-threaded build's marshal), each
    only with the comparator categories the measurement showed. None: every difference needs a variation."""
    measured: tuple[str, ...] = ()
    """Releases this profile was rebuilt from and measured with ``rebuild --twice`` (docs/reproducibility.md).
    Empty: the profile is unmeasured, its flags and expectations carried over from other series untested."""

    def status(self, series: str) -> str:
        """One line for reports: on which releases this profile was measured, or that it never was."""
        if self.measured:
            releases = ", ".join(self.measured)
            return f"recipe {series} profile {self.name}: measured on {releases} (docs/reproducibility.md)"
        return (
            f"recipe {series} profile {self.name}: UNMEASURED: no {series} release has been rebuilt and compared "
            f"with it; its settings and expectations are carried over from measured series"
        )


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """How a series is rebuilt: the pinned environment, the configure profiles, and what variations change."""

    environment: str
    profiles: Mapping[str, BuildProfile]
    expect: Mapping[str, ExpectedDifference] = field(default_factory=dict)
    """Variation name -> the differences it is documented to cause; a variation not listed may change nothing.

    Data only: the rebuild stage chooses the variations (:func:`verify.rebuild.variations.choose_variations`),
    the compare stage explains the differences by these entries (:func:`verify.compare.twice.explain`)."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """Everything cpython-verify knows about one CPython series."""

    series: str
    path: Path
    sha256: str
    """sha256 of the recipe file's bytes: recorded in every result built from it."""
    source: SourceSpec
    publishes: tuple[str, ...]
    """Signature kinds the series publishes (for its current releases)."""
    openpgp: OpenPGPPolicy | None
    sigstore: SigstorePolicy | None
    build: BuildSpec | None
    notes: tuple[str, ...] = field(default=())

    @property
    def measured(self) -> bool:
        """True when at least one build profile of this series has been measured on a real release."""
        return self.build is not None and any(profile.measured for profile in self.build.profiles.values())

    def published_signatures(self, version: Version) -> tuple[str, ...]:
        """The signature kinds python.org publishes for ``version`` (Sigstore only from ``since``)."""
        kinds = []
        for kind in self.publishes:
            if kind == "sigstore" and self.sigstore and self.sigstore.since and version < self.sigstore.since:
                continue
            kinds.append(kind)
        return tuple(kinds)


def _expand(template: str, version: Version, filename: str = "") -> str:
    return template.format(version=str(version), base=version.base, series=version.series, filename=filename)


def parse_recipe(text: bytes, path: Path) -> Recipe:
    """Validate the bytes of one recipe file and return the :class:`Recipe`."""
    if len(text) > RECIPE_MAX_BYTES:
        raise RecipeError(f"{path.name}: larger than {RECIPE_MAX_BYTES >> 10} KiB; not a recipe")
    from verify.common.strict import load_toml, parse_model
    from verify.source.recipe_file import RecipeFile

    data = load_toml(text, where=path.name, error=RecipeError)
    recipe = parse_model(RecipeFile, data, where=path.name, error=RecipeError)
    signatures = recipe.signatures
    return Recipe(
        series=recipe.series,
        path=path,
        sha256=hashlib.sha256(text).hexdigest(),
        source=SourceSpec(
            filenames=recipe.source.filenames,
            url_templates=recipe.source.urls,
            debian_package=recipe.source.debian_package,
        ),
        publishes=signatures.publishes,
        openpgp=_openpgp_policy(signatures.openpgp, path) if signatures.openpgp else None,
        sigstore=(
            SigstorePolicy(
                identity=signatures.sigstore.identity,
                issuer=signatures.sigstore.issuer,
                since=Version.parse(signatures.sigstore.since) if signatures.sigstore.since else None,
            )
            if signatures.sigstore
            else None
        ),
        build=_build_spec(recipe.build) if recipe.build else None,
        notes=recipe.notes,
    )


def _openpgp_policy(table: OpenPGPTable, path: Path) -> OpenPGPPolicy:
    key_files = []
    for name in table.keys:
        key_path = (path.parent / name).resolve()
        if not key_path.is_file():
            raise RecipeError(f"{path.name}: signatures.openpgp: key file {name!r} does not exist")
        key_files.append(key_path)
    return OpenPGPPolicy(fingerprints=table.fingerprints, key_files=tuple(key_files))


def _build_spec(table: BuildTable) -> BuildSpec:
    return BuildSpec(
        environment=table.environment,
        profiles={
            name: BuildProfile(
                name=name,
                configure=profile.configure,
                description=profile.description,
                expect=_expected(profile.expect),
                inapplicable={
                    variation: InapplicableVariation(variation, entry.why)
                    for variation, entry in profile.inapplicable.items()
                },
                nondeterministic=(
                    _expected_difference(NONDETERMINISTIC, profile.nondeterministic)
                    if profile.nondeterministic
                    else None
                ),
                measured=profile.measured,
            )
            for name, profile in table.profiles.items()
        },
        expect=_expected(table.expect),
    )


def _expected(table: Mapping[str, ExpectEntry]) -> dict[str, ExpectedDifference]:
    return {variation: _expected_difference(variation, entry) for variation, entry in table.items()}


def _expected_difference(variation: str, entry: ExpectEntry | NondeterministicEntry) -> ExpectedDifference:
    return ExpectedDifference(
        variation, entry.paths, frozenset(entry.changes), entry.why, frozenset(entry.categories or ())
    )


def available_recipes_dir(recipes_dir: Path | None = None) -> Path:
    """The recipes directory, checked to hold at least one recipe.

    A missing or empty directory is a broken installation or a wrong ``--recipes``, never "this
    series has no recipe": callers that skip unknown series must not skip every series silently.
    """
    directory = recipes_dir or default_recipes_dir()
    if not directory.is_dir():
        raise RecipeError(f"recipes directory {directory} does not exist (check --recipes / CPYTHON_VERIFY_RECIPES)")
    if not any(directory.glob("cpython-*.toml")):
        raise RecipeError(f"recipes directory {directory} holds no cpython-*.toml recipe")
    return directory


def recipe_path(series: str, recipes_dir: Path | None = None) -> Path:
    """Where the recipe of ``series`` lives."""
    return (recipes_dir or default_recipes_dir()) / f"cpython-{series}.toml"


def read_recipe_bytes(path: Path) -> bytes:
    """The bytes of a recipe file: a regular file (a symlink to one is fine) of at most ``RECIPE_MAX_BYTES``.

    Raises FileNotFoundError when it does not exist and :class:`RecipeError` for anything else: a recipe that
    is a FIFO or a link to ``/dev/zero`` must not hang or exhaust memory.
    """
    try:
        text = read_regular_file(path, RECIPE_MAX_BYTES)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from None
    if len(text) > RECIPE_MAX_BYTES:
        raise RecipeError(f"recipe {path} is larger than {RECIPE_MAX_BYTES >> 10} KiB; not a recipe")
    return text


def load_recipe(series: str, recipes_dir: Path | None = None) -> Recipe:
    """Load and validate the recipe of one series (``3.13``)."""
    path = recipe_path(series, recipes_dir)
    try:
        text = read_recipe_bytes(path)
    except FileNotFoundError:
        available_recipes_dir(path.parent)  # a missing directory says so, rather than "no recipe for 3.13"
        raise RecipeError(
            f"no recipe for CPython {series}: {series} is not a supported series; {supported_series_text(path.parent)}"
        ) from None
    recipe = parse_recipe(text, path)
    if recipe.series != series:
        raise RecipeError(f"{path.name}: says series {recipe.series}, expected {series}")
    return recipe


def load_all_recipes(recipes_dir: Path | None = None) -> dict[str, Recipe]:
    """Load every ``cpython-*.toml`` recipe, keyed by series."""
    directory = available_recipes_dir(recipes_dir)
    recipes = {}
    for path in sorted(directory.glob("cpython-*.toml")):
        try:
            text = read_recipe_bytes(path)
        except FileNotFoundError:
            continue  # removed since the listing
        recipe = parse_recipe(text, path)
        recipes[recipe.series] = recipe
    return recipes
