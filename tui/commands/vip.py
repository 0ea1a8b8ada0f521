"""`hardway vip rules|apply`: the API VIP's ipfw rule set on the hypervisor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tui.commands.argtypes import positive_seconds
from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory
    from tui.core.lb.hypervisor import ApplyResult, HypervisorIpfw
    from tui.core.lb.ipfw import Backend, RuleDiff, VipLayout
    from tui.core.lb.rules import IpfwRule

VIP_HELP = """\
The API's virtual IP as the hypervisor load-balances it with ipfw: one `fwd` rule per
controller, probabilistic round robin (prob 1/n, 1/(n-1), ..., the last unconditional)
with keep-state, in a numbered set (default 10). Changes are atomic: the new rules are
built in a disabled spare set (default 11), then `ipfw set swap` exchanges the two; the
previous rules stay in the spare set for --rollback. Each controller must also carry
the VIP on lo (ipfw fwd does not rewrite the destination).

  rules   the rules the inventory wants, the rules the hypervisor has (`ipfw -S list`
          over SSH) and the difference (exit 1 when they differ)
  apply   preview, confirm, swap in the wanted rules, read them back
  guard   health checks for the round robin: take a controller out of the rules when
          its /readyz fails, put it back when it answers again
  move    move the VIP to a new address as one plan (aliases, rules, certificate,
          DNS, verify, remove the old one, inventory); --rollback undoes it

examples:
  hardway vip rules -i config/something.local.toml
  hardway vip apply -i hardway.toml --dry-run
  hardway vip apply -i hardway.toml --yes
  hardway vip apply -i hardway.toml --rollback --yes
  hardway vip move 10.50.0.1 -i hardway.toml --dry-run
"""

RULES_HELP = """\
Show the VIP's wanted ipfw rules (from the inventory: [api] vip and port, every
controller), the rules the hypervisor has (`ipfw -S list`, read over SSH), and the
difference rule by rule: missing, different (another backend, probability or port),
extra. Rules of the spare set (the rollback) and rules for the VIP elsewhere are listed
too.

exit status: 0 in sync, 1 different, 2 could not read the hypervisor.

examples:
  hardway vip rules -i /tmp/lab/inventory.toml
  hardway vip rules -i hardway.toml --json | jq '.diff[]'
  hardway vip rules -i hardway.toml --ipfw 'sudo /sbin/ipfw'
"""

APPLY_HELP = """\
Replace the VIP's rules atomically on the hypervisor:

  1. ipfw set disable SPARE        the spare set never sees traffic
  2. ipfw -q delete set SPARE      drop the rules kept from the change before last
  3. ipfw set enable ACTIVE
  4. ipfw -q add N set SPARE ...   one fwd rule per controller
  5. ipfw set swap ACTIVE SPARE    the switch: new connections follow the new rules at
                                   once; established flows keep their states

then read the rules back and check they are the wanted ones. --rollback swaps the
previous rules back in. On a terminal apply asks first; --yes answers for scripts (it
refuses to run unattended without it); --dry-run prints the commands and the diff.

exit status: 0 applied and in sync, 1 a command failed or the read-back differs,
2 could not start.

examples:
  hardway vip apply -i /tmp/lab/inventory.toml --dry-run
  hardway vip apply -i hardway.toml --yes
  hardway vip apply -i hardway.toml --vip 10.50.0.20 --dry-run
  hardway vip apply -i hardway.toml --without controller-1 --yes   # while it is down
  hardway vip apply -i hardway.toml --rollback --yes
"""


GUARD_HELP = """\
Health checks for the VIP's ipfw round robin, which has none: probe every controller's
kube-apiserver /readyz directly (TLS verified against the cluster CA, through the jump
host when the inventory names one) and keep the VIP's rules to the controllers that
answer. A controller that fails FALL probes in a row is taken out of the rules; one that
passes RISE in a row is put back; each change is the atomic swap of `vip apply` (the
previous rules kept in the spare set) with the probabilities recomputed so the remaining
controllers share the traffic evenly. The last controller is never removed: with every
controller down the guard keeps the rules and says so. A swap the hypervisor refuses
leaves the old rules in force; the guard says why and tries again on the next change.
Every action is printed with its time and reason and recorded in the audit log.

