"""The status page: rendered from real signed attestations by ``merge``, checked in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_attest_support import TARBALL, make_result, openssl_keypair, run_cli

from verify.site.status_page import DifferenceRow, HistoryEntry, StatusRow, render, render_row_page

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (scripts/bootstrap-test installs it on Debian)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, cpython_fixtures: Path) -> Path:
    """``merge`` over three real attestations (reproducible, explained, differs) plus one planned job
    that produced nothing, and one attestation signed by an untrusted key. The "differs" job published
    its manifest, a compare report (with a script in it) and its logs (one a symbolic link out of the
    incoming directory); the "reproducible" job published a manifest that is not the attested one."""
    base = tmp_path_factory.mktemp("site")
    private, public = openssl_keypair(base, "ci")
    stranger, _ = openssl_keypair(base, "stranger")
    incoming = base / "incoming"
    incoming.mkdir()
    cases = {
        "reproducible": dict(reproducible=True),
        "differs": dict(
            reproducible=False,
            differences=[
                {
                    "path": "opt/python/bin/python3.13",
                    "kind": "elf-executable",
                    "changes": ["content"],
                    "category": "build-path",
                    "explanation": "DW_AT_comp_dir records /build/a, the other build /build/b",
                },
                {"path": "opt/python/lib/python3.13/<script>.py", "kind": "python-source", "changes": ["content"]},
                # Long unbroken words must wrap, not widen the page.
                {
                    "path": "opt/python/lib/python3.13/" + "site_packages_with_a_very_long_name_" * 8 + "x.py",
                    "kind": "text",
                    "changes": ["content"],
                    "category": "build-path",
                    "explanation": "records " + "/build/directory/that/is/very/long" * 10 + " where the other has /b",
                },
            ],
        ),
        "once": dict(reproducible=None, runner="podman"),
    }
    for name, options in cases.items():
        result = make_result(base / name, cpython_fixtures / TARBALL, **options)
        out = incoming / f"{name}.intoto.json"
        assert (
            run_cli("attest", result, "--signing-key", private, "--out", out, "--rebuilder-id", f"ci-{name}").returncode
            == 0
        )
    shutil.copyfile(base / "differs" / "manifest.json", incoming / "differs.manifest.json")
    (incoming / "differs.compare.html").write_text(
        "<!DOCTYPE html><html><head><title>report</title></head><body><p>diff</p>"
        "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\"></body></html>"
    )
    (incoming / "differs.logs").mkdir()
    (incoming / "differs.logs" / "make.log").write_text("gcc -o python ...\n" * 3)
    (base / "secret.log").write_text("outside the incoming directory\n")
    (incoming / "differs.logs" / "stolen.log").symlink_to(base / "secret.log")
    (incoming / "reproducible.manifest.json").write_text("{}\n")
    rogue = make_result(base / "rogue", cpython_fixtures / TARBALL)
    assert run_cli("attest", rogue, "--signing-key", stranger, "--out", incoming / "rogue.intoto.json").returncode == 0
    plan = base / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "include": [
                    {"version": "3.13.5", "profile": "default", "runner": "bwrap", "series": "3.13", "id": "a"},
                    {"version": "3.14.4", "profile": "default", "runner": "bwrap", "series": "3.14", "id": "b"},
                ]
            }
        )
    )
    completed = run_cli("merge", incoming, "--public-key", public, "--plan", plan, "--out", base / "out")
    assert completed.returncode == 1, completed.stderr  # the rogue attestation was rejected
    assert "5 row(s), 1 rejected" in completed.stdout
    return base / "out"


def test_merge_writes_page_json_and_verified_attestations(site: Path) -> None:
    status = json.loads((site / "status.json").read_text())
    verdicts = sorted(row["verdict"] for row in status["rows"])
    assert verdicts == ["built-once", "differs", "missing", "rejected", "reproducible"]
    assert any("rogue.intoto.json: rejected" in note for note in status["notes"])
    copied = sorted(p.name for p in (site / "attestations").iterdir())
    assert len(copied) == 3 and not any("rogue" in name for name in copied)


def test_rows_name_the_rebuilder_and_carry_the_comparators_words(site: Path) -> None:
    page = (site / "index.html").read_text()
    status = json.loads((site / "status.json").read_text())
    differs = next(row for row in status["rows"] if row["verdict"] == "differs")
    assert differs["rebuilder"] == "ci-differs" and differs["signer"].startswith("key:")
    # The rebuilder's own id is the cell; the signing key id is only the tooltip.
    assert ">ci-differs</span>" in page and f'title="signed by {differs["signer"]}"' in page
    assert f">{differs['signer']}<" not in page
    elf = next(d for d in differs["differences"] if d["kind"] == "elf-executable")
    assert (elf["category"], elf["explanation"]) == (
        "build-path",
        "DW_AT_comp_dir records /build/a, the other build /build/b",
    )
    assert '<span class="category">build-path</span>' in page
    assert "DW_AT_comp_dir records /build/a, the other build /build/b" in page


def test_page_is_self_contained_and_escaped(site: Path) -> None:
    page = (site / "index.html").read_text()
    assert "<script" not in page.replace("&lt;script&gt;", "")
    assert "http://" not in page and "src=" not in page  # no external assets
    assert "&lt;script&gt;.py" in page


def _dump_dom(page: Path, *extra: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *extra,
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@needs_chromium
def test_chromium_renders_one_row_per_result(site: Path) -> None:
    dom = _dump_dom(site / "index.html")
    assert dom.count('<tr class="row"') == 5
    assert 'data-verdict="differs"' in dom and 'data-verdict="missing"' in dom
    assert "UNEXPLAINED" in dom  # the explanation is in the rendered DOM


@needs_chromium
def test_screenshot_shows_the_table(site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "status.png"
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                f"--screenshot={shot}",
                "--window-size=1280,1100",
                (site / "index.html").as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    colors = _png_colors(shot.read_bytes())
    # The verdict cells' backgrounds: green (reproducible), red (differs), blue (built once; and a single
    # rebuilder in the agreement table above them).
    for color in ((0xC8, 0xF7, 0xC5), (0xF9, 0xB4, 0xB4), (0xDD, 0xE7, 0xF7)):
        assert color in colors, f"no {color} pixels: the table did not render"
    if keep := __import__("os").environ.get("CPYTHON_VERIFY_KEEP_SCREENSHOT"):
        shutil.copyfile(shot, keep)


def _png_colors(data: bytes) -> set[tuple[int, int, int]]:
    """The distinct RGB colours of a PNG (8-bit RGB/RGBA, non-interlaced, as Chromium writes it)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, color_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color_type in (2, 6)
    channels = 3 if color_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    colors: set[tuple[int, int, int]] = set()
    offset = 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        colors.update(tuple(line[i : i + 3]) for i in range(0, stride, channels))  # type: ignore[misc]
        previous = line
    return colors


