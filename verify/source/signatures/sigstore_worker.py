"""The Sigstore check in a Python process of its own, so that it runs beside the rest of a source verification.

sigstore-python's import and its trust root are most of a ``source`` run's CPU time, and all of it is Python
code holding the GIL: in a thread of the main process it takes turns with the copy, the archive read and the
OpenPGP check instead of running beside them. :class:`SigstoreWorker` starts a second process (a fork of this
one, or a new interpreter) that imports sigstore-python and loads the trust root at once, then waits on its
standard input for one request: the
tarball's sha256 (taken by the main process while it copied the bytes into the cache), the bundle's bytes and
the recipe's identity and issuer. It answers with the evidence :func:`verify_sigstore` gives, the same
function, policy and messages as a check in the main process.

The worker is trusted as much as the main process (it is the same code), but its answer is still read
strictly: anything but one well-formed answer (a worker that crashed, was killed, or wrote something else) is
an :class:`~verify.common.errors.OperationalError`, one line, never evidence. A worker never asked (no bundle
to check) is killed; one whose parent dies reads the end of its standard input and exits.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final, NoReturn

from verify.common import faults
from verify.common.errors import OperationalError
from verify.source.models import CheckStatus, SignatureEvidence, SignatureKind
from verify.source.recipes import SigstorePolicy

_MODULE: Final = "verify.source.signatures.sigstore_worker"
# The child imports exactly the modules the parent would: the parent's sys.path, not the working directory's
# packages (-P keeps the working directory off sys.path before the bootstrap replaces it).
_BOOTSTRAP: Final = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    f"from {_MODULE} import serve; serve(offline=sys.argv[2] == 'offline')"
)
_ERROR_TRUST_ROOT: Final = "trust-root"
_ERROR_OPERATIONAL: Final = "operational"
_STDERR_TAIL: Final = 240
_ERRORS_MAX_BYTES: Final = 64 * 1024


class SigstoreWorkerError(OperationalError):
    """The worker process died, was killed, or answered something that is not an answer."""


@dataclass(frozen=True, slots=True)
class SigstoreRequest:
    """What the worker checks: a bundle over a sha256, against a recipe's identity and issuer."""

    sha256: str
    bundle: bytes
    identity: str
    issuer: str

    def encode(self) -> bytes:
        """The request as the worker reads it on its standard input."""
        document = {
            "sha256": self.sha256,
            "bundle": base64.b64encode(self.bundle).decode("ascii"),
            "identity": self.identity,
            "issuer": self.issuer,
        }
        return json.dumps(document).encode()

    @classmethod
    def decode(cls, raw: bytes) -> SigstoreRequest:
        """The request :meth:`encode` wrote; raises ValueError for anything else."""
        document = json.loads(raw)
        if not isinstance(document, dict) or set(document) != {"sha256", "bundle", "identity", "issuer"}:
            raise ValueError("not a Sigstore check request")
        if not all(isinstance(value, str) for value in document.values()):
            raise ValueError("not a Sigstore check request")
        try:
            bundle = base64.b64decode(document["bundle"], validate=True)
        except binascii.Error as error:
            raise ValueError(f"bundle is not base64: {error}") from None
        return cls(sha256=document["sha256"], bundle=bundle, identity=document["identity"], issuer=document["issuer"])


def encode_evidence(evidence: SignatureEvidence) -> dict[str, Any]:
    """The fields of Sigstore ``evidence`` the worker answers with (the parent adds where the bundle came from)."""
    return {
        "status": evidence.status.value,
        "detail": evidence.detail,
        "signer": evidence.signer,
        "signer_name": evidence.signer_name,
        "signed_at": evidence.signed_at.isoformat() if evidence.signed_at else None,
        "notes": list(evidence.notes),
    }


