"""The ordered registry of comparators: the first that recognises a pair and can read it explains it."""

from __future__ import annotations

from verify.compare.comparators.archive import ArchiveComparator
from verify.compare.comparators.config import ConfigComparator
from verify.compare.comparators.elf import ElfComparator
from verify.compare.comparators.interface import Comparator, Declined, FilePair
from verify.compare.comparators.pyc import PycComparator
from verify.compare.comparators.text import BinaryComparator, TextComparator
from verify.compare.model import FileComparison

REGISTRY: tuple[Comparator, ...] = (
    PycComparator(),
    ConfigComparator(),
    ElfComparator(),
    ArchiveComparator(),
    TextComparator(),
    BinaryComparator(),
)
"""Most specific first; :class:`BinaryComparator` recognises everything, so every pair gets a verdict."""


def explain(pair: FilePair, registry: tuple[Comparator, ...] = REGISTRY) -> FileComparison:
    """The verdict of the first comparator that recognises ``pair`` and can read both files.

    A comparator that recognised the kinds but could not parse the bytes (a truncated ``.pyc``, an
    ``.so`` that is not ELF) passes; the fall-through is recorded in the verdict's details.
    """
    declined: list[str] = []
    reasons: list[str] = []
    for comparator in registry:
        if not comparator.recognizes(pair):
            continue
        verdict = comparator.compare(pair)
        if isinstance(verdict, Declined):
            declined.append(f"{comparator.name} ({verdict.reason})")
            reasons.append(verdict.reason)
            continue
        if verdict is not None:
            if declined:
                note = f"not readable as {', '.join(declined)}; compared as {comparator.name}"
                # The reason a format parser gave up is itself a finding (a corrupt or hostile file).
                explanation = "; ".join([*reasons, verdict.explanation])
                return FileComparison(
                    verdict.comparator,
                    verdict.category,
                    explanation,
                    (note, *verdict.details),
                    verdict.sections,
                    verdict.build_paths,
                    verdict.truncated,
                )
            return verdict
        declined.append(comparator.name)
    # A registry without the catch-all still owes the caller a verdict.
    return BinaryComparator().compare(pair)


__all__ = ["REGISTRY", "Comparator", "Declined", "FilePair", "explain"]
