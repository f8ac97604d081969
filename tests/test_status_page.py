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

from verify.status_page import StatusRow, render

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (scripts/bootstrap-test installs it on Debian)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, cpython_fixtures: Path) -> Path:
    """``merge`` over three real attestations (reproducible, explained, differs) plus one planned job
    that produced nothing, and one attestation signed by an untrusted key."""
    base = tmp_path_factory.mktemp("site")
    private, public = openssl_keypair(base, "ci")
    stranger, _ = openssl_keypair(base, "stranger")
    incoming = base / "incoming"
    incoming.mkdir()
    cases = {
        "reproducible": dict(reproducible=True),
        "differs": dict(reproducible=False, differences=[
            {"path": "opt/python/bin/python3.13", "kind": "elf-executable", "changes": ["content"],
             "category": "build-path", "explanation": "DW_AT_comp_dir records /build/a, the other build /build/b"},
            {"path": "opt/python/lib/python3.13/<script>.py", "kind": "python-source", "changes": ["content"]},
        ]),
        "once": dict(reproducible=None, runner="podman"),
    }
    for name, options in cases.items():
        result = make_result(base / name, cpython_fixtures / TARBALL, **options)
        out = incoming / f"{name}.intoto.json"
        assert run_cli("attest", result, "--key", private, "--out", out, "--rebuilder-id", f"ci-{name}").returncode == 0
    rogue = make_result(base / "rogue", cpython_fixtures / TARBALL)
    assert run_cli("attest", rogue, "--key", stranger, "--out", incoming / "rogue.intoto.json").returncode == 0
    plan = base / "plan.json"
    plan.write_text(json.dumps({"include": [
        {"version": "3.13.5", "profile": "default", "runner": "bwrap", "series": "3.13", "id": "a"},
        {"version": "3.14.4", "profile": "default", "runner": "bwrap", "series": "3.14", "id": "b"},
    ]}))
    completed = run_cli("merge", incoming, "--key", public, "--plan", plan, "--out", base / "out")
    assert completed.returncode == 1, completed.stderr  # the rogue attestation was rejected
    assert "4 row(s), 1 rejected" in completed.stdout
    return base / "out"


def test_merge_writes_page_json_and_verified_attestations(site: Path) -> None:
    status = json.loads((site / "status.json").read_text())
    verdicts = sorted(row["verdict"] for row in status["rows"])
    assert verdicts == ["built-once", "differs", "missing", "reproducible"]
    assert any("rogue.intoto.json: rejected" in note for note in status["notes"])
    copied = sorted(p.name for p in (site / "attestations").iterdir())
    assert len(copied) == 3 and not any("rogue" in name for name in copied)


def test_rows_name_the_rebuilder_and_carry_the_comparators_words(site: Path) -> None:
    page = (site / "index.html").read_text()
    status = json.loads((site / "status.json").read_text())
    differs = next(row for row in status["rows"] if row["verdict"] == "differs")
    assert differs["rebuilder"] == "ci-differs" and differs["signer"].startswith("key:")
    # The rebuilder's own id is the cell; the signing key id is only the tooltip.
    assert '>ci-differs</span>' in page and f'title="signed by {differs["signer"]}"' in page
    assert f">{differs['signer']}<" not in page
    elf = next(d for d in differs["differences"] if d["kind"] == "elf-executable")
    assert (elf["category"], elf["explanation"]) == (
        "build-path", "DW_AT_comp_dir records /build/a, the other build /build/b",
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
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             *extra, "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@needs_chromium
def test_chromium_renders_one_row_per_result(site: Path) -> None:
    dom = _dump_dom(site / "index.html")
    assert dom.count('<tr class="row"') == 4
    assert 'data-verdict="differs"' in dom and 'data-verdict="missing"' in dom
    assert "UNEXPLAINED" in dom  # the explanation is in the rendered DOM


@needs_chromium
def test_screenshot_shows_the_table(site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "status.png"
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,800", (site / "index.html").as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    colors = _png_colors(shot.read_bytes())
    # The verdict cells' backgrounds: green (reproducible), red (differs), blue (built once).
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
    rows = [StatusRow("3.12.10", "default", "bwrap", "reproducible"),
            StatusRow("3.13.5", "default", "bwrap", "differs"),
            StatusRow("3.13.10", "default", "bwrap", "explained")]
    page = render(rows, title="t", generated_at=datetime(2025, 6, 11, tzinfo=UTC))
    assert page.index("3.13.10") < page.index("3.13.5") < page.index("3.12.10")


@needs_chromium
@pytest.mark.parametrize("width", [1280, 390])
def test_expanded_page_does_not_overflow(site: Path, width: int) -> None:
    """Every verdict expanded, the page is no wider than a 1280 px desktop or a 390 px phone.

    Headless Chromium will not make a window narrower than 500 px, so the page is laid out in an
    iframe of the given width; the published page has no script, the probe page around it has one that
    writes the laid-out widths into the DOM, which Chromium then dumps."""
    page = (site / "index.html").read_text().replace("<details>", "<details open>")
    (site / "open.html").write_text(page)
    probe = site / "probe.html"
    probe.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe id="f" src="open.html" '
        f'style="border:0;width:{width}px;height:900px"></iframe><script>'
        "document.getElementById('f').addEventListener('load',()=>{const e=document.getElementById('f')"
        ".contentDocument.documentElement;document.body.setAttribute('data-widths',e.scrollWidth+'/'+e.clientWidth)})"
        "</script></body></html>"
    )
    try:
        dom = _dump_dom(probe, "--allow-file-access-from-files", "--hide-scrollbars", "--window-size=1400,900")
    finally:
        probe.unlink()
        (site / "open.html").unlink()
    scroll, client = map(int, dom.split('data-widths="', 1)[1].split('"', 1)[0].split("/"))
    assert client == width
    assert scroll <= client, f"the page is {scroll} px wide in a {client} px window"


def test_merge_never_makes_a_path_of_signed_text_and_keeps_the_old_site_on_failure(
    tmp_path: Path, cpython_fixtures: Path
) -> None:
    """A trusted signer's profile name with '/' and '..' in it is data, not a path; a malformed plan
    fails before anything is written, and the previous site stays as it was."""
    private, public = openssl_keypair(tmp_path, "rebuilder")
    result = make_result(tmp_path / "result", cpython_fixtures / TARBALL)
    record = json.loads((result / "rebuild.json").read_text())
    record["inputs"]["recipe"]["profile"] = "../../escape/evil"
    (result / "rebuild.json").write_text(json.dumps(record))
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    assert run_cli("attest", result, "--key", private, "--out", incoming / "evil.intoto.json").returncode == 0
    site = tmp_path / "site"
    first = run_cli("merge", incoming, "--key", public, "--out", site)
    assert first.returncode == 0, first.stderr
    assert [p.parent for p in site.rglob("*.intoto.json")] == [site / "attestations"]
    assert not (tmp_path / "escape").exists()
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    bad_plan = tmp_path / "plan.json"
    bad_plan.write_text('{"include": [{"version": 3}]}')
    failed = run_cli("merge", incoming, "--key", public, "--plan", bad_plan, "--out", site)
    assert failed.returncode == 2 and len(failed.stderr.strip().splitlines()) == 1
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no staging left behind"
