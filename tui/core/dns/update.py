"""RFC 2136 dynamic updates signed with TSIG, conditional so nobody's edit is overwritten.

Every change carries a prerequisite stating what hardway saw when it computed the change:

* add a missing RRset      -> "this RRset does not exist"          (else YXRRSET)
* replace a wrong RRset    -> "this RRset is exactly these values"  (else NXRRSET)
* delete an extra RRset    -> "this RRset is exactly these values"  (else NXRRSET)

so if someone changed the zone in between, the server refuses the whole update and nothing
changes.  All changes of one zone go in one message: the server applies all or none.

The TSIG secret is read (:meth:`TsigKeyRef.load`) inside :func:`send_update`, just before
the message is signed, and is registered with the audit log so it can never be written.
Every outcome is an :class:`UpdateResult` whose ``status`` is typed and whose
``explanation`` says what to check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.update

from tui.core.audit import AuditLog
from tui.core.dns.drift import Drift, DriftKind, RRset
from tui.core.dns.query import DnsClient, DnsUnreachable
from tui.core.dns.records import absolute
from tui.core.dns.tsig import FUDGE, TsigKeyRef, read_response, sign
from tui.core.errors import UserError


class ChangeAction(StrEnum):
    """What a change does to one RRset."""

    ADD = "add"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True)
class Change:
    """One RRset change and the state it expects.

    Attributes:
        action: add, replace or delete.
        name: absolute owner name.
        rdtype: record type.
        new: the RRset after the change (None for a delete).
        expected: the RRset as seen before (None: it must not exist).
    """

    action: ChangeAction
    name: str
    rdtype: str
    new: RRset | None
    expected: RRset | None

    def text(self, zone: str) -> str:
        """``add kubernetes 300 A 10.50.0.1`` (names relative to ``zone``)."""
        if self.new is not None:
            was = f" (was {', '.join(self.expected.values)} TTL {self.expected.ttl})" \
                if self.expected is not None else ""
            return f"{self.action} {self.new.text(zone)}{was}"
        assert self.expected is not None
        return f"{self.action} {self.expected.text(zone)}"


def changes_for(drifts: Iterable[Drift], *, delete_extras: bool = False) -> tuple[Change, ...]:
    """The changes that remove ``drifts`` (extras are kept unless ``delete_extras``)."""
    changes: list[Change] = []
    for drift in drifts:
        if drift.kind is DriftKind.MISSING:
            changes.append(Change(ChangeAction.ADD, drift.name, drift.rdtype, drift.wanted,
                                  None))
        elif drift.kind in (DriftKind.WRONG_VALUE, DriftKind.WRONG_TTL):
            changes.append(Change(ChangeAction.REPLACE, drift.name, drift.rdtype,
                                  drift.wanted, drift.actual))
        elif drift.kind is DriftKind.EXTRA and delete_extras:
            changes.append(Change(ChangeAction.DELETE, drift.name, drift.rdtype, None,
                                  drift.actual))
    return tuple(changes)


def build_update(zone: str, changes: Sequence[Change]) -> dns.update.UpdateMessage:
    """One unsigned UPDATE message for ``zone`` with a prerequisite per change."""
    message = dns.update.UpdateMessage(absolute(zone))
    for change in changes:
        if change.expected is None:
            message.absent(change.name, change.rdtype)
        else:
            message.present(change.name, *_rdatas(change.expected))
        if change.action is ChangeAction.DELETE:
            message.delete(change.name, change.rdtype)
        else:
            assert change.new is not None
            message.replace(change.name, change.new.ttl, change.rdtype, *change.new.values)
    return message


def _rdatas(rrset: RRset) -> list[dns.rdata.Rdata]:
    rdtype = dns.rdatatype.from_text(rrset.rdtype)
    return [dns.rdata.from_text(dns.rdataclass.IN, rdtype, v) for v in rrset.values]


def render_update(message: dns.update.UpdateMessage) -> str:
    """The message as ``nsupdate`` users read it (zone, prerequisites, updates); it is
    unsigned, so it holds no secret."""
    zone = message.zone[0].name.to_text() if message.zone else "?"
    lines = [f"zone {zone}"]
    for rrset in message.prerequisite:
        name, rdtype = rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype)
        rdclass = rrset.deleting or rrset.rdclass
        domain = rrset.rdtype == dns.rdatatype.ANY
        if rdclass == dns.rdataclass.NONE:
            lines.append(f"prereq nxdomain {name}" if domain else f"prereq nxrrset {name} {rdtype}")
        elif rdclass == dns.rdataclass.ANY:
            lines.append(f"prereq yxdomain {name}" if domain else f"prereq yxrrset {name} {rdtype}")
        else:
            for rdata in rrset:
                lines.append(f"prereq yxrrset {name} IN {rdtype} {rdata.to_text()}")
    for rrset in message.update:
        name, rdtype = rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype)
        rdclass = rrset.deleting or rrset.rdclass
        if rdclass == dns.rdataclass.ANY:
            lines.append(f"update delete {name} {rdtype}")
        elif rdclass == dns.rdataclass.NONE:
            for rdata in rrset:
                lines.append(f"update delete {name} {rdtype} {rdata.to_text()}")
        else:
            for rdata in rrset:
                lines.append(f"update add {name} {rrset.ttl} {rdtype} {rdata.to_text()}")
    lines.append("send")
    return "\n".join(lines)


class UpdateStatus(StrEnum):
    """How an update ended."""

    APPLIED = "applied"
    REFUSED = "REFUSED"
    NOTAUTH = "NOTAUTH"
    NOTZONE = "NOTZONE"
    YXRRSET = "YXRRSET"
    NXRRSET = "NXRRSET"
    YXDOMAIN = "YXDOMAIN"
    NXDOMAIN = "NXDOMAIN"
    SERVFAIL = "SERVFAIL"
    FORMERR = "FORMERR"
    NOTIMP = "NOTIMP"
    BADSIG = "BADSIG"
    BADKEY = "BADKEY"
    BADTIME = "BADTIME"
    BAD_RESPONSE = "bad response signature"
    UNREACHABLE = "unreachable"
    OTHER = "other"


@dataclass(frozen=True)
class UpdateResult:
    """The outcome of one update.

    Attributes:
        status: typed outcome.
        zone: absolute zone name.
        server: ``address:port``.
        rcode: the response code (``NOERROR``, ``NOTAUTH``...), None without a response.
        tsig_error: the TSIG error the server gave (``BADSIG``...), else None.
        clock_offset: for BADTIME, the server's clock minus ours, in seconds.
        explanation: what happened and what to check, for people.
        changes: the changes that were sent.
    """

    status: UpdateStatus
    zone: str
    server: str
    rcode: str | None
    tsig_error: str | None
    clock_offset: int | None
    explanation: str
    changes: tuple[Change, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the server applied the update."""
        return self.status is UpdateStatus.APPLIED


