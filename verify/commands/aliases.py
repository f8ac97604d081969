"""Old spellings of renamed options: hidden, still working for one release, each use warned about.

``@renamed("--key", "--signing-key", "signing_key")`` adds a hidden ``--key`` whose value becomes the
command's ``signing_key`` argument, with a one-line warning on stderr. Giving both spellings at once is
a usage error: which one was meant cannot be guessed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

F = TypeVar("F", bound=Callable[..., Any])


_META = "cpython_verify.renamed"


def warn_deprecated(old: str, new: str) -> None:
    """The one line that says an old spelling was used, and its replacement."""
    click.echo(
        f"cpython-verify: warning: {old} is deprecated and will be removed in the next release; use {new}", err=True
    )


def _given(value: Any) -> bool:
    return value not in (None, (), [], False)


def used_old_spelling(dest: str) -> bool:
    """Whether the running command was given the old spelling of the option whose argument is ``dest``."""
    return dest in click.get_current_context().meta.get(_META, {})


def renamed(old: str, new: str, dest: str, **attrs: Any) -> Callable[[F], F]:
    """Decorate a command with a hidden ``old`` spelling of its option ``new`` (argument ``dest``).

    ``attrs`` are the option's type, ``multiple`` and so on, as for the new spelling.
    """

    def remember(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if _given(value):
            warn_deprecated(old, new)
            ctx.meta.setdefault(_META, {})[dest] = value
        return value

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def merged(*args: Any, **kwargs: Any) -> Any:
            chosen = click.get_current_context().meta.get(_META, {})
            if dest in chosen:
                if _given(kwargs.get(dest)):
                    raise click.UsageError(f"give {new} only, not also its old spelling {old}")
                kwargs[dest] = chosen[dest]
            return function(*args, **kwargs)

        option = click.option(old, f"renamed_{dest}", hidden=True, expose_value=False, callback=remember, **attrs)
        return cast("F", option(merged))

    return decorate


def version_and_inputs(arguments: tuple[str, ...], old_version: str | None) -> tuple[str, tuple[Path, ...]]:
    """``audit``'s VERSION and INPUTs: ``VERSION INPUT...``, or the old ``INPUT... --version VERSION``.

    Each input must exist (a usage error, exit 2, otherwise), as when INPUT was the only argument.
    """
    if old_version is not None:
        warn_deprecated("--version", "the VERSION argument (audit VERSION INPUT...)")
        version, paths = old_version, arguments
    else:
        if len(arguments) < 2:
            raise click.UsageError("give the release and what to audit: audit VERSION INPUT...")
        version, paths = arguments[0], arguments[1:]
    existing = click.Path(exists=True, path_type=Path)
    context = click.get_current_context()
    return version, tuple(existing.convert(path, None, context) for path in paths)
