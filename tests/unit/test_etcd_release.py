"""Release tarballs: names, SHA256SUMS, members; and the CLI's help and argument errors."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from tui.cli import main
from tui.core.errors import UserError
from tui.core.etcd.release import find_tarball, load_release, tarball_name, version_of


def make(directory: Path, version: str = "3.4.10", members: tuple[str, ...] = ("etcd",
                                                                                 "etcdctl")
         ) -> Path:
    path = directory / tarball_name(version)
    with tarfile.open(path, "w:gz") as archive:
        for name in members:
            data = f"binary {name}".encode()
            info = tarfile.TarInfo(f"etcd-v{version}-linux-amd64/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_checksum_verified_absent_and_wrong(tmp_path: Path) -> None:
    path = make(tmp_path)
    release = load_release(path)
    assert release.version == "3.4.10" and release.checksum == "absent"
    assert release.binaries == {"etcd": b"binary etcd", "etcdctl": b"binary etcdctl"}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  other.tar.gz\n{digest}  {path.name}\n")
    assert load_release(path).checksum == "verified"
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  {path.name}\n")
    with pytest.raises(UserError, match="does not match its checksum"):
        load_release(path)


def test_names_and_lookup(tmp_path: Path) -> None:
    assert version_of(Path("etcd-v3.5.1-linux-amd64.tar.gz")) == "3.5.1"
    with pytest.raises(UserError, match="not named like an etcd release"):
        version_of(Path("etcd.tgz"))
    with pytest.raises(UserError, match="does not exist"):
        find_tarball("3.4.10", explicit=tmp_path / "nope.tar.gz", cache=None)
    assert find_tarball("3.4.10", explicit=None, cache=tmp_path) is None
    path = make(tmp_path)
    assert find_tarball("3.4.10", explicit=None, cache=tmp_path) == path
    (tmp_path / "b").mkdir()
    broken = make(tmp_path / "b", members=("etcd",))
    with pytest.raises(UserError, match=r"has no etcd-v3\.4\.10-linux-amd64/etcdctl"):
        load_release(broken)


def test_cli_help_and_bad_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["etcd", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("plan", "bootstrap", "status", "snapshot", "replace", "examples:",
                 "exit status"):
        assert word in out
    with pytest.raises(SystemExit):
        main(["etcd", "bootstrap", "--help"])
    out = capsys.readouterr().out
    for word in ("--dry-run", "--yes", "--etcd-tarball", "--start-timeout", "SHA256SUMS"):
        assert word in out
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster]\nname = 1\n")
    assert main(["etcd", "status", "-i", str(bad)]) == 2
    assert "bad.toml" in capsys.readouterr().err
