"""One root error type; every failure carries a one-line message and an exit code.

Exit codes follow diffoscope's convention: 0 verified / identical, 1 verification failed or outputs
differ, 2 operational error (network, bad arguments, malformed input the tool cannot judge).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2


class VerifyError(Exception):
    """Root of every error cpython-verify raises on purpose.

    ``str(error)`` is a single line meant for the user; ``exit_code`` is what the CLI exits with.
    """

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str) -> None:
        # Keep the message to one line: the CLI prints it as is, and multi-line causes are noise.
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        """The one-line message."""
        return str(self.args[0])


class VerificationFailed(VerifyError):
    """The evidence says no: a bad signature, a digest mismatch, a wrong version, a hostile archive."""

    exit_code = EXIT_FAILED


class NothingToDo(VerificationFailed):
    """A command found nothing to check or do (no release, no job, no attestation): never a silent
    empty success, always one line and exit 1."""


class OperationalError(VerifyError):
    """The tool could not reach a verdict: network trouble, missing tools, bad arguments."""

    exit_code = EXIT_ERROR


class RecipeError(OperationalError):
    """A recipe file is missing, malformed, or has unknown keys."""


class VersionError(OperationalError):
    """A version string is not a CPython release version."""


class FetchError(OperationalError):
    """A file could not be obtained from any configured source."""

    local: bool = False
    """The failure is a file on this machine (there, but unreadable), not a network location's."""


class LocalFileError(FetchError):
    """A release file in a local directory is there but cannot be read (permissions, a directory, I/O)."""

    local = True


class SignatureError(VerificationFailed):
    """A signature is missing, malformed, or does not verify against the pinned signer."""


class DigestMismatch(VerificationFailed):
    """Two independent sources disagree on a file's sha256."""


class UnsafeArchive(VerificationFailed):
    """A tarball tries to escape its directory, holds devices, or exceeds the size caps."""


class ToolMissing(OperationalError):
    """An external program the step needs is not installed."""

    def __init__(self, program: str, package: str) -> None:
        super().__init__(f"{program} is not installed; install the Debian package '{package}'")
        self.program = program
        self.package = package
