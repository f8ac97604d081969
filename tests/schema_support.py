"""Validate cpython-verify's JSON documents against the schemas the package ships (verify/schemas)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from verify.report.schemas import document_models
from verify.site.formats import load_schema

# The commands whose --json report goes to stdout; `env run` passes its arguments to a sandboxed command.
REPORTING_COMMANDS = frozenset(
    {
        "source",
        "compare",
        "audit",
        "check",
        "peers",
        "verify-attestation",
        "releases",
        "plan",
        "merge",
        "attest",
        "cache",
    }
)


def schema_problems(document: Any, format_id: str | None = None) -> list[str]:
    """Why ``document`` does not match the schema of its ``format`` (or of ``format_id``); empty if it does."""
    if not isinstance(document, dict) or not isinstance(document.get("format"), str):
        return ["the document has no format id"]
    if format_id is not None and document["format"] != format_id:
        return [f"format {document['format']!r}, expected {format_id!r}"]
    validator = Draft202012Validator(load_schema(format_id or document["format"]))
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def assert_matches_schema(document: Any, format_id: str | None = None) -> None:
    """Fail with every place ``document`` departs from its schema; a format written through a model is also
    read back through it, and written again to the same data."""
    problems = schema_problems(document, format_id)
    assert not problems, "\n".join(problems[:20])
    model = document_models().get(document["format"])
    if model is not None:
        assert model.model_validate(document).to_json() == document, f"{document['format']} does not round-trip"


def assert_file_matches_schema(path: Path, format_id: str) -> None:
    """The JSON file at ``path`` is a ``format_id`` document."""
    assert_matches_schema(json.loads(path.read_text()), format_id)


def check_cli_json(args: Sequence[object], returncode: int, stdout: str) -> None:
    """A ``--json`` report on stdout that came with a verdict (exit 0 or 1) matches its schema."""
    words = [str(argument) for argument in args]
    if not words or words[0] not in REPORTING_COMMANDS or "--json" not in words or returncode not in (0, 1):
        return
    if {"-o", "--output", "-q", "--quiet"} & set(words) or not stdout.strip():
        return
    assert_matches_schema(json.loads(stdout))
