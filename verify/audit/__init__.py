"""Audit an installed CPython (a server's ``/usr``, an unpacked container image) against verified source.

In: an installation's root, a :class:`~verify.source.models.SourceVerdict` with its unpacked source
tree, and optionally a rebuild's manifest.
Out: an :class:`AuditReport` (findings per question below).
Next: none in the chain: it is a side branch after the source stage (and after a rebuild, for ELF files).

Four questions, each answered as data in an :class:`AuditReport`:

1. Is every stdlib ``.py`` the one in the verified source tarball's ``Lib/``? Modified, missing and
   extra files are listed by name, so a distribution's patches show up here.
2. Does every ``.pyc`` belong to its ``.py``? The header's source size/mtime or source hash must match;
   with an independent interpreter of the same version (not the audited one), each ``.pyc`` is also
   recompiled from its source and the code compared. Orphan ``.pyc`` files (no source: a sourceless
   import is a place to hide code) and ``.pyc`` files in unexpected places are reported.
3. Given a rebuild's manifest, are the ELF binaries and extension modules the rebuilt ones?
4. Which ``CONFIG_ARGS`` did the installation record, so it can be rebuilt "like this installation"?

Each question has its module (``sources``, ``pyc``, ``elf``, ``config``); ``core`` asks them and builds
the report. The core takes an already verified, unpacked source tree; obtaining and verifying it is the
caller's job.
"""

from verify.audit.core import audit_installation, find_stdlib
from verify.audit.model import AuditError, AuditReport, ElfAudit, Finding, PycAudit, SourceAudit

__all__ = [
    "AuditError",
    "AuditReport",
    "ElfAudit",
    "Finding",
    "PycAudit",
    "SourceAudit",
    "audit_installation",
    "find_stdlib",
]