def explain(status: UpdateStatus, *, zone: str, server: str, key: str | None,
            offset: int | None = None, detail: str = "") -> str:
    """The sentence for ``status``: what it means and what to check."""
    keyname = key or "(none)"
    zone = zone.rstrip(".") or "."
    texts = {
        UpdateStatus.APPLIED: f"The server {server} applied the update to {zone}; it bumps "
                              "the SOA serial itself.",
        UpdateStatus.REFUSED: f"The server {server} refused the update to {zone}: check "
                              f"that the zone's update-policy (or allow-update) grants key "
                              f"{keyname} these names and types, and that the update is "
                              "signed at all (an inventory without dns.tsig_name sends it "
                              "unsigned).",
        UpdateStatus.NOTAUTH: f"The server {server} is not authoritative for {zone} (NOTAUTH): "
                              "check dns.zone and dns.server, and that this server is the "
                              "zone's primary (secondaries forward or refuse updates).",
        UpdateStatus.NOTZONE: f"A name in the update is outside {zone} (NOTZONE): check "
                              "api.hostname and the host names against dns.zone.",
        UpdateStatus.YXRRSET: "Nothing was changed: a record hardway expected to be absent "
                              "now exists (YXRRSET), so someone changed the zone since it "
                              "was read. Run `hardway dns diff` again and review.",
        UpdateStatus.NXRRSET: "Nothing was changed: a record no longer has the values "
                              "hardway read (NXRRSET), so someone changed the zone since it "
                              "was read. Run `hardway dns diff` again and review.",
        UpdateStatus.YXDOMAIN: "Nothing was changed: a name that had to be absent exists "
                               "(YXDOMAIN).",
        UpdateStatus.NXDOMAIN: "Nothing was changed: a name that had to exist is gone "
                               "(NXDOMAIN).",
        UpdateStatus.SERVFAIL: f"The server {server} failed while applying the update "
                               f"(SERVFAIL): check its log (a journal it cannot write, a "
                               "zone file it cannot save, a frozen zone after `rndc freeze`).",
        UpdateStatus.FORMERR: f"The server {server} could not parse the update (FORMERR).",
        UpdateStatus.NOTIMP: f"The server {server} does not implement dynamic updates "
                             "(NOTIMP; NSD never does): set dns.mode = \"zonefile\" and "
                             "dns.zone_file so hardway edits the zone file over SSH.",
        UpdateStatus.BADSIG: f"The server {server} rejected the signature (BADSIG): key "
                             f"{keyname} is known there but the secret in "
                             "dns.tsig_secret_file differs from the server's, or the "
                             "algorithm (dns.tsig_algorithm) differs. Nothing was changed.",
        UpdateStatus.BADKEY: f"The server {server} does not know key {keyname} with this "
                             "algorithm (BADKEY): check dns.tsig_name and dns.tsig_algorithm "
                             "against the server's key statement. Nothing was changed.",
        UpdateStatus.BADTIME: "The server rejected the signature time (BADTIME): its clock "
                              "and this machine's differ by more than the allowed "
                              f"{FUDGE} s" + (f" (the server's clock is {_offset(offset)})"
                                               if offset is not None else "") +
                              ". Fix the clocks (NTP on both) and send again. Nothing was "
                              "changed.",
        UpdateStatus.BAD_RESPONSE: f"The server's answer did not verify with key {keyname}: "
                                   "something between here and the server changed it, or "
                                   "the clocks differ; verify the zone with `hardway dns "
                                   "check`.",
        UpdateStatus.UNREACHABLE: f"The server {server} did not answer: check dns.server and "
                                  "dns.port, that it listens on TCP, and the jump host.",
        UpdateStatus.OTHER: f"The server {server} answered an unexpected code.",
    }
    text = texts[status]
    return f"{text} {detail}".strip() if detail else text


