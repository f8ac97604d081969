"""``attest --json`` (``cpython-verify/attest/v1``) and ``verify-attestation --json``
(``cpython-verify/verify-attestation/v1``), each one frozen, strict pydantic model.

:mod:`verify.report.attest` writes both through these models, and their schemas in ``verify/schemas/`` are
generated from them. Nothing in cpython-verify reads them back; the tests read every report they produce
back through its model. Built from the stage's values without validating them again: a report is written
after the work is done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import Field, model_validator

from verify.attest.predicate import PREDICATE_TYPE, parse_predicate, predicate_to_json
from verify.attest.provenance import PROVENANCE_TYPE, parse_provenance
from verify.common.errors import VerifyError
from verify.common.strict import Count, OneOf, StrictModel, table_error
from verify.compare.model import CHANGES
from verify.source.name_fields import ReleaseVersionText, Sha256

if TYPE_CHECKING:
    from pathlib import Path

    from verify.attest.signing import SignedAttestation
    from verify.attest.verification import AnyVerified, CompanionCheck, SubjectCheck, TreeCheck

ATTEST_FORMAT: Final = "cpython-verify/attest/v1"
VERIFY_ATTESTATION_FORMAT: Final = "cpython-verify/verify-attestation/v1"


class Subject(StrictModel):
    """A file the attestation vouches for, by name and digest."""

    name: str
    sha256: Sha256


class AttestDocument(StrictModel):
    """``attest --json``: the files written, the verdict signed and its subjects."""

    format: Literal["cpython-verify/attest/v1"]
    attestation: str
    provenance: str
    verdict: str
    version: ReleaseVersionText
    profile: str
    subjects: tuple[Subject, ...] = Field(strict=False)
    new_public_key: str | None
    """The public key of a signing key made for this run (None with the user's key or Sigstore)."""

    @classmethod
    def of(cls, signed: SignedAttestation, new_public_key: Path | None) -> AttestDocument:
        """The report of ``signed``."""
        predicate = signed.content.predicate
        return cls.model_construct(
            format=ATTEST_FORMAT,
            attestation=str(signed.path),
            provenance=str(signed.provenance_path),
            verdict=predicate.verdict,
            version=predicate.version,
            profile=predicate.recipe.profile,
            subjects=tuple(Subject.model_construct(name=s.name, sha256=s.sha256) for s in signed.content.subjects),
            new_public_key=str(new_public_key) if new_public_key is not None else None,
        )


class CheckedFile(StrictModel):
    """A local file compared with the subject (or the input) of the same name."""

    name: str
    path: str
    ok: bool
    input: bool
    """The source tarball: compared with the attested input digest, not a subject."""


class TreeFinding(StrictModel):
    """A path of the result's install tree that is not as the attested manifest records it."""

    path: str
    changes: tuple[Annotated[str, OneOf(CHANGES, "a change")], ...] = Field(strict=False)
    detail: str


class TreeDocument(StrictModel):
    """The result's ``root/`` compared, path by path, with the attested manifest."""

    root: str
    ok: bool
    attested_paths: Count
    problems: tuple[str, ...] = Field(strict=False)
    findings: tuple[TreeFinding, ...] = Field(strict=False)


class CompanionDocument(StrictModel):
    """The other file ``attest`` wrote beside the one given, judged too."""

    what: Literal["provenance", "verdict"]
    path: str
    found: bool
    ok: bool
    problems: tuple[str, ...] = Field(strict=False)


class VerificationDocument(StrictModel):
    """``verify-attestation --json``: who signed, the predicate, and every check made."""

    format: Literal["cpython-verify/verify-attestation/v1"]
    predicate_type: Literal[
        "https://github.com/cpython-verify/cpython-verify/attestation/rebuild-verdict/v1",
        "https://slsa.dev/provenance/v1",
    ]
    signer: str
    subjects: tuple[Subject, ...] = Field(strict=False)
    checked: tuple[CheckedFile, ...] = Field(strict=False)
    tree: TreeDocument | None
    predicate: dict[str, Any]
    """The rebuild verdict (``rebuild-verdict-v1.json``) or the SLSA provenance predicate, as ``predicate_type``
    says; read back, it is validated by that predicate's own model."""
    companion: CompanionDocument

    @model_validator(mode="after")
    def _predicate_is_of_its_type(self) -> VerificationDocument:
        try:
            if self.predicate_type == PREDICATE_TYPE:
                parse_predicate(json.dumps(self.predicate).encode())
            else:
                parse_provenance(self.predicate)
        except VerifyError as error:
            raise table_error(f"'predicate': {error.message}") from None
        return self

    @classmethod
    def of(
        cls, verified: AnyVerified, checks: Sequence[SubjectCheck], tree: TreeCheck | None, companion: CompanionCheck
    ) -> VerificationDocument:
        """The report of one verified attestation and the checks made against local files."""
        from verify.attest.verification import VerifiedAttestation

        if isinstance(verified, VerifiedAttestation):
            predicate_type, predicate = PREDICATE_TYPE, predicate_to_json(verified.predicate)
        else:
            predicate_type, predicate = PROVENANCE_TYPE, asdict(verified.provenance)
        return cls.model_construct(
            format=VERIFY_ATTESTATION_FORMAT,
            predicate_type=predicate_type,
            signer=verified.signer,
            subjects=tuple(Subject.model_construct(name=s.name, sha256=s.sha256) for s in verified.subjects),
            checked=tuple(
                CheckedFile.model_construct(name=c.name, path=str(c.path), ok=c.ok, input=c.is_input) for c in checks
            ),
            tree=None
            if tree is None
            else TreeDocument.model_construct(
                root=str(tree.root),
                ok=tree.ok,
                attested_paths=tree.attested_paths,
                problems=tree.problems,
                findings=tuple(
                    TreeFinding.model_construct(path=f.path, changes=f.changes, detail=f.detail) for f in tree.findings
                ),
            ),
            predicate=predicate,
            companion=CompanionDocument.model_construct(
                what=companion.what,
                path=str(companion.path),
                found=companion.found,
                ok=companion.ok,
                problems=companion.problems,
            ),
        )
