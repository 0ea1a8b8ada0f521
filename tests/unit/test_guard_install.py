"""The guard's install plan against a scripted FreeBSD hypervisor (the lab runs systemd).

The fake host keeps files, rc.conf variables and one service's state, and answers the
shell lines the plan sends as FreeBSD's ``sysrc`` and ``service`` do (``onestop`` on a
stopped service and ``sysrc -x`` on an unset variable fail), so the rc.d path's order,
idempotence and uninstall of a crashed service are checked.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from tui.core.inventory.load import load_inventory
from tui.core.lb.guard_install import GuardInstall, guard_files
from tui.core.lb.guard_service import GuardService, ServiceKind
from tui.core.lb.hypervisor import RemoteResult, vip_layout

SEED = Path(__file__).resolve().parents[2] / "config" / "something.local.toml"


class FreeBsdHost:
    """Files, rc.conf and the hardway_guard service, driven by the plan's commands."""

    name = "nucklehead"

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.rc_conf: dict[str, str] = {}
        self.running = False
        self.ran: list[str] = []

    async def run(self, command: str, *, input: str | None = None) -> RemoteResult:
        self.ran.append(command)
        status, out, err = self._do(command, input)
        return RemoteResult(command, status, out, err)

    def _do(self, command: str, data: str | None) -> tuple[int, str, str]:
        words = shlex.split(command)
        if command.startswith("test -e "):
            path = words[2]
            return (0, self.files[path], "") if path in self.files else (3, "", "")
        if words[:2] == ["sh", "-c"]:  # the atomic write: target=PATH on its second line
            target = shlex.split(words[2].splitlines()[1].partition("=")[2])[0]
            assert data is not None
            self.files[target] = data
            return 0, "", ""
        if command.startswith("if [ -e "):
            path = words[3]
            if path in self.files:
                self.files[path + ".hardway-bak"] = self.files.pop(path)
            return 0, "", ""
        if words[0] == "sysrc":
            return self._sysrc(words[1:])
        if words[:2] == ["service", "hardway_guard"]:
            return self._service(words[2])
        if words[0] in ("command", "tail"):
            return 0, "", ""
        raise AssertionError(f"unexpected command {command!r}")

    def _sysrc(self, args: list[str]) -> tuple[int, str, str]:
        if args[0] == "-n":
            value = self.rc_conf.get(args[1])
            return (0, value + "\n", "") if value is not None else \
                (1, "", f"sysrc: unknown variable '{args[1]}'\n")
        if args[0] == "-x":
            if self.rc_conf.pop(args[1], None) is None:
                return 1, "", f"sysrc: {args[1]}: not found\n"
            return 0, "", ""
        name, _, value = args[0].partition("=")
        self.rc_conf[name] = value
        return 0, f"{name}: -> {value}\n", ""

    def _service(self, verb: str) -> tuple[int, str, str]:
        if "/usr/local/etc/rc.d/hardway_guard" not in self.files:
            return 1, "", "hardway_guard does not exist in /etc/rc.d or the local startup\n"
        enabled = self.rc_conf.get("hardway_guard_enable") == "YES"
        if not verb.startswith("one") and not enabled:
            return 1, "", f"Cannot '{verb}' hardway_guard. Set hardway_guard_enable to YES\n"
        verb = verb.removeprefix("one")
        if verb in ("start", "restart"):
            self.running = True
            return 0, "Starting hardway_guard.\n", ""
        if verb == "stop":
            if not self.running:
                return 1, "", "hardway_guard not running? (check /var/run/hardway_guard.pid).\n"
            self.running = False
            return 0, "Stopping hardway_guard.\n", ""
        if verb == "status":
            return (0, "hardway_guard is running as pid 42.\n", "") if self.running else \
                (1, "hardway_guard is not running.\n", "")
        raise AssertionError(verb)


def _install(host: FreeBsdHost, *, uninstall: bool = False, **kwargs: Any) -> GuardInstall:
    inventory = load_inventory(SEED)
    service = GuardService(ServiceKind.RC_D, vip_layout(inventory), **kwargs)
    return GuardInstall(service, guard_files(inventory, service, b"CA PEM\n"),
                        host, uninstall=uninstall)  # type: ignore[arg-type]


async def _run(plan: GuardInstall) -> list[tuple[str, str, str]]:
    result = await plan.plan.run()
    assert result.ok, result.failure
    return [(s, e.state, e.detail) for (s, _h), e in result.states.items()]


async def test_rc_d_install_rerun_change_and_uninstall() -> None:
    host = FreeBsdHost()
    states = await _run(_install(host))
    assert [s[:2] for s in states] == [("guard files", "done"), ("guard service", "done")]
    assert host.ran.index("sysrc hardway_guard_enable=YES") < \
        host.ran.index("service hardway_guard start")
    assert host.running and host.rc_conf == {"hardway_guard_enable": "YES"}
    script = host.files["/usr/local/etc/rc.d/hardway_guard"]
    assert "--fall 2" in script and host.files["/usr/local/etc/hardway/guard/ca.pem"] == \
        "CA PEM\n"
    writes = [c for c in host.ran if c.startswith("sh -c")]
    assert "rc.d/hardway_guard" in writes[-1]  # the service file last

    host.ran.clear()  # a rerun: nothing to do, nothing written or started
    again = await _install(host).plan.preview()
    assert all(item.done for item in again["nucklehead"])
    assert not [c for c in host.ran if c.startswith(("sh -c", "service hardway_guard s"))]

    states = await _run(_install(host, fall=3))  # new settings: written, restarted
    assert ("guard service", "done", "restarted; hardway_guard is running") in states
    assert "--fall 3" in host.files["/usr/local/etc/rc.d/hardway_guard"]

    host.running = False  # it crashed: the uninstall must not stop it again
    host.ran.clear()
    await _run(_install(host, uninstall=True))
    assert "service hardway_guard onestop" not in host.ran
    assert "sysrc -x hardway_guard_enable" in host.ran and not host.rc_conf
    assert not [p for p in host.files if not p.endswith(".hardway-bak")]
    assert all(item.done for item in
               (await _install(host, uninstall=True).plan.preview())["nucklehead"])
