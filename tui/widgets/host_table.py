"""HostTable: a DataTable of hosts, updated by key as the fleet's states change."""

from __future__ import annotations

import getpass

from rich.text import Text
from textual.widgets import DataTable

from tui.core.fleet.events import ConnState, Event, StateChanged
from tui.core.fleet.fleet import Fleet
from tui.core.inventory.model import Inventory

STATE_STYLE: dict[ConnState, tuple[str, str]] = {
    ConnState.IDLE: ("·", "dim"),
    ConnState.CONNECTING: ("…", "yellow"),
    ConnState.READY: ("●", "green"),
    ConnState.FAILED: ("✖", "bold red"),
    ConnState.CLOSED: ("○", "dim"),
}


def ssh_target(user: str | None, dial: str, port: int) -> str:
    """``user@host:port`` as OpenSSH users read it; the user is omitted when it is the
    local login (what ssh would use anyway)."""
    shown = user if user and user != getpass.getuser() else ""
    return f"{shown + '@' if shown else ''}{dial}:{port}"


class HostTable(DataTable[Text | str]):
    """Name, role, address, SSH target and connection state of every host."""

    COLUMNS = ("host", "role", "address", "ssh", "state")

    def __init__(self, inventory: Inventory, fleet: Fleet) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True)
        self.inventory = inventory
        self.fleet = fleet
        self._unsubscribe = fleet.subscribe(self._on_fleet_event)

    def on_mount(self) -> None:
        """Fill one row per host."""
        for column in self.COLUMNS:
            self.add_column(column, key=column)
        for host in self.inventory.hosts:
            target = ssh_target(host.ssh.user, host.dial, host.ssh.port)
            if host.ssh.jump:
                target += f" via {host.ssh.jump}"
            self.add_row(host.name, host.role, str(host.address), target,
                         self._state_cell(host.name), key=host.name)

    def on_unmount(self) -> None:
        """Stop listening to the fleet."""
        self._unsubscribe()

    def _state_cell(self, name: str) -> Text:
        state = self.fleet.state(name)
        glyph, style = STATE_STYLE[state]
        text = Text(f"{glyph} {state.value}", style=style)
        reason = self.fleet.reason(name)
        if state is ConnState.FAILED and reason:
            text.append(f": {reason}", style="red")
        return text

    def _on_fleet_event(self, event: Event) -> None:
        if isinstance(event, StateChanged) and self.is_mounted:
            self.update_cell(event.host, "state", self._state_cell(event.host),
                             update_width=True)

    def selected_host(self) -> str | None:
        """Name of the host under the cursor, if any."""
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return str(row_key.value) if row_key.value is not None else None
