"""The controllers' side of an ipfw VIP: the VIP as a loopback alias on every controller.

``fwd`` forwards a packet without rewriting its destination, so each controller must
accept packets addressed to the VIP: the VIP is added to ``lo`` as a /32 (Linux:
``ip addr add VIP/32 dev lo``).  Two things go with it:

- ARP: Linux answers ARP for any local address on any interface by default
  (``arp_ignore=0``), so three controllers would claim the VIP on the node network
  against the hypervisor.  ``net.ipv4.conf.{all,lo}.arp_ignore=1`` and
  ``arp_announce=2`` keep them quiet (the LVS direct-routing recipe);
- persistence: the alias is gone after a reboot unless something adds it at boot; a
  oneshot systemd unit does (``ip addr replace`` so it is idempotent).

This module renders those files and commands (pure), and builds the plan
:class:`~tui.core.plan.Step` that puts them on the controllers through the Fleet, so
the "move the VIP" plan reuses it with the old and the new address.
"""

from __future__ import annotations

import enum
import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.plan import Preview, Step, StepFailed, file_change

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet

DEVICE = "lo"
UNIT_NAME = "hardway-api-vip.service"
UNIT_DIR = "/etc/systemd/system"
SYSCTL_PATH = "/etc/sysctl.d/90-hardway-api-vip.conf"
IP = "/sbin/ip"


class AliasState(enum.Enum):
    """Whether a controller's ``lo`` carries the VIP."""

    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"


def _vip(vip: str) -> str:
    try:
        return str(ipaddress.IPv4Address(vip))
    except ValueError:
        raise UserError(f"The VIP {vip!r} is not an IPv4 address.") from None


def check_command(vip: str) -> str:
    """Lists ``lo``'s address VIP/32 (prints nothing when the alias is absent)."""
    return f"ip -4 -o addr show dev {DEVICE} to {_vip(vip)}/32"


def parse_check(output: str, vip: str) -> AliasState:
    """The alias state from :func:`check_command`'s output."""
    return AliasState.PRESENT if f"inet {_vip(vip)}/32" in output else AliasState.ABSENT


def add_command(vip: str) -> str:
    """Add the alias now, only when it is missing (safe to run again)."""
    vip = _vip(vip)
    return f"{check_command(vip)} | grep -q . || ip addr add {vip}/32 dev {DEVICE}"


def remove_command(vip: str) -> str:
    """Remove the alias now, only when it is there."""
    vip = _vip(vip)
    return (f"! {check_command(vip)} | grep -q . || ip addr del {vip}/32 dev {DEVICE}")


def render_unit(vip: str) -> str:
    """A oneshot systemd unit that puts the VIP on ``lo`` at boot."""
    vip = _vip(vip)
    return (
        "# Written by hardway: the Kubernetes API VIP on lo, needed by the hypervisor's\n"
        "# ipfw fwd rules (they forward packets still addressed to the VIP).\n"
        "[Unit]\n"
        f"Description=Kubernetes API VIP {vip} on {DEVICE}\n"
        "After=network-pre.target\n"
        "Before=kube-apiserver.service\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={IP} addr replace {vip}/32 dev {DEVICE}\n"
        f"ExecStop=-{IP} addr del {vip}/32 dev {DEVICE}\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n")


def render_sysctl() -> str:
    """sysctl settings so the controllers never answer ARP for the VIP."""
    return ("# Written by hardway: the API VIP lives on lo; never answer ARP for it.\n"
            "net.ipv4.conf.all.arp_ignore = 1\n"
            "net.ipv4.conf.all.arp_announce = 2\n"
            f"net.ipv4.conf.{DEVICE}.arp_ignore = 1\n"
            f"net.ipv4.conf.{DEVICE}.arp_announce = 2\n")


@dataclass(frozen=True)
class AliasFiles:
    """The files that make the alias persistent, by logical remote path."""

    unit_path: str
    unit: str
    sysctl_path: str
    sysctl: str


def alias_files(vip: str) -> AliasFiles:
    """The unit and sysctl files for ``vip``."""
    return AliasFiles(f"{UNIT_DIR}/{UNIT_NAME}", render_unit(vip), SYSCTL_PATH,
                      render_sysctl())


