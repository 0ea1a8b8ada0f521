"""`hardway health`: every probe of the control plane, once or every few seconds, headless."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tui.commands.argtypes import positive_int, positive_seconds
from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.core.health.model import Kind
    from tui.core.health.poller import StateChanged
    from tui.core.health.report import RoundReport

HEALTH_HELP = """\
Probe the control plane the way the health grid does, without the app: per controller
SSH (a no-op round trip), etcd /health and member status (leader, raft term and index,
DB size, the member list against the inventory), kube-apiserver /livez and
/readyz?verbose verified against the cluster CA, the nginx health proxy on :80 (Host:
kubernetes.default.svc.cluster.local), kube-scheduler :10259 and kube-controller-manager
:10257 /healthz, the certificates served on :6443 and :2379 (issuer, required SANs, days
left; under 30 is a warning) and the host's DNS record; through the API VIP, by address
and by the API DNS name, /healthz and /version on a new connection each, repeated to meet
every backend of a round robin (the failed fraction is reported); the API name resolves
to the VIP; the inventory's DNS server answers for the zone (its SOA, authoritative).
The CA and etcd's client certificate (kubernetes.pem) come from the PKI directory
(default pki/ beside the inventory).

Each probe has HAProxy's rise/fall state: UP after --rise consecutive passes, DOWN after
--fall consecutive failures; the first result decides the start. --watch runs a round
every --interval seconds (the next one starts when one ends) until interrupted or
--rounds; connections are kept alive between rounds.

probes (-p/--skip take these names): ssh, etcd, etcd-status, livez, readyz, nginx,
scheduler, controller-manager, cert-6443, cert-2379, dns, vip, vip-name, dns-api

output: a table (one line per probe; with --watch followed by the probes that went UP
or DOWN since the previous round, with the time and reason), or with --json one JSON
object per round (one line each with --watch, its "transitions" listed; --verbose adds
every probe's full output).

exit status: 0 healthy, 1 degraded (some probe is not UP and ok), 2 down (no API server
ready, etcd without quorum, or nothing answers through the VIP), also 2 when the probes
could not start.

examples:
  hardway health -i /tmp/lab/inventory.toml
  hardway health -i hardway.toml --watch --interval 5
  hardway health -i hardway.toml -p etcd,etcd-status,readyz --json | jq '.probes[]'
  hardway health -w controller-1 --skip nginx,scheduler,controller-manager
  hardway health --watch --json --rounds 30 > health.jsonl
"""


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add ``health`` to the top-level parser."""
    p = sub.add_parser("health", help="probe etcd, the API servers, the VIP, DNS and "
                       "certificates (exit 0 healthy, 1 degraded, 2 down)",
                       description=HEALTH_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--inventory", metavar="FILE", default=argparse.SUPPRESS,
                   help="inventory TOML (default: ./hardway.toml, then "
                        "$XDG_CONFIG_HOME/hardway/inventory.toml)")
    p.add_argument("--pki", metavar="DIR", type=Path,
                   help="the PKI directory with ca.pem and kubernetes(-key).pem "
                        "(default: pki/ beside the inventory)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one round (the default)")
    mode.add_argument("--watch", action="store_true", help="a round every --interval seconds")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--verbose", action="store_true",
                   help="full output of every probe (readyz lines, member list, certificate)")
    p.add_argument("--interval", type=positive_seconds, default=2.0, metavar="S",
                   help="seconds between rounds with --watch (default 2)")
    p.add_argument("--rounds", type=positive_int, metavar="N",
                   help="with --watch, stop after N rounds")
    p.add_argument("--timeout", type=positive_seconds, default=2.0, metavar="S",
                   help="seconds each probe (each request through the VIP) may take "
                        "(default 2)")
    p.add_argument("--rise", type=positive_int, default=2, metavar="N",
                   help="consecutive passes that bring a DOWN probe UP (default 2)")
    p.add_argument("--fall", type=positive_int, default=3, metavar="N",
                   help="consecutive failures that take an UP probe DOWN (default 3)")
    p.add_argument("-w", dest="include", action="append", metavar="HOSTS",
                   help="hosts to probe: names, host sets, @controllers @workers "
                        "(default @controllers)")
    p.add_argument("-x", dest="exclude", action="append", metavar="HOSTS",
                   help="hosts to leave out")
    p.add_argument("-p", "--probes", action="append", metavar="NAMES",
                   help="only these probes (comma-separated names, see above)")
    p.add_argument("--skip", action="append", metavar="NAMES",
                   help="leave these probes out (comma-separated names)")
    p.add_argument("--accept-new", action="store_true",
                   help="record unknown SSH host keys (a changed key is always refused)")
    p.add_argument("--connect-timeout", type=positive_seconds, default=10.0, metavar="S",
                   help="give up connecting to a host over SSH after S seconds (default 10)")
    p.set_defaults(handler=run_health)


