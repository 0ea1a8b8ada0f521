"""The lab's etcd release cache (tui/lab/etcd_release.py): built once, read once per lab."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from tui.lab import etcd_release


@pytest.fixture
def binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A tiny etcd (a script answering --version) and etcdctl, as the machine's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    etcd = bin_dir / "etcd"
    etcd.write_text("#!/bin/sh\necho 'etcd Version: 3.4.99'\n")
    etcdctl = bin_dir / "etcdctl"
    etcdctl.write_text("#!/bin/sh\necho etcdctl\n")
    for path in (etcd, etcdctl):
        path.chmod(0o755)
    monkeypatch.setattr(etcd_release, "find_binaries", lambda: (etcd, etcdctl, "a test"))
    return etcd, etcdctl


def test_three_hosts_unpack_the_tarball_once_into_copies_of_their_own(
        tmp_path: Path, binaries: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a member of a .tar.gz by name decompresses it again from the start; the
    lab unpacked every binary that way for every controller (seconds of a lab start)."""
    opened: list[str] = []
    original = tarfile.open

    def counting(name: Any = None, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode.startswith("r"):
            opened.append(mode)
        return original(name, mode, *args, **kwargs)

    monkeypatch.setattr(tarfile, "open", counting)
    lab = tmp_path / "lab"
    lab.mkdir()
    targets = [tmp_path / f"host-{i}" / "usr" / "local" / "bin" for i in range(3)]
    for target in targets:
        release = etcd_release.ensure_release(lab)
        assert release is not None and release.version == "3.4.99"
        written = etcd_release.unpack_binaries(release, target)
        assert [p.name for p in written] == ["etcd", "etcdctl"]
    assert opened == ["r|gz"]  # one streaming pass for the whole lab
    inodes = {(t / "etcd").stat().st_ino for t in targets}
    assert len(inodes) == 3  # copies: a host writing into its binary changes no other
    assert (targets[2] / "etcd").read_bytes() == binaries[0].read_bytes()
    assert (targets[2] / "etcd").stat().st_mode & 0o777 == 0o755
    sums = (lab / etcd_release.CACHE_DIR / "SHA256SUMS").read_text()
    assert sums == f"{release.sha256}  etcd-v3.4.99-linux-amd64.tar.gz\n"
