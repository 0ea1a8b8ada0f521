"""HardwayApp: the Textual application shell shared by the CLI and the tests.

The app owns one :class:`~tui.core.fleet.fleet.Fleet` built from the inventory; screens
are thin views over it.  ``create_app`` is the single factory both ``hardway`` and the
test-suite use.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from screens.hosts import HostsScreen
from tui.core.fleet.events import ConnState, Event, StateChanged
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.model import Inventory
from tui.theme import HARDWAY_THEME


class HardwayApp(App[int]):
    """The hardway workbench."""

    CSS_PATH = "hardway.tcss"
    TITLE = "hardway"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Close every session and leave"),
    ]

    def __init__(self, inventory: Inventory, fleet: Fleet, *, connect: bool = True) -> None:
        """Build the app around an inventory and its fleet.

        Args:
            inventory: the loaded cluster description.
            fleet: the fleet of SSH connections (not yet connected).
            connect: open the connections when the app starts (tests may defer it).
        """
        super().__init__()
        self.inventory = inventory
        self.fleet = fleet
        self._connect_on_start = connect
        self._unsubscribe = fleet.subscribe(self._on_fleet_event)

    def on_mount(self) -> None:
        """Register the theme, show the first screen, start connecting."""
        self.register_theme(HARDWAY_THEME)
        self.theme = "hardway"
        self.title = f"hardway — {self.inventory.name}"
        self._update_summary()
        self.push_screen(HostsScreen())
        if self._connect_on_start:
            self.run_worker(self.fleet.connect(), name="connect", group="fleet", exclusive=True)

    def _on_fleet_event(self, event: Event) -> None:
        """Fleet callback (runs on the app's loop): refresh the connection summary."""
        if isinstance(event, StateChanged):
            self._update_summary()

    def _update_summary(self) -> None:
        """Header sub-title: "3/3 connected" (plus failures when any)."""
        hosts = self.inventory.hosts
        ready = sum(1 for h in hosts if self.fleet.state(h.name) is ConnState.READY)
        failed = sum(1 for h in hosts if self.fleet.state(h.name) is ConnState.FAILED)
        text = f"{ready}/{len(hosts)} connected"
        if failed:
            text += f", {failed} failed"
        self.sub_title = text

    async def action_quit(self) -> None:
        """Close every SSH session, then exit."""
        self._unsubscribe()
        await self.fleet.close()
        self.exit(0)


def create_app(
    inventory: Inventory,
    *,
    accept_new: bool = False,
    audit_path: Path | None = None,
    connect: bool = True,
) -> HardwayApp:
    """The one factory for the app, used by ``hardway`` and by the tests.

    Args:
        inventory: the loaded inventory.
        accept_new: record unknown host keys (after showing them) instead of refusing.
        audit_path: where the audit log goes (default: the XDG state dir).
        connect: open the SSH connections on start.
    """
    from tui.core.audit import AuditLog

    policy = HostKeyPolicy(mode="accept-new" if accept_new else "strict")
    audit = AuditLog(audit_path or AuditLog.default_path())
    fleet = Fleet.from_inventory(inventory, host_keys=policy, audit=audit)
    return HardwayApp(inventory, fleet, connect=connect)
