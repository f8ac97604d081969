"""Load and validate per-series recipes (``recipes/cpython-X.Y.toml``).

A recipe is data: where a release's source lives, who may sign it, and how to build it. Loading is
strict: a missing key, a wrong type or an unknown key is a :class:`RecipeError`, because a typo in a
trust policy must never silently weaken it.
"""

from __future__ import annotations

import hashlib
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verify.common.errors import RecipeError, VersionError
from verify.common.fsutil import read_regular_file
from verify.common.limits import RECIPE_MAX_BYTES
from verify.source import names
from verify.source.releases import Version
from verify.source.shipped import default_recipes_dir, supported_series_text

SIGNATURE_KINDS = ("openpgp", "sigstore")
_FINGERPRINT_RE = re.compile(r"^[0-9A-F]{40}$")
_SERIES_RE = re.compile(r"3\.[0-9]{1,2}", re.ASCII)
_PLACEHOLDERS = {"version", "base", "series", "filename"}


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


# The compare stage's names for the ways a path can differ (verify.compare.model.CHANGES); repeated here
# as data so that recipes are validated without importing the comparison stage.
EXPECTABLE_CHANGES = ("only-in-a", "only-in-b", "type", "mode", "link-target", "content")
CONTENT_CHANGE = "content"
NONDETERMINISTIC = "nondeterministic"
"""The name under which a profile's :attr:`BuildProfile.nondeterministic` entry explains a difference: not
a variation, since such a difference appears between two builds that varied nothing."""
# The comparators' categories (verify.compare.model.CATEGORIES), as data for the same reason. A content
# difference is explained only when its category is one the entry names: the comparator's evidence must
# match the documented cause, whatever path the glob matches.
EXPECTABLE_CATEGORIES = (
    "debug-info",
    "build-id-only",
    "lto-random-seed",
    "build-path",
    "embedded-date",
    "embedded-date-and-path",
    "header-only",
    "reference-flags-only",
    "path-only",
    "whitespace",
)
"""Categories that name a cause leaving the code unchanged, each given only on the comparator's evidence."""
REAL_DIFFERENCE_CATEGORIES = (
    "code",
    "semantic",
    "content",
    "settings",
    "probed-features",
    "install-prefix",
    "source-hash",
    "stale-source-hash",
    "pyc-header",
    "kind-changed",
    "unreadable",
    "layout",
    "membership",
    "symbol-table",
    "mixed",
)
"""Categories of a real difference, or of one no comparator could show to be harmless: never expected.
A variation whose documented effect is such a difference does not apply to that profile
(``[build.profiles.<name>.inapplicable.<variation>]``)."""


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``**/`` is any number of directories, ``*`` and ``?`` stay in one segment."""
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:[^/]+/)*")
            index += 3
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


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
    accounted for, whatever the path."""

    def accounts_for(self, path: str, changes: tuple[str, ...], category: str | None = None) -> bool:
        """True when ``path`` matches a glob, every one of its ``changes`` is allowed and, for a content
        change, the comparator's ``category`` is one this entry names."""
        if not set(changes) <= self.changes:
            return False
        if CONTENT_CHANGE in changes and (category is None or category not in self.categories):
            return False
        return any(glob_regex(glob).match(path) for glob in self.paths)


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
    """Variation name -> the differences it is documented to cause; a variation not listed may change nothing."""

    def documented(self, variation: str, profile: str | None) -> tuple[ExpectedDifference, ...]:
        """What ``variation`` is documented to change in ``profile``'s builds: the series-wide entry, then
        the profile's own (a profile the recipe does not have, or None, adds nothing)."""
        own = self.profiles.get(profile) if profile is not None else None
        if variation == NONDETERMINISTIC:
            return (own.nondeterministic,) if own is not None and own.nondeterministic is not None else ()
        tables = [self.expect]
        if own is not None:
            tables.append(own.expect)
        return tuple(table[variation] for table in tables if variation in table)

    def applicable(
        self, variations: frozenset[str], profile: str | None
    ) -> tuple[frozenset[str], tuple[InapplicableVariation, ...]]:
        """``variations`` without those ``profile`` declares inapplicable, and those (sorted by name)."""
        declared = self.profiles[profile].inapplicable if profile is not None and profile in self.profiles else {}
        skipped = tuple(declared[name] for name in sorted(variations) if name in declared)
        return frozenset(name for name in variations if name not in declared), skipped

    def explain(
        self,
        path: str,
        changes: tuple[str, ...],
        variations: frozenset[str],
        profile: str | None = None,
        *,
        category: str | None = None,
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Which chosen ``variations`` account for some of the changes, and which changes none accounts for.

        Each change is judged on its own: a file whose content follows the build path and whose mode
        follows the umask is explained when both were varied and the recipe documents both. A content
        change needs the comparator's ``category`` to be one the entry names (None: nothing classified
        it, so nothing explains it). What ``profile``'s own ``expect`` documents counts too, for builds
        of that profile only, and so does its ``nondeterministic`` entry (named :data:`NONDETERMINISTIC`),
        whatever was varied.
        """
        candidates = set(variations)
        if profile is not None and profile in self.profiles and self.profiles[profile].nondeterministic:
            candidates.add(NONDETERMINISTIC)
        expected_by: set[str] = set()
        unexplained = []
        for change in changes:
            accounting = {
                name
                for name in candidates
                if any(entry.accounts_for(path, (change,), category) for entry in self.documented(name, profile))
            }
            expected_by |= accounting
            if not accounting:
                unexplained.append(change)
        return tuple(sorted(expected_by)), tuple(unexplained)


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


class _Table:
    """A TOML table being validated: take keys by type, then insist nothing is left over."""

    def __init__(self, data: Mapping[str, Any], where: str, origin: Path) -> None:
        self._data = dict(data)
        self._where = where
        self._origin = origin

    def _fail(self, message: str) -> RecipeError:
        return RecipeError(f"{self._origin.name}: {self._where}: {message}")

    def _take(self, key: str, kind: type, required: bool) -> Any:
        if key not in self._data:
            if required:
                raise self._fail(f"missing key '{key}'")
            return None
        value = self._data.pop(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._fail(f"'{key}' must be a {kind.__name__}, not {type(value).__name__}")
        return value

    def string(self, key: str, *, required: bool = True) -> str | None:
        value: str | None = self._take(key, str, required)
        return value

    def strings(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        values = self._take(key, list, required)
        if values is None:
            return ()
        if not all(isinstance(item, str) for item in values):
            raise self._fail(f"'{key}' must be a list of strings")
        return tuple(values)

    def integer(self, key: str, *, required: bool = True) -> int | None:
        value: int | None = self._take(key, int, required)
        return value

    def table(self, key: str, *, required: bool = True) -> _Table | None:
        value = self._take(key, dict, required)
        if value is None:
            return None
        return _Table(value, f"{self._where}.{key}" if self._where != "top level" else key, self._origin)

    def tables(self, key: str) -> dict[str, _Table]:
        """A table of tables (e.g. ``[build.profiles.NAME]``)."""
        parent = self.table(key)
        assert parent is not None
        return {name: parent.table(name) for name in list(parent._data)}  # type: ignore[misc]

    def done(self) -> None:
        if self._data:
            raise self._fail(f"unknown key(s): {', '.join(sorted(self._data))}")


def _check_template(template: str, table: _Table, allowed: set[str]) -> None:
    """Allow only bare known placeholders: ``str.format`` would also follow ``{version.attr}``, index
    ``{version[0]}``, convert ``{version!r}`` and pad ``{version:>300000000}`` (300 MB from a 30-byte recipe)."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as error:
        raise table._fail(f"template {template!r} is not a valid template: {error}") from None
    names = {name for _literal, name, _spec, _conversion in fields if name is not None}
    unknown = names - allowed
    if unknown:
        raise table._fail(f"template {template!r} uses unknown placeholder(s) {sorted(unknown)}")
    for _literal, name, spec, conversion in fields:
        if name is not None and (spec or conversion is not None):
            raise table._fail(f"template {template!r}: placeholder {{{name}}} takes no format spec or conversion")


