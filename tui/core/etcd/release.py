"""etcd release tarballs: find one in a local cache, check its SHA-256, read the binaries.

A release is ``etcd-vX.Y.Z-linux-amd64.tar.gz`` holding ``etcd-vX.Y.Z-linux-amd64/etcd``
and ``etcdctl`` (and ``etcdutl`` from 3.5).  Its checksum file is ``SHA256SUMS`` in the
same directory (etcd publishes one per release: ``<hex>  <file name>`` lines).

Usage::

    release = load_release(find_tarball("3.4.10", explicit=None, cache=default_cache()))
    release.binaries["etcd"]       # bytes
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.errors import UserError

BINARIES = ("etcd", "etcdctl")
CHECKSUMS = "SHA256SUMS"
_NAME = re.compile(r"^etcd-v(?P<version>\d+\.\d+\.\d+[^/]*?)-linux-(?P<arch>[a-z0-9]+)"
                   r"\.tar\.gz$")


def tarball_name(version: str, arch: str = "amd64") -> str:
    """``etcd-vX.Y.Z-linux-amd64.tar.gz``."""
    return f"etcd-v{version}-linux-{arch}.tar.gz"


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/hardway/etcd`` (``~/.cache/hardway/etcd``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hardway" / "etcd"


@dataclass(frozen=True)
class Release:
    """A release tarball read into memory.

    Attributes:
        path: the tarball.
        version: ``3.4.10`` (from the file name).
        sha256: hex digest of the tarball.
        checksum: ``verified`` (matched SHA256SUMS) or ``absent`` (no checksum file or no
            line for this file).
        binaries: ``etcd``/``etcdctl`` -> content.
    """

    path: Path
    version: str
    sha256: str
    checksum: str
    binaries: dict[str, bytes] = field(repr=False)

    @property
    def checksum_note(self) -> str:
        """One line for previews."""
        if self.checksum == "verified":
            return f"{self.path.name}: SHA-256 {self.sha256[:16]}... matches {CHECKSUMS}"
        return (f"{self.path.name}: SHA-256 {self.sha256[:16]}... (no {CHECKSUMS} line beside "
                "it: not checked)")


def find_tarball(version: str, *, explicit: Path | None, cache: Path | None) -> Path | None:
    """``explicit`` when given (UserError if missing), else the cache's tarball, else None."""
    if explicit is not None:
        if not explicit.is_file():
            raise UserError(f"The etcd release tarball {explicit} (--etcd-tarball) does not "
                            "exist or is not a file.")
        return explicit
    if cache is None:
        return None
    candidate = cache / tarball_name(version)
    return candidate if candidate.is_file() else None


def version_of(path: Path) -> str:
    """The version in a release file name.

    Raises:
        UserError: the name is not ``etcd-vX.Y.Z-linux-ARCH.tar.gz``.
    """
    match = _NAME.match(path.name)
    if match is None:
        raise UserError(f"{path} is not named like an etcd release "
                        "(etcd-vX.Y.Z-linux-amd64.tar.gz); rename it or give the right file.")
    return match.group("version")


def _expected_sum(path: Path) -> str | None:
    sums = path.with_name(CHECKSUMS)
    if not sums.is_file():
        return None
    for line in sums.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            return parts[0].lower()
    return None


def load_release(path: Path) -> Release:
    """Check the tarball's SHA-256 against ``SHA256SUMS`` and read etcd and etcdctl.

    Raises:
        UserError: the checksum differs, the archive is unreadable or lacks a binary.
    """
    version = version_of(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    expected = _expected_sum(path)
    if expected is not None and expected != digest:
        raise UserError(f"The etcd release {path} does not match its checksum: "
                        f"{path.with_name(CHECKSUMS)} says {expected}, the file's SHA-256 is "
                        f"{digest}. Download it again; nothing was installed.")
    prefix = path.name[: -len(".tar.gz")]
    binaries: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for name in BINARIES:
                try:
                    member = archive.getmember(f"{prefix}/{name}")
                except KeyError:
                    raise UserError(f"The etcd release {path} has no {prefix}/{name}; it is "
                                    "not an etcd release tarball.") from None
                handle = archive.extractfile(member)
                if handle is None:
                    raise UserError(f"{prefix}/{name} in {path} is not a regular file.")
                binaries[name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"The etcd release {path} cannot be read: {exc}.") from None
    return Release(path, version, digest, "verified" if expected else "absent", binaries)


__all__ = ["BINARIES", "CHECKSUMS", "Release", "default_cache", "find_tarball", "load_release",
           "tarball_name", "version_of"]
