"""The rebuild-verdict predicate: what a signed attestation says about one CPython rebuild.

Every rebuild is attested twice, with the same subjects (the install tree and its key files): a SLSA
Provenance v1 Statement (:mod:`verify.attest.provenance`: *how* it was built, for slsa-verifier, cosign
and policy engines) and this verdict (*what the rebuild found*: were two builds identical, which files
differ, the comparator's category and explanation for each, which variation is to blame).

in-toto has no vetted predicate for "I rebuilt this and here is what I found", and SLSA's
Verification Summary Attestation does not fit it either (a VSA states that a policy passed or failed,
with no place for per-file differences, culprits or "built once"), so this one is ours. Its URI lives
under the project's own repository (:data:`PROJECT_URI`), a namespace the project controls, and is
versioned (:data:`PREDICATE_TYPE`). Its layout borrows from OSS Rebuild's ``ArtifactEquivalence@v0.1``
for ``result``. One verdict per rebuild keeps one file per rebuilder for ``peers`` and ``merge``.

The models below are the schema: ``verify/schemas/rebuild-verdict-v1.json`` is generated from them
(:func:`predicate_json_schema`) and a test keeps the committed file equal to the generated one.
Within v1, fields are only ever added as optional, never renamed or given a new meaning.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from verify.attest.errors import AttestationRejected
from verify.common.errors import VerifyError
from verify.common.jsonutil import validation_summary
from verify.compare.model import CHANGES
from verify.manifest import KINDS, check_relative_path
from verify.source import names
from verify.source.releases import Version

PROJECT_URI: Final = "https://github.com/cpython-verify/cpython-verify"
"""The project's repository: every URI the project mints (predicate and build types) lives under it."""
PREDICATE_TYPE: Final = "https://github.com/cpython-verify/cpython-verify/attestation/rebuild-verdict/v1"
"""The versioned predicate type URI. A new major version gets a new URI; old verifiers refuse it."""
BUILD_TYPE: Final = "https://github.com/cpython-verify/cpython-verify/rebuild/v1"
"""The SLSA ``buildType`` (and the verdict's ``build.build_type``): configure/make/install of a verified
release tarball in a pinned rootfs, as docs/rebuild.md describes."""
SCHEMA_ID: Final = "https://github.com/cpython-verify/cpython-verify/blob/main/verify/schemas/rebuild-verdict-v1.json"
RETIRED_PREDICATE_TYPES: Final = frozenset({"https://cpython-verify.dev/attestation/rebuild-verdict/v1"})
"""Predicate types earlier versions signed (under a domain the project does not control): named in a
one-line error, never read."""

_STRICT: Final = ConfigDict(extra="forbid", strict=True, frozen=True)


def _relative_path(text: str) -> str:
    problem = check_relative_path(text)
    if problem is not None:
        raise ValueError(f"{text[:80]!r} is not a path in the install tree ({problem})")
    return text


# Every name the tool uses as a path component, a file name or a key follows the rule it is made by
# (verify.source.names): a trusted signature says who wrote a name, not that it is one.
Sha256 = Annotated[str, Field(pattern=names.SHA256_PATTERN)]
ReleaseVersion = Annotated[
    str, Field(pattern=r"^3\.[0-9]{1,2}\.[0-9]{1,3}((a|b|rc)[0-9]{1,3})?$"), AfterValidator(names.check_release_version)
]
"""A release version exactly as :class:`verify.source.releases.Version` writes it (``3.13.05`` is refused)."""
Profile = Annotated[str, Field(pattern=names.PROFILE_PATTERN)]
Runner = Annotated[str, Field(pattern=names.RUNNER_PATTERN)]
EnvironmentName = Annotated[str, Field(pattern=names.ENVIRONMENT_PATTERN)]
VariationName = Annotated[str, Field(pattern=names.VARIATION_PATTERN)]
SettingName = Annotated[str, Field(pattern=names.SETTING_PATTERN)]
Category = Annotated[str, Field(pattern=names.CATEGORY_PATTERN)]
FileName = Annotated[str, Field(pattern=names.FILE_NAME_PATTERN)]
TreePath = Annotated[str, Field(max_length=4096), AfterValidator(_relative_path)]
Kind = Annotated[str, Field(pattern="^(" + "|".join(sorted(KINDS)) + ")$")]
"""A manifest kind (docs/manifest.md)."""
_CHANGE: Final = "(" + "|".join(CHANGES) + ")"
Changes = Annotated[str, Field(pattern=f"^{_CHANGE}(,{_CHANGE})*$")]
"""The compare stage's changes of one path, joined by commas (``content``, ``mode,content``)."""
Line = Annotated[str, Field(max_length=4096)]
"""Free text (details, names shown to people): bounded so a hostile predicate cannot carry megabytes per field."""
Scalar = str | int | bool | None


