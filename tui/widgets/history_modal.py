"""HistorySearchModal: ctrl+r in the bar, the bar's history filtered as you type."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList


class HistorySearchModal(ModalScreen[str | None]):
    """A query line over the matching history lines, newest first. Enter takes the
    highlighted line into the bar (to edit or send), Esc leaves the bar as it was;
    up/down or ctrl+r move through the matches."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="cancel-history"),
        Binding("down,ctrl+r", "move(1)", "Older", show=False, priority=True),
        Binding("up,ctrl+s", "move(-1)", "Newer", show=False, priority=True),
    ]

    DEFAULT_CSS = """
    HistorySearchModal { align: center top; }
    HistorySearchModal > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 80%; margin-top: 2;
        padding: 0 1; border: round $primary; background: $surface;
    }
    HistorySearchModal OptionList { height: auto; max-height: 16; border: none; }
    HistorySearchModal #history-empty { color: $text-muted; }
    """

    def __init__(self, search: Callable[[str], list[str]], query: str = "") -> None:
        """Args:
            search: the history's search (query -> lines, newest first).
            query: what the bar held (the first filter).
        """
        super().__init__()
        self.search = search
        self.query_text = query

    def compose(self) -> ComposeResult:
        """The query, the matches, a line when there are none."""
        with Vertical():
            yield Label("History (ctrl+r): type to filter · Enter takes the line · Esc "
                        "cancels")
            yield Input(self.query_text, placeholder="text in an earlier line",
                        id="history-query")
            yield OptionList(id="history-matches")
            yield Label("", id="history-empty")

    def on_mount(self) -> None:
        """Show the first matches."""
        self._fill(self.query_text)

    @on(Input.Changed, "#history-query")
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def _fill(self, query: str) -> None:
        matches = self.search(query)
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(matches)
        if matches:
            options.highlighted = 0
        self.query_one("#history-empty", Label).update(
            "" if matches else f"no earlier line contains {query!r}")

    def action_move(self, step: int) -> None:
        """Highlight the next older (1) or newer (-1) match."""
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = max(0, min(options.option_count - 1, current + step))

    @on(Input.Submitted, "#history-query")
    def _take(self) -> None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is None or not options.option_count:
            self.dismiss(None)
            return
        self.dismiss(str(options.get_option_at_index(index).prompt))

    @on(OptionList.OptionSelected)
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.prompt))
