"""`hardway certs` against the lab in the seed's broken state (scenario seed-cert-bug).

The lab's kube-apiserver stand-ins run under the lab's systemd, one per controller; the seed
scenario gives them a kubernetes.pem without 127.0.0.1 and a unit whose `\\` continuation
dropped --tls-cert-file, so each serves a self-signed certificate it generated itself.

The tests run in file order on one lab: the seed is diagnosed, fixed by issue + push, then
every other diagnosis is provoked on the healthy cluster, and finally a push that one host
does not survive is stopped there and undone with --restore.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support import loopback
from tui.cli import main
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.health.probes import apiserver_probe, etcd_health
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.diagnose import CertFinding
from tui.core.pki.inspect import fetch_served
from tui.core.pki.profiles import profile_named
from tui.core.pki.survey import survey
from tui.lab.lab import LabRunner
from tui.lab.server import LabAddressInUse

K = "/var/lib/kubernetes"
UNIT = "/etc/systemd/system/kube-apiserver.service"
CONTROLLERS = ["controller-0", "controller-1", "controller-2"]
T = TypeVar("T")


@pytest.fixture(scope="module")
def seed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A 3-controller lab in the seed-cert-bug state, on its own 127.0.6x network."""
    directory = tmp_path_factory.mktemp("certs-lab")
    for attempt in range(5):
        network = loopback.network(60, 10, attempt)
        runner = LabRunner(directory, controllers=3, network=network,
                           scenario="seed-cert-bug")
        try:
            runner.start(timeout=120)
        except LabAddressInUse:
            continue
        try:
            yield runner
        finally:
            runner.stop()
        return
    pytest.fail("no free loopback network for the certificate lab after 5 attempts")


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the host-key record and the audit log out of the user's home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def certs(capsys: pytest.CaptureFixture[str], lab: LabRunner, *argv: str) -> tuple[int, str]:
    """Run ``hardway certs ARGV -i LAB`` in-process; returns the status and stdout+stderr."""
    status = main(["certs", *argv, "-i", str(lab.lab.inventory_path)])
    out, err = capsys.readouterr()
    return status, out + err


def inventory(lab: LabRunner) -> Inventory:
    return load_inventory(lab.lab.inventory_path)


def on_host(lab: LabRunner, name: str, path: str) -> Path:
    return lab.lab.host_root(name) / path.lstrip("/")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _with_fleet(inv: Inventory, work: Callable[[Fleet], Awaitable[T]]) -> T:
    async with Fleet.from_inventory(inv, host_keys=HostKeyPolicy("strict"),
                                    use_user_config=False) as fleet:
        await fleet.connect()
        return await work(fleet)


def fleet_run(lab: LabRunner, names: list[str], command: str) -> dict[str, str]:
    async def work(fleet: Fleet) -> dict[str, str]:
        results = await fleet.run(names, command, timeout=30)
        for name, result in results.items():
            assert result.ok, f"{command} on {name}: {result}"
        return {n: r.stdout for n, r in results.items()}
    return asyncio.run(_with_fleet(inventory(lab), work))


def wait_live(lab: LabRunner, name: str, *, ca: bytes | None = None,
              timeout: float = 20.0) -> str:
    async def poll() -> str:
        address = str(inventory(lab).host(name).address)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = await apiserver_probe(address, 6443, ca_pem=ca, timeout=2)
            if result.ok or asyncio.get_running_loop().time() > deadline:
                return result.detail if result.ok else f"NOT LIVE: {result.detail}"
            await asyncio.sleep(0.2)
    return asyncio.run(poll())


