"""Every reproducibility setting of a rebuild, in one place, and the variations that perturb them.

A :class:`BuildSettings` is pure data: the fixed in-sandbox paths, the environment variables, the
umask, the parallelism, the hostname and user. :func:`apply_variations` returns the settings a
``--vary`` build uses; the names follow reprotest's list so that a result reads the same as
reprotest's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from verify.common.errors import OperationalError

# The sandbox sees the rootfs read-only; only these mount points (created empty in every rootfs)
# are writable. Build paths are chosen *below* them so a varied path needs no new mount point.
BUILD_MOUNT = "/build"
OUT_MOUNT = "/out"

DEFAULT_BUILD_DIR = "/build/cpython"
DEFAULT_DESTDIR = "/out/root"
# reprotest-style alternatives: deeper, differently named, same mount.
VARIED_BUILD_DIR = "/build/varied-build-path/cpython-rebuild"

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_HOME = "/tmp"  # noqa: S108 - the sandbox's private tmpfs
# reprotest's values: a HOME that does not exist, and a PATH entry nothing can be found in.
VARIED_HOME = "/nonexistent/second-build"
VARIED_EXEC_PATH_DIR = "/i_capture_the_path"
"""Appended to ``PATH`` by the ``exec_path`` variation, as reprotest's ``exec_path`` does
(``PATH + ':/i_capture_the_path'``): every command still resolves to the same file, so only a build that
records ``PATH`` itself can differ."""
CLOCK_SHIFT = "+397d"
"""libfaketime's FAKETIME for the ``time`` variation: a clock 397 days ahead (reprotest's order of magnitude,
more than a year so a year, a month and a day all change)."""


USER_BASE = f"{DEFAULT_HOME}/.local"
"""``PYTHONUSERBASE`` in every build command, whatever ``HOME`` is. From 3.14, ``make`` writes
``sysconfig``'s variables to ``lib/pythonX.Y/_sysconfig_vars_*.json``, and one of them, ``userbase``, is
``$HOME/.local`` of the builder unless ``PYTHONUSERBASE`` says otherwise (``sysconfig._getuserbase`` reads
it even under ``-E``): measured on 3.15.0rc1 under ``--vary all``, the only unexplained difference. The
value is the one the default ``HOME`` gives, so a build that varies nothing writes what it wrote before.
A built interpreter works out ``userbase`` again at run time; the file only records the build's."""

CONFIGURE_ANSWERS: Mapping[str, str] = {"ac_cv_broken_nice": "no"}
"""Answers configure is given, as autoconf cache variables in the environment, instead of finding them by
probing the build's own process. CPython's "broken nice()" probe calls ``nice(1)`` then ``nice(2)`` and
calls ``nice()`` broken when both return the same value, which they do at niceness 18 and 19: a build
started under ``nice -n 19`` (a CI runner, a background job) got ``HAVE_BROKEN_NICE``, so another
``pyconfig.h``, sysconfigdata and interpreter, under the same cache key. Linux's ``nice()`` is not broken."""


@dataclass(frozen=True, slots=True)
class Variation:
    """One thing a second build may change, with a one-line description for reports."""

    name: str
    description: str


VARIATIONS: Mapping[str, Variation] = {
    variation.name: variation
    for variation in (
        Variation("build_path", f"build in {VARIED_BUILD_DIR} instead of {DEFAULT_BUILD_DIR}"),
        Variation("time", f"the clock inside the sandbox runs {CLOCK_SHIFT[1:-1]} days ahead (FAKETIME={CLOCK_SHIFT})"),
        Variation("umask", "umask 002 instead of 022"),
        Variation("locale", "LANG/LC_ALL fr_CH.UTF-8 instead of C.UTF-8"),
        Variation("cpus", "make -j1 on one CPU instead of all CPUs"),
        Variation("hostname", "hostname 'reprotest-varied' instead of 'build'"),
        Variation("user_group", "run as uid/gid 65534 instead of root"),
        Variation("timezone", "TZ=GMT+12 instead of UTC"),
        Variation("fileordering", "directory entries of the build and output trees listed in reverse (disorderfs)"),
        Variation("kernel", "uname reports a 2.6 kernel (setarch --uname-2.6)"),
        Variation("aslr", "address space layout randomisation off (setarch -R) instead of the host's default"),
        Variation("home", f"HOME={VARIED_HOME} (does not exist) instead of {DEFAULT_HOME}"),
        Variation("exec_path", f"PATH with {VARIED_EXEC_PATH_DIR} (absent) appended, as reprotest does"),
    )
}

