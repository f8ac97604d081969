"""SLSA Provenance v1 for a rebuilt CPython install tree: what existing tools (slsa-verifier, cosign,
OPA/Kyverno policies) read.

The Statement's subjects are the rebuild's *outputs* only: the install tree as a whole
(:data:`INSTALL_TREE_SUBJECT`, whose sha256 is that of the tree's canonical manifest with empty inputs,
docs/manifest.md) and its key files (interpreter, libpython). The verified source tarball is an *input*:
it is a ``resolvedDependency``, with the release signers that verified it in its annotations, so no
tool can mistake the rebuilder's signature for the release manager's.

:func:`build_provenance` is pure: it turns the verdict (already cross-checked from the result's files)
and the rebuild record into the predicate. :func:`parse_provenance` reads one back for verification;
it accepts only this project's ``buildType``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from verify import __version__
from verify.attest.errors import AttestationError, AttestationRejected
from verify.attest.predicate import (
    BUILD_TYPE,
    EnvironmentName,
    Profile,
    RebuildVerdict,
    ReleaseVersion,
    Runner,
    Scalar,
    SettingName,
    VariationName,
)
from verify.common.jsonutil import validation_summary
from verify.result import PgoProfileRef, RebuildRecord
from verify.source import names

PROVENANCE_TYPE: Final = "https://slsa.dev/provenance/v1"
INSTALL_TREE_SUBJECT: Final = "install-tree"
"""The subject naming the install tree as a whole. Its ``sha256`` is the digest of the tree's canonical
manifest with empty inputs (``tree_sha256``): every path, kind, mode, link target and file digest, and
nothing about how it was built, so two rebuilders that produced the same files agree on it."""
MANIFEST_BYPRODUCT: Final = "manifest.json"
RECORD_BYPRODUCT: Final = "rebuild.json"
SOURCE_VERDICT_BYPRODUCT: Final = "source-verdict.json"
RELEASE_URL: Final = "https://www.python.org/ftp/python/{base}/{name}"
"""Where python.org publishes a release tarball: the tarball's canonical ``uri``, whatever mirror served it."""
REBUILDER_URN: Final = "urn:cpython-verify:rebuilder:"
"""Prefix that turns a configured rebuilder id that is not a URI (a host name) into one."""

_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_STRICT: Final = ConfigDict(extra="forbid", strict=True, frozen=True)