def https_get_verified(address: str, ca_file: Path, path: str = "/version") -> bytes:
    """GET over TLS with Python's ssl verifying the chain and the address against ca.pem."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((address, 6443), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname=address) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {address}:6443\r\n"
                    "Connection: close\r\n\r\n".encode())
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def ensure_fixed(lab: LabRunner, capsys: pytest.CaptureFixture[str]) -> None:
    """Bring the lab to the fixed state (when a test runs alone, e.g. with -k)."""
    if certs(capsys, lab, "check")[0] != 0:
        assert certs(capsys, lab, "issue")[0] == 0
        status, text = certs(capsys, lab, "push", "--yes")
        assert status == 0, text


# -- the seed: diagnosed, fixed, verified ----------------------------------------------


def test_check_names_both_seed_problems(seed_lab: LabRunner,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, text = certs(capsys, seed_lab, "check")
    assert status == 1, text
    flat = " ".join(text.split())
    for name in CONTROLLERS:
        assert f"{K}/kubernetes.pem on {name} lacks a required SAN: IP 127.0.0.1 (loopback: " \
               "controller-manager, scheduler, admin kubeconfig and the nginx health proxy " \
               "dial https://127.0.0.1:6443)" in flat
        assert f"kube-apiserver on {name}" in flat
    assert "serves the self-signed certificate it generated itself" in flat
    assert "ExecStart has no --tls-cert-file" in flat or "has no --tls-cert-file" in flat
    assert "/var/run/kubernetes/apiserver.crt" in flat
    assert "PRIVATE KEY" not in text

    status, text = certs(capsys, seed_lab, "check", "--json")
    assert status == 1
    data = json.loads(text)
    host = data["hosts"]["controller-0"]
    assert host["served"]["issuer_cn"].endswith("-ca@" + host["served"]["issuer_cn"]
                                                .rsplit("@", 1)[1])
    assert host["stale_files"] == ["/var/run/kubernetes/apiserver.crt",
                                   "/var/run/kubernetes/apiserver.key"]
    assert host["key_matches"] is True
    assert data["errors"] >= 6


def test_issue_and_push_fix_the_seed(seed_lab: LabRunner,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    pki = seed_lab.lab.directory / "pki"
    status, text = certs(capsys, seed_lab, "issue", "--json")
    assert status == 0, text
    actions = {c["name"]: c for c in json.loads(text)["certificates"]}
    assert actions["kubernetes"]["action"] == "issued"
    assert any("127.0.0.1" in reason for reason in actions["kubernetes"]["reasons"])

    status, text = certs(capsys, seed_lab, "push", "--dry-run")
    assert status == 0, text
    mended = re.search(r"^ +-(  --\S+)\n +\+\1 \\\n +  --tls-cert-file=", text, re.M)
    assert mended, f"the unit diff should add the lost `\\`:\n{text}"
    assert "lacks its trailing `\\`" in " ".join(text.split())
    assert "private key, contents not shown" in text and "PRIVATE KEY" not in text
    assert "$ systemctl restart kube-apiserver" in text
    assert "adds 127.0.0.1" in text
    assert "Dry run: nothing was changed." in text
    unit_before = on_host(seed_lab, "controller-0", UNIT).read_text()

    status, text = certs(capsys, seed_lab, "push")
    assert status == 2 and "needs --yes" in text
    assert on_host(seed_lab, "controller-0", UNIT).read_text() == unit_before

    status, text = certs(capsys, seed_lab, "push", "--yes", "--health-timeout", "30")
    assert status == 0, text
    lines = text.splitlines()
    for name in CONTROLLERS:
        restart = next(line for line in lines
                       if line.startswith(f"{name}  restart kube-apiserver ... "))
        assert " ... ok (livez 200 in " in restart, restart
        assert any(line.startswith(f"{name}  put files ... ok (") for line in lines)
        assert any(line.startswith(f"{name}  remove stale apiserver.crt ... ok (")
                   for line in lines)
        kube = on_host(seed_lab, name, f"{K}/kubernetes.pem")
        assert digest(kube) == digest(pki / "kubernetes.pem")
        assert on_host(seed_lab, name, f"{K}/kubernetes-key.pem").stat().st_mode & 0o777 == 0o600
        assert (kube.parent / "kubernetes.pem.hardway-bak").exists()
        assert not on_host(seed_lab, name, "/var/run/kubernetes/apiserver.crt").exists()
    assert "Push complete on 3 hosts" in text

    status, text = certs(capsys, seed_lab, "check")
    assert status == 0, text

    inv = inventory(seed_lab)
    for host in inv.controllers:
        answer = https_get_verified(str(host.address), pki / "ca.pem")
        assert b" 200 " in answer.split(b"\r\n", 1)[0] and b"v1.18.6" in answer
        served = asyncio.run(fetch_served(str(host.address), 6443))
        assert "127.0.0.1" in served.ip_addresses


# -- every other diagnosis, on the healthy cluster --------------------------------------


def test_survey_detects_key_mismatch_expiry_and_a_foreign_ca(
        seed_lab: LabRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_fixed(seed_lab, capsys)
    inv = inventory(seed_lab)
    pki = seed_lab.lab.directory / "pki"
    ca = CertificateAuthority.load(pki)
    other = CertificateAuthority.create(tmp_path / "other", key_type="ecdsa")
    short = ca.issue(profile_named(inv, "kubernetes"), key_type="ecdsa", validity_days=10)
    stranger = ca.issue(profile_named(inv, "admin"), key_type="ecdsa")

    async def provoke(fleet: Fleet) -> list[CertFinding]:
        originals = {}
        changes = [("controller-0", f"{K}/kubernetes-key.pem", stranger.key_pem, 0o600),
                   ("controller-1", f"{K}/kubernetes.pem", short.cert_pem, 0o644),
                   ("controller-1", f"{K}/kubernetes-key.pem", short.key_pem, 0o600),
                   ("controller-2", f"{K}/ca.pem", other.cert_pem, 0o644)]
        for name, path, data, mode in changes:
            originals[(name, path, mode)] = await fleet.get(name, path)
            assert (await fleet.put(name, data, path, mode=mode, backup=False)).ok
        try:
            report = await survey(inv, fleet, ca_cert=ca.cert, pki_dir=pki, served=False)
        finally:
            for (name, path, mode), data in originals.items():
                assert (await fleet.put(name, path=path, data=data, mode=mode,
                                        backup=False)).ok
        return report.findings

    findings = asyncio.run(_with_fleet(inv, provoke))
    by_host: dict[str | None, list[CertFinding]] = {}
    for finding in findings:
        by_host.setdefault(finding.host, []).append(finding)
    mismatch = [f for f in by_host["controller-0"] if "is not the private key" in f.message]
    assert mismatch and mismatch[0].severity == "error"
    expiring = [f for f in by_host["controller-1"] if "expires in" in f.message]
    assert expiring and expiring[0].severity == "warning"
    foreign = [f for f in by_host["controller-2"] if "holds a different CA" in f.message]
    assert foreign and foreign[0].severity == "error"
    pushed = [f for f in by_host["controller-1"] if "differ from" in f.message]
    assert pushed and f"{K}/kubernetes.pem" in pushed[0].message


# -- a host that does not come back ----------------------------------------------------


def test_push_stops_at_a_host_that_fails_and_restore_puts_the_files_back(
        seed_lab: LabRunner, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_fixed(seed_lab, capsys)
    pki = seed_lab.lab.directory / "pki"
    ca_pem = (pki / "ca.pem").read_bytes()
    # controller-1 reads its key from a copy that the push does not write: the next
    # kubernetes.pem then comes with a key the stand-in refuses.
    unit = on_host(seed_lab, "controller-1", UNIT)
    original = unit.read_text()
    try:
        fleet_run(seed_lab, ["controller-1"],
                  f"cp {on_host(seed_lab, 'controller-1', K + '/kubernetes-key.pem')} "
                  f"{on_host(seed_lab, 'controller-1', K + '/apiserver-key.pem')}")
        unit.write_text(unit.read_text().replace(f"--tls-private-key-file={K}/kubernetes-key.pem",
                                                 f"--tls-private-key-file={K}/apiserver-key.pem"))
        fleet_run(seed_lab, ["controller-1"],
                  "systemctl daemon-reload && systemctl restart kube-apiserver")
        assert not wait_live(seed_lab, "controller-1", ca=ca_pem).startswith("NOT LIVE")

        before = {name: {p: digest(on_host(seed_lab, name, f"{K}/{p}"))
                         for p in ("kubernetes.pem", "kubernetes-key.pem")}
                  for name in CONTROLLERS}
        status, text = certs(capsys, seed_lab, "issue", "kubernetes", "--force")
        assert status == 0, text

        status, text = certs(capsys, seed_lab, "push", "--dry-run")
        assert "reads --tls-private-key-file=/var/lib/kubernetes/apiserver-key.pem, which this " \
               "push does not write" in " ".join(text.split())

        status, text = certs(capsys, seed_lab, "push", "--yes", "--health-timeout", "4")
        assert status == 1, text
        flat = " ".join(text.split())
        assert "controller-0  restart kube-apiserver ... ok (livez 200" in text
        failed = next(line for line in text.splitlines()
                      if line.startswith("controller-1  restart kube-apiserver ... "))
        assert failed.startswith("controller-1  restart kube-apiserver ... FAILED (kube-apiserver "
                                 "on controller-1 did not come back within 4 s: livez: "), failed
        assert ("Push stopped at controller-1: restart kube-apiserver failed. Untouched: "
                "controller-2.") in flat
        assert "--restore" in flat
        assert not [line for line in text.splitlines()
                    if line.startswith("controller-2  ") and " ... " in line]
        for p in ("kubernetes.pem", "kubernetes-key.pem"):
            now = {n: digest(on_host(seed_lab, n, f"{K}/{p}")) for n in CONTROLLERS}
            assert now["controller-2"] == before["controller-2"][p], "controller-2 untouched"
            assert now["controller-0"] != before["controller-0"][p], "controller-0 was pushed"
        record = json.loads((pki / "last-push.json").read_text())
        assert set(record["hosts"]) == {"controller-0", "controller-1"}

        status, text = certs(capsys, seed_lab, "push", "--restore", "--dry-run")
        assert status == 0 and "kubernetes.pem.hardway-bak" in text

        status, text = certs(capsys, seed_lab, "push", "--restore", "--yes",
                             "--health-timeout", "30")
        assert status == 0, text
        assert "controller-1  restore backups ... ok (" in text
        assert "controller-1  restart kube-apiserver ... ok (livez 200" in text
        assert not [line for line in text.splitlines() if line.startswith("controller-2")]
        for name in ("controller-0", "controller-1"):
            for p in ("kubernetes.pem", "kubernetes-key.pem"):
                assert digest(on_host(seed_lab, name, f"{K}/{p}")) == before[name][p], (name, p)
        assert not wait_live(seed_lab, "controller-1", ca=ca_pem).startswith("NOT LIVE")
        status, text = certs(capsys, seed_lab, "push", "--restore", "--yes")
        assert status == 0 and "Nothing to restore" in text
    finally:  # leave controller-1 as the other tests expect it
        unit.write_text(original)
        fleet_run(seed_lab, ["controller-1"],
                  "systemctl daemon-reload && systemctl restart kube-apiserver")


# -- etcd: restarted behind /health with a client certificate -----------------------------


def etcd_unit(root: Path, address: str) -> str:
    """A one-member KTHW etcd unit; the real etcd binary needs host-root paths."""
    e = f"{root}/etc/etcd"
    return f"""[Unit]
