"""A real HTTP/1.1 server on 127.0.0.1 for tests, with per-path fault injection.

It serves a directory (e.g. python.org's ``/ftp/python/<version>/`` layout built from the real
fixture files) plus in-memory files, honours ``Range`` and ``If-Range`` like a good server, and can be
told to misbehave for the next N requests of a path, or for every request:

    with FaultyServer(root) as server:
        server.fail("/ftp/python/3.13.5/Python-3.13.5.tar.xz", Fault(status=500), Fault(reset_after=4096))
        server.always("/loop", Fault(status=302, location="/loop"))
        url = server.url + "/ftp/python/3.13.5/Python-3.13.5.tar.xz"

Every request is recorded (path and headers) in ``server.requests``.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import struct
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Fault:
    """One way to misbehave on one request. Fields combine (e.g. a delay and a reset)."""

    status: int | None = None
    """Answer with this status and no body (with ``location`` for redirects)."""
    location: str | None = None
    delay: float = 0.0
    """Seconds to wait before sending the status line (a slow server)."""
    reset_after: int | None = None
    """Send the headers and this many body bytes, then reset the connection (TCP RST)."""
    short_by: int | None = None
    """Announce the full Content-Length but send this many bytes fewer, then close."""
    content_length: int | None = None
    """Announce this Content-Length instead of the true one (the body is sent in full)."""
    stall_after: int | None = None
    """Send this many body bytes, then hang until the server stops."""
    ignore_range: bool = False
    """Answer a ``Range`` request with the whole file and 200 (allowed by RFC 9110, and common)."""
    content_range: str | None = None
    """Send this ``Content-Range`` instead of the true one (with a 206)."""
    no_length: bool = False
    """Send no Content-Length: the body ends when the connection closes (HTTP/1.0 style)."""
    drip: float | None = None
    """Send the body one byte every this many seconds (no read ever times out: only the speed floor or
    the deadline stops it)."""
    drip_after: int = 0
    """With ``drip``: send this many body bytes at once first (a fast start, then a slow finish)."""


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    path: str
    headers: dict[str, str]


@dataclass
class _State:
    root: Path | None
    files: dict[str, bytes] = field(default_factory=dict)
    once: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    every: dict[str, Fault] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self, path: str) -> Fault | None:
        with self.lock:
            queue = self.once.get(path)
            if queue:
                return queue.pop(0)
            return self.every.get(path)

    def body(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        if self.root is None:
            return None
        relative = Path(path.lstrip("/"))
        candidate = self.root / relative
        # Symbolic links (to the shared fixtures) are followed; ".." is not.
        if ".." in relative.parts or not candidate.is_file():
            return None
        return candidate.read_bytes()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""

    def do_GET(self) -> None:
        state = self.server.state
        path = unquote(urlsplit(self.path).path)
        with state.lock:
            state.requests.append(RecordedRequest(path, dict(self.headers.items())))
        fault = state.next_fault(path) or Fault()
        if fault.delay:
            state.stop.wait(fault.delay)
        if fault.status is not None:
            self.send_response(fault.status)
            if fault.location is not None:
                self.send_header("Location", fault.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = state.body(path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_body(body, fault)

    def _send_body(self, body: bytes, fault: Fault) -> None:
        etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
        start, status = 0, 200
        requested = _RANGE_RE.match(self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        if requested and not fault.ignore_range and (if_range is None or if_range == etag):
            start = int(requested.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        payload = body[start:]
        self.send_response(status)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206 or fault.content_range is not None:
            self.send_header("Content-Range", fault.content_range or f"bytes {start}-{len(body) - 1}/{len(body)}")
        announced = fault.content_length if fault.content_length is not None else len(payload)
        if fault.no_length:
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(announced))
        self.end_headers()
        if fault.reset_after is not None:
            self.wfile.write(payload[: fault.reset_after])
            self.wfile.flush()
            # Let the client drain its receive buffer first: an RST makes the kernel drop unread data.
            self.server.state.stop.wait(0.5)
            self._reset()
            return
        if fault.stall_after is not None:
            self.wfile.write(payload[: fault.stall_after])
            self.wfile.flush()
            self.server.state.stop.wait()
            self.close_connection = True
            return
        if fault.drip is not None:
            stop = self.server.state.stop
            if fault.drip_after:
                self.wfile.write(payload[: fault.drip_after])
                self.wfile.flush()
            for offset in range(fault.drip_after, len(payload)):
                try:
                    self.wfile.write(payload[offset : offset + 1])
                    self.wfile.flush()
                except OSError:
                    break  # the client gave up, as it should
                if stop.wait(fault.drip):
                    break
            self.close_connection = True
            return
        if fault.short_by is not None:
            self.wfile.write(payload[: max(len(payload) - fault.short_by, 0)])
            self.close_connection = True
            return
        self.wfile.write(payload)
        if fault.content_length is not None:
            self.close_connection = True  # the stream is out of step with the header

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: a real "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up mid-body (size cap, timeout) is expected in these tests, not noise."""


class FaultyServer:
    """The test server; use as a context manager. ``root`` is served at ``/``."""

    def __init__(self, root: Path | None = None, *, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: a server-side context, to serve https instead of http."""
        self._state = _State(root=root)
        self._server = _Server(self._state)
        self._scheme = "https" if tls else "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FaultyServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` or ``https://...`` (no trailing slash)."""
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far."""
        with self._state.lock:
            return list(self._state.requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """The requests received for one path."""
        return [request for request in self.requests if request.path == path]

    def add(self, path: str, body: bytes) -> None:
        """Serve ``body`` at ``path`` (in addition to the root directory)."""
        self._state.files[path] = body

    def fail(self, path: str, *faults: Fault) -> None:
        """Misbehave on the next ``len(faults)`` requests for ``path``, one fault each, then behave."""
        with self._state.lock:
            self._state.once[path].extend(faults)

    def always(self, path: str, fault: Fault) -> None:
        """Misbehave on every request for ``path`` (after any one-off faults)."""
        with self._state.lock:
            self._state.every[path] = fault

    def close(self) -> None:
        """Release stalled handlers and stop serving."""
        self._state.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