VARIATION_ALIASES: Mapping[str, str] = {
    "user": "user_group",  # this project's earlier name
    "num_cpus": "cpus",  # reprotest's spellings of the variations this project names differently
    "domain_host": "hostname",
    "locales": "locale",
}
"""Other accepted names: each means the variation it maps to (results record the canonical name)."""


@dataclass(frozen=True, slots=True)
class BuildSettings:
    """The reproducibility settings of one build. Recorded verbatim in ``rebuild.json``."""

    source_date_epoch: int | None = None
    """Seconds since the epoch; None means "from the release" (the newest mtime in the tarball)."""
    build_dir: str = DEFAULT_BUILD_DIR
    destdir: str = DEFAULT_DESTDIR
    tz: str = "UTC"
    locale: str = "C.UTF-8"
    pythonhashseed: str = "0"
    umask: str = "022"
    jobs: int = 0
    """``make -j``; 0 means the number of CPUs the sandbox may use."""
    cpus: int | None = None
    """CPUs the sandbox may use (None: all)."""
    hostname: str = "build"
    user: str = "root"
    file_prefix_map: bool = True
    """Pass ``-ffile-prefix-map=BUILD_DIR=.`` so DWARF and ``__FILE__`` do not carry the build path."""
    # The fields below exist only to be varied; records and cache keys list them only when they differ
    # from these defaults, so a baseline's record and cache key stay those of earlier versions.
    home: str = DEFAULT_HOME
    exec_path_suffix: str = ""
    """A directory appended to ``PATH`` (the ``exec_path`` variation). Earlier versions put it in front and
    recorded ``exec_path_prefix``: the new name keeps such a cached varied build from being reused."""
    clock_offset: str | None = None
    """libfaketime's ``FAKETIME`` (e.g. ``+397d``): the clock inside the sandbox is shifted by that much."""
    uname_2_6: bool = False
    """``uname`` reports a 2.6 kernel (``setarch --uname-2.6``)."""
    aslr: bool = True
    """False: address space layout randomisation off (``setarch -R``)."""
    reversed_directory_order: bool = False
    """Directory entries of the build and output binds listed in reverse order (disorderfs)."""

    def __post_init__(self) -> None:
        for path in (self.build_dir, self.destdir):
            if not path.startswith("/") or ".." in path.split("/"):
                raise OperationalError(f"sandbox path {path!r} must be absolute and without '..'")
        if not (self.build_dir.startswith(BUILD_MOUNT + "/") and self.destdir.startswith(OUT_MOUNT + "/")):
            raise OperationalError(f"build dir must be under {BUILD_MOUNT}/ and DESTDIR under {OUT_MOUNT}/")
        if len(self.umask) != 3 or any(digit not in "01234567" for digit in self.umask):
            raise OperationalError(f"umask {self.umask!r} is not three octal digits")

    def make_jobs(self) -> int:
        """The ``-j`` value: explicit, else the CPUs the sandbox gets, else this machine's."""
        if self.jobs:
            return self.jobs
        return self.cpus or len(os.sched_getaffinity(0))

    def environment(self) -> dict[str, str]:
        """The complete environment of every build command (the sandbox starts empty)."""
        if self.source_date_epoch is None:
            raise OperationalError("SOURCE_DATE_EPOCH is not known yet: the source has not been unpacked")
        env = {
            "PATH": f"{PATH}:{self.exec_path_suffix}" if self.exec_path_suffix else PATH,
            "HOME": self.home,
            "PYTHONUSERBASE": USER_BASE,
            "SOURCE_DATE_EPOCH": str(self.source_date_epoch),
            "TZ": self.tz,
            "LC_ALL": self.locale,
            "LANG": self.locale,
            "PYTHONHASHSEED": self.pythonhashseed,
            # Not inherited from the host, but pinned so no tool guesses from a terminal.
            "TERM": "dumb",
            **CONFIGURE_ANSWERS,
        }
        return env

    def cflags(self) -> str:
        """Extra compiler flags: the build path mapped away so it does not reach the object files."""
        if not self.file_prefix_map:
            return ""
        return f"-ffile-prefix-map={self.build_dir}=."

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record of every setting (part of the cache key and of ``rebuild.json``)."""
        record = asdict(self)
        for name, default in _VARIATION_ONLY_DEFAULTS.items():
            if record[name] == default:
                del record[name]
        record["make_jobs"] = self.make_jobs()
        record["cflags"] = self.cflags()
        # Part of the cache key: a build made before configure was given these answers (possibly at niceness
        # 18 or more) is not served as one made with them.
        record["configure_answers"] = " ".join(f"{name}={value}" for name, value in sorted(CONFIGURE_ANSWERS.items()))
        # Part of the cache key too: a 3.14+ build made without it recorded its builder's HOME.
        record["python_user_base"] = USER_BASE
        return record


_VARIATION_ONLY_DEFAULTS: Mapping[str, Any] = {
    "home": DEFAULT_HOME,
    "exec_path_suffix": "",
    "clock_offset": None,
    "uname_2_6": False,
    "aslr": True,
    "reversed_directory_order": False,
}


def parse_variations(names: Iterable[str]) -> frozenset[str]:
    """Validate ``--vary`` names (comma-separated values allowed); ``all`` means every variation,
    an alias (:data:`VARIATION_ALIASES`) its canonical name; unknown names are an error."""
    chosen: set[str] = set()
    for item in names:
        for name in item.split(","):
            name = name.strip().replace("-", "_")
            if not name:
                continue
            if name == "all":
                chosen |= VARIATIONS.keys()
                continue
            name = VARIATION_ALIASES.get(name, name)
            if name not in VARIATIONS:
                known = ", ".join(["all", *VARIATIONS])
                raise OperationalError(f"unknown variation {name!r}; known: {known}")
            chosen.add(name)
    return frozenset(chosen)


def canonical_variations(variations: Iterable[str]) -> frozenset[str]:
    """``variations`` with aliases replaced by their canonical names (unknown names are kept, to be refused)."""
    return frozenset(VARIATION_ALIASES.get(name, name) for name in variations)


def apply_variations(settings: BuildSettings, variations: frozenset[str]) -> BuildSettings:
    """The settings of a build that differs from ``settings`` in exactly ``variations``."""
    variations = canonical_variations(variations)
    unknown = variations - VARIATIONS.keys()
    if unknown:
        raise OperationalError(f"unknown variation(s): {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    if "build_path" in variations:
        changes["build_dir"] = VARIED_BUILD_DIR
    if "umask" in variations:
        changes["umask"] = "002"
    if "locale" in variations:
        changes["locale"] = "fr_CH.UTF-8"
    if "cpus" in variations:
        changes["cpus"] = 1
        changes["jobs"] = 1
    if "hostname" in variations:
        changes["hostname"] = "reprotest-varied"
    if "user_group" in variations:
        changes["user"] = "nobody"
    if "timezone" in variations:
        changes["tz"] = "GMT+12"
    if "time" in variations:
        changes["clock_offset"] = CLOCK_SHIFT
    if "fileordering" in variations:
        changes["reversed_directory_order"] = True
    if "kernel" in variations:
        changes["uname_2_6"] = True
    if "aslr" in variations:
        changes["aslr"] = False
    if "home" in variations:
        changes["home"] = VARIED_HOME
    if "exec_path" in variations:
        changes["exec_path_suffix"] = VARIED_EXEC_PATH_DIR
    return replace(settings, **changes)