Description=etcd

[Service]
ExecStart=/usr/bin/etcd \\
  --name controller-2 \\
  --cert-file={e}/kubernetes.pem \\
  --key-file={e}/kubernetes-key.pem \\
  --peer-cert-file={e}/kubernetes.pem \\
  --peer-key-file={e}/kubernetes-key.pem \\
  --trusted-ca-file={e}/ca.pem \\
  --peer-trusted-ca-file={e}/ca.pem \\
  --peer-client-cert-auth \\
  --client-cert-auth \\
  --initial-advertise-peer-urls https://{address}:2380 \\
  --listen-peer-urls https://{address}:2380 \\
  --listen-client-urls https://{address}:2379 \\
  --advertise-client-urls https://{address}:2379 \\
  --initial-cluster-token etcd-cluster-0 \\
  --initial-cluster controller-2=https://{address}:2380 \\
  --initial-cluster-state new \\
  --data-dir={root}/var/lib/etcd
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def etcd_live(address: str, pki: Path, timeout: float = 20.0) -> str:
    async def poll() -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = await etcd_health(address, ca_pem=(pki / "ca.pem").read_bytes(),
                                       cert_pem=(pki / "kubernetes.pem").read_bytes(),
                                       key_pem=(pki / "kubernetes-key.pem").read_bytes(),
                                       timeout=2)
            if result.ok or loop.time() > deadline:
                return result.detail if result.ok else f"NOT LIVE: {result.detail}"
            await asyncio.sleep(0.3)
    return asyncio.run(poll())


