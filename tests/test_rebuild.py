"""Fast tests of the rebuild stage on the tiny autotools-like project (tests/data/tinyproject).

Every build here is real: the shipped runners (bubblewrap; podman too where it runs) run the
project's configure, make and make install on a tiny rootfs tarball made at test time from this
host's compiler (conftest's ``tinyproject_image``), checked against its digest like a pinned
environment. They run in seconds.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import BwrapWithoutDevShmAndPtmx, run_cli
from schema_support import assert_file_matches_schema

from verify.common.errors import (
    EXIT_ERROR,
    EXIT_FAILED,
    OperationalError,
    ToolMissing,
    UnsafeArchive,
    VerificationFailed,
    VerifyError,
)
from verify.common.fsutil import make_result_directory, write_json_atomic
from verify.compare.engine import diff_manifests
from verify.compare.twice import bisect_variations, rebuild_twice
from verify.environments.bwrap import BwrapRunner
from verify.environments.interface import RootfsImage, Runner, RunResult, SandboxSpec
from verify.environments.runners import get_runner
from verify.manifest import read_manifest
from verify.rebuild import (
    VARIATIONS,
    BuildFailed,
    BuildSettings,
    ChosenProfile,
    RebuildCache,
    RebuildResult,
    SourceNotVerified,
    apply_variations,
    cache_key,
    parse_variations,
    phase_commands,
    rebuild,
    unpack_release,
)
from verify.rebuild.core import PGO_TRAINING_MEMBER, PgoProfileNotPinned, check_pgo_profile
from verify.rebuild.logs import cap_log, log_tail
from verify.result import ResultDir
from verify.source.models import CheckStatus, FetchedFile, SignatureEvidence, SignatureKind, SourceVerdict
from verify.source.recipes import Recipe, parse_recipe
from verify.source.releases import Version

TINY = Path(__file__).parent / "data" / "tinyproject"
TINY_MTIME = 1_700_000_000
NEEDS_BWRAP = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

pytestmark = NEEDS_BWRAP


def make_tarball(path: Path, *, extra: dict[str, bytes] | None = None, top: str = "tiny-1.0") -> FetchedFile:
    """A deterministic .tar.gz of the tiny project (plus ``extra`` members) and its FetchedFile."""
    with tarfile.open(path, "w:gz") as archive:
        members = {f.name: f.read_bytes() for f in sorted(TINY.iterdir())}
        members.update(extra or {})
        for name, data in members.items():
            info = tarfile.TarInfo(name if name.startswith(("/", "..")) or "/" in name else f"{top}/{name}")
            info.size = len(data)
            info.mtime = TINY_MTIME
            info.mode = 0o755 if name == "configure" else 0o644
            archive.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return FetchedFile(name=path.name, path=path, sha256=digest, size=path.stat().st_size, origin=str(path))


def tiny_recipe(*configure: str) -> Recipe:
    """A recipe whose default profile passes ``configure`` flags to the tiny project."""
    flags = ", ".join(json.dumps(flag) for flag in ("--prefix=/opt/tiny", *configure))
    text = textwrap.dedent(
        f"""\
        schema = 1
        series = "3.13"
        [source]
        filenames = ["tiny-{{version}}.tar.gz"]
        urls = []
        [signatures]
        publishes = ["sigstore"]
        [signatures.sigstore]
        identity = "tiny@example.org"
        issuer = "https://issuer.example.org"
        [build]
        environment = "host"
        [build.profiles.default]
        configure = [{flags}]
        [build.expect.build_path]
        why = "the tiny project records its build directory in its sysconfigdata"
        paths = ["**/_sysconfigdata_*.py"]
        changes = ["content"]
        categories = ["build-path"]
        [build.expect.umask]
        why = "__pycache__ directories follow the umask"
        paths = ["**/__pycache__"]
        changes = ["mode"]
        """
    )
    return parse_recipe(text.encode(), Path("cpython-3.13.toml"))


TINY_VERSION = Version.parse("3.13.0")
"""The release the tiny project is built as (its recipe is the 3.13 series')."""


def verdict_for(tarball: FetchedFile, *, verified: bool = True, about: str | None = None) -> SourceVerdict:
    """A source verdict about ``tarball`` (or, ``about``, a tarball with that sha256): its signature good or BAD."""
    status, detail = (CheckStatus.VERIFIED, "good signature") if verified else (CheckStatus.FAILED, "BAD signature")
    return SourceVerdict(
        version=TINY_VERSION,
        recipe_series="3.13",
        recipe_sha256="0" * 64,
        tarball=replace(tarball, sha256=about or tarball.sha256),
        signatures=(SignatureEvidence(SignatureKind.OPENPGP, status, detail),),
        digests=(),
        patchlevel_version=str(TINY_VERSION),
    )


class CountingRunner(BwrapRunner):
    """The real bwrap runner, counting the commands it ran (to prove a refused source ran nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[list[str]] = []

    def run(self, image: RootfsImage, command, spec: SandboxSpec, *, log_path=None, interactive=False) -> RunResult:  # type: ignore[no-untyped-def]
        self.commands.append(list(command))
        return super().run(image, command, spec, log_path=log_path, interactive=interactive)


@pytest.fixture
def tiny(tmp_path: Path) -> FetchedFile:
    return make_tarball(tmp_path / "tiny-1.0.tar.gz")


def build_in(image: RootfsImage, tarball: FetchedFile, cache: RebuildCache, *configure: str,  # type: ignore[no-untyped-def]
             variations: frozenset[str] = frozenset(), **kw):  # fmt: skip
    """Rebuild the tiny project in ``image`` (with the shipped bwrap runner unless ``runner`` is given); a
    ``pgo_profile`` file is read as the chain reads ``--pgo-profile`` (:func:`check_pgo_profile`)."""
    runner = kw.pop("runner", None) or BwrapRunner()
    chosen = ChosenProfile.of(tiny_recipe(*configure), "default")
    profile = kw.pop("pgo_profile", None)
    if profile is not None:
        kw["pgo_profile_tar"] = check_pgo_profile(profile, chosen.configure_flags)
    return rebuild(
        tarball=tarball,
        verdict=kw.pop("verdict", None) or verdict_for(tarball),
        build_profile=chosen,
        image=image,
        runner=runner,
        cache=cache,
        settings=kw.pop("settings", BuildSettings()),
        variations=variations,
        **kw,
    )


Build = Callable[..., RebuildResult]


@pytest.fixture
def build(tinyproject_image: RootfsImage) -> Build:
    """:func:`build_in` the tiny rootfs: ``build(tarball, cache, *configure, variations=..., runner=..., ...)``."""

    def in_tiny_rootfs(tarball: FetchedFile, cache: RebuildCache, *configure: str, **kw: object) -> RebuildResult:
        return build_in(tinyproject_image, tarball, cache, *configure, **kw)  # type: ignore[no-any-return]

    return in_tiny_rootfs


def staging_left(cache: RebuildCache) -> list[Path]:
    return sorted(cache.root.glob(".staging-*")) if cache.root.exists() else []


def entries(cache: RebuildCache) -> list[Path]:
    return sorted(p for p in cache.root.iterdir() if len(p.name) == 64) if cache.root.exists() else []


# --- a successful build -------------------------------------------------------------------------


def test_rebuild_writes_the_documented_result_layout(tiny: FetchedFile, build: Build, tmp_path: Path) -> None:
    result = build(tiny, RebuildCache(tmp_path / "cache"))
    assert not result.from_cache
    record = ResultDir.open(result.result_dir).read_record()
    assert record == result.record
    assert json.loads(result.result.record_path.read_text())["format"] == "cpython-verify/rebuild/v2"
    assert record.version == TINY_VERSION and record.profile == "default" and record.inputs.runner == "bwrap"
    assert record.inputs.environment.name == "tinyproject-test"
    assert record.reproducibility is None and record.inputs.variations == ()
    # SOURCE_DATE_EPOCH comes from the release (the newest mtime in the tarball) and is recorded.
    assert record.source_date_epoch == TINY_MTIME
    assert record.inputs.settings["tz"] == "UTC" and record.inputs.settings["umask"] == "022"
    assert record.inputs.settings["build_dir"] == "/build/cpython"
    assert record.source.sha256 == tiny.sha256
    # The build saw exactly that epoch: the project writes the date it was given.
    info = result.result.root / "opt/tiny/share/tiny/build-info.txt"
    assert info.read_text() == "built 2023-11-14T22:13:20Z\n"
    hello = result.result.root / "opt/tiny/bin/hello"
    assert subprocess.run([hello], capture_output=True, check=True).stdout == b"hello from hello.c\n"
    manifest = read_manifest(result.result.manifest_path)
    assert manifest.by_path()["opt/tiny/bin/hello"].sha256 == hashlib.sha256(hello.read_bytes()).hexdigest()
    assert manifest.inputs["source"]["sha256"] == tiny.sha256
    assert manifest.inputs["settings"]["source_date_epoch"] == TINY_MTIME
    assert manifest.inputs == record.inputs.to_json(), "the manifest and the record name the same inputs"
    assert record.manifest_sha256 == hashlib.sha256(result.result.manifest_path.read_bytes()).hexdigest()
    assert json.loads((result.result_dir / "source-verdict.json").read_text())["verified"] is True
    # The record and manifest a real build wrote match the schemas the package ships (the source verdict
    # here is the test's own; real ones are checked in test_schemas).
    assert_file_matches_schema(result.result.record_path, "cpython-verify/rebuild/v2")
    assert_file_matches_schema(result.result.manifest_path, "cpython-verify/manifest/v1")
    assert {p.name for p in (result.result_dir / "logs").iterdir()} == {"configure.log", "make.log", "install.log"}
    assert not (result.result_dir / "build").exists(), "the build tree is not part of the result"


def test_cache_hit_returns_the_earlier_result_fast_and_force_rebuilds(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    cache = RebuildCache(tmp_path / "cache")
    first = build(tiny, cache)
    runner = CountingRunner()
    started = time.monotonic()
    again = build(tiny, cache, runner=runner)
    assert time.monotonic() - started < 3
    assert again.from_cache and again.result_dir == first.result_dir and runner.commands == []
    forced = build(tiny, cache, runner=runner, force=True)
    assert not forced.from_cache and len(runner.commands) == 3
    assert forced.result_dir == first.result_dir and entries(cache) == [first.result_dir]
    assert staging_left(cache) == []


def test_cache_key_changes_with_every_input() -> None:
    base = {
        "source_sha256": "a" * 64,
        "build_section": {"environment": "e", "profile": "default", "configure": ["--x"]},
        "environment_sha256": "b" * 64,
        "settings": BuildSettings().to_json(),
        "variations": frozenset[str](),
    }
    key = cache_key(**base)  # type: ignore[arg-type]
    assert key == cache_key(**base)  # type: ignore[arg-type]
    changed = [
        {"source_sha256": "c" * 64},
        {"build_section": {"environment": "e", "profile": "default", "configure": ["--y"]}},
        {"environment_sha256": "d" * 64},
        {"settings": apply_variations(BuildSettings(), frozenset({"umask"})).to_json()},
        {"variations": frozenset({"time"})},
    ]
    keys = {cache_key(**{**base, **change}) for change in changed}  # type: ignore[arg-type]
    assert len(keys) == len(changed) and key not in keys


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "marker"),
    [("configure", "TINY-CONFIGURE-FAILURE"), ("make", "TINY-MAKE-FAILURE"), ("install", "TINY-INSTALL-FAILURE")],
)
def test_failed_phase_is_named_with_its_log_tail_and_poisons_nothing(
    tiny: FetchedFile, build: Build, tmp_path: Path, phase: str, marker: str
) -> None:
    cache = RebuildCache(tmp_path / "cache")
    with pytest.raises(BuildFailed) as caught:
        build(tiny, cache, f"--fail-in={phase}", failed_logs_dir=tmp_path / "failed")
    failure = caught.value
    assert failure.phase == phase and failure.exit_code == EXIT_ERROR
    assert f"the {phase} phase failed" in failure.message and "\n" not in failure.message
    assert any(marker in line for line in failure.tail)
    assert failure.log_path.is_file() and marker in failure.log_path.read_text()
    assert entries(cache) == [] and staging_left(cache) == []


def test_cap_log_keeps_head_and_tail(tmp_path: Path) -> None:
    log = tmp_path / "make.log"
    log.write_bytes(b"HEAD\n" + b"x" * 10_000 + b"\nTAIL\n")
    assert cap_log(log, 1000) > 0
    data = log.read_bytes()
    assert data.startswith(b"HEAD\n") and data.endswith(b"\nTAIL\n") and b"bytes cut" in data
    assert len(data) < 1100
    small = tmp_path / "small.log"
    small.write_bytes(b"short\n")
    assert cap_log(small, 1000) == 0 and small.read_bytes() == b"short\n"
    assert log_tail(log, 1) == ["TAIL"]


def test_noisy_build_log_is_capped(tiny: FetchedFile, build: Build, tmp_path: Path) -> None:
    result = build(tiny, RebuildCache(tmp_path / "cache"), "--noise=100000", log_cap=64 * 1024)
    log = (result.result_dir / "logs" / "make.log").read_bytes()
    assert len(log) < 64 * 1024 + 200
    assert b"noise line 0 of make output" in log[:20_000] and b"noise line 99999 of make output" in log[-1000:]
    assert b"bytes cut from the middle of this log" in log


def test_unverified_source_is_never_unpacked_or_built(tiny: FetchedFile, build: Build, tmp_path: Path) -> None:
    cache, runner = RebuildCache(tmp_path / "cache"), CountingRunner()
    with pytest.raises(SourceNotVerified, match="BAD signature") as caught:
        build(tiny, cache, runner=runner, verdict=verdict_for(tiny, verified=False))
    assert caught.value.exit_code == EXIT_FAILED
    other = verdict_for(tiny, about="0" * 64)
    with pytest.raises(SourceNotVerified, match="the verdict is about sha256"):
        build(tiny, cache, runner=runner, verdict=other)
    assert runner.commands == [] and not cache.root.exists()


def test_bytes_changed_after_verification_are_not_built(tiny: FetchedFile, build: Build, tmp_path: Path) -> None:
    cache, runner = RebuildCache(tmp_path / "cache"), CountingRunner()
    # Same length, different bytes: the verified digest no longer describes the file.
    data = bytearray(tiny.path.read_bytes())
    data[-1] ^= 0xFF
    tiny.path.write_bytes(bytes(data))
    with pytest.raises(SourceNotVerified, match="changed since verification"):
        build(tiny, cache, runner=runner)
    assert runner.commands == [] and entries(cache) == [] and staging_left(cache) == []


def test_unpack_refuses_traversal_and_many_top_level_directories(tmp_path: Path) -> None:
    evil = make_tarball(tmp_path / "evil.tar.gz", extra={"../escape.txt": b"x"})
    with pytest.raises(UnsafeArchive):
        unpack_release(evil.path, tmp_path / "out" / "src")
    two = make_tarball(tmp_path / "two.tar.gz", extra={"other-top/file": b"x"})
    with pytest.raises(UnsafeArchive, match="top-level"):
        unpack_release(two.path, tmp_path / "out2" / "src")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out" / "src").exists() and not (tmp_path / "out2" / "src").exists()


def test_cancelled_build_leaves_no_entry_no_staging_and_no_process(
    tiny: FetchedFile, tinyproject_image: RootfsImage, tmp_path: Path
) -> None:
    cache_root, image = tmp_path / "cache", tinyproject_image
    script = textwrap.dedent(
        f"""
        import json, signal, sys
        from pathlib import Path
        # A shell that starts a job in the background makes it ignore SIGINT, and Python then installs
        # no handler; the build under test must see Ctrl-C however the test suite was started.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_rebuild import build_in, make_tarball
        from verify.environments.interface import RootfsImage
        from verify.rebuild import RebuildCache
        image = RootfsImage({image.name!r}, Path({str(image.tarball)!r}), {image.sha256!r}, {image.lock_sha256!r})
        tiny = make_tarball(Path({str(tmp_path / "cancel.tar.gz")!r}))
        build_in(image, tiny, RebuildCache(Path({str(cache_root)!r})), "--sleep=61.37")
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent.parent)
    try:
        deadline = time.monotonic() + 60
        while not any("sleeping 61.37" in log.read_text() for log in cache_root.glob(".staging-*/logs/make.log")):
            assert child.poll() is None, "the build ended before it could be cancelled"
            assert time.monotonic() < deadline, "the build never reached make"
            time.sleep(0.1)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=120)  # a bound, not a speed claim: a loaded machine can be slow to clean up
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode != 0
    assert list(cache_root.iterdir()) == [], "cancellation left staging or an entry behind"
    assert not _processes_with("61.37"), "the sandboxed sleep outlived the cancelled build"


