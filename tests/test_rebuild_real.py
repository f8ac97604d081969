"""Slow tests: real rebuilds of CPython 3.13.5 from the real release tarball in the real environment.

Each measured fact of DESIGN.md ("CPython 3.13.5 rebuild facts") is checked here against a real build.
The environment is ``$CPYTHON_VERIFY_ROOTFS`` (a rootfs tarball) or else the recipe's pinned
environment (``bookworm-cpython``), as the rebuild command uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import BwrapWithoutDevShmAndPtmx, run_cli

from verify.chain import CHECK_VARIATIONS
from verify.compare.engine import diff_manifests
from verify.compare.twice import compare_results
from verify.environments import get_runner, image_for, image_from_tarball
from verify.environments.interface import Bind, RootfsImage, Runner, SandboxSpec
from verify.manifest import Manifest, scan_tree
from verify.rebuild import BuildSettings, ChosenProfile, RebuildCache, RebuildResult, rebuild, unpack_release
from verify.rebuild.core import check_pgo_profile
from verify.result import ResultDir
from verify.source.models import FetchedFile
from verify.source.recipes import BuildSpec, load_recipe

pytestmark = pytest.mark.slow
SECOND_BUILD = pytest.mark.release
"""The release tier (docs/testing.md): a test that needs a second real build of 3.13.5 (a varied or PGO one).
CI makes one real build, the baseline; the mechanisms are tested on the tiny project (tests/test_rebuild.py)."""

TARBALL_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"  # fixtures/README.md


@pytest.fixture(scope="session")
def image() -> RootfsImage:
    """``$CPYTHON_VERIFY_ROOTFS`` if set, else the recipe's pinned environment, built (or taken from the
    cache) and checked against its lock's digest by the environments stage."""
    configured = os.environ.get("CPYTHON_VERIFY_ROOTFS")
    if configured:
        return image_from_tarball("bookworm-cpython", Path(configured))
    return image_for("bookworm-cpython")


@pytest.fixture(scope="session")
def runner() -> Runner:
    """The runner the command uses by default: the shipped bwrap runner."""
    return get_runner("bwrap")


@pytest.fixture(scope="session")
def tarball(cpython_fixtures: Path) -> FetchedFile:
    path = cpython_fixtures / "Python-3.13.5.tar.xz"
    with path.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    assert digest == TARBALL_SHA256, "the fixture tarball is not python.org's 3.13.5"
    return FetchedFile(name=path.name, path=path, sha256=digest, size=path.stat().st_size, origin=str(path))


def _spec() -> BuildSpec:
    spec = load_recipe("3.13").build
    assert spec is not None
    return spec


@pytest.fixture(scope="session")
def cache(shared_rebuild_cache: Path) -> RebuildCache:
    """The rebuild cache the real 3.13.5 tests share (conftest's ``shared_rebuild_cache``): the baseline
    built here is the one real build CI makes, and the CLI tests after this module find it there. In the
    release tier test_check_real has built the baseline and check's varied build already (same rootfs,
    settings and source), so those two are cache hits here."""
    return RebuildCache(shared_rebuild_cache)


@pytest.fixture(scope="session")
def build(
    cpython_fixtures: Path, image: RootfsImage, runner: Runner, cache: RebuildCache
) -> Callable[[frozenset[str]], RebuildResult]:
    # The real source stage (both signatures, offline, about a second), so that every build this
    # module adds to the shared cache carries a real verdict that `attest` accepts.
    from verify.source.assembly import SourceOptions, require_verified, verify_release_source
    from verify.source.releases import Version

    recipe = load_recipe("3.13")
    options = SourceOptions(from_dirs=(cpython_fixtures,), offline=True)
    verdict = verify_release_source(Version.parse("3.13.5"), options, recipe=recipe)
    tarball = require_verified(verdict)
    assert tarball.sha256 == TARBALL_SHA256

    def one(variations: frozenset[str]) -> RebuildResult:
        return rebuild(
            tarball=tarball,
            verdict=verdict,
            build_profile=ChosenProfile.of(recipe, "default"),
            image=image,
            runner=runner,
            cache=cache,
            variations=variations,
        )

    return one


@pytest.fixture(scope="session")
def baseline(build: Callable[[frozenset[str]], RebuildResult]) -> RebuildResult:
    return build(frozenset())


