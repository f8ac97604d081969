"""One way to read an on-disk or JSON format: a frozen, strict pydantic model, validated where the bytes come in.

Each format's model derives from :class:`StrictModel`: frozen (a parsed file is a value), ``extra="forbid"``
(a key the format does not have is refused, not ignored) and strict (``"1"`` is not ``1``, ``1`` is not
``true``). :func:`parse_model` validates parsed data (a TOML table, a JSON object) against a model and turns
a failure into the one line a user sees: the file, the offending key and what it must be. Pydantic's
multi-line report never reaches the user.

A model's own rules (a digest's form, a name's grammar) are ``AfterValidator`` functions that raise
``ValueError("must be ...")``: the message is shown after the quoted key, as it is written. A rule about
a whole table (keys that must agree) raises :func:`table_error` from a model validator.

A JSON file is read by :func:`read_json_model` (a regular file within a size budget, parsed with the
nesting budget of :func:`verify.common.jsonutil.loads_bounded`, then :func:`parse_model`): every refusal,
from "not a regular file" to a mistyped field, is one line naming the file. JSON is parsed by the standard
library, not by pydantic's parser, which refuses the lone surrogate escapes that stand for undecodable
bytes in file names (``"\\udcff"``); the model then validates the parsed data.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from verify.common.fsutil import read_regular_file
from verify.common.jsonutil import JsonLimitError, loads_bounded

Model = TypeVar("Model", bound=BaseModel)
Value = TypeVar("Value")
Count = Annotated[int, Field(ge=0)]
"""How many of something: a non-negative integer."""
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
# A value of the right type that breaks the field's bound: what it must be, from pydantic's context.
_BOUNDS = {
    "literal_error": "{expected}",
    "greater_than_equal": "at least {ge}",
    "less_than_equal": "at most {le}",
    "string_pattern_mismatch": "a string matching {pattern}",
    "string_too_short": "at least {min_length} character(s)",
    "string_too_long": "at most {max_length} characters",
    "too_long": "at most {max_length} item(s)",
}
# What a value of the wrong type is, in the words of TOML and JSON.
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a float",
    bool: "a boolean",
    list: "a list",
    dict: "a table",
    type(None): "null",
}


class StrictModel(BaseModel):
    """The base of every on-disk and JSON format's model: frozen, closed and strictly typed.

    Attribute docstrings become the fields' descriptions in the generated JSON Schemas, and an
    :data:`Omittable` field that is None is left out when the model is written."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, use_attribute_docstrings=True)
    __omittable__: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.__omittable__ = frozenset(
            name
            for name, info in cls.model_fields.items()
            if any(isinstance(item, _NeverNull) for item in info.metadata)
        )

    def to_json(self) -> dict[str, Any]:
        """The document as JSON data (lists, objects, strings, numbers), ready for ``json.dumps``."""
        return self.model_dump(mode="json")

    @model_serializer(mode="wrap")
    def _leave_out_omitted(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.__omittable__ and isinstance(data, dict):
            for name in self.__omittable__:
                if name in data and data[name] is None:
                    del data[name]
        return data


class _NeverNull:
    """A key that a format either leaves out or gives a value, never ``null`` (see :data:`Omittable`)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        # Runs only when the key is there: a key left out takes the default without validation.
        return core_schema.no_info_before_validator_function(_refuse_null, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        found: dict[str, Any] = handler(schema)
        branches = [branch for branch in found.get("anyOf", ()) if branch != {"type": "null"}]
        if len(branches) == 1:
            found = {**{key: value for key, value in found.items() if key != "anyOf"}, **branches[0]}
        return found


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must be left out rather than null")
    return value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


Omittable = Annotated[Value | None, _NeverNull()]
"""A key that may be left out (the value is then None) and is never ``null`` when present; the schema says
the same, and a :class:`StrictModel` leaves the key out when it writes None. Give the field ``= OMITTED``."""
OMITTED: Final[Any] = Field(default=None, json_schema_extra=_no_default)
"""The default of an :data:`Omittable` field (None, and no ``"default": null`` in the schema)."""


class OneOf:
    """A string field whose value is one of a closed vocabulary (a manifest kind, a comparator category):
    refused as ``is not WHAT: 'x'``, and an ``enum`` in the schema."""

    def __init__(self, values: Iterable[str], what: str) -> None:
        self.values = tuple(values)
        self.what = what

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        allowed = frozenset(self.values)

        def check(value: str) -> str:
            if value not in allowed:
                raise ValueError(f"is not {self.what}: {_shown(value)}")
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {**handler(schema), "enum": list(self.values)}


def rule(problem: Callable[[Any], str | None]) -> AfterValidator:
    """A field's rule from one of the project's ``*_problem`` functions (:mod:`verify.source.names`): the value
    is refused with the function's own words (``'../x' is not a profile name ...``)."""

    def check(value: Any) -> Any:
        found = problem(value)
        if found is not None:
            raise ValueError(found)
        return value

    return AfterValidator(check)


def parse_model(
    model: type[Model], data: object, *, where: str, error: Callable[[str], Exception], json: bool = False
) -> Model:
    """``data`` validated as ``model``; a failure raises ``error(f"{where}: {first_problem(...)}")``, one line
    (``cpython-3.13.toml: signatures.sigstore: 'issuer' must be an https URL, not 'http://x'``). ``json``: the
    data is a JSON document's, and the message says "object" where TOML says "table"."""
    try:
        return model.model_validate(data)
    except ValidationError as problem:
        raise error(f"{where}: {first_problem(problem, json=json)}") from None


def load_json(raw: bytes, *, where: str, error: Callable[[str], Exception]) -> Any:
    """The value a JSON document's bytes hold, nesting-bounded; anything else (not UTF-8, not JSON, nested
    past :data:`verify.common.limits.JSON_MAX_DEPTH`) raises ``error("WHERE: ...")``, one line."""
    try:
        return loads_bounded(raw)
    except JsonLimitError as problem:
        raise error(f"{where}: {problem}") from None
    except ValueError as problem:
        raise error(f"{where}: not valid JSON: {str(problem)[:200]}") from None


def read_json_model(
    path: Path, model: type[Model], *, what: str, max_bytes: int, error: Callable[[str], Exception]
) -> Model:
    """The JSON file at ``path`` validated as ``model`` (``what`` names the file's role: "plan").

    Refused with ``error``, one line naming the file: not a regular file (a FIFO would block the read, a
    directory has no bytes), larger than ``max_bytes``, not JSON, nested too deeply, or not the model.
    """
    where = f"{what} {path}"
    try:
        raw = read_regular_file(path, max_bytes)
    except OSError as problem:
        raise error(f"cannot read {where}: {problem.strerror or problem}") from None
    if len(raw) > max_bytes:
        raise error(f"{where} is larger than {_size(max_bytes)}")
    return parse_model(model, load_json(raw, where=where, error=error), where=where, error=error, json=True)


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 else f"{count >> 10} KiB"


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


def first_problem(error: ValidationError, *, json: bool = False) -> str:
    """The problem a reader should fix first, on one line: ``TABLE: 'KEY' must be ...``.

    Missing keys come first, then keys the format does not have (each listed together, as one problem
    of the table that holds them), then the first wrong value. ``json``: say "object" for a table.
    """
    found = _first_problem(error)
    return found.replace("a table", "an object") if json else found


def _first_problem(error: ValidationError) -> str:
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
        if isinstance(part, bool):  # the tag of a union's member (``signed: true``): the key itself follows
            continue
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
    wanted = _BOUNDS.get(problem["type"])
    if wanted is not None:
        return f"must be {wanted.format(**problem['ctx'])}, not {_shown(problem.get('input'))}"
    wanted = _MESSAGES.get(problem["type"])
    if wanted is None:
        return " ".join(str(problem["msg"]).split())
    return f"{wanted}, not {_TYPE_NAMES.get(type(problem.get('input')), type(problem.get('input')).__name__)}"


def _shown(value: Any) -> str:
    """A value in a one-line message: a short repr of a string or number, the type of anything larger."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            text = repr(value)
        except ValueError:  # an int past the interpreter's digit limit for str()
            return "an integer too long to show"
        return text if len(text) <= 80 else text[:77] + "..."
    return _TYPE_NAMES.get(type(value), type(value).__name__)