@dataclass(config=_STRICT)
class Tarball:
    """The exact source bytes that were verified and rebuilt."""

    name: FileName
    sha256: Sha256
    size: int | None = None
    origin: Line | None = None


@dataclass(config=_STRICT)
class SignatureRecord:
    """One release signature the source stage checked (see docs/source-verdict.md)."""

    kind: Literal["openpgp", "sigstore"]
    status: Literal["verified", "failed", "missing", "not-required"]
    detail: Line
    signer: Line | None = None
    signer_name: Line | None = None
    signed_at: Line | None = None


@dataclass(config=_STRICT)
class DigestRecord:
    """An independent sha256 claim about the tarball, and whether the bytes agree with it."""

    source: Line
    sha256: Sha256
    agrees: bool


@dataclass(config=_STRICT)
class SourceSection:
    """The source verdict the rebuild started from."""

    verified: bool
    tarball: Tarball
    signatures: tuple[SignatureRecord, ...]
    digests: tuple[DigestRecord, ...]
    patchlevel: Line | None
    verdict_sha256: Sha256
    """sha256 of the ``source-verdict.json`` file the predicate was made from."""


@dataclass(config=_STRICT)
class RecipeSection:
    """The recipe (SLSA: external parameters) and the profile chosen from it."""

    series: Annotated[str, Field(pattern=names.SERIES_PATTERN)]
    """The release's series (:attr:`verify.source.releases.Version.series` of ``version``)."""
    sha256: Sha256
    profile: Profile
    configure: tuple[Line, ...]


@dataclass(config=_STRICT)
class EnvironmentSection:
    """The pinned build environment (SLSA: resolved dependencies)."""

    name: EnvironmentName
    lock_sha256: Sha256 | None
    rootfs_sha256: Sha256 | None


@dataclass(config=_STRICT)
class BuildSection:
    """How the rebuild ran (SLSA: build definition and run details)."""

    build_type: Literal["https://github.com/cpython-verify/cpython-verify/rebuild/v1"]
    runner: Runner
    environment: EnvironmentSection
    settings: dict[SettingName, Scalar]
    """Every reproducibility setting (docs/rebuild.md), as recorded by the rebuild."""
    variations: tuple[VariationName, ...]
    """Variations the *second* build applied (``--twice``); empty for a single build."""
    rebuild_sha256: Sha256
    """sha256 of the ``rebuild.json`` file the predicate was made from."""


@dataclass(config=_STRICT)
class DifferenceRecord:
    """One path that differs between the two builds of ``--twice``."""

    path: TreePath
    kind: Kind
    change: Changes
    explained: bool
    """True when a chosen variation is documented to cause exactly this difference."""
    category: Category | None = None
    """The comparator's category for a content difference (``build-path``, ``reference-flags-only``, ...)."""
    explanation: Line | None = None
    """The comparator's one-line explanation of a content difference."""


@dataclass(config=_STRICT)
class ResultSection:
    """What the rebuild found (OSS Rebuild: artifact equivalence)."""

    manifest_sha256: Sha256
    """sha256 of ``manifest.json``: the install tree *and* the inputs recorded with it."""
    tree_sha256: Sha256
    """sha256 of the manifest with its inputs emptied: the install tree alone. Two rebuilders that used
    different runners or settings but produced the same files agree on this digest; ``peers`` compares it."""
    reproducible: bool | None
    """True: two builds identical in every path; False: they differ; None: built once, not checked."""
    explained: bool | None
    """True when every difference is one the variations are documented to cause; None for one build."""
    differences: tuple[DifferenceRecord, ...]
    culprits: dict[VariationName, bool]
    """After ``--bisect``: variation -> whether it alone makes the outputs differ."""


