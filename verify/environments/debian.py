"""Pure Debian archive logic: Packages indexes, Release dates, ``.deb`` control data, flat repositories.

No network and no subprocesses here: callers hand in bytes and get values back, so every rule is
tested on real archive data without a mirror.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

from verify.environments.errors import LockFileError
from verify.environments.lock import LockedPackage
from verify.source.locations.deb822 import first_paragraph, iter_paragraphs

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """A package as ``dpkg-query`` lists it inside a freshly resolved rootfs."""

    name: str
    version: str
    architecture: str


def parse_installed(text: str) -> list[InstalledPackage]:
    """Parse ``dpkg-query -W -f='${Package}\\t${Version}\\t${Architecture}\\n'`` output."""
    packages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not all(parts):
            raise LockFileError(f"unexpected dpkg-query line {line!r}")
        packages.append(InstalledPackage(*parts))
    return packages


def lock_packages(installed: Sequence[InstalledPackage], indexes: Iterable[str]) -> tuple[LockedPackage, ...]:
    """Pin every installed package to the pool path, size and sha256 its Packages index gives.

    Several indexes (``bookworm`` and ``bookworm-updates``) may list the same package; the exact
    installed version picks the entry. A package found in no index cannot be pinned, which is an error.
    """
    wanted = {(package.name, package.version, package.architecture) for package in installed}
    found: dict[tuple[str, str, str], LockedPackage] = {}
    for text in indexes:
        for stanza in iter_paragraphs(text):
            key = (stanza.get("Package", ""), stanza.get("Version", ""), stanza.get("Architecture", ""))
            if key in wanted and key not in found:
                size = stanza.get("Size", "")
                if not stanza.get("Filename") or not size.isdigit() or not stanza.get("SHA256"):
                    raise LockFileError(f"Packages index entry of {key[0]} {key[1]} lacks Filename, Size or SHA256")
                found[key] = LockedPackage(
                    name=key[0],
                    version=key[1],
                    architecture=key[2],
                    path=stanza["Filename"],
                    size=int(size),
                    sha256=stanza["SHA256"],
                )
    missing = sorted(wanted - found.keys())
    if missing:
        listed = ", ".join(f"{name}={version}" for name, version, _ in missing[:5])
        raise LockFileError(f"{len(missing)} installed package(s) are in no Packages index: {listed}")
    return tuple(sorted(found.values(), key=lambda package: (package.name, package.architecture)))


def release_date(in_release: str) -> tuple[str, int]:
    """The ``Date`` field of a (In)Release file, as written and as a Unix time."""
    for stanza in iter_paragraphs(_strip_pgp(in_release)):
        if "Date" in stanza:
            date = stanza["Date"]
            try:
                return date, int(parsedate_to_datetime(date).timestamp())
            except (TypeError, ValueError):
                raise LockFileError(f"Release file has an unreadable Date {date!r}") from None
    raise LockFileError("Release file has no Date field")


def _strip_pgp(text: str) -> str:
    # InRelease is clear-signed: the body sits between the armor header block and the signature.
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        return text
    body = text.split("\n\n", 1)[1] if "\n\n" in text else text
    return body.split("-----BEGIN PGP SIGNATURE-----", 1)[0]


def deb_control(deb: bytes) -> str:
    """The ``control`` file of a ``.deb`` (an ar archive holding ``control.tar.{gz,xz}``)."""
    if not deb.startswith(_AR_MAGIC):
        raise LockFileError("not a .deb: missing ar magic")
    offset = len(_AR_MAGIC)
    while offset + _AR_HEADER <= len(deb):
        header = deb[offset : offset + _AR_HEADER]
        member = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise LockFileError("not a .deb: corrupt ar header") from None
        start = offset + _AR_HEADER
        if member.startswith("control.tar"):
            if member.endswith(".zst"):
                raise LockFileError("control.tar.zst is not supported (bookworm uses xz)")
            return _control_from_tar(deb[start : start + size])
        offset = start + size + (size % 2)  # ar members are 2-byte aligned
    raise LockFileError("not a .deb: no control.tar member")


def _control_from_tar(data: bytes) -> str:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive.getmembers():
                if member.name in ("./control", "control") and member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        return extracted.read().decode("utf-8")
    except (tarfile.TarError, EOFError, UnicodeDecodeError) as exc:
        raise LockFileError(f"not a .deb: unreadable control.tar ({exc})") from None
    raise LockFileError("not a .deb: control.tar has no control file")


def flat_packages_index(entries: Iterable[tuple[LockedPackage, str]]) -> str:
    """A ``Packages`` index for a flat repository holding exactly the locked ``.deb`` files.

    Each entry is a locked package and its control file; the index points apt at the file by its
    bare name and states the pinned size and sha256, so apt itself re-checks every file it installs.
    """
    stanzas = []
    for package, control in sorted(entries, key=lambda entry: (entry[0].name, entry[0].architecture)):
        fields = first_paragraph(control)
        if fields.get("Package") != package.name or fields.get("Version") != package.version:
            raise LockFileError(f"{package.filename}: control file does not describe {package.name} {package.version}")
        lines = [f"{key}: {value}" for key, value in fields.items() if key not in _INDEX_FIELDS]
        lines += [f"Filename: ./{package.filename}", f"Size: {package.size}", f"SHA256: {package.sha256}"]
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


def flat_release(*, suite: str, architecture: str, packages_index: bytes, epoch: int) -> str:
    """The ``Release`` file of the flat repository.

    mmdebstrap picks the Essential set with ``?archive(^SUITE$)``/``?codename(^SUITE$)``, so the
    repository must say which suite it is; the Packages digest lets apt check the index as well.
    """
    digest = hashlib.sha256(packages_index).hexdigest()
    date = formatdate(epoch, usegmt=True)
    return (
        f"Origin: cpython-verify\nLabel: cpython-verify\nSuite: {suite}\nCodename: {suite}\nDate: {date}\n"
        f"Architectures: {architecture} all\nSHA256:\n {digest} {len(packages_index)} Packages\n"
    )


_INDEX_FIELDS: Mapping[str, None] = dict.fromkeys(("Filename", "Size", "SHA256", "MD5sum", "SHA1", "SHA512"))
