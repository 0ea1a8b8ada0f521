"""The health probes and poller against a real control plane on loopback.

Three controllers, each with a real etcd (TLS, client certificates required) and the
lab's kube-apiserver stand-in dialling etcd with KTHW's flags; the PKI from tui.core.pki.
Controller-1's API server serves a certificate without the SAN 127.0.0.1 (the seed's
bug).  Scenarios: healthy; etcd stopped on one member (its cells DOWN after ``fall``
rounds, the API servers stay ready), then back (UP after ``rise`` passing rounds);
quorum lost (readyz shows [-]etcd, the verdict is down); the CLI's table, JSON and exit
status.  Rounds are counted, never timed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.health_cluster import ProbeCluster, etcd_binary
from tui.core.health.catalog import Credentials, ProbeOptions, build_probes
from tui.core.health.client import HttpClient
from tui.core.health.model import Kind, Status
from tui.core.health.poller import Poller
from tui.core.health.report import RoundReport, Verdict
from tui.core.health.states import State
from tui.core.pki.profiles import Profile

ROOT = Path(__file__).resolve().parents[2]
KINDS = frozenset({Kind.ETCD_HEALTH, Kind.ETCD_STATUS, Kind.LIVEZ, Kind.READYZ})


def without_loopback(profile: Profile) -> Profile:
    return dataclasses.replace(
        profile, ip_addresses=tuple(ip for ip in profile.ip_addresses if ip != "127.0.0.1"),
        sans_reasons=tuple(s for s in profile.sans_reasons if s.value != "127.0.0.1"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeCluster]:
    if etcd_binary() is None:
        pytest.skip("no etcd binary: run scripts/install-test-deps.sh")
    running = ProbeCluster(tmp_path_factory.mktemp("health"),
                           serving_overrides={1: without_loopback})
    try:
        running.start()
        yield running
    finally:
        running.stop()


def poller_for(cluster: ProbeCluster, client: HttpClient, kinds: frozenset[Kind] = KINDS,
               **kwargs: object) -> Poller:
    probes = build_probes(cluster.inventory, client, Credentials.from_pki(cluster.pki),
                          ProbeOptions(kinds=kinds, timeout=3.0))
    return Poller(probes, interval=0.1, **kwargs)  # type: ignore[arg-type]


def cell(report: RoundReport, key: str):  # type: ignore[no-untyped-def]
    return next(c for c in report.cells if c.key == key)


async def settled(poller: Poller, rounds: int = 40) -> RoundReport:
    """Rounds until every cell is UP and ok (etcd elects a leader after it starts)."""
    for _ in range(rounds):
        report = await poller.run_round(wait_all=True)
        if all(c.clean for c in report.cells):
            return report
        await asyncio.sleep(0.2)
    raise AssertionError(f"the cluster did not settle: {report.reasons}")


async def test_a_healthy_cluster(cluster: ProbeCluster) -> None:
    client = HttpClient()
    poller = poller_for(cluster, client)
    report = await settled(poller)
    assert report.verdict is Verdict.HEALTHY and report.summary_line == "etcd 3/3 · apiserver 3/3"
    statuses = [cell(report, f"controller-{i}/etcd-status").outcome for i in range(3)]
    leaders = {o.facts["leader"] for o in statuses if o is not None}
    assert len(leaders) == 1 and leaders <= {"controller-0", "controller-1", "controller-2"}
    assert sum(1 for o in statuses if o is not None and o.facts["is_leader"]) == 1
    for outcome in statuses:
        assert outcome is not None
        assert outcome.facts["members"] == ["controller-0", "controller-1", "controller-2"]
        assert int(outcome.facts["raft_term"]) >= 1 and int(outcome.facts["db_size"]) > 0
        assert "members:" in outcome.verbose
    readyz = cell(report, "controller-0/readyz").outcome
    assert readyz is not None and "[+]etcd ok" in readyz.verbose
    assert readyz.verbose.rstrip().endswith("healthz check passed")
    assert len(readyz.facts["checks"]) > 10  # every [+] line kept
    opened = client.opened
    for _ in range(3):
        await poller.run_round(wait_all=True)
    assert client.opened == opened  # kept alive: no handshake per probe per round
    await client.close()


async def test_a_certificate_missing_a_san_fails_with_the_reason(cluster: ProbeCluster) -> None:
    client = HttpClient()
    poller = poller_for(cluster, client, frozenset({Kind.CERT_API, Kind.CERT_ETCD,
                                                    Kind.LIVEZ}))
    report = await poller.run_round(wait_all=True)
    bad = cell(report, "controller-1/cert-6443")
    assert bad.state is State.DOWN and bad.outcome is not None
    assert bad.outcome.detail.startswith("missing SAN 127.0.0.1 (loopback: controller-manager")
    assert "missing IP  127.0.0.1" in bad.outcome.verbose
    assert bad.outcome.facts["missing_sans"] == ["127.0.0.1"]
    for key in ("controller-0/cert-6443", "controller-2/cert-6443", "controller-1/cert-2379",
                "controller-1/livez"):
        good = cell(report, key)
        assert good.state is State.UP and good.outcome is not None, key
        assert good.outcome.status is Status.OK, good.outcome.detail
    assert report.verdict is Verdict.DEGRADED
    assert any("controller-1 cert-6443 DOWN: missing SAN 127.0.0.1" in r for r in report.reasons)
    await client.close()


async def test_etcd_down_on_one_member_then_back(cluster: ProbeCluster) -> None:
    client = HttpClient()
    poller = poller_for(cluster, client, rise=2, fall=3)
    await settled(poller)
    await asyncio.to_thread(cluster.stop_etcd, 0)
    seen = []
    for _ in range(3):
        report = await poller.run_round(wait_all=True)
        etcd = cell(report, "controller-0/etcd")
        seen.append((etcd.state, etcd.counter))
        assert etcd.outcome is not None and etcd.outcome.status is Status.FAIL
        for i in range(3):  # the API servers stay ready on the other members
            ready = cell(report, f"controller-{i}/readyz")
            assert ready.state is State.UP and ready.outcome is not None
            assert ready.outcome.status is Status.OK, ready.outcome.detail
    assert seen == [(State.UP, "1/3 DOWN"), (State.UP, "2/3 DOWN"), (State.DOWN, "")]
    assert cell(report, "controller-0/etcd-status").state is State.DOWN
    assert report.verdict is Verdict.DEGRADED  # two of three members: still a quorum
    transition = poller.cells["controller-0/etcd"].machine.transitions[-1]
    assert transition.after is State.DOWN
    assert transition.reason == (f"etcd: nothing listens on {cluster.address(0)}:2379 "
                                 "(connection refused)")
    opened = client.opened
    await asyncio.to_thread(cluster.start_etcd, 0)
    passes = []
    for _ in range(50):
        report = await poller.run_round(wait_all=True)
        etcd = cell(report, "controller-0/etcd")
        assert etcd.outcome is not None
        if etcd.outcome.status is Status.OK:
            passes.append((etcd.state, etcd.counter))
            if len(passes) == 2:
                break
        else:
            assert not passes, "etcd failed again after it passed"
        await asyncio.sleep(0.1)
    assert passes == [(State.DOWN, "1/2 UP"), (State.UP, "")]
    assert client.opened > opened  # the dropped connection was opened again
    await client.close()


async def test_quorum_lost_is_down_and_readyz_names_etcd(cluster: ProbeCluster) -> None:
    client = HttpClient()
    poller = poller_for(cluster, client, rise=1, fall=1)
    await settled(poller)
    await asyncio.to_thread(cluster.stop_etcd, 1)
    await asyncio.to_thread(cluster.stop_etcd, 2)
    try:
        for _ in range(60):
            report = await poller.run_round(wait_all=True)
            ready = cell(report, "controller-0/readyz")
            if ready.state is State.DOWN:
                break
            await asyncio.sleep(0.2)
        assert ready.outcome is not None and "[-]etcd failed: reason withheld" in \
            ready.outcome.detail
        assert report.verdict is Verdict.DOWN
        assert any(r.startswith("etcd has no quorum") for r in report.reasons)
    finally:
        await asyncio.to_thread(cluster.start_etcd, 1)
        await asyncio.to_thread(cluster.start_etcd, 2)
    await settled(poller, rounds=80)
    await client.close()


def hardway(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tui.cli", "health", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_the_cli_exit_status_table_and_json(cluster: ProbeCluster) -> None:
    inventory = str(cluster.inventory_path)
    healthy = hardway("-i", inventory, "--json", "-p", "etcd,etcd-status,livez,readyz")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    data = json.loads(healthy.stdout)
    assert data["verdict"] == "healthy" and len(data["probes"]) == 12
    assert {p["state"] for p in data["probes"]} == {"up"}
    certs = hardway("-i", inventory, "-p", "cert-6443", "-w", "controller-[0-1]")
    assert certs.returncode == 1, certs.stdout + certs.stderr
    assert "DEGRADED" in certs.stdout and "missing SAN 127.0.0.1" in certs.stdout
    assert "controller-2" not in certs.stdout
    watch = hardway("-i", inventory, "--watch", "--rounds", "2", "--interval", "0.1",
                    "--json", "-p", "livez")
    lines = watch.stdout.splitlines()
    assert watch.returncode == 0 and [json.loads(line)["round"] for line in lines] == [1, 2]
    assert json.loads(lines[1])["transitions"] == []
    wrong = hardway("-i", inventory, "--skip", "nonsense")
    assert wrong.returncode == 2 and "'nonsense' is not a probe" in wrong.stderr
