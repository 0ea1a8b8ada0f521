"""`hardway certs push` over an ordinary login with sudo, on the confined lab.

The lab's second login, kthw, sees each host read-only except its home, /tmp and /run; its
sudo (the lab's shim) gives root's view when /etc/sudoers.d allows it without a password.
The push stages the files in kthw's home, moves them into place with `sudo -n` (journal,
backups, back-to-back switch as for root), restarts etcd and kube-apiserver behind their
probes, and `--restore` puts the previous files back the same way; a sudo that wants a
password stops everything before any change, naming the host.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import running_lab
from tui.cli import main
from tui.lab import namespaces
from tui.lab.lab import LabRunner

pytestmark = pytest.mark.skipif(namespaces.unavailable() is not None,
                                reason=f"no namespaces: {namespaces.unavailable()}")

K = "var/lib/kubernetes"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    with running_lab(tmp_path_factory.mktemp("sudo"), 67, controllers=2,
                     isolation="namespaces") as runner:
        yield runner


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def kthw(lab: LabRunner) -> Path:
    """The lab's inventory with the ordinary login (everything else as the lab wrote it)."""
    source = lab.lab.inventory_path
    path = source.with_name("inventory-kthw.toml")
    path.write_text(source.read_text().replace('user = "root"', 'user = "kthw"', 1))
    return path


def host_file(lab: LabRunner, host: str, path: str) -> Path:
    return lab.lab.directory / "hosts" / host / path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hardway(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out + err


def test_the_ordinary_login_needs_sudo_to_write(lab: LabRunner,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    status, out = hardway(capsys, "run", "-i", str(kthw(lab)), "-w", "controller-0", "--",
                          "echo $HOME; touch /var/lib/kubernetes/x || echo refused; "
                          "sudo -n touch /var/lib/kubernetes/y && echo sudo-wrote")
    assert status == 0, out
    assert "/home/kthw" in out and "Read-only file system" in out and "refused" in out
    assert "sudo-wrote" in out
    assert host_file(lab, "controller-0", f"{K}/y").exists()
    host_file(lab, "controller-0", f"{K}/y").unlink()


def test_push_and_restore_through_sudo(lab: LabRunner, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    inventory = kthw(lab)
    pki = lab.lab.directory / "pki"
    before = {h: sha(host_file(lab, h, f"{K}/kubernetes.pem"))
              for h in ("controller-0", "controller-1")}
    assert hardway(capsys, "certs", "issue", "-i", str(inventory), "kubernetes",
                   "--force")[0] == 0
    status, out = hardway(capsys, "certs", "push", "-i", str(inventory), "--dry-run")
    assert status == 0 and "as kthw: staged in its home (~/.hardway-staging), moved into " \
        "place with `sudo -n`" in " ".join(out.split())
    assert "$ sudo systemctl restart etcd" in out
    status, out = hardway(capsys, "certs", "push", "-i", str(inventory), "--yes")
    assert status == 0, out
    assert "restart etcd ... ok" in out and "restart kube-apiserver ... ok" in out
    for host in ("controller-0", "controller-1"):
        for path in (f"{K}/kubernetes.pem", f"{K}/kubernetes-key.pem",
                     "etc/etcd/kubernetes.pem", "etc/etcd/kubernetes-key.pem"):
            name = Path(path).name
            assert sha(host_file(lab, host, path)) == sha(pki / name), (host, path)
        assert host_file(lab, host, f"{K}/kubernetes-key.pem").stat().st_mode & 0o777 == 0o600
        assert sha(host_file(lab, host, f"{K}/kubernetes.pem.hardway-bak")) == before[host]
        assert not host_file(lab, host, "var/lib/hardway/pending-write.json").exists()
        assert not host_file(lab, host, "home/kthw/.hardway-staging").exists()
    status, out = hardway(capsys, "certs", "check", "--json", "-i", str(inventory))
    report = json.loads(out)
    assert status == 0 and report["errors"] == 0, report["findings"]
    status, out = hardway(capsys, "certs", "push", "-i", str(inventory), "--restore", "--yes")
    assert status == 0, out
    for host in ("controller-0", "controller-1"):
        assert sha(host_file(lab, host, f"{K}/kubernetes.pem")) == before[host]


def test_a_sudo_that_wants_a_password_changes_nothing(
        lab: LabRunner, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = kthw(lab)
    sudoers = host_file(lab, "controller-1", "etc/sudoers.d/hardway-lab")
    rule = sudoers.read_text()
    sudoers.unlink()
    try:
        assert hardway(capsys, "certs", "issue", "-i", str(inventory), "kubernetes",
                       "--force")[0] == 0
        before = {h: sha(host_file(lab, h, f"{K}/kubernetes.pem"))
                  for h in ("controller-0", "controller-1")}
        status, out = hardway(capsys, "certs", "push", "-i", str(inventory), "--yes")
        assert status == 2
        assert "Nothing was changed: sudo on controller-1 needs a password for user kthw" \
            in " ".join(out.split())
        assert "Traceback" not in out and "controller-0" not in out
        assert {h: sha(host_file(lab, h, f"{K}/kubernetes.pem"))
                for h in ("controller-0", "controller-1")} == before
    finally:
        sudoers.write_text(rule)


def test_the_certificate_etcd_serves_is_checked(lab: LabRunner, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """:2379 is a finding source like :6443: etcd stopped on controller-1 serves nothing;
    controller-0's /etc/etcd pair swapped for another CA's (etcd re-reads it on every
    handshake) is served, and rejected; the grouped matrix cell says so."""
    from tui.core.inventory.load import load_inventory
    from tui.core.pki.ca import CertificateAuthority
    from tui.core.pki.inspect import inspect_pem
    from tui.core.pki.profiles import profile_named

    inventory = kthw(lab)
    cert, key = (host_file(lab, "controller-0", f"etc/etcd/{n}")
                 for n in ("kubernetes.pem", "kubernetes-key.pem"))
    saved = cert.read_bytes(), key.read_bytes()
    other = CertificateAuthority.create(tmp_path / "other", key_type="ecdsa")
    issued = other.issue(profile_named(load_inventory(inventory), "kubernetes"),
                         key_type="ecdsa")
    assert hardway(capsys, "run", "-i", str(inventory), "-w", "controller-1", "--",
                   "sudo -n systemctl stop etcd")[0] == 0
    key.write_bytes(issued.key_pem)
    cert.write_bytes(issued.cert_pem)
    try:
        status, out = hardway(capsys, "certs", "check", "--json", "-i", str(inventory))
        report = json.loads(out)
        assert status == 1
        etcd = [f for f in report["findings"] if "etcd on" in f["message"]]
        by_host = {f["host"]: f for f in etcd}
        assert set(by_host) == {"controller-0", "controller-1"}, etcd
        assert "(served on 10.10.0.10:2379) serves /etc/etcd/kubernetes.pem, which was not " \
            "signed by the cluster CA" in by_host["controller-0"]["message"]
        assert by_host["controller-0"]["actions"] == ["push"]
        assert "serves nothing that can be checked on :2379" in by_host["controller-1"][
            "message"]
        assert report["hosts"]["controller-0"]["etcd_served"]["fingerprint"] == \
            inspect_pem(issued.cert_pem, "other").fingerprint
        assert report["hosts"]["controller-1"]["etcd_served"] is None
    finally:
        cert.write_bytes(saved[0])
        key.write_bytes(saved[1])
        hardway(capsys, "run", "-i", str(inventory), "-w", "controller-1", "--",
                "sudo -n systemctl start etcd")
