"""The lab zone's text: SOA, NS and the given records, as a master file."""

from __future__ import annotations

from collections.abc import Sequence

from tui.core.dns.records import Record, absolute, relative

SOA_TIMERS = "3600 900 604800 300"
"""refresh retry expire minimum (seconds)."""


def zone_text(zone: str, records: Sequence[Record], ns_address: str, *, serial: int = 1,
              ttl: int = 300) -> str:
    """A zone file for ``zone``: SOA, ``ns.ZONE`` as its name server at ``ns_address``
    (when that is an IPv4 address), then ``records`` (those inside the zone)."""
    zone = absolute(zone)
    lines = [f"$ORIGIN {zone}", f"$TTL {ttl}",
             f"@ {ttl} IN SOA ns.{zone} hostmaster.{zone} {serial} {SOA_TIMERS}",
             f"@ {ttl} IN NS ns.{zone}"]
    if ns_address.replace(".", "").isdigit():
        lines.append(f"ns {ttl} IN A {ns_address}")
    for record in records:
        name = relative(record.name, zone)
        if name.endswith("."):
            continue
        lines.append(f"{name} {record.ttl} IN {record.rdtype} {record.value}")
    return "\n".join(lines) + "\n"


__all__ = ["SOA_TIMERS", "zone_text"]
