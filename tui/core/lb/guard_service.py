"""The VIP guard as a service on the hypervisor: the files it needs, rendered.

``hardway vip guard`` can run in a terminal, but the guard belongs on the hypervisor,
beside the ipfw rules it rewrites, started at boot and restarted when it dies.  This
module renders what that takes, as text (:mod:`tui.core.lb.guard_install` is the plan
that previews and installs it):

- a FreeBSD rc.d script (``/usr/local/etc/rc.d/hardway_guard``, rc.subr conventions,
  ``hardway_guard_enable`` in rc.conf) that runs the guard under daemon(8), which keeps
  a pid file and restarts it when it exits; or a systemd unit
  (``/etc/systemd/system/hardway-guard.service``, ``Restart=on-failure``) for a Linux
  hypervisor;
- the inventory the service reads: only what the guard uses (the cluster's name and
  networks, the API VIP and port, the hypervisor, the controllers' names and addresses),
  with no SSH settings (the guard runs ipfw on the hypervisor itself, ``--local``, and
  dials the controllers directly) and no DNS section (the guard never updates the zone, so
  the TSIG secret stays where it is);
- the cluster CA beside it (the ``/readyz`` probes verify TLS against it; it is public).

Nothing here is secret, so every file is shown in full in the preview.
"""

from __future__ import annotations

import enum
import json
import shlex
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.lb.ipfw import (
    DEFAULT_ACTIVE_SET,
    DEFAULT_FIRST_RULE,
    DEFAULT_SPARE_SET,
    VipLayout,
)

if TYPE_CHECKING:
    from tui.core.inventory.model import Inventory


class ServiceKind(enum.Enum):
    """How the hypervisor runs services."""

    RC_D = "rc.d"
    SYSTEMD = "systemd"


def kind_for_uname(uname: str) -> ServiceKind:
    """The service kind for ``uname -s`` output.

    Raises:
        UserError: neither FreeBSD nor Linux (give ``--service``).
    """
    system = uname.strip()
    if system == "FreeBSD":
        return ServiceKind.RC_D
    if system == "Linux":
        return ServiceKind.SYSTEMD
    raise UserError(f"The hypervisor says `uname -s` = {system or '(nothing)'!r}; the guard "
                    "service is an rc.d script on FreeBSD and a systemd unit on Linux. "
                    "Choose one with --service rc.d or --service systemd.")


@dataclass(frozen=True)
class ServicePaths:
    """Where the service's files live on the hypervisor (fixed per kind)."""

    script: str
    directory: str
    audit: str
    log: str | None = None
    pidfile: str | None = None

    @property
    def inventory(self) -> str:
        """The inventory the service reads."""
        return f"{self.directory}/inventory.toml"

    @property
    def ca(self) -> str:
        """The cluster CA the probes trust (``ca.pem`` of ``--pki``)."""
        return f"{self.directory}/ca.pem"

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the install writes, in the order it writes them."""
        return (self.inventory, self.ca, self.script)


RC_D_PATHS = ServicePaths(script="/usr/local/etc/rc.d/hardway_guard",
                          directory="/usr/local/etc/hardway/guard",
                          audit="/var/log/hardway/guard-audit.jsonl",
                          log="/var/log/hardway_guard.log",
                          pidfile="/var/run/hardway_guard.pid")
SYSTEMD_PATHS = ServicePaths(script="/etc/systemd/system/hardway-guard.service",
                             directory="/etc/hardway/guard",
                             audit="/var/log/hardway/guard-audit.jsonl")

RC_NAME = "hardway_guard"
UNIT_NAME = "hardway-guard.service"
DEFAULT_COMMAND = "/usr/local/bin/hardway"


def paths_for(kind: ServiceKind) -> ServicePaths:
    """The fixed paths of ``kind``."""
    return RC_D_PATHS if kind is ServiceKind.RC_D else SYSTEMD_PATHS


@dataclass(frozen=True)
class GuardService:
    """What the service runs: the guard's settings and the command that starts it.

    Attributes:
        kind: rc.d or systemd.
        layout: the VIP's address, port, sets and first rule.
        interval: seconds between probe rounds.
        rise: passes in a row that bring a controller back.
        fall: failures in a row that take it out.
        timeout: seconds per probe.
        command: the ``hardway`` command on the hypervisor, split like a shell (e.g.
            ``/usr/local/bin/hardway`` or ``/opt/venv/bin/python -m tui.cli``).
        ipfw: the ipfw command there.
    """

    kind: ServiceKind
    layout: VipLayout
    interval: float = 1.0
    rise: int = 2
    fall: int = 2
    timeout: float = 1.0
    command: str = DEFAULT_COMMAND
    ipfw: str = "ipfw"

    @property
    def paths(self) -> ServicePaths:
        """Where its files go."""
        return paths_for(self.kind)

    def argv(self) -> list[str]:
        """The guard's command line, as the service runs it."""
        paths = self.paths
        words = [*shlex.split(self.command), "vip", "guard", "--local",
                 "-i", paths.inventory, "--pki", paths.directory,
                 "--interval", f"{self.interval:g}", "--rise", str(self.rise),
                 "--fall", str(self.fall), "--timeout", f"{self.timeout:g}",
                 "--audit", paths.audit]
        if self.ipfw != "ipfw":
            words += ["--ipfw", self.ipfw]
        for flag, value, default in (("--set", self.layout.active_set, DEFAULT_ACTIVE_SET),
                                     ("--spare-set", self.layout.spare_set, DEFAULT_SPARE_SET),
                                     ("--first-rule", self.layout.first_rule,
                                      DEFAULT_FIRST_RULE)):
            if value != default:
                words += [flag, str(value)]
        return words

    def with_kind(self, kind: ServiceKind) -> GuardService:
        """The same service for another kind."""
        return replace(self, kind=kind)