def parse_recipe(text: bytes, path: Path) -> Recipe:
    """Validate the bytes of one recipe file and return the :class:`Recipe`."""
    if len(text) > RECIPE_MAX_BYTES:
        raise RecipeError(f"{path.name}: larger than {RECIPE_MAX_BYTES >> 10} KiB; not a recipe")
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path.name}: not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table.
        raise RecipeError(f"{path.name}: not valid TOML: nested too deeply") from None
    top = _Table(data, "top level", path)
    schema = top.integer("schema")
    if schema != 1:
        raise top._fail(f"unsupported schema {schema}; this cpython-verify reads schema 1")
    series = top.string("series")
    assert series is not None
    if not _SERIES_RE.fullmatch(series):
        raise top._fail(f"series {series!r} is not of the form 3.N")
    notes = top.strings("notes", required=False)

    source_table = top.table("source")
    assert source_table is not None
    filenames = source_table.strings("filenames")
    urls = source_table.strings("urls")
    for template in filenames:
        _check_template(template, source_table, _PLACEHOLDERS - {"filename"})
        if "/" in template or template in ("", ".", "..") or "\0" in template:
            raise source_table._fail(f"file name template {template!r} must be a plain file name")
    for template in urls:
        _check_template(template, source_table, _PLACEHOLDERS)
        if not template.startswith("https://"):
            raise source_table._fail(f"upstream URL {template!r} must use https")
    if not filenames:
        raise source_table._fail("'filenames' must name at least one file")
    debian_package = source_table.string("debian_package", required=False)
    source_table.done()

    signatures = top.table("signatures")
    assert signatures is not None
    publishes = signatures.strings("publishes")
    for kind in publishes:
        if kind not in SIGNATURE_KINDS:
            raise signatures._fail(f"unknown signature kind {kind!r}; known: {', '.join(SIGNATURE_KINDS)}")
    if not publishes:
        raise signatures._fail("'publishes' must name at least one signature kind")
    openpgp = _parse_openpgp(signatures.table("openpgp", required=False), path)
    sigstore = _parse_sigstore(signatures.table("sigstore", required=False))
    signatures.done()
    for kind, policy in (("openpgp", openpgp), ("sigstore", sigstore)):
        if kind in publishes and policy is None:
            raise signatures._fail(f"publishes {kind} but has no [signatures.{kind}] signer")
        if kind not in publishes and policy is not None:
            raise signatures._fail(f"has a [signatures.{kind}] signer but does not list it in 'publishes'")

    build = _parse_build(top.table("build", required=False), series)
    top.done()
    return Recipe(
        series=series,
        path=path,
        sha256=hashlib.sha256(text).hexdigest(),
        source=SourceSpec(filenames=filenames, url_templates=urls, debian_package=debian_package),
        publishes=publishes,
        openpgp=openpgp,
        sigstore=sigstore,
        build=build,
        notes=notes,
    )


