"""`hardway`'s parser: built for the one subcommand asked for, parsing as the whole one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tui.cli import build_parser, wanted

ARGVS = [
    [],
    ["-i", "demo"],  # an inventory file called "demo", not the subcommand
    ["--log-level", "debug", "--no-confirm"],
    ["--accept-new", "-i", "x.toml"],
    ["demo"],
    ["--no-confirm", "demo", "--controllers", "5", "--workers", "2"],
    ["demo", "--scenario", "seed-cert-bug"],
    ["run", "-i", "x.toml", "-b", "--", "uname", "-s"],
    ["inventory", "check", "config/kthw-gcp.toml"],
    ["lab", "up", "--dir", "/tmp/lab"],
    ["certs", "check", "-i", "x.toml"],
    ["vip", "guard", "--dry-run", "-i", "x.toml"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=lambda a: " ".join(a) or "(none)")
def test_the_parser_for_the_asked_subcommand_parses_as_the_whole_one(argv: list[str]) -> None:
    """Each command line gives the same namespace (handler included) both ways."""
    whole = vars(build_parser().parse_args(argv))
    assert vars(build_parser(wanted(argv)).parse_args(argv)) == whole


def test_help_and_unknown_words_get_the_whole_parser() -> None:
    """--help lists every subcommand and a wrong word is named with the choices: both need
    every subcommand registered."""
    assert wanted(["--help"]) is None
    assert wanted(["demo", "-h"]) == "demo"  # its own help: its parser is there
    assert wanted(["bogus"]) is None
    assert wanted(["-i", "x.toml"]) == ""
    assert wanted(["--", "demo"]) == ""
    assert wanted(["--log-level", "INFO", "certs", "check"]) == "certs"


def test_opening_the_app_registers_no_subcommand_module() -> None:
    """`hardway -i FILE` (the app) imports neither the lab nor any other command module
    before it starts (a fresh interpreter, so that sys.modules tells)."""
    code = ("import sys; from tui.cli import build_parser, wanted; "
            "build_parser(wanted(['-i', 'x.toml'])).parse_args(['-i', 'x.toml']); "
            "print(sorted(m for m in sys.modules if m.startswith(('tui.commands', 'tui.lab'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "['tui.commands', 'tui.commands.app']"
