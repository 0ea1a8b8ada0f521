"""The etcd HTTPS client against real 3-member TLS clusters (etcd 3.4 and 3.5.1)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.etcd_cluster import EtcdTestCluster, etcd_binary, loopback_network
from tui.core.etcd.client import EtcdClient, EtcdError
from tui.core.etcd.snapshot import verify_snapshot

VERSIONS = ["3.4", "3.5"]


@pytest.fixture(scope="module", params=VERSIONS)
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdTestCluster]:
    binary = etcd_binary(request.param)
    if binary is None:
        pytest.skip(f"no etcd {request.param} binary (scripts/install-test-deps.sh)")
    for attempt in range(5):
        network = loopback_network(attempt + (0 if request.param == "3.4" else 17))
        found = EtcdTestCluster(tmp_path_factory.mktemp(f"etcd{request.param}"), binary,
                                network)
        if found.ports_free():
            break
    else:
        pytest.fail("no free loopback network for the etcd test cluster")
    found.start()
    found.version = request.param  # type: ignore[attr-defined]
    try:
        yield found
    finally:
        found.stop()


async def test_health_version_members_status(cluster: EtcdTestCluster) -> None:
    client = cluster.client()
    healths = await asyncio.gather(*(client.health(cluster.address(n)) for n in cluster.names))
    assert all(h.ok for h in healths), healths
    first = cluster.address("controller-0")
    version = await client.version(first)
    assert version["etcdserver"].startswith(cluster.version)  # type: ignore[attr-defined]
    listing = await client.members(first)
    assert sorted(m.name for m in listing.members) == cluster.names
    for member in listing.members:
        address = cluster.address(member.name)
        assert member.peer_urls == (f"https://{address}:2380",)
        assert member.client_urls == (f"https://{address}:2379",)
        assert member.hex_id == format(member.id, "x") and member.id > 0
    statuses = await asyncio.gather(*(client.status(cluster.address(n)) for n in cluster.names))
    assert len({s.cluster_id for s in statuses}) == 1 == len({s.leader for s in statuses})
    assert sum(s.is_leader for s in statuses) == 1
    assert statuses[0].cluster_id == listing.cluster_id
    assert {s.member_id for s in statuses} == {m.id for m in listing.members}
    for status in statuses:
        assert status.version.startswith(cluster.version)  # type: ignore[attr-defined]
        assert status.db_size > 0 and status.raft_term >= 2 and status.raft_index > 0


async def test_client_certificate_required_and_ca_checked(cluster: EtcdTestCluster,
                                                          tmp_path: Path) -> None:
    address = cluster.address("controller-1")
    anonymous = EtcdClient.from_files(cluster.pki / "ca.pem", None, None)
    health = await anonymous.health(address)
    assert not health.ok and health.error_kind in {"client-cert", "tls"}, health
    from tests.support.etcd_cluster import issue_pki

    other = tmp_path / "other"
    other.mkdir()
    issue_pki(other, [address])
    wrong_ca = EtcdClient.from_files(other / "ca.pem", cluster.pki / "kubernetes.pem",
                                     cluster.pki / "kubernetes-key.pem")
    with pytest.raises(EtcdError) as caught:
        await wrong_ca.status(address)
    assert caught.value.kind == "tls" and "does not verify" in str(caught.value)
    foreign = EtcdClient.from_files(cluster.pki / "ca.pem", other / "kubernetes.pem",
                                    other / "kubernetes-key.pem")
    with pytest.raises(EtcdError) as refused:
        await foreign.members(address)
    assert refused.value.kind in {"client-cert", "tls"}


async def test_snapshot_streams_and_verifies_like_etcdctl(cluster: EtcdTestCluster,
                                                         tmp_path: Path) -> None:
    client = cluster.client()
    target = tmp_path / "snap.db"
    seen: list[int] = []
    result = await client.snapshot(cluster.address("controller-2"), target,
                                   progress=seen.append)
    assert result.verified and target.stat().st_size == result.size == seen[-1]
    assert (target.stat().st_mode & 0o777) == 0o600
    assert verify_snapshot(target).ok
    # etcdctl/etcdutl agree the file is a snapshot of this cluster's revision
    import subprocess

    utl = etcd_binary("3.5")
    assert utl is not None
    command = [str(utl.with_name("etcdutl")), "snapshot", "status", str(target), "-w", "json"]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert '"totalKey"' in out.stdout
    corrupted = tmp_path / "bad.db"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    assert not verify_snapshot(corrupted).ok


async def test_member_add_and_remove(cluster: EtcdTestCluster) -> None:
    client = cluster.client()
    first = cluster.address("controller-0")
    peer = f"https://{cluster.network}.99:2380"
    for _ in range(40):  # etcd adds members only once all are connected for 5 s
        try:
            added, members = await client.member_add(first, [peer])
            break
        except EtcdError as exc:
            assert "unhealthy cluster" in str(exc)
            await asyncio.sleep(0.25)
    assert added.id and added.peer_urls == (peer,) and not added.started
    assert len(members) == 4
    left = await client.member_remove(first, added.id)
    assert len(left) == 3 and added.id not in {m.id for m in left}
    with pytest.raises(EtcdError) as gone:
        await client.member_remove(first, added.id)
    assert gone.value.kind == "http" and "member not found" in str(gone.value)


async def test_unreachable_member(cluster: EtcdTestCluster) -> None:
    client = EtcdClient.from_files(cluster.pki / "ca.pem", cluster.pki / "kubernetes.pem",
                                   cluster.pki / "kubernetes-key.pem", timeout=2.0)
    health = await client.health(f"{cluster.network}.77")
    assert not health.ok and health.error_kind == "refused"


async def test_through_a_jump_host(cluster: EtcdTestCluster, tmp_path: Path) -> None:
    """The client reaches etcd through a real OpenSSH jump host (TunnelDialer) and still
    verifies each member's certificate for the member's address."""
    from tests.support.sshd import running_sshd, sshd_missing_reason
    from tui.core.fleet.dial import TunnelDialer
    from tui.core.fleet.fleet import Fleet
    from tui.core.fleet.hostkeys import HostKeyPolicy
    from tui.core.inventory.model import Host, SSHOptions

    if (reason := sshd_missing_reason()) is not None:
        pytest.skip(reason)
    with running_sshd(tmp_path / "sshd", address=f"{cluster.network}.5") as server:
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        jump = Host(name="jump", address=ipaddress.IPv4Address(server.address),
                    role="controller",
                    ssh=SSHOptions(user=server.user, identity=server.client_key_path,
                                   port=server.port, known_hosts=known))
        policy = HostKeyPolicy("strict", record_file=tmp_path / "record", user_files=False)
        async with Fleet([jump], host_keys=policy, use_user_config=False) as fleet:
            dialer = TunnelDialer(fleet, "jump")
            try:
                address = cluster.address("controller-1")
                host, port = await dialer.endpoint(address, 2379)
                assert (host, port) != (address, 2379) and host == "127.0.0.1"
                client = EtcdClient(cluster.client().context, dialer=dialer)
                status = await client.status(address)
                assert status.version.startswith(cluster.version)  # type: ignore[attr-defined]
                result = await client.snapshot(address, tmp_path / "via-jump.db")
                assert result.verified
            finally:
                await dialer.close()