def test_render_without_rows_still_renders() -> None:
    page = render([], title="t", generated_at=datetime(2025, 6, 11, tzinfo=UTC))
    assert "0 result(s): none" in page and "<tbody>" in page


def test_rows_are_sorted_newest_release_first() -> None:
    rows = [
        StatusRow("3.12.10", "default", "bwrap", "reproducible"),
        StatusRow("3.13.5", "default", "bwrap", "differs"),
        StatusRow("3.13.10", "default", "bwrap", "explained"),
    ]
    page = render(rows, title="t", generated_at=datetime(2025, 6, 11, tzinfo=UTC))
    assert page.index("3.13.10") < page.index("3.13.5") < page.index("3.12.10")


@needs_chromium
@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("which", ["index", "row page"])
def test_expanded_page_does_not_overflow(site: Path, which: str, width: int, tmp_path: Path) -> None:
    """Every verdict expanded, the index and a row page (the one with the longest paths and explanations)
    are no wider than a 1280 px desktop or a 390 px phone; a screenshot of each is kept.

    Headless Chromium lays a window out no narrower than 500 px (its screenshot is merely cropped), so the
    page is laid out in an iframe of the given width; the published page has no script, the probe page
    around it has one that writes the laid-out widths into the DOM, which Chromium then dumps."""
    status = json.loads((site / "status.json").read_text())
    shown = site / ("index.html" if which == "index" else _row_of(status, "differs")["page"])
    opened = shown.with_name("open.html")
    opened.write_text(shown.read_text().replace("<details>", "<details open>"))
    probe = shown.with_name("probe.html")
    probe.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe id="f" src="open.html" '
        f'style="border:0;width:{width}px;height:2400px"></iframe><script>'
        "document.getElementById('f').addEventListener('load',()=>{const e=document.getElementById('f')"
        ".contentDocument.documentElement;document.body.setAttribute('data-widths',e.scrollWidth+'/'+e.clientWidth)})"
        "</script></body></html>"
    )
    shot = tmp_path / f"{which.replace(' ', '-')}-{width}.png"
    try:
        dom = _dump_dom(probe, "--allow-file-access-from-files", "--hide-scrollbars", "--window-size=1400,900")
        with tempfile.TemporaryDirectory() as profile:
            completed = subprocess.run(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    f"--user-data-dir={profile}",
                    "--allow-file-access-from-files",
                    "--hide-scrollbars",
                    f"--screenshot={shot}",
                    f"--window-size={width},2400",
                    probe.as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert completed.returncode == 0, completed.stderr[-2000:]
    finally:
        probe.unlink()
        opened.unlink()
    scroll, client = map(int, dom.split('data-widths="', 1)[1].split('"', 1)[0].split("/"))
    assert client == width
    assert scroll <= client, f"the {which} is {scroll} px wide in a {client} px window"
    colors = _png_colors(shot.read_bytes())
    assert (0xF9, 0xB4, 0xB4) in colors, "no red (differs) pixels: the page did not render"
    if keep := __import__("os").environ.get("CPYTHON_VERIFY_KEEP_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / shot.name)


def test_merge_never_makes_a_path_of_signed_text_and_keeps_the_old_site_on_failure(
    tmp_path: Path, cpython_fixtures: Path
) -> None:
    """A trusted signer's profile name with '/' and '..' in it is refused by the schema (and would be data,
    not a path, anyway); a malformed plan fails before anything is written, and the previous site stays
    as it was."""
    import base64

    from verify.attest import load_private_key, sign_offline

    private, public = openssl_keypair(tmp_path, "rebuilder")
    result = make_result(tmp_path / "result", cpython_fixtures / TARBALL)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    assert run_cli("attest", result, "--signing-key", private, "--out", incoming / "good.intoto.json").returncode == 0
    statement = json.loads(base64.b64decode(json.loads((incoming / "good.intoto.json").read_text())["payload"]))
    statement["predicate"]["recipe"]["profile"] = "../../escape/evil"
    (incoming / "evil.intoto.json").write_bytes(sign_offline(json.dumps(statement).encode(), load_private_key(private)))
    site = tmp_path / "site"
    first = run_cli("merge", incoming, "--public-key", public, "--out", site)
    assert first.returncode == 1, first.stderr
    assert "rejected" in first.stderr and "recipe.profile" in first.stderr
    assert [p.parent for p in site.rglob("*.intoto.json")] == [site / "attestations"]
    assert not (tmp_path / "escape").exists()
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    bad_plan = tmp_path / "plan.json"
    bad_plan.write_text('{"include": [{"version": 3}]}')
    failed = run_cli("merge", incoming, "--public-key", public, "--plan", bad_plan, "--out", site)
    assert failed.returncode == 2 and len(failed.stderr.strip().splitlines()) == 1
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no staging left behind"


# -- row pages, rejected rows, published files ------------------------------------------------------------


def _row_of(status: dict, verdict: str) -> dict:
    return next(row for row in status["rows"] if row["verdict"] == verdict)


def test_a_rejected_attestation_has_its_own_row_with_the_reason(site: Path) -> None:
    status = json.loads((site / "status.json").read_text())
    rogue = _row_of(status, "rejected")
    # Nothing inside a rejected attestation is believed: the row names the file, not its claims.
    assert (rogue["origin"], rogue["version"], rogue["profile"]) == ("rogue.intoto.json", "", "")
    assert rogue["detail"] and rogue["attestation"] is None
    page = (site / "index.html").read_text()
    row = page.split('data-verdict="rejected"', 1)[1].split("</tr>", 1)[0]
    assert "rogue.intoto.json" in row and f'<div class="why">{rogue["detail"]}</div>' in row


def test_every_row_links_its_own_page_with_the_whole_verdict(site: Path) -> None:
    status = json.loads((site / "status.json").read_text())
    index = (site / "index.html").read_text()
    for row in status["rows"]:
        assert f'<a href="{row["page"]}">' in index
        assert (site / row["page"]).is_file()
    # reproducible and differs are the same release x profile x runner: one page, both results.
    differs = _row_of(status, "differs")
    assert _row_of(status, "reproducible")["page"] == differs["page"]
    page = (site / differs["page"]).read_text()
    assert page.count('<section class="result"') == 2 and "CPython 3.13.5, profile default, runner bwrap" in page
    assert "<dd>ci-differs</dd>" in page and f"<code>{differs['tree_sha256']}</code>" in page
    assert '<span class="category">build-path</span>' in page and "DW_AT_comp_dir records /build/a" in page
    assert '<a href="../index.html">' in page and "None yet" in page


def test_published_files_are_linked_relative_and_nothing_is_followed_out(site: Path) -> None:
    status = json.loads((site / "status.json").read_text())
    differs = _row_of(status, "differs")
    labels = {artifact["label"]: artifact["link"] for artifact in differs["artifacts"]}
    assert set(labels) == {"manifest", "compare report", "log: make.log"}
    page_dir = (site / differs["page"]).parent
    page = (site / differs["page"]).read_text()
    for link in [differs["attestation"], *labels.values()]:
        assert f'href="../{link}"' in page
        assert (page_dir / ".." / link).resolve().is_file()  # the link resolves from where the page is
    digest = differs["attestation"].split("/")[1].split(".")[0]
    assert labels["manifest"] == f"runs/{digest}/manifest.json"
    assert (site / labels["log: make.log"]).read_text() == "gcc -o python ...\n" * 3
    assert not any("outside the incoming" in p.read_text(errors="replace") for p in site.rglob("*") if p.is_file())
    assert any("differs.logs/stolen.log: not published: a symbolic link" in note for note in status["notes"])
    # A manifest that is not the attested one is not linked.
    assert _row_of(status, "reproducible")["artifacts"] == []
    assert any("reproducible.manifest.json: not published: its sha256 is not" in note for note in status["notes"])


@needs_chromium
def test_the_published_compare_report_cannot_run_a_script(site: Path) -> None:
    differs = _row_of(json.loads((site / "status.json").read_text()), "differs")
    report = next(a["link"] for a in differs["artifacts"] if a["label"] == "compare report")
    dom = _dump_dom(site / report)
    assert "<p>diff</p>" in dom and "pwned" not in dom.split("<body", 1)[0]
    assert "<title>report</title>" in dom


HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_hostile_strings_in_every_field_render_as_text() -> None:
    """Whatever a signed verdict, a rejected file's name or an error message says, it is text."""
    from html.parser import HTMLParser

    row = StatusRow(
        HOSTILE,
        HOSTILE,
        HOSTILE,
        "differs",
        True,
        HOSTILE,
        HOSTILE,
        HOSTILE,
        HOSTILE,
        differences=(DifferenceRow(HOSTILE, HOSTILE, HOSTILE, False, HOSTILE, HOSTILE),),
        variations=(HOSTILE,),
        detail=HOSTILE,
        culprits=((HOSTILE, True),),
        origin=HOSTILE,
    )
    rejected = StatusRow("", "", "", "rejected", detail=HOSTILE, origin=HOSTILE)
    history = [HistoryEntry("rows/x.html", HOSTILE, "differs", HOSTILE, HOSTILE, HOSTILE, None, HOSTILE)]

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: set[str] = set()
            self.attributes: set[str] = set()

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.add(tag)
            self.attributes.update(name for name, _ in attrs)

    when = datetime(2025, 6, 11, tzinfo=UTC)
    for page in (
        render([row, rejected], title=HOSTILE, generated_at=when, notes=[HOSTILE]),
        render_row_page([row], history, title=HOSTILE, generated_at=when),
        render_row_page([rejected], [], title=HOSTILE, generated_at=when),
    ):
        parser = Tags()
        parser.feed(page)
        assert parser.tags.isdisjoint({"script", "img", "iframe", "object"}), parser.tags
        assert not any(name.startswith("on") for name in parser.attributes)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- history across runs ------------------------------------------------------------------------------------


def test_a_second_merge_adds_to_the_first_and_a_failed_one_loses_nothing(
    tmp_path: Path, cpython_fixtures: Path
) -> None:
    private, public = openssl_keypair(tmp_path, "ci")
    nights = {}
    for night, options in {
        "one": dict(
            reproducible=False,
            differences=[{"path": "opt/python/bin/python3.13", "kind": "elf-executable", "changes": ["content"]}],
        ),
        "two": dict(reproducible=True),
    }.items():
        incoming = tmp_path / f"incoming-{night}"
        incoming.mkdir()
        result = make_result(tmp_path / night, cpython_fixtures / TARBALL, **options)
        assert (
            run_cli(
                "attest",
                result,
                "--signing-key",
                private,
                "--out",
                incoming / "a.intoto.json",
                "--rebuilder-id",
                f"night-{night}",
            ).returncode
            == 0
        )
        (incoming / "a.logs").mkdir()
        (incoming / "a.logs" / "make.log").write_text(f"night {night}\n")
        nights[night] = incoming
    podman = make_result(tmp_path / "podman", cpython_fixtures / TARBALL, reproducible=None, runner="podman")
    assert run_cli("attest", podman, "--signing-key", private, "--out", nights["one"] / "p.intoto.json").returncode == 0
    site = tmp_path / "site"
    first = run_cli("merge", nights["one"], "--public-key", public, "--out", site)
    assert first.returncode == 0, first.stderr
    before = json.loads((site / "status.json").read_text())
    one = _row_of(before, "differs")
    second = run_cli("merge", nights["two"], "--public-key", public, "--out", site)
    assert second.returncode == 0, second.stderr
    after = json.loads((site / "status.json").read_text())
    # Tonight's result replaces the row; the row not rebuilt tonight (podman) stays, with its attestation.
    assert sorted(row["verdict"] for row in after["rows"]) == ["built-once", "reproducible"]
    two = _row_of(after, "reproducible")
    assert two["page"] == one["page"]
    assert after["history"] == [
        {
            "page": one["page"],
            "run_at": before["generated_at"],
            "verdict": "differs",
            "attested_at": one["attested_at"],
            "rebuilder": "night-one",
            "tree_sha256": one["tree_sha256"],
            "attestation": one["attestation"],
            "detail": None,
        }
    ]
    assert (site / one["attestation"]).is_file() and (site / _row_of(after, "built-once")["attestation"]).is_file()
    assert not (site / one["artifacts"][0]["link"]).exists()  # last night's logs are not kept
    page = (site / two["page"]).read_text()
    history = page.split('<table id="history">', 1)[1]
    assert 'data-verdict="differs"' in history and before["generated_at"] in history
    assert f'href="../{one["attestation"]}"' in history and "night-one" in history
    # Merging the same night again is not another run.
    again = run_cli("merge", nights["two"], "--public-key", public, "--out", site)
    assert again.returncode == 0 and len(json.loads((site / "status.json").read_text())["history"]) == 1
    # A merge that fails half-way (a linked file of the old site is now a symbolic link, so it is not
    # copied) leaves the site exactly as it was.
    kept = site / one["attestation"]
    kept.unlink()
    kept.symlink_to(tmp_path / "ci.pub")
    snapshot = {p.relative_to(site): (p.is_symlink(), p.read_bytes()) for p in site.rglob("*") if p.is_file()}
    failed = run_cli("merge", nights["two"], "--public-key", public, "--out", site)
    assert failed.returncode == 2 and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert "a symbolic link" in failed.stderr
    assert {p.relative_to(site): (p.is_symlink(), p.read_bytes()) for p in site.rglob("*") if p.is_file()} == snapshot
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no staging left behind"


def test_an_unreadable_previous_site_stops_merge_before_any_write(tmp_path: Path, cpython_fixtures: Path) -> None:
    private, public = openssl_keypair(tmp_path, "ci")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    result = make_result(tmp_path / "result", cpython_fixtures / TARBALL)
    assert run_cli("attest", result, "--signing-key", private, "--out", incoming / "a.intoto.json").returncode == 0
    site = tmp_path / "site"
    site.mkdir()
    for status in (
        '{"rows": [{"version": 3}]}',
        '{"rows": [{"version": "3.13.5", "profile": "d", "runner": "b", "verdict": "differs",'
        ' "attestation": "../../etc/passwd"}]}',
    ):
        (site / "status.json").write_text(status)
        failed = run_cli("merge", incoming, "--public-key", public, "--out", site)
        assert failed.returncode == 2 and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
        assert "cannot add to the site" in failed.stderr
        assert [p.name for p in site.iterdir()] == ["status.json"]
