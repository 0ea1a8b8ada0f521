"""Fleet defaults that cost no import (no asyncssh): the app's start-up reads them.

``Workbench.warm_relay`` describes the console's relay fleet before the app loads SSH
(:class:`tui.core.fleet.relaylaunch.RelaySpec`); it must describe the fleet that
:class:`tui.core.fleet.fleet.Fleet` later builds, so both take these values from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tui.core.errors import UserError
from tui.core.inventory.model import Host, Hypervisor, Inventory
from tui.core.paths import state_dir

KEEPALIVE_INTERVAL = 15.0
"""Seconds between SSH keepalives (3 missed drop the connection)."""


def default_record_file() -> Path:
    """``$XDG_STATE_HOME/hardway/known_hosts`` (``~/.local/state`` by default)."""
    return state_dir() / "known_hosts"


def jump_hosts(inventory: Inventory) -> dict[str, Host | Hypervisor]:
    """The hosts ``ssh.jump`` may name: every host, and the hypervisor."""
    jumps: dict[str, Host | Hypervisor] = {h.name: h for h in inventory.hosts}
    if inventory.hypervisor is not None:
        jumps[inventory.hypervisor.name] = inventory.hypervisor
    return jumps


def fleet_hosts(inventory: Inventory, extra: Sequence[Host] = ()) -> list[Host]:
    """The hosts of a fleet for ``inventory``: its own, then ``extra`` ones not there."""
    names = {h.name for h in inventory.hosts}
    return list(inventory.hosts) + [h for h in extra if h.name not in names]


def host_named(hosts: Mapping[str, Host], name: str) -> Host:
    """The fleet host called ``name``.

    Raises:
        UserError: no such host (the message lists the fleet's hosts).
    """
    try:
        return hosts[name]
    except KeyError:
        known = ", ".join(hosts) or "none"
        raise UserError(f"There is no host called {name!r} in this fleet "
                        f"(hosts: {known}).") from None
