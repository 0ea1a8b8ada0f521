"""QuitModal: ask once before closing live SSH sessions."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class QuitModal(ModalScreen[bool]):
    """"Quit hardway?" naming the sessions that would close: q, Enter or ctrl+q quit
    (True), Esc or n stays (False). The panes stay visible, dimmed, behind it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,enter,y", "dismiss(True)", "Quit", id="quit-yes", priority=True),
        Binding("escape,n", "dismiss(False)", "Stay", id="quit-no", priority=True),
    ]

    DEFAULT_CSS = """
    QuitModal { align: center middle; }
    QuitModal > Vertical {
        width: 72; height: auto; padding: 0 1;
        border: round $warning; background: $surface;
    }
    QuitModal #quit-keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, live: list[str]) -> None:
        """Args:
            live: the hosts whose sessions are open (at least one).
        """
        super().__init__()
        self.live = live

    def compose(self) -> ComposeResult:
        """The question, the hosts and the keys."""
        names = ", ".join(self.live[:6]) + (f" and {len(self.live) - 6} more"
                                            if len(self.live) > 6 else "")
        sessions = "session" if len(self.live) == 1 else "sessions"
        with Vertical():
            yield Label(f"Quit hardway? {len(self.live)} live SSH {sessions} will close:")
            yield Label(names, id="quit-hosts")
            yield Label("q or Enter quits · Esc stays · hardway --no-confirm never asks",
                        id="quit-keys")
