"""A status site's verdict of one release x profile (``status.json``'s ``agreement``): the ``peers`` verdict's
model (:class:`verify.attest.peers_document.VerdictBody`) with the pages the site links.

:func:`verify.site.status_page.agreement_json` writes through :class:`AgreementDocument`, and
``verify/schemas/site-v1.json`` takes its ``agreement`` items from it.
"""

from __future__ import annotations

from pydantic import Field

from verify.attest.peers_document import DissentDocument, VerdictBody


class SiteDissent(DissentDocument):
    """A dissenting rebuilder, with the link to its file-level comparison."""

    comparison: str | None
    """Its comparison with the reference on the agreement page (None when the files are unknown)."""


class AgreementDocument(VerdictBody):
    """One release x profile's verdict, with its agreement page."""

    page: str
    dissenting: tuple[SiteDissent, ...] = Field(strict=False)
