"""`hardway vip move NEW_VIP`: move the API VIP as one previewed, verified plan."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tui.commands.argtypes import positive_seconds
from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.core.lb.move import MovePlan, VipMoves
    from tui.core.plan import PlanEvent

MOVE_HELP = """\
Move the Kubernetes API's virtual IP to NEW_VIP without an outage and without the
seed's forgotten step (the certificate's SANs). First the new address is linted: it
must lie inside networks.control_plane_services, outside the node, pod and service
blocks, and be used by nothing (a host, a DNS record of the zone, an ipfw rule). Then,
each step previewed (the exact commands, file diffs and DNS UPDATE message), journaled
before it changes anything, and verified:

   1. aliases        NEW_VIP/32 on lo of every controller (and its boot unit), beside
                     the old one
   2. rules          the hypervisor's spare ipfw set gets the old VIP's rules plus the
                     new VIP's (disabled: traffic does not see it yet)
   3. certificate    kubernetes.pem reissued by the cluster CA with NEW_VIP (the old
                     VIP kept while it is still served), pushed controller by
                     controller with the health-gated restart of `certs push`
                     (skipped when every controller already serves one with both VIPs)
   4. switch         `ipfw set swap`: both VIPs are served
   5. dns            NEW_VIP added to the API name ([api] hostname), a conditional
                     RFC 2136 update signed with the inventory's TSIG key
   6. verify         through NEW_VIP: TLS verified against ca.pem, /version, /healthz
                     on several new connections, and /healthz by the API name
   7. remove-rules   the old VIP's rules removed (atomic swap again)
   8. remove-aliases the old VIP off every controller's lo
   9. remove-dns     the old VIP removed from the API name (conditional update)
  10. inventory      [api] vip rewritten in the inventory (a diff, then an atomic write)

The DNS name gets the new address only once the new VIP answers, so no client is ever
sent to an address that does not serve yet.

