"""Errors raised while reading a ``.pyc`` file.

A ``.pyc`` that cannot be read is input the tool cannot judge, so these are operational errors (exit 2):
a comparator that meets one should fall back to comparing bytes and say why, not call the files equal.
"""

from __future__ import annotations

from verify.common.errors import OperationalError


class PycError(OperationalError):
    """A ``.pyc`` file is truncated, malformed, hostile, or of a Python version this tool cannot read."""


class PycHeaderError(PycError):
    """The 16-byte PEP 552 header is missing, malformed, or carries an unknown magic number."""


class MarshalError(PycError):
    """The marshalled code object is truncated, malformed, too deep, or too large."""