@pytest.mark.skipif(not Path("/usr/bin/etcd").exists(), reason="needs Debian's etcd-server")
def test_push_restarts_etcd_behind_its_health_probe(seed_lab: LabRunner,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ensure_fixed(seed_lab, capsys)
    pki = seed_lab.lab.directory / "pki"
    name = "controller-2"
    root = seed_lab.lab.host_root(name)
    address = str(inventory(seed_lab).host(name).address)
    unit = on_host(seed_lab, name, "/etc/systemd/system/etcd.service")
    unit.write_text(etcd_unit(root, address))
    fleet_run(seed_lab, [name], "systemctl daemon-reload && systemctl start etcd")
    try:
        assert not etcd_live(address, pki).startswith("NOT LIVE")
        assert certs(capsys, seed_lab, "issue", "kubernetes", "--force", "--key-type",
                     "ecdsa")[0] == 0
        status, text = certs(capsys, seed_lab, "push", "-w", name, "--dry-run")
        assert "$ systemctl restart etcd" in text
        assert f"https://{address}:2379/health (client certificate kubernetes.pem)" in text
        status, text = certs(capsys, seed_lab, "push", "-w", name, "--yes",
                             "--health-timeout", "30")
        assert status == 0, text
        lines = text.splitlines()
        etcd = lines.index(next(line for line in lines
                                if line.startswith(f"{name}  restart etcd ... ")))
        api = lines.index(next(line for line in lines
                               if line.startswith(f"{name}  restart kube-apiserver ... ")))
        assert " ... ok (etcd health 200 in " in lines[etcd], lines[etcd]
        assert etcd < api, "etcd restarts before the API server that needs it"
        assert not etcd_live(address, pki).startswith("NOT LIVE")
        assert certs(capsys, seed_lab, "push", "--yes")[0] == 0  # the others catch up
    finally:
        fleet_run(seed_lab, [name], "systemctl stop etcd; true")
        unit.unlink()
        fleet_run(seed_lab, [name], "systemctl daemon-reload")
