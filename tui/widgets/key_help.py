"""KeyHelpModal: every key of the screen, what follows ctrl+g, and the screen's notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


@dataclass(frozen=True)
class HelpSection:
    """One titled block of the help: (keys, meaning) rows."""

    title: str
    rows: tuple[tuple[str, str], ...]


def help_table(section: HelpSection) -> Table:
    """A section as a two-column table (keys bold, meanings wrapped)."""
    table = Table(title=section.title, title_justify="left", title_style="bold",
                  show_header=False, box=None, padding=(0, 1), expand=True)
    table.add_column("keys", style="bold", no_wrap=True)
    table.add_column("meaning", ratio=1)
    for keys, meaning in section.rows:
        table.add_row(Text(keys), Text(meaning))
    return table


class KeyHelpModal(ModalScreen[None]):
    """The key help (ctrl+g ?, or ? where no pane or bar takes it): a scrollable list of
    sections, Esc, q or ? closes it. The screen behind stays visible, dimmed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="close-help",
                priority=True),
        Binding("down,j", "scroll(1)", "Down", show=False, priority=True),
        Binding("up,k", "scroll(-1)", "Up", show=False, priority=True),
    ]

    DEFAULT_CSS = """
    KeyHelpModal { align: center middle; }
    KeyHelpModal > VerticalScroll {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        padding: 0 1; border: round $primary; background: $surface;
        border-title-align: left; border-subtitle-align: right;
    }
    KeyHelpModal Static { margin-bottom: 1; }
    KeyHelpModal #help-close { color: $text-muted; }
    """

    def __init__(self, title: str, sections: Sequence[HelpSection]) -> None:
        """Args:
            title: what the help is about (the screen's name).
            sections: the blocks, in order.
        """
        super().__init__()
        self.help_title = title
        self.sections = tuple(sections)

    def compose(self) -> ComposeResult:
        """One table per section, then how to close."""
        with VerticalScroll() as scroll:
            scroll.border_title = f"Keys · {self.help_title}"
            scroll.border_subtitle = "Esc closes"
            for section in self.sections:
                yield Static(help_table(section))
            yield Label("Esc, q or ? closes · ↑↓ scroll", id="help-close")

    def action_scroll(self, lines: int) -> None:
        """Scroll the help by lines."""
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)
