"""`hardway run`: run one command on many hosts at once, clush style."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tui.commands.argtypes import positive_int, positive_seconds
from tui.core.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tui.core.inventory.model import Inventory

RUN_HELP = """\
Run one shell command on many hosts of the inventory at once, over one SSH
connection per host. Each command sees HOST_NAME, INTERNAL_IP, ETCD_NAME and the
host's vars in its environment; {name}, {ip} and {VAR} in the command are replaced
per host before it is sent.

Hosts (-w, -x; repeatable, comma-separated):
  controller-0              one host
  controller-[0-2]          a host set: controller-0, controller-1, controller-2
  controller-[0,2],worker-1 a list of sets and names
  @controllers @workers     the inventory's groups; @all is every host (the default)

Output:
  (default)  live, one line at a time, prefixed with the host name
  -b         gathered: hosts with identical output and exit code in one block
  --diff     gathered, plus each minority output as a diff against the majority
  --json     one JSON object per host per line (host, status, signal, timed_out,
             duration, stdout, stderr, error), printed as each host finishes

A summary of failed hosts goes to stderr. The exit status is the largest remote exit
code; 124 when a command timed out (unless a host exited with more); 255 when a host
could not be reached.

examples:
  hardway run -i /tmp/lab/inventory.toml -b -- 'echo $ETCD_NAME; uname -s'
  hardway run -w @controllers --diff -- cat /etc/etcd/etcd.env
  hardway run -w 'controller-[0-1]' -x controller-1 -- systemctl is-active etcd
  hardway run -w @all -x @workers --timeout 10 -- 'curl -sk https://{ip}:6443/healthz'
  hardway run --json -- 'sha256sum /var/lib/kubernetes/ca.pem' | jq -r .stdout
  hardway run --sudo -w worker-1 -- systemctl restart kubelet