@dataclass(config=_STRICT)
class Rebuilder:
    """Who rebuilt (SLSA: ``runDetails.builder``)."""

    id: Annotated[str, Field(max_length=4096, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")]
    """A URI, the same as the provenance's ``runDetails.builder.id``: the CI run URL, or the configured
    rebuilder id (``--rebuilder-id``) as given when it is a URI, else as ``urn:cpython-verify:rebuilder:ID``."""
    tool: Line
    """``cpython-verify <version>``."""
    name: Line | None = None
    """The rebuilder id as configured (a host name, an organisation), for people reading a status page."""
    job: Line | None = None
    """The job that rebuilt, as the workflow that ran it names it (the ``plan`` job id, ``attest --job``):
    two jobs of one rebuilder (one signer) are two runs, told apart by this signed field, never by file names.
    None outside a planned job."""
    machine: Line | None = None
    """The machine that job ran on, as the job saw it (its host name, or ``attest --machine``); None outside
    a planned job. The signer vouches for it as for the rest of the verdict: ``peers`` counts two runs of one
    signer on two machines as "reproducible across machines", never as two independent rebuilders."""


@dataclass(config=_STRICT)
class RebuildVerdict:
    """The whole predicate of a cpython-verify attestation."""

    version: ReleaseVersion
    recipe: RecipeSection
    source: SourceSection
    build: BuildSection
    result: ResultSection
    rebuilder: Rebuilder
    attested_at: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$")]

    @model_validator(mode="after")
    def _holds_together(self) -> RebuildVerdict:
        """The fields ``attest`` derives from one another agree, as ``attest`` makes them: a signed verdict
        that says "reproducible" and lists differences would show as green on a status page."""
        series = Version.parse(self.version).series
        if self.recipe.series != series:
            raise ValueError(f"recipe.series {self.recipe.series!r} is not the series of version {self.version}")
        result = self.result
        if result.reproducible is None:
            if result.explained is not None or result.differences or result.culprits:
                raise ValueError("a single build (reproducible: null) has no explained, differences or culprits")
        else:
            if result.reproducible != (not result.differences):
                raise ValueError(
                    f"reproducible is {str(result.reproducible).lower()} with {len(result.differences)} difference(s)"
                )
            if result.explained != all(difference.explained for difference in result.differences):
                raise ValueError("explained does not say whether every difference is explained")
        unknown = sorted(set(result.culprits) - set(self.build.variations))
        if unknown:
            raise ValueError(f"culprits {', '.join(unknown)} are not variations of the second build")
        return self

    @property
    def verdict(self) -> str:
        """One word for tables: ``reproducible``, ``explained``, ``differs`` or ``built-once``."""
        if self.result.reproducible is None:
            return "built-once"
        if self.result.reproducible:
            return "reproducible"
        return "explained" if self.result.explained else "differs"


_ADAPTER: Final = TypeAdapter(RebuildVerdict)


def predicate_to_json(predicate: RebuildVerdict) -> dict[str, Any]:
    """The predicate as plain JSON data, for the in-toto Statement."""
    data: dict[str, Any] = _ADAPTER.dump_python(predicate, mode="json")
    return data


def parse_predicate(document: bytes, *, error_type: type[VerifyError] = AttestationRejected) -> RebuildVerdict:
    """Validate JSON bytes against the v1 schema; the error (one line) names the first problem.

    Verification calls it only on predicates whose signature already verified: a signed predicate
    that breaks the schema is a producer that lies or a tool that is broken, and either way must not
    be accepted (:class:`AttestationRejected`). ``attest`` passes :class:`AttestationError`: there a
    failure means the rebuild result it was given is malformed.
    """
    try:
        return _ADAPTER.validate_json(document)
    except ValidationError as error:
        raise error_type(
            f"predicate does not match the {PREDICATE_TYPE} schema: {validation_summary(error, top='predicate')} "
            f"({error.error_count()} problem(s))"
        ) from None


def predicate_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the predicate, as committed in ``verify/schemas/``."""
    schema = _ADAPTER.json_schema()
    _close_pattern_properties(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "cpython-verify rebuild verdict v1",
        "description": f"The predicate of in-toto Statements with predicateType {PREDICATE_TYPE}.",
        **schema,
    }


def _close_pattern_properties(node: Any) -> None:
    """A mapping whose keys follow a rule (``settings``, ``culprits``) is ``patternProperties`` in the
    generated schema, which alone lets any other key through; the model refuses them, so does the schema."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_properties(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_properties(value)
