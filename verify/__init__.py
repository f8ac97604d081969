"""cpython-verify: check that a CPython is exactly what its release managers signed, rebuilt bit for bit."""

__version__ = "0.1.0"
