"""The signature policy over the real recipes: what is required, what may be missing, and that
zero verified signatures never passes."""

from __future__ import annotations

import pytest

from verify.common.errors import SignatureError
from verify.source.models import CheckStatus, SignatureEvidence, SignatureKind
from verify.source.recipes import load_recipe
from verify.source.releases import Version
from verify.source.signatures.policy import (
    Action,
    SignatureDecision,
    SignaturePolicy,
    SignaturePolicyError,
    decide_signatures,
)

PGP, SIG = SignatureKind.OPENPGP, SignatureKind.SIGSTORE


def _policy(version: str, **options: object) -> SignaturePolicy:
    parsed = Version.parse(version)
    return SignaturePolicy.for_release(load_recipe(parsed.series), parsed, **options)  # type: ignore[arg-type]


def _actions(decisions: tuple[SignatureDecision, ...]) -> dict[SignatureKind, Action]:
    return {decision.kind: decision.action for decision in decisions}


def _ev(kind: SignatureKind, status: CheckStatus) -> SignatureEvidence:
    return SignatureEvidence(kind=kind, status=status, detail=f"{kind} {status}")


@pytest.mark.parametrize(
    ("version", "required"),
    [
        ("3.13.5", (PGP, SIG)),
        ("3.11.2", (PGP, SIG)),
        ("3.10.6", (PGP,)),  # before the series' first Sigstore bundle (3.10.7)
        ("3.10.7", (PGP, SIG)),
        ("3.14.0", (SIG,)),  # PEP 761: no OpenPGP from 3.14
    ],
)
def test_required_kinds_follow_the_recipe(version: str, required: tuple[SignatureKind, ...]) -> None:
    assert _policy(version).required == required


def test_all_found_means_check_all() -> None:
    decisions = _policy("3.13.5").decide({PGP, SIG})
    assert _actions(decisions) == {PGP: Action.CHECK, SIG: Action.CHECK}
    assert all(decision.evidence() is None for decision in decisions)


def test_missing_required_is_a_failure_unless_allowed() -> None:
    decisions = _policy("3.13.5").decide({SIG})
    assert _actions(decisions) == {PGP: Action.MISSING, SIG: Action.CHECK}
    missing = decisions[0].evidence()
    assert missing is not None and missing.status is CheckStatus.MISSING
    assert missing.detail == (
        "openpgp signature not found, and CPython 3.13.5 requires it: put the tarball's .asc file beside it in a "
        "--from DIR, or verify without it: --allow-missing openpgp"
    )

    relaxed = _policy("3.13.5", allow_missing=["openpgp"]).decide({SIG})
    assert _actions(relaxed) == {PGP: Action.NOT_REQUIRED, SIG: Action.CHECK}
    evidence = relaxed[0].evidence()
    assert evidence is not None and evidence.status is CheckStatus.NOT_REQUIRED
    assert "--allow-missing openpgp" in evidence.detail


def test_allowed_missing_but_present_is_still_checked() -> None:
    assert _actions(_policy("3.13.5", allow_missing=[PGP]).decide({PGP, SIG})) == {PGP: Action.CHECK, SIG: Action.CHECK}


def test_require_adds_a_kind_the_series_does_not_publish() -> None:
    # 3.10.6 has no Sigstore bundle: --require sigstore makes its absence a failure.
    assert _actions(_policy("3.10.6").decide({PGP})) == {PGP: Action.CHECK}
    assert _actions(_policy("3.10.6", require=[SIG]).decide({PGP})) == {PGP: Action.CHECK, SIG: Action.MISSING}


def test_require_a_kind_with_no_signer_fails() -> None:
    decisions = _policy("3.14.0", require=["openpgp"]).decide({SIG})
    assert _actions(decisions) == {PGP: Action.NO_SIGNER, SIG: Action.CHECK}
    evidence = decisions[0].evidence()
    assert evidence is not None and evidence.status is CheckStatus.FAILED
    assert evidence.detail == "CPython 3.14 has no openpgp signer"