def render_script(service: GuardService) -> str:
    """The rc.d script or the systemd unit for ``service``."""
    if service.kind is ServiceKind.RC_D:
        return render_rc_script(service)
    return render_unit(service)


def _summary(service: GuardService) -> str:
    layout = service.layout
    return (f"the VIP guard for {layout.vip}:{layout.port} (ipfw set {layout.active_set}, "
            f"spare {layout.spare_set}): /readyz every {service.interval:g} s, rise "
            f"{service.rise}, fall {service.fall}")


def render_rc_script(service: GuardService) -> str:
    """FreeBSD's rc.d script: daemon(8) supervises the guard (``-r``: restart it when it
    exits, ``-P``: the supervisor's pid file that ``service ... stop/status`` use)."""
    paths = service.paths
    guard = shlex.join(service.argv())
    return f"""#!/bin/sh
#
# PROVIDE: {RC_NAME}
# REQUIRE: NETWORKING ipfw
# KEYWORD: shutdown
#
# {_summary(service)}.
# Written by `hardway vip guard --install`; `--uninstall` removes it.
#
# Enable it in /etc/rc.conf (the install does this with sysrc):
#   {RC_NAME}_enable="YES"

. /etc/rc.subr

name="{RC_NAME}"
rcvar="{RC_NAME}_enable"
desc="hardway VIP guard: health checks for the API VIP's ipfw round robin"

load_rc_config $name

: ${{{RC_NAME}_enable:="NO"}}

pidfile="{paths.pidfile}"
command="/usr/sbin/daemon"
command_args="-P ${{pidfile}} -r -R 1 -f -o {paths.log} -t ${{name}} {guard}"

run_rc_command "$1"
"""


def render_unit(service: GuardService) -> str:
    """The systemd unit: started after the network is up, restarted when it fails."""
    return f"""[Unit]
Description=hardway VIP guard: health checks for the API VIP's ipfw round robin
After=network-online.target
Wants=network-online.target

# {_summary(service)}.
# Written by `hardway vip guard --install`; `--uninstall` removes it.

[Service]
Type=simple
Environment=NO_COLOR=1
ExecStart={shlex.join(service.argv())}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def render_inventory(inventory: Inventory, layout: VipLayout) -> str:
    """The inventory the service reads (see the module docstring for what it leaves out).

    Raises:
        UserError: the inventory has no hypervisor.
    """
    hypervisor = inventory.hypervisor
    if hypervisor is None:
        raise UserError(f"{inventory.path}: there is no [hypervisor] section, so there is "
                        "nowhere to install the guard.")
    nets = inventory.networks
    lines = [
        f"# The VIP guard's inventory on {hypervisor.name}: written by `hardway vip guard",
        f"# --install` from {inventory.path}. Only what the guard uses; no secrets.",
        "",
        "[cluster]",
        f"name = {_toml(inventory.name)}",
        f"domain = {_toml(inventory.domain)}",
        "",
        "[networks]",
        f"nodes = {_toml(str(nets.nodes))}",
    ]
    if nets.control_plane_services is not None:
        lines.append(f"control_plane_services = {_toml(str(nets.control_plane_services))}")
    lines += [
        f"pods = {_toml(str(nets.pods))}",
        f"services = {_toml(str(nets.services))}",
        "",
        "[api]",
        f"vip = {_toml(layout.vip)}",
    ]
    if inventory.api.hostname:
        lines.append(f"hostname = {_toml(inventory.api.hostname)}")
    lines += [
        f"port = {layout.port}",
        "",
        "[hypervisor]",
        f"name = {_toml(hypervisor.name)}",
        f"address = {_toml(hypervisor.address)}",
        f"os = {_toml(hypervisor.os)}",
        f"firewall = {_toml(hypervisor.firewall)}",
    ]
    for host in inventory.controllers:
        lines += ["", "[[controllers]]", f"name = {_toml(host.name)}",
                  f"address = {_toml(str(host.address))}"]
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_COMMAND", "RC_D_PATHS", "RC_NAME", "SYSTEMD_PATHS", "UNIT_NAME",
           "GuardService", "ServiceKind", "ServicePaths", "kind_for_uname", "paths_for",
           "render_inventory", "render_rc_script", "render_script", "render_unit"]