def _offset(offset: int) -> str:
    if offset == 0:
        return "the same"
    direction = "ahead of" if offset > 0 else "behind"
    return f"{abs(offset)} s {direction} this machine's"


async def send_update(client: DnsClient, message: dns.update.UpdateMessage,
                      key: TsigKeyRef | None, *, changes: Sequence[Change] = (),
                      audit: AuditLog | None = None,
                      clock: Callable[[], float] = time.time) -> UpdateResult:
    """Sign ``message`` with ``key`` (read now) and send it over TCP.

    Args:
        client: the server.
        message: from :func:`build_update`.
        key: the TSIG key; None sends the update unsigned.
        changes: what the message does (carried into the result).
        audit: where the update is recorded (its text, never the secret).
        clock: the signing clock (tests skew it).

    Raises:
        UserError: the secret file cannot be read.
    """
    zone = message.zone[0].name.to_text() if message.zone else "?"
    started = time.monotonic()
    keyname = key.name if key else None

    def result(status: UpdateStatus, rcode: str | None, tsig_error: str | None = None,
               offset: int | None = None, detail: str = "") -> UpdateResult:
        outcome = UpdateResult(status, zone, client.server, rcode, tsig_error, offset,
                               explain(status, zone=zone, server=client.server, key=keyname,
                                       offset=offset, detail=detail), tuple(changes))
        if audit is not None:
            audit.record(host=f"dns:{client.server}", kind="dns-update",
                         status=0 if outcome.ok else 1,
                         duration=time.monotonic() - started,
                         command=render_update(message), result=str(status),
                         rcode=rcode, tsig_error=tsig_error, key=keyname)
        return outcome

    if key is None:
        try:
            plain = dns.message.from_wire(await client.exchange_tcp(message.to_wire()))
        except DnsUnreachable as exc:
            return result(UpdateStatus.UNREACHABLE, None, detail=f"({exc.reason})")
        return result(*_status(plain.rcode()))
    tsig_key = key.load()
    if audit is not None:
        audit.add_secret(_secret_text(tsig_key.secret))
    signed = sign(message, tsig_key, clock=clock)
    try:
        wire = await client.exchange_tcp(signed.wire)
    except DnsUnreachable as exc:
        return result(UpdateStatus.UNREACHABLE, None, detail=f"({exc.reason})")
    try:
        response = read_response(wire, tsig_key, signed)
    except dns.exception.DNSException as exc:
        return result(UpdateStatus.OTHER, None, detail=f"(unreadable answer: {exc})")
    rcode = dns.rcode.to_text(response.message.rcode())
    if response.tsig_error is not None:
        offset = (response.server_time - signed.time_signed
                  if response.server_time is not None else None)
        try:
            status = UpdateStatus(response.tsig_error)
        except ValueError:
            status = UpdateStatus.OTHER
        return result(status, rcode, response.tsig_error, offset)
    status, rc = _status(response.message.rcode())
    if status is UpdateStatus.APPLIED and not response.verified:
        return result(UpdateStatus.BAD_RESPONSE, rc,
                      detail=f"({response.local_error})" if response.local_error else "")
    return result(status, rc)


def _secret_text(secret: bytes) -> str:
    import base64

    return base64.b64encode(secret).decode()


def _status(rcode: int) -> tuple[UpdateStatus, str]:
    text = dns.rcode.to_text(dns.rcode.Rcode(rcode))
    if rcode == dns.rcode.NOERROR:
        return UpdateStatus.APPLIED, text
    try:
        return UpdateStatus(text), text
    except ValueError:
        return UpdateStatus.OTHER, text


def describe_changes(changes: Sequence[Change], zone: str) -> list[str]:
    """One line per change, names relative to ``zone``."""
    return [change.text(zone) for change in changes]


def check_key_present(key: TsigKeyRef | None, server: str) -> None:
    """Refuse to send an unsigned update when the inventory names no key.

    Raises:
        UserError: no key.
    """
    if key is None:
        raise UserError(f"The inventory names no TSIG key (dns.tsig_name, "
                        f"dns.tsig_secret_file), and {server} should not accept unsigned "
                        "updates: add the key the server's update-policy grants.")


__all__ = ["Change", "ChangeAction", "UpdateResult", "UpdateStatus", "build_update",
           "changes_for", "check_key_present", "describe_changes", "explain",
           "render_update", "send_update"]
