"""Drift: what the zone's server answers against what the inventory implies.

For every wanted RRset the server is asked directly (what clients see).  Records the
inventory does not imply ("extra") can only be found by reading the whole zone, so a zone
transfer (AXFR) is tried -- unsigned first, then signed with the TSIG key when the server
refuses and a key is configured; when it is refused anyway the report says that extras
were not checked, and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone

from tui.core.dns.query import DnsClient, DnsUnreachable
from tui.core.dns.records import Record, RecordType, absolute, in_zone, relative
from tui.core.dns.tsig import TsigKeyRef
from tui.core.errors import UserError

MANAGED_TYPES = (RecordType.A, RecordType.PTR)


class DriftKind(StrEnum):
    """How a served RRset differs from the wanted one."""

    MISSING = "missing"
    EXTRA = "extra"
    WRONG_VALUE = "wrong value"
    WRONG_TTL = "wrong TTL"


@dataclass(frozen=True, order=True)
class RRset:
    """One name and type with its values (sorted) and TTL."""

    name: str
    rdtype: str
    ttl: int
    values: tuple[str, ...]

    def text(self, zone: str | None = None) -> str:
        """``NAME TTL TYPE v1, v2`` (NAME relative to ``zone`` when given)."""
        name = relative(self.name, zone) if zone else self.name
        return f"{name} {self.ttl} {self.rdtype} {', '.join(self.values)}"


@dataclass(frozen=True)
class Drift:
    """One difference between the wanted and the served zone.

    Attributes:
        kind: missing, extra, wrong value or wrong TTL.
        name: absolute owner name.
        rdtype: record type.
        wanted: the RRset the inventory implies (None for an extra one).
        actual: what the server has (None when missing).
        reason: why the inventory wants it (or, for extras, that it does not).
    """

    kind: DriftKind
    name: str
    rdtype: str
    wanted: RRset | None
    actual: RRset | None
    reason: str = ""

    @property
    def message(self) -> str:
        """One sentence for people."""
        if self.kind is DriftKind.MISSING and self.wanted is not None:
            return (f"{self.name} {self.rdtype} is missing: the inventory wants "
                    f"{', '.join(self.wanted.values)} ({self.reason}).")
        if self.kind is DriftKind.EXTRA and self.actual is not None:
            return (f"{self.name} {self.rdtype} {', '.join(self.actual.values)} is served "
                    "but the inventory implies no such record.")
        if self.kind is DriftKind.WRONG_VALUE and self.wanted and self.actual:
            return (f"{self.name} {self.rdtype} answers {', '.join(self.actual.values)}; the "
                    f"inventory wants {', '.join(self.wanted.values)} ({self.reason}).")
        if self.wanted and self.actual:
            return (f"{self.name} {self.rdtype} has TTL {self.actual.ttl}; hardway writes "
                    f"{self.wanted.ttl}.")
        return f"{self.name} {self.rdtype}: {self.kind}."


@dataclass(frozen=True)
class DriftReport:
    """The drift of one zone on one server.

    Attributes:
        zone: absolute zone name.
        server: ``address:port``.
        wanted: the records the inventory implies.
        served: what the server answered for the wanted names (key: name, type).
        drifts: the differences, sorted by name.
        extras_checked: a zone transfer listed every record, so extras were looked for.
        extras_note: why extras were not checked (None when they were).
        errors: names the server answered with an error (REFUSED, SERVFAIL...): name -> rcode.
    """

    zone: str
    server: str
    wanted: tuple[Record, ...]
    served: Mapping[tuple[str, str], RRset]
    drifts: tuple[Drift, ...]
    extras_checked: bool
    extras_note: str | None = None
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def in_sync(self) -> bool:
        """No drift and no error."""
        return not self.drifts and not self.errors


def wanted_rrsets(records: Iterable[Record]) -> dict[tuple[str, str], RRset]:
    """Group records into RRsets (the TTL of an RRset is its smallest)."""
    grouped: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        grouped.setdefault((record.name, str(record.rdtype)), []).append(record)
    return {key: RRset(key[0], key[1], min(r.ttl for r in rs),
                       tuple(sorted({_norm(r.value, r.rdtype) for r in rs})))
            for key, rs in grouped.items()}


def _norm(value: str, rdtype: str) -> str:
    return absolute(value) if rdtype == RecordType.PTR else value


def compare(wanted: Mapping[tuple[str, str], RRset], served: Mapping[tuple[str, str], RRset],
            *, reasons: Mapping[tuple[str, str], str] | None = None,
            zone_rrsets: Iterable[RRset] | None = None, ignore: Iterable[str] = ()
            ) -> tuple[Drift, ...]:
    """The drift between wanted and served RRsets.

    Args:
        wanted: the RRsets the inventory implies.
        served: what the server answered for those keys.
        reasons: why each wanted RRset exists (for messages).
        zone_rrsets: every RRset of the zone (from a transfer) to find extras in; None
            when extras are not checked.
        ignore: names never reported as extra (the zone's name servers).
    """
    why = reasons or {}
    drifts: list[Drift] = []
    for key, want in wanted.items():
        have = served.get(key)
        reason = why.get(key, "")
        if have is None:
            drifts.append(Drift(DriftKind.MISSING, key[0], key[1], want, None, reason))
        elif have.values != want.values:
            drifts.append(Drift(DriftKind.WRONG_VALUE, key[0], key[1], want, have, reason))
        elif have.ttl != want.ttl:
            drifts.append(Drift(DriftKind.WRONG_TTL, key[0], key[1], want, have, reason))
    skip = {absolute(n) for n in ignore}
    for rrset in zone_rrsets or ():
        key = (rrset.name, rrset.rdtype)
        if key in wanted or rrset.rdtype not in MANAGED_TYPES or rrset.name in skip:
            continue
        drifts.append(Drift(DriftKind.EXTRA, rrset.name, rrset.rdtype, None, rrset,
                            "not implied by the inventory"))
    return tuple(sorted(drifts, key=lambda d: (d.name, d.rdtype, d.kind)))


def zone_rrsets(zone: dns.zone.Zone) -> list[RRset]:
    """Every RRset of a transferred zone, names absolute."""
    out = []
    origin = zone.origin or dns.name.root
    for name, node in zone.nodes.items():
        owner = name.derelativize(origin).to_text().lower()
        for rdataset in node.rdatasets:
            values = tuple(sorted(r.to_text().lower() for r in rdataset))
            out.append(RRset(owner, dns.rdatatype.to_text(rdataset.rdtype), rdataset.ttl,
                             values))
    return out


def name_servers(zone: dns.zone.Zone) -> list[str]:
    """The NS targets of the zone apex (their A records are the server's own)."""
    origin = zone.origin or dns.name.root
    apex = zone.get_rdataset(origin, dns.rdatatype.NS)
    return [r.target.derelativize(origin).to_text().lower() for r in apex or ()]


async def served_rrsets(client: DnsClient, keys: Sequence[tuple[str, str]]
                        ) -> tuple[dict[tuple[str, str], RRset], dict[str, str]]:
    """Ask the server for each key concurrently; errors (REFUSED, SERVFAIL...) by name.

    Raises:
        DnsUnreachable: the server did not answer.
    """
    answers = await asyncio.gather(*(client.rrset(name, rdtype) for name, rdtype in keys))
    served: dict[tuple[str, str], RRset] = {}
    errors: dict[str, str] = {}
    for answer in answers:
        if answer.rcode not in ("NOERROR", "NXDOMAIN"):
            errors[answer.name] = answer.rcode
        elif answer.exists and answer.ttl is not None:
            served[(answer.name, answer.rdtype)] = RRset(answer.name, answer.rdtype,
                                                         answer.ttl, answer.values)
    return served, errors


async def transfer(client: DnsClient, zone: str, key: TsigKeyRef | None
                   ) -> tuple[dns.zone.Zone | None, str | None]:
    """The zone by AXFR (unsigned, then signed when refused and a key exists), or the
    reason it could not be read."""
    reason = ""
    for signed in (False, True):
        if signed and key is None:
            break
        try:
            return await client.axfr(zone, key.load() if signed and key else None), None
        except dns.xfr.TransferError as exc:
            rcode = dns.rcode.to_text(exc.rcode)
            reason = (f"the server refused the zone transfer ({rcode}"
                      f"{', signed with key ' + key.name if signed and key else ', unsigned'})")
        except DnsUnreachable as exc:
            return None, f"the zone transfer failed: {exc.reason}"
        except (dns.exception.DNSException, UserError) as exc:
            reason = f"the zone transfer failed: {exc}"
            if isinstance(exc, UserError):
                break
    return None, (reason + "; extra records were not looked for (allow transfers to the "
                  "key, e.g. BIND's `allow-transfer { key NAME; };`)")


async def check_drift(client: DnsClient, zone: str, records: Sequence[Record], *,
                      key: TsigKeyRef | None = None, extras: bool = True,
                      known_zone: dns.zone.Zone | None = None) -> DriftReport:
    """Compare what ``client``'s server answers with ``records``.

    Extras are looked for in ``known_zone`` when given (zone-file mode reads the file),
    else by zone transfer.

    Raises:
        DnsUnreachable: the server did not answer at all.
    """
    zone = absolute(zone)
    wanted = wanted_rrsets(records)
    reasons = {r.key: r.reason for r in records}
    served, errors = await served_rrsets(client, list(wanted))
    rrsets: list[RRset] | None = None
    note: str | None = "not asked (--no-extras)"
    ignore: list[str] = []
    transferred: dns.zone.Zone | None = None
    if extras and known_zone is not None:
        transferred, note = known_zone, None
    elif extras:
        transferred, note = await transfer(client, zone, key)
    if transferred is not None:
        rrsets = [r for r in zone_rrsets(transferred) if in_zone(r.name, zone)]
        ignore = name_servers(transferred)
    drifts = compare(wanted, served, reasons={(n, str(t)): w for (n, t), w in reasons.items()},
                     zone_rrsets=rrsets, ignore=ignore)
    return DriftReport(zone, client.server, tuple(records), served, drifts,
                       extras_checked=rrsets is not None,
                       extras_note=None if rrsets is not None else note, errors=errors)


__all__ = ["MANAGED_TYPES", "Drift", "DriftKind", "DriftReport", "RRset", "check_drift",
           "compare", "name_servers", "served_rrsets", "transfer", "wanted_rrsets",
           "zone_rrsets"]
