"""The health probes on the embedded lab: SSH through the Fleet, API servers, certificates.

The lab runs real asyncssh servers and a kube-apiserver stand-in per controller (without
etcd); its PKI is the cluster's.  A stopped host turns its SSH cell DOWN with the reason
while the others stay UP; ``hardway health`` on the lab's inventory exits 0 when the
probes it runs are all healthy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from tests.support import loopback
from tui.cli import main
from tui.core.fleet.fleet import Fleet
from tui.core.health.catalog import Credentials, ProbeOptions, Seams, build_probes
from tui.core.health.client import HttpClient
from tui.core.health.model import Kind, Status
from tui.core.health.poller import Poller
from tui.core.health.report import Verdict
from tui.core.health.states import State
from tui.core.inventory.model import Inventory
from tui.lab.lab import LabRunner

KINDS = frozenset({Kind.SSH, Kind.LIVEZ, Kind.READYZ, Kind.CERT_API})


async def lab_call(runner: LabRunner, fn: Callable[..., Awaitable[None]], *args: str) -> None:
    await asyncio.wrap_future(runner.submit(fn, *args))


async def test_ssh_and_api_probes_on_the_lab(inventory: Inventory, fleet: Fleet,
                                             lab_runner: LabRunner) -> None:
    client = HttpClient()
    probes = build_probes(inventory, client, Credentials.from_pki(lab_runner.lab.pki_directory),
                          ProbeOptions(kinds=KINDS, timeout=5.0), Seams(fleet=fleet))
    assert [p.key for p in probes[:4]] == ["controller-0/ssh", "controller-0/livez",
                                           "controller-0/readyz", "controller-0/cert-6443"]
    poller = Poller(probes, interval=0.1, rise=1, fall=1)
    report = await poller.run_round(wait_all=True)
    assert report.verdict is Verdict.HEALTHY, report.reasons
    ssh = next(c for c in report.cells if c.key == "controller-1/ssh").outcome
    assert ssh is not None and ssh.detail.startswith("ssh round trip ")
    assert ssh.latency is not None and ssh.latency > 0
    await lab_call(lab_runner, lab_runner.lab.stop_host, "controller-2")
    try:
        report = await poller.run_round(wait_all=True)
    finally:
        await lab_call(lab_runner, lab_runner.lab.start_host, "controller-2")
    down = next(c for c in report.cells if c.key == "controller-2/ssh")
    assert down.state is State.DOWN and down.outcome is not None
    assert down.outcome.status is Status.FAIL and "controller-2" in down.outcome.detail
    assert next(c for c in report.cells if c.key == "controller-0/ssh").state is State.UP
    assert report.verdict is Verdict.DEGRADED
    for _ in range(50):  # the host is back: the next rounds reconnect
        report = await poller.run_round(wait_all=True)
        if all(c.state is State.UP for c in report.cells):
            break
        await asyncio.sleep(0.2)
    assert report.verdict is Verdict.HEALTHY, report.reasons
    await client.close()


def test_hardway_health_on_the_lab(lab_runner: LabRunner,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = str(lab_runner.lab.inventory_path)
    status = main(["health", "-i", path, "-p", "ssh,livez,readyz,cert-6443", "--json"])
    out = capsys.readouterr().out
    assert status == 0, out
    data = json.loads(out)
    assert data["verdict"] == "healthy"
    assert sorted({p["row"] for p in data["probes"]}) == ["controller-0", "controller-1",
                                                          "controller-2"]
    status = main(["health", "-i", path, "-w", "controller-0", "-p", "ssh,readyz",
                   "--verbose"])
    out = capsys.readouterr().out
    assert status == 0 and "HEALTHY" in out and "keepalive@openssh.com answered" in out
    assert "[+]ping ok" in out and "controller-1" not in out


@pytest.fixture(scope="module")
def seed_lab(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A lab in the seed's broken state: kube-apiserver serves a self-signed certificate."""
    from tui.lab.server import LabAddressInUse

    for attempt in range(5):
        network = loopback.network(20, 30, attempt)
        runner = LabRunner(tmp_path_factory.mktemp("seed"), controllers=3, network=network,
                           scenario="seed-cert-bug")
        try:
            runner.start()
        except LabAddressInUse:
            continue
        try:
            yield runner
        finally:
            runner.stop()
        return
    pytest.fail("no free loopback network for the seed-cert-bug lab")


def test_seed_cert_bug_turns_the_certificate_cells_red_with_the_reason(
        seed_lab: LabRunner, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(seed_lab.lab.inventory_path)
    status = main(["health", "-i", path, "-p", "ssh,readyz,cert-6443", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 2 and data["verdict"] == "down"  # no API server verifies: none ready
    cells = {p["key"]: p for p in data["probes"]}
    for i in range(3):
        cert = cells[f"controller-{i}/cert-6443"]
        assert cert["state"] == "down" and cert["status"] == "fail"
        assert cert["detail"].startswith("not issued by the cluster CA: issuer "
                                         f"'{seed_lab.lab.specs()[i].address}-ca@")
        assert "lost --tls-cert-file" in cert["detail"]
        readyz = cells[f"controller-{i}/readyz"]
        assert "does not verify against the CA" in readyz["detail"]
        assert cells[f"controller-{i}/ssh"]["state"] == "up"
