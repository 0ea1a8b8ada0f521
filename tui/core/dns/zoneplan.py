"""The DNS work for one inventory: drift, the changes, and applying them in its mode.

``dns.mode = "rfc2136"`` sends one conditional, TSIG-signed update; ``"zonefile"`` edits
the zone file over SSH on the host that serves it (see :mod:`tui.core.dns.zonefile`).
The CLI (``hardway dns``) and the DNS screen are two views of :class:`DnsPlan`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from tui.core.audit import AuditLog
from tui.core.dns.drift import DriftReport, check_drift
from tui.core.dns.query import DnsClient
from tui.core.dns.records import DEFAULT_TTL, in_zone, wanted_records
from tui.core.dns.tsig import TsigKeyRef
from tui.core.dns.update import (
    Change,
    UpdateResult,
    build_update,
    changes_for,
    render_update,
    send_update,
)
from tui.core.dns.zonefile import (
    ZoneFileEdit,
    ZoneFileOptions,
    ZoneFileResult,
    apply_zone_file,
    plan_zone_file,
)
from tui.core.dns.zonetext import parse_zone
from tui.core.errors import UserError
from tui.core.fleet.dial import Dialer
from tui.core.fleet.fleet import Fleet
from tui.core.inventory.model import Dns, Host, Inventory


def dns_table(inventory: Inventory) -> Dns:
    """The inventory's ``[dns]`` table.

    Raises:
        UserError: there is none.
    """
    if inventory.dns is None:
        raise UserError(f"{inventory.path} has no [dns] table; add one with server, zone "
                        'and mode, e.g. server = "10.10.0.2", zone = "something.local", '
                        'mode = "rfc2136", tsig_name and tsig_secret_file.')
    return inventory.dns


def client_for(inventory: Inventory, dialer: Dialer | None = None, *,
               timeout: float = 3.0) -> DnsClient:
    """A client for ``dns.server:dns.port`` reached through ``dialer``."""
    table = dns_table(inventory)
    return DnsClient(table.server, table.port, dialer=dialer, timeout=timeout)


def zone_file_host(inventory: Inventory) -> Host:
    """The host that keeps the zone file: the inventory host or hypervisor whose name or
    address is ``dns.server``.

    Raises:
        UserError: none matches.
    """
    table = dns_table(inventory)
    server = table.server.rstrip(".").lower()
    for host in inventory.hosts:
        if server in (host.name.lower(), str(host.address), host.dial.lower()):
            return host
    hypervisor = inventory.hypervisor
    if hypervisor is not None and server in (hypervisor.name.lower(),
                                             hypervisor.address.lower()):
        try:
            address = ipaddress.IPv4Address(hypervisor.address)
            dial = ""
        except ValueError:
            address, dial = ipaddress.IPv4Address("0.0.0.0"), hypervisor.address
        return Host(name=hypervisor.name, address=address, role="worker", ssh=hypervisor.ssh,
                    ssh_host=dial)
    raise UserError(f"dns.mode is \"zonefile\" but no host of {inventory.path} is the DNS "
                    f"server {table.server!r} (by name or address), so hardway does not know "
                    "where to edit the zone file; name the server by its host's name or "
                    "address, or pass --ssh-host.")


@dataclass(frozen=True)
class ZoneUpdate:
    """One UPDATE message: the changes of one zone.

    Attributes:
        zone: absolute zone name (the cluster zone, or a reverse zone for PTRs).
        changes: its RRset changes.
        text: the message as nsupdate would show it (unsigned).
    """

    zone: str
    changes: tuple[Change, ...]
    text: str


@dataclass(frozen=True)
class DnsPlan:
    """What ``hardway dns apply`` would do.

    Attributes:
        mode: rfc2136 or zonefile.
        zone: absolute zone name.
        report: the drift it repairs.
        changes: the RRset changes (records of other zones, e.g. PTRs, are left out).
        updates: one UPDATE per zone (rfc2136 mode; PTRs go to their reverse zone).
        edit: the zone-file edit (zonefile mode).
        key: the TSIG key name that will sign (never its secret).
        skipped: changes that cannot be made, each with the reason.
    """

    mode: Literal["rfc2136", "zonefile"]
    zone: str
    report: DriftReport
    changes: tuple[Change, ...]
    updates: tuple[ZoneUpdate, ...] = ()
    edit: ZoneFileEdit | None = None
    key: str | None = None
    skipped: tuple[str, ...] = ()

    @property
    def update_text(self) -> str | None:
        """Every UPDATE message, as nsupdate would show them (None in zonefile mode)."""
        return "\n\n".join(u.text for u in self.updates) if self.updates else None

    @property
    def empty(self) -> bool:
        """Nothing to change."""
        return not self.changes


async def check_zone(inventory: Inventory, client: DnsClient, *, ptr: bool = False,
                     extras: bool = True, ttl: int = DEFAULT_TTL, fleet: Fleet | None = None,
                     host: str | None = None) -> DriftReport:
    """The drift of the inventory's zone.

    Extras come from the zone file in zonefile mode (read over SSH when ``fleet`` is
    given), else from a zone transfer (the key is read only if the transfer needs it).
    """
    table = dns_table(inventory)
    records = wanted_records(inventory, ttl=ttl, ptr=ptr)
    known = None
    if extras and table.mode == "zonefile" and fleet is not None and table.zone_file:
        name = host or zone_file_host(inventory).name
        try:
            text = (await fleet.get(name, table.zone_file)).decode("utf-8", errors="replace")
            known = parse_zone(text, table.zone)
        except UserError:
            known = None    # unreadable over SSH: fall back to a zone transfer
    return await check_drift(client, table.zone, records,
                             key=TsigKeyRef.from_inventory(table), extras=extras,
                             known_zone=known)


async def plan_zone(inventory: Inventory, client: DnsClient, *, fleet: Fleet | None = None,
                    host: str | None = None, ptr: bool = False, extras: bool = True,
                    delete_extras: bool = False, ttl: int = DEFAULT_TTL) -> DnsPlan:
    """Check the drift and compute the update or the zone-file edit.

    Args:
        fleet: needed in zonefile mode (it must contain ``host``).
        host: the zone file's host in ``fleet`` (default: :func:`zone_file_host`).
    """
    table = dns_table(inventory)
    report = await check_zone(inventory, client, ptr=ptr, extras=extras, ttl=ttl,
                              fleet=fleet, host=host)
    changes = changes_for(report.drifts, delete_extras=delete_extras)
    key = table.tsig_name
    zone = report.zone
    if table.mode == "zonefile":
        inside = tuple(c for c in changes if in_zone(c.name, zone))
        skipped = tuple(f"{c.name} {c.rdtype}: outside {zone}, which is the only zone file "
                        "hardway edits" for c in changes if not in_zone(c.name, zone))
        if not inside:
            return DnsPlan("zonefile", zone, report, inside, key=key, skipped=skipped)
        if fleet is None or table.zone_file is None:
            raise UserError("zone-file mode needs SSH to the DNS server and dns.zone_file.")
        name = host or zone_file_host(inventory).name
        edit = await plan_zone_file(fleet, name, table.zone_file, table.zone, inside)
        return DnsPlan("zonefile", zone, report, inside, edit=edit, key=key, skipped=skipped)
    by_zone: dict[str, list[Change]] = {}
    notes: list[str] = []
    for change in changes:
        target = zone if in_zone(change.name, zone) else await client.find_zone(change.name)
        if target is None:
            notes.append(f"{change.name} {change.rdtype}: {client.server} serves no zone "
                         "for this name (add the reverse zone to the server, or drop --ptr)")
            continue
        by_zone.setdefault(target, []).append(change)
    updates = tuple(ZoneUpdate(z, tuple(cs), render_update(build_update(z, cs)))
                    for z, cs in by_zone.items())
    kept = tuple(c for u in updates for c in u.changes)
    return DnsPlan("rfc2136", zone, report, kept, updates=updates, key=key,
                   skipped=tuple(notes))


async def apply_plan(inventory: Inventory, plan: DnsPlan, client: DnsClient, *,
                     fleet: Fleet | None = None, audit: AuditLog | None = None,
                     options: ZoneFileOptions | None = None
                     ) -> tuple[UpdateResult, ...] | ZoneFileResult:
    """Send the updates (rfc2136; one per zone, stopping at the first refusal) or write,
    check, reload and verify the zone file."""
    table = dns_table(inventory)
    if plan.mode == "zonefile":
        if plan.edit is None or fleet is None:
            raise UserError("Nothing to write: the plan has no zone-file edit.")
        return await apply_zone_file(fleet, plan.edit, client, options=options)
    key = TsigKeyRef.from_inventory(table)
    results: list[UpdateResult] = []
    for update in plan.updates:
        result = await send_update(client, build_update(update.zone, update.changes), key,
                                   changes=update.changes, audit=audit)
        results.append(result)
        if not result.ok:
            break
    return tuple(results)


__all__ = ["DnsPlan", "ZoneUpdate", "apply_plan", "check_zone", "client_for", "dns_table",
           "plan_zone", "zone_file_host"]
