"""Every JSON document cpython-verify writes, by its ``format`` id, and the JSON Schema (2020-12) of each.

The schemas ship in the package (``verify/schemas/*.json``, package data). Every format is written through
a pydantic model, and every schema is generated from the models by
:func:`verify.report.schemas.generated_schemas` (``python -m verify.report.schemas`` writes them; it sits in
the report layer, above every stage whose models it reads); a test keeps the committed files equal to what
it generates, and tests validate real outputs of the CLI against them.
"""

from __future__ import annotations

import json
from importlib import resources
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
