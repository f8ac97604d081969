"""Every JSON document cpython-verify writes, by its ``format`` id, and the JSON Schema (2020-12) of each.

The schemas ship in the package (``verify/schemas/*.json``, package data). Those of formats that are
pydantic models (the rebuild record, the plan, the release listing, the manifest, the status site's rows
and history, the rebuild verdict predicate) are generated from the models by :func:`generated_schemas`
(``python -m verify.site.formats`` writes them); a test keeps the committed files equal to what it
generates. The others are written by hand, closed (``additionalProperties: false``) wherever the format
is, and tests validate real outputs of the CLI against them.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Final

from verify.common.errors import OperationalError

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE: Final = "https://github.com/cpython-verify/cpython-verify/blob/main/verify/schemas/"
SITE_FORMAT: Final = "cpython-verify/site/v1"
"""status.json's format id (verify.site.status_site.site_json)."""

SCHEMAS: Final[dict[str, str]] = {
    "cpython-verify/source-verdict/v1": "source-verdict-v1.json",
    "cpython-verify/compare/v1": "compare-v1.json",
    "cpython-verify/audit/v2": "audit-v2.json",
    "cpython-verify/check/v1": "check-v1.json",
    "cpython-verify/peers/v1": "peers-v1.json",
    "cpython-verify/verify-attestation/v1": "verify-attestation-v1.json",
    "cpython-verify/releases/v1": "releases-v1.json",
    "cpython-verify/plan/v1": "plan-v1.json",
    "cpython-verify/manifest/v1": "manifest-v1.json",
    "cpython-verify/rebuild/v2": "rebuild-v2.json",
    SITE_FORMAT: "site-v1.json",
    "cpython-verify/cache-check/v1": "cache-check-v1.json",
    "cpython-verify/attest/v1": "attest-v1.json",
    "cpython-verify/merge/v1": "merge-v1.json",
    "https://github.com/cpython-verify/cpython-verify/attestation/rebuild-verdict/v1": "rebuild-verdict-v1.json",
}
"""Format id -> schema file in ``verify/schemas/`` (the last: the in-toto predicate type of the verdict)."""


def load_schema(name: str) -> dict[str, Any]:
    """The schema for a format id, or a schema file name, as installed with the package."""
    filename = SCHEMAS.get(name, name)
    if filename not in SCHEMAS.values():
        raise OperationalError(f"no schema for {name!r}; the formats are: {', '.join(sorted(SCHEMAS))}")
    schema: dict[str, Any] = json.loads(resources.files("verify").joinpath("schemas", filename).read_text("utf-8"))
    return schema


def generated_schemas() -> dict[str, dict[str, Any]]:
    """The schemas generated from the pydantic models, by file name, as they are committed."""
    from pydantic import TypeAdapter

    from verify.attest.predicate import predicate_json_schema
    from verify.manifest_file import ManifestDocument
    from verify.result.record import REBUILD_FORMAT, RebuildRecord
    from verify.site.plan import plan_json_schema
    from verify.site.release_listing import ReleaseListing
    from verify.site.status_page import HistoryEntry, StatusRow

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
    verdict = load_schema("peers-v1.json")
    del verdict["properties"]["format"]
    verdict["required"].remove("format")
    verdict["properties"]["page"] = {"type": "string"}
    verdict["required"] = sorted([*verdict["required"], "page"])
    dissent = verdict["properties"]["dissenting"]["items"]
    dissent["properties"]["comparison"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    dissent["required"] = sorted([*dissent["required"], "comparison"])
    for key in ("$schema", "$id", "title", "description"):
        verdict.pop(key, None)
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
            "agreement": {"type": "array", "items": verdict},
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
            "from verify.manifest_file.ManifestDocument.",
            ManifestDocument.model_json_schema(),
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


if __name__ == "__main__":  # python -m verify.site.formats: regenerate the committed schemas after a model changed
    for written in write_generated_schemas(Path(__file__).resolve().parent.parent / "schemas"):
        print(f"wrote verify/schemas/{written}")
