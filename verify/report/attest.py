"""What ``attest`` and ``verify-attestation`` report, as text or JSON (``cpython-verify/attest/v1``,
``cpython-verify/verify-attestation/v1``; their schemas are in ``verify/schemas/``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verify.attest.inputs import describe_subjects
from verify.attest.signing import SignedAttestation
from verify.attest.verification import (
    AnyVerified,
    CompanionCheck,
    SubjectCheck,
    TreeCheck,
)


def attest_text(signed: SignedAttestation, new_public_key: Path | None) -> list[str]:
    """The human summary: the files written, the verdict signed, its subjects, and a key made for it."""
    predicate = signed.content.predicate
    lines = [
        f"attestation: {signed.path}",
        f"provenance: {signed.provenance_path}",
        f"predicate: {predicate.verdict} (CPython {predicate.version}, profile {predicate.recipe.profile})",
        *(f"  subject {line}" for line in describe_subjects(signed.content.subjects)),
    ]
    if new_public_key is not None:
        lines.append(f"new signing key created; verifiers use its public key: --public-key {new_public_key}")
    return lines


def attest_to_json(signed: SignedAttestation, new_public_key: Path | None) -> dict[str, Any]:
    """The same summary as a JSON object (:class:`verify.report.attest_document.AttestDocument`)."""
    from verify.report.attest_document import AttestDocument

    return AttestDocument.of(signed, new_public_key).to_json()


def verification_to_json(
    verified: AnyVerified, checks: Sequence[SubjectCheck], tree: TreeCheck | None, companion: CompanionCheck
) -> dict[str, Any]:
    """What ``verify-attestation --json`` prints: who signed, the predicate, and every check made
    (:class:`verify.report.attest_document.VerificationDocument`)."""
    from verify.report.attest_document import VerificationDocument

    return VerificationDocument.of(verified, checks, tree, companion).to_json()
