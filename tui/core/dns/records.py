"""The DNS records the inventory implies, as typed values.

Every record lives in the cluster zone (``dns.zone``) unless it is a PTR:

* an A record per controller and worker: ``controller-0.ZONE -> 10.10.0.10``;
* the API name (``api.hostname``) -> the API VIP, when the name is inside the zone;
* the hypervisor's name -> its address, when the inventory gives it as an IPv4 address;
* optionally (``ptr=True``) a PTR record per address (``10.0.10.10.in-addr.arpa.``); those
  live in a reverse zone the server must also serve (the update goes to the zone the
  server answers for the name, see ``DnsClient.find_zone``).

Names are absolute, lower-case and end with a dot, so they compare with what a server
answers.  Nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from tui.core.errors import UserError
from tui.core.inventory.model import Inventory

DEFAULT_TTL = 300
"""Seconds: the TTL of every record hardway writes (short, so a VIP move is seen soon)."""


class RecordType(StrEnum):
    """The record types hardway manages."""

    A = "A"
    PTR = "PTR"


@dataclass(frozen=True, order=True)
class Record:
    """One wanted resource record.

    Attributes:
        name: absolute owner name, lower case, with the final dot.
        rdtype: A or PTR.
        value: an IPv4 address (A) or an absolute name (PTR).
        ttl: seconds.
        reason: why the inventory implies it (not compared).
    """

    name: str
    rdtype: RecordType
    value: str
    ttl: int = DEFAULT_TTL
    reason: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, RecordType]:
        """``(name, rdtype)``: the RRset this record belongs to."""
        return self.name, self.rdtype


def absolute(name: str) -> str:
    """``name`` lower-cased with exactly one final dot."""
    return name.strip().rstrip(".").lower() + "."


def in_zone(name: str, zone: str) -> bool:
    """True when absolute ``name`` is ``zone`` or below it."""
    name, zone = absolute(name), absolute(zone)
    return name == zone or name.endswith("." + zone)


def relative(name: str, zone: str) -> str:
    """``name`` relative to ``zone`` (``@`` for the apex), for display and zone files."""
    name, zone = absolute(name), absolute(zone)
    if name == zone:
        return "@"
    if name.endswith("." + zone):
        return name[: -len(zone) - 1]
    return name


def reverse_name(address: str) -> str:
    """The ``in-addr.arpa.`` name of an IPv4 address."""
    return ipaddress.IPv4Address(address).reverse_pointer + "."


def _ipv4(text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def wanted_records(inventory: Inventory, *, ttl: int = DEFAULT_TTL,
                   ptr: bool = False) -> tuple[Record, ...]:
    """The records ``inventory`` implies, sorted by name then type.

    Args:
        inventory: needs a ``[dns]`` table (its ``zone``).
        ttl: the TTL of every record.
        ptr: also the PTR record of each address.

    Raises:
        UserError: the inventory has no ``[dns]`` table, or two names claim one record.
    """
    if inventory.dns is None:
        raise UserError(f"{inventory.path} has no [dns] table: hardway needs dns.server and "
                        'dns.zone (such as zone = "something.local") to know the records.')
    zone = absolute(inventory.dns.zone)
    pairs: list[tuple[str, str, str]] = []
    for host in inventory.hosts:
        pairs.append((f"{host.name}.{zone}", str(host.address), f"{host.role} {host.name}"))
    if inventory.api.vip is not None and inventory.api.hostname:
        api = absolute(inventory.api.hostname)
        if in_zone(api, zone):
            pairs.append((api, str(inventory.api.vip),
                          "the API name (api.hostname) resolves to the API VIP (api.vip)"))
    hypervisor = inventory.hypervisor
    if hypervisor is not None:
        address = _ipv4(hypervisor.address)
        if address is not None:
            pairs.append((f"{absolute(hypervisor.name)}{zone}" if "." not in hypervisor.name
                          else absolute(hypervisor.name), address,
                          f"hypervisor {hypervisor.name}"))
    records: dict[tuple[str, RecordType], Record] = {}
    for name, address, why in pairs:
        name = absolute(name)
        if not in_zone(name, zone):
            continue
        _put(records, Record(name, RecordType.A, address, ttl, why))
        if ptr:
            _put(records, Record(reverse_name(address), RecordType.PTR, name, ttl,
                                 f"reverse of {name} ({why})"), allow_same_name=True)
    return tuple(sorted(records.values()))


def _put(records: dict[tuple[str, RecordType], Record], record: Record, *,
         allow_same_name: bool = False) -> None:
    known = records.get(record.key)
    if known is None:
        records[record.key] = record
    elif known.value != record.value and not allow_same_name:
        raise UserError(f"The inventory implies two values for {record.name} "
                        f"{record.rdtype}: {known.value} ({known.reason}) and {record.value} "
                        f"({record.reason}); give the hosts distinct names.")


__all__ = ["DEFAULT_TTL", "Record", "RecordType", "absolute", "in_zone", "relative",
           "reverse_name", "wanted_records"]