def test_real_rebuild_produces_a_working_python_with_reproducible_pyc(baseline: RebuildResult) -> None:
    record = baseline.record
    assert str(record.version) == "3.13.5" and record.source.sha256 == TARBALL_SHA256
    prefix = baseline.result.root / "opt/python"
    python = prefix / "bin/python3.13"
    completed = subprocess.run(
        [python, "-c", "import sys, ssl, sqlite3, lzma, ctypes; print(sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHOME": str(prefix), "PATH": "/usr/bin:/bin"},
    )
    assert completed.stdout.strip() == "(3, 13, 5)"
    # SOURCE_DATE_EPOCH switches compileall to checked-hash headers (PEP 552 flags == 3): no mtimes.
    pycs = list((prefix / "lib/python3.13").rglob("*.pyc"))
    assert len(pycs) > 3000
    assert all(p.read_bytes()[4:8] == b"\x03\x00\x00\x00" for p in pycs)
    # The recipe installs no pip: ensurepip would leak DESTDIR into pip's .pyc (see the test below).
    assert not list((prefix / "lib/python3.13/site-packages").glob("pip*"))
    assert "not installed" in record.pip


@SECOND_BUILD
def test_fixed_build_path_builds_are_identical_in_every_file(
    baseline: RebuildResult, build: Callable[[frozenset[str]], RebuildResult]
) -> None:
    # check's own variations: the build test_check_real made is found in the shared cache.
    variations = CHECK_VARIATIONS
    comparison = compare_results(baseline, build(variations), variations, _spec())
    assert comparison.reproducible, [(d.path, d.changes) for d in comparison.differences[:20]]


@SECOND_BUILD
def test_varied_build_path_time_umask_locale_change_only_the_explained_files(
    baseline: RebuildResult, build: Callable[[frozenset[str]], RebuildResult]
) -> None:
    variations = frozenset({"build_path", "time", "umask", "locale"})
    comparison = compare_results(baseline, build(variations), variations, _spec())
    assert not comparison.reproducible
    assert comparison.explained, [(d.path, d.changes) for d in comparison.unexplained]
    # -ffile-prefix-map keeps the build path out of every ELF file (without it, all of them change).
    assert not any(d.kind.startswith("elf") for d in comparison.differences)
    content = {d.path for d in comparison.differences if "content" in d.changes}
    assert any("_sysconfigdata_" in path for path in content) and len(content) <= 10
    # The umask reaches only the modes of the __pycache__ directories compileall creates.
    modes = {d.path for d in comparison.differences if "mode" in d.changes}
    assert modes and all(path.endswith("__pycache__") for path in modes)


def _configure_only(tarball: FetchedFile, image: RootfsImage, runner: Runner, work: Path, log_name: str) -> str:
    build_host = work / "build"
    unpack_release(tarball.path, build_host / "cpython")
    settings = BuildSettings(source_date_epoch=1749000000)
    spec = SandboxSpec(
        binds=(Bind(build_host, "/build", writable=True),), env=settings.environment(), cwd="/build/cpython"
    )
    result = runner.run(image, ["./configure", "--prefix=/opt/python"], spec, log_path=work / log_name)
    assert result.returncode == 0, (work / log_name).read_text()[-2000:]
    return (build_host / "cpython/pyconfig.h").read_text()


def test_pyconfig_h_changes_without_dev_shm_and_ptmx_and_our_sandbox_has_them(
    tarball: FetchedFile, image: RootfsImage, runner: Runner, tmp_path: Path
) -> None:
    full = _configure_only(tarball, image, runner, tmp_path / "full", "full.log")
    # The same rootfs, run by the shipped bwrap runner with /dev/shm and /dev/ptmx left out.
    crippled_runner = BwrapWithoutDevShmAndPtmx()
    crippled = _configure_only(tarball, image, crippled_runner, tmp_path / "crippled", "crippled.log")
    assert full != crippled
    assert "#define HAVE_DEV_PTMX 1" in full and "#define HAVE_DEV_PTMX 1" not in crippled