def _parse_openpgp(table: _Table | None, path: Path) -> OpenPGPPolicy | None:
    if table is None:
        return None
    fingerprints = table.strings("fingerprints")
    for fingerprint in fingerprints:
        if not _FINGERPRINT_RE.match(fingerprint):
            raise table._fail(f"{fingerprint!r} is not a full 40-hex-digit upper-case fingerprint")
    if not fingerprints:
        raise table._fail("'fingerprints' must pin at least one key")
    key_files = []
    for name in table.strings("keys"):
        key_path = (path.parent / name).resolve()
        if not key_path.is_file():
            raise table._fail(f"key file {name!r} does not exist")
        key_files.append(key_path)
    table.done()
    return OpenPGPPolicy(fingerprints=fingerprints, key_files=tuple(key_files))


def _parse_sigstore(table: _Table | None) -> SigstorePolicy | None:
    if table is None:
        return None
    identity = table.string("identity")
    issuer = table.string("issuer")
    assert identity is not None and issuer is not None
    if not issuer.startswith("https://"):
        raise table._fail(f"issuer {issuer!r} must be an https URL")
    since_text = table.string("since", required=False)
    table.done()
    since = Version.parse(since_text) if since_text else None
    return SigstorePolicy(identity=identity, issuer=issuer, since=since)


def _parse_build(table: _Table | None, series: str) -> BuildSpec | None:
    if table is None:
        return None
    environment = table.string("environment")
    assert environment is not None
    profiles: dict[str, BuildProfile] = {}
    for name, profile_table in table.tables("profiles").items():
        problem = names.profile_problem(name)
        if problem is not None:
            # A profile name becomes a directory name (rebuild-VERSION-PROFILE), a plan job's id and an
            # attestation's recipe.profile, which every reader checks by this same rule.
            raise table._fail(problem)
        configure = profile_table.strings("configure")
        description = profile_table.string("description", required=False) or ""
        profile_expect = _parse_expect(profile_table.table("expect", required=False))
        inapplicable = _parse_inapplicable(profile_table.table("inapplicable", required=False))
        nondeterministic = _parse_nondeterministic(profile_table.table("nondeterministic", required=False))
        measured = profile_table.strings("measured", required=False)
        for release in measured:
            try:
                parsed = Version.parse(release)
            except VersionError:
                raise profile_table._fail(f"measured release {release!r} is not a CPython version") from None
            if parsed.series != series:
                raise profile_table._fail(f"measured release {release!r} is not a {series} release")
        profile_table.done()
        both = sorted(set(profile_expect) & set(inapplicable))
        if both:
            raise profile_table._fail(f"variation(s) {', '.join(both)} both expected and inapplicable")
        profiles[name] = BuildProfile(
            name=name,
            configure=configure,
            description=description,
            expect=profile_expect,
            inapplicable=inapplicable,
            nondeterministic=nondeterministic,
            measured=measured,
        )
    if "default" not in profiles:
        raise table._fail("needs a [build.profiles.default]")
    expect = _parse_expect(table.table("expect", required=False))
    table.done()
    return BuildSpec(environment=environment, profiles=profiles, expect=expect)


