"""SearchModal: ask for a pattern to find in the panes' scrollback."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class SearchModal(ModalScreen[str]):
    """One line: the text to find (case-insensitive). Dismisses with it, or "" on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss('')", "Cancel", id="cancel-search"),
    ]

    DEFAULT_CSS = """
    SearchModal { align: center top; }
    SearchModal > Vertical {
        width: 70; height: auto; margin-top: 3; padding: 0 1;
        border: round $primary; background: $surface;
    }
    """

    def __init__(self, scope: str) -> None:
        """Args:
            scope: who is searched, e.g. ``controller-0`` or ``every pane``.
        """
        super().__init__()
        self.scope = scope

    def compose(self) -> ComposeResult:
        """A label and the input."""
        with Vertical():
            yield Label(f"Search the scrollback of {self.scope} (case-insensitive)")
            yield Input(placeholder="text to find, e.g. error or certificate", id="search")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Search for what was typed."""
        self.dismiss(event.value)
