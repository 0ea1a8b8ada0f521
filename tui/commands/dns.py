"""`hardway dns check|diff|apply`: the cluster zone against the inventory."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

from tui.commands.argtypes import positive_int, positive_seconds
from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.core.dns.drift import DriftReport
    from tui.core.dns.query import DnsClient
    from tui.core.dns.update import UpdateResult
    from tui.core.dns.zoneplan import DnsPlan
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Host, Inventory

DNS_HELP = """\
The cluster's DNS zone against what the inventory implies: an A record per controller
and worker (NAME.ZONE), the API name (api.hostname) -> the API VIP, the hypervisor's
name -> its address, and with --ptr the reverse records.

  check   ask the server (dns.server:dns.port) and list the drift: missing, extra (found
          by a zone transfer when the server allows it), wrong value, wrong TTL
  diff    the changes that would repair it, as the exact update message (rfc2136 mode)
          or the zone-file diff (zonefile mode)
  apply   make them: one conditional RFC 2136 update signed with the TSIG key, or the
          zone file edited over SSH (backup, serial bump, check, reload, verify)

Updates are conditional: each change carries the state hardway read (a prerequisite),
so if someone changed the zone meanwhile the server refuses the whole update (YXRRSET /
NXRRSET) and nothing is overwritten. The TSIG secret (dns.tsig_secret_file) is read
only when an update or a signed zone transfer is sent, and is never printed or logged.

examples:
  hardway dns check -i /tmp/lab/inventory.toml
  hardway dns diff -i hardway.toml --json | jq '.changes'
  hardway dns apply -i hardway.toml --dry-run
  hardway dns apply -i hardway.toml --yes
"""

CHECK_HELP = """\
Ask the zone's server for every record the inventory implies and report the drift.
Extra records are found by a zone transfer (AXFR: unsigned, then signed with the TSIG
key if refused); a server that refuses both is reported as "extras not checked".

exit status: 0 in sync, 1 drift (or the server answered errors), 2 could not run.

examples:
  hardway dns check -i /tmp/lab/inventory.toml
  hardway dns check -i hardway.toml --ptr --json
"""

DIFF_HELP = """\
Show what `dns apply` would change: per record the action (add, replace, delete) with
the old and new values, then the exact update message with its prerequisites (rfc2136
mode; unsigned here, the key only signs it when it is sent) or the zone file's diff with
the new SOA serial (zonefile mode, read over SSH). Nothing is changed.

exit status: 0 nothing to change, 1 changes pending (or drift hardway cannot repair,
such as PTRs of a reverse zone the server does not serve), 2 could not run.

examples:
  hardway dns diff -i /tmp/lab/inventory.toml
  hardway dns diff -i hardway.toml --delete-extras
"""

APPLY_HELP = """\
Repair the drift. rfc2136 mode: print the update message, then send it over TCP signed
with the TSIG key; every refusal is explained (REFUSED, NOTAUTH, NOTZONE, YXRRSET,
NXRRSET, BADSIG, BADKEY, BADTIME with the clock offset) and changes nothing. zonefile
mode (NSD, hand-kept BIND zones): print the diff, then over SSH write the file
atomically (previous one kept as FILE.hardway-bak), check it (nsd-checkzone or
named-checkzone), reload (nsd-control / rndc), and verify by query; a failed check or
reload puts the previous file back.

Extra records are kept unless --delete-extras. On a terminal apply asks first; --yes
answers for scripts (needed without a terminal). --dry-run shows the same and stops.

exit status: 0 applied (or nothing to do), 1 refused or failed (or drift left that
cannot be repaired here), 2 could not run.

examples:
  hardway dns apply -i /tmp/lab/inventory.toml --dry-run
  hardway dns apply -i /tmp/lab/inventory.toml --yes
  hardway dns apply -i hardway.toml --yes \\
      --reload-command 'nsd-control -c /etc/nsd/nsd.conf reload {zone}'