_VARIATION_NAME_RE = re.compile(r"^[a-z][a-z_]{0,39}\Z")


def _parse_inapplicable(table: _Table | None) -> dict[str, InapplicableVariation]:
    """``[build.profiles.<name>.inapplicable.<variation>]``: a ``why`` per variation."""
    if table is None:
        return {}
    inapplicable = {}
    for name in list(table._data):
        entry = table.table(name)
        assert entry is not None
        if not _VARIATION_NAME_RE.match(name):
            raise entry._fail(f"{name!r} is not a variation name")
        why = entry.string("why")
        entry.done()
        if not why or not why.strip() or "\n" in why:
            raise entry._fail("'why' must say, on one line, why the variation does not apply")
        inapplicable[name] = InapplicableVariation(name, why)
    table.done()
    return inapplicable


def _parse_categories(entry: _Table, changes: tuple[str, ...]) -> frozenset[str]:
    categories = entry.strings("categories", required=CONTENT_CHANGE in changes)
    if CONTENT_CHANGE not in changes:
        if categories:
            raise entry._fail("'categories' apply to content changes only, and 'changes' has no 'content'")
        return frozenset()
    if not categories:
        raise entry._fail("'categories' must name at least one category the content change showed")
    for category in categories:
        if category in REAL_DIFFERENCE_CATEGORIES:
            raise entry._fail(
                f"category {category!r} is a real difference, never an expected one: declare the variation "
                "inapplicable to the profile ([build.profiles.<name>.inapplicable.<variation>]) instead"
            )
        if category not in EXPECTABLE_CATEGORIES:
            raise entry._fail(f"unknown category {category!r}; known: {', '.join(EXPECTABLE_CATEGORIES)}")
    return frozenset(categories)


def _check_globs(table: _Table, paths: tuple[str, ...]) -> None:
    for glob in paths:
        if glob.startswith("/") or ".." in glob.split("/") or len(glob) > 512:
            raise table._fail(f"path glob {glob!r} must be relative to the install tree")


def _parse_nondeterministic(table: _Table | None) -> ExpectedDifference | None:
    """``[build.profiles.<name>.nondeterministic]``: ``paths``, ``changes`` (content only), ``categories``
    and ``why``, on one line, naming the upstream cause."""
    if table is None:
        return None
    paths = table.strings("paths")
    changes = table.strings("changes")
    if tuple(changes) != (CONTENT_CHANGE,):
        # Only a comparator can show that two contents mean the same; a mode, a type or a missing file that
        # changes from build to build has no such evidence.
        raise table._fail(
            f"'changes' must be [{CONTENT_CHANGE!r}]: only content differences carry a comparator's evidence"
        )
    categories = _parse_categories(table, changes)
    why = table.string("why") or ""
    table.done()
    if not paths:
        raise table._fail("needs at least one path glob")
    if not why.strip() or "\n" in why:
        raise table._fail("'why' must say, on one line, what upstream makes builds differ")
    _check_globs(table, paths)
    return ExpectedDifference(NONDETERMINISTIC, paths, frozenset(changes), why, categories)


def _parse_expect(table: _Table | None) -> dict[str, ExpectedDifference]:
    """``[build.expect.<variation>]``: ``paths`` (globs), ``changes``, ``categories`` and ``why`` per variation."""
    if table is None:
        return {}
    expect = {}
    for name in list(table._data):
        entry = table.table(name)
        assert entry is not None
        if names.variation_problem(name) is not None:
            raise entry._fail(f"{name!r} is not a variation name")
        paths = entry.strings("paths")
        changes = entry.strings("changes")
        unknown_changes = sorted(set(changes) - set(EXPECTABLE_CHANGES))
        if unknown_changes:
            raise entry._fail(f"unknown change(s) {', '.join(unknown_changes)}; known: {', '.join(EXPECTABLE_CHANGES)}")
        categories = _parse_categories(entry, changes)
        why = entry.string("why") or ""
        entry.done()
        if not paths or not changes:
            raise entry._fail("needs at least one of 'paths' and of 'changes'")
        _check_globs(entry, paths)
        expect[name] = ExpectedDifference(name, paths, frozenset(changes), why, categories)
    table.done()
    return expect


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
