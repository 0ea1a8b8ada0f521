"""The DNS server row of the health grid: the zone's SOA answered, against real BIND and
the lab's stand-in (the same test twice)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.dnsd import KINDS, ZoneServer, free_port, missing_reason, start_zone_server
from tui.core.dns.records import Record, RecordType
from tui.core.fleet.dial import DirectDialer
from tui.core.health.dns_checks import ServerResolver, record_check, zone_check
from tui.core.health.model import Status

ZONE = "cluster.test"
RECORDS = (Record("controller-0.cluster.test.", RecordType.A, "10.10.0.10", 300, "controller"),)


@pytest.fixture(params=KINDS)
async def zone_server(request: pytest.FixtureRequest,
                      tmp_path: Path) -> AsyncIterator[ZoneServer]:
    """BIND or the stand-in serving ZONE."""
    reason = missing_reason(request.param)
    if reason:
        pytest.skip(reason)
    server = await start_zone_server(request.param, tmp_path / request.param, ZONE, RECORDS)
    try:
        yield server
    finally:
        await server.stop()


async def test_the_zone_is_answered_with_its_serial(zone_server: ZoneServer) -> None:
    resolver = ServerResolver(zone_server.address, zone_server.port, DirectDialer())
    try:
        outcome = await zone_check(resolver, ZONE)
        assert outcome.status is Status.OK, outcome.detail
        assert outcome.detail.startswith(f"{ZONE} serial ")
        assert outcome.facts["authoritative"] is True
        assert isinstance(outcome.facts["serial"], int)
        assert "SOA" in outcome.verbose and outcome.latency is not None
        other = await zone_check(resolver, "not-served.test")
        assert other.status is Status.FAIL and "without an SOA" in other.detail, other.detail
        record = await record_check(resolver, "controller-0.cluster.test", "10.10.0.10",
                                    what="controller-0's address")
        assert record.status is Status.OK, record.detail  # A lookups still work
    finally:
        await resolver.close()


async def test_a_silent_server_fails_with_the_reason() -> None:
    resolver = ServerResolver("127.0.0.1", free_port(), DirectDialer(), timeout=1.0)
    outcome = await zone_check(resolver, ZONE)
    assert outcome.status is Status.FAIL
    assert "127.0.0.1" in outcome.detail and ZONE in outcome.detail, outcome.detail
