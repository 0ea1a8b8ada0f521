"""DNS through the jump host: TCP over the SSH connection's direct-tcpip forward.

UDP cannot be forwarded by SSH, so with a jump host every query, transfer and update goes
over TCP through :class:`TunnelDialer`; the jump host here is a real OpenSSH sshd.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.dnsd import KINDS, ZoneServer, dig, missing_reason, start_zone_server
from tests.support.sshd import Sshd, loopback_network, running_sshd, sshd_missing_reason
from tui.core.dns.drift import DriftKind, check_drift
from tui.core.dns.query import DnsClient
from tui.core.dns.records import Record, RecordType
from tui.core.dns.update import UpdateStatus, build_update, changes_for, send_update
from tui.core.fleet.dial import TunnelDialer
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.model import Host, SSHOptions

pytestmark = pytest.mark.skipif(sshd_missing_reason() is not None,
                                reason=sshd_missing_reason() or "")

ZONE = "cluster.test."
RECORDS = (Record("controller-0.cluster.test.", RecordType.A, "10.10.0.10"),
           Record("kubernetes.cluster.test.", RecordType.A, "10.50.0.1"))


@pytest.fixture(scope="module")
def jump(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("jump"),
                      address=f"{loopback_network()}.41", log_level="DEBUG1") as server:
        yield server


@pytest.fixture(params=KINDS)
async def zone_server(request: pytest.FixtureRequest,
                      tmp_path: Path) -> AsyncIterator[ZoneServer]:
    reason = missing_reason(request.param)
    if reason:
        pytest.skip(reason)
    server = await start_zone_server(request.param, tmp_path / "dns", ZONE, RECORDS)
    try:
        yield server
    finally:
        await server.stop()


async def test_drift_and_update_through_the_jump_host(jump: Sshd, zone_server: ZoneServer,
                                                      tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(jump.known_hosts_line())
    hypervisor = Host(name="nucklehead", address=ipaddress.IPv4Address(jump.address),
                      role="worker", ssh=SSHOptions(user=jump.user,
                                                    identity=jump.client_key_path,
                                                    port=jump.port, known_hosts=known))
    policy = HostKeyPolicy("strict", record_file=tmp_path / "record", user_files=False)
    async with Fleet([], jump_hosts={"nucklehead": hypervisor}, host_keys=policy,
                     use_user_config=False) as fleet:
        dialer = TunnelDialer(fleet, "nucklehead")
        try:
            client = DnsClient(zone_server.address, zone_server.port, dialer=dialer)
            assert client.tcp_only
            answer = await client.rrset("kubernetes.cluster.test", "A")
            assert (answer.values, answer.transport) == (("10.50.0.1",), "tcp")
            moved = (Record("controller-0.cluster.test.", RecordType.A, "10.10.0.10"),
                     Record("kubernetes.cluster.test.", RecordType.A, "10.50.0.2"))
            report = await check_drift(client, ZONE, moved, key=zone_server.key_ref)
            assert report.extras_checked          # the AXFR went through the tunnel too
            assert [d.kind for d in report.drifts] == [DriftKind.WRONG_VALUE]
            changes = changes_for(report.drifts)
            result = await send_update(client, build_update(ZONE, changes),
                                       zone_server.key_ref, changes=changes)
            assert result.status is UpdateStatus.APPLIED, result.explanation
        finally:
            await dialer.close()
    assert await asyncio.to_thread(dig, zone_server, "kubernetes.cluster.test") == "10.50.0.2"
    forwarded = f"target {zone_server.address} port {zone_server.port}"
    assert forwarded in jump.log()        # the queries went through the jump host