"""


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add ``dns`` and its actions to the top-level parser."""
    dns_parser = sub.add_parser("dns", help="check and repair the cluster's DNS zone",
                                description=DNS_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    dns_parser.set_defaults(handler=lambda _args: _usage(dns_parser))
    actions = dns_parser.add_subparsers(dest="dns_command", metavar="ACTION")

    def action(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text, description=description,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("-i", "--inventory", metavar="FILE", default=argparse.SUPPRESS,
                       help="inventory TOML (default: ./hardway.toml, then "
                            "$XDG_CONFIG_HOME/hardway/inventory.toml)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.add_argument("--ptr", action="store_true", help="also the PTR record of each address")
        p.add_argument("--no-extras", action="store_true",
                       help="do not read the zone by transfer (extra records go unnoticed)")
        p.add_argument("--ttl", type=positive_int, default=300, metavar="S",
                       help="TTL of the records hardway writes (default 300)")
        p.add_argument("--timeout", type=positive_seconds, default=3.0, metavar="S",
                       help="seconds per DNS query (default 3)")
        p.add_argument("--accept-new", action="store_true", default=argparse.SUPPRESS,
                       help="record unknown SSH host keys (jump host, zone-file host)")
        p.add_argument("--connect-timeout", type=positive_seconds, default=10.0, metavar="S",
                       help="give up connecting over SSH after S seconds (default 10)")
        p.add_argument("--audit", metavar="FILE",
                       help="append the audit record to FILE (default in "
                            "$XDG_STATE_HOME/hardway/)")
        return p

    check = action("check", "list the drift between the zone and the inventory", CHECK_HELP)
    check.set_defaults(handler=run_check)
    for name, text, handler, helptext in (
            ("diff", DIFF_HELP, run_diff, "show the update or zone-file diff that repairs it"),
            ("apply", APPLY_HELP, run_apply, "send the update or edit the zone file")):
        p = action(name, helptext, text)
        p.add_argument("--delete-extras", action="store_true",
                       help="also delete records the inventory does not imply")
        p.add_argument("--ssh-host", metavar="NAME",
                       help="zonefile mode: the inventory host that keeps the zone file "
                            "(default: the one whose name or address is dns.server)")
        p.add_argument("--check-command", metavar="CMD",
                       help="zonefile mode: check command with {zone} and {file} "
                            "(default: nsd-checkzone or named-checkzone, found on the host)")
        p.add_argument("--reload-command", metavar="CMD",
                       help="zonefile mode: reload command with {zone} (default: "
                            "nsd-control reload or rndc reload)")
        p.add_argument("--sudo", action="store_true",
                       help="zonefile mode: run the check and reload with sudo -n")
        if name == "apply":
            p.add_argument("--dry-run", action="store_true",
                           help="show what would be sent or written; change nothing")
            p.add_argument("--yes", action="store_true",
                           help="do not ask (needed when not on a terminal)")
        p.set_defaults(handler=handler)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# -- shared ----------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    """The inventory and where to print."""

    inventory: Inventory
    out: TextIO
    err: TextIO
    colour: bool


def _context(args: argparse.Namespace) -> Context:
    from tui.core.inventory.load import load_inventory
    from tui.core.inventory.locate import locate_inventory

    inventory = load_inventory(locate_inventory(getattr(args, "inventory", None)))
    colour = (not os.environ.get("NO_COLOR") and sys.stdout.isatty()
              and not getattr(args, "json", False))
    return Context(inventory, sys.stdout, sys.stderr, colour)


def _paint(ctx: Context, text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if ctx.colour else text


def _json(ctx: Context, data: object) -> None:
    ctx.out.write(json.dumps(data, indent=2, default=str) + "\n")


def _zone_host(ctx: Context, args: argparse.Namespace) -> list[Host]:
    """The zone file's host when it is not one of the inventory's (the hypervisor)."""
    from tui.core.dns.zoneplan import dns_table, zone_file_host

    if ctx.inventory.dns is None or dns_table(ctx.inventory).mode != "zonefile" \
            or getattr(args, "ssh_host", None):
        return []
    return [zone_file_host(ctx.inventory)]


@asynccontextmanager
async def _session(ctx: Context, args: argparse.Namespace
                   ) -> AsyncIterator[tuple[DnsClient, Fleet]]:
    """The DNS client and the fleet, from the workbench every command opens."""
    from tui.commands.session import open_workbench
    from tui.core.dns.zoneplan import client_for
    from tui.core.fleet.dial import dialer_for

    async with open_workbench(ctx.inventory, args, err=ctx.err,
                              extra_hosts=_zone_host(ctx, args)) as workbench:
        fleet = workbench.fleet
        dialer = dialer_for(ctx.inventory, fleet)
        try:
            yield client_for(ctx.inventory, dialer, timeout=args.timeout), fleet
        finally:
            await dialer.close()


def _unreachable(exc: Exception) -> UserError:
    from tui.core.dns.query import DnsUnreachable

    if isinstance(exc, DnsUnreachable):
        return UserError(f"The DNS server {exc.server} (dns.server, dns.port) did not answer: "
                         f"{exc.reason}. Check the address, that it serves UDP and TCP, and "
                         "the jump host.")
    return UserError(str(exc))


# -- check -----------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``dns check``."""
    ctx = _context(args)
    report = asyncio.run(_check(ctx, args))
    if args.json:
        _json(ctx, _report_json(report))
    else:
        _render_report(ctx, report)
    return 0 if report.in_sync else 1


async def _check(ctx: Context, args: argparse.Namespace) -> DriftReport:
    from tui.core.dns.query import DnsUnreachable
    from tui.core.dns.zoneplan import check_zone

    async with _session(ctx, args) as (client, fleet):
        try:
            return await check_zone(ctx.inventory, client, ptr=args.ptr,
                                    extras=not args.no_extras, ttl=args.ttl, fleet=fleet,
                                    host=getattr(args, "ssh_host", None))
        except DnsUnreachable as exc:
            raise _unreachable(exc) from None


def _report_json(report: DriftReport) -> dict[str, Any]:
    return {"zone": report.zone, "server": report.server, "in_sync": report.in_sync,
            "extras_checked": report.extras_checked, "extras_note": report.extras_note,
            "errors": dict(report.errors),
            "drift": [dict(dataclasses.asdict(d), kind=str(d.kind), message=d.message)
                      for d in report.drifts],
            "records": [dict(dataclasses.asdict(r), rdtype=str(r.rdtype))
                        for r in report.wanted]}


def _render_report(ctx: Context, report: DriftReport) -> None:
    from tui.core.dns.records import relative

    out = ctx.out
    out.write(f"Zone {report.zone} on {report.server}: {len(report.wanted)} records implied "
              "by the inventory\n\n")
    drift_by_key = {(d.name, d.rdtype): d for d in report.drifts}
    width = max((len(relative(r.name, report.zone)) for r in report.wanted), default=4)
    for record in report.wanted:
        drift = drift_by_key.get((record.name, str(record.rdtype)))
        if drift is None:
            state = _paint(ctx, "ok", "32")
        else:
            state = _paint(ctx, str(drift.kind), "1;31" if drift.kind != "wrong TTL" else "33")
        served = report.served.get((record.name, str(record.rdtype)))
        answer = f"  (served: {', '.join(served.values)} TTL {served.ttl})" \
            if served and drift is not None else ""
        out.write(f"  {relative(record.name, report.zone):<{width}}  {record.rdtype:<3} "
                  f"{record.value:<16} {state}{answer}\n")
    for drift in report.drifts:
        if drift.kind == "extra" and drift.actual is not None:
            out.write(f"  {relative(drift.name, report.zone):<{width}}  {drift.rdtype:<3} "
                      f"{', '.join(drift.actual.values):<16} {_paint(ctx, 'extra', '33')}\n")
    for name, rcode in report.errors.items():
        out.write(f"  {name}: the server answered {rcode}\n")
    if not report.extras_checked:
        out.write(f"\nExtra records were not checked: {report.extras_note}\n")
    count = len(report.drifts)
    if report.in_sync:
        out.write("\nThe zone matches the inventory.\n")
    else:
        out.write(f"\n{count} difference{'s' * (count != 1)}. See the fix with "
                  f"`hardway dns diff -i {ctx.inventory.path}`.\n")


# -- diff / apply ----------------------------------------------------------------------


def run_diff(args: argparse.Namespace) -> int:
    """Handler of ``dns diff``."""
    ctx = _context(args)
    plan = asyncio.run(_plan_only(ctx, args))
    if args.json:
        _json(ctx, _plan_json(plan))
    else:
        _render_plan(ctx, plan)
    return 0 if plan.empty and not plan.skipped else 1


async def _plan_only(ctx: Context, args: argparse.Namespace) -> DnsPlan:
    async with _session(ctx, args) as (client, fleet):
        return await _plan(ctx, args, client, fleet)


async def _plan(ctx: Context, args: argparse.Namespace, client: DnsClient,
                fleet: Fleet) -> DnsPlan:
    from tui.core.dns.query import DnsUnreachable
    from tui.core.dns.zoneplan import plan_zone

    try:
        return await plan_zone(ctx.inventory, client, fleet=fleet, host=args.ssh_host,
                               ptr=args.ptr, extras=not args.no_extras,
                               delete_extras=args.delete_extras, ttl=args.ttl)
    except DnsUnreachable as exc:
        raise _unreachable(exc) from None


def _plan_json(plan: DnsPlan) -> dict[str, Any]:
    return {"mode": plan.mode, "zone": plan.zone, "key": plan.key,
            "changes": [{"action": str(c.action), "name": c.name, "rdtype": c.rdtype,
                         "new": dataclasses.asdict(c.new) if c.new else None,
                         "expected": dataclasses.asdict(c.expected) if c.expected else None}
                        for c in plan.changes],
            "update": plan.update_text,
            "updates": [{"zone": u.zone, "text": u.text} for u in plan.updates],
            "skipped": list(plan.skipped),
            "zone_file": None if plan.edit is None else {
                "host": plan.edit.host, "path": plan.edit.path, "diff": plan.edit.diff(),
                "old_serial": plan.edit.old_serial, "new_serial": plan.edit.new_serial},
            "drift": _report_json(plan.report)}


def _render_plan(ctx: Context, plan: DnsPlan) -> None:
    out = ctx.out
    if plan.empty:
        kept = sum(d.kind == "extra" for d in plan.report.drifts)
        out.write(f"Nothing to change in {plan.zone.rstrip('.')}"
                  + (f" ({kept} extra record{'s' * (kept != 1)} kept; --delete-extras "
                     "removes them)" if kept else "") + ".\n")
        for note in plan.skipped:
            out.write(f"Not changed: {note}\n")
        return
    out.write(f"Changes to {plan.zone} ({plan.mode} mode):\n")
    for change in plan.changes:
        out.write(f"  {change.text(plan.zone)}\n")
    if plan.update_text is not None:
        signer = f"signed with TSIG key {plan.key}" if plan.key else "UNSIGNED (no dns.tsig_name)"
        out.write(f"\nUpdate message ({signer} when sent;\neach prerequisite is the "
                  "state read just now, so a concurrent edit makes the server refuse it):\n")
        for line in plan.update_text.splitlines():
            out.write(f"  {line}\n")
    if plan.edit is not None:
        out.write(f"\nZone file {plan.edit.host}:{plan.edit.path}, serial "
                  f"{plan.edit.old_serial} -> {plan.edit.new_serial}:\n")
        out.write(plan.edit.diff())
    for note in plan.skipped:
        out.write(f"\nNot changed: {note}\n")
    if not plan.report.extras_checked:
        out.write(f"\nExtra records were not checked: {plan.report.extras_note}\n")


def run_apply(args: argparse.Namespace) -> int:
    """Handler of ``dns apply``."""
    ctx = _context(args)
    return asyncio.run(_apply(ctx, args))


async def _apply(ctx: Context, args: argparse.Namespace) -> int:
    from tui.core.dns.zonefile import ZoneFileOptions
    from tui.core.dns.zoneplan import apply_plan

    async with _session(ctx, args) as (client, fleet):
        plan = await _plan(ctx, args, client, fleet)
        if args.dry_run or plan.empty:
            if args.json:
                _json(ctx, dict(_plan_json(plan), dry_run=args.dry_run, applied=False))
            else:
                _render_plan(ctx, plan)
                if args.dry_run and not plan.empty:
                    ctx.out.write("\nDry run: nothing was sent or written.\n")
            return 0 if args.dry_run or not plan.skipped else 1
        if not args.json:
            _render_plan(ctx, plan)
        if not args.yes:
            await _confirm(plan)
        options = ZoneFileOptions(check_command=args.check_command,
                                  reload_command=args.reload_command, sudo=args.sudo)
        result = await apply_plan(ctx.inventory, plan, client, fleet=fleet,
                                  audit=fleet.audit, options=options)
    if isinstance(result, tuple):
        ok = all(r.ok for r in result) and len(result) == len(plan.updates)
        if args.json:
            _json(ctx, {"mode": plan.mode, "ok": ok, "update": plan.update_text,
                        "results": [_result_json(r) for r in result],
                        **(_result_json(result[-1]) if result else {})})
        else:
            for one in result:
                code = "32" if one.ok else "1;31"
                ctx.out.write(f"\n{_paint(ctx, str(one.status), code)}: {one.explanation}\n")
            if not ok and len(result) > 1:
                done = ", ".join(r.zone for r in result if r.ok)
                ctx.out.write(f"Already applied: {done}; the rest was not sent.\n")
        return 0 if ok and not plan.skipped else 1
    if args.json:
        _json(ctx, {"mode": plan.mode, "ok": result.ok,
                    "failed_step": str(result.failed_step) if result.failed_step else None,
                    "restored": result.restored, "message": result.message,
                    "output": result.output, "backup": result.backup})
    else:
        code = "32" if result.ok else "1;31"
        ctx.out.write(f"\n{_paint(ctx, 'done' if result.ok else 'failed', code)}: "
                      f"{result.message}\n")
        if result.output and not result.ok:
            ctx.out.write(result.output.rstrip() + "\n")
    return 0 if result.ok and not plan.skipped else 1


def _result_json(result: UpdateResult) -> dict[str, Any]:
    return {"zone": result.zone, "ok": result.ok, "status": str(result.status),
            "rcode": result.rcode, "tsig_error": result.tsig_error,
            "clock_offset": result.clock_offset, "explanation": result.explanation}


async def _confirm(plan: DnsPlan) -> None:
    if not sys.stdin.isatty():
        raise UserError("dns apply changes the zone; it asks for confirmation on a terminal "
                        "and needs --yes when run without one (preview it first with "
                        "--dry-run).")
    verb = "Send this update" if plan.mode == "rfc2136" else "Write this zone file"
    answer = await asyncio.to_thread(input, f"{verb} now? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError("Nothing was changed (not confirmed).", exit_code=1)