def _processes_with(argument: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if argument in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.fixture
def small_tmpfs(tmp_path: Path):  # type: ignore[no-untyped-def]
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@NEEDS_ROOT
def test_full_disk_leaves_no_entry_and_no_staging(
    tiny: FetchedFile, build: Build, tmp_path: Path, small_tmpfs: Path
) -> None:
    cache = RebuildCache(small_tmpfs / "cache")
    with pytest.raises(BuildFailed) as caught:
        build(tiny, cache, f"--install-bytes={8 * 1024 * 1024}", failed_logs_dir=tmp_path / "failed")
    assert caught.value.phase == "install"
    assert "No space left on device" in caught.value.log_path.read_text()
    assert entries(cache) == [] and staging_left(cache) == []


@NEEDS_ROOT
def test_atomic_json_write_on_a_full_disk_keeps_the_old_file(small_tmpfs: Path) -> None:
    target = small_tmpfs / "manifest.json"
    write_json_atomic(target, {"old": True})
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(target, {"entries": ["x" * 1024] * 4096})
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in small_tmpfs.iterdir()] == ["manifest.json"], "no temporary file left behind"


def test_a_rootfs_whose_bytes_do_not_match_its_digest_is_never_used(
    tiny: FetchedFile, tinyproject_image: RootfsImage, tmp_path: Path
) -> None:
    tampered = tmp_path / "rootfs" / tinyproject_image.tarball.name
    tampered.parent.mkdir()
    data = bytearray(tinyproject_image.tarball.read_bytes())
    data[len(data) // 2] ^= 1
    tampered.write_bytes(bytes(data))
    image = replace(tinyproject_image, tarball=tampered)
    cache, runner = RebuildCache(tmp_path / "cache"), CountingRunner()
    with pytest.raises(VerificationFailed, match=f"expected {tinyproject_image.sha256}") as caught:
        build_in(image, tiny, cache, runner=runner)
    assert caught.value.exit_code == EXIT_FAILED
    assert len(runner.commands) == 1, "refused at the first phase, before anything ran"
    assert [p.name for p in tampered.parent.iterdir()] == [tampered.name], "nothing was unpacked"
    assert entries(cache) == [] and staging_left(cache) == []


def test_podman_builds_the_same_bytes_as_bwrap_from_the_same_rootfs(
    tiny: FetchedFile, build: Build, tinyproject_image: RootfsImage, tmp_path: Path
) -> None:
    podman: Runner = get_runner("podman")
    try:
        podman.check_available()
    except OperationalError as unusable:
        pytest.skip(f"podman is not usable here: {unusable}")
    with_bwrap = build(tiny, RebuildCache(tmp_path / "cache"))
    # The variations podman implements itself (user, CPUs, hostname) must not change the bytes either.
    varied = frozenset({"user", "cpus", "hostname"})
    with_podman = build(tiny, RebuildCache(tmp_path / "cache"), runner=podman, variations=varied)
    assert not with_podman.from_cache
    podman_inputs = with_podman.record.inputs
    assert podman_inputs.runner == "podman" and with_bwrap.record.inputs.runner == "bwrap"
    assert podman_inputs.environment.rootfs_sha256 == tinyproject_image.sha256
    assert podman_inputs.settings["user"] == "nobody" and podman_inputs.settings["make_jobs"] == 1
    assert diff_manifests(with_bwrap.result.read_manifest(), with_podman.result.read_manifest()) == ()


# --- variations ---------------------------------------------------------------------------------


def test_two_builds_with_nothing_varied_are_identical(tiny: FetchedFile, build: Build, tmp_path: Path) -> None:
    first = build(tiny, RebuildCache(tmp_path / "one"))
    second = build(tiny, RebuildCache(tmp_path / "two"))
    assert first.cache_key == second.cache_key
    assert diff_manifests(first.result.read_manifest(), second.result.read_manifest()) == ()


def test_twice_reports_differences_by_kind_and_bisect_names_the_culprits(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    cache = RebuildCache(tmp_path / "cache")

    def one(variations: frozenset[str]):  # type: ignore[no-untyped-def]
        return build(tiny, cache, variations=variations)

    spec = tiny_recipe().build
    assert spec is not None
    comparison = rebuild_twice(one, frozenset({"build_path", "umask", "locale"}), spec)
    assert not comparison.reproducible
    found = {(d.path, d.kind, d.changes) for d in comparison.differences}
    assert ("opt/tiny/lib/tiny/_sysconfigdata_tiny.py", "sysconfigdata", ("mode", "content")) in found
    assert ("opt/tiny/share/tiny/build-info.txt", "text", ("mode",)) in found
    # -ffile-prefix-map keeps the build path out of the ELF file, even with debug info.
    assert not any(d.kind.startswith("elf") for d in comparison.differences)
    # A build-path difference in sysconfigdata's content is explained (the recipe says so); a
    # umask-dependent mode of a file is not (the recipe only expects __pycache__ modes to follow it).
    sysconfig = next(d for d in comparison.differences if d.kind == "sysconfigdata")
    assert sysconfig.expected_by == ("build_path",) and sysconfig.unexplained_changes == ("mode",)
    assert sysconfig.category is not None and sysconfig.explanation
    assert "opt/tiny/share/tiny/build-info.txt" in {d.path for d in comparison.unexplained}
    bisected = bisect_variations(one, one(frozenset()), comparison)
    assert bisected.culprits == {"build_path": True, "locale": False, "umask": True}
    report = bisected.model_dump(mode="json")
    assert report["culprits"]["umask"] is True and not bisected.reproducible


def test_twice_and_compare_name_the_same_differences_the_same_way(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    """One diff: --twice's record and `compare` of the same two result directories agree path by path,
    in kind, change names and the comparator's category."""
    from verify.compare import compare_paths

    cache = RebuildCache(tmp_path / "cache")
    spec = tiny_recipe().build
    assert spec is not None
    check = rebuild_twice(lambda v: build(tiny, cache, variations=v), frozenset({"build_path", "umask"}), spec)
    assert check.differences
    compared = compare_paths(Path(check.first), Path(check.second))
    from_compare = {
        (d.path, d.kind, d.changes, d.comparison.category if d.comparison else None) for d in compared.differences
    }
    assert {(d.path, d.kind, d.changes, d.category) for d in check.differences} == from_compare


def test_user_hostname_timezone_cpus_variations_run_and_change_nothing_here(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    cache = RebuildCache(tmp_path / "cache")
    spec = tiny_recipe().build
    assert spec is not None
    comparison = rebuild_twice(
        lambda v: build(tiny, cache, variations=v), frozenset({"user", "hostname", "timezone", "cpus", "time"}), spec
    )
    assert comparison.reproducible, comparison.differences
    settings = ResultDir.open(Path(comparison.second)).read_record().inputs.settings
    assert settings["user"] == "nobody" and settings["tz"] == "GMT+12"
    assert settings["make_jobs"] == 1


def test_every_new_variation_runs_is_proven_and_changes_nothing_in_the_tiny_project(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    """time, fileordering, kernel, aslr, home, exec_path and user_group in one second build: each is proven
    by the probe inside the build's own sandbox, recorded with its host tool, and the tiny project's
    install tree does not depend on any of them."""
    for tool in ("setarch", "disorderfs"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/bootstrap installs it)")
    cache = RebuildCache(tmp_path / "cache")
    spec = tiny_recipe().build
    assert spec is not None
    chosen = frozenset({"time", "fileordering", "kernel", "aslr", "home", "exec_path", "user"})
    comparison = rebuild_twice(lambda v: build(tiny, cache, variations=v), chosen, spec)
    assert comparison.reproducible, comparison.differences
    assert "user_group" in comparison.variations and "user" not in comparison.variations
    second = ResultDir.open(Path(comparison.second))
    record = second.read_record()
    proofs = (second.path / "logs" / "variations-probe.log").read_text()
    for name in ("time", "fileordering", "kernel", "aslr"):
        assert f"PROVED {name}: " in proofs, proofs
    assert record.commands["probe"][0] == "/bin/sh" and "probe" in record.phase_seconds
    settings = record.inputs.settings
    assert settings["clock_offset"] == "+397d" and settings["uname_2_6"] is True and settings["aslr"] is False
    assert settings["home"] == "/nonexistent/second-build" and settings["user"] == "nobody"
    for tool in ("libfaketime", "setarch", "disorderfs"):
        assert " sha256 " in str(settings[f"host_tool_{tool}"])
    # The baseline ran no probe and records none of it.
    baseline = ResultDir.open(Path(comparison.first)).read_record()
    assert "probe" not in baseline.commands
    assert not any(key.startswith("host_tool_") for key in baseline.inputs.settings)


def test_a_variation_whose_tool_is_missing_stops_before_any_build_step(
    tiny: FetchedFile, tinyproject_image: RootfsImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verify.environments import perturb

    monkeypatch.setattr(perturb, "_LIBFAKETIME_GLOBS", ())
    runner = CountingRunner()
    with pytest.raises(ToolMissing, match="install the Debian package 'libfaketime'"):
        build_in(tinyproject_image, tiny, RebuildCache(tmp_path / "cache"), variations=frozenset({"time"}),
                 runner=runner)  # fmt: skip
    assert runner.commands == []
    monkeypatch.setenv("PATH", str(tmp_path))  # no setarch, no disorderfs
    for variation, package in (("kernel", "util-linux"), ("aslr", "util-linux"), ("fileordering", "disorderfs")):
        with pytest.raises(ToolMissing, match=f"install the Debian package '{package}'"):
            build_in(tinyproject_image, tiny, RebuildCache(tmp_path / "cache"), variations=frozenset({variation}),
                     runner=runner)  # fmt: skip
    assert runner.commands == []


def test_a_variation_the_probe_cannot_see_is_an_error_not_a_silent_skip() -> None:
    from verify.environments.perturb import VariationNotInEffect, parse_probe

    spec = SandboxSpec(clock_offset="+397d", uname_2_6=True, aslr=False)
    seen = "clock 1000\nuname 6.1.0-28-amd64\npersonality 00040000\n.\n..\n"
    with pytest.raises(VariationNotInEffect, match="time: the clock inside the sandbox is 0 s"):
        parse_probe(seen, spec, host_clock=1000, host_listing=None)
    shifted = seen.replace("clock 1000", f"clock {1000 + 397 * 86400}")
    with pytest.raises(VariationNotInEffect, match="kernel: uname -r"):
        parse_probe(shifted, spec, host_clock=1000, host_listing=None)
    with pytest.raises(VariationNotInEffect, match="aslr"):
        parse_probe(shifted.replace("00040000", "00000000"), SandboxSpec(aslr=False), host_clock=1000 + 397 * 86400,
                    host_listing=None)  # fmt: skip
    ordered = SandboxSpec(reversed_directory_order=True)
    with pytest.raises(VariationNotInEffect, match="fileordering"):
        parse_probe("clock 1\nuname 6.1\npersonality 0\na\nb\n", ordered, host_clock=1, host_listing=["a", "b"])
    assert parse_probe("clock 1\nuname 6.1\npersonality 0\nb\na\n", ordered, host_clock=1,
                       host_listing=["a", "b"]).proofs["fileordering"]  # fmt: skip


# --- settings, pure -----------------------------------------------------------------------------


def test_every_reproducibility_setting_is_in_the_environment() -> None:
    env = BuildSettings(source_date_epoch=123).environment()
    assert env["SOURCE_DATE_EPOCH"] == "123" and env["TZ"] == "UTC" and env["LC_ALL"] == "C.UTF-8"
    assert env["PYTHONHASHSEED"] == "0"
    with pytest.raises(OperationalError, match="SOURCE_DATE_EPOCH"):
        BuildSettings().environment()


def test_phase_commands_set_umask_and_map_the_build_path() -> None:
    settings = BuildSettings(source_date_epoch=1, jobs=3)
    phases = dict(phase_commands(["--prefix=/opt/python", "CFLAGS=-O2"], settings))
    assert list(phases) == ["configure", "make", "install"]
    assert "umask 022" in phases["configure"][2]
    assert "CFLAGS=-O2 -ffile-prefix-map=/build/cpython=." in phases["configure"]
    assert phases["make"][-1] == "-j3" and phases["install"][-1] == "DESTDIR=/out/root"
    plain = dict(phase_commands(["--prefix=/x"], replace(settings, file_prefix_map=False)))
    assert not any(arg.startswith("CFLAGS=") for arg in plain["configure"])


def test_variations_parse_and_apply() -> None:
    assert parse_variations(["build_path,umask", "locale"]) == {"build_path", "umask", "locale"}
    with pytest.raises(OperationalError, match="unknown variation 'environment'"):
        parse_variations(["environment"])
    # reprotest's names; "all" is every variation; the older and reprotest's other spellings are aliases.
    assert parse_variations(["all"]) == set(VARIATIONS) >= {
        "time", "fileordering", "kernel", "aslr", "home", "exec_path", "user_group", "build_path", "umask",
        "locale", "cpus", "hostname", "timezone"}  # fmt: skip
    assert parse_variations(["user,num_cpus", "domain-host"]) == {"user_group", "cpus", "hostname"}
    base = BuildSettings()
    varied = apply_variations(base, frozenset({"build_path", "umask", "locale", "timezone", "hostname", "user"}))
    assert varied.build_dir != base.build_dir and varied.umask == "002" and varied.locale == "fr_CH.UTF-8"
    assert varied.tz != "UTC" and varied.hostname != base.hostname and varied.user != "root"
    assert apply_variations(base, frozenset({"time"})) == replace(base, clock_offset="+397d")
    host_applied = apply_variations(base, frozenset({"fileordering", "kernel", "aslr", "home", "exec_path"}))
    assert host_applied.reversed_directory_order and host_applied.uname_2_6 and not host_applied.aslr
    env = replace(host_applied, source_date_epoch=1).environment()
    assert env["HOME"] == "/nonexistent/second-build" and env["PATH"].endswith(":/bin:/i_capture_the_path")
    # A baseline's recorded settings (and so its cache key) do not list the variation-only fields.
    assert "clock_offset" not in base.to_json() and host_applied.to_json()["aslr"] is False
    with pytest.raises(OperationalError):
        BuildSettings(build_dir="/elsewhere/x")


def test_sandbox_provides_dev_shm_and_ptmx_unless_told_not_to(tinyproject_image: RootfsImage, tmp_path: Path) -> None:
    probe = ["/bin/sh", "-c", "test -d /dev/shm && test -c /dev/ptmx"]
    spec = SandboxSpec(env={"PATH": "/usr/bin:/bin"})
    assert BwrapRunner().run(tinyproject_image, probe, spec, log_path=tmp_path / "a.log").returncode == 0
    crippled = BwrapWithoutDevShmAndPtmx()
    assert crippled.run(tinyproject_image, probe, spec, log_path=tmp_path / "b.log").returncode != 0


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--twice", "--vary", "environment"], "unknown variation 'environment'"),
        (["--bisect"], "--bisect needs --twice"),
        (["--vary", "umask"], "--vary needs --twice"),
        (["--pgo-profile", __file__], "--pgo-profile needs --pgo-profile-sha256"),
        (["--pgo-profile-sha256", "0" * 64], "--pgo-profile-sha256 needs --pgo-profile"),
    ],
)
def test_rebuild_command_rejects_bad_arguments_with_one_line(args: list[str], message: str) -> None:
    completed = run_cli("rebuild", "3.13.5", *args)
    assert completed.returncode == EXIT_ERROR
    assert message in completed.stderr and "Traceback" not in completed.stderr


# --- PGO with a pinned profile ------------------------------------------------------------------


def test_pgo_profile_is_trained_once_stored_and_reused_for_identical_output(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    trained = build(tiny, RebuildCache(tmp_path / "a"), "--enable-optimizations")
    stored = trained.result_dir / "pgo-profile.tar"
    with tarfile.open(stored) as archive:
        names = archive.getnames()
        assert names[0] == PGO_TRAINING_MEMBER, "the training record comes first"
        assert [name.endswith(".gcda") for name in names[1:]] == [True, True]
        stream = archive.extractfile(PGO_TRAINING_MEMBER)
        assert stream is not None
        stored_record = json.loads(stream.read())
    assert trained.record.pgo_profile is not None
    assert trained.record.pgo_profile.origin == "trained in this build"
    # What it was trained on, inside the digest-pinned archive and in rebuild.json alike.
    assert trained.record.pgo_profile.trained_on is not None
    # CPython's own training task writes no run record: the archive holds none (run is None).
    assert trained.record.pgo_profile.trained_on.run is None
    assert stored_record == trained.record.pgo_profile.trained_on.model_dump(mode="json", exclude={"run"})
    assert stored_record == {
        "format": "cpython-verify/pgo-training/v1", "version": "3.13.0", "series": "3.13",
        "source": {"name": tiny.name, "sha256": tiny.sha256}, "profile": "default",
        "configure": ["--prefix=/opt/tiny", "--enable-optimizations"],
        "environment": trained.record.inputs.environment.name,
        "rootfs_sha256": trained.record.inputs.environment.rootfs_sha256,
        "build_dir": BuildSettings().build_dir,
    }  # fmt: skip
    assert trained.record.pgo_profile.sha256 == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert "TINY-TRAINING-RUN" in (trained.result_dir / "logs/make.log").read_text()
    assert "-frandom-seed=cpython-verify" in " ".join(trained.record.commands["configure"])

    profile = FetchedFile(stored.name, stored, trained.record.pgo_profile.sha256, stored.stat().st_size, "a")
    reused = build(tiny, RebuildCache(tmp_path / "b"), "--enable-optimizations", pgo_profile=profile)
    assert reused.record.pgo_profile is not None
    assert reused.record.pgo_profile.model_dump() == {
        "sha256": profile.sha256, "origin": "reused", "file": None,
        "trained_on": trained.record.pgo_profile.trained_on.model_dump(), "counters": None, "counters_sha256": None,
    }  # fmt: skip
    assert trained.record.pgo_profile.counters == 2 and trained.record.pgo_profile.counters_sha256 is not None
    assert "TINY-TRAINING-RUN" not in (reused.result_dir / "logs/make.log").read_text()
    assert "-fprofile-use" in (reused.result_dir / "logs/make.log").read_text()
    assert diff_manifests(trained.result.read_manifest(), reused.result.read_manifest()) == ()
    assert reused.cache_key != trained.cache_key, "the profile digest is part of the cache key"


def test_a_reused_profile_misses_objects_named_after_absolute_source_paths_under_another_build_path(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    """Why 3.11's recipe documents its setup.py modules under build_path for PGO profiles only: modtool is
    built as distutils builds them (absolute source path, object named after it), so GCC looks for its
    profile under the training's build directory and compiles it untrained elsewhere. hello (a relative
    path, as CPython's Makefile builds) keeps its profile. The training record names the directory."""
    from verify.rebuild.twice_training import trained_profile

    cache = RebuildCache(tmp_path / "cache")
    trained = build(tiny, cache, "--enable-optimizations")
    pinned = trained_profile(trained)
    assert pinned is not None and trained.record.pgo_profile is not None
    trained_on = trained.record.pgo_profile.trained_on
    assert trained_on is not None and trained_on.build_dir == BuildSettings().build_dir
    with tarfile.open(pinned.file.path) as archive:
        assert f"objs{BuildSettings().build_dir}/mod.gcda" in archive.getnames()
    same_path = build(tiny, RebuildCache(tmp_path / "same"), "--enable-optimizations", pgo_profile_tar=pinned)
    assert diff_manifests(trained.result.read_manifest(), same_path.result.read_manifest()) == ()
    varied = build(tiny, cache, "--enable-optimizations", pgo_profile_tar=pinned, variations=frozenset({"build_path"}))
    log = (varied.result_dir / "logs/make.log").read_text()
    assert "TINY-TRAINING-RUN" not in log and "profile count data file not found" in log
    differing = {entry.path for entry in diff_manifests(trained.result.read_manifest(), varied.result.read_manifest())}
    assert differing == {"opt/tiny/lib/tiny/_sysconfigdata_tiny.py", "opt/tiny/bin/modtool"}
    # Untrained is a real code difference: an expectation on modtool's path that names the debug-info it
    # would be if the path were the only cause explains nothing (issue 18: the comparator's category counts).
    from dataclasses import replace

    from verify.compare.twice import compare_results
    from verify.source.recipes import ExpectedDifference, InapplicableVariation

    spec = tiny_recipe().build
    assert spec is not None
    documented = ExpectedDifference("build_path", ("**/bin/modtool",), frozenset({"content"}), "absolute source path",
                                    frozenset({"debug-info", "build-path"}))  # fmt: skip
    pgo = replace(spec.profiles["default"], name="pgo", expect={"build_path": documented})
    spec = replace(spec, profiles={**spec.profiles, "pgo": pgo})
    check = compare_results(trained, varied, frozenset({"build_path"}), spec, "pgo")
    modtool = next(d for d in check.differences if d.path == "opt/tiny/bin/modtool")
    assert modtool.category == "code" and not modtool.explained and modtool.expected_by == ()
    assert {d.path for d in check.unexplained} == {"opt/tiny/bin/modtool"}
    # What the recipes do instead: build_path does not apply to such a profile. --twice skips it, says
    # why, and varies the rest (hostname here), so nothing is left to "explain".
    why = "modtool's profile is keyed to the absolute source path: another build path compiles it untrained"
    pgo = replace(pgo, expect={}, inapplicable={"build_path": InapplicableVariation("build_path", why)})
    spec = replace(spec, profiles={**spec.profiles, "pgo": pgo})
    built: list[frozenset[str]] = []

    def reusing(variations: frozenset[str]) -> RebuildResult:
        built.append(variations)
        return build(tiny, cache, "--enable-optimizations", pgo_profile_tar=pinned, variations=variations)

    skipping = rebuild_twice(reusing, frozenset({"build_path", "hostname"}), spec, "pgo")
    assert built == [frozenset(), frozenset({"hostname"})]
    assert skipping.variations == ("hostname",) and skipping.skipped == {"build_path": why}
    assert skipping.reproducible
    from verify.report.rebuild import reproducibility_text

    assert reproducibility_text(skipping) == [
        "reproducible: the build varied in hostname is identical in every file",
        f"skipped variation build_path: does not apply to this profile: {why}",
    ]
    assert skipping.model_dump(mode="json")["skipped"] == {"build_path": why}
    with pytest.raises(OperationalError, match="no requested variation applies to profile pgo: build_path: modtool"):
        rebuild_twice(reusing, frozenset({"build_path"}), spec, "pgo")
    assert len(built) == 2, "refused before any build"


def test_a_cached_pgo_build_whose_profile_has_no_training_record_is_built_again(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    cache = RebuildCache(tmp_path / "cache")
    first = build(tiny, cache, "--enable-optimizations")
    assert build(tiny, cache, "--enable-optimizations").from_cache
    # What an entry an earlier cpython-verify committed looks like: a profile with no training record.
    profile = first.record.pgo_profile
    assert profile is not None
    first.result.write_record(first.record.model_copy(update={"pgo_profile": profile.model_copy(
        update={"trained_on": None})}))  # fmt: skip
    again = build(tiny, cache, "--enable-optimizations")
    assert not again.from_cache and again.cache_key == first.cache_key
    assert again.record.pgo_profile is not None and again.record.pgo_profile.trained_on is not None


def test_lto_build_under_another_build_path_keeps_its_binary(tiny: FetchedFile, build: Build, tmp_path: Path) -> None:
    """With LTO, GCC writes debug info at link time from the link command's flags: the build-path map
    must reach LDFLAGS too, or every LTO binary records the build directory (as 3.13.5's pgo-lto did)."""
    cache = RebuildCache(tmp_path / "cache")
    baseline = build(tiny, cache, "--with-lto")
    varied = build(tiny, cache, "--with-lto", variations=frozenset({"build_path"}))
    assert "-flto" in (baseline.result_dir / "logs/make.log").read_text()
    assert any(flag.startswith("LDFLAGS=-ffile-prefix-map=") for flag in varied.record.commands["configure"])
    differing = {entry.path for entry in diff_manifests(baseline.result.read_manifest(), varied.result.read_manifest())}
    assert differing == {"opt/tiny/lib/tiny/_sysconfigdata_tiny.py"}


def test_twice_pins_the_profile_its_baseline_trained_for_the_varied_build(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    """``--twice`` on a PGO profile: the second build reuses the baseline's trained profile by digest
    (two trainings would differ in their counters), and is identical to the baseline under variations."""
    from verify.rebuild.twice_training import trained_profile

    plain = build(tiny, RebuildCache(tmp_path / "plain"))
    assert trained_profile(plain) is None
    trained = build(tiny, RebuildCache(tmp_path / "a"), "--enable-optimizations")
    pinned = trained_profile(trained)
    assert pinned is not None and trained.record.pgo_profile is not None
    assert (
        pinned.sha256 == trained.record.pgo_profile.sha256 == hashlib.sha256(pinned.file.path.read_bytes()).hexdigest()
    )
    varied = build(tiny, RebuildCache(tmp_path / "a"), "--enable-optimizations", pgo_profile_tar=pinned,
                   variations=frozenset({"hostname", "locale"}))  # fmt: skip
    assert varied.record.pgo_profile is not None and varied.record.pgo_profile.origin == "reused"
    assert "TINY-TRAINING-RUN" not in (varied.result_dir / "logs/make.log").read_text()
    assert diff_manifests(trained.result.read_manifest(), varied.result.read_manifest()) == ()
    reused = build(tiny, RebuildCache(tmp_path / "b"), "--enable-optimizations", pgo_profile_tar=pinned)
    assert trained_profile(reused) is None, "only a profile trained in this build is pinned for the next"


def test_a_pgo_profile_must_match_its_digest_and_hold_only_gcda_files(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    bogus = tmp_path / "profile.tar"
    with tarfile.open(bogus, "w") as archive:
        info = tarfile.TarInfo("Makefile")
        payload = b"all:\n\techo pwned\n"
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    digest = hashlib.sha256(bogus.read_bytes()).hexdigest()
    cache = RebuildCache(tmp_path / "cache")
    with pytest.raises(UnsafeArchive, match=r"only \.gcda"):
        build(tiny, cache, "--enable-optimizations", pgo_profile=FetchedFile("p.tar", bogus, digest, 1, "x"))
    with pytest.raises(SourceNotVerified, match="changed since verification"):
        build(tiny, cache, "--enable-optimizations", pgo_profile=FetchedFile("p.tar", bogus, "0" * 64, 1, "x"))
    assert entries(cache) == [] and staging_left(cache) == []


def test_a_pgo_profile_rewritten_after_it_was_read_is_refused_as_the_build_copies_it(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    """The profile is read (hashed, its record judged) once, before the first build step; the bytes the build
    installs are hashed again as they are copied, so bytes rewritten in between are refused like any profile
    that is not its pin: one line, exit 2, nothing cached."""
    from verify.rebuild.twice_training import trained_profile

    trained = trained_profile(build(tiny, RebuildCache(tmp_path / "a"), "--enable-optimizations"))
    assert trained is not None
    path = tmp_path / "pgo-profile.tar"
    shutil.copyfile(trained.file.path, path)
    read = check_pgo_profile(replace(trained.file, path=path), trained.training.configure)
    path.write_bytes(path.read_bytes() + b"\0" * 512)  # another tar end block: still a tar, not the pinned bytes
    cache = RebuildCache(tmp_path / "b")
    with pytest.raises(PgoProfileNotPinned, match="its bytes changed since verification") as refused:
        build(tiny, cache, "--enable-optimizations", pgo_profile_tar=read)
    assert refused.value.exit_code == EXIT_ERROR and "\n" not in str(refused.value)
    assert entries(cache) == [] and staging_left(cache) == []


# --- the command's result directory ---------------------------------------------------------------


def test_publish_assembles_the_result_and_never_replaces_an_unrelated_directory(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    from verify.result.publish import publish

    cache = RebuildCache(tmp_path / "cache")
    spec = tiny_recipe().build
    assert spec is not None
    comparison = rebuild_twice(lambda v: build(tiny, cache, variations=v), frozenset({"build_path"}), spec)
    baseline = build(tiny, cache)
    out = tmp_path / "result"
    publish(baseline.result, baseline.record.model_copy(update={"reproducibility": comparison}), out)
    check = ResultDir.open(out).read_record().reproducibility
    assert check is not None and check.reproducible is False and check.explained is True
    assert [(d.path, d.kind, d.changes, d.expected_by) for d in check.differences] == [
        ("opt/tiny/lib/tiny/_sysconfigdata_tiny.py", "sysconfigdata", ("content",), ("build_path",))
    ]
    assert (out / "root/opt/tiny/bin/hello").is_file() and (out / "manifest.json").is_file()
    assert (out / "source-verdict.json").is_file() and (out / "logs/make.log").is_file()
    # The cache entry itself still says "single build": results in the cache are immutable.
    assert ResultDir.open(baseline.result_dir).read_record().reproducibility is None
    publish(baseline.result, baseline.record, out)  # an earlier result is replaced
    assert ResultDir.open(out).read_record().reproducibility is None
    assert not ResultDir(out).compare_html_path.exists(), "a single build has no comparison to report"
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not lose me")
    with pytest.raises(OperationalError, match="not a cpython-verify result"):
        publish(baseline.result, baseline.record, precious)
    assert (precious / "thesis.tex").read_text() == "do not lose me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "precious", "result", "tiny-1.0.tar.gz"]


def _difference_block(page: str, path: str) -> str:
    """The ``<details>`` block the compare report gives ``path``."""
    start = page.index(f"<details><summary><code>{path}</code>")
    return page[start : page.index("</details>", start)]


def test_twice_publishes_compare_html_with_the_records_verdict_and_the_recipes_reasons(
    tiny: FetchedFile, build: Build, tmp_path: Path
) -> None:
    """A real --twice (build path and umask varied): the result gains compare.html, compare's own report of
    the one comparison, in the record's words, with the recipe's reason beside the explained change."""
    from verify.compare.twice import compare_builds
    from verify.report.compare import render_html
    from verify.report.rebuild import rebuild_text, reproducibility_text, twice_report_html
    from verify.result.publish import publish

    cache = RebuildCache(tmp_path / "cache")
    spec = tiny_recipe().build
    assert spec is not None
    baseline = build(tiny, cache)
    chosen = frozenset({"build_path", "umask"})
    twice = compare_builds(baseline, build(tiny, cache, variations=chosen), chosen, spec, "default")
    record = baseline.record.model_copy(update={"reproducibility": twice.check})
    result = publish(baseline.result, record, tmp_path / "result",
                     compare_html=twice_report_html(twice, version=TINY_VERSION, profile="default"))  # fmt: skip

    page = result.compare_html_path.read_text()
    assert stat.S_IMODE(result.compare_html_path.stat().st_mode) == 0o644
    assert ResultDir.open(result.path).read_record() == record
    title = "CPython 3.13.0, profile default: baseline vs. a build varied in build_path, umask"
    assert f"<title>cpython-verify: {title}</title>" in page and f"<h1>cpython-verify: {title}</h1>" in page
    assert "<td>A (baseline)</td>" in page and "<td>B (varied: build_path, umask)</td>" in page
    # The verdict is the record's, word for word, and coloured as a difference nothing explains (the
    # umask changes the mode of every installed directory and file, which the recipe expects only of
    # __pycache__).
    text = reproducibility_text(twice.check)
    assert text[0] == "NOT reproducible bit for bit: 9 path(s) differ (varied: build_path, umask)"
    assert "unexplained differences: 9" in text
    assert (
        f"<div class='verdict differ'>{text[0]}<p>unexplained differences: 9</p><p>Build paths "
        "<code>/build/cpython</code> vs <code>/build/varied-build-path/cpython-rebuild</code>.</p></div>"
    ) in page
    # sysconfigdata's content follows the build path, as the recipe says (its words are on the page);
    # its mode follows the umask, which the recipe expects of __pycache__ only.
    sysconfig = _difference_block(page, "opt/tiny/lib/tiny/_sysconfigdata_tiny.py")
    assert (
        "Expected with the variation <b>build_path</b>; the recipe says: the tiny project records its build "
        "directory in its sysconfigdata"
    ) in sysconfig
    assert "Not explained: no chosen variation is documented to cause mode here." in sysconfig
    recorded = next(d for d in twice.check.differences if d.kind == "sysconfigdata")
    assert recorded.explanation is not None and html.escape(recorded.explanation, quote=True) in sysconfig
    build_info = _difference_block(page, "opt/tiny/share/tiny/build-info.txt")
    assert "<span class='cat unexplained'>unexplained</span>" in build_info and "Expected with" not in build_info
    # compare's own report of the same comparison: its tables and every path, self-contained (no script,
    # no link, nothing fetched).
    plain = render_html(twice.comparison)
    for heading in ("<h2>Differences by kind</h2>", "<h2>Why the contents differ</h2>"):
        table = plain[plain.index(heading) : plain.index("</table>", plain.index(heading))]
        assert table in page
    assert all(f"<code>{d.path}</code>" in page for d in twice.comparison.differences)
    assert "<script" not in page and "src=" not in page and "href=" not in page and "url(" not in page
    assert rebuild_text(result, record)[-1] == f"comparison report: {result.compare_html_path}"

    # Only the build path varied: every difference is explained.
    explained = compare_builds(baseline, build(tiny, cache, variations=frozenset({"build_path"})),
                               frozenset({"build_path"}), spec, "default")  # fmt: skip
    page = twice_report_html(explained, version=TINY_VERSION, profile="default")
    assert (
        "<div class='verdict explained'>NOT reproducible bit for bit: 1 path(s) differ (varied: build_path)"
        "<p>all differences are of the kinds the chosen variations are documented to cause</p>"
    ) in page
    assert "<span class='cat expected'>explained</span>" in page and "Not explained" not in page
    # Nothing varied that changes anything: the record's "reproducible" line, and no difference listed.
    same = compare_builds(baseline, build(tiny, cache, variations=frozenset({"locale"})), frozenset({"locale"}), spec)
    page = twice_report_html(same, version=TINY_VERSION, profile="default")
    assert (
        "<div class='verdict same'>reproducible: the build varied in locale is identical in every file</div>" in page
    ) and "<details>" not in page


def test_the_reasons_quoted_are_the_recipes_for_that_path_and_profile() -> None:
    from verify.compare.twice import expected_reasons
    from verify.result import RecordedDifference
    from verify.source.recipes import ExpectedDifference

    spec = tiny_recipe().build
    assert spec is not None
    documented = ExpectedDifference("build_path", ("**/bin/modtool",), frozenset({"content"}), "absolute source path",
                                    frozenset({"debug-info"}))  # fmt: skip
    spec = replace(spec, profiles={**spec.profiles, "pgo": replace(spec.profiles["default"], name="pgo",
                                                                   expect={"build_path": documented})})  # fmt: skip
    modtool = RecordedDifference(path="opt/tiny/bin/modtool", kind="elf-executable", changes=("content",),
                                 category="debug-info", expected_by=("build_path",))  # fmt: skip
    assert expected_reasons(modtool, spec, "pgo") == (("build_path", "absolute source path"),)
    assert expected_reasons(modtool, spec, "default") == ()
    # The recipe's words are quoted only for the kind of difference it documents.
    assert expected_reasons(modtool.model_copy(update={"category": "code"}), spec, "pgo") == ()
    sysconfig = RecordedDifference(path="opt/tiny/lib/tiny/_sysconfigdata_tiny.py", kind="sysconfigdata",
                                   changes=("mode", "content"), category="build-path",
                                   expected_by=("build_path",))  # fmt: skip
    why = "the tiny project records its build directory in its sysconfigdata"
    assert expected_reasons(sysconfig, spec, "pgo") == (("build_path", why),)
    # Only the variations the record says explain the path are quoted.
    assert expected_reasons(sysconfig.model_copy(update={"expected_by": ()}), spec, "pgo") == ()


def _read_as_nobody(path: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", str(path)],
        capture_output=True,
        check=False,
    )


@NEEDS_ROOT
def test_every_file_of_a_published_result_is_0644_and_readable_by_another_user(tiny: FetchedFile, build: Build) -> None:
    # The nightly workflow runs `sudo ... rebuild` and then `attest` as a normal user, which must be
    # able to read rebuild.json, source-verdict.json and manifest.json. pytest's tmp_path is 0700,
    # so the build happens in a directory of its own that another user can enter.
    from verify.result.publish import publish

    with tempfile.TemporaryDirectory(prefix="cpython-verify-modes-") as scratch:
        base = Path(scratch)
        base.chmod(0o755)
        cache = RebuildCache(base / "cache")
        result = build(tiny, cache, "--enable-optimizations")  # also writes pgo-profile.tar
        out = base / "result"
        publish(result.result, result.record, out)
        checked = []
        for directory in (result.result_dir, out):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory
            for path in sorted(directory.rglob("*")):
                relative = path.relative_to(directory)
                if relative.parts[0] == "root":
                    continue  # the install tree keeps the modes the build gave it (compared, not published)
                expected = 0o755 if path.is_dir() else 0o644
                assert stat.S_IMODE(path.lstat().st_mode) == expected, f"{path}: {oct(path.lstat().st_mode)}"
                if path.is_file():
                    read = _read_as_nobody(path)
                    assert read.returncode == 0, f"nobody cannot read {path}: {read.stderr.decode()}"
                    assert read.stdout == path.read_bytes()
                    checked.append(relative.as_posix())
        assert {"rebuild.json", "source-verdict.json", "manifest.json", "pgo-profile.tar", "logs/make.log"} <= set(
            checked
        )
        assert _read_as_nobody(out / "root/opt/tiny/bin/hello").returncode == 0


def test_the_atomic_writer_publishes_0644_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        write_json_atomic(tmp_path / "result.json", {"b": 1, "a": [1]})
        directory = make_result_directory(tmp_path / "parent", ".staging-")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "result.json").stat().st_mode) == 0o644
    assert (tmp_path / "result.json").read_bytes() == b'{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parent", "result.json"], "no temporary file left"


def test_an_unusable_pgo_profile_is_refused_before_any_build_step(tiny: FetchedFile, tmp_path: Path) -> None:
    """A wrong digest, a hostile member path, or a profile for a build without PGO: refused before the
    runner runs anything, with nothing left in the cache."""

    def profile_tar(name: str) -> Path:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.tar"
        record = training_record(configure=["--enable-optimizations"])
        return write_profile_tar(path, [(PGO_TRAINING_MEMBER, json.dumps(record).encode()), (name, b"gcda")])

    def pinned(path: Path, digest: str | None = None) -> FetchedFile:
        return FetchedFile(path.name, path, digest or hashlib.sha256(path.read_bytes()).hexdigest(), 1, "x")

    good = profile_tar("Modules/main.gcda")
    check_pgo_profile(pinned(good), ["--enable-optimizations"])
    with pytest.raises(SourceNotVerified, match="never matched the pin"):
        check_pgo_profile(pinned(good, "1" * 64), ["--enable-optimizations"])
    with pytest.raises(UnsafeArchive, match="escapes the build tree"):
        check_pgo_profile(pinned(profile_tar("../../etc/x.gcda")), ["--enable-optimizations"])
    with pytest.raises(UnsafeArchive, match="escapes the build tree"):
        check_pgo_profile(pinned(profile_tar("/abs/x.gcda")), ["--enable-optimizations"])
    with pytest.raises(OperationalError, match="no --enable-optimizations"):
        check_pgo_profile(pinned(good), ["--prefix=/opt/tiny"])

    # rebuild() judges the profile it is handed (read for a PGO build) against its own build profile.
    runner = CountingRunner()
    cache = RebuildCache(tmp_path / "cache")
    read = check_pgo_profile(pinned(good), ["--enable-optimizations"])
    with pytest.raises(OperationalError, match="no --enable-optimizations"):
        rebuild(tarball=tiny, verdict=verdict_for(tiny), build_profile=ChosenProfile.of(tiny_recipe(), "default"),
                image=RootfsImage("unused", tmp_path / "none.tar", "0" * 64, None),
                runner=runner, cache=cache, pgo_profile_tar=read)  # fmt: skip
    assert runner.commands == [] and entries(cache) == [] and staging_left(cache) == []


# --- what a PGO profile was trained on ----------------------------------------------------------


def training_record(**changes: object) -> dict[str, object]:
    """A PGO training record (the JSON of ``cpython-verify-pgo.json``), with ``changes`` applied."""
    record: dict[str, object] = {
        "format": "cpython-verify/pgo-training/v1", "version": "3.13.0", "series": "3.13",
        "source": {"name": "tiny-1.0.tar.gz", "sha256": "0" * 64}, "profile": "default",
        "configure": ["--prefix=/opt/tiny", "--enable-optimizations"],
        "environment": "tinyproject-test", "rootfs_sha256": "0" * 64, "build_dir": "/build/cpython",
    }  # fmt: skip
    record.update(changes)
    return record


Members = list[tuple[str, bytes]]


def write_profile_tar(path: Path, members: Members, *, links: dict[str, str] | None = None) -> Path:
    """A ``pgo-profile.tar`` holding ``members`` (name, bytes) in order and symlinks ``links`` (name -> target)."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


def pinned_profile(path: Path) -> FetchedFile:
    return FetchedFile(path.name, path, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size, "x")


def _record_bytes(record: object) -> bytes:
    return json.dumps(record).encode()


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# case -> (the matching record -> the archive's members besides a .gcda, a fragment of the one-line refusal)
UNUSABLE_PROFILES: dict[str, tuple[Callable[[dict[str, object]], Members], str]] = {
    "another version": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "version": "3.13.1"}))],
        "it was trained for CPython 3.13.1, this build is for CPython 3.13.0",
    ),
    "another tarball": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "source": {"name": "tiny-1.0.tgz", "sha256": "e" * 64}}))],
        f"it was trained for a tarball with sha256 {'e' * 64}, this build is for a tarball with sha256",
    ),
    "other configure flags": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "configure": ["--enable-optimizations"]}))],
        "it was trained for configure flags ['--enable-optimizations'], this build is for configure flags "
        "['--prefix=/opt/tiny', '--enable-optimizations']",
    ),
    "another environment": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "environment": "bookworm-other"}))],
        "it was trained for environment bookworm-other, this build is for environment tinyproject-test",
    ),
    "another rootfs": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "rootfs_sha256": "f" * 64}))],
        f"it was trained for a rootfs with sha256 {'f' * 64}, this build is for a rootfs with sha256",
    ),
    "no record": (
        lambda r: [("Modules/main.gcda", b"gcda")],
        "it has no training record (cpython-verify-pgo.json); it predates profiles that record what they were "
        "trained on: train it again",
    ),
    "the record outside the tree": (
        lambda r: [("../" + PGO_TRAINING_MEMBER, _record_bytes(r))],
        "a PGO profile member escapes the build tree ('../cpython-verify-pgo.json')",
    ),
    "the record at an absolute path": (
        lambda r: [("/" + PGO_TRAINING_MEMBER, _record_bytes(r))],
        "a PGO profile member escapes the build tree ('/cpython-verify-pgo.json')",
    ),
    "the record in a subdirectory": (
        lambda r: [("Modules/" + PGO_TRAINING_MEMBER, _record_bytes(r))],
        "a PGO profile may hold only .gcda files and cpython-verify-pgo.json ('Modules/cpython-verify-pgo.json')",
    ),
    "two records": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes(r)), (PGO_TRAINING_MEMBER, _record_bytes(r))],
        "more than one cpython-verify-pgo.json",
    ),
    "a record too large": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "profile": "x" * (64 << 10)}))],
        "cpython-verify-pgo.json is larger than 64 KiB",
    ),
    "a record nested too deeply": (
        lambda r: [(PGO_TRAINING_MEMBER, _deep(10_000))],
        "unreadable training record cpython-verify-pgo.json: JSON nested deeper than 64 levels",
    ),
    "a record that is not JSON": (
        lambda r: [(PGO_TRAINING_MEMBER, b"\xff not json")],
        "unreadable training record cpython-verify-pgo.json",
    ),
    "a record whose version is no release": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "version": "3.13.0-banana"}))],
        "unreadable training record cpython-verify-pgo.json: Value error, not a CPython release version: "
        "'3.13.0-banana'",
    ),
    "a record whose version is another spelling": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "version": "3.13.00"}))],
        "unreadable training record cpython-verify-pgo.json: Value error, '3.13.00' is not a release version as "
        "written by this tool (it would be '3.13.0')",
    ),
    "a record of another format": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "format": "cpython-verify/pgo-training/v0"}))],
        "unreadable training record cpython-verify-pgo.json",
    ),
}


@pytest.mark.parametrize("case", list(UNUSABLE_PROFILES))
def test_a_pgo_profile_for_another_build_or_without_a_usable_record_is_refused_before_any_build_step(
    case: str, tiny: FetchedFile, tinyproject_image: RootfsImage, tmp_path: Path
) -> None:
    matching = training_record(
        source={"name": tiny.name, "sha256": tiny.sha256},
        environment=tinyproject_image.name,
        rootfs_sha256=tinyproject_image.sha256,
    )
    facts = {"version": TINY_VERSION, "environment": tinyproject_image.name, "source_sha256": tiny.sha256,
             "rootfs_sha256": tinyproject_image.sha256}  # fmt: skip
    flags = ["--prefix=/opt/tiny", "--enable-optimizations"]
    gcda = [("Modules/main.gcda", b"gcda")]
    # The same archive with the matching record is accepted: the refusal below is about the record.
    accepted = pinned_profile(write_profile_tar(tmp_path / "good.tar", [(PGO_TRAINING_MEMBER, _record_bytes(matching)),
                                                                        *gcda]))  # fmt: skip
    assert check_pgo_profile(accepted, flags, **facts).training.model_dump(mode="json", exclude={"run"}) == matching

    members, message = UNUSABLE_PROFILES[case]
    profile = pinned_profile(write_profile_tar(tmp_path / "profile.tar", [*members(matching), *gcda]))
    runner = CountingRunner()
    cache = RebuildCache(tmp_path / "cache")
    with pytest.raises(VerifyError) as refused:
        build_in(tinyproject_image, tiny, cache, "--enable-optimizations", runner=runner, pgo_profile=profile)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert refused.value.exit_code == EXIT_ERROR
    assert runner.commands == [] and entries(cache) == [] and staging_left(cache) == []


def test_a_profile_record_that_is_a_link_is_refused(tmp_path: Path) -> None:
    profile = write_profile_tar(tmp_path / "p.tar", [("Modules/main.gcda", b"gcda")],
                                links={PGO_TRAINING_MEMBER: "/etc/passwd"})  # fmt: skip
    with pytest.raises(UnsafeArchive, match=r"may hold only \.gcda files and cpython-verify-pgo\.json") as refused:
        check_pgo_profile(pinned_profile(profile), ["--enable-optimizations"])
    assert refused.value.exit_code == EXIT_ERROR


def _real_pgo_lto_record(fixture_tarball: Path) -> dict[str, object]:
    """The training record a profile for the recipe's 3.13.5 ``pgo-lto`` build in its pinned environment has."""
    from verify.environments.lock import load_lock
    from verify.source.recipes import load_recipe

    recipe = load_recipe("3.13")
    assert recipe.build is not None
    environment = recipe.build.environment
    return training_record(
        version="3.13.5",
        source={"name": fixture_tarball.name, "sha256": hashlib.sha256(fixture_tarball.read_bytes()).hexdigest()},
        profile="pgo-lto",
        configure=list(recipe.build.profiles["pgo-lto"].configure),
        environment=environment,
        rootfs_sha256=load_lock(environment).rootfs_sha256,
    )


# case -> (the record of a profile for exactly this build -> the archive's members, a fragment of the refusal)
UNUSABLE_FOR_3_13_5: dict[str, tuple[Callable[[dict[str, object]], Members], str]] = {
    "another version": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "version": "3.13.4"}))],
        "it was trained for CPython 3.13.4, this build is for CPython 3.13.5",
    ),
    "another tarball": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "source": {"name": "P.tgz", "sha256": "e" * 64}}))],
        f"it was trained for a tarball with sha256 {'e' * 64}, this build is for a tarball with sha256",
    ),
    "other configure flags": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "configure": [*r["configure"][:-1]]}))],  # type: ignore[index]
        "it was trained for configure flags [",
    ),
    "another environment": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "environment": "bookworm-other"}))],
        "it was trained for environment bookworm-other, this build is for environment",
    ),
    "another rootfs": (
        lambda r: [(PGO_TRAINING_MEMBER, _record_bytes({**r, "rootfs_sha256": "f" * 64}))],
        f"it was trained for a rootfs with sha256 {'f' * 64}, this build is for a rootfs with sha256",
    ),
    "no record": (lambda r: [], "it has no training record (cpython-verify-pgo.json)"),
    "the record outside the tree": (
        lambda r: [("../" + PGO_TRAINING_MEMBER, _record_bytes(r))],
        "a PGO profile member escapes the build tree ('../cpython-verify-pgo.json')",
    ),
}


