"""The VIP guard's service files: rc.d script, systemd unit, the service's inventory."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tui.cli import build_parser
from tui.core.errors import UserError
from tui.core.inventory.lint import lint
from tui.core.inventory.load import load_inventory
from tui.core.lb.guard_install import guard_files
from tui.core.lb.guard_service import (
    GuardService,
    ServiceKind,
    kind_for_uname,
    render_inventory,
    render_rc_script,
    render_unit,
)
from tui.core.lb.hypervisor import vip_layout
from tui.core.systemd_unit import parse_unit, split_exec

SEED = Path(__file__).resolve().parents[2] / "config" / "something.local.toml"


def _service(kind: ServiceKind, **kwargs: object) -> GuardService:
    layout = vip_layout(load_inventory(SEED))
    return GuardService(kind, layout, **kwargs)  # type: ignore[arg-type]


def _guard_args(argv: list[str]) -> object:
    """The words after the hardway command, parsed by the real CLI parser."""
    index = argv.index("vip")
    return build_parser().parse_args(argv[index:])


def test_uname_picks_the_kind() -> None:
    assert kind_for_uname("FreeBSD\n") is ServiceKind.RC_D
    assert kind_for_uname("Linux\n") is ServiceKind.SYSTEMD
    with pytest.raises(UserError, match=r"--service rc\.d or --service systemd"):
        kind_for_uname("Darwin\n")


def test_rc_script_follows_rc_subr() -> None:
    service = _service(ServiceKind.RC_D, interval=2.0, rise=3, fall=4)
    text = render_rc_script(service)
    assert text.startswith("#!/bin/sh\n")
    for line in ("# PROVIDE: hardway_guard", ". /etc/rc.subr", 'name="hardway_guard"',
                 'rcvar="hardway_guard_enable"', "load_rc_config $name",
                 ': ${hardway_guard_enable:="NO"}', 'pidfile="/var/run/hardway_guard.pid"',
                 'command="/usr/sbin/daemon"', 'run_rc_command "$1"'):
        assert line in text.splitlines(), line
    args_line = next(x for x in text.splitlines() if x.startswith("command_args="))
    words = shlex.split(args_line.partition("=")[2])[0].split()
    assert words[:3] == ["-P", "${pidfile}", "-r"]  # supervisor pid file, restart
    assert words[words.index("-o") + 1] == "/var/log/hardway_guard.log"
    guard = words[words.index("/usr/local/bin/hardway"):]
    args = _guard_args(guard)
    assert (args.inventory, args.pki) == ("/usr/local/etc/hardway/guard/inventory.toml",
                                          "/usr/local/etc/hardway/guard")
    assert (args.interval, args.rise, args.fall, args.local) == (2.0, 3, 4, True)


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
def test_rc_script_is_valid_sh(tmp_path: Path) -> None:
    script = tmp_path / "hardway_guard"
    script.write_text(render_rc_script(_service(ServiceKind.RC_D)))
    done = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_systemd_unit_parses_and_runs_the_guard_locally() -> None:
    service = _service(ServiceKind.SYSTEMD, command="/opt/hw/bin/python -m tui.cli",
                       ipfw="sudo /sbin/ipfw", timeout=0.5)
    unit = parse_unit(render_unit(service), "/etc/systemd/system/hardway-guard.service")
    assert not unit.warnings
    assert unit.value("Unit", "After") == "network-online.target"
    assert unit.value("Service", "Restart") == "on-failure"
    assert unit.value("Install", "WantedBy") == "multi-user.target"
    command = split_exec(unit.value("Service", "ExecStart"))
    assert command.path == "/opt/hw/bin/python"
    args = _guard_args(list(command.argv))
    assert args.inventory == "/etc/hardway/guard/inventory.toml"
    assert (args.ipfw, args.timeout, args.local) == ("sudo /sbin/ipfw", 0.5, True)
    assert args.audit == "/var/log/hardway/guard-audit.jsonl"


def test_other_sets_are_passed_on() -> None:
    layout = vip_layout(load_inventory(SEED), active_set=20, spare_set=21, first_rule=500)
    argv = GuardService(ServiceKind.SYSTEMD, layout).argv()
    args = _guard_args(argv)
    assert (args.active_set, args.spare_set, args.first_rule) == (20, 21, 500)
    assert "--set" not in _service(ServiceKind.SYSTEMD).argv()


def test_the_service_inventory_holds_only_what_the_guard_uses(tmp_path: Path) -> None:
    seed = load_inventory(SEED)
    text = render_inventory(seed, vip_layout(seed))
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    derived = load_inventory(path)
    assert [(h.name, h.address) for h in derived.controllers] == \
        [(h.name, h.address) for h in seed.controllers]
    assert (derived.api.vip, derived.api.port) == (seed.api.vip, seed.api.port)
    assert derived.hypervisor is not None and seed.hypervisor is not None
    assert (derived.hypervisor.name, derived.hypervisor.os) == (seed.hypervisor.name, "freebsd")
    assert derived.ssh.jump is None and derived.dns is None  # no tunnel, no TSIG secret
    assert seed.dns is not None and "tsig" not in text and "[dns]" not in text
    assert "[ssh]" not in text and "identity" not in text
    assert not [f for f in lint(derived) if f.severity == "error"]


def test_files_are_written_service_file_last() -> None:
    seed = load_inventory(SEED)
    for kind, script, mode in ((ServiceKind.RC_D, "/usr/local/etc/rc.d/hardway_guard", 0o755),
                               (ServiceKind.SYSTEMD,
                                "/etc/systemd/system/hardway-guard.service", 0o644)):
        files = guard_files(seed, _service(kind), b"CA")
        assert files[-1].path == script and files[-1].mode == mode
        assert files[1].data == b"CA" and not files[1].diff
