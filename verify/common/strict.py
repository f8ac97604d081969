"""One way to read an on-disk or JSON format: a frozen, strict pydantic model, validated where the bytes come in.

Each format's model derives from :class:`StrictModel`: frozen (a parsed file is a value), ``extra="forbid"``
(a key the format does not have is refused, not ignored) and strict (``"1"`` is not ``1``, ``1`` is not
``true``). :func:`parse_model` validates parsed data (a TOML table, a JSON object) against a model and turns
a failure into the one line a user sees: the file, the offending key and what it must be. Pydantic's
multi-line report never reaches the user.

A model's own rules (a digest's form, a name's grammar) are ``AfterValidator`` functions that raise
``ValueError("must be ...")``: the message is shown after the quoted key, as it is written. A rule about
a whole table (keys that must agree) raises :func:`table_error` from a model validator.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

Model = TypeVar("Model", bound=BaseModel)
_TABLE_PROBLEM = "table_problem"
_KEY = "[key]"
"""The last part of the location pydantic gives a dict key that failed validation."""

# Pydantic's wording for the commonest type errors, in the words the project's messages use.
_MESSAGES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
}
# What a value of the wrong type is, in the words of TOML and JSON.
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a float", bool: "a boolean", list: "a list", dict: "a table"}


class StrictModel(BaseModel):
    """The base of every on-disk and JSON format's model: frozen, closed and strictly typed."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def parse_model(model: type[Model], data: object, *, where: str, error: Callable[[str], Exception]) -> Model:
    """``data`` validated as ``model``; a failure raises ``error(f"{where}: {first_problem(...)}")``, one line
    (``cpython-3.13.toml: signatures.sigstore: 'issuer' must be an https URL, not 'http://x'``)."""
    try:
        return model.model_validate(data)
    except ValidationError as problem:
        raise error(f"{where}: {first_problem(problem)}") from None


def load_toml(text: bytes, *, where: str, error: Callable[[str], Exception]) -> dict[str, Any]:
    """The table a TOML file's bytes hold; anything else (not UTF-8, not TOML, nested past the interpreter's
    stack) raises ``error("WHERE: not valid TOML: ...")``, one line."""
    try:
        return tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as problem:
        raise error(f"{where}: not valid TOML: {problem}") from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table.
        raise error(f"{where}: not valid TOML: nested too deeply") from None


def table_error(message: str) -> PydanticCustomError:
    """The error a model validator raises for a problem of its table as a whole (two keys that disagree,
    a key of a sub-table that breaks a rule): shown after the table's location, as written."""
    return PydanticCustomError(_TABLE_PROBLEM, "{message}", {"message": message})


def first_problem(error: ValidationError) -> str:
    """The problem a reader should fix first, on one line: ``TABLE: 'KEY' must be ...``.

    Missing keys come first, then keys the format does not have (each listed together, as one problem
    of the table that holds them), then the first wrong value.
    """
    problems = error.errors(include_url=False)
    for kind in ("missing", "extra_forbidden"):
        found = [problem for problem in problems if problem["type"] == kind]
        if found:
            table = found[0]["loc"][:-1]
            keys = sorted(str(problem["loc"][-1]) for problem in found if problem["loc"][:-1] == table)
            if kind == "missing":
                listed = "missing key " if len(keys) == 1 else "missing keys "
                message = listed + ", ".join(repr(key) for key in keys)
            else:
                message = f"unknown key(s): {', '.join(keys)}"
            return _at(location(table), message)
    first = problems[0]
    loc = tuple(first["loc"])
    if first["type"] == _TABLE_PROBLEM:
        return _at(location(loc), " ".join(str(first["ctx"]["message"]).split()))
    if loc and loc[-1] == _KEY:  # a key of a table (a profile's name) breaks its rule: the message names it
        return _at(location(loc[:-2]), _message(first))
    named = max((index for index, part in enumerate(loc) if isinstance(part, str)), default=None)
    if named is None:  # an element of a top-level list
        return _at(location(loc), _message(first))
    return _at(location(loc[:named]), f"{location(loc[named:])!r} {_message(first)}")


def location(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a reader writes it: ``packages[3].sha256``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not text:
            text = part
        else:
            text += f".{part}"
    return text


def _at(where: str, message: str) -> str:
    return f"{where}: {message}" if where else message


def _message(problem: Any) -> str:
    if problem["type"] == "value_error":
        return " ".join(str(problem["ctx"]["error"]).split())
    wanted = _MESSAGES.get(problem["type"])
    if wanted is None:
        return " ".join(str(problem["msg"]).split())
    return f"{wanted}, not {_TYPE_NAMES.get(type(problem.get('input')), type(problem.get('input')).__name__)}"
