"""`hardway [-i INVENTORY]` opens the app; `hardway demo` opens it on the embedded lab."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

DEMO_HELP = """\
Start the embedded lab and open hardway on it: three controllers confined in their own
namespaces on a private network behind the hypervisor `nucklehead` (see `hardway lab up
--help`), no VMs needed, nothing typed there touches this machine. It starts where KTHW
doc 07 begins (--scenario certs-pushed): each controller's home holds the certificates,
kubeconfigs and the etcd release tarball, so you can bootstrap etcd by hand in the
console. Everything is removed on exit unless --dir is given. At most 100 hosts.

examples:
  hardway demo
  hardway demo --controllers 5 --workers 2
  hardway demo --scenario seed-cert-bug   # the seed's certificate problems, to diagnose and fix
  hardway demo --isolation none           # unconfined hosts on loopback (no namespaces)
"""


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add the top-level app options and the `demo` subcommand."""
    add_options(parser)
    demo = sub.add_parser("demo", help="open hardway on the embedded lab",
                          description=DEMO_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--controllers", type=int, default=3, metavar="N",
                      help="number of lab controllers (default 3)")
    demo.add_argument("--workers", type=int, default=0, metavar="N",
                      help="number of lab workers (default 0)")
    demo.add_argument("--dir", metavar="DIR",
                      help="keep the lab's files in DIR instead of a temporary directory")
    demo.add_argument("--network", metavar="A.B.C", default=None,
                      help="first three octets of the loopback /24 the lab listens on "
                           "(default: 127.0.10, or the next free one when another lab "
                           "runs there)")
    from tui.commands.lab import add_scenario_options

    # SUPPRESS: `hardway --no-confirm demo` keeps working
    demo.add_argument("--no-confirm", action="store_true", default=argparse.SUPPRESS,
                      help=NO_CONFIRM)
    add_scenario_options(demo, default="certs-pushed")
    demo.set_defaults(handler=run_demo)


NO_CONFIRM = ("quit at once on ctrl+q even with live SSH sessions (by default hardway "
              "asks once: q or Enter quits, Esc stays)")


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the top-level app options (``hardway -i FILE`` opens the app)."""
    parser.add_argument("-i", "--inventory", metavar="FILE",
                        help="inventory TOML (default: ./hardway.toml, then "
                             "$XDG_CONFIG_HOME/hardway/inventory.toml)")
    parser.add_argument("--accept-new", action="store_true",
                        help="record unknown SSH host keys after showing their fingerprint "
                             "(a changed key is always refused)")
    parser.add_argument("--log-level", metavar="LEVEL", type=str.upper, default=None,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="what goes to the log file $XDG_STATE_HOME/hardway/hardway.log "
                             "(DEBUG, INFO, WARNING, ERROR; the app logs INFO by default, "
                             "other commands only when this is given)")
    parser.add_argument("--no-confirm", action="store_true", help=NO_CONFIRM)


def _launch(inventory_path: Path, *, accept_new: bool, log_level: str | None,
            lab_note: str | None = None, confirm_quit: bool = True) -> int:
    """Open the app on one workbench, closed (every session) when the app ends."""
    from tui.core import startup_gc

    startup_gc.hold_until_first_frame()  # the app turns them back on at its first frame
    try:
        return _open(inventory_path, accept_new=accept_new, log_level=log_level,
                     lab_note=lab_note, confirm_quit=confirm_quit)
    finally:
        startup_gc.release()  # the app ended (or never drew): collections as usual


def _open(inventory_path: Path, *, accept_new: bool, log_level: str | None,
          lab_note: str | None, confirm_quit: bool) -> int:
    """:func:`_launch`'s work: load and check the inventory, run the app on a workbench."""
    import asyncio
    import functools
    import signal

    from tui.core import logfile
    from tui.core.inventory.gate import require_runnable
    from tui.core.inventory.load import load_inventory
    from tui.core.workbench import Workbench

    inventory = load_inventory(inventory_path)
    placement = [f"{f.message.split(': ')[0]}: ctrl+g v (DNS / VIP) moves it"
                 for f in require_runnable(inventory, "the app", allow=("api.vip",))
                 if f.severity == "error"]
    logfile.configure(log_level or logfile.DEFAULT_LEVEL)

    async def run() -> int:
        async with Workbench(inventory,
                             host_keys="accept-new" if accept_new else "ask") as workbench:
            workbench.warm_relay()  # its interpreter starts while this one imports Textual
            await workbench.relay_spawned()
            from tui.app import create_app

            app = create_app(workbench, lab_note=lab_note, confirm_quit=confirm_quit,
                             notes=placement)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                # a closed terminal or a kill ends the app as ctrl+q does: sessions closed,
                # and the demo's temporary directory (the lab's CA key) removed after it
                loop.add_signal_handler(sig, functools.partial(app.exit, None, 128 + sig))
            result = await app.run_async()
        return int(result or app.return_code or 0)

    return asyncio.run(run())


def run_app(args: argparse.Namespace) -> int:
    """Open the app on the inventory given with -i (or found by default)."""
    from tui.core.inventory.locate import locate_inventory

    return _launch(locate_inventory(args.inventory), accept_new=args.accept_new,
                   log_level=args.log_level, confirm_quit=not args.no_confirm)


DEMO_PORT = 2222
"""The SSH port of the demo's lab hosts (the lab's default)."""


def free_network(first: int = 10, last: int = 250) -> str:
    """The first loopback /24 ``127.0.N`` (from ``first``) where no lab listens yet: its
    jump address ``.1`` and first controller ``.10`` are free on :data:`DEMO_PORT`."""
    import socket

    for n in range(first, last + 1):
        network = f"127.0.{n}"
        free = True
        for host in (f"{network}.1", f"{network}.10"):
            with socket.socket() as probe:
                try:
                    probe.bind((host, DEMO_PORT))
                except OSError:
                    free = False
                    break
        if free:
            return network
    return f"127.0.{first}"  # every one busy: the lab says which address is in use


def run_demo(args: argparse.Namespace) -> int:
    """Start the lab in a background thread, then open the app on its inventory."""
    from tui.lab.lab import LabRunner

    if args.controllers < 1:
        print("hardway demo: --controllers must be at least 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hardway-demo-") as tmp:
        directory = Path(args.dir) if args.dir else Path(tmp) / "lab"
        network = args.network or free_network()
        with LabRunner(directory, controllers=args.controllers, workers=args.workers,
                       network=network, port=DEMO_PORT,
                       scenario=args.scenario, services=args.services,
                       isolation=args.isolation) as runner:
            note = None if runner.lab.confined else " ".join(runner.lab.notes) or \
                "The lab hosts are not isolated (--isolation none): they share this " \
                "machine's network and files."
            return _launch(runner.lab.inventory_path, accept_new=False,
                           log_level=args.log_level, lab_note=note,
                           confirm_quit=not args.no_confirm)
