"""The HTTP client against a real server on 127.0.0.1 serving the real release files, with faults."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from httpserver import Fault, FaultyServer

from verify.common.errors import EXIT_ERROR, FetchError
from verify.source.locations.cache import Cache
from verify.source.locations.http import (
    DEADLINE_BASE_SECONDS,
    DEFAULT_MAX_BYTES,
    MIN_THROUGHPUT_BYTES_PER_SECOND,
    SPEED_FLOOR_BYTES_PER_SECOND,
    SPEED_WINDOW_SECONDS,
    DeadlineExceeded,
    HttpClient,
    HttpSettings,
    TooSlow,
    check_redirect,
    download_deadline,
    parse_content_range,
)

TARBALL = "Python-3.13.5.tar.xz"
TARBALL_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
TARBALL_SIZE = 22_856_016
PATH = f"/ftp/python/3.13.5/{TARBALL}"
ASC_PATH = PATH + ".asc"


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def client(**overrides: object) -> HttpClient:
    """A quiet client with fast retries and short timeouts, so fault tests take milliseconds."""
    settings = HttpSettings(
        **{"connect_timeout": 2.0, "read_timeout": 2.0, "attempts": 3, "backoff": 0.01, **overrides}  # type: ignore[arg-type]
    )
    return HttpClient.quiet(settings)


def entries(cache: Cache) -> list[str]:
    """Everything the cache keeps: its entries and any file in a quarantine."""
    objects = cache.root / "sha256"
    kept = sorted(path.name for path in objects.iterdir()) if objects.is_dir() else []
    return kept + quarantined(cache)


def quarantined(cache: Cache) -> list[str]:
    """The files (complete or partial) in any quarantine of the cache (not the lock file beside each)."""
    return sorted(path.name for path in cache.quarantine_root.glob("*/**/*") if path.is_file())


def test_download_real_tarball(server: FaultyServer, cache: Cache) -> None:
    fetched = client().download(server.url + PATH, cache)
    assert fetched is not None
    assert (fetched.name, fetched.sha256, fetched.size) == (TARBALL, TARBALL_SHA256, TARBALL_SIZE)
    assert quarantined(cache) == [TARBALL_SHA256], "downloaded into the quarantine, not yet the cache"
    assert cache.lookup(TARBALL_SHA256) is None
    fetched = cache.admit(fetched)
    assert fetched.path == cache.root / "sha256" / TARBALL_SHA256
    assert cache.lookup(TARBALL_SHA256) == fetched.path
    assert hashlib.sha256(fetched.path.read_bytes()).hexdigest() == TARBALL_SHA256
    assert fetched.origin == server.url + PATH
    request = server.requests_for(PATH)[0]
    assert request.headers["User-Agent"].startswith("cpython-verify/")
    assert request.headers["Accept-Encoding"] == "identity"
    assert quarantined(cache) == [], "no temporary file is left behind"


def test_404_is_none_and_not_retried(server: FaultyServer, cache: Cache) -> None:
    assert client().download(server.url + "/ftp/python/3.13.5/Python-3.13.5.tgz", cache) is None
    assert len(server.requests_for("/ftp/python/3.13.5/Python-3.13.5.tgz")) == 1
    assert entries(cache) == []


def test_410_is_none(server: FaultyServer, cache: Cache) -> None:
    server.always(ASC_PATH, Fault(status=410))
    assert client().download(server.url + ASC_PATH, cache) is None


def test_500_then_success_is_retried(server: FaultyServer, cache: Cache) -> None:
    server.fail(ASC_PATH, Fault(status=500), Fault(status=503))
    delays: list[float] = []
    http = HttpClient(HttpSettings(attempts=3, backoff=0.25), progress=None, sleep=delays.append)
    fetched = http.download(server.url + ASC_PATH, cache)
    assert fetched is not None and fetched.size == 963
    assert len(server.requests_for(ASC_PATH)) == 3
    assert delays == [0.25, 0.5], "exponential back-off"


def test_persistent_500_is_a_one_line_error_naming_url_and_cause(server: FaultyServer, cache: Cache) -> None:
    server.always(ASC_PATH, Fault(status=500))
    with pytest.raises(FetchError) as caught:
        client().download(server.url + ASC_PATH, cache)
    message = caught.value.message
    assert server.url + ASC_PATH in message and "HTTP 500" in message and "3 attempts" in message
    assert "\n" not in message and caught.value.exit_code == EXIT_ERROR
    assert entries(cache) == []


def test_other_4xx_is_an_error_without_retry(server: FaultyServer, cache: Cache) -> None:
    server.always(ASC_PATH, Fault(status=403))
    with pytest.raises(FetchError, match="HTTP 403"):
        client().download(server.url + ASC_PATH, cache)
    assert len(server.requests_for(ASC_PATH)) == 1


def test_reset_mid_body_resumes_with_range(server: FaultyServer, cache: Cache) -> None:
    server.fail(PATH, Fault(reset_after=5_000_000))
    fetched = client().download(server.url + PATH, cache)
    assert fetched is not None and fetched.sha256 == TARBALL_SHA256
    first, second = server.requests_for(PATH)
    assert "Range" not in first.headers
    resumed_at = int(second.headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 5_000_000
    assert second.headers["If-Range"].startswith('"'), "the resume is guarded by the ETag"


def test_short_body_is_detected_and_resumed(server: FaultyServer, cache: Cache) -> None:
    server.fail(ASC_PATH, Fault(short_by=100))
    fetched = client().download(server.url + ASC_PATH, cache)
    assert fetched is not None and fetched.size == 963
    assert server.requests_for(ASC_PATH)[1].headers["Range"] == "bytes=863-"


def test_always_short_body_fails_naming_the_shortfall(server: FaultyServer, cache: Cache) -> None:
    server.always(ASC_PATH, Fault(short_by=100, ignore_range=True))
    with pytest.raises(FetchError, match=r"(body ended after 863 of 963 bytes|connection closed mid-body)"):
        client().download(server.url + ASC_PATH, cache)
    assert entries(cache) == []


def test_content_length_larger_than_body_is_detected(server: FaultyServer, cache: Cache) -> None:
    server.always(ASC_PATH, Fault(content_length=2000, ignore_range=True))
    with pytest.raises(FetchError, match=ASC_PATH):
        client().download(server.url + ASC_PATH, cache)
    assert entries(cache) == []


def test_server_ignoring_range_restarts_from_zero(server: FaultyServer, cache: Cache) -> None:
    server.fail(PATH, Fault(reset_after=3_000_000), Fault(ignore_range=True))
    fetched = client().download(server.url + PATH, cache)
    assert fetched is not None and (fetched.sha256, fetched.size) == (TARBALL_SHA256, TARBALL_SIZE)
    assert "Range" in server.requests_for(PATH)[1].headers


def test_wrong_content_range_restarts_from_zero(server: FaultyServer, cache: Cache) -> None:
    # The server answers the resume with bytes from the wrong offset: appending them would corrupt the file.
    server.fail(ASC_PATH, Fault(short_by=500), Fault(content_range="bytes 0-962/963"))
    fetched = client().download(server.url + ASC_PATH, cache)
    assert fetched is not None and fetched.size == 963
    assert fetched.sha256 == hashlib.sha256(server_file(server, ASC_PATH)).hexdigest()
    assert "Range" not in server.requests_for(ASC_PATH)[2].headers, "third attempt starts over"


def server_file(server: FaultyServer, path: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(server.url + path) as response:  # the reference bytes, fetched plainly
        body: bytes = response.read()
    return body


def test_slow_response_times_out_with_a_clear_error(server: FaultyServer, cache: Cache) -> None:
    server.always(ASC_PATH, Fault(delay=3.0))
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out .*2 attempts"):
        client(read_timeout=0.3, attempts=2).download(server.url + ASC_PATH, cache)
    assert time.monotonic() - start < 2.5


def test_stall_mid_body_times_out(server: FaultyServer, cache: Cache) -> None:
    server.always(ASC_PATH, Fault(stall_after=100))
    with pytest.raises(FetchError, match="timed out after 100 bytes"):
        client(read_timeout=0.3, attempts=1).download(server.url + ASC_PATH, cache)
    assert entries(cache) == []


def test_drip_feed_fails_at_the_download_deadline(server: FaultyServer, cache: Cache) -> None:
    """One byte every 50 ms never trips the per-read timeout; the overall deadline stops it."""
    server.always(PATH, Fault(drip=0.05))
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded) as raised:
        client(read_timeout=2.0, attempts=3).download(server.url + PATH, cache, deadline=1.0)
    elapsed = time.monotonic() - start
    assert 1.0 <= elapsed < 1.5, elapsed
    message = raised.value.message
    assert "\n" not in message
    assert message.startswith(f"{server.url}{PATH}: not complete after the download deadline of 1.0 s (")
    assert entries(cache) == []
    assert len(server.requests_for(PATH)) == 1, "a missed deadline is not retried"


def test_drip_below_the_speed_floor_is_abandoned_after_the_window_without_retry(
    server: FaultyServer, cache: Cache
) -> None:
    server.always(PATH, Fault(drip=0.02))  # ~50 B/s: no read ever times out
    start = time.monotonic()
    with pytest.raises(TooSlow) as raised:
        client(read_timeout=30.0, attempts=3, speed_floor=1024, speed_window=0.8).download(server.url + PATH, cache)
    elapsed = time.monotonic() - start
    assert 0.8 <= elapsed < 1.6, elapsed
    message = raised.value.message
    assert message.startswith(f"{server.url}{PATH}: slower than the speed floor of 1.0 KiB/s for 0.8 s (measured ")
    assert message.endswith("this location is abandoned") and "\n" not in message
    assert len(server.requests_for(PATH)) == 1, "not retried: the same mirror would drip again"
    assert entries(cache) == []


def test_a_stall_counts_as_below_the_speed_floor(server: FaultyServer, cache: Cache) -> None:
    # The read timeout is far longer than the window: the socket's wait is cut to the window's end.
    server.always(PATH, Fault(stall_after=1000))
    start = time.monotonic()
    with pytest.raises(TooSlow, match=r"measured 0 B/s: 0 bytes in the last 0\.\d s, 1000 received in all"):
        client(read_timeout=30.0, speed_window=0.5).download(server.url + PATH, cache)
    assert time.monotonic() - start < 1.2


def test_a_fast_start_does_not_excuse_a_slow_finish(server: FaultyServer) -> None:
    # 200,000 bytes at once, then ~50 B/s: averaged from the start the rate stays far above the floor
    # for over a minute; measured window by window it is below the floor half a second after the burst.
    server.add("/tail", b"x" * 200_000)
    server.always("/tail", Fault(drip=0.02, drip_after=190_000))
    started = time.monotonic()
    with pytest.raises(TooSlow, match=r"floor of 1\.0 KiB/s for 0\.5 s \(measured \d+ B/s: \d+ bytes in the last "
                                      r"0\.5 s, 19\d{4} received in all\)"):  # fmt: skip
        client(speed_floor=1024, speed_window=0.5).get_bytes(server.url + "/tail")
    assert time.monotonic() - started < 1.5


def test_a_transfer_above_the_floor_is_never_cut(server: FaultyServer) -> None:
    server.add("/steady", b"y" * 40)
    server.always("/steady", Fault(drip=0.02))  # 50 B/s for 0.8 s: above a floor of 10 B/s throughout
    assert client(speed_floor=10, speed_window=0.3).get_bytes(server.url + "/steady") == b"y" * 40
    assert client(speed_floor=0, speed_window=0.01).get_bytes(server.url + "/steady") == b"y" * 40, "0: no floor"


def test_speed_floor_defaults() -> None:
    settings = HttpSettings()
    assert (settings.speed_floor, settings.speed_window) == (SPEED_FLOOR_BYTES_PER_SECOND, SPEED_WINDOW_SECONDS)
    assert (SPEED_FLOOR_BYTES_PER_SECOND, SPEED_WINDOW_SECONDS) == (1024, 30.0)


def test_stall_near_the_deadline_does_not_outlast_it(server: FaultyServer, cache: Cache) -> None:
    # A read timeout far longer than the deadline: the socket's timeout is cut to what is left.
    server.always(PATH, Fault(stall_after=1000))
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.8 s \(1000 bytes received\)"):
        client(read_timeout=30.0, attempts=2).download(server.url + PATH, cache, deadline=0.8)
    assert time.monotonic() - start < 1.3


def test_automatic_deadline_scales_with_the_announced_size(server: FaultyServer) -> None:
    server.add("/small", b"x" * 40)
    server.always("/small", Fault(drip=0.05))  # 2 s for the whole body
    slow = client(deadline_base=0.3, min_throughput=100)  # 0.3 s + 40 bytes at 100 B/s = 0.7 s
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.7 s"):
        slow.get_bytes(server.url + "/small")
    assert time.monotonic() - start < 1.2
    patient = client(deadline_base=0.3, min_throughput=10)  # 0.3 s + 4 s: the drip finishes in 2 s
    assert patient.get_bytes(server.url + "/small") == b"x" * 40


def test_download_deadline_scales_with_the_size_cap() -> None:
    settings = HttpSettings()
    assert download_deadline(0, settings) == DEADLINE_BASE_SECONDS
    cap = download_deadline(DEFAULT_MAX_BYTES, settings)
    assert cap == DEADLINE_BASE_SECONDS + DEFAULT_MAX_BYTES / MIN_THROUGHPUT_BYTES_PER_SECOND
    assert 3600 < cap < 2 * 3600, "the largest file still gets a bounded, generous time"


def test_redirect_is_followed_and_origin_is_the_final_url(server: FaultyServer, cache: Cache) -> None:
    server.always("/moved", Fault(status=301, location="/hop"))
    server.always("/hop", Fault(status=302, location=ASC_PATH))
    fetched = client().download(server.url + "/moved", cache, name=TARBALL + ".asc")
    assert fetched is not None and fetched.origin == server.url + ASC_PATH and fetched.name == TARBALL + ".asc"


def test_redirect_loop_is_an_error(server: FaultyServer, cache: Cache) -> None:
    server.always("/a", Fault(status=302, location="/b"))
    server.always("/b", Fault(status=302, location="/a"))
    with pytest.raises(FetchError, match="redirect loop"):
        client().download(server.url + "/a", cache)


def test_too_many_redirects_is_an_error(server: FaultyServer, cache: Cache) -> None:
    for hop in range(5):
        server.always(f"/r{hop}", Fault(status=307, location=f"/r{hop + 1}"))
    server.always("/r5", Fault(status=307, location=ASC_PATH))
    with pytest.raises(FetchError, match="more than 3 redirects"):
        client(max_redirects=3).download(server.url + "/r0", cache)


def test_redirect_policy() -> None:
    check_redirect("https://a.example/x", "https://b.example/y")
    check_redirect("http://a.example/x", "https://b.example/y")
    check_redirect("http://a.example/x", "http://b.example/y")
    with pytest.raises(FetchError, match="refused redirect from https to http"):
        check_redirect("https://a.example/x", "http://a.example/x")
    with pytest.raises(FetchError, match="non-HTTP"):
        check_redirect("http://a.example/x", "file:///etc/passwd")


def test_redirect_to_file_url_is_refused_over_the_wire(server: FaultyServer, cache: Cache) -> None:
    server.always("/evil", Fault(status=302, location="file:///etc/passwd"))
    with pytest.raises(FetchError, match="non-HTTP"):
        client().download(server.url + "/evil", cache)


def test_announced_size_over_cap_fails_before_reading(server: FaultyServer, cache: Cache) -> None:
    with pytest.raises(FetchError, match="over the size cap of 1000000 bytes"):
        client(max_bytes=1_000_000).download(server.url + PATH, cache)
    assert entries(cache) == []


def test_body_over_cap_without_content_length_is_cut(server: FaultyServer, cache: Cache) -> None:
    server.always(PATH, Fault(no_length=True))
    with pytest.raises(FetchError, match="body exceeds the size cap of 1000000 bytes"):
        client(max_bytes=1_000_000).download(server.url + PATH, cache)
    assert entries(cache) == []


def test_body_without_content_length_is_read_to_the_end(server: FaultyServer, cache: Cache) -> None:
    server.always(PATH, Fault(no_length=True))
    fetched = client().download(server.url + PATH, cache)
    assert fetched is not None and fetched.sha256 == TARBALL_SHA256


def test_content_length_smaller_than_body_gives_the_announced_bytes(server: FaultyServer, cache: Cache) -> None:
    # HTTP cannot tell a lying Content-Length from a short file: the client takes the announced 500
    # bytes, and the digest (later checked against signatures and claims) is of those 500 bytes.
    server.always(PATH, Fault(content_length=500))
    fetched = client().download(server.url + PATH, cache)
    assert fetched is not None and fetched.size == 500 and fetched.sha256 != TARBALL_SHA256


def test_per_call_size_cap(server: FaultyServer, cache: Cache) -> None:
    with pytest.raises(FetchError, match="size cap of 900 bytes"):
        client().download(server.url + ASC_PATH, cache, max_bytes=900)


def test_connection_refused_is_retried_then_an_error(cache: Cache) -> None:
    with FaultyServer() as gone:
        url = gone.url + ASC_PATH
    with pytest.raises(FetchError, match="connection refused"):
        client(attempts=2).download(url, cache)


def test_get_bytes(server: FaultyServer) -> None:
    server.add("/doc.json", b'{"a": 1}')
    assert client().get_bytes(server.url + "/doc.json") == b'{"a": 1}'
    assert client().get_bytes(server.url + "/missing.json") is None


def test_invalid_url_is_an_error(cache: Cache) -> None:
    with pytest.raises(FetchError, match=r"unsupported URL scheme|invalid URL"):
        client().download("ftp://127.0.0.1/x", cache)


def test_parse_content_range() -> None:
    assert parse_content_range("bytes 10-19/20") == (10, 19, 20)
    assert parse_content_range("bytes 10-19/*") == (10, 19, None)
    assert parse_content_range("bytes 10-19/15") is None
    assert parse_content_range("bytes 19-10/20") is None
    assert parse_content_range("items 1-2/3") is None


_KILLED_DOWNLOAD = """
import sys
from pathlib import Path
from verify.source.locations.cache import Cache
from verify.source.locations.http import HttpClient
HttpClient.quiet().download(sys.argv[1], Cache(Path(sys.argv[2])))
"""


def test_killed_download_leaves_no_entry(server: FaultyServer, tmp_path: Path) -> None:
    server.always(PATH, Fault(stall_after=2_000_000))
    cache_root = tmp_path / "cache"
    process = subprocess.Popen([sys.executable, "-c", _KILLED_DOWNLOAD, server.url + PATH, str(cache_root)])
    try:
        deadline = time.monotonic() + 20
        partial: list[Path] = []
        while time.monotonic() < deadline:
            partial = list((cache_root / "quarantine").glob("run-*/partial-*"))
            if partial and partial[0].stat().st_size >= 2_000_000:
                break
            time.sleep(0.05)
        assert partial, "the download started writing its temporary file"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert not (cache_root / "sha256").exists() or list((cache_root / "sha256").iterdir()) == []
    assert Cache(cache_root).remove_stale_partials(only_abandoned=True) == 1, "the killed run's quarantine"
    assert list((cache_root / "quarantine").iterdir()) == []


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with cryptography (a sigstore dependency)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_to_http_downgrade_is_refused_over_the_wire(ftp_root: Path, tmp_path: Path, cache: Cache) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FaultyServer(ftp_root) as plain, FaultyServer(ftp_root, tls=context) as secure:
        secure.always("/downgrade", Fault(status=302, location=plain.url + ASC_PATH))
        secure.always("/upgrade-only", Fault(status=302, location=secure.url + ASC_PATH))
        http = client(ca_bundle=cert)
        fetched = http.download(secure.url + "/upgrade-only", cache, name=TARBALL + ".asc")
        assert fetched is not None and fetched.origin == secure.url + ASC_PATH
        with pytest.raises(FetchError, match="refused redirect from https to http"):
            http.download(secure.url + "/downgrade", cache)
        assert plain.requests == [], "the downgraded URL was never contacted"
        with pytest.raises(FetchError, match="TLS failure"):
            client().download(secure.url + ASC_PATH, cache)  # an untrusted certificate is not retried away
