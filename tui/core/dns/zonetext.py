"""Edit a zone file's text in place: the records hardway manages and the SOA serial.

The file keeps its layout and comments: only the lines of the changed RRsets are removed
(a following line that inherited their owner gets the owner written out), new records are
appended with absolute names, and the serial token of the SOA is replaced.  The result is
parsed back with dnspython and compared with the wanted RRsets before anyone uploads it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.zone

from tui.core.dns.records import absolute
from tui.core.dns.update import Change, ChangeAction
from tui.core.errors import UserError

_TYPES = {"A", "AAAA", "PTR", "CNAME", "NS", "SOA", "MX", "TXT", "SRV", "CAA", "DS",
          "DNSKEY", "HINFO", "NAPTR", "SSHFP", "TLSA", "LOC", "SPF"}
_CLASSES = {"IN", "CH", "HS"}


@dataclass(frozen=True)
class _Line:
    index: int
    owner: str | None      # absolute owner when the line is (the start of) a record
    explicit: bool         # the owner is written on this line
    rdtype: str | None


def next_serial(old: int, today: dt.date) -> int:
    """The serial after ``old``: date-based (``YYYYMMDDnn``) when the file uses that
    convention, else ``old + 1`` (RFC 1982 arithmetic wraps at 2**32)."""
    text = str(old)
    if len(text) == 10:
        try:
            dated = dt.datetime.strptime(text[:8], "%Y%m%d").date()
        except ValueError:
            dated = None
        if dated is not None and 1990 <= dated.year <= 2200:
            return max(old + 1, int(today.strftime("%Y%m%d")) * 100)
    return (old + 1) % 2**32


def _tokens(line: str) -> list[str]:
    """Tokens of one line, comments dropped (quotes kept simple: zone files hardway
    edits hold no quoted semicolons in A/PTR/SOA records)."""
    return line.split(";", 1)[0].replace("(", " ( ").replace(")", " ) ").split()


def _scan(lines: list[str], origin: str) -> list[_Line]:
    out: list[_Line] = []
    current_origin = absolute(origin)
    owner: str | None = None
    depth = 0
    for index, raw in enumerate(lines):
        tokens = _tokens(raw)
        if depth > 0:
            depth += tokens.count("(") - tokens.count(")")
            out.append(_Line(index, None, False, None))
            continue
        if not tokens:
            out.append(_Line(index, None, False, None))
            continue
        if tokens[0].upper() == "$ORIGIN" and len(tokens) > 1:
            current_origin = _absolute_in(tokens[1], current_origin)
            out.append(_Line(index, None, False, None))
            continue
        if tokens[0].startswith("$"):
            out.append(_Line(index, None, False, None))
            continue
        explicit = not raw[:1].isspace()
        rest = tokens
        if explicit:
            owner = _absolute_in(tokens[0], current_origin)
            rest = tokens[1:]
        rdtype = next((t.upper() for t in rest
                       if t.upper() in _TYPES or t.upper().startswith("TYPE")), None)
        depth = tokens.count("(") - tokens.count(")")
        out.append(_Line(index, owner, explicit, rdtype))
    return out


def _absolute_in(name: str, origin: str) -> str:
    if name == "@":
        return origin
    if name.endswith("."):
        return name.lower()
    return f"{name.lower()}.{origin}"


def _serial_position(lines: list[str], scanned: list[_Line]) -> tuple[int, re.Match[str]]:
    soa = next((s for s in scanned if s.rdtype == "SOA"), None)
    if soa is None:
        raise UserError("The zone file has no SOA record, so its serial cannot be bumped.")
    seen_soa = False
    count = 0
    for index in range(soa.index, len(lines)):
        body = lines[index].split(";", 1)[0]
        for match in re.finditer(r"[^\s()]+", body):
            token = match.group(0)
            if not seen_soa:
                seen_soa = token.upper() == "SOA"
                continue
            count += 1
            if count == 3:
                if not token.isdigit():
                    raise UserError(f"The SOA serial {token!r} in the zone file is not a "
                                    "number.")
                return index, match
    raise UserError("The zone file's SOA record is incomplete (no serial found).")


def edit_zone_text(text: str, zone: str, changes: Sequence[Change], *,
                   today: dt.date | None = None) -> tuple[str, int, int]:
    """Apply ``changes`` to zone file ``text`` and bump its serial.

    Returns:
        ``(new_text, old_serial, new_serial)``.

    Raises:
        UserError: the file does not parse, a change's expected state is not the file's
            (someone edited it), or the edit did not give the wanted RRsets.
    """
    origin = absolute(zone)
    before = parse_zone(text, origin)
    for change in changes:
        have = _rrset_values(before, change.name, change.rdtype)
        want = set(change.expected.values) if change.expected is not None else set()
        if have != want:
            raise UserError(f"The zone file's {change.name} {change.rdtype} is "
                            f"{', '.join(sorted(have)) or 'absent'}, not "
                            f"{', '.join(sorted(want)) or 'absent'} as the server answered: the "
                            "file was edited and not reloaded yet, or edited meanwhile; "
                            "reload the zone or plan again.")
    lines = text.splitlines()
    scanned = _scan(lines, origin)
    targets = {(c.name, c.rdtype.upper()) for c in changes}
    drop = {s.index for s in scanned if s.owner is not None and s.rdtype is not None
            and (s.owner, s.rdtype) in targets}
    # Continuation lines of dropped records (multi-line rdata) go too.
    for s in scanned:
        if s.index in drop:
            j = s.index + 1
            while j < len(scanned) and scanned[j].owner is None and \
                    _tokens(lines[s.index]).count("(") > _tokens(lines[s.index]).count(")") \
                    and scanned[j].rdtype is None and lines[j].strip():
                drop.add(j)
                j += 1
    new_lines: list[str] = []
    carried: str | None = None  # owner of a dropped line that later lines inherited
    for s in scanned:
        line = lines[s.index]
        if s.index in drop:
            if s.explicit:
                carried = s.owner
            continue
        if s.owner is not None:
            if not s.explicit and carried == s.owner:
                line = s.owner + line
            carried = None
        new_lines.append(line)
    for change in changes:
        if change.action is ChangeAction.DELETE or change.new is None:
            continue
        for value in change.new.values:
            new_lines.append(f"{change.name} {change.new.ttl} IN {change.rdtype} {value}")
    scanned_new = _scan(new_lines, origin)
    index, match = _serial_position(new_lines, scanned_new)
    old_serial = int(match.group(0))
    new_serial = next_serial(old_serial, today or dt.date.today())
    line = new_lines[index]
    new_lines[index] = line[:match.start()] + str(new_serial) + line[match.end():]
    new_text = "\n".join(new_lines) + "\n"
    try:
        after = parse_zone(new_text, origin)
    except UserError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise UserError(f"The edited zone file for {origin} would not load ({reason}), so "
                         "nothing was written; fix the conflicting records first.") from None
    for change in changes:
        have = _rrset_values(after, change.name, change.rdtype)
        want = set(change.new.values) if change.new is not None else set()
        if have != want:
            raise UserError(f"Editing the zone file did not give {change.name} "
                            f"{change.rdtype} = {', '.join(sorted(want)) or 'absent'} (got "
                            f"{', '.join(sorted(have)) or 'nothing'}); the file's layout is "
                            "one hardway cannot edit safely: edit it by hand.")
    return new_text, old_serial, new_serial


def parse_zone(text: str, origin: str) -> dns.zone.Zone:
    """Parse zone file ``text``.

    Raises:
        UserError: it does not parse (dnspython's reason).
    """
    try:
        return dns.zone.from_text(text, dns.name.from_text(origin), relativize=False,
                                  check_origin=True)
    except (dns.exception.DNSException, ValueError) as exc:
        raise UserError(f"The zone file for {origin} does not parse: {exc}") from None


def _rrset_values(zone: dns.zone.Zone, name: str, rdtype: str) -> set[str]:
    rdataset = zone.get_rdataset(name, dns.rdatatype.from_text(rdtype))
    return {r.to_text().lower() for r in rdataset} if rdataset is not None else set()


def zone_serial(zone: dns.zone.Zone) -> int:
    """The SOA serial of a parsed zone."""
    origin = zone.origin or dns.name.root
    soa = zone.find_rdataset(origin, dns.rdatatype.SOA)
    return int(soa[0].serial)


__all__ = ["edit_zone_text", "next_serial", "parse_zone", "zone_serial"]
