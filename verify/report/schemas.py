"""The JSON Schemas generated from the formats' models, and the model of each format that has one.

:func:`generated_schemas` builds every schema that is generated (``python -m verify.report.schemas`` writes
them into ``verify/schemas/``; a test keeps the committed files equal to what it generates), and
:func:`document_models` names the model each such format is written through, which the tests read every
document they produce back with. In the report layer: it reads the models of every stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verify.site.formats import SCHEMA_BASE, SCHEMA_DIALECT, SITE_FORMAT

if TYPE_CHECKING:
    from verify.common.strict import StrictModel


def document_models() -> dict[str, type[StrictModel]]:
    """Format id -> the model that writes (and reads) documents of that format, for those that have one."""
    from verify.attest.peers_document import PeersDocument
    from verify.common.cachecheck import CacheCheckDocument
    from verify.manifest import ManifestDocument
    from verify.report.attest_document import AttestDocument, VerificationDocument
    from verify.report.audit_document import AuditDocument
    from verify.report.check_document import CheckDocument
    from verify.report.compare_document import ComparisonDocument
    from verify.site.merge_document import MergeDocument
    from verify.site.plan import Plan
    from verify.site.release_listing import ReleaseListing
    from verify.source.verdict_document import SourceVerdictDocument

    return {
        "cpython-verify/source-verdict/v1": SourceVerdictDocument,
        "cpython-verify/audit/v2": AuditDocument,
        "cpython-verify/attest/v1": AttestDocument,
        "cpython-verify/verify-attestation/v1": VerificationDocument,
        "cpython-verify/peers/v1": PeersDocument,
        "cpython-verify/manifest/v1": ManifestDocument,
        "cpython-verify/compare/v1": ComparisonDocument,
        "cpython-verify/check/v1": CheckDocument,
        "cpython-verify/plan/v1": Plan,
        "cpython-verify/releases/v1": ReleaseListing,
        "cpython-verify/merge/v1": MergeDocument,
        "cpython-verify/cache-check/v1": CacheCheckDocument,
    }


def generated_schemas() -> dict[str, dict[str, Any]]:
    """The schemas generated from the pydantic models, by file name, as they are committed."""
    from pydantic import TypeAdapter

    from verify.attest.peers_document import PeersDocument
    from verify.attest.predicate import predicate_json_schema
    from verify.common.cachecheck import CacheCheckDocument
    from verify.manifest import ManifestDocument
    from verify.report.attest_document import AttestDocument, VerificationDocument
    from verify.report.audit_document import AuditDocument
    from verify.report.check_document import CheckDocument
    from verify.report.compare_document import ComparisonDocument
    from verify.result.record import REBUILD_FORMAT, RebuildRecord
    from verify.site.agreement_document import AgreementDocument
    from verify.site.merge_document import MergeDocument
    from verify.site.plan import plan_json_schema
    from verify.site.release_listing import ReleaseListing
    from verify.site.status_page import HistoryEntry, StatusRow
    from verify.source.verdict_document import SourceVerdictDocument

    record = RebuildRecord.model_json_schema()
    # The format field has a default in the model, but every rebuild.json carries it.
    record["required"] = sorted({*record.get("required", []), "format"})
    rows = TypeAdapter(list[StatusRow]).json_schema()
    history = TypeAdapter(list[HistoryEntry]).json_schema()
    definitions = {**rows.pop("$defs", {}), **history.pop("$defs", {})}
    # status.json adds each row's page to the row (verify.site.status_site.site_json).
    definitions["StatusRow"]["properties"]["page"] = {"type": "string"}
    definitions["StatusRow"]["required"] = sorted({*definitions["StatusRow"].get("required", []), "page"})
    for definition in definitions.values():
        definition["additionalProperties"] = False
    agreement = TypeAdapter(list[AgreementDocument]).json_schema()
    definitions.update(agreement.pop("$defs", {}))
    site = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_BASE + "site-v1.json",
        "title": "cpython-verify status site v1",
        "description": "A status site's status.json, written by `merge` (docs/attestation.md).",
        "type": "object",
        "properties": {
            "format": {"const": SITE_FORMAT},
            "title": {"type": "string"},
            "generated_at": {"type": "string"},
            "agreement": agreement,
            "rows": rows,
            "history": history,
            "notes": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["agreement", "format", "generated_at", "history", "notes", "rows", "title"],
        "additionalProperties": False,
        "$defs": definitions,
    }
    return {
        "rebuild-v2.json": {
            "$schema": SCHEMA_DIALECT,
            "$id": SCHEMA_BASE + "rebuild-v2.json",
            "title": f"cpython-verify rebuild record ({REBUILD_FORMAT})",
            "description": "A rebuild result's rebuild.json (docs/rebuild.md), generated from RebuildRecord.",
            **record,
        },
        "site-v1.json": site,
        "rebuild-verdict-v1.json": predicate_json_schema(),
        "manifest-v1.json": _document(
            "manifest-v1.json",
            "cpython-verify manifest v1",
            "manifest.json: one entry per path of an install tree, sorted by path (docs/manifest.md). Generated "
            "from verify.manifest.ManifestDocument.",
            ManifestDocument.model_json_schema(),
        ),
        "compare-v1.json": _document(
            "compare-v1.json",
            "cpython-verify compare v1",
            "`compare --json` (docs/compare-json.md). Generated from "
            "verify.report.compare_document.ComparisonDocument.",
            ComparisonDocument.model_json_schema(),
        ),
        "check-v1.json": _document(
            "check-v1.json",
            "cpython-verify check v1",
            "`check --json` and RESULT/check.json. Generated from verify.report.check_document.CheckDocument.",
            CheckDocument.model_json_schema(),
        ),
        "peers-v1.json": _document(
            "peers-v1.json",
            "cpython-verify peers v1",
            "`peers --json` (docs/attestation.md). Generated from verify.attest.peers_document.PeersDocument.",
            PeersDocument.model_json_schema(),
        ),
        "attest-v1.json": _document(
            "attest-v1.json",
            "cpython-verify attest v1",
            "`attest --json` (docs/attestation.md). Generated from verify.report.attest_document.AttestDocument.",
            AttestDocument.model_json_schema(),
        ),
        "verify-attestation-v1.json": _document(
            "verify-attestation-v1.json",
            "cpython-verify verify-attestation v1",
            "`verify-attestation --json` (docs/attestation.md). `predicate` is the rebuild verdict "
            "(rebuild-verdict-v1.json) or the SLSA provenance predicate. Generated from "
            "verify.report.attest_document.VerificationDocument.",
            VerificationDocument.model_json_schema(),
        ),
        "source-verdict-v1.json": _document(
            "source-verdict-v1.json",
            "cpython-verify source verdict v1",
            "`source --json`, a rebuild result's source-verdict.json and the audit's `source` "
            "(docs/source-verdict.md). Generated from verify.source.verdict_document.SourceVerdictDocument.",
            SourceVerdictDocument.model_json_schema(),
        ),
        "audit-v2.json": _document(
            "audit-v2.json",
            "cpython-verify audit v2",
            "`audit --json` (docs/audit-json.md). Generated from verify.report.audit_document.AuditDocument.",
            AuditDocument.model_json_schema(),
        ),
        "plan-v1.json": _document(
            "plan-v1.json",
            "cpython-verify plan v1",
            "`plan --json`: the CI job matrix; GitHub Actions is given `include` alone, and `merge --plan` reads "
            "either (docs/attestation.md). Generated from verify.site.plan.Plan.",
            plan_json_schema(),
        ),
        "releases-v1.json": _document(
            "releases-v1.json",
            "cpython-verify releases v1",
            "`releases --json`: what `plan --releases` reads (docs/attestation.md). Generated from "
            "verify.site.release_listing.ReleaseListing.",
            ReleaseListing.model_json_schema(),
        ),
        "merge-v1.json": _document(
            "merge-v1.json",
            "cpython-verify merge v1",
            "`merge --json` (docs/attestation.md); each `agreement` item is a peers verdict (peers-v1.json "
            "without `format`). Generated from verify.site.merge_document.MergeDocument.",
            MergeDocument.model_json_schema(),
        ),
        "cache-check-v1.json": _document(
            "cache-check-v1.json",
            "cpython-verify cache check v1",
            "`cache check --json`. Generated from verify.common.cachecheck.CacheCheckDocument.",
            CacheCheckDocument.model_json_schema(),
        ),
    }


def _document(name: str, title: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A generated schema as a committed file: the dialect, its own URL, a title and what it describes."""
    return {
        **schema,
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_BASE + name,
        "title": title,
        "description": description,
    }


def schema_bytes(schema: dict[str, Any]) -> bytes:
    """A schema file's bytes, as committed: sorted keys, two-space indent, one trailing newline."""
    return (json.dumps(schema, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_generated_schemas(directory: Path) -> list[str]:
    """Write every generated schema into ``directory`` (``verify/schemas`` of a checkout); return the names of
    the files whose bytes changed."""
    changed = []
    for name, schema in generated_schemas().items():
        path = directory / name
        data = schema_bytes(schema)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
            changed.append(name)
    return changed


if __name__ == "__main__":  # python -m verify.report.schemas: regenerate the committed schemas after a model changed
    for written in write_generated_schemas(Path(__file__).resolve().parent.parent / "schemas"):
        print(f"wrote verify/schemas/{written}")
