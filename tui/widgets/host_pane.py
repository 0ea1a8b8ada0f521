"""HostPane: one host's terminal with a title that says everything about the host.

The border title shows the name, address, connection state and whether the host is in
the broadcast set; the border subtitle shows the last command's exit code and duration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive

from tui.core.console.events import HostState
from tui.core.inventory.model import Host
from tui.core.term import Terminal
from tui.widgets import format
from tui.widgets.terminal_view import TerminalView

APP_KEYS = ("f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10")
"""Keys a pane leaves to the console's bindings; every other key goes to the host."""


def clock() -> str:
    """The local time for the marks a pane writes in its scrollback."""
    return time.strftime("%H:%M:%S")


@dataclass(frozen=True)
class PaneStatus:
    """What the pane title shows; built by the console screen from the model."""

    state: HostState = HostState.CONNECTING
    reason: str = ""
    in_set: bool = True
    exit_status: int | None = None
    exit_duration: float | None = None
    running: bool = False
    transcript: bool = False
    retry: tuple[int, float] | None = None


class HostPane(Vertical):
    """A host's persistent shell: title + terminal."""

    DEFAULT_CSS = """
    HostPane { border: round $primary 30%; height: 1fr; width: 1fr; }
    """

    status: reactive[PaneStatus] = reactive(PaneStatus)
    """The state shown in the title bar (an equal status changes nothing: each redraw of
    the pane's border repaints its whole frame)."""

    @dataclass
    class TitleClicked(Message):
        """The user clicked the pane's title: toggle the host in the broadcast set."""

        pane: HostPane

    def __init__(self, host: Host, *, scrollback: int = 10_000) -> None:
        super().__init__(id=f"pane-{host.name}")
        self.host = host
        self.terminal = Terminal(80, 24, scrollback=scrollback)
        self._told: set[str] = set()  # failure reasons already written into the pane
        self._was_down = False  # down since its last session (the next one is marked)

    def compose(self) -> ComposeResult:
        """The terminal view fills the pane."""
        yield TerminalView(self.terminal, reserved_keys=APP_KEYS, id=f"term-{self.host.name}")

    @property
    def view(self) -> TerminalView:
        """The pane's terminal view."""
        return self.query_one(TerminalView)

    def feed(self, data: str) -> None:
        """Show output from the host (ignored once the pane is gone, e.g. while quitting)."""
        if self.is_mounted and self.children:
            self.view.feed(data)

    def watch_status(self, old: PaneStatus, status: PaneStatus) -> None:
        """Redraw the title and the state classes; say in the pane when the host went down."""
        down = status.state in (HostState.FAILED, HostState.CLOSED)
        was_down, self._was_down = self._was_down, (
            self._was_down or down) and status.state is not HostState.READY
        if status.state is HostState.READY:
            self._told.clear()
        lost = old.state is HostState.READY and status.state is not HostState.READY and (
            down or bool(status.reason))
        if lost:  # the session ended, whichever connection noticed first (the app fleet's
            # reconnecting, or the shell's own closing)
            reason = status.reason or status.state
            self._told.add(reason)
            again = ("reconnecting by itself with backoff; F5 tries now"
                     if status.retry or status.state is HostState.CONNECTING
                     else "F5 reconnects")
            self.feed(f"\r\n\x1b[1;31m✖ session lost {clock()}: {reason}\x1b[0m\r\n"
                      f"\x1b[2m  {again}\x1b[0m\r\n")
        elif down and status.reason and status.reason not in self._told:
            # why it failed, whole (a changed host key's fingerprints and the ssh-keygen
            # hint do not fit a title); each reason once, however often it is retried
            self._told.add(status.reason)
            self.feed(f"\r\n\x1b[1;31m✖ {status.reason}\x1b[0m\r\n")
        elif status.state is HostState.READY and was_down:
            self.feed(f"\r\n\x1b[1;32m── new session {clock()} ──\x1b[0m\r\n")
        self.set_class(not status.in_set, "-out")
        self.set_class(down, "-down")
        self.set_class(status.state is HostState.READY, "-up")
        title, subtitle = self._title(status), self._subtitle(status)
        if title != self.border_title:
            self.border_title = title
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def _title(self, status: PaneStatus) -> str:
        host = self.host
        mark = "[b]◆[/b]" if status.in_set else "◇"
        glyph = {"ready": "●", "connecting": "…", "failed": "✖", "closed": "○"}.get(
            status.state, "·")
        state = str(status.state)
        if status.retry is not None and status.state is not HostState.READY:
            attempt, delay = status.retry  # in place of the state word: a title is short
            state = f"retry {attempt} in {delay:g} s"
        title = f"{mark} [b]{escape(host.name)}[/b] {host.address} {glyph} {state}"
        if status.reason and status.state is not HostState.READY:
            title += f": {escape(status.reason)}"
        if status.transcript:
            title += " ⏺ rec"
        return title

    def _subtitle(self, status: PaneStatus) -> str:
        if status.running:
            return "running…"
        if status.exit_status is None:
            return ""
        code = status.exit_status
        badge = f"[b]exit {code}[/b]" if code else "exit 0"
        if status.exit_duration is not None:
            badge += f" · {format.format_duration(status.exit_duration)}"
        return badge

    def on_click(self, event: events.Click) -> None:
        """A click on the title row toggles broadcast membership; elsewhere focuses."""
        if event.y == 0:
            event.stop()
            self.post_message(self.TitleClicked(self))
        else:
            self.view.focus()
