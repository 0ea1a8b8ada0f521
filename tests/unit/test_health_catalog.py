"""The probe set an inventory gets, and that every network probe goes through the Dialer.

The inventory's addresses are loopback addresses where nothing listens; the dialer
records what it is asked for and sends kube-scheduler's and kube-controller-manager's
ports to real TLS servers on 127.0.0.1 that present a self-signed certificate (as the
real ones do with no --tls-cert-file), everything else to a closed port.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui.core.health.catalog import Credentials, ProbeOptions, build_probes
from tui.core.health.client import HttpClient
from tui.core.health.model import Kind, Status, run_probe
from tui.core.inventory.load import load_inventory
from tui.core.pki.ca import CertificateAuthority
from tui.lab.standins.kube_apiserver import generate_self_signed

INVENTORY = """\
[cluster]
name = "dial"
domain = "dial.test"
[networks]
nodes = "127.3.3.0/24"
control_plane_services = "127.3.4.0/24"
pods = "10.200.0.0/16"
services = "10.32.0.0/24"
[api]
vip = "127.3.4.1"
hostname = "kubernetes.dial.test"
[dns]
server = "127.3.3.2"
zone = "dial.test"
mode = "zonefile"
zone_file = "/etc/bind/db.dial.test"
[hypervisor]
name = "hv"
address = "127.3.3.1"
[[controllers]]
name = "controller-0"
address = "127.3.3.10"
[[controllers]]
name = "controller-1"
address = "127.3.3.11"
[[workers]]
name = "worker-0"
address = "127.3.3.20"
"""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RecordingDialer:
    def __init__(self, routes: dict[int, int], default: int) -> None:
        self.routes, self.default = routes, default
        self.asked: set[tuple[str, int]] = set()

    async def endpoint(self, address: str, port: int) -> tuple[str, int]:
        self.asked.add((address, port))
        return "127.0.0.1", self.routes.get(port, self.default)

    async def close(self) -> None:
        pass


@pytest.fixture
async def self_signed_ports(tmp_path: Path) -> AsyncIterator[dict[int, int]]:
    cert, key = generate_self_signed("127.3.3.10", [], ["localhost"], key_type="ecdsa")
    (tmp_path / "s.pem").write_bytes(cert)
    (tmp_path / "s-key.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "s.pem", tmp_path / "s-key.pem")

    async def healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()

    servers = [await asyncio.start_server(healthz, "127.0.0.1", 0, ssl=context)
               for _ in range(2)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    yield {10259: ports[0], 10257: ports[1]}
    for server in servers:
        server.close()


def inventory(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "inventory.toml"
    path.write_text(INVENTORY)
    return load_inventory(path)


async def test_every_network_probe_dials_through_the_dialer(
        tmp_path: Path, self_signed_ports: dict[int, int]) -> None:
    inv = inventory(tmp_path)
    CertificateAuthority.create(tmp_path / "pki", key_type="ecdsa")
    dialer = RecordingDialer(self_signed_ports, closed_port())
    client = HttpClient(dialer)
    probes = build_probes(inv, client, Credentials.from_pki(tmp_path / "pki"),
                          ProbeOptions(hosts=("controller-0", "controller-1", "worker-0"),
                                       timeout=1.0, vip_repeats=1))
    keys = [p.key for p in probes]
    assert keys[:10] == [f"controller-0/{k}" for k in (
        "etcd", "etcd-status", "livez", "readyz", "nginx", "scheduler", "controller-manager",
        "cert-6443", "cert-2379", "dns")]
    assert "worker-0/dns" in keys and "worker-0/etcd" not in keys
    assert keys[-4:] == ["vip/vip", "vip/vip-name", "vip/dns-api", "dns/dns"]
    assert not any(p.kind is Kind.SSH for p in probes)  # no fleet given: no SSH probes
    outcomes = {p.key: await run_probe(p) for p in probes}
    expected = {(f"127.3.3.1{i}", port) for i in range(2)
                for port in (2379, 6443, 80, 10259, 10257)}
    expected |= {("127.3.4.1", 6443), ("127.3.3.2", 53)}
    assert expected <= dialer.asked
    assert {a for a, _ in dialer.asked} <= {"127.3.3.10", "127.3.3.11", "127.3.4.1",
                                            "127.3.3.2"}
    for key in ("controller-0/scheduler", "controller-1/controller-manager"):
        assert outcomes[key].status is Status.OK, outcomes[key].detail  # self-signed is fine
    etcd = outcomes["controller-0/etcd"]
    assert etcd.status is Status.FAIL and "127.3.3.10:2379" in etcd.detail
    assert outcomes["vip/vip-name"].status is Status.FAIL
    await client.close()


async def test_kinds_and_hosts_select_probes(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    client = HttpClient()
    probes = build_probes(inv, client, Credentials(),
                          ProbeOptions(kinds=frozenset({Kind.READYZ, Kind.VIP_ADDRESS}),
                                       hosts=("controller-1",)))
    assert [p.key for p in probes] == ["controller-1/readyz", "vip/vip"]
    assert probes[1].target == "https://127.3.4.1:6443 x12"


async def test_vip_rules_probe_reads_the_backends_that_are_up_when_it_runs(
        tmp_path: Path) -> None:
    from tui.core.health.catalog import Seams

    async def backends() -> tuple[str, ...]:
        return ("127.3.3.10",)

    seams = Seams(vip_backends=backends)
    probes = build_probes(inventory(tmp_path), HttpClient(), Credentials(),
                          ProbeOptions(kinds=frozenset({Kind.VIP_RULES})), seams)
    assert [p.key for p in probes] == ["hypervisor/vip-rules"]
    seams.up_backends = lambda: ["127.3.3.10"]  # wired after the poller exists
    assert (await run_probe(probes[0])).status is Status.OK
    seams.up_backends = lambda: []
    outcome = await run_probe(probes[0])
    assert outcome.status is Status.FAIL and "still sends to 127.3.3.10" in outcome.detail
