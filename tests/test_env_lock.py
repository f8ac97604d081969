"""Lock files, specs, apt configuration and Debian archive parsing: pure logic on real data."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from verify.common.errors import EXIT_ERROR
from verify.environments.debian import (
    InstalledPackage,
    deb_control,
    flat_packages_index,
    flat_release,
    lock_packages,
    parse_installed,
    release_date,
)
from verify.environments.errors import LockFileError, MirrorError
from verify.environments.lock import LockedPackage, load_lock, load_spec, parse_lock, parse_spec, render_lock
from verify.source.locations.apt_sources import (
    MIRROR_SETTING,
    AptSource,
    choose_mirror,
    host_apt_sources,
    parse_deb822_sources,
    parse_one_line_sources,
    resolve_mirror,
)
from verify.source.locations.deb822 import iter_paragraphs

# Placeholder hosts under the reserved .invalid TLD: never resolvable, never a real registry.
DEB822 = """\
Types: deb
# a comment inside the stanza
URIs: http://primary.invalid/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://sources-only.invalid/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://disabled.invalid/debian
Suites: trixie
Components: main
Enabled: no

Types: deb
URIs: http://security.invalid/debian-security/
Suites: bookworm-security
Components: main
"""


def test_deb822_sources_keep_enabled_binary_stanzas_only() -> None:
    sources = parse_deb822_sources(DEB822)
    assert sources == [
        AptSource("http://primary.invalid/debian", ("bookworm", "bookworm-updates"), ("main", "contrib")),
        AptSource("http://security.invalid/debian-security", ("bookworm-security",), ("main",)),
    ]


def test_one_line_sources_skip_options_and_comments() -> None:
    text = (
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.invalid/debian bookworm main\n"
        "deb-src http://src.invalid/debian bookworm main\n"
        "deb http://two.invalid/debian/ trixie main non-free # trailing\n"
    )
    assert parse_one_line_sources(text) == [
        AptSource("http://one.invalid/debian", ("bookworm",), ("main",)),
        AptSource("http://two.invalid/debian", ("trixie",), ("main", "non-free")),
    ]


def test_mirror_choice_follows_suite_and_component() -> None:
    sources = parse_deb822_sources(DEB822)
    assert choose_mirror("bookworm", sources) == "http://primary.invalid/debian"
    assert choose_mirror("bookworm-security", sources) == "http://security.invalid/debian-security"
    assert choose_mirror("trixie", sources) is None  # only in a disabled stanza
    assert choose_mirror("bookworm", sources, component="non-free") is None


def test_resolve_mirror_prefers_argument_then_setting_then_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list.d/debian.sources").write_text(DEB822)
    (tmp_path / "etc/apt/sources.list").write_text("deb http://legacy.invalid/debian sid main\n")
    monkeypatch.delenv(MIRROR_SETTING, raising=False)
    assert resolve_mirror("bookworm", root=tmp_path) == "http://primary.invalid/debian"
    assert resolve_mirror("sid", root=tmp_path) == "http://legacy.invalid/debian"
    monkeypatch.setenv(MIRROR_SETTING, "http://setting.invalid/debian/")
    assert resolve_mirror("bookworm", root=tmp_path) == "http://setting.invalid/debian"
    assert resolve_mirror("bookworm", "file:///srv/mirror", root=tmp_path) == "file:///srv/mirror"
    monkeypatch.delenv(MIRROR_SETTING)
    # A Debian release no stanza names is served by the host's mirror of the same archive (trixie on a
    # bookworm host, for environments of newer series); the security archive only by a security source.
    assert resolve_mirror("trixie", root=tmp_path) == "http://primary.invalid/debian"
    assert resolve_mirror("trixie-updates", root=tmp_path) == "http://primary.invalid/debian"
    assert resolve_mirror("trixie-security", root=tmp_path) == "http://security.invalid/debian-security"
    # ...but never for another distribution's suite.
    with pytest.raises(MirrorError, match="--mirror") as error:
        resolve_mirror("noble", root=tmp_path)
    assert error.value.exit_code == EXIT_ERROR
    with pytest.raises(MirrorError, match="must be"):
        resolve_mirror("bookworm", "ftp://old.invalid/debian", root=tmp_path)


def test_this_hosts_apt_configuration_is_readable() -> None:
    # The project takes its default mirror from here (a Debian host always has one binary source).
    sources = host_apt_sources()
    assert sources and all("://" in source.uri and source.suites for source in sources)


# -- lock files ------------------------------------------------------------------------------------

PACKAGE = LockedPackage(
    name="hello",
    version="2.10-3",
    architecture="amd64",
    path="pool/main/h/hello/hello_2.10-3_amd64.deb",
    size=1234,
    sha256="a" * 64,
)


def _lock_text(**overrides: str) -> bytes:
    fields = {
        "schema": "1",
        "name": '"demo"',
        "spec_sha256": f'"{"b" * 64}"',
        "suites": '["bookworm"]',
        "architecture": '"amd64"',
        "variant": '"buildd"',
        "include": '["hello"]',
        "source_date_epoch": "1700000000",
        "release_date": '"Sat, 10 May 2025 10:00:00 UTC"',
        "rootfs_sha256": f'"{"c" * 64}"',
        "packages": (
            '[{ name = "hello", version = "2.10-3", architecture = "amd64", size = 1234, '
            f'sha256 = "{"a" * 64}", path = "pool/main/h/hello/hello_2.10-3_amd64.deb" }}]'
        ),
    }
    fields.update(overrides)
    return "".join(f"{key} = {value}\n" for key, value in fields.items() if value != "DROP").encode()


def test_lock_round_trips_through_render() -> None:
    lock = parse_lock(_lock_text(), "demo")
    assert lock.packages == (PACKAGE,)
    assert lock.sha256 == hashlib.sha256(_lock_text()).hexdigest()
    rendered = render_lock(lock)
    again = parse_lock(rendered, "demo")
    assert again.packages == lock.packages and again.rootfs_sha256 == lock.rootfs_sha256
    assert again.source_date_epoch == 1700000000
    assert render_lock(again) == rendered  # deterministic: re-locking unchanged pins is an empty diff


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"rootfs_sha256": '"C' + "c" * 63 + '"'}, "rootfs_sha256"),
        ({"spec_sha256": '"abc"'}, "spec_sha256"),
        ({"name": '"other"'}, "names environment"),
        ({"schema": "2"}, "schema"),
        ({"schema": "true"}, r"demo\.lock: 'schema' must be an integer, not a boolean"),  # strict: true is not 1
        ({"suites": "{ bookworm = 1 }"}, r"demo\.lock: 'suites' must be a list, not a table"),
        ({"source_date_epoch": '"1700000000"'}, "source_date_epoch"),
        ({"extra": "1"}, "unknown key"),
        ({"release_date": "DROP"}, "missing key"),
        ({"packages": "[]"}, "non-empty"),
        ({"packages": '[{ name = "x" }]'}, "missing key"),
        (
            {
                "packages": '[{ name = "xy", version = "1", architecture = "all", size = 1, '
                f'sha256 = "{"a" * 64}", path = "pool/../../etc/passwd.deb" }}]'
            },
            "not a .deb under pool",
        ),
        (
            {
                "packages": '[{ name = "xy", version = "1", architecture = "all", size = 0, '
                f'sha256 = "{"a" * 64}", path = "pool/x.deb" }}]'
            },
            "size",
        ),
        (
            {
                "packages": "["
                + ", ".join(
                    '{ name = "xy", version = "1", architecture = "all", size = 1, '
                    f'sha256 = "{"a" * 64}", path = "pool/x.deb" }}'
                    for _ in range(2)
                )
                + "]"
            },
            "twice",
        ),
    ],
)
def test_malformed_locks_are_refused(override: dict[str, str], message: str) -> None:
    with pytest.raises(LockFileError, match=message) as error:
        parse_lock(_lock_text(**override), "demo")
    assert "\n" not in error.value.message


def test_not_toml_is_a_one_line_error() -> None:
    with pytest.raises(LockFileError, match="not valid TOML") as error:
        parse_lock(b"schema = = 1\n", "demo")
    assert "\n" not in error.value.message


def test_spec_validation() -> None:
    good = (
        b'schema = 1\nsuites = ["bookworm"]\ncomponents = ["main"]\narchitecture = "amd64"\n'
        b'variant = "buildd"\ninclude = ["gcc"]\n'
    )
    spec = parse_spec(good, "demo")
    assert (spec.suite, spec.include, spec.sha256) == ("bookworm", ("gcc",), hashlib.sha256(good).hexdigest())
    with pytest.raises(LockFileError, match="variant"):
        parse_spec(good.replace(b"buildd", b"everything"), "demo")
    with pytest.raises(LockFileError, match="package name"):
        parse_spec(good.replace(b'"gcc"', b'"gcc; rm -rf /"'), "demo")
    with pytest.raises(LockFileError, match="unknown key"):
        parse_spec(good + b"mirror = 'x'\n", "demo")


def test_missing_lock_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(LockFileError, match="env lock nothing-here"):
        load_lock("nothing-here", tmp_path)
    with pytest.raises(LockFileError, match="not an environment name"):
        load_lock("../etc", tmp_path)


@pytest.mark.parametrize("name", ["bookworm-cpython", "trixie-cpython"])
def test_shipped_lock_pins_the_spec_closure(name: str) -> None:
    spec = load_spec(name)
    lock = load_lock(name)
    assert lock.spec_sha256 == spec.sha256, f"{name}.toml changed: run `cpython-verify env lock`"
    assert (lock.suites, lock.variant, lock.include) == (spec.suites, spec.variant, spec.include)
    names = {package.name for package in lock.packages}
    assert set(spec.include) <= names
    # CPython's build dependencies as the issue lists them, each pinned to one exact version.
    for wanted in (
        "libssl-dev",
        "zlib1g-dev",
        "libffi-dev",
        "libbz2-dev",
        "liblzma-dev",
        "libsqlite3-dev",
        "libreadline-dev",
        "libncurses-dev",
        "libgdbm-dev",
        "uuid-dev",
        "tk-dev",
        "pkg-config",
        "xz-utils",
        "build-essential",
        "make",
        "dpkg",
        "bash",
    ):
        assert wanted in names
    assert all(package.path.startswith("pool/main/") for package in lock.packages)
    assert lock.source_date_epoch > 1_600_000_000
    assert render_lock(lock) == load_lock_bytes(name)


def test_each_recipe_builds_in_a_shipped_environment_with_what_its_series_needs() -> None:
    """3.14+ build _decimal from the system mpdecimal (3.15 has no copy of its own) and _zstd from libzstd:
    their environment must have both, or the rebuild silently lacks the modules. Bookworm has no mpdecimal."""
    from verify.source.recipes import load_all_recipes

    for series, recipe in load_all_recipes().items():
        assert recipe.build is not None
        lock = load_lock(recipe.build.environment)
        names = {package.name for package in lock.packages}
        if int(series.split(".")[1]) >= 14:
            assert {"libmpdec-dev", "libzstd-dev"} <= names, series
    assert "libmpdec-dev" not in {package.name for package in load_lock("bookworm-cpython").packages}


def load_lock_bytes(name: str = "bookworm-cpython") -> bytes:
    from verify.environments.lock import lock_path

    return lock_path(name).read_bytes()


# -- Debian archive data -----------------------------------------------------------------------------


def build_deb(directory: Path, name: str, version: str, extra_control: str = "") -> Path:
    """A real .deb made by dpkg-deb (the same tool Debian builds with)."""
    root = directory / f"{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/doc" / name).mkdir(parents=True)
    (root / "usr/share/doc" / name / "README").write_text(f"{name} {version}\n")
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        f"{extra_control}Description: test package\n a longer\n .\n description\n"
    )
    output = directory / f"{name}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(output)], check=True, capture_output=True
    )
    return output


def test_deb_control_reads_a_real_deb_and_index_pins_it(tmp_path: Path) -> None:
    deb = build_deb(tmp_path, "demo-tool", "1.0-1", "Depends: libc6 (>= 2.36)\n")
    data = deb.read_bytes()
    control = deb_control(data)
    stanza = next(iter_paragraphs(control))
    assert stanza["Package"] == "demo-tool" and stanza["Depends"] == "libc6 (>= 2.36)"
    package = LockedPackage(
        "demo-tool", "1.0-1", "all", "pool/main/d/demo-tool/" + deb.name, len(data), hashlib.sha256(data).hexdigest()
    )
    index = flat_packages_index([(package, control)])
    entry = next(iter_paragraphs(index))
    assert entry["Filename"] == f"./{deb.name}"
    assert entry["SHA256"] == package.sha256 and entry["Size"] == str(len(data))
    assert entry["Description"].splitlines()[1:] == [" a longer", " .", " description"]
    release = flat_release(suite="bookworm", architecture="amd64", packages_index=index.encode(), epoch=1700000000)
    assert "Suite: bookworm\n" in release and hashlib.sha256(index.encode()).hexdigest() in release
    assert "Date: Tue, 14 Nov 2023 22:13:20 GMT" in release
    with pytest.raises(LockFileError, match="does not describe"):
        flat_packages_index([(PACKAGE, control)])
    with pytest.raises(LockFileError, match="ar magic"):
        deb_control(b"PK\x03\x04 not a deb")
    with pytest.raises(LockFileError):
        deb_control(data[:200])


def test_lock_packages_picks_the_installed_version_from_several_indexes() -> None:
    main = (
        "Package: libssl3\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\nFilename: pool/main/o/openssl/old.deb\n"
        f"Size: 10\nSHA256: {'1' * 64}\n\n"
        "Package: bash\nVersion: 5.2.15-2+b7\nArchitecture: amd64\nFilename: pool/main/b/bash/bash.deb\n"
        f"Size: 20\nSHA256: {'2' * 64}\n"
    )
    updates = (
        "Package: libssl3\nVersion: 3.0.16-1~deb12u1\nArchitecture: amd64\nFilename: pool/main/o/openssl/new.deb\n"
        f"Size: 30\nSHA256: {'3' * 64}\n"
    )
    installed = parse_installed("libssl3\t3.0.16-1~deb12u1\tamd64\nbash\t5.2.15-2+b7\tamd64\n")
    pinned = lock_packages(installed, [main, updates])
    assert [(p.name, p.path, p.sha256[0]) for p in pinned] == [
        ("bash", "pool/main/b/bash/bash.deb", "2"),
        ("libssl3", "pool/main/o/openssl/new.deb", "3"),
    ]
    with pytest.raises(LockFileError, match="in no Packages index: gone=1"):
        lock_packages([*installed, InstalledPackage("gone", "1", "all")], [main, updates])
    with pytest.raises(LockFileError, match="dpkg-query"):
        parse_installed("only-two\tfields\n")


def test_release_date_from_a_clear_signed_in_release() -> None:
    text = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nSuite: stable\nCodename: bookworm\n"
        "Date: Sat, 10 May 2025 10:49:36 UTC\nArchitectures: all amd64\n-----BEGIN PGP SIGNATURE-----\n\nxyz\n"
        "-----END PGP SIGNATURE-----\n"
    )
    assert release_date(text) == ("Sat, 10 May 2025 10:49:36 UTC", 1746874176)
    with pytest.raises(LockFileError, match="no Date"):
        release_date("Origin: Debian\n")
    with pytest.raises(LockFileError, match="unreadable Date"):
        release_date("Date: yesterday-ish\n")
