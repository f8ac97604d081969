"""Every recipe loads; malformed recipes are rejected with a one-line reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify.common.errors import RecipeError
from verify.compare.twice import explain
from verify.rebuild.core import PGO_TRAINER_PATH, pgo_trainer_for
from verify.source.recipes import default_recipes_dir, load_all_recipes, load_recipe, parse_recipe
from verify.source.releases import Version

EXPECTED_SIGNERS = {
    "3.8": ("E3FF2839C048B25C084DEBE9B26995E310250568", "lukasz@langa.pl", "https://github.com/login/oauth"),
    "3.9": ("E3FF2839C048B25C084DEBE9B26995E310250568", "lukasz@langa.pl", "https://github.com/login/oauth"),
    "3.10": ("A035C8C19219BA821ECEA86B64E628F8D684696D", "pablogsal@python.org", "https://accounts.google.com"),
    "3.11": ("A035C8C19219BA821ECEA86B64E628F8D684696D", "pablogsal@python.org", "https://accounts.google.com"),
    "3.12": ("7169605F62C751356D054A26A821E680E5FA6305", "thomas@python.org", "https://accounts.google.com"),
    "3.13": ("7169605F62C751356D054A26A821E680E5FA6305", "thomas@python.org", "https://accounts.google.com"),
    "3.14": (None, "hugo@python.org", "https://github.com/login/oauth"),
    "3.15": (None, "hugo@python.org", "https://github.com/login/oauth"),
    "3.16": (None, "savannah@python.org", "https://github.com/login/oauth"),
    "3.17": (None, "savannah@python.org", "https://github.com/login/oauth"),
}


def test_every_series_has_a_recipe_with_the_published_signers() -> None:
    recipes = load_all_recipes()
    assert set(recipes) == set(EXPECTED_SIGNERS)
    for series, (fingerprint, identity, issuer) in EXPECTED_SIGNERS.items():
        recipe = recipes[series]
        assert recipe.sigstore is not None
        assert (recipe.sigstore.identity, recipe.sigstore.issuer) == (identity, issuer)
        if fingerprint is None:  # PEP 761
            assert recipe.openpgp is None
            assert recipe.publishes == ("sigstore",)
        else:
            assert recipe.openpgp is not None
            assert recipe.openpgp.fingerprints == (fingerprint,)
        assert recipe.build is not None and "default" in recipe.build.profiles
        assert len(recipe.sha256) == 64


def test_every_pgo_profile_trains_on_the_full_pgo_task_and_survives_a_failed_test() -> None:
    # The same training for every series (docs/rebuild.md, "Training under load"): 3.13's Makefile
    # dropped the `|| true` after the training run, so one test failing under load failed the build.
    for series, recipe in load_all_recipes().items():
        assert recipe.build is not None
        optimized = {
            name: p.configure for name, p in recipe.build.profiles.items() if "--enable-optimizations" in p.configure
        }
        assert {"pgo-lto", "pgo-lto-deterministic"} <= set(optimized), series
        assert "PROFILE_TASK=-m test --pgo --timeout=1200 || true" in optimized["pgo-lto"], series
        # The deterministic profile runs cpython-verify's trainer, and a training that fails fails the build.
        tasks = [flag for flag in optimized["pgo-lto-deterministic"] if flag.startswith("PROFILE_TASK=")]
        assert tasks == [f"PROFILE_TASK={PGO_TRAINER_PATH} test_codecs test_re test_array test_difflib"], series
        assert pgo_trainer_for(optimized["pgo-lto-deterministic"]) is not None
        assert pgo_trainer_for(optimized["pgo-lto"]) is None


def test_a_profile_documents_what_a_variation_changes_in_its_own_builds_only(tmp_path: Path) -> None:
    # LTO's fat objects record the build directory in their early debug info, in every series' LTO
    # profiles and in no plain one; the comparator must also say debug-info, or nothing is explained.
    for series, shipped in load_all_recipes().items():
        assert shipped.build is not None
        python_o = f"opt/python/lib/python{series}/config-{series}-x86_64-linux-gnu/python.o"
        varied = frozenset({"build_path"})
        for profile in ("pgo-lto", "pgo-lto-deterministic"):
            if "build_path" in shipped.build.profiles[profile].inapplicable:
                # 3.8 to 3.11: build_path does not apply to a PGO profile (setup.py modules)
                assert int(series.split(".")[1]) <= 11, series
                continue
            explained = explain(shipped.build, python_o, ("content",), varied, profile, category="debug-info")
            assert explained == (("build_path",), ()), series
            for other in ("code", "build-path", None):
                assert explain(shipped.build, python_o, ("content",), varied, profile, category=other)[1] == (
                    "content",), (series, other)  # fmt: skip
        assert explain(shipped.build, python_o, ("content",), varied, "default", category="debug-info")[1] == (
            "content",)  # fmt: skip
    text = (default_recipes_dir() / "cpython-3.13.toml").read_text()
    table = "[build.profiles.pgo-lto.expect.build_path]\nwhy"
    bad = text.replace(table, table.replace("build_path", "Build-Path"))
    assert bad != text
    with pytest.raises(RecipeError, match="'Build-Path' is not a variation name"):
        parse_recipe(bad.encode(), default_recipes_dir() / "cpython-3.13.toml")


_NONDETERMINISTIC = '[build.profiles.default.nondeterministic]\nwhy = "x"\npaths = ["**/*.pyc"]\n'
_EXPECT = '[build.expect.build_path]\nwhy = "x"\npaths = ["**/python.o"]\nchanges = ["content"]\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (_EXPECT + 'categories = ["debug-infos"]\n', "unknown category 'debug-infos'; known: debug-info, "),
        (_EXPECT + 'categories = ["code"]\n', "category 'code' is a real difference, never an expected one"),
        (_EXPECT + 'categories = ["semantic"]\n', "category 'semantic' is a real difference"),
        (_EXPECT, "missing key 'categories'"),
        (_EXPECT + "categories = []\n", "'categories' must name at least one category"),
        (
            '[build.expect.umask]\nwhy = "x"\npaths = ["**/__pycache__"]\nchanges = ["mode"]\n'
            'categories = ["build-path"]\n',
            "'categories' apply to content changes only",
        ),
        ("[build.profiles.default.inapplicable.build_path]\n", "missing key 'why'"),
        ('[build.profiles.default.inapplicable.build_path]\nwhy = " "\n', "'why' must say, on one line"),
        ('[build.profiles.default.inapplicable.build_path]\nwhy = "x"\nalso = 1\n', "unknown key(s): also"),
        ('[build.profiles.default.inapplicable.Build]\nwhy = "x"\n', "'Build' is not a variation name"),
        (
            '[build.profiles.default.inapplicable.build_path]\nwhy = "x"\n'
            '[build.profiles.default.expect.build_path]\nwhy = "x"\npaths = ["a"]\nchanges = ["mode"]\n',
            "variation(s) build_path both expected and inapplicable",
        ),
        (_NONDETERMINISTIC + 'changes = ["mode"]\n', "'changes' must be ['content']"),
        (_NONDETERMINISTIC + 'changes = ["content"]\n', "missing key 'categories'"),
        (_NONDETERMINISTIC + 'changes = ["content"]\ncategories = ["semantic"]\n', "is a real difference"),
        (
            '[build.profiles.default.nondeterministic]\nwhy = "a\\nb"\npaths = ["**/*.pyc"]\nchanges = ["content"]\n'
            'categories = ["reference-flags-only"]\n',
            "'why' must say, on one line",
        ),
        (
            '[build.profiles.default.nondeterministic]\nwhy = "x"\npaths = ["../*.pyc"]\nchanges = ["content"]\n'
            'categories = ["reference-flags-only"]\n',
            "must be relative to the install tree",
        ),
    ],
)
def test_a_recipe_naming_an_unknown_category_or_a_bad_inapplicable_entry_is_refused_with_one_line(
    table: str, message: str, tmp_path: Path
) -> None:
    text = _good_recipe()
    # Keep the recipe's own tables; append the entry under test (its own [build.expect] tables replaced).
    base = text[: text.index("# What each --vary variation")] if "# What each --vary variation" in text else text
    with pytest.raises(RecipeError) as caught:
        parse_recipe((base + "\n" + table).encode(), tmp_path / "cpython-3.14.toml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


UNMEASURED_SERIES = ("3.8", "3.9", "3.10", "3.12", "3.16", "3.17")


def _recipe_status_table() -> dict[tuple[str, str], tuple[str, ...]]:
    """docs/reproducibility.md's "Recipe status" table: (series, profile) -> the releases it lists."""
    text = (Path(__file__).parent.parent / "docs" / "reproducibility.md").read_text()
    section = text.split("## Recipe status", 1)[1].split("\n## ", 1)[0]
    table: dict[tuple[str, str], tuple[str, ...]] = {}
    for line in section.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("3."):
            releases = () if cells[2].startswith("unmeasured") else tuple(r.strip() for r in cells[2].split(","))
            table[(cells[0], cells[1])] = releases
    return table


