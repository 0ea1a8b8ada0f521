"""GatherScreen: per host exit code, duration and output of the last broadcast line.

Identical outputs are grouped (clush -b style) and minority outputs are shown as a diff
against the majority, so "which controller is different?" is one keypress away.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def render_diff(diff: str) -> Text:
    """Colour a unified diff: additions green, removals red, headers bold."""
    text = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        else:
            style = ""
        text.append(line + "\n", style=style)
    return text


class GatherScreen(ModalScreen[None]):
    """A modal with the gathered result of one broadcast."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f3", "dismiss", "Close", id="close-gather"),
    ]

    DEFAULT_CSS = """
    GatherScreen { align: center middle; }
    GatherScreen > VerticalScroll {
        width: 90%; height: 85%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, title: str, blocks: list[tuple[str, str, bool]], diff: str, *,
                 rows: list[tuple[str, str, str, str, str]] | None = None) -> None:
        """Args:
            title: the command line and a one-line verdict.
            blocks: (header, output, ok) per group of identical hosts, majority first.
            diff: unified diff of minority outputs against the majority ("" if none).
            rows: per host (name, state, exit code, duration, detail), inventory order.
        """
        super().__init__()
        self._title = title
        self._blocks = blocks
        self._diff = diff
        self._rows = rows or []

    def compose(self) -> ComposeResult:
        """The blocks, then the diff."""
        parts: list[RenderableType] = []
        if self._rows:
            table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
            for column in ("host", "state", "exit", "took", ""):
                table.add_column(column)
            for name, state, code, took, detail in self._rows:
                style = "green" if code == "0" else "red" if code not in ("-", "") else "yellow"
                table.add_row(name, state, Text(code, style=style), took, detail)
            parts.append(table)
        for header, output, ok in self._blocks:
            parts.append(Rule(Text(header, style="bold green" if ok else "bold red"),
                              align="left", style="dim"))
            parts.append(Text(output.rstrip("\n") or "(no output)",
                              style="" if output.strip() else "dim italic"))
        if self._diff:
            parts.append(Rule(Text("differences from the majority", style="bold yellow"),
                              align="left", style="dim"))
            parts.append(render_diff(self._diff))
        scroll = VerticalScroll(Static(Group(*parts), id="gather-body"))
        scroll.border_title = escape(self._title)
        scroll.border_subtitle = "esc close"
        yield scroll

    async def action_dismiss(self, result: None = None) -> None:
        """Close the view."""
        self.dismiss(result)
