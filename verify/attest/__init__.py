"""Signed in-toto attestations of CPython rebuilds, and the k-of-n comparison of independent ones.

In: a rebuild's result directory (record, manifest, the source verdict it rests on) and a signer.
Out: signed in-toto Statements (the rebuild verdict and a SLSA provenance); verified attestations
when reading others'.
Next: :mod:`verify.site` (the feed, status page and site are built from attestations).

``inputs`` reads a rebuild result into subjects, a verdict and a SLSA provenance (``provenance``);
``signing`` builds the two Statements and signs them (offline key as a DSSE envelope, or Sigstore
keyless), and attests the result ``check`` published (``attest_published``); ``verification`` checks signature,
Statement, predicate schema and subject digests; ``peers`` compares independent rebuilders.
"""

from verify.attest.errors import AttestationError, AttestationRejected
from verify.attest.inputs import AttestationContent, AttestedSubject, RebuildInputs, build_content
from verify.attest.peers import Claim, PeersVerdict, compare_manifests, decide, load_claims, our_claim
from verify.attest.predicate import PREDICATE_TYPE, RebuildVerdict, parse_predicate, predicate_json_schema
from verify.attest.provenance import PROVENANCE_TYPE, Provenance, parse_provenance
from verify.attest.signing import (
    SigstoreSigning,
    build_statement,
    generate_private_key,
    load_private_key,
    load_public_key,
    sign_offline,
)
from verify.attest.verification import (
    TrustedIdentities,
    TrustedKeys,
    TrustPolicy,
    VerifiedAttestation,
    VerifiedProvenance,
    check_subjects,
    verify_attestation_file,
)

__all__ = [
    "PREDICATE_TYPE",
    "PROVENANCE_TYPE",
    "AttestationContent",
    "AttestationError",
    "AttestationRejected",
    "AttestedSubject",
    "Claim",
    "PeersVerdict",
    "Provenance",
    "RebuildInputs",
    "RebuildVerdict",
    "SigstoreSigning",
    "TrustPolicy",
    "TrustedIdentities",
    "TrustedKeys",
    "VerifiedAttestation",
    "VerifiedProvenance",
    "build_content",
    "build_statement",
    "check_subjects",
    "compare_manifests",
    "decide",
    "generate_private_key",
    "load_claims",
    "load_private_key",
    "load_public_key",
    "our_claim",
    "parse_predicate",
    "parse_provenance",
    "predicate_json_schema",
    "sign_offline",
    "verify_attestation_file",
]
