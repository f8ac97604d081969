"""Click options that say whose attestations to trust (``verify-attestation``, ``peers``, ``merge``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from verify.attest import TrustedIdentities, TrustedKeys, TrustPolicy, load_public_key
from verify.commands.aliases import renamed
from verify.commands.options import F


def trust_options(function: F) -> F:
    """--public-key (repeatable) for offline keys, or --identity/--issuer pairs for Sigstore.

    The verifying key is ``--public-key`` in every command; the private key that signs is ``--signing-key``
    (``attest``, ``check``). The old ``--key`` stays one release as a hidden, warned alias.
    """
    function = click.option(
        "--issuer", "issuers", multiple=True, help="OIDC issuer for the --identity at the same position."
    )(function)
    function = click.option(
        "--identity", "identities", multiple=True, help="Trusted Sigstore identity (repeatable; pair with --issuer)."
    )(function)
    key_type = click.Path(dir_okay=False, path_type=Path)
    function = renamed("--key", "--public-key", "keys", multiple=True, type=key_type)(function)
    function = click.option(
        "--public-key",
        "keys",
        multiple=True,
        type=key_type,
        help="Trust signatures by this PEM public key (e.g. the KEY.pub beside a --signing-key; repeatable).",
    )(function)
    return function


def build_trust(keys: Sequence[Path], identities: Sequence[str], issuers: Sequence[str]) -> TrustPolicy:
    """The trust policy the options describe; exactly one kind."""
    if keys and identities:
        raise click.UsageError("trust either --public-key or --identity/--issuer, not both")
    if keys:
        return TrustedKeys(tuple(load_public_key(path) for path in keys))
    if not identities:
        raise click.UsageError("say whom to trust: --public-key PUB, or --identity ID --issuer URL")
    if len(identities) != len(issuers):
        raise click.UsageError("give one --issuer for each --identity")
    return TrustedIdentities(tuple(zip(identities, issuers, strict=True)))
