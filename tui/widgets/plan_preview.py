"""PlanPreviewScreen: the exact files and commands a plan will touch, then go or cancel."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.core.pki.report import render_preview
from tui.core.plan import StepPreview
from tui.widgets import format as display


class PlanPreviewScreen(ModalScreen[bool]):
    """Show a plan's preview; dismiss True to run it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(False)", "Cancel", id="cancel-plan"),
    ]

    DEFAULT_CSS = """
    PlanPreviewScreen { align: center middle; }
    PlanPreviewScreen > Vertical {
        width: 92%; height: 90%; border: round $accent; background: $surface; padding: 0 1;
    }
    PlanPreviewScreen #plan-text { height: 1fr; }
    PlanPreviewScreen #plan-buttons { height: auto; align-horizontal: right; }
    PlanPreviewScreen Button { margin-left: 2; }
    """

    def __init__(self, title: str, preview: Mapping[str, Sequence[StepPreview]],
                 go_label: str) -> None:
        super().__init__()
        self._title = title
        self._preview = preview
        self._go = go_label

    def compose(self) -> ComposeResult:
        """The rendered preview and the two buttons."""
        buffer = io.StringIO()
        render_preview(buffer, self._preview, colour=True)
        with Vertical() as box:
            box.border_title = escape(self._title)
            box.border_subtitle = "esc cancel"
            yield VerticalScroll(Static(Text.from_ansi(display.stable(buffer.getvalue()))),
                                 id="plan-text")
            with Horizontal(id="plan-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self._go, id="go", variant="warning")

    def on_mount(self) -> None:
        """Cancel is focused: running is a deliberate choice."""
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Answer."""
        self.dismiss(event.button.id == "go")
