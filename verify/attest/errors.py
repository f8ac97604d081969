"""The attestation stage's errors: one for "cannot judge", one for "the evidence says no"."""

from __future__ import annotations

from verify.common.errors import OperationalError, VerificationFailed


class AttestationError(OperationalError):
    """An attestation or its inputs cannot be read or judged: missing, oversized, not JSON, an unknown
    predicate version, a key that is not a supported public key (exit 2)."""


class AttestationRejected(VerificationFailed):
    """The attestation is readable and says no, or lies: a bad signature, an untrusted signer, a subject
    digest that does not match the local file, a predicate that breaks the schema (exit 1)."""
