"""The site stage: publish what the attestations say, release by release.

In: signed attestations (:mod:`verify.attest`) and the releases python.org lists.
Out: the releases feed (``releases_feed``), the status page (``status_page``) and the static site
built from collected attestations (``status_site``).
Next: none; this is the end of the chain.
"""
