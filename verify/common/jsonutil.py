"""JSON from untrusted bytes, with a nesting budget.

``json.loads`` recurses once per nesting level: 100,000 nested lists raise RecursionError from deep inside
the decoder, and a document that stays just under the interpreter's limit still makes every recursive
consumer after it (pydantic, a JSON writer, a report) fragile. :func:`loads_bounded` turns both into a
:class:`JsonLimitError`, a ``ValueError``, so callers that already map ``ValueError`` ("not valid JSON") to
their own one-line error need no other change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verify.common.filekind import HEAD_BYTES, describe_head, looks_like_json_object
from verify.common.limits import JSON_MAX_DEPTH

if TYPE_CHECKING:  # only the type: the commands that never validate a model do not import pydantic for it
    from pydantic import ValidationError


class JsonLimitError(ValueError):
    """The document is nested deeper than the budget allows."""


class JsonTooLarge(ValueError):
    """The file is larger than the caller's size budget."""


def loads_bounded(raw: bytes | str, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Parse ``raw`` as JSON and refuse nesting deeper than ``max_depth`` containers.

    Raises ``ValueError`` for anything that is not JSON (including numbers past the interpreter's
    integer-digit limit and undecodable bytes) and :class:`JsonLimitError` for too deep a document.
    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonLimitError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as error:
        head = (raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw)[:HEAD_BYTES]
        if looks_like_json_object(head) or head.lstrip(b" \t\r\n").startswith(b"["):
            raise  # meant as JSON: the parser's own words say where it breaks
        # Not meant as JSON (an archive, a script): say what it is rather than where the parser gave up.
        raise ValueError(f"it is {describe_head(head)}, not JSON") from error
    check_depth(value, max_depth=max_depth)
    return value


def check_depth(value: Any, *, max_depth: int = JSON_MAX_DEPTH) -> None:
    """Raise :class:`JsonLimitError` if ``value`` (parsed JSON) nests more than ``max_depth`` containers."""
    # Iterative: the point is not to trust the interpreter's stack with hostile nesting.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise JsonLimitError(f"JSON nested deeper than {max_depth} levels")
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def read_json_file(path: Path, max_bytes: int) -> Any:
    """A JSON document from a regular file of at most ``max_bytes``, nesting-bounded.

    Raises ``OSError`` (unreadable, or not a regular file) or ``ValueError`` (too large, not JSON,
    nested too deeply); callers turn either into their own one-line error.
    """
    return read_json_document(path, max_bytes)[0]


def read_json_document(path: Path, max_bytes: int) -> tuple[Any, bytes]:
    """:func:`read_json_file`, also returning the exact bytes read (for a digest or a signature check).

    Too large a file raises :class:`JsonTooLarge`, too deep a document :class:`JsonLimitError` (both
    ``ValueError``), so a caller can word each refusal its own way.
    """
    from verify.common.fsutil import read_regular_file

    raw = read_regular_file(path, max_bytes)
    if len(raw) > max_bytes:
        raise JsonTooLarge(f"larger than {max_bytes >> 20} MiB")
    return loads_bounded(raw), raw


def validation_summary(error: ValidationError, *, top: str = "top level") -> str:
    """``where: message`` of the first problem a pydantic model found in a document (``top`` names the
    document's root), for one-line refusals."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or top
    return f"{where}: {first['msg']}"
