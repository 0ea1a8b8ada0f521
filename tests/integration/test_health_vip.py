"""Through the VIP (a real HAProxy round robin), DNS (a real BIND) and KTHW's nginx proxy.

HAProxy balances the API VIP over the three API-server stand-ins without health checks,
as an ipfw ``prob`` rule set does; BIND serves the cluster zone, where controller-2's
record is wrong on purpose.  With every API server up every request through the VIP
passes, by address and by the API name; with one stopped, a third of them fail and the
VIP cell warns with that fraction.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import pytest

from tests.support.health_cluster import ProbeCluster, etcd_binary
from tui.core.health.catalog import Credentials, ProbeOptions, build_probes
from tui.core.health.client import HttpClient
from tui.core.health.model import Kind, Status
from tui.core.health.poller import Poller
from tui.core.health.report import Verdict

KINDS = frozenset({Kind.VIP_ADDRESS, Kind.VIP_NAME, Kind.DNS_API, Kind.DNS_HOST,
                   Kind.READYZ, Kind.NGINX})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeCluster]:
    missing = [tool for tool in ("haproxy", "named", "nginx") if shutil.which(tool) is None]
    if etcd_binary() is None or missing:
        pytest.skip(f"missing {missing or ['etcd']}: run scripts/install-test-deps.sh")
    running = ProbeCluster(tmp_path_factory.mktemp("vip"), vip=True,
                           dns_overrides={2: "192.0.2.12"})
    try:
        running.start()
        yield running
    finally:
        running.stop()


def outcome(report, key):  # type: ignore[no-untyped-def]
    found = next(c for c in report.cells if c.key == key).outcome
    assert found is not None, key
    return found


async def test_vip_and_dns_with_every_api_server_up(cluster: ProbeCluster) -> None:
    client = HttpClient()
    probes = build_probes(cluster.inventory, client, Credentials.from_pki(cluster.pki),
                          ProbeOptions(kinds=KINDS, timeout=3.0))
    poller = Poller(probes, interval=0.1)
    report = await poller.run_round(wait_all=True)
    by_address = outcome(report, "vip/vip")
    assert by_address.status is Status.OK, by_address.detail
    assert by_address.facts["requests"] == 18 and by_address.facts["failed"] == 0
    assert by_address.facts["versions"] == ["v1.18.6"]
    by_name = outcome(report, "vip/vip-name")
    assert by_name.status is Status.OK, by_name.detail
    assert "https://kubernetes.health.test:6443" in by_name.verbose
    api_name = outcome(report, "vip/dns-api")
    assert api_name.status is Status.OK
    assert api_name.detail.startswith(f"kubernetes.health.test -> {cluster.vip}")
    assert outcome(report, "controller-0/dns").status is Status.OK
    drift = outcome(report, "controller-2/dns")
    assert drift.status is Status.FAIL
    assert drift.detail == (f"controller-2.health.test -> 192.0.2.12, not {cluster.address(2)} "
                            "(controller-2's address)")
    for i in range(3):
        nginx = outcome(report, f"controller-{i}/nginx")
        assert nginx.status is Status.OK, nginx.detail
        assert "(Host: kubernetes.default.svc.cluster.local)" in nginx.verbose
    assert report.verdict is Verdict.DEGRADED
    assert "vip 100% ok" in report.summary_line
    await client.close()


async def test_one_api_server_down_fails_a_third_through_the_vip(cluster: ProbeCluster) -> None:
    client = HttpClient()
    probes = build_probes(cluster.inventory, client, Credentials.from_pki(cluster.pki),
                          ProbeOptions(kinds=frozenset({Kind.VIP_ADDRESS, Kind.READYZ,
                                                        Kind.NGINX}),
                                       timeout=3.0, vip_repeats=9))
    poller = Poller(probes, interval=0.1)
    await asyncio.to_thread(cluster.stop_apiserver, 1)
    try:
        report = await poller.run_round(wait_all=True)
    finally:
        await asyncio.to_thread(cluster.start_apiserver, 1)
        await asyncio.to_thread(cluster.wait_port, cluster.address(1), 6443)
    vip = outcome(report, "vip/vip")
    assert vip.status is Status.WARN
    assert vip.facts["requests"] == 18 and vip.facts["failed"] == 6  # HAProxy's strict turns
    assert vip.detail.startswith("6/18 failed (33%): ")
    assert "FAIL" in vip.verbose and "ok  " in vip.verbose
    assert "vip 67% ok" in report.summary_line
    assert outcome(report, "controller-1/readyz").status is Status.FAIL
    nginx = outcome(report, "controller-1/nginx")
    assert nginx.status is Status.FAIL and nginx.detail.startswith("nginx 502: ")
    assert report.verdict is Verdict.DEGRADED
    await client.close()
