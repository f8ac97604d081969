"""``releases`` and ``plan``: a real HTTP server on 127.0.0.1 serves a feed shaped like python.org's
``/api/v2/downloads/release/``, built from the real releases in the fixtures (names and slugs from the
release tracker's records, dates from the Rekor integration time of each release's real Sigstore bundle)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import run_cli

from verify.site.releases_feed import FeedError, parse_feed, select


def _real_feed(cpython_fixtures: Path) -> list[dict]:
    items = []
    for path in sorted((cpython_fixtures / "release-metadata").glob("*.json")):
        version = path.stem
        records = json.loads(path.read_text())
        raw = next(r["raw"] for r in records if r["raw"].get("sigstore"))
        entries = raw["sigstore"]["verificationMaterial"]["tlogEntries"]
        released = datetime.fromtimestamp(int(entries[0]["integratedTime"]), UTC)
        items.append(
            {
                "name": f"Python {version}",
                "slug": raw["slug"],
                "version": 3,
                "is_published": True,
                "is_latest": False,
                "release_date": released.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "pre_release": False,
                "release_page": None,
                "release_notes_url": f"https://docs.python.org/release/{version}/whatsnew/changelog.html",
                "show_on_download_page": True,
                "resource_uri": f"https://www.python.org/api/v2/downloads/release/{len(items) + 1}/",
            }
        )
    # Records python.org also serves: Python 2, an unpublished draft, a pre-release.
    items.append(
        {
            "name": "Python 2.7.18",
            "slug": "python-2718",
            "version": 2,
            "is_published": True,
            "release_date": "2020-04-20T00:00:00Z",
            "pre_release": False,
        }
    )
    items.append(
        {
            "name": "Python 3.15.0a1",
            "slug": "python-3150a1",
            "version": 3,
            "is_published": True,
            "release_date": "2025-10-14T00:00:00Z",
            "pre_release": True,
        }
    )
    items.append(
        {
            "name": "Python 3.99.0",
            "slug": "draft",
            "version": 3,
            "is_published": False,
            "release_date": None,
            "pre_release": False,
        }
    )
    return items


class _Feed(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def feed_server(cpython_fixtures: Path) -> Iterator[str]:
    _Feed.routes = {
        "/api/v2/downloads/release/": (200, json.dumps(_real_feed(cpython_fixtures)).encode()),
        "/broken/": (500, b"oops"),
        "/html/": (200, b"<html>maintenance</html>"),
        "/object/": (200, b'{"detail": "throttled"}'),
        "/empty/": (200, b"[]"),
        "/python2-only/": (
            200,
            json.dumps(
                [
                    {
                        "name": "Python 2.7.18",
                        "version": 2,
                        "is_published": True,
                        "release_date": "2020-04-20T00:00:00Z",
                        "pre_release": False,
                    }
                ]
            ).encode(),
        ),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_lists_the_real_releases_newest_first(feed_server: str) -> None:
    completed = run_cli("releases", "--url", f"{feed_server}/api/v2/downloads/release/", "--json")
    assert completed.returncode == 0, completed.stderr
    versions = [r["version"] for r in json.loads(completed.stdout)["releases"]]
    assert versions[:3] == ["3.14.4", "3.14.3", "3.14.2"]
    assert versions[-1] == "3.11.2"
    assert "3.13.5" in versions and "2.7.18" not in versions and "3.99.0" not in versions
    assert "3.15.0a1" not in versions  # pre-releases only on request
    assert "not published" in completed.stderr


def test_since_filters_by_release_date(feed_server: str) -> None:
    completed = run_cli(
        "releases",
        "--url",
        f"{feed_server}/api/v2/downloads/release/",
        "--since",
        "2025-06-11",
        "--series",
        "3.13",
        "--json",
    )
    releases = json.loads(completed.stdout)["releases"]
    assert [r["version"] for r in releases][-1] == "3.13.5"  # 3.13.5 was signed on 2025-06-11
    assert all(r["released_at"] >= "2025-06-11" for r in releases)
    # Nothing since then: a failure in one line, unless an empty night is expected.
    completed = run_cli("releases", "--url", f"{feed_server}/api/v2/downloads/release/", "--since", "2030-01-01")
    assert completed.returncode == 1 and completed.stdout == ""
    assert completed.stderr.startswith("cpython-verify: error: no release in the feed matches (since 2030-01-01")
    assert "Traceback" not in completed.stderr
    completed = run_cli(
        "releases",
        "--url",
        f"{feed_server}/api/v2/downloads/release/",
        "--since",
        "2030-01-01",
        "--allow-empty",
        "--json",
    )
    assert completed.returncode == 0
    assert json.loads(completed.stdout) == {"format": "cpython-verify/releases/v1", "releases": []}


@pytest.mark.parametrize(
    ("path", "args", "message"),
    [
        ("/empty/", [], "holds no published CPython 3 release record"),
        ("/python2-only/", ["--allow-empty"], "holds no published CPython 3 release record"),
        ("/api/v2/downloads/release/", ["--series", "3.99"], "has no release of series 3.99"),
        ("/api/v2/downloads/release/", ["--series", "3.99", "--allow-empty"], "has no release of series 3.99"),
    ],
)
def test_a_feed_or_series_without_releases_is_exit_1_in_one_line(
    feed_server: str, path: str, args: list[str], message: str
) -> None:
    """Issue 18: a feed holding no release record, and --series 3.99, printed nothing and exited 0."""
    completed = run_cli("releases", "--url", f"{feed_server}{path}", *args, "--json")
    assert completed.returncode == 1, completed.stdout
    assert completed.stdout == "" and message in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr


def test_a_malformed_series_is_a_usage_error(feed_server: str) -> None:
    completed = run_cli("releases", "--url", f"{feed_server}/api/v2/downloads/release/", "--series", "3.x")
    assert completed.returncode == 2 and "not a release series" in completed.stderr


def test_prereleases_on_request(feed_server: str) -> None:
    completed = run_cli("releases", "--url", f"{feed_server}/api/v2/downloads/release/", "--prereleases")
    assert "3.15.0a1" in completed.stdout and "pre-release" in completed.stdout


@pytest.mark.parametrize(
    ("path", "message"),
    [("/broken/", "HTTP 500"), ("/html/", "not valid JSON"), ("/object/", "not a JSON list"), ("/missing/", "404")],
)
def test_feed_failures_are_exit_2(feed_server: str, path: str, message: str) -> None:
    completed = run_cli("releases", "--url", f"{feed_server}{path}")
    assert completed.returncode == 2
    assert message in completed.stderr, completed.stderr
    assert "Traceback" not in completed.stderr


def test_bad_since_is_a_usage_error() -> None:
    completed = run_cli("releases", "--since", "yesterday", "--url", "/nonexistent")
    assert completed.returncode == 2 and "not a date" in completed.stderr


def test_a_local_mirror_file(tmp_path: Path, cpython_fixtures: Path) -> None:
    mirror = tmp_path / "releases.json"
    mirror.write_text(json.dumps(_real_feed(cpython_fixtures)))
    releases, notes = parse_feed(mirror.read_bytes())
    assert len(releases) == 16 and any("not CPython 3" in note for note in notes)
    assert [str(r.version) for r in select(releases, series=("3.12",))] == ["3.12.13", "3.12.12", "3.12.11", "3.12.10"]
    with pytest.raises(FeedError, match="nested too deeply"):
        parse_feed(b"[" * 100_000)


def test_plan_from_discovered_releases(feed_server: str, tmp_path: Path) -> None:
    listing = tmp_path / "releases.json"
    discovered = run_cli("releases", "--url", f"{feed_server}/api/v2/downloads/release/", "--series", "3.13", "--json")
    listing.write_text(discovered.stdout)
    completed = run_cli(
        "plan",
        "3.12.10",
        "2.7.18",
        "--releases",
        listing,
        "--json",
        "--profile",
        "default",
        "--profile",
        "no-such-profile",
        "--runner",
        "bwrap",
        "--runner",
        "podman",
    )
    assert completed.returncode == 0, completed.stderr
    matrix = json.loads(completed.stdout)
    # The workflow hands GitHub Actions "include" alone: another key would become a matrix dimension.
    assert set(matrix) == {"format", "include"} and matrix["format"] == "cpython-verify/plan/v1"
    jobs = {(job["version"], job["profile"], job["runner"]) for job in matrix["include"]}
    assert ("3.13.5", "default", "podman") in jobs and ("3.12.10", "default", "bwrap") in jobs
    assert len(jobs) == 6 * 2  # five 3.13 releases + 3.12.10, two runners, one existing profile
    assert "skipping 2.7.18" in completed.stderr and "no such profile" in completed.stderr


def test_empty_plan_is_exit_1_in_one_line(tmp_path: Path) -> None:
    """Nothing to do is a failure (exit 1), not an operational error, and an empty matrix only on request."""
    completed = run_cli("plan", "2.7.18")
    assert completed.returncode == 1 and "plan is empty" in completed.stderr
    assert completed.stdout == "" and len(completed.stderr.strip().splitlines()) == 2  # the skip note, the verdict
    listing = tmp_path / "releases.json"
    listing.write_text('{"format": "cpython-verify/releases/v1", "releases": []}')
    completed = run_cli("plan", "--releases", listing)
    assert completed.returncode == 1 and completed.stderr.strip().splitlines() == [
        "cpython-verify: error: the plan is empty: no requested release has a recipe and profile (--allow-empty "
        "to print an empty matrix)"
    ]
    completed = run_cli("plan", "--releases", listing, "--allow-empty", "--json")
    assert completed.returncode == 0 and json.loads(completed.stdout) == {
        "format": "cpython-verify/plan/v1",
        "include": [],
    }
    completed = run_cli("plan")
    assert completed.returncode == 2 and "VERSION arguments or --releases" in completed.stderr


@pytest.mark.parametrize("recipes", ["missing", "empty"])
def test_plan_without_recipes_is_an_error_not_an_empty_matrix(recipes: str, tmp_path: Path) -> None:
    # A broken installation must not look like a night with no release, even with --allow-empty.
    directory = tmp_path / "recipes"
    if recipes == "empty":
        directory.mkdir()
    completed = run_cli("plan", "3.13.5", "--allow-empty", env={"CPYTHON_VERIFY_RECIPES": str(directory)})
    assert completed.returncode == 2, completed.stdout
    assert completed.stderr.startswith("cpython-verify: error: recipes directory") and completed.stdout == ""
