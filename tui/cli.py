"""`hardway` command line: subcommands for headless work, and the app itself.

Each subcommand lives in ``tui/commands/<name>.py`` with ``register(subparsers)``;
its handler returns the process exit status.  User errors are raised as
:class:`tui.core.errors.UserError` and printed as one paragraph, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tui import __version__
from tui.core.errors import UserError

COMMANDS = ("app", "inventory", "run", "lab", "certs", "etcd", "health", "vip", "dns")

DESCRIPTION = """\
hardway keeps an SSH session to every controller of a hand-built Kubernetes cluster,
runs commands on all of them at once and checks the result.

Start with the embedded lab (no VMs needed):
  hardway demo                      open the app on a 3-controller lab
  hardway lab up --dir /tmp/lab     keep a lab running for other terminals
  hardway run -i /tmp/lab/inventory.toml -b -- 'echo $ETCD_NAME; uname -s'

On your own cluster:
  hardway inventory check config/something.local.toml
  hardway -i hardway.toml           open the app
"""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="hardway",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hardway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"tui.commands.{name}")
        module.register(sub, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hardway`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:  # no subcommand: open the app
        from tui.commands.app import run_app

        handler = run_app
    try:
        if getattr(args, "log_level", None):  # the app logs even without it
            from tui.core import logfile

            logfile.configure(args.log_level)
        return int(handler(args) or 0)
    except UserError as exc:
        print(f"hardway: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hardway: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hardway run ... | head`: stop quietly like other tools
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
