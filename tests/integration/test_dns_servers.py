"""The same tests against real BIND and the lab's dnspython stand-in.

Each test runs twice (``bind``, ``standin``): queries with dig, updates with nsupdate -k,
and hardway's own drift check and conditional RFC 2136 updates with TSIG, including the
refusals (someone else's concurrent change, wrong key, skewed clock) that must change
nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import dns.rcode
import dns.xfr
import pytest

from tests.support.dnsd import (
    KINDS,
    ZoneServer,
    dig,
    missing_reason,
    nsupdate,
    start_zone_server,
    tool_missing_reason,
)
from tui.core.audit import AuditLog
from tui.core.dns.drift import DriftKind, check_drift
from tui.core.dns.query import DnsClient
from tui.core.dns.records import Record, RecordType
from tui.core.dns.update import (
    ChangeAction,
    UpdateStatus,
    build_update,
    changes_for,
    render_update,
    send_update,
)

ZONE = "cluster.test."
VIP = "10.50.0.1"
RECORDS = (
    Record("controller-0.cluster.test.", RecordType.A, "10.10.0.10", 300, "controller"),
    Record("controller-1.cluster.test.", RecordType.A, "10.10.0.11", 300, "controller"),
    Record("controller-2.cluster.test.", RecordType.A, "10.10.0.12", 300, "controller"),
    Record("kubernetes.cluster.test.", RecordType.A, VIP, 300, "the API name"),
)


@pytest.fixture(params=KINDS)
async def zone_server(request: pytest.FixtureRequest,
                      tmp_path: Path) -> AsyncIterator[ZoneServer]:
    """BIND or the stand-in serving ZONE with RECORDS and a fresh TSIG key."""
    reason = missing_reason(request.param) or tool_missing_reason("dig", "nsupdate")
    if reason:
        pytest.skip(reason)
    server = await start_zone_server(request.param, tmp_path / request.param, ZONE, RECORDS)
    try:
        yield server
    finally:
        await server.stop()


def client(server: ZoneServer) -> DnsClient:
    return DnsClient(server.address, server.port, timeout=3.0)


async def adig(server: ZoneServer, name: str, rdtype: str = "A") -> str:
    return await asyncio.to_thread(dig, server, name, rdtype)


async def ansupdate(server: ZoneServer, key_file: Path, commands: str):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(nsupdate, server, key_file, commands)


async def serial(server: ZoneServer) -> int:
    return int((await adig(server, ZONE, "SOA")).split()[2])


async def test_dig_answers_the_zone(zone_server: ZoneServer) -> None:
    assert await adig(zone_server, "kubernetes.cluster.test") == VIP
    assert await adig(zone_server, "controller-1.cluster.test") == "10.10.0.11"
    assert await adig(zone_server, "nothere.cluster.test") == ""
    answer = await client(zone_server).rrset("nothere.cluster.test", "A")
    assert (answer.rcode, answer.exists, answer.authoritative) == ("NXDOMAIN", False, True)
    outside = await client(zone_server).rrset("www.example.org", "A")
    assert outside.rcode == "REFUSED"


async def test_nsupdate_with_the_key_changes_a_record(zone_server: ZoneServer) -> None:
    before = await serial(zone_server)
    done = await ansupdate(zone_server, zone_server.key_file,
                           "update delete kubernetes.cluster.test A\n"
                           "update add kubernetes.cluster.test 300 A 10.50.0.2")
    assert done.returncode == 0, done.stderr
    assert await adig(zone_server, "kubernetes.cluster.test") == "10.50.0.2"
    assert await serial(zone_server) == before + 1


@pytest.mark.parametrize(("name", "secret_ok", "error"), [
    ("hardway-key", False, "BADSIG"),
    ("someone-else", True, "BADKEY"),
])
async def test_nsupdate_with_a_wrong_key_is_refused(zone_server: ZoneServer, tmp_path: Path,
                                                    name: str, secret_ok: bool,
                                                    error: str) -> None:
    before = await serial(zone_server)
    wrong = tmp_path / "wrong.key"
    zone_server.write_key(wrong, name=name,
                          secret=None if secret_ok else "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA==")
    done = await ansupdate(zone_server, wrong,
                           "update delete kubernetes.cluster.test A\n"
                           "update add kubernetes.cluster.test 300 A 10.99.0.1")
    assert done.returncode != 0
    assert error in done.stderr, done.stderr
    assert await adig(zone_server, "kubernetes.cluster.test") == VIP
    assert await serial(zone_server) == before


async def test_drift_finds_missing_extra_wrong_value_and_ttl(zone_server: ZoneServer) -> None:
    done = await ansupdate(zone_server, zone_server.key_file,
                           "update delete controller-2.cluster.test A\n"
                           "update delete controller-1.cluster.test A\n"
                           "update add controller-1.cluster.test 300 A 10.10.0.99\n"
                           "update delete controller-0.cluster.test A\n"
                           "update add controller-0.cluster.test 60 A 10.10.0.10\n"
                           "update add stray.cluster.test 300 A 10.10.0.77")
    assert done.returncode == 0, done.stderr
    report = await check_drift(client(zone_server), ZONE, RECORDS, key=zone_server.key_ref)
    assert report.extras_checked, report.extras_note
    kinds = {(d.name, d.kind) for d in report.drifts}
    assert kinds == {
        ("controller-0.cluster.test.", DriftKind.WRONG_TTL),
        ("controller-1.cluster.test.", DriftKind.WRONG_VALUE),
        ("controller-2.cluster.test.", DriftKind.MISSING),
        ("stray.cluster.test.", DriftKind.EXTRA),
    }
    wrong = next(d for d in report.drifts if d.kind is DriftKind.WRONG_VALUE)
    assert wrong.actual is not None and wrong.actual.values == ("10.10.0.99",)
    assert "10.10.0.99" in wrong.message and "10.10.0.11" in wrong.message


async def test_drift_without_transfer_rights_says_extras_were_not_checked(
        zone_server: ZoneServer) -> None:
    report = await check_drift(client(zone_server), ZONE, RECORDS, key=None)
    assert report.in_sync and not report.extras_checked
    assert report.extras_note is not None and "REFUSED" in report.extras_note


async def test_conditional_update_repairs_the_drift(zone_server: ZoneServer,
                                                    tmp_path: Path) -> None:
    await ansupdate(zone_server, zone_server.key_file,
                    "update delete kubernetes.cluster.test A\n"
                    "update add kubernetes.cluster.test 300 A 10.10.0.10\n"
                    "update delete controller-2.cluster.test A\n"
                    "update add extra.cluster.test 300 A 10.10.0.88")
    before = await serial(zone_server)
    dns_client = client(zone_server)
    report = await check_drift(dns_client, ZONE, RECORDS, key=zone_server.key_ref)
    changes = changes_for(report.drifts, delete_extras=True)
    message = build_update(ZONE, changes)
    text = render_update(message)
    assert "prereq nxrrset controller-2.cluster.test. A" in text
    assert "prereq yxrrset kubernetes.cluster.test. IN A 10.10.0.10" in text
    audit = AuditLog(tmp_path / "audit.jsonl")
    result = await send_update(dns_client, message, zone_server.key_ref, changes=changes,
                               audit=audit)
    assert result.status is UpdateStatus.APPLIED, result.explanation
    assert await adig(zone_server, "kubernetes.cluster.test") == VIP
    assert await adig(zone_server, "controller-2.cluster.test") == "10.10.0.12"
    assert await adig(zone_server, "extra.cluster.test") == ""
    assert await serial(zone_server) == before + 1
    again = await check_drift(dns_client, ZONE, RECORDS, key=zone_server.key_ref)
    assert again.in_sync and again.extras_checked
    logged = (tmp_path / "audit.jsonl").read_text()
    assert zone_server.secret not in logged
    entry = json.loads(logged.splitlines()[-1])
    assert entry["kind"] == "dns-update" and entry["result"] == "applied"


async def test_a_concurrent_change_is_refused_not_overwritten(zone_server: ZoneServer
                                                              ) -> None:
    await ansupdate(zone_server, zone_server.key_file,
                    "update delete kubernetes.cluster.test A\n"
                    "update add kubernetes.cluster.test 300 A 10.10.0.10\n"
                    "update delete controller-2.cluster.test A")
    dns_client = client(zone_server)
    report = await check_drift(dns_client, ZONE, RECORDS)
    changes = changes_for(report.drifts)
    # Someone else moves the API name meanwhile.
    done = await ansupdate(zone_server, zone_server.key_file,
                           "update delete kubernetes.cluster.test A\n"
                           "update add kubernetes.cluster.test 300 A 10.50.0.9")
    assert done.returncode == 0
    before = await serial(zone_server)
    result = await send_update(dns_client, build_update(ZONE, changes), zone_server.key_ref,
                               changes=changes)
    assert result.status is UpdateStatus.NXRRSET
    assert "someone changed the zone" in result.explanation
    assert await adig(zone_server, "kubernetes.cluster.test") == "10.50.0.9"
    assert await adig(zone_server, "controller-2.cluster.test") == ""
    assert await serial(zone_server) == before
    # And a record someone else added meanwhile is not overwritten either (YXRRSET).
    await ansupdate(zone_server, zone_server.key_file,
                    "update add controller-2.cluster.test 300 A 10.10.0.55")
    add_only = [c for c in changes if c.action is ChangeAction.ADD]
    assert [c.name for c in add_only] == ["controller-2.cluster.test."]
    result = await send_update(dns_client, build_update(ZONE, add_only), zone_server.key_ref)
    assert result.status is UpdateStatus.YXRRSET
    assert await adig(zone_server, "controller-2.cluster.test") == "10.10.0.55"


@pytest.mark.parametrize(("name", "secret", "algorithm", "status"), [
    ("hardway-key", "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA==", "hmac-sha256",
     UpdateStatus.BADSIG),
    ("unknown-key", None, "hmac-sha256", UpdateStatus.BADKEY),
    ("hardway-key", None, "hmac-sha512", UpdateStatus.BADKEY),
])
async def test_a_wrong_key_is_refused_and_changes_nothing(
        zone_server: ZoneServer, tmp_path: Path, name: str, secret: str | None,
        algorithm: str, status: UpdateStatus) -> None:
    await ansupdate(zone_server, zone_server.key_file, "update delete controller-2.cluster.test A")
    before = await serial(zone_server)
    dns_client = client(zone_server)
    report = await check_drift(dns_client, ZONE, RECORDS)
    changes = changes_for(report.drifts)
    key = zone_server.write_key(tmp_path / "wrong.key", name=name, secret=secret,
                                algorithm=algorithm)
    audit = AuditLog(tmp_path / "audit.jsonl")
    result = await send_update(dns_client, build_update(ZONE, changes), key, audit=audit)
    assert result.status is status
    assert result.rcode == "NOTAUTH" and result.tsig_error == status.value
    assert "Nothing was changed" in result.explanation
    assert await adig(zone_server, "controller-2.cluster.test") == ""
    assert await serial(zone_server) == before
    logged = (tmp_path / "audit.jsonl").read_text()
    assert zone_server.secret not in logged and (secret or "\0") not in logged
    assert zone_server.secret not in repr(result) and zone_server.secret not in repr(key)


async def test_badtime_is_explained_with_the_clock_offset(zone_server: ZoneServer) -> None:
    await ansupdate(zone_server, zone_server.key_file, "update delete controller-2.cluster.test A")
    before = await serial(zone_server)
    dns_client = client(zone_server)
    changes = changes_for((await check_drift(dns_client, ZONE, RECORDS)).drifts)
    result = await send_update(dns_client, build_update(ZONE, changes), zone_server.key_ref,
                               clock=lambda: time.time() - 1000)
    assert result.status is UpdateStatus.BADTIME
    assert result.clock_offset is not None and 995 <= result.clock_offset <= 1005
    assert f"{result.clock_offset} s ahead of this machine's" in result.explanation
    assert "NTP" in result.explanation
    assert await adig(zone_server, "controller-2.cluster.test") == ""
    assert await serial(zone_server) == before


async def test_unsigned_update_refused_and_zone_errors(zone_server: ZoneServer) -> None:
    from tui.core.dns.drift import RRset
    from tui.core.dns.update import Change

    dns_client = client(zone_server)
    add = Change(ChangeAction.ADD, "new.cluster.test.", "A",
                 RRset("new.cluster.test.", "A", 300, ("10.10.0.5",)), None)
    unsigned = await send_update(dns_client, build_update(ZONE, [add]), None)
    assert unsigned.status is UpdateStatus.REFUSED
    assert "update-policy" in unsigned.explanation
    outside = Change(ChangeAction.ADD, "new.elsewhere.test.", "A",
                     RRset("new.elsewhere.test.", "A", 300, ("10.10.0.5",)), None)
    message = build_update(ZONE, [])
    message.replace("new.elsewhere.test.", 300, "A", "10.10.0.5")
    notzone = await send_update(dns_client, message, zone_server.key_ref)
    assert notzone.status is UpdateStatus.NOTZONE
    notauth = await send_update(dns_client, build_update("elsewhere.test.", [outside]),
                                zone_server.key_ref)
    assert notauth.status is UpdateStatus.NOTAUTH and notauth.tsig_error is None
    assert await adig(zone_server, "new.cluster.test") == ""


async def test_truncated_udp_answer_falls_back_to_tcp(zone_server: ZoneServer) -> None:
    lines = "\n".join(f"update add big.cluster.test 300 A 10.20.{i // 250}.{i % 250}"
                      for i in range(60))
    done = await ansupdate(zone_server, zone_server.key_file, lines)
    assert done.returncode == 0, done.stderr
    answer = await client(zone_server).rrset("big.cluster.test", "A")
    assert answer.transport == "tcp" and len(answer.values) == 60


async def test_axfr_needs_the_key(zone_server: ZoneServer) -> None:
    dns_client = client(zone_server)
    with pytest.raises(dns.xfr.TransferError) as refused:
        await dns_client.axfr(ZONE)
    assert refused.value.rcode == dns.rcode.REFUSED
    zone = await dns_client.axfr(ZONE, zone_server.key_ref.load())
    assert zone.get_rdataset("kubernetes.cluster.test.", "A") is not None


async def test_the_secret_is_read_only_when_an_update_is_sent(zone_server: ZoneServer,
                                                              tmp_path: Path) -> None:
    from tui.core.dns.tsig import TsigKeyRef
    from tui.core.errors import UserError

    await ansupdate(zone_server, zone_server.key_file, "update delete controller-2.cluster.test A")
    missing = TsigKeyRef("hardway-key", "hmac-sha256", tmp_path / "not-yet")
    dns_client = client(zone_server)
    report = await check_drift(dns_client, ZONE, RECORDS, key=missing, extras=False)
    changes = changes_for(report.drifts)
    assert [c.name for c in changes] == ["controller-2.cluster.test."]
    with pytest.raises(UserError, match="does not exist"):
        await send_update(dns_client, build_update(ZONE, changes), missing)


async def test_lab_server_on_its_own_loopback_address(tmp_path: Path) -> None:
    from tui.lab.dns_server import lab_zone_server, write_secret_file

    secret = write_secret_file(tmp_path / "key", "hardway-key")
    server = lab_zone_server(ZONE, RECORDS, key_name="hardway-key", key_secret=secret,
                             directory=tmp_path / "dns", prefer_bind=False)
    from tests.support.dnsd import free_port

    address = "127.0.53.2"
    port = free_port(address)
    await server.start(address, port)
    try:
        answer = await asyncio.to_thread(dig, (address, port), "kubernetes.cluster.test")
        assert answer == VIP
    finally:
        await server.stop()
