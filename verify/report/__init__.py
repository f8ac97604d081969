"""Renderings of results: plain/coloured text for people, stable JSON for machines, HTML pages."""