Line = Annotated[str, Field(max_length=4096)]
Uri = Annotated[str, Field(max_length=4096, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")]
Timestamp = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$")]


def builder_uri(rebuilder_id: str) -> str:
    """``runDetails.builder.id``: the configured id when it already is a URI (a CI run URL, a ``urn:``),
    else ``urn:cpython-verify:rebuilder:<id>`` (percent-encoded). SLSA requires a URI here."""
    text = rebuilder_id.strip()
    if not text:
        raise AttestationError("the rebuilder id is empty: give --rebuilder-id")
    if _URI.match(text):
        return text
    return REBUILDER_URN + quote(text, safe="-._~@+")


def release_url(version: str, name: str) -> str:
    """python.org's URL of a release tarball: ``3.14.0rc1`` lives under ``3.14.0/``."""
    match = re.match(r"^[0-9]+\.[0-9]+\.[0-9]+", version)
    return RELEASE_URL.format(base=match.group(0) if match else version, name=name)


def _descriptor(name: str, sha256: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "digest": {"sha256": sha256}, **{key: value for key, value in fields.items() if value}}


def _trained_on(profile: PgoProfileRef | None) -> dict[str, Any]:
    """``{"trainedOn": ...}``: what a PGO profile was trained on (its record inside the pinned tar), if known."""
    if profile is None or profile.trained_on is None:
        return {}
    trained = profile.trained_on
    return {
        "trainedOn": {
            "version": str(trained.version),
            "series": trained.series,
            "source": {"name": trained.source.name, "sha256": trained.source.sha256},
            "profile": trained.profile,
            "configure": list(trained.configure),
            "environment": trained.environment,
            "rootfsSha256": trained.rootfs_sha256,
        }
    }


def build_provenance(verdict: RebuildVerdict, record: RebuildRecord, *, source_verdict_sha256: str) -> dict[str, Any]:
    """The SLSA Provenance v1 predicate for the rebuild ``verdict`` was made from (plain JSON data)."""
    source, build, recipe = verdict.source, verdict.build, verdict.recipe
    signers = [
        {
            key: value
            for key, value in (
                ("kind", s.kind),
                ("signer", s.signer),
                ("signerName", s.signer_name),
                ("signedAt", s.signed_at),
            )
            if value
        }
        for s in source.signatures
        if s.status == "verified"
    ]
    tarball_annotations: dict[str, Any] = {"verifiedBy": signers, "sourceVerdictSha256": source.verdict_sha256}
    if source.tarball.origin:
        tarball_annotations["fetchedFrom"] = source.tarball.origin
    dependencies = [
        _descriptor(
            source.tarball.name,
            source.tarball.sha256,
            uri=release_url(verdict.version, source.tarball.name),
            annotations=tarball_annotations,
        ),
        _descriptor(f"recipes/cpython-{recipe.series}.toml", recipe.sha256),
    ]
    environment = build.environment
    if environment.lock_sha256:
        dependencies.append(_descriptor(f"recipes/environments/{environment.name}.lock", environment.lock_sha256))
    if environment.rootfs_sha256:
        dependencies.append(
            _descriptor(
                f"rootfs/{environment.name}.tar",
                environment.rootfs_sha256,
                annotations={"environment": environment.name},
            )
        )
    profile = record.pgo_profile
    if record.inputs.pgo_profile_sha256:
        dependencies.append(
            _descriptor("pgo-profile.tar", record.inputs.pgo_profile_sha256, annotations=_trained_on(profile))
        )
    metadata = {
        key: value
        for key, value in (
            # SLSA's "this particular build invocation": the planned job, as the verdict signs it.
            ("invocationId", verdict.rebuilder.job),
            ("startedOn", record.started_at),
            ("finishedOn", record.finished_at),
        )
        if value
    }
    run_details: dict[str, Any] = {
        "builder": {"id": verdict.rebuilder.id, "version": {"cpython-verify": __version__}},
        "byproducts": [
            _descriptor(MANIFEST_BYPRODUCT, verdict.result.manifest_sha256),
            _descriptor(RECORD_BYPRODUCT, build.rebuild_sha256),
            _descriptor(SOURCE_VERDICT_BYPRODUCT, source_verdict_sha256),
        ],
    }
    if profile is not None and profile.origin == "trained in this build":
        # A profile this build trained is an output other rebuilders can pin and reuse.
        run_details["byproducts"].append(
            _descriptor(profile.file or "pgo-profile.tar", profile.sha256, annotations=_trained_on(profile))
        )
    if metadata:
        run_details["metadata"] = metadata
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "version": verdict.version,
                "profile": recipe.profile,
                "variations": list(build.variations),
            },
            "internalParameters": {
                "runner": build.runner,
                "environment": environment.name,
                "configure": list(recipe.configure),
                "settings": dict(build.settings),
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": run_details,
    }


# --------------------------------------------------------------------------- reading one back


@dataclass(config=_STRICT)
class ResourceDescriptor:
    """in-toto ResourceDescriptor v1 (the fields SLSA provenance uses)."""

    name: Line | None = None
    uri: Uri | None = None
    digest: dict[Line, Line] = Field(default_factory=dict)
    downloadLocation: Line | None = None
    mediaType: Line | None = None
    annotations: dict[Line, Any] | None = None

    @model_validator(mode="after")
    def _digest_is_hex(self) -> ResourceDescriptor:
        """A sha256 is compared with files' digests: it must be one, as the tool writes it."""
        sha256 = self.digest.get("sha256")
        if sha256 is not None and not names.matches(names.SHA256_PATTERN, sha256):
            raise ValueError(f"digest.sha256 of {self.name or self.uri!r} is not 64 lower-case hex digits")
        return self

    def sha256(self) -> str | None:
        """The descriptor's sha256, if it has one."""
        return self.digest.get("sha256")


@dataclass(config=_STRICT)
class ExternalParameters:
    """What a user chose: the release, the recipe profile and the second build's variations."""

    version: ReleaseVersion
    profile: Profile
    variations: tuple[VariationName, ...]


@dataclass(config=_STRICT)
class InternalParameters:
    """How the build ran, as :func:`build_provenance` writes it."""

    runner: Runner
    environment: EnvironmentName
    configure: tuple[Line, ...]
    settings: dict[SettingName, Scalar]


@dataclass(config=_STRICT)
class BuildDefinition:
    """SLSA ``buildDefinition`` for this project's build type."""

    buildType: Literal["https://github.com/cpython-verify/cpython-verify/rebuild/v1"]
    externalParameters: ExternalParameters
    internalParameters: InternalParameters
    resolvedDependencies: tuple[ResourceDescriptor, ...]


@dataclass(config=_STRICT)
class Builder:
    """SLSA ``runDetails.builder``."""

    id: Uri
    version: dict[Line, Line] = Field(default_factory=dict)
    builderDependencies: tuple[ResourceDescriptor, ...] = ()


@dataclass(config=_STRICT)
class BuildMetadata:
    """SLSA ``runDetails.metadata``."""

    invocationId: Line | None = None
    startedOn: Timestamp | None = None
    finishedOn: Timestamp | None = None


@dataclass(config=_STRICT)
class RunDetails:
    """SLSA ``runDetails``."""

    builder: Builder
    metadata: BuildMetadata | None = None
    byproducts: tuple[ResourceDescriptor, ...] = ()


@dataclass(config=_STRICT)
class Provenance:
    """A SLSA Provenance v1 predicate with this project's build type."""

    buildDefinition: BuildDefinition
    runDetails: RunDetails

    @model_validator(mode="after")
    def _tarball_is_a_file_name(self) -> Provenance:
        """``verify-attestation --artifact`` matches the source tarball by file name: it must be one."""
        tarball = self.source_tarball()
        if (
            tarball is not None
            and tarball.name is not None
            and not names.matches(names.FILE_NAME_PATTERN, tarball.name)
        ):
            raise ValueError(f"the source tarball's name {tarball.name[:80]!r} is not a plain file name")
        return self

    def byproduct_sha256(self, name: str) -> str | None:
        """The sha256 of the byproduct called ``name`` (``manifest.json``, ``rebuild.json``)."""
        return next((item.sha256() for item in self.runDetails.byproducts if item.name == name), None)

    def source_tarball(self) -> ResourceDescriptor | None:
        """The verified release tarball: the resolved dependency annotated with who verified it."""
        return next(
            (
                item
                for item in self.buildDefinition.resolvedDependencies
                if item.annotations is not None and "verifiedBy" in item.annotations
            ),
            None,
        )

    @property
    def version(self) -> str:
        """The CPython release rebuilt."""
        return self.buildDefinition.externalParameters.version

    @property
    def profile(self) -> str:
        """The recipe profile built."""
        return self.buildDefinition.externalParameters.profile


_ADAPTER: Final = TypeAdapter(Provenance)


def parse_provenance(predicate: Any) -> Provenance:
    """Validate a signed SLSA provenance predicate of this project's build type.

    Another build type is :class:`AttestationError` (exit 2: not ours to judge); ours breaking the
    model is :class:`AttestationRejected` (exit 1: a signed document that lies or a broken producer).
    """
    definition = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    build_type = definition.get("buildType") if isinstance(definition, dict) else None
    if build_type != BUILD_TYPE:
        raise AttestationError(
            f"not a cpython-verify rebuild attestation: a SLSA provenance with buildType {build_type!r}, "
            f"not {BUILD_TYPE}"
        )
    try:
        provenance = _ADAPTER.validate_json(json.dumps(predicate))
    except ValidationError as error:
        raise AttestationRejected(
            f"provenance does not match {PROVENANCE_TYPE} with buildType {BUILD_TYPE}: "
            f"{validation_summary(error, top='predicate')} "
            f"({error.error_count()} problem(s))"
        ) from None
    for name in (MANIFEST_BYPRODUCT, RECORD_BYPRODUCT):
        digest = provenance.byproduct_sha256(name)
        if digest is None or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise AttestationRejected(f"provenance has no sha256 of its {name} byproduct")
    return provenance
