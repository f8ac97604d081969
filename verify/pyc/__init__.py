"""``.pyc`` understanding: PEP 552 headers, a version-independent marshal reader, semantic digests, comparison.

In: ``.pyc`` bytes (any CPython 3.8-3.15).
Out: a parsed header, code objects, a semantic digest, and a comparison of two ``.pyc`` files.
Next: not a stage of the chain but a library below it: :mod:`verify.manifest` records headers,
:mod:`verify.compare` and :mod:`verify.audit` compare code objects.

Nothing here uses the host interpreter's ``marshal`` or ``dis``: a 3.11 host reads 3.8-3.15 files.
"""

from verify.pyc.compare import CodeDifference, PycComparison, compare_pyc
from verify.pyc.disasm import Instruction, decode, listing
from verify.pyc.errors import MarshalError, PycError, PycHeaderError
from verify.pyc.header import PycHeader, parse_header, python_version_for_magic
from verify.pyc.load import LoadedPyc, load_code, load_pyc, semantic_digest
from verify.pyc.marshal import read_marshal
from verify.pyc.values import CodeObject

__all__ = [
    "CodeDifference",
    "CodeObject",
    "Instruction",
    "LoadedPyc",
    "MarshalError",
    "PycComparison",
    "PycError",
    "PycHeader",
    "PycHeaderError",
    "compare_pyc",
    "decode",
    "listing",
    "load_code",
    "load_pyc",
    "parse_header",
    "python_version_for_magic",
    "read_marshal",
    "semantic_digest",
]