def test_ensurepip_leaks_destdir_into_pips_pyc(baseline: RebuildResult, image: RootfsImage, runner: Runner,
                                              tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    spec = SandboxSpec(
        binds=(Bind(baseline.result.root / "opt", "/opt"), Bind(out, "/out", writable=True)),
        env=BuildSettings(source_date_epoch=1749000000).environment(),
    )
    for root in ("/out/a", "/out/b/deeper"):
        command = ["/opt/python/bin/python3.13", "-m", "ensurepip", "--root", root]
        assert runner.run(image, command, spec, log_path=tmp_path / "ensurepip.log").returncode == 0
    differences = diff_manifests(Manifest(entries=scan_tree(out / "a")), Manifest(entries=scan_tree(out / "b/deeper")))
    assert len(differences) > 100
    assert all(d.kind == "pyc" and "/site-packages/pip/" in d.path for d in differences)


@SECOND_BUILD
def test_command_end_to_end_reports_explained_differences_and_hits_the_cache_fast(
    image: RootfsImage, cache: RebuildCache, cpython_fixtures: Path, tmp_path: Path,
    build: Callable[[frozenset[str]], RebuildResult],
) -> None:  # fmt: skip
    # Built by the tests above (or now, if this test runs alone); the command must then only verify
    # the source, find both builds in the cache, compare and publish.
    build(frozenset())
    build(frozenset({"build_path", "time", "umask", "locale"}))
    out = tmp_path / "result"
    args = [
        "rebuild", "3.13.5", "--from", cpython_fixtures, "--offline",
        "--twice", "--vary", "build_path,time,umask,locale", "--rootfs", image.tarball,
        "--rebuild-cache", cache.root, "--out", out,
    ]  # fmt: skip
    started = time.monotonic()
    completed = run_cli(*args)
    elapsed = time.monotonic() - started
    assert completed.returncode == 0, completed.stderr
    assert "cached result" in completed.stderr and "configure" not in completed.stderr
    assert "NOT reproducible bit for bit" in completed.stdout
    assert "all differences are of the kinds the chosen variations are documented to cause" in completed.stdout
    record = ResultDir.open(out).read_record()
    assert record.reproducibility is not None and record.reproducibility.reproducible is False
    assert record.reproducibility.explained is True and record.inputs.environment.rootfs_sha256 == image.sha256
    assert json.loads((out / "source-verdict.json").read_text())["verified"] is True
    assert (out / "root/opt/python/bin/python3.13").is_file()
    assert elapsed < 10, f"a cached --twice took {elapsed:.1f} s"


@pytest.fixture(autouse=True)
def _no_leftover(tmp_path: Path) -> Iterator[None]:
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


# The moonshot's first half: an optimized (PGO + LTO) build made reproducible by a stored, digest-pinned
# profile. The training task is a fixed list of tests from CPython's --pgo set, so that the test trains
# in minutes; the recipe's own pgo-lto profile trains on the whole --pgo set. Measured on a loaded
# machine (docs/reproducibility.md): trained 49 min, reused 14 min, identical in every file.
PGO_PROFILE_TOML = """
[build.profiles.pgo-lto-pinned]
description = "PGO + LTO whose profile can be stored and reused"
configure = ["--prefix=/opt/python", "--with-ensurepip=no", "--enable-optimizations", "--with-lto",
  "PROFILE_TASK=-m test --timeout=1200 test_array test_bytes test_codecs test_collections test_datetime test_decimal test_difflib test_float test_fstring test_functools test_json test_pickle test_re test_set test_str test_struct test_xml_etree"]
"""  # noqa: E501


@SECOND_BUILD
def test_pgo_lto_build_reusing_its_stored_profile_is_identical_in_every_file(
    tarball: FetchedFile, image: RootfsImage, runner: Runner, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from verify.source.assembly import SourceOptions, verify_release_source
    from verify.source.recipes import parse_recipe, recipe_path
    from verify.source.releases import Version

    path = recipe_path("3.13")
    recipe = parse_recipe(path.read_bytes() + PGO_PROFILE_TOML.encode(), path)
    # The real source stage's verdict about the fixture tarball (offline, about a second).
    options = SourceOptions(from_dirs=(tarball.path.parent,), offline=True)
    verdict = verify_release_source(Version.parse("3.13.5"), options, recipe=load_recipe("3.13"))
    assert verdict.verified and verdict.tarball.sha256 == TARBALL_SHA256
    pinned_recipe = ChosenProfile.of(recipe, "pgo-lto-pinned")

    def pgo(cache_name: str, profile: FetchedFile | None) -> RebuildResult:
        cache = RebuildCache(tmp_path_factory.mktemp(cache_name))
        pinned = None if profile is None else check_pgo_profile(profile, pinned_recipe.configure_flags)
        return rebuild(tarball=tarball, verdict=verdict, build_profile=pinned_recipe, image=image,
                       runner=runner, cache=cache, pgo_profile_tar=pinned)  # fmt: skip

    trained = pgo("pgo-trained", None)
    stored = trained.result_dir / "pgo-profile.tar"
    assert trained.record.pgo_profile is not None and trained.record.pgo_profile.origin == "trained in this build"
    profile = FetchedFile(stored.name, stored, trained.record.pgo_profile.sha256, stored.stat().st_size, "a")
    reused = pgo("pgo-reused", profile)
    make_log = (reused.result_dir / "logs/make.log").read_text()
    assert "Running code to generate profile data" not in make_log and "-fprofile-use" in make_log
    assert "-flto" in make_log
    # Without the pinned profile two PGO builds differ in python3.13, libpython and extension modules.
    assert diff_manifests(trained.result.read_manifest(), reused.result.read_manifest()) == ()
