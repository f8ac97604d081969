"""What ``attest`` and ``verify-attestation`` report, as text or JSON (``cpython-verify/attest/v1``,
``cpython-verify/verify-attestation/v1``; their schemas are in ``verify/schemas/``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from verify.attest.inputs import describe_subjects
from verify.attest.signing import SignedAttestation
from verify.attest.verification import (
    AnyVerified,
    CompanionCheck,
    SubjectCheck,
    TreeCheck,
    VerifiedAttestation,
)

ATTEST_FORMAT: Final = "cpython-verify/attest/v1"


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
    """The same summary as a JSON object."""
    predicate = signed.content.predicate
    return {
        "format": ATTEST_FORMAT,
        "attestation": str(signed.path),
        "provenance": str(signed.provenance_path),
        "verdict": predicate.verdict,
        "version": predicate.version,
        "profile": predicate.recipe.profile,
        "subjects": [{"name": subject.name, "sha256": subject.sha256} for subject in signed.content.subjects],
        "new_public_key": str(new_public_key) if new_public_key is not None else None,
    }


VERIFY_ATTESTATION_FORMAT: Final = "cpython-verify/verify-attestation/v1"


def verification_to_json(
    verified: AnyVerified, checks: Sequence[SubjectCheck], tree: TreeCheck | None, companion: CompanionCheck
) -> dict[str, Any]:
    """What ``verify-attestation --json`` prints: who signed, the predicate, and every check made."""
    from dataclasses import asdict

    from verify.attest.predicate import PREDICATE_TYPE, predicate_to_json
    from verify.attest.provenance import PROVENANCE_TYPE

    if isinstance(verified, VerifiedAttestation):
        predicate_type, predicate_json = PREDICATE_TYPE, predicate_to_json(verified.predicate)
    else:
        predicate_type, predicate_json = PROVENANCE_TYPE, asdict(verified.provenance)
    return {
        "format": VERIFY_ATTESTATION_FORMAT,
        "predicate_type": predicate_type,
        "signer": verified.signer,
        "subjects": [{"name": s.name, "sha256": s.sha256} for s in verified.subjects],
        "checked": [{"name": c.name, "path": str(c.path), "ok": c.ok, "input": c.is_input} for c in checks],
        "tree": None
        if tree is None
        else {
            "root": str(tree.root),
            "ok": tree.ok,
            "attested_paths": tree.attested_paths,
            "problems": list(tree.problems),
            "findings": [{"path": f.path, "changes": list(f.changes), "detail": f.detail} for f in tree.findings],
        },
        "predicate": predicate_json,
        "companion": {
            "what": companion.what,
            "path": str(companion.path),
            "found": companion.found,
            "ok": companion.ok,
            "problems": list(companion.problems),
        },
    }
