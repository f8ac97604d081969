"""Which variations a second build of a profile applies (``--twice``), by the recipe's own rules.

Comparing the two builds is the compare stage's work (:mod:`verify.compare.twice`); :mod:`verify.chain`
runs the builds and hands them over, so the rebuild stage never imports the compare stage.
"""

from __future__ import annotations

from verify.common.errors import OperationalError
from verify.rebuild.settings import canonical_variations
from verify.source.recipes import BuildSpec


def choose_variations(
    spec: BuildSpec, variations: frozenset[str], profile: str | None
) -> tuple[frozenset[str], dict[str, str]]:
    """The variations a second build of ``profile`` applies, and the skipped ones with the recipe's reason.

    A variation the profile declares inapplicable (its documented effect there is a real code change)
    is skipped, never "explained". Raises :class:`OperationalError` when every requested variation is
    skipped: a second build that varies nothing was not what was asked for.
    """
    canonical = canonical_variations(variations)
    declared = spec.profiles[profile].inapplicable if profile is not None and profile in spec.profiles else {}
    reasons = {name: declared[name].why for name in sorted(canonical) if name in declared}
    applied = frozenset(name for name in canonical if name not in declared)
    if variations and not applied:
        named = "; ".join(f"{name}: {why}" for name, why in reasons.items())
        raise OperationalError(f"no requested variation applies to profile {profile}: {named}")
    return applied, reasons
