"""The recipes, release managers' keys and environment specs, installed as the data package ``verify.recipes``.

This folder is data a packager reads and edits (one TOML per series, ``keys/``, ``environments/``); the
file exists only so that an installed or editable ``cpython-verify`` finds it through
:mod:`importlib.resources` (see ``verify/source/shipped.py``).
"""
