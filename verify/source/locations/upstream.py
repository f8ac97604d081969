"""python.org's download tree, and mirrors that copy its layout (``{mirror}/{base}/{filename}``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from verify.common.errors import FetchError
from verify.source.locations.cache import Cache
from verify.source.locations.http import HttpClient
from verify.source.locations.interface import SourceLocation
from verify.source.models import FetchedFile
from verify.source.recipes import Recipe
from verify.source.releases import Version

UrlsFor = Callable[[Version, str], Sequence[str]]


class UpstreamLocation(SourceLocation):
    """A web server with python.org's layout; files are tried at each URL in turn."""

    def __init__(self, urls_for: UrlsFor, *, description: str, client: HttpClient, cache: Cache) -> None:
        """``urls_for(version, filename)`` gives the URLs to try, in order."""
        self._urls_for = urls_for
        self._description = description
        self._client = client
        self._cache = cache

    @classmethod
    def python_org(cls, recipe: Recipe, *, client: HttpClient, cache: Cache) -> UpstreamLocation:
        """python.org itself, with the URL templates of the recipe."""
        templates = recipe.source.url_templates
        return cls(
            recipe.source.urls_for,
            description=", ".join(_template_base(template) for template in templates) or "python.org",
            client=client,
            cache=cache,
        )

    @classmethod
    def mirror(cls, base_url: str, *, client: HttpClient, cache: Cache) -> UpstreamLocation:
        """A mirror of python.org's ``/ftp/python`` tree: ``{base_url}/{version.base}/{filename}``."""
        scheme = urlsplit(base_url).scheme.lower()
        if scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise FetchError(f"mirror {base_url!r} must be an http:// or https:// URL")
        base = base_url.rstrip("/")

        def urls_for(version: Version, filename: str) -> tuple[str, ...]:
            # Plain concatenation, not str.format: a mirror URL may contain braces.
            return (f"{base}/{version.base}/{filename}",)

        return cls(urls_for, description=base, client=client, cache=cache)

    @property
    def description(self) -> str:
        """The base URL."""
        return self._description

    def fetch(self, version: Version, filename: str) -> FetchedFile | None:
        """The file from the first URL that has it; ``None`` when every URL answers 404."""
        for url in self._urls_for(version, filename):
            fetched = self._client.download(url, self._cache, name=filename)
            if fetched is not None:
                return fetched
        return None


def _template_base(template: str) -> str:
    """``https://www.python.org/ftp/python/{base}/{filename}`` -> ``https://www.python.org/ftp/python``."""
    cut = template.find("/{")
    return template[:cut] if cut > 0 else template