A failure stops the plan at once: the report says which steps changed something and
which did not. Every change is recorded before it is made in PKI/vip-move/journal.json
(with the previous kubernetes.pem, its key and the inventory's text beside it), so
`hardway vip move --rollback` undoes the changed steps in reverse order -- ipfw sets,
DNS values (conditional on what the move left), the certificate (pushed back with the
same health gate), aliases and the inventory -- after a failure or after a finished
move. A move that is neither finished nor rolled back blocks the next one.

On a terminal it asks before changing anything; --yes answers for scripts (it refuses
to run unattended without it); --dry-run prints the plan and changes nothing.

exit status: 0 moved (or rolled back), 1 a step failed (see the report), 2 could not
start (the new VIP refused, the inventory or the cluster not ready).

examples:
  hardway vip move 10.50.0.1 -i /tmp/lab/inventory.toml --dry-run
  hardway vip move 10.50.0.1 -i hardway.toml --yes
  hardway vip move 10.50.0.1 -i hardway.toml --json --yes > move.json
  hardway vip move --rollback -i hardway.toml --yes
"""


def register_move(actions: Any) -> None:
    """Add ``vip move`` to the ``vip`` actions."""
    move = actions.add_parser("move", help="move the API VIP: lint, DNS, aliases, rules, "
                                           "certificate, verify, remove the old one",
                              description=MOVE_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    move.add_argument("new_vip", nargs="?", metavar="NEW_VIP",
                      help="the new VIP, inside networks.control_plane_services")
    move.add_argument("-i", "--inventory", metavar="FILE", default=argparse.SUPPRESS,
                      help="inventory TOML (default: ./hardway.toml, then "
                           "$XDG_CONFIG_HOME/hardway/inventory.toml)")
    move.add_argument("--dry-run", action="store_true",
                      help="print the plan with every step's preview; change nothing")
    move.add_argument("--json", action="store_true",
                      help="print the plan (--dry-run) or the result as JSON")
    move.add_argument("--yes", action="store_true",
                      help="do not ask for confirmation (needed when not on a terminal)")
    move.add_argument("--rollback", action="store_true",
                      help="undo the last move's changes, last first (from its journal)")
    move.add_argument("--pki", metavar="DIR",
                      help="the PKI directory (default: pki/ beside the inventory); the "
                           "journal lives in DIR/vip-move/")
    move.add_argument("--set", dest="active_set", type=int, default=10, metavar="N",
                      help="the VIP's ipfw set (default 10)")
    move.add_argument("--spare-set", type=int, default=11, metavar="N",
                      help="the disabled set used to build and to roll back (default 11)")
    move.add_argument("--first-rule", type=int, default=1000, metavar="N",
                      help="number of the VIP's first rule (default 1000)")
    move.add_argument("--ipfw", default="ipfw", metavar="CMD",
                      help="the ipfw command on the hypervisor (e.g. 'sudo /sbin/ipfw')")
    move.add_argument("--health-timeout", type=positive_seconds, default=60.0, metavar="S",
                      help="seconds a restarted service gets to pass its probe (default 60)")
    move.add_argument("--accept-new", action="store_true", default=argparse.SUPPRESS,
                      help="record an unknown SSH host key (a changed key is refused)")
    move.add_argument("--connect-timeout", type=positive_seconds, default=10.0, metavar="S",
                      help="give up connecting after S seconds (default 10)")
    move.add_argument("--audit", metavar="FILE",
                      help="append the audit record to FILE (default in "
                           "$XDG_STATE_HOME/hardway/)")
    move.set_defaults(handler=run_move)


def run_move(args: argparse.Namespace) -> int:
    """Handler of ``vip move`` (and ``--rollback``)."""
    from tui.core.inventory.load import load_inventory
    from tui.core.inventory.locate import locate_inventory

    if not args.rollback and not args.new_vip:
        raise UserError("vip move needs the new VIP (e.g. `hardway vip move 10.50.0.1`), or "
                        "--rollback to undo the last move.")
    if args.rollback and args.new_vip:
        raise UserError(f"vip move --rollback takes no NEW_VIP ({args.new_vip}): it undoes "
                        "the last move recorded in the journal.")
    inventory = load_inventory(locate_inventory(getattr(args, "inventory", None)))
    return asyncio.run(_move(inventory, args))


async def _move(inventory: Any, args: argparse.Namespace) -> int:
    from tui.commands.session import open_workbench
    from tui.core.lb.move import VipMoves
    from tui.core.pki.services import RolloutOptions

    out, err = sys.stdout, sys.stderr
    pki = Path(args.pki) if args.pki else None
    async with open_workbench(inventory, args, err=err, pki=pki) as workbench:
        engine = workbench.engine("vip")
        assert isinstance(engine, VipMoves)
        engine.configure(ipfw=args.ipfw, active_set=args.active_set,
                         spare_set=args.spare_set, first_rule=args.first_rule,
                         options=RolloutOptions(health_timeout=args.health_timeout))
        return await _carry_out(engine, args, out)


async def _carry_out(engine: VipMoves, args: argparse.Namespace, out: TextIO) -> int:
    from tui.core.lb.move_view import plan_json, plan_lines, result_json, result_lines

    plan = await (engine.prepare_rollback() if args.rollback else engine.prepare(args.new_vip))
    if args.json and args.dry_run:
        out.write(json.dumps(plan_json(plan), indent=2) + "\n")
        return 0
    if not args.json:
        out.write("\n".join(plan_lines(plan)) + "\n")
    if args.dry_run:
        out.write("\nDry run: nothing was changed.\n")
        return 0
    if not args.yes:
        await _confirm(plan)
    if not args.json:
        out.write("\n")
    result = await plan.run(None if args.json else _printer(out))
    if args.json:
        out.write(json.dumps(result_json(result), indent=2) + "\n")
    else:
        out.write("\n" + "\n".join(result_lines(result)) + "\n")
    return 0 if result.ok else 1


def _printer(out: TextIO) -> Any:
    colour = not os.environ.get("NO_COLOR") and out.isatty()
    paint = {"done": "32", "failed": "1;31", "skipped": "2", "running": "0"}

    def show(event: PlanEvent) -> None:
        if event.state not in paint or (event.state == "running" and not event.detail):
            return
        mark = event.state if event.state != "running" else "...."
        text = f"  [{mark}] {event.step} {event.host}: {event.detail}".rstrip(": ")
        out.write((f"\x1b[{paint[event.state]}m{text}\x1b[0m" if colour else text) + "\n")
        out.flush()
    return show


async def _confirm(plan: MovePlan) -> None:
    from tui.core.lb.move import MoveAction

    if not sys.stdin.isatty():
        raise UserError("vip move changes the controllers, the hypervisor's firewall, the "
                        "certificates and DNS; it asks for confirmation on a terminal, and "
                        "needs --yes when run without one (preview it first with --dry-run).")
    what = (f"Move the API VIP from {plan.old_vip} to {plan.new_vip}"
            if plan.action is MoveAction.MOVE else
            f"Roll back the move from {plan.old_vip} to {plan.new_vip}")
    answer = await asyncio.to_thread(input, f"\n{what}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError("Nothing was changed (not confirmed).", exit_code=1)


__all__ = ["MOVE_HELP", "register_move", "run_move"]
