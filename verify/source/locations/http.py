"""The HTTP client every network source uses: retries, resume, size cap, redirect policy, streamed sha256.

Policy in one place:

* 404 and 410 mean "this location does not have the file": ``None``, never an error, never retried.
* Connection errors, resets, timeouts, truncated bodies, 408, 429 and 5xx are retried with exponential
  back-off. A retry after a partial body asks for the rest with ``Range`` (guarded by ``If-Range``, so
  a file replaced meanwhile is sent whole); a ``Content-Range`` that does not continue exactly where
  the data stopped, or a server that ignores ``Range``, discards the partial data and starts over.
* A body larger than the size cap, a redirect loop, too many redirects, a redirect from https to
  anything else, and other 4xx statuses are errors at once.
* A transfer slower than the speed floor for a whole window (curl's ``--speed-limit`` and
  ``--speed-time``: by default under 1 KiB/s for 30 s, a stall or a server that never answers
  included) is abandoned with :class:`TooSlow`, without a retry: a mirror that drips bytes would only
  drip them again, so the caller moves on to its next location, and the message names the measured rate.
* Every download also has an overall deadline besides the per-read timeout: a server that sends just
  above the floor cannot hold a download longer than the deadline either. The deadline covers every
  attempt and back-off, and scales with the bytes at stake (see :func:`download_deadline`); a caller
  may give its own.
* Bytes are taken as sent (no transparent gzip decoding): the digest is of the file the server holds.
* Downloads go into the cache's quarantine only once complete; the cache admits them under their digest
  only once they are verified (see :mod:`verify.source.locations.cache`).
"""

from __future__ import annotations

import re
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from verify import __version__
from verify.common.errors import FetchError
from verify.source.locations.cache import Cache
from verify.source.locations.progress import NoProgress, ProgressReporter, default_progress
from verify.source.models import FetchedFile

# requests and urllib3 are imported when the first request is made: a run that stays offline (``--from DIR
# --offline``) builds a client it never uses and should not pay for them. (``typing.TYPE_CHECKING``, not the
# bare name: this module's upper-case numbers are its budgets, each a row of docs/limits.md.)
if typing.TYPE_CHECKING:
    import requests