@pytest.mark.parametrize("case", list(UNUSABLE_FOR_3_13_5))
def test_rebuild_command_refuses_a_profile_for_another_build_with_one_line_and_no_build(
    case: str, cpython_fixtures: Path, tmp_path: Path
) -> None:
    members, message = UNUSABLE_FOR_3_13_5[case]
    record = _real_pgo_lto_record(cpython_fixtures / "Python-3.13.5.tar.xz")
    profile = write_profile_tar(tmp_path / "pgo-profile.tar", [*members(record), ("Modules/main.gcda", b"gcda")])
    cache = tmp_path / "cache"
    completed = run_cli(
        "rebuild", "3.13.5", "--from", cpython_fixtures, "--offline", "--profile", "pgo-lto", "--pgo-profile", profile,
        "--pgo-profile-sha256", hashlib.sha256(profile.read_bytes()).hexdigest(), "--out", tmp_path / "out",
        cache=cache, env={"XDG_CACHE_HOME": str(tmp_path / "xdg")}, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert completed.returncode == EXIT_ERROR, completed.stderr
    refusals = [line for line in completed.stderr.splitlines() if message in line]
    assert len(refusals) == 1 and "Traceback" not in completed.stderr, completed.stderr
    # No build step, no environment build: nothing under the rebuild cache, no rootfs, no result.
    left = sorted(path.relative_to(cache).as_posix() for path in cache.rglob("*")) if cache.exists() else []
    assert not any(name.startswith(("rebuilds", "environments")) or name.endswith(".tar") for name in left), left
    assert not (tmp_path / "out").exists()
