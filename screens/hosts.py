"""Hosts screen: one row per host with its live SSH connection state."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Header

from tui.widgets.footer import StableFooter
from tui.widgets.host_table import HostTable

if TYPE_CHECKING:
    from tui.app import HardwayApp


class HostsScreen(Screen[None]):
    """Every host of the inventory and whether hardway holds a session to it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "Quit", id="quit-hosts", show=False),
        Binding("r", "reconnect", "Reconnect", id="reconnect",
                tooltip="Reconnect the selected host (or every failed host)"),
    ]

    @property
    def hardway(self) -> HardwayApp:
        """The app, typed."""
        from tui.app import HardwayApp

        assert isinstance(self.app, HardwayApp)
        return self.app

    def compose(self) -> ComposeResult:
        """Header, host table, footer."""
        yield Header(icon="⎈")
        yield HostTable(self.hardway.inventory, self.hardway.fleet)
        yield StableFooter()

    def action_reconnect(self) -> None:
        """Reconnect the host under the cursor, or every failed host."""
        table = self.query_one(HostTable)
        name = table.selected_host()
        fleet = self.hardway.fleet
        names = [name] if name else None
        self.hardway.run_worker(fleet.connect(names), group="fleet", name="reconnect")