def decode_answer(raw: bytes, policy: SigstorePolicy, bundle_origin: str | None) -> SignatureEvidence:
    """The evidence in the worker's answer ``raw``.

    Raises :class:`~verify.source.signatures.sigstore.SigstoreTrustRootError` or :class:`OperationalError`
    for an error the worker reported, and :class:`SigstoreWorkerError` for anything that is not exactly one
    answer of the expected shape; a VERIFIED answer must name the policy's identity and issuer.
    """
    from verify.source.signatures.sigstore import SigstoreTrustRootError

    try:
        document = json.loads(raw)
    except ValueError:
        raise SigstoreWorkerError(f"the Sigstore worker's answer is not JSON: {_shorten(raw)}") from None
    if isinstance(document, dict) and set(document) == {"error", "message"} and isinstance(document["message"], str):
        if document["error"] == _ERROR_TRUST_ROOT:
            raise SigstoreTrustRootError(document["message"])
        if document["error"] == _ERROR_OPERATIONAL:
            raise OperationalError(document["message"])
    try:
        evidence = _evidence(document, bundle_origin)
    except (KeyError, TypeError, ValueError) as problem:
        raise SigstoreWorkerError(f"the Sigstore worker's answer is malformed ({problem}): {_shorten(raw)}") from None
    if evidence.status is CheckStatus.VERIFIED and (evidence.signer, evidence.signer_name) != (
        policy.identity,
        policy.issuer,
    ):
        raise SigstoreWorkerError(
            f"the Sigstore worker answered verified for {evidence.signer} ({evidence.signer_name}), "
            f"not the recipe's {policy.identity} ({policy.issuer})"
        )
    return evidence


def _evidence(document: Any, bundle_origin: str | None) -> SignatureEvidence:
    fields = {"status", "detail", "signer", "signer_name", "signed_at", "notes"}
    if not isinstance(document, dict) or set(document) != fields:
        raise ValueError("unexpected fields")
    texts = [document[name] for name in ("detail", "signer", "signer_name", "signed_at")]
    notes = document["notes"]
    if not isinstance(texts[0], str) or any(value is not None and not isinstance(value, str) for value in texts):
        raise TypeError("a field is not a string")
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise TypeError("notes are not a list of strings")
    status = CheckStatus(document["status"])
    if status not in (CheckStatus.VERIFIED, CheckStatus.FAILED):
        raise ValueError(f"status {status.value!r} is not a check's outcome")
    signed_at = datetime.fromisoformat(document["signed_at"]) if document["signed_at"] else None
    if signed_at is not None and signed_at.utcoffset() is None:
        raise ValueError("signed_at has no time zone")
    return SignatureEvidence(
        kind=SignatureKind.SIGSTORE,
        status=status,
        detail=document["detail"],
        signer=document["signer"],
        signer_name=document["signer_name"],
        signed_at=signed_at,
        signature_origin=bundle_origin,
        notes=tuple(notes),
    )