"""


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add the ``run`` subcommand."""
    run = sub.add_parser(
        "run",
        usage="%(prog)s [-i FILE] [-w HOSTS] [-x HOSTS] [--timeout S] [-b | --diff | --json]\n"
              "       [--sudo] [--accept-new] [--fanout N] [--connect-timeout S] "
              "[--audit FILE] -- CMD",
        help="run a command on many hosts at once (clush style)",
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("-i", "--inventory", metavar="FILE", default=argparse.SUPPRESS,
                     help="inventory TOML (default: ./hardway.toml, then "
                          "$XDG_CONFIG_HOME/hardway/inventory.toml)")
    run.add_argument("-w", dest="include", action="append", metavar="HOSTS",
                     help="hosts to run on: names, host sets, @groups (default @all)")
    run.add_argument("-x", dest="exclude", action="append", metavar="HOSTS",
                     help="hosts to leave out: names, host sets, @groups")
    run.add_argument("--timeout", type=positive_seconds, metavar="S",
                     help="kill the command on a host after S seconds (default: no limit)")
    run.add_argument("-b", "--gather", action="store_true",
                     help="gather identical outputs with the same exit code into blocks")
    run.add_argument("--diff", action="store_true",
                     help="gather, then show each minority output as a diff against the "
                          "majority")
    run.add_argument("--json", action="store_true",
                     help="print one JSON object per host per line")
    run.add_argument("--accept-new", action="store_true", default=argparse.SUPPRESS,
                     help="record unknown SSH host keys after showing their fingerprint "
                          "(a changed key is always refused)")
    run.add_argument("--fanout", type=positive_int, default=64, metavar="N",
                     help="connect to at most N hosts at a time (default 64)")
    run.add_argument("--connect-timeout", type=positive_seconds, default=10.0, metavar="S",
                     help="give up connecting to a host after S seconds (default 10)")
    run.add_argument("--sudo", action="store_true",
                     help="run the command with sudo on every host")
    run.add_argument("--audit", metavar="FILE",
                     help="append the audit record (JSON lines) to FILE instead of the "
                          "default in $XDG_STATE_HOME/hardway/")
    run.add_argument("command", nargs="+", metavar="CMD",
                     help="the shell command (put it after --)")
    run.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Load the inventory, select the hosts, run the command, print, return the status."""
    from tui.core.inventory.gate import require_runnable
    from tui.core.inventory.load import load_inventory
    from tui.core.inventory.locate import locate_inventory

    if args.json and (args.gather or args.diff):
        raise UserError("run: --json cannot be combined with -b or --diff; "
                        "choose one output format.")
    command = " ".join(args.command).strip()
    if not command:
        raise UserError("run: the command after -- is empty; give the shell "
                        "command to run, e.g. `hardway run -- uptime`.")
    path = locate_inventory(getattr(args, "inventory", None))
    inventory = load_inventory(path)
    require_runnable(inventory, "run")

    from tui.core.hostset import select

    names = select(inventory, args.include, args.exclude)
    if not names:
        raise UserError(f"run: -w/-x selected no hosts of {path}; check the "
                        "names and @groups (hosts there: "
                        f"{', '.join(h.name for h in inventory.hosts) or 'none'}).")
    options = RunOptions(
        command=command,
        timeout=args.timeout,
        sudo=args.sudo,
        mode="json" if args.json else "diff" if args.diff else "gather" if args.gather
        else "live",
        fanout=args.fanout,
        connect_timeout=args.connect_timeout,
        accept_new=bool(getattr(args, "accept_new", False)),
        audit=Path(args.audit) if args.audit else None,
    )
    from tui.core.interrupt import run_interruptible

    return run_interruptible(execute(inventory, names, options, sys.stdout, sys.stderr))


@dataclass(frozen=True)
class RunOptions:
    """What to run and how to show it (everything but the inventory and the hosts).

    Attributes:
        command: the shell command, before per-host substitution.
        timeout: per-host command timeout in seconds (None: no limit).
        sudo: run the command with sudo.
        mode: ``live``, ``gather`` (-b), ``diff`` or ``json``.
        fanout: at most this many connections are opened at a time.
        connect_timeout: seconds before giving up connecting to one host.
        accept_new: record unknown host keys (a changed key is still refused).
        audit: audit log file (None: the default under $XDG_STATE_HOME).
    """

    command: str
    timeout: float | None = None
    sudo: bool = False
    mode: str = "live"
    fanout: int = 64
    connect_timeout: float = 10.0
    accept_new: bool = False
    audit: Path | None = None


async def execute(
    inventory: Inventory, names: list[str], options: RunOptions, out: TextIO, err: TextIO
) -> int:
    """Run ``options.command`` on ``names`` and print the result to ``out``/``err``.

    Returns:
        The exit status: see :func:`tui.core.gather.exit_status`.
    """
    from tui.core.gather import (
        exit_status,
        failures,
        gather,
        render_blocks,
        render_diff,
        render_failures,
    )
    from tui.core.runreport import LivePrinter, RunRecorder

    colour = _wants_colour(out)
    recorder = RunRecorder(names)
    live = LivePrinter(out, err, names, colour=colour) if options.mode == "live" else None
    from tui.core.workbench import Workbench

    workbench = Workbench(
        inventory,
        host_keys="accept-new" if options.accept_new else "strict",
        notify=_printer(err),
        audit_path=options.audit,
        fanout=options.fanout,
        connect_timeout=options.connect_timeout,
    )
    async with workbench, workbench.fleet.stream(
            names, options.command, timeout=options.timeout, sudo=options.sudo) as stream:
        async for event in stream:
            ended = recorder.feed(event)
            if live is not None:
                live.feed(event)
            if ended is not None and options.mode == "json":
                out.write(recorder.json_line(ended) + "\n")
                out.flush()
    if live is not None:
        live.flush()
    outcomes = recorder.outcomes()
    if options.mode in ("gather", "diff"):
        blocks = gather(outcomes, options.timeout)
        render = render_diff if options.mode == "diff" else render_blocks
        out.write(render(blocks, colour=colour))
        out.flush()
    summary = render_failures(failures(outcomes, options.timeout))
    if summary:
        err.write(summary)
        err.flush()
    return exit_status(outcomes)


def _printer(err: TextIO) -> Callable[[str], None]:
    """Where ``--accept-new`` reports each key it records: ``hardway: ...`` on stderr."""

    def notify(message: str) -> None:
        err.write(f"hardway: {message}\n")
        err.flush()

    return notify


def _wants_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