USER_AGENT = f"cpython-verify/{__version__} (reproducible-build verifier for CPython)"
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEADLINE_BASE_SECONDS = 120.0
"""The fixed part of a download's overall deadline: connecting, redirects, a retry or two."""
MIN_THROUGHPUT_BYTES_PER_SECOND = 32 * 1024
"""The slowest transfer rate a download may average; the deadline grants this rate for the bytes at
stake (a 22 MB tarball gets about 12 minutes, the 200 MB cap about 1 h 50 min)."""
SPEED_FLOOR_BYTES_PER_SECOND = 1024
"""The speed floor: a transfer that averages less than this over a whole :data:`SPEED_WINDOW_SECONDS`
is abandoned for the next location (a 22 MB tarball at the floor would still take over 6 hours)."""
SPEED_WINDOW_SECONDS = 30.0
"""How long a transfer may stay below the speed floor: long enough for a congested link to recover,
short enough that a mirror dripping one byte per second costs half a minute, not the whole deadline."""
_CHUNK = 256 * 1024
_NOT_HERE = frozenset({404, 410})
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Limits and timeouts for every request."""

    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    """Seconds without a single byte arriving before the attempt is abandoned."""
    attempts: int = 5
    """Total attempts per file, the first included."""
    backoff: float = 0.5
    """Delay before the second attempt; doubles for each further one."""
    backoff_max: float = 16.0
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = 5
    deadline_base: float = DEADLINE_BASE_SECONDS
    min_throughput: int = MIN_THROUGHPUT_BYTES_PER_SECOND
    speed_floor: int = SPEED_FLOOR_BYTES_PER_SECOND
    """Bytes per second a transfer must average over each ``speed_window``; 0 turns the check off."""
    speed_window: float = SPEED_WINDOW_SECONDS
    """Seconds a transfer may stay below ``speed_floor`` before its location is abandoned."""
    ca_bundle: Path | None = None
    """A CA bundle to trust instead of the default (a private mirror's own CA)."""


class Sink(Protocol):
    """Where a transfer writes: a cache entry (:class:`~verify.source.locations.cache.PendingEntry`) or memory.

    ``reset`` is called when the partial data must be thrown away (a resume the server did not honour).
    """

    size: int

    def write(self, data: bytes) -> None: ...

    def reset(self) -> None: ...


class _MemorySink:
    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self.size += len(data)

    def reset(self) -> None:
        self._parts = []
        self.size = 0

    def value(self) -> bytes:
        return b"".join(self._parts)


class BodyTooLarge(FetchError):
    """The server announced or sent more bytes than the size cap allows."""


class DeadlineExceeded(FetchError):
    """A download did not finish within its overall deadline (however steadily bytes arrived)."""


class TooSlow(FetchError):
    """A transfer stayed below the speed floor for a whole window: its location is abandoned, not retried."""


def format_rate(bytes_per_second: float) -> str:
    """``12 B/s``, ``3.4 KiB/s``, ``1.2 MiB/s``: a rate as a note shows it."""
    if bytes_per_second < 1024:
        return f"{bytes_per_second:.0f} B/s"
    if bytes_per_second < 1024 * 1024:
        return f"{bytes_per_second / 1024:.1f} KiB/s"
    return f"{bytes_per_second / (1024 * 1024):.1f} MiB/s"


class _SpeedMeter:
    """curl's low-speed check for one attempt's body: fewer than ``floor * window`` bytes since the
    last mark, once ``window`` seconds have passed since it, is too slow. The mark moves forward each
    time that many bytes have arrived, so a fast start does not excuse a slow finish."""

    def __init__(self, url: str, settings: HttpSettings, received: int) -> None:
        self._url = url
        self._floor = max(settings.speed_floor, 0)
        self._window = settings.speed_window
        self._mark_time = time.monotonic()
        self._mark_bytes = received

    def remaining(self) -> float:
        """Seconds until the current window ends (infinite when the check is off)."""
        if not self._floor:
            return float("inf")
        return max(self._window - (time.monotonic() - self._mark_time), 0.0)

    def check(self, received: int) -> None:
        """Move the mark after enough bytes; raise :class:`TooSlow` when a whole window was below the floor."""
        if not self._floor:
            return
        now = time.monotonic()
        if received - self._mark_bytes >= self._floor * self._window:
            self._mark_time, self._mark_bytes = now, received
            return
        elapsed = now - self._mark_time
        if elapsed >= self._window:
            got = received - self._mark_bytes
            raise TooSlow(
                f"{self._url}: slower than the speed floor of {format_rate(self._floor)} for {self._window:g} s "
                f"(measured {format_rate(got / elapsed)}: {got} bytes in the last {elapsed:.1f} s, "
                f"{received} received in all); this location is abandoned"
            )


def download_deadline(size: int, settings: HttpSettings) -> float:
    """Seconds a download of ``size`` bytes may take in all: the base plus ``size`` at the minimum
    throughput."""
    return settings.deadline_base + size / max(settings.min_throughput, 1)


class _Clock:
    """The deadline of one download: a fixed end when given, else one that tightens to the announced
    size once the server states it."""

    def __init__(self, url: str, seconds: float | None, cap: int, settings: HttpSettings) -> None:
        self._url = url
        self._settings = settings
        self._fixed = seconds is not None
        self.started = time.monotonic()
        self.seconds = seconds if seconds is not None else download_deadline(cap, settings)

    def announced(self, total: int) -> None:
        """The server says the file has ``total`` bytes: an automatic deadline is fitted to that."""
        if not self._fixed:
            self.seconds = min(self.seconds, download_deadline(total, self._settings))

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(self.seconds - (time.monotonic() - self.started), 0.0)

    def check(self, received: int | None = None) -> None:
        """Raise :class:`DeadlineExceeded` once the deadline has passed."""
        if self.remaining() <= 0:
            got = "" if received is None else f" ({received} bytes received)"
            raise DeadlineExceeded(
                f"{self._url}: not complete after the download deadline of {self.seconds:.1f} s{got}"
            )


class _Transient(Exception):
    """A failure worth another attempt; carries a one-line description."""


def check_redirect(source: str, target: str) -> None:
    """Refuse a redirect that leaves http(s) or downgrades https to anything else."""
    old, new = urlsplit(source).scheme.lower(), urlsplit(target).scheme.lower()
    if new not in ("http", "https"):
        raise FetchError(f"{source}: redirected to a non-HTTP URL {target}")
    if old == "https" and new != "https":
        raise FetchError(f"{source}: refused redirect from https to {new}: {target}")


def parse_content_range(value: str) -> tuple[int, int, int | None] | None:
    """``bytes START-END/TOTAL`` as (start, end, total or None); None when malformed."""
    match = _CONTENT_RANGE_RE.match(value.strip())
    if match is None:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    if end < start or (total is not None and end >= total):
        return None
    return start, end, total


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        raise _Transient(f"malformed Content-Length {value!r}")
    return int(value)


def _describe(exc: BaseException) -> str:
    """A short cause for a requests/urllib3 failure (their messages nest reprs several levels deep)."""
    text = str(exc)
    for pattern, name in (
        (r"timed out", "timed out"),
        (r"Connection reset|ECONNRESET|Errno 104", "connection reset"),
        (r"Connection refused|Errno 111", "connection refused"),
        (r"IncompleteRead|Connection broken|prematurely", "connection closed mid-body"),
        (r"Name or service not known|Temporary failure in name resolution|nodename", "host name not resolved"),
        (r"Network is unreachable|Errno 101", "network unreachable"),
    ):
        if re.search(pattern, text):
            return name
    return type(exc).__name__


class HttpClient:
    """Downloads files over HTTP(S) into the cache, or small documents into memory."""

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        progress: ProgressReporter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or HttpSettings()
        self._progress = progress if progress is not None else default_progress()
        self._sleep = sleep
        self._unreachable: dict[str, str] = {}
        """Hosts no attempt reached in this client's life, with the last problem met."""
        self._opened: requests.Session | None = None

    @classmethod
    def quiet(cls, settings: HttpSettings | None = None) -> HttpClient:
        """A client that never draws a progress bar."""
        return cls(settings, progress=NoProgress())

    @property
    def _session(self) -> requests.Session:
        """The connection pool, made on first use."""
        if self._opened is None:
            import requests

            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            # Ask for the bytes as stored: a server that gzips a .tgz on the fly would change the digest.
            session.headers["Accept-Encoding"] = "identity"
            self._opened = session
        return self._opened

    def close(self) -> None:
        """Close pooled connections."""
        if self._opened is not None:
            self._opened.close()

    def download(
        self,
        url: str,
        cache: Cache,
        *,
        name: str | None = None,
        max_bytes: int | None = None,
        deadline: float | None = None,
    ) -> FetchedFile | None:
        """Download ``url`` into ``cache``'s quarantine; ``None`` when the server says it does not have
        it (404/410).

        ``name`` is the file name recorded in the result (default: the URL's last path segment).
        The file is not in the cache proper until :meth:`Cache.admit` is called for it.
        Raises :class:`FetchError` when the file exists but cannot be obtained whole.
        """
        with cache.pending() as entry:
            final_url = self.fetch_into(url, entry, name=name, max_bytes=max_bytes, deadline=deadline)
            if final_url is None:
                return None
            label = name or _label(url)
            size, digest = entry.size, entry.sha256
            path = entry.commit()
        return FetchedFile(name=label, path=path, sha256=digest, size=size, origin=final_url)

    def get_bytes(self, url: str, *, max_bytes: int | None = None, deadline: float | None = None) -> bytes | None:
        """The body of ``url`` in memory (indexes, metadata); ``None`` on 404/410."""
        sink = _MemorySink()
        if self.fetch_into(url, sink, max_bytes=max_bytes, deadline=deadline) is None:
            return None
        return sink.value()

    def fetch_into(
        self,
        url: str,
        sink: Sink,
        *,
        name: str | None = None,
        max_bytes: int | None = None,
        deadline: float | None = None,
    ) -> str | None:
        """Fill ``sink`` with the body of ``url`` under the policy above; return the final URL (after
        redirects), or ``None`` when the server says it does not have the file (404/410).

        ``deadline`` is the overall time allowed in seconds, every attempt included (default:
        :func:`download_deadline` of the announced size, or of the size cap while none is announced).
        Raises :class:`BodyTooLarge` over the size cap (``max_bytes``, default the settings' cap),
        :class:`DeadlineExceeded` past the deadline, and :class:`FetchError` when the file exists but
        cannot be obtained whole.
        """
        cap = max_bytes if max_bytes is not None else self.settings.max_bytes
        clock = _Clock(url, deadline, cap, self.settings)
        return self._transfer(url, sink, cap, name or _label(url), clock)

    def _transfer(self, url: str, sink: Sink, max_bytes: int, label: str, clock: _Clock) -> str | None:
        """Fill ``sink`` with the body of ``url``; return the final URL, or None when not there."""
        settings = self.settings
        host = urlsplit(url).netloc
        unreachable = self._unreachable.get(host)
        if unreachable is not None:
            raise FetchError(f"{url}: {unreachable} (every attempt at {host} failed earlier in this run; not retried)")
        validator: str | None = None
        problem = ""
        answered = False
        for attempt in range(1, max(settings.attempts, 1) + 1):
            if attempt > 1:
                self._sleep(min(settings.backoff * 2 ** (attempt - 2), settings.backoff_max, clock.remaining()))
            clock.check(sink.size)
            headers: dict[str, str] = {}
            if sink.size:
                headers["Range"] = f"bytes={sink.size}-"
                if validator:
                    headers["If-Range"] = validator
            try:
                response, final_url = self._open(url, headers, clock)
            except _Transient as exc:
                problem = str(exc)
                continue
            answered = True
            with response:
                status = response.status_code
                if status in _NOT_HERE:
                    sink.reset()
                    return None
                if status in _RETRYABLE:
                    problem = f"HTTP {status} {response.reason or ''}".strip()
                    continue
                if status == 416 and sink.size:
                    sink.reset()
                    problem = "server refused to resume (HTTP 416)"
                    continue
                if status not in (200, 206):
                    raise FetchError(f"{url}: HTTP {status} {response.reason or ''}".strip())
                try:
                    total = self._expected_total(url, response, sink)
                    if total is not None and total > max_bytes:
                        raise BodyTooLarge(f"{url}: {total} bytes is over the size cap of {max_bytes} bytes")
                    if total is not None:
                        clock.announced(total)
                    validator = _strong_validator(response) or validator
                    self._read_body(url, response, sink, max_bytes, label, total, clock)
                except _Transient as exc:
                    problem = str(exc)
                    continue
            return final_url
        if not answered:
            # No attempt got an answer (name not resolved, refused, unreachable): the host's other files
            # would spend the same back-off for the same failure, so this run does not try it again.
            self._unreachable[host] = problem
        raise FetchError(f"{url}: {problem} (gave up after {settings.attempts} attempts)")

    def _expected_total(self, url: str, response: requests.Response, sink: Sink) -> int | None:
        """The whole file's size if the response says so; restarts the sink when the response
        does not continue exactly where the partial data ends."""
        length = _content_length(response)
        if response.status_code == 200:
            if sink.size:
                # The server ignored Range (or If-Range saw a changed file): it sends everything.
                sink.reset()
                self._progress.restart()
            return length
        header = response.headers.get("Content-Range", "")
        parsed = parse_content_range(header)
        if parsed is None or not sink.size or parsed[0] != sink.size:
            sink.reset()
            raise _Transient(f"unusable Content-Range {header!r} for a resume at byte {sink.size}")
        start, end, total = parsed
        if length is not None and length != end - start + 1:
            sink.reset()
            raise _Transient(f"Content-Length {length} contradicts Content-Range {header!r}")
        return total

    def _read_body(
        self,
        url: str,
        response: requests.Response,
        sink: Sink,
        max_bytes: int,
        label: str,
        total: int | None,
        clock: _Clock,
    ) -> None:
        import requests  # loaded by now: a response exists
        import urllib3

        self._progress.start(label, total, sink.size)
        meter = _SpeedMeter(url, self.settings, sink.size)
        try:
            # read1 without decoding: the bytes on the wire are the file's bytes, and each chunk is
            # whatever has arrived (so a stall after N bytes leaves exactly N bytes to resume from).
            while True:
                clock.check(sink.size)
                meter.check(sink.size)
                self._limit_next_read(response, clock, meter)
                chunk = response.raw.read1(_CHUNK, decode_content=False)
                if not chunk:
                    break
                sink.write(chunk)
                self._progress.advance(len(chunk))
                if sink.size > max_bytes:
                    raise BodyTooLarge(f"{url}: body exceeds the size cap of {max_bytes} bytes")
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            clock.check(sink.size)  # a read cut short by the deadline is the deadline's failure
            meter.check(sink.size)  # and one cut short at the end of a slow window is the speed floor's
            raise _Transient(f"{_describe(exc)} after {sink.size} bytes") from None
        finally:
            self._progress.finish()
        if total is not None and sink.size != total:
            if sink.size > total:
                sink.reset()
            raise _Transient(f"body ended after {sink.size} of {total} bytes")

    def _limit_next_read(self, response: requests.Response, clock: _Clock, meter: _SpeedMeter) -> None:
        """Cut the socket's timeout to what is left of the deadline and of the speed window, so a stall
        near the end of either cannot outlast it by a whole read timeout."""
        connection = response.raw.connection
        sock = getattr(connection, "sock", None) if connection is not None else None
        if sock is not None:
            # A hair past the window's end, so the check after the timeout sees the window complete.
            window_left = meter.remaining() + 0.01
            sock.settimeout(max(min(self.settings.read_timeout, clock.remaining(), window_left), 0.001))

    def _open(self, url: str, headers: dict[str, str], clock: _Clock) -> tuple[requests.Response, str]:
        """GET ``url`` following redirects under the redirect policy; return the response and its URL."""
        import requests
        import urllib3

        settings = self.settings
        current = url
        seen = {url}
        # Waiting for an answer is 0 B/s too: a server that accepts the connection and never answers
        # (a dead mirror) is below the speed floor once a whole window has passed.
        window = settings.speed_window if settings.speed_floor > 0 else float("inf")
        for _ in range(settings.max_redirects + 1):
            clock.check()
            left = max(clock.remaining(), 0.001)
            answer_wait = min(settings.read_timeout, left, window)
            try:
                response = self._session.get(
                    current,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=(min(settings.connect_timeout, left), answer_wait),
                    verify=str(settings.ca_bundle) if settings.ca_bundle else True,
                )
            except requests.exceptions.SSLError as exc:
                raise FetchError(f"{url}: TLS failure: {_describe(exc)}") from None
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
                raise FetchError(f"{url}: invalid URL ({type(exc).__name__})") from None
            except requests.exceptions.InvalidSchema:
                raise FetchError(f"{url}: unsupported URL scheme") from None
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                clock.check()
                if isinstance(exc, requests.exceptions.ReadTimeout) and answer_wait == window:
                    raise TooSlow(
                        f"{current}: no answer in {window:g} s, below the speed floor of "
                        f"{format_rate(settings.speed_floor)}; this location is abandoned"
                    ) from None
                raise _Transient(_describe(exc)) from None
            if not response.is_redirect:
                return response, current
            target = urljoin(current, response.headers["Location"])
            response.close()
            check_redirect(current, target)
            if target in seen:
                raise FetchError(f"{url}: redirect loop at {target}")
            seen.add(target)
            current = target
        raise FetchError(f"{url}: more than {settings.max_redirects} redirects")


def _label(url: str) -> str:
    """What a progress bar calls a download: the URL's last path segment."""
    return urlsplit(url).path.rsplit("/", 1)[-1] or url


def _strong_validator(response: requests.Response) -> str | None:
    """An ETag usable in If-Range (weak ones are not allowed there), else Last-Modified."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")
