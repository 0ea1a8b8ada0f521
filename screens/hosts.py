"""Hosts screen: one row per host with its live SSH connection state."""

from __future__ import annotations

import functools
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Header

from tui.boundary import start_action
from tui.core.workbench import Workbench
from tui.widgets.footer import KeyFooter
from tui.widgets.host_table import HostTable
from tui.widgets.internals import BatchAwareScreen


class HostsScreen(BatchAwareScreen):
    """Every host of the inventory and whether hardway holds a session to it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.switch_mode('console')", "Console", id="leave",
                tooltip="Back to the console"),
        Binding("q", "app.quit", "Quit", id="quit-hosts", show=False),
        Binding("r", "reconnect", "Reconnect", id="reconnect",
                tooltip="Reconnect the selected host (or every failed host)"),
    ]

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench

    def compose(self) -> ComposeResult:
        """Header, host table, footer."""
        yield Header(icon="⎈")
        yield HostTable(self.workbench.inventory, self.workbench.fleet)
        yield KeyFooter()

    def action_reconnect(self) -> None:
        """Reconnect the host under the cursor, or every failed host (in a worker)."""
        name = self.query_one(HostTable).selected_host()
        names = [name] if name else None
        start_action(self, functools.partial(self.workbench.connect, names),
                     group="reconnect", label=f"connecting {name or 'every host'}")