def _shorten(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    if not text:
        return "nothing"
    return text if len(text) <= _STDERR_TAIL else text[: _STDERR_TAIL - 1] + "…"


class SigstoreWorker:
    """Sigstore checks in a separate process (see the module's docstring).

    With ``preload`` the first process starts at once, so sigstore-python's import and trust root load
    while the caller fetches and hashes; otherwise each :meth:`check` starts its own. ``offline``: the
    trust root sigstore-python ships or last cached; otherwise a TUF refresh first. ``command`` replaces
    the worker's command line (tests: a process that dies or says something else). Call :meth:`close`
    (or use it as a context manager) to stop a worker that was never asked; an unclosed one is stopped
    when this object is collected.
    """

    def __init__(self, *, offline: bool = True, preload: bool = True, command: Sequence[str] | None = None) -> None:
        """Start the first worker now when ``preload``."""
        self._offline = offline
        self._command = list(command) if command is not None else None
        self._lock = threading.Lock()
        self._ready: _Worker | None = None
        self._closed = False
        if preload:
            self._ready = self._start()

    def _start(self) -> _Worker:
        worker = _Worker.start(self._offline, self._command)
        weakref.finalize(self, worker.stop)
        return worker

    def check(
        self, sha256: str, bundle: bytes, policy: SigstorePolicy, *, bundle_origin: str | None = None
    ) -> SignatureEvidence:
        """What :func:`~verify.source.signatures.sigstore.verify_sigstore` says of ``bundle`` over the file
        whose sha256 is ``sha256`` under ``policy``, established in a worker process.

        Raises :class:`SigstoreTrustRootError` when the trust root cannot be loaded and
        :class:`SigstoreWorkerError` when the worker gives no well-formed answer.
        """
        with self._lock:
            if self._closed:
                raise SigstoreWorkerError("the Sigstore worker was already stopped")
            worker, self._ready = self._ready, None
        if worker is None:
            worker = self._start()
        request = SigstoreRequest(sha256=sha256, bundle=bundle, identity=policy.identity, issuer=policy.issuer)
        returncode, answer, errors = worker.ask(request.encode())
        if returncode != 0:
            ended = _how_it_ended(returncode, errors)
            raise SigstoreWorkerError(f"the Sigstore check's worker process {ended}")
        return decode_answer(answer, policy, bundle_origin)

    def close(self) -> None:
        """Stop a worker that was started and never asked; later checks are refused."""
        with self._lock:
            self._closed = True
            worker, self._ready = self._ready, None
        if worker is not None:
            worker.stop()

    def __enter__(self) -> SigstoreWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Worker:
    """One worker process: a fork of this process, or a new interpreter.

    A fork shares every module this process has imported (pydantic, the recipe models), so it pays only for
    sigstore-python's own import: a fifth of a second less CPU than a new interpreter. A process with other
    threads is never forked (a lock one of them holds would stay held in the child forever); it starts a
    new interpreter instead, as it does for ``command``. Either way the worker reads its request on fd 0,
    answers on fd 1 and writes why it failed to an unnamed file, so that it never blocks on a pipe nobody
    reads; it leads a process group of its own, so a Ctrl-C in the terminal reaches only cpython-verify,
    which stops it.
    """

    def __init__(
        self, pid: int | None, popen: subprocess.Popen[bytes] | None, request: int, answer: int, errors: IO[bytes]
    ) -> None:
        self._pid = pid
        self._popen = popen
        self._request = request
        self._answer = answer
        self._errors = errors
        self.returncode: int | None = None

    @classmethod
    def start(cls, offline: bool, command: Sequence[str] | None) -> _Worker:
        try:
            errors = tempfile.TemporaryFile()  # noqa: SIM115 - the worker object owns it and closes it in stop()
            request_read, request_write = os.pipe()
            answer_read, answer_write = os.pipe()
        except OSError as error:
            raise SigstoreWorkerError(f"cannot start the Sigstore worker: {error.strerror}") from None
        try:
            if command is None and threading.active_count() == 1:
                pid = os.fork()
                if pid == 0:
                    _run_forked((request_read, answer_write, errors.fileno()), (request_write, answer_read), offline)
                return cls(pid, None, request_write, answer_read, errors)
            argv = command or [
                sys.executable,
                "-P",
                "-c",
                _BOOTSTRAP,
                json.dumps(sys.path),
                "offline" if offline else "online",
            ]
            popen = subprocess.Popen(argv, stdin=request_read, stdout=answer_write, stderr=errors, process_group=0)
            return cls(None, popen, request_write, answer_read, errors)
        except OSError as error:
            for descriptor in (request_write, answer_read):
                os.close(descriptor)
            errors.close()
            raise SigstoreWorkerError(f"cannot start the Sigstore worker: {error.strerror}") from None
        finally:
            # The child's ends: held by the child alone, so that it sees the end of the request when this
            # process closes (or loses) its end, and this process sees the end of the answer when it exits.
            os.close(request_read)
            os.close(answer_write)

    def ask(self, request: bytes) -> tuple[int, bytes, bytes]:
        """Send ``request``, read the answer to its end, reap the worker: (exit status, answer, last words)."""
        try:
            with contextlib.suppress(BrokenPipeError):  # a worker that died unasked: its status says why
                _write_all(self._request, request)
            os.close(self._request)
            self._request = -1
            answer = _read_all(self._answer)
            returncode = self._wait()
            self._errors.seek(0)
            errors = self._errors.read(_ERRORS_MAX_BYTES)
        finally:
            self.stop()
        return returncode, answer, errors

    def stop(self) -> None:
        """Kill the worker if it still runs, reap it and close its pipes (it keeps nothing worth a graceful stop)."""
        if self.returncode is None:
            if self._popen is not None:
                self._popen.kill()
            else:
                with contextlib.suppress(ProcessLookupError):
                    assert self._pid is not None
                    os.kill(self._pid, signal.SIGKILL)
            self._wait()
        for descriptor in (self._request, self._answer):
            if descriptor >= 0:
                os.close(descriptor)
        self._request = self._answer = -1
        self._errors.close()

    def _wait(self) -> int:
        if self.returncode is None:
            if self._popen is not None:
                self.returncode = self._popen.wait()
            else:
                assert self._pid is not None
                _, status = os.waitpid(self._pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _how_it_ended(returncode: int, errors: bytes) -> str:
    if returncode < 0:
        from verify.common.interrupts import signal_name

        ended = f"was killed by {signal_name(-returncode)}"
    else:
        ended = f"exited with status {returncode}"
    lines = errors.decode("utf-8", "replace").strip().splitlines()
    return f"{ended}: {_shorten(lines[-1].encode())}" if lines else f"{ended} without an answer"


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _read_all(descriptor: int) -> bytes:
    parts = []
    while chunk := os.read(descriptor, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def _run_forked(own: tuple[int, int, int], parents: tuple[int, int], offline: bool) -> NoReturn:
    """The forked child: put its request, answer and errors on fd 0, 1 and 2, drop the parent's ends of the
    pipes, and serve; it never returns into the parent's frames, whatever happens."""
    try:
        os.setpgid(0, 0)
        from verify.common.interrupts import INTERRUPT_SIGNALS

        for signum in INTERRUPT_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        for descriptor in parents:
            os.close(descriptor)
        for descriptor, target in zip(own, (0, 1, 2), strict=True):
            os.dup2(descriptor, target)
            os.close(descriptor)
    except BaseException:  # noqa: BLE001 - a child that cannot set itself up exits 1; nothing may unwind
        os._exit(1)
    serve(offline=offline)


def serve(*, offline: bool) -> NoReturn:
    """The worker's side: load the trust root, then answer the one request on fd 0 on fd 1, and exit.

    An end of input without a request (the parent needed no check, or died) ends the worker quietly.
    Anything that goes wrong is one line on fd 2 and exit status 1. The worker reads and writes its
    descriptors, not ``sys.stdin``/``sys.stdout``: a forked worker inherits the parent's stream objects,
    buffered bytes included, which are the parent's to write.
    """
    # A short life with a bounded amount of work: collecting garbage would only cost time (most of it
    # while sigstore-python's modules are imported).
    gc.disable()
    try:
        answer = _answer(offline)
        if answer is not None:
            _write_all(1, answer)
    except BaseException as error:  # noqa: BLE001 - one line for the parent, whatever it was, never a traceback
        with contextlib.suppress(OSError):
            _write_all(2, f"{type(error).__name__}: {error}".encode("utf-8", "replace")[:_ERRORS_MAX_BYTES])
        os._exit(1)
    # Nothing is left to clean up (no file was written), and tearing down the interpreter with
    # sigstore-python's modules loaded costs a tenth of a second the parent would wait for; a forked
    # worker must never run the parent's exit handlers either.
    os._exit(0)


def _answer(offline: bool) -> bytes | None:
    import logging

    # As in the CLI: sigstore/tuf log routine progress at WARNING; the parent reports what was checked.
    for noisy in ("sigstore", "tuf"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    from verify.source.signatures.sigstore import SigstoreTrustRootError, load_verifier, verify_sigstore

    loaded: Any = None
    load_error: SigstoreTrustRootError | None = None
    try:
        loaded = load_verifier(offline=offline)
    except SigstoreTrustRootError as error:
        load_error = error  # raised where a check would have raised it: after the bundle is read

    def verifier() -> Any:
        if load_error is not None:
            raise load_error
        return loaded

    raw = _read_all(0)
    if not raw:
        return None
    request = SigstoreRequest.decode(raw)
    faults.reached("sigstore-worker")
    policy = SigstorePolicy(identity=request.identity, issuer=request.issuer, since=None)
    try:
        evidence = verify_sigstore(request.sha256, request.bundle, policy, verifier=verifier)
    except SigstoreTrustRootError as error:
        answer: dict[str, Any] = {"error": _ERROR_TRUST_ROOT, "message": error.message}
    except OperationalError as error:
        answer = {"error": _ERROR_OPERATIONAL, "message": error.message}
    else:
        answer = encode_evidence(evidence)
    return json.dumps(answer).encode()
