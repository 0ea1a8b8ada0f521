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
"""The modules of ``tui/commands`` that register subcommands (``app``: the app's options
and ``demo``)."""
SUBCOMMANDS = {"demo": "app", "inventory": "inventory", "run": "run", "lab": "lab",
               "certs": "certs", "etcd": "etcd", "health": "health", "vip": "vip",
               "dns": "dns"}
"""Subcommand -> the module registering it."""
VALUED = frozenset({"-i", "--inventory", "--log-level"})
"""Top-level options that take the next word as their value."""

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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered, or, for ``command`` (what
    :func:`wanted` found), the app's options and that subcommand alone ("" : none).

    Registering them all imports every command module (the lab's scenarios among them)
    and builds some thirty parsers: ~0.1 s that ``hardway`` alone, opening the app,
    would pay before its first frame.
    """
    parser = argparse.ArgumentParser(
        prog="hardway",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hardway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if command is None:
        names: tuple[str, ...] = COMMANDS
    else:
        module = SUBCOMMANDS.get(command, "app")
        names = ("app",) if module == "app" else ("app", module)
    for name in names:
        loaded = importlib.import_module(f"tui.commands.{name}")
        if name == "app" and command == "":
            loaded.add_options(parser)
        else:
            loaded.register(sub, parser)
    return parser


def wanted(args: Sequence[str]) -> str | None:
    """The subcommand ``args`` ask for ("" : none, the app), or None when the whole parser
    is needed (help, or a word that is no subcommand: argparse names the choices)."""
    words = iter(args)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word == "--":
            break
        if word in VALUED:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in SUBCOMMANDS else None
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hardway`` console script (``argv`` None: this process's own
    arguments, with generated class code compiled through :mod:`tui.core.codecache`)."""
    if argv is not None:
        return _run(list(argv))
    from tui.core import codecache

    codecache.enable()
    try:
        return _run(sys.argv[1:])
    finally:
        codecache.save()


def _run(args_list: list[str]) -> int:
    """:func:`main` for ``args_list``: the subcommand's parser alone, or the app's."""
    command = wanted(args_list)
    if command != "":
        return _main(build_parser(command), args_list)
    from tui.core import startup_gc  # the app: no collections until its first frame

    startup_gc.hold_until_first_frame()
    try:
        return _main(build_parser(command), args_list)
    finally:
        startup_gc.release()  # the app ended (or never drew): collections as usual


def _main(parser: argparse.ArgumentParser, args_list: list[str]) -> int:
    """Parse ``args_list`` and run the handler (one paragraph for a user error)."""
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
