"""The user documentation installed with the package: ``docs/*.md`` ships in the wheel as ``verify/docs``.

``--help`` texts name pages as ``docs/NAME.md``; ``cpython-verify docs NAME`` prints the installed copy,
so the page a help text names is there wherever the tool is installed, with no network.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from verify.common.errors import OperationalError


def docs_dir() -> Traversable:
    """Where the installed documentation is."""
    return resources.files("verify").joinpath("docs")


def available() -> dict[str, str]:
    """Each page's name (``audit-json`` for ``docs/audit-json.md``) and its title (its first heading)."""
    pages = {}
    for entry in docs_dir().iterdir():
        if entry.name.endswith(".md"):
            first = next((line for line in entry.read_text("utf-8").splitlines() if line.startswith("# ")), "")
            pages[entry.name[: -len(".md")]] = first.removeprefix("# ").strip()
    if not pages:
        raise OperationalError(f"no documentation is installed in {docs_dir()} (a trimmed install?)")
    return dict(sorted(pages.items()))


def page(name: str) -> tuple[str, str]:
    """The page ``name`` (``audit-json``, ``docs/audit-json.md`` or ``audit-json.md``): where it is and its text."""
    stem = name.removeprefix("docs/").removesuffix(".md")
    pages = available()
    if stem not in pages:
        raise OperationalError(f"no documentation page {name!r}; the pages are: {', '.join(pages)}")
    entry = docs_dir().joinpath(f"{stem}.md")
    return str(entry), entry.read_text("utf-8")