It runs in the foreground until Ctrl-C (or SIGTERM); on a terminal its last line is a
live status line (each controller's /readyz state and latency, rise/fall counters, who
the VIP's rules send to, the round), redrawn every round. --dry-run prints the swaps it
would make and changes nothing. Defaults: a probe every 1 s, rise 2, fall 2: a
controller that stops answering is out of the rules about 2 s later.

exit status: 0 stopped by a signal or after --rounds, 2 could not start.

examples:
  hardway vip guard -i /tmp/lab/inventory.toml
  hardway vip guard -i hardway.toml --dry-run
  hardway vip guard -i hardway.toml --interval 2 --rise 2 --fall 3   # HAProxy's defaults
  hardway vip guard -i hardway.toml --json | tee guard.jsonl
"""


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add ``vip`` and its actions to the top-level parser."""
    vip = sub.add_parser("vip", help="the API VIP's ipfw rules on the hypervisor",
                         description=VIP_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    vip.set_defaults(handler=lambda _args: _usage(vip))
    actions = vip.add_subparsers(dest="vip_command", metavar="ACTION")

    def action(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text, description=description,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("-i", "--inventory", metavar="FILE", default=argparse.SUPPRESS,
                       help="inventory TOML (default: ./hardway.toml, then "
                            "$XDG_CONFIG_HOME/hardway/inventory.toml)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.add_argument("--vip", metavar="ADDRESS",
                       help="the VIP (default: [api] vip of the inventory)")
        p.add_argument("--set", dest="active_set", type=int, default=10, metavar="N",
                       help="the VIP's ipfw set (default 10)")
        p.add_argument("--spare-set", type=int, default=11, metavar="N",
                       help="the disabled set used to build and to roll back (default 11)")
        p.add_argument("--first-rule", type=int, default=1000, metavar="N",
                       help="number of the first rule; the next follow every 10 "
                            "(default 1000)")
        p.add_argument("-x", "--without", dest="without", action="append", default=[],
                       metavar="CONTROLLER",
                       help="leave this controller out of the backends (repeatable), e.g. "
                            "while it is down")
        p.add_argument("--ipfw", default="ipfw", metavar="CMD",
                       help="the ipfw command on the hypervisor (e.g. 'sudo /sbin/ipfw')")
        p.add_argument("--accept-new", action="store_true", default=argparse.SUPPRESS,
                       help="record an unknown SSH host key (a changed key is refused)")
        p.add_argument("--connect-timeout", type=positive_seconds, default=10.0,
                       metavar="S", help="give up connecting after S seconds (default 10)")
        p.add_argument("--audit", metavar="FILE",
                       help="append the audit record to FILE (default in "
                            "$XDG_STATE_HOME/hardway/)")
        return p

    rules = action("rules", "wanted vs actual rules and their difference", RULES_HELP)
    rules.set_defaults(handler=run_rules)
    apply = action("apply", "swap the wanted rules in atomically", APPLY_HELP)
    apply.add_argument("--dry-run", action="store_true",
                       help="print the commands and the diff; change nothing")
    apply.add_argument("--yes", action="store_true",
                       help="do not ask for confirmation (needed when not on a terminal)")
    apply.add_argument("--rollback", action="store_true",
                       help="swap the previous rules (kept in the spare set) back in")
    apply.set_defaults(handler=run_apply)
    guard = action("guard", "keep the rules to the controllers that answer /readyz",
                   GUARD_HELP)
    guard.add_argument("--dry-run", action="store_true",
                       help="print the swaps the guard would make; change nothing")
    guard.add_argument("--interval", type=positive_seconds, default=1.0, metavar="S",
                       help="seconds between probe rounds (default 1)")
    guard.add_argument("--rise", type=int, default=2, metavar="N",
                       help="passes in a row that put a controller back (default 2)")
    guard.add_argument("--fall", type=int, default=2, metavar="N",
                       help="failures in a row that take a controller out (default 2)")
    guard.add_argument("--timeout", type=positive_seconds, default=1.0, metavar="S",
                       help="seconds per probe (default 1)")
    guard.add_argument("--rounds", type=int, default=None, metavar="N",
                       help="stop after N probe rounds (default: run until stopped)")
    guard.add_argument("--pki", metavar="DIR",
                       help="the PKI directory holding ca.pem (default: pki/ beside the "
                            "inventory)")
    guard.add_argument("--local", action="store_true",
                       help="run on the hypervisor itself: ipfw runs here, the "
                            "controllers are dialled directly (what the service does)")
    from tui.commands.vip_guard import add_service_options

    add_service_options(guard)
    guard.set_defaults(handler=run_guard)
    from tui.commands.vip_move import register_move

    register_move(actions)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


@dataclasses.dataclass
class _Context:
    inventory: Inventory
    layout: VipLayout
    backends: list[Backend]
    hypervisor: str
    out: TextIO
    err: TextIO
    colour: bool


def _context(args: argparse.Namespace) -> _Context:
    from tui.core.inventory.load import load_inventory
    from tui.core.inventory.locate import locate_inventory
    from tui.core.lb.hypervisor import vip_backends, vip_layout

    inventory = load_inventory(locate_inventory(getattr(args, "inventory", None)))
    if inventory.hypervisor is None:
        raise UserError(f"{inventory.path}: there is no [hypervisor] section, so there is no "
                        f"ipfw to manage (add name, address and firewall = \"ipfw\").")
    layout = vip_layout(inventory, vip=args.vip, active_set=args.active_set,
                        spare_set=args.spare_set, first_rule=args.first_rule)
    colour = (not os.environ.get("NO_COLOR") and sys.stdout.isatty() and not args.json)
    backends = vip_backends(inventory)
    unknown = sorted(set(args.without) - {b.name for b in backends})
    if unknown:
        raise UserError(f"--without {', '.join(unknown)}: not a controller of "
                        f"{inventory.path} (controllers: "
                        f"{', '.join(b.name for b in backends)}).")
    backends = [b for b in backends if b.name not in args.without]
    if not backends:
        raise UserError("--without leaves the VIP no backend; keep at least one controller.")
    return _Context(inventory, layout, backends, inventory.hypervisor.name, sys.stdout,
                    sys.stderr, colour)


@contextlib.asynccontextmanager
async def _fleet(ctx: _Context, args: argparse.Namespace) -> AsyncIterator[Fleet]:
    """The workbench's fleet (strict host keys unless --accept-new, the audit log)."""
    from tui.commands.session import open_workbench

    pki = Path(args.pki) if getattr(args, "pki", None) else None
    async with open_workbench(ctx.inventory, args, err=ctx.err, pki=pki) as workbench:
        yield workbench.fleet


def _paint(ctx: _Context, text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if ctx.colour else text


def _rule_json(rule: IpfwRule) -> dict[str, Any]:
    data = dataclasses.asdict(rule)
    data["action"] = rule.action.value
    data["prob"] = rule.prob
    data["line"] = rule.line(show_sets=True)
    return data


def _diff_json(diff: RuleDiff) -> dict[str, Any]:
    return {"in_sync": diff.in_sync, "active_disabled": diff.active_disabled,
            "diff": [{"change": d.change.value, "number": d.number,
                      "wanted": d.wanted.line(show_sets=True) if d.wanted else None,
                      "actual": d.actual.line(show_sets=True) if d.actual else None}
                     for d in diff.deltas],
            "spare": [_rule_json(r) for r in diff.spare_rules],
            "other_rules_for_vip": [_rule_json(r) for r in diff.other_rules]}


def _write_diff(ctx: _Context, diff: RuleDiff) -> None:
    out = ctx.out
    if diff.active_disabled:
        out.write(_paint(ctx, f"  set {ctx.layout.active_set} is DISABLED on "
                              f"{ctx.hypervisor}: no connection to the VIP is forwarded\n",
                         "1;31"))
    for line in diff.lines():
        out.write("  " + _paint(ctx, line, "31" if line.startswith("-") else "32") + "\n")
    if diff.in_sync:
        out.write(_paint(ctx, "  in sync\n", "32"))
    if diff.spare_rules:
        out.write(f"\n  kept for rollback in set {ctx.layout.spare_set}:\n")
        for rule in diff.spare_rules:
            out.write(f"    {rule.line(show_sets=True)}\n")
    for rule in diff.other_rules:
        out.write(_paint(ctx, f"  note: another rule for the VIP: "
                              f"{rule.line(show_sets=True)}\n", "33"))


def run_rules(args: argparse.Namespace) -> int:
    """Handler of ``vip rules``."""
    ctx = _context(args)
    return asyncio.run(_rules(ctx, args))


def _hv(ctx: _Context, fleet: Fleet, args: argparse.Namespace, *,
        local: bool = False) -> HypervisorIpfw:
    from tui.core.lb.hypervisor import HypervisorIpfw, LocalIpfw

    kind = LocalIpfw if local else HypervisorIpfw
    return kind(fleet, ctx.hypervisor, ipfw=args.ipfw)


async def _rules(ctx: _Context, args: argparse.Namespace) -> int:
    from tui.core.lb.ipfw import wanted_rules

    wanted = wanted_rules(ctx.layout, ctx.backends)
    async with _fleet(ctx, args) as fleet:
        diff = await _hv(ctx, fleet, args).diff(ctx.layout, ctx.backends)
    if args.json:
        ctx.out.write(json.dumps({"hypervisor": ctx.hypervisor, "vip": ctx.layout.vip,
                                  "port": ctx.layout.port, "set": ctx.layout.active_set,
                                  "spare_set": ctx.layout.spare_set,
                                  "wanted": [_rule_json(r) for r in wanted],
                                  **_diff_json(diff)}, indent=2) + "\n")
        return 0 if diff.in_sync else 1
    ctx.out.write(f"VIP {ctx.layout.vip}:{ctx.layout.port} on {ctx.hypervisor} "
                  f"(ipfw set {ctx.layout.active_set}), {len(ctx.backends)} backends\n\n"
                  f"wanted:\n")
    for rule in wanted:
        ctx.out.write(f"  {rule.line(show_sets=True)}\n")
    ctx.out.write(f"\ndifference (- {ctx.hypervisor} has, + wanted):\n")
    _write_diff(ctx, diff)
    if not diff.in_sync:
        ctx.out.write(f"\nApply with `hardway vip apply -i {ctx.inventory.path}`.\n")
    return 0 if diff.in_sync else 1


def run_apply(args: argparse.Namespace) -> int:
    """Handler of ``vip apply`` (and ``--rollback``)."""
    ctx = _context(args)
    return asyncio.run(_apply(ctx, args))


async def _confirm(what: str) -> None:
    if not sys.stdin.isatty():
        raise UserError("vip apply changes the hypervisor's firewall; it asks for "
                        "confirmation on a terminal, and needs --yes when run without one "
                        "(preview it first with --dry-run).")
    answer = await asyncio.to_thread(input, f"{what}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError("Nothing was changed (not confirmed).", exit_code=1)


async def _apply(ctx: _Context, args: argparse.Namespace) -> int:
    from tui.core.lb.ipfw import rollback_commands, swap_commands

    commands = (rollback_commands(ctx.layout) if args.rollback
                else swap_commands(ctx.layout, ctx.backends))
    async with _fleet(ctx, args) as fleet:
        hv = _hv(ctx, fleet, args)
        diff = await hv.diff(ctx.layout, ctx.backends)
        lines = hv.commands(commands)
        if args.rollback and not diff.spare_rules:
            raise UserError(f"{ctx.hypervisor}: set {ctx.layout.spare_set} holds no rules, "
                            f"so there is nothing to roll back to.", exit_code=1)
        if args.dry_run or not args.json:
            _preview(ctx, args, diff, lines)
        if args.dry_run:
            return 0
        if not args.rollback and diff.in_sync and not args.json:
            ctx.out.write("The hypervisor already has the wanted rules; swapping anyway "
                          "refreshes them (and keeps the current ones for rollback).\n")
        if not args.yes:
            await _confirm("Roll back" if args.rollback else "Swap the new rules in")
        result = (await hv.rollback(ctx.layout) if args.rollback
                  else await hv.apply(ctx.layout, ctx.backends))
    return _report(ctx, args, result)


def _preview(ctx: _Context, args: argparse.Namespace, diff: RuleDiff,
             lines: list[str]) -> None:
    if args.json:
        ctx.out.write(json.dumps({"dry_run": True, "rollback": args.rollback,
                                  "hypervisor": ctx.hypervisor, "commands": lines,
                                  **_diff_json(diff)}, indent=2) + "\n")
        return
    ctx.out.write(f"VIP {ctx.layout.vip}:{ctx.layout.port} on {ctx.hypervisor}: "
                  f"difference now (- has, + wanted):\n")
    _write_diff(ctx, diff)
    ctx.out.write(f"\ncommands on {ctx.hypervisor}:\n")
    for line in lines:
        ctx.out.write(f"  {line}\n")
    if args.dry_run:
        ctx.out.write("\nDry run: nothing was changed.\n")


def _report(ctx: _Context, args: argparse.Namespace, result: ApplyResult) -> int:
    from tui.core.lb.hypervisor import ApplyOutcome

    if args.json:
        ctx.out.write(json.dumps({
            "ok": result.ok, "outcome": result.outcome.value,
            "ran": [dataclasses.asdict(r) for r in result.ran],
            "not_run": [" ".join(c.argv) for c in result.not_run],
            **(_diff_json(result.diff) if result.diff is not None else {})}, indent=2) + "\n")
        return 0 if result.ok else 1
    for ran in result.ran:
        mark = _paint(ctx, "ok", "32") if ran.ok else _paint(ctx, f"exit {ran.status}", "31")
        ctx.out.write(f"  [{mark}] {ran.command}\n")
        if not ran.ok and (ran.stderr or ran.stdout):
            ctx.out.write(f"        {(ran.stderr or ran.stdout).strip()}\n")
    if result.outcome is ApplyOutcome.FAILED:
        ctx.out.write(f"\nStopped: the last command failed on {ctx.hypervisor}; "
                      f"{len(result.not_run)} were not run. The VIP's active set was not "
                      f"swapped.\n")
        return 1
    if result.diff is not None and not result.diff.in_sync:
        ctx.out.write("\nApplied, but the rules read back differ from the wanted ones:\n")
        _write_diff(ctx, result.diff)
        return 1
    done = "Rolled back" if args.rollback else "Swapped"
    ctx.out.write(f"\n{done}: set {ctx.layout.active_set} on {ctx.hypervisor} serves "
                  f"{ctx.layout.vip}:{ctx.layout.port}; the previous rules are in set "
                  f"{ctx.layout.spare_set} (`hardway vip apply --rollback`).\n")
    return 0


def run_guard(args: argparse.Namespace) -> int:
    """Handler of ``vip guard``: run until a signal (or ``--rounds``)."""
    from tui.core.interrupt import run_interruptible

    ctx = _context(args)
    if args.rise < 1 or args.fall < 1:
        raise UserError(f"--rise and --fall must be at least 1, not {args.rise} and "
                        f"{args.fall}.")
    if args.without:
        raise UserError("vip guard decides the backends itself; drop --without.")
    from tui.core.interrupt import Interrupted

    if args.install or args.uninstall:
        from tui.commands.vip_guard import run_service

        return run_service(ctx, args)
    try:
        return run_interruptible(_guard(ctx, args))
    except (Interrupted, KeyboardInterrupt):
        print("hardway vip guard: stopped; the rules stay as they are.", file=ctx.err)
        return 0


async def _guard(ctx: _Context, args: argparse.Namespace) -> int:
    from tui.core.health.catalog import Credentials
    from tui.core.lb.guard import GuardEvent, GuardSettings, VipGuard

    pki = Path(args.pki) if args.pki else ctx.inventory.path.parent / "pki"
    credentials = Credentials.from_pki(pki)
    settings = GuardSettings(interval=args.interval, rise=args.rise, fall=args.fall,
                             timeout=args.timeout, dry_run=args.dry_run)

    from tui.commands.vip_guard import LiveLine

    live = LiveLine(ctx.out) if ctx.out.isatty() and not args.json else None

    def show(event: GuardEvent) -> None:
        if live is not None:
            live.clear()
        if args.json:
            ctx.out.write(json.dumps({"at": event.at, "action": event.action.value,
                                      "backends": list(event.backends),
                                      "reason": event.reason,
                                      "commands": list(event.commands)}) + "\n")
        else:
            loud = event.action.value in ("swap-failed", "kept-last", "backend-down")
            ctx.out.write(_paint(ctx, event.line(), "1;31" if loud else "0") + "\n")
            for command in event.commands:
                ctx.out.write(f"    {command}\n")
        ctx.out.flush()

    async with _fleet(ctx, args) as fleet:
        guard = VipGuard(ctx.inventory, fleet, credentials, settings,
                         hypervisor=_hv(ctx, fleet, args, local=args.local),
                         layout=ctx.layout)
        guard.subscribe(show)
        if live is not None:
            from tui.core.health.poller import RoundFinished

            guard.subscribe(lambda _event: live.draw(guard.status_line()))
            guard.session.poller.subscribe(
                lambda event: live.draw(guard.status_line())
                if isinstance(event, RoundFinished) else None)
        try:
            await guard.run(args.rounds)
        finally:
            if live is not None:
                live.clear()
    return 0