def parse_kinds(values: list[str] | None, option: str) -> set[Kind]:
    """Probe names of ``-p``/``--skip`` (comma-separated, repeatable) as kinds.

    Raises:
        UserError: an unknown name (the message lists the known ones).
    """
    from tui.core.health.model import Kind

    known = {k.value: k for k in Kind}
    kinds = set()
    for value in values or []:
        for name in filter(None, (n.strip() for n in value.split(","))):
            if name not in known:
                raise UserError(f"{option} {name!r} is not a probe; the probes are "
                                f"{', '.join(known)}.")
            kinds.add(known[name])
    return kinds


def run_health(args: argparse.Namespace) -> int:
    """Handler of ``hardway health``."""
    from tui.core.health.catalog import ALL_KINDS, Credentials, ProbeOptions
    from tui.core.hostset import select
    from tui.core.inventory.load import load_inventory
    from tui.core.inventory.locate import locate_inventory

    path = locate_inventory(getattr(args, "inventory", None))
    inventory = load_inventory(path)
    pki = args.pki if args.pki is not None else path.parent / "pki"
    credentials = Credentials.from_pki(Path(pki))
    only = parse_kinds(args.probes, "-p")
    kinds = frozenset((only or set(ALL_KINDS)) - parse_kinds(args.skip, "--skip"))
    if not kinds:
        raise UserError("-p/--skip left no probe to run.")
    if args.include or args.exclude:
        hosts = select(inventory, args.include or ["@controllers"], args.exclude)
        if not hosts:
            raise UserError(f"-w/-x selected no hosts of {inventory.path}; hosts there: "
                            f"{', '.join(h.name for h in inventory.hosts)}.")
    else:
        hosts = [h.name for h in inventory.controllers]
    options = ProbeOptions(kinds=kinds, hosts=tuple(hosts), timeout=args.timeout)
    printer = _Printer(sys.stdout, json_output=args.json, verbose=args.verbose,
                       watch=args.watch)
    last: list[int] = [2]
    try:
        asyncio.run(_main(args, inventory, credentials, options, printer, last))
    except KeyboardInterrupt:
        if not args.watch:
            raise
    return last[0]


async def _main(args: argparse.Namespace, inventory: Any, credentials: Any, options: Any,
                printer: _Printer, last: list[int]) -> None:
    from tui.commands.session import open_workbench
    from tui.core.health.poller import RoundFinished, StateChanged
    from tui.core.health.session import HealthSession

    workbench = open_workbench(inventory, args)
    fleet = workbench.fleet
    try:
        session = HealthSession.open(inventory, fleet, credentials, options,
                                     interval=args.interval, rise=args.rise, fall=args.fall)
    except BaseException:
        await workbench.close()
        raise
    changes: list[StateChanged] = []

    def on_event(event: object) -> None:
        if isinstance(event, StateChanged):
            changes.append(event)
        elif isinstance(event, RoundFinished):
            last[0] = event.report.verdict.exit_code
            printer.round(event.report, list(changes))
            changes.clear()

    session.poller.subscribe(on_event)
    try:
        if args.watch:
            await session.poller.run(rounds=args.rounds)
        else:
            await session.poller.run_round(wait_all=True)
    finally:
        await session.close()
        await workbench.close()


class _Printer:
    """Prints each round as a table or JSON."""

    def __init__(self, out: TextIO, *, json_output: bool, verbose: bool, watch: bool) -> None:
        self.out = out
        self.json = json_output
        self.verbose = verbose
        self.watch = watch
        self.tty = out.isatty()
        self.colour = self.tty and not os.environ.get("NO_COLOR") and not json_output

    def round(self, report: RoundReport, changes: list[StateChanged]) -> None:
        """Print one round and the transitions since the previous one (after the first
        round, whose transitions are only the starting states)."""
        from tui.core.health.report import render_text, to_json

        changes = changes if report.round > 1 else []
        if self.json:
            data = to_json(report, verbose=self.verbose)
            data["transitions"] = [{"key": c.key, "at": c.transition.at,
                                    "from": c.transition.before.value,
                                    "to": c.transition.after.value,
                                    "reason": c.transition.reason} for c in changes]
            text = json.dumps(data, default=str, indent=None if self.watch else 2)
            self.out.write(text + "\n")
        else:
            if self.watch and self.tty:
                self.out.write("\x1b[H\x1b[2J")
            self.out.write(render_text(report, colour=self.colour))
            for change in changes:
                t = change.transition
                at = time.strftime("%H:%M:%S", time.localtime(t.at))
                self.out.write(f"  {at} {change.row} {change.kind.value} "
                               f"{t.before.value.upper()} -> {t.after.value.upper()}: "
                               f"{t.reason}\n")
            if self.verbose:
                for cell in report.cells:
                    if cell.outcome is not None:
                        self.out.write(f"\n== {cell.row} {cell.kind.value} "
                                       f"({cell.target})\n{cell.outcome.verbose.rstrip()}\n")
            if self.watch:
                self.out.write("\n")
        self.out.flush()