def test_found_but_not_published_is_checked_or_skipped() -> None:
    # A bundle for a release before `since` is still evidence worth checking...
    assert _actions(_policy("3.10.6").decide({PGP, SIG})) == {PGP: Action.CHECK, SIG: Action.CHECK}
    # ...but a stray .asc for 3.14 has no signer to check it against.
    assert _actions(_policy("3.14.0").decide({PGP, SIG})) == {SIG: Action.CHECK}


def test_nothing_found_and_everything_allowed_missing() -> None:
    policy = _policy("3.13.5", allow_missing=[PGP, SIG])
    decisions = policy.decide(set())
    assert _actions(decisions) == {PGP: Action.NOT_REQUIRED, SIG: Action.NOT_REQUIRED}
    evidence = [decision.evidence() for decision in decisions]
    assert all(item is not None for item in evidence)
    # Like an empty AllOf: relaxing everything must not make "no evidence" pass.
    with pytest.raises(SignatureError, match=r"no signature verified for CPython 3\.13\.5: at least one must"):
        policy.verify([item for item in evidence if item is not None])
    with pytest.raises(SignatureError, match="no signature verified"):
        _policy("3.14.0", allow_missing=[SIG]).verify([_ev(SIG, CheckStatus.NOT_REQUIRED)])
    with pytest.raises(SignatureError, match=r"required for CPython 3\.14\.0, but not checked"):
        _policy("3.14.0", allow_missing=[SIG]).verify([])


def test_verify_accepts_only_complete_verified_evidence() -> None:
    policy = _policy("3.13.5")
    policy.verify([_ev(PGP, CheckStatus.VERIFIED), _ev(SIG, CheckStatus.VERIFIED)])
    with pytest.raises(SignatureError, match=r"sigstore: required for CPython 3\.13\.5, but not checked"):
        policy.verify([_ev(PGP, CheckStatus.VERIFIED)])
    with pytest.raises(SignatureError, match=r"^sigstore: sigstore failed$"):
        policy.verify([_ev(PGP, CheckStatus.VERIFIED), _ev(SIG, CheckStatus.FAILED)])
    with pytest.raises(SignatureError, match="openpgp: openpgp missing"):
        policy.verify([_ev(PGP, CheckStatus.MISSING), _ev(SIG, CheckStatus.VERIFIED)])
    # NOT_REQUIRED counts only where the user allowed it.
    with pytest.raises(SignatureError, match="not allowed to be missing"):
        policy.verify([_ev(PGP, CheckStatus.NOT_REQUIRED), _ev(SIG, CheckStatus.VERIFIED)])
    _policy("3.13.5", allow_missing=[PGP]).verify([_ev(PGP, CheckStatus.NOT_REQUIRED), _ev(SIG, CheckStatus.VERIFIED)])


def test_every_action_is_reachable() -> None:
    seen = set()
    for version, options, found in (
        ("3.13.5", {}, {PGP}),
        ("3.13.5", {"allow_missing": [SIG]}, {PGP}),
        ("3.14.0", {"require": [PGP]}, {SIG}),
    ):
        seen |= set(_actions(_policy(version, **options).decide(found)).values())
    assert seen == set(Action)


def test_contradictory_or_unknown_options() -> None:
    with pytest.raises(SignaturePolicyError, match="--require and --allow-missing both name openpgp"):
        _policy("3.13.5", require=[PGP], allow_missing=["openpgp"])
    with pytest.raises(SignaturePolicyError, match="unknown signature kind 'minisign'"):
        _policy("3.13.5", require=["minisign"])


def test_decide_signatures_shorthand() -> None:
    recipe = load_recipe("3.13")
    decisions = decide_signatures(recipe, Version.parse("3.13.5"), {PGP}, allow_missing=[SIG])
    assert _actions(decisions) == {PGP: Action.CHECK, SIG: Action.NOT_REQUIRED}
