"""HardwayApp: the Textual application shell shared by the CLI and the tests.

The app owns one :class:`~tui.core.fleet.fleet.Fleet` built from the inventory; screens
are thin views over it.  ``create_app`` is the single factory both ``hardway`` and the
test-suite use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import events
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.message import Message
from textual.screen import Screen

from screens.certs import CertsScreen
from screens.console import ConsoleScreen
from screens.hosts import HostsScreen
from tui.core.fleet.events import ConnState, Event, StateChanged
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import Decision, HostKeyPolicy, HostKeyPrompt
from tui.core.inventory.model import Inventory
from tui.palette import HardwayCommands
from tui.theme import HARDWAY_THEME
from tui.widgets.host_key_modal import HostKeyModal


class HardwayApp(App[int]):
    """The hardway workbench."""

    CSS_PATH = "hardway.tcss"
    TITLE = "hardway"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True,
                tooltip="Close every session and leave"),
        Binding("ctrl+o", "switch_screen_mode('hosts')", "Hosts", id="switch-mode",
                priority=True, tooltip="Switch between the console and the hosts table"),
        Binding("ctrl+e", "switch_screen_mode('certs')", "Certs", id="switch-certs",
                priority=True, tooltip="Switch between the console and the certificates"),
    ]
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = (
        App.COMMANDS | {HardwayCommands})
    MODES: ClassVar[dict[str, type[Screen[None]]]] = {  # type: ignore[assignment]
        "console": ConsoleScreen,
        "hosts": HostsScreen,
        "certs": CertsScreen,
    }

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
        self.connect_on_start = connect
        self.last_key = 0.0
        """Monotonic time of the newest key press (the console collects garbage when
        neither keys nor output arrive)."""
        self._unsubscribe = fleet.subscribe(self._on_fleet_event)

    def on_mount(self) -> None:
        """Register the theme and open the console (which connects every host)."""
        self.register_theme(HARDWAY_THEME)
        self.theme = "hardway"
        self.title = f"hardway — {self.inventory.name}"
        self._update_summary()
        self.switch_mode("console")

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

    def action_switch_screen_mode(self, mode: str) -> None:
        """Go to ``mode``, or back to the console when already there."""
        self.switch_mode("console" if self.current_mode == mode else mode)

    async def ask_host_key(self, prompt: HostKeyPrompt) -> Decision:
        """HostKeyPolicy.confirm: show the modal and wait for the user's choice."""
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.push_screen(HostKeyModal(prompt),
                         callback=lambda choice: answer.set_result(choice or "refuse"))
        decision = await answer
        return decision if decision in ("once", "record") else "refuse"  # type: ignore[return-value]

    async def _post_message(self, message: Message) -> bool:
        """Keys typed into a console pane or the broadcast bar are handled at once (see
        :func:`typed_now`)."""
        if isinstance(message, events.Key):
            self.last_key = time.monotonic()
            if typed_now(self, message):
                return True
        return await super()._post_message(message)

    async def action_quit(self) -> None:
        """Close every SSH session, then exit."""
        self._unsubscribe()
        await self.fleet.close()
        self.exit(0)


def typed_now(app: App[Any], event: events.Key) -> bool:
    """Hand ``event`` to the focused widget straight from the input driver.

    Textual delivers a key through two message queues (the app's, then the focused
    widget's); while hosts stream output each hop waits behind a loop turn of output and
    frames, which added tens of milliseconds per key.  A focused widget with a
    ``take_key(event) -> bool`` method (a console pane's :class:`TerminalView`, the
    broadcast bar) gets a key that no binding claims at once, when nothing is queued
    ahead of it; anything else (bindings, modals, keys still queued, keys the widget
    declines) takes the normal route, so the order of keys and the bindings are unchanged.
    """
    widget = app.focused
    take = getattr(widget, "take_key", None)
    if (widget is None or take is None or event.is_forwarded
            or not app._message_queue.empty() or not widget._message_queue.empty()
            or app.screen.maximized is not None or widget.screen is not app.screen):
        return False
    bindings = app.screen.active_bindings
    if any(key in bindings for key in event.aliases):
        return False
    app.app_focus = True
    return bool(take(event))


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
        accept_new: record unknown host keys without asking (default: ask in a modal).
        audit_path: where the audit log goes (default: the XDG state dir).
        connect: open the SSH connections on start.
    """
    from tui.core.audit import AuditLog

    # In the app an unknown key is always a question for the user (the modal); a changed
    # key is refused by the policy without asking.  --accept-new records without asking.
    policy = HostKeyPolicy(mode="accept-new")
    audit = AuditLog.for_inventory(inventory, audit_path)
    fleet = Fleet.from_inventory(inventory, host_keys=policy, audit=audit)
    app = HardwayApp(inventory, fleet, connect=connect)
    if not accept_new:
        policy.confirm = app.ask_host_key
    return app