def test_each_recipe_says_which_profiles_were_measured_and_the_docs_say_the_same() -> None:
    recipes = load_all_recipes()
    for series in UNMEASURED_SERIES:
        assert not recipes[series].measured, series
        profile = recipes[series].build.profiles["default"]  # type: ignore[union-attr]
        assert "UNMEASURED" in profile.status(series)
    assert recipes["3.13"].measured and recipes["3.11"].measured
    measured = recipes["3.13"].build.profiles["default"]  # type: ignore[union-attr]
    assert measured.status("3.13") == "recipe 3.13 profile default: measured on 3.13.5 (docs/reproducibility.md)"
    documented = _recipe_status_table()
    shipped = {
        (series, name): profile.measured
        for series, recipe in recipes.items()
        for name, profile in recipe.build.profiles.items()  # type: ignore[union-attr]
    }
    assert documented == shipped


@pytest.mark.parametrize(
    ("measured", "message"),
    [
        ('["3.13.5"]', "measured release '3.13.5' is not a 3.14 release"),
        ('["3.14"]', "measured release '3.14' is not a CPython version"),
        ('"3.14.4"', "'measured' must be"),
    ],
)
def test_a_measured_list_names_releases_of_its_own_series(measured: str, message: str, tmp_path: Path) -> None:
    unmeasured = "".join(line for line in _good_recipe().splitlines(keepends=True) if not line.startswith("measured ="))
    text = unmeasured.replace("[build.profiles.default]\n", f"[build.profiles.default]\nmeasured = {measured}\n")
    with pytest.raises(RecipeError, match=message):
        parse_recipe(text.encode(), tmp_path / "cpython-3.14.toml")


