"""Which release signatures must be checked, and what a set of signature checks adds up to.

Modelled on sigstore-python's verification policies: small frozen objects with one ``verify()``
that raises. Two rules carry the weight:

* every kind the series publishes for the version (plus ``--require``) must be present and verify,
  unless the user knowingly relaxed it with ``--allow-missing``;
* like an empty ``AllOf``, a set of checks in which nothing verified fails: relaxing every kind
  must never turn "no evidence" into "verified".

A signature file that is present is always checked, even if it was allowed to be missing or not
required at all: a bad signature where a good one was expected is a finding, not noise.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from verify.common.errors import OperationalError, SignatureError
from verify.source.models import CheckStatus, SignatureEvidence, SignatureKind
from verify.source.recipes import Recipe
from verify.source.releases import Version


class SignaturePolicyError(OperationalError):
    """The signature options contradict each other (e.g. the same kind both required and allowed missing)."""


class Action(StrEnum):
    """What to do about one signature kind for one release."""

    CHECK = "check"
    """The file is there (or must be fetched and checked): run the verifier."""
    MISSING = "missing"
    """Required but absent: a failure."""
    NOT_REQUIRED = "not-required"
    """Absent, and the user allowed it to be missing."""
    NO_SIGNER = "no-signer"
    """Required (by ``--require``) but the recipe names no signer for it, e.g. OpenPGP from 3.14 (PEP 761)."""


@dataclass(frozen=True, slots=True)
class SignatureDecision:
    """The decision for one kind; for anything but CHECK, the evidence it stands for."""

    kind: SignatureKind
    action: Action
    detail: str

    def evidence(self) -> SignatureEvidence | None:
        """The evidence this decision is on its own (None for CHECK: the verifier provides it)."""
        status = {
            Action.MISSING: CheckStatus.MISSING,
            Action.NOT_REQUIRED: CheckStatus.NOT_REQUIRED,
            Action.NO_SIGNER: CheckStatus.FAILED,
        }.get(self.action)
        if status is None:
            return None
        return SignatureEvidence(kind=self.kind, status=status, detail=self.detail)


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """The signature requirements for one release of one series."""

    series: str
    version: str
    published: frozenset[SignatureKind]
    """Kinds python.org publishes for this version (from the recipe)."""
    signers: frozenset[SignatureKind]
    """Kinds the recipe names a signer for (a kind without one can never verify)."""
    require: frozenset[SignatureKind] = frozenset()
    """``--require KIND``: required even where the series does not publish it."""
    allow_missing: frozenset[SignatureKind] = frozenset()
    """``--allow-missing KIND``: a required kind the user knowingly lets be absent."""

    def __post_init__(self) -> None:
        both = self.require & self.allow_missing
        if both:
            names = ", ".join(sorted(both))
            raise SignaturePolicyError(f"--require and --allow-missing both name {names}")

    @classmethod
    def for_release(
        cls,
        recipe: Recipe,
        version: Version,
        *,
        require: Iterable[SignatureKind | str] = (),
        allow_missing: Iterable[SignatureKind | str] = (),
    ) -> SignaturePolicy:
        """The policy for ``version`` of ``recipe``'s series, with the user's ``--require``/``--allow-missing``."""
        signers = frozenset(
            kind
            for kind, signer in ((SignatureKind.OPENPGP, recipe.openpgp), (SignatureKind.SIGSTORE, recipe.sigstore))
            if signer is not None
        )
        return cls(
            series=recipe.series,
            version=str(version),
            published=frozenset(SignatureKind(kind) for kind in recipe.published_signatures(version)),
            signers=signers,
            require=frozenset(_kinds(require)),
            allow_missing=frozenset(_kinds(allow_missing)),
        )

    @property
    def required(self) -> tuple[SignatureKind, ...]:
        """Kinds that must be present and verify, in a stable order."""
        wanted = self.published | self.require
        return tuple(kind for kind in SignatureKind if kind in wanted)

    def decide(self, found: Collection[SignatureKind]) -> tuple[SignatureDecision, ...]:
        """For each relevant kind, given which signature files were ``found``: check, missing, or not required."""
        decisions = []
        for kind in SignatureKind:
            required = kind in self.required
            if kind not in found and not required:
                continue
            if kind not in self.signers:
                if required:
                    decisions.append(
                        SignatureDecision(kind, Action.NO_SIGNER, f"CPython {self.series} has no {kind} signer")
                    )
                # A stray file of a kind nobody signs for this series cannot be judged: skip it.
                continue
            if kind in found:
                decisions.append(SignatureDecision(kind, Action.CHECK, f"{kind} signature found"))
            elif kind in self.allow_missing:
                decisions.append(
                    SignatureDecision(
                        kind, Action.NOT_REQUIRED, f"{kind} signature not found; allowed (--allow-missing {kind})"
                    )
                )
            else:
                decisions.append(
                    SignatureDecision(
                        kind,
                        Action.MISSING,
                        f"{kind} signature not found, and CPython {self.version} requires it: put the tarball's "
                        f"{kind.file_suffix} file beside it in a --from DIR, or verify without it: "
                        f"--allow-missing {kind}",
                    )
                )
        return tuple(decisions)

    def verify(self, evidence: Sequence[SignatureEvidence]) -> None:
        """Raise :class:`SignatureError` unless the evidence satisfies this policy.

        Every required kind needs evidence that is VERIFIED (or NOT_REQUIRED when allowed missing);
        every evidence given must be VERIFIED or NOT_REQUIRED; and at least one must be VERIFIED.
        """
        for item in evidence:
            if item.status in (CheckStatus.FAILED, CheckStatus.MISSING):
                raise SignatureError(f"{item.kind}: {item.detail}")
            if item.status is CheckStatus.NOT_REQUIRED and item.kind not in self.allow_missing:
                raise SignatureError(f"{item.kind}: was not checked, and it was not allowed to be missing")
        seen = {item.kind for item in evidence}
        for kind in self.required:
            if kind not in seen:
                raise SignatureError(f"{kind}: required for CPython {self.version}, but not checked")
        if not any(item.status is CheckStatus.VERIFIED for item in evidence):
            raise SignatureError(f"no signature verified for CPython {self.version}: at least one must")


def decide_signatures(
    recipe: Recipe,
    version: Version,
    found: Collection[SignatureKind],
    *,
    require: Iterable[SignatureKind | str] = (),
    allow_missing: Iterable[SignatureKind | str] = (),
) -> tuple[SignatureDecision, ...]:
    """Shorthand for ``SignaturePolicy.for_release(...).decide(found)``."""
    policy = SignaturePolicy.for_release(recipe, version, require=require, allow_missing=allow_missing)
    return policy.decide(found)


def _kinds(values: Iterable[SignatureKind | str]) -> Iterable[SignatureKind]:
    for value in values:
        try:
            yield SignatureKind(value)
        except ValueError:
            known = ", ".join(SignatureKind)
            raise SignaturePolicyError(f"unknown signature kind {value!r}; known: {known}") from None