def apply_commands(vip: str, *, sudo: bool = False) -> list[str]:
    """After the files are written: load sysctl, enable the unit, add the alias now."""
    prefix = "sudo " if sudo else ""
    return [f"{prefix}sysctl -q -p {shlex.quote(SYSCTL_PATH)}",
            f"{prefix}systemctl daemon-reload",
            f"{prefix}systemctl enable {UNIT_NAME}",
            f"{prefix}sh -c {shlex.quote(add_command(vip))}"]


def alias_step(fleet: Fleet, hosts: Sequence[str], vip: str, *, sudo: bool = False,
               name: str | None = None) -> Step:
    """A plan step that puts ``vip`` on ``lo`` of ``hosts`` now and at every boot."""
    files = alias_files(vip)

    async def state(host: str) -> AliasState:
        result = (await fleet.run([host], check_command(vip)))[host]
        return parse_check(result.stdout, vip) if result.ok else AliasState.UNKNOWN

    async def current(host: str, path: str) -> bytes | None:
        try:
            return await fleet.get(host, path)
        except UserError:
            return None

    async def check(host: str) -> str | None:
        if await state(host) is not AliasState.PRESENT:
            return None
        unit = await current(host, files.unit_path)
        if unit != files.unit.encode():
            return None
        return f"{vip}/32 is on {DEVICE} and {UNIT_NAME} is in place"

    async def preview(host: str) -> Preview:
        return Preview(
            commands=tuple(apply_commands(vip, sudo=sudo)),
            files=(file_change(files.unit_path, files.unit.encode(),
                               await current(host, files.unit_path),
                               description="adds the VIP to lo at boot"),
                   file_change(files.sysctl_path, files.sysctl.encode(),
                               await current(host, files.sysctl_path),
                               description="never answer ARP for the VIP")))

    async def apply(host: str) -> str | None:
        for path, text in ((files.sysctl_path, files.sysctl), (files.unit_path, files.unit)):
            put = await fleet.put(host, text.encode(), path)
            if not put.ok:
                raise StepFailed(f"writing {path} failed: {put.error}")
        for command in apply_commands(vip, sudo=sudo):
            result = (await fleet.run([host], command))[host]
            if not result.ok:
                reason = (result.error or result.stderr.strip() or result.stdout.strip()
                          or f"exit {result.status}")
                raise StepFailed(f"`{command}` failed: {reason}")
        return f"{vip}/32 on {DEVICE}"

    async def verify(host: str) -> str | None:
        if await state(host) is not AliasState.PRESENT:
            raise StepFailed(f"{vip}/32 is not on {DEVICE} after adding it")
        return f"{vip}/32 on {DEVICE}"

    return Step(name or f"VIP {vip} on {DEVICE}", list(hosts), check=check, preview=preview,
                apply=apply, verify=verify)


def removal_step(fleet: Fleet, hosts: Sequence[str], vip: str, *, sudo: bool = False,
                 name: str | None = None) -> Step:
    """A plan step that takes ``vip`` off ``lo`` now (the unit is rewritten by the new
    VIP's :func:`alias_step`, so it only removes the live address)."""
    prefix = "sudo " if sudo else ""
    command = f"{prefix}sh -c {shlex.quote(remove_command(vip))}"

    async def check(host: str) -> str | None:
        result = (await fleet.run([host], check_command(vip)))[host]
        if result.ok and parse_check(result.stdout, vip) is AliasState.ABSENT:
            return f"{vip} is not on {DEVICE}"
        return None

    async def preview(_host: str) -> Preview:
        return Preview(commands=(command,))

    async def apply(host: str) -> str | None:
        result = (await fleet.run([host], command))[host]
        if not result.ok:
            raise StepFailed(f"`{command}` failed: {result.error or result.stderr.strip()}")
        return f"{vip} removed from {DEVICE}"

    return Step(name or f"remove VIP {vip} from {DEVICE}", list(hosts), check=check,
                preview=preview, apply=apply)


__all__ = [
    "DEVICE",
    "SYSCTL_PATH",
    "UNIT_NAME",
    "AliasFiles",
    "AliasState",
    "add_command",
    "alias_files",
    "alias_step",
    "apply_commands",
    "check_command",
    "parse_check",
    "removal_step",
    "remove_command",
    "render_sysctl",
    "render_unit",
]