def test_sigstore_is_not_required_before_the_series_started_publishing_it() -> None:
    recipe = load_recipe("3.9")
    assert recipe.published_signatures(Version.parse("3.9.2")) == ("openpgp",)
    assert recipe.published_signatures(Version.parse("3.9.14")) == ("openpgp", "sigstore")


def test_prerelease_urls_live_under_the_final_versions_directory() -> None:
    recipe = load_recipe("3.14")
    version = Version.parse("3.14.0rc1")
    (name, _tgz) = recipe.source.filenames_for(version)
    assert name == "Python-3.14.0rc1.tar.xz"
    assert recipe.source.urls_for(version, name) == (
        "https://www.python.org/ftp/python/3.14.0/Python-3.14.0rc1.tar.xz",
    )


def _good_recipe() -> str:
    return (Path(load_recipe("3.14").path)).read_text()


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda t: t + "\nsurprise = 1\n", "unknown key(s): surprise"),
        (
            lambda t: t.replace('identity = "hugo@python.org"', 'identity = "hugo@python.org"\nidentiy = "x"'),
            "signatures.sigstore: unknown key(s): identiy",
        ),
        (lambda t: t.replace("schema = 1", "schema = 2"), "unsupported schema 2"),
        (lambda t: t.replace('series = "3.14"', "series = 3.14"), "'series' must be a str"),
        (
            lambda t: t.replace('publishes = ["sigstore"]', 'publishes = ["sigstore", "openpgp"]'),
            "publishes openpgp but has no [signatures.openpgp] signer",
        ),
        (lambda t: t.replace('publishes = ["sigstore"]', 'publishes = ["md5"]'), "unknown signature kind 'md5'"),
        (lambda t: t.replace("https://www.python.org", "http://www.python.org"), "must use https"),
        (lambda t: t.replace("{base}/{filename}", "{bsae}/{filename}"), "unknown placeholder(s) ['bsae']"),
        (lambda t: t.replace("[build.profiles.default]", "[build.profiles.plain]"), "needs a [build.profiles.default]"),
        (lambda t: t + "\n[[[broken\n", "not valid TOML"),
        (
            lambda t: t.replace(
                'issuer = "https://github.com/login/oauth"', 'issuer = "https://github.com/login/oauth"\nsince = "3.x"'
            ),
            "cpython-3.14.toml: signatures.sigstore: 'since' must be a CPython version, not '3.x'",
        ),
    ],
)
def test_malformed_recipes_are_rejected_with_one_line(mutation, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cpython-3.14.toml"
    with pytest.raises(RecipeError) as caught:
        parse_recipe(mutation(_good_recipe()).encode(), path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_fingerprints_must_be_full(tmp_path: Path) -> None:
    text = (
        load_recipe("3.13")
        .path.read_text()
        .replace("7169605F62C751356D054A26A821E680E5FA6305", "E5FA6305")
        .replace('"keys/', f'"{load_recipe("3.13").path.parent}/keys/')
    )
    with pytest.raises(RecipeError, match="not a full 40-hex-digit"):
        parse_recipe(text.encode(), tmp_path / "cpython-3.13.toml")


def test_missing_recipe_is_a_clear_error() -> None:
    with pytest.raises(RecipeError, match=r"no recipe for CPython 3\.99"):
        load_recipe("3.99")
    # An unsupported series says so and names the ones that are.
    with pytest.raises(RecipeError, match=r"3\.7 is not a supported series; supported: 3\.8, .*3\.13, "):
        load_recipe("3.7")


# Two runs of 3.14.4t's own compileall (-j1, ASLR off, PYTHONHASHSEED=0) over its standard library wrote
# random.cpython-314.opt-1.pyc with other reference flags: the free-threaded marshal's FLAG_REF follows object
# ownership and shared reference counts (CPython gh-129724). Real bytes, not a synthesised pair.
_FREE_THREADED_RUNS = [
    Path(__file__).parent / "data" / "pyc" / f"compileall-run-{run}.cpython-314t.pyc" for run in "ab"
]
_FT_PYC = "opt/python/lib/python3.14t/__pycache__/random.cpython-314.opt-1.pyc"


def _two_builds(tmp_path: Path, a: bytes, b: bytes) -> tuple[Path, Path]:
    roots = []
    for name, content in (("a", a), ("b", b)):
        target = tmp_path / name / _FT_PYC
        target.parent.mkdir(parents=True)
        target.write_bytes(content)
        roots.append(tmp_path / name)
    return roots[0], roots[1]


def test_a_free_threaded_pyc_that_differs_in_reference_flags_between_unvaried_builds_is_explained_on_evidence(
    tmp_path: Path,
) -> None:
    from verify.compare import compare_paths
    from verify.compare.twice import recorded_differences

    spec = load_recipe("3.14").build
    assert spec is not None
    a, b = _two_builds(tmp_path, *(path.read_bytes() for path in _FREE_THREADED_RUNS))
    (recorded,) = recorded_differences(compare_paths(a, b), spec, frozenset(), "free-threaded")
    assert recorded.category == "reference-flags-only"
    assert (recorded.expected_by, recorded.unexplained_changes) == (("nondeterministic",), ())
    # The default profile has no such entry: the same bytes there are unexplained.
    (plain,) = recorded_differences(compare_paths(a, b), spec, frozenset(), "default")
    assert plain.unexplained_changes == ("content",)
    # A real change of the code in the same file stays unexplained in the free-threaded profile too.
    semantic = (Path(__file__).parent / "data" / "pyc" / "changed.cpython-314t.pyc").read_bytes()
    c, d = _two_builds(
        tmp_path / "semantic",
        (Path(__file__).parent / "data" / "pyc" / "path-a.cpython-314t.pyc").read_bytes(),
        semantic,
    )
    (changed,) = recorded_differences(compare_paths(c, d), spec, frozenset(), "free-threaded")
    assert changed.category not in (None, "reference-flags-only") and changed.unexplained_changes == ("content",)
