"""The source stage: is this tarball exactly what CPython's release managers signed?

In: a :class:`~verify.source.releases.Version`, its series' :class:`~verify.source.recipes.Recipe` (loaded
once, by whoever starts the chain: :func:`~verify.source.recipes.load_recipe`) and
:class:`~verify.source.assembly.SourceOptions` (where to look, which signatures may be missing, digest claims).
Out: a :class:`~verify.source.models.SourceVerdict` (the tarball, each signature and digest check,
``Include/patchlevel.h``) and the verified tarball, fetched into the download cache.
Next: :mod:`verify.environments` and :mod:`verify.rebuild` (also :mod:`verify.audit`, which compares an
installation with the verified source).

Inside: ``recipes`` (the per-series recipes, read from the shipped ``recipes/`` folder, ``shipped``),
``releases`` and ``names`` (versions and the names made from them), ``locations/`` (python.org's
layout, mirrors, local directories, Debian's archive, the HTTP client and cache, the host's apt
configuration), ``signatures/`` (OpenPGP, Sigstore, the policy over them), ``checks`` (the stage's rules,
every I/O edge passed in), ``assembly`` (options -> those edges), ``unpack`` (safe extraction),
``models`` (the frozen values) and ``report`` (the verdict as text and as ``source-verdict.json``).
"""
