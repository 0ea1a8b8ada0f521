"""GatherScreen: per host exit code, duration and output of the last broadcast line.

Identical outputs are grouped (clush -b style) and minority outputs are shown as a diff
against the majority, so "which controller is different?" is one keypress away.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class GatherContent:
    """What the gather view shows for one way of comparing outputs.

    Attributes:
        title: the command line and a one-line verdict.
        blocks: (header, output, ok) per group of identical hosts, majority first.
        diff: unified diff of minority outputs against the majority ("" if none).
        rows: per host (name, state, exit code, duration, detail), inventory order.
    """

    title: str
    blocks: list[tuple[str, str, bool]]
    diff: str
    rows: list[tuple[str, str, str, str, str]]
    mode: str = ""
    """How outputs were compared, e.g. ``normalised: {name} {ip}`` or ``raw``."""


class GatherScreen(ModalScreen[None]):
    """A modal with the gathered result of one broadcast; ``r`` switches between the
    normalised comparison (each host's name, address and variables as ``{key}``) and the
    raw one when both are given."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f3", "dismiss", "Close", id="close-gather"),
        Binding("r", "raw", "Raw/normalised", id="gather-raw"),
    ]

    DEFAULT_CSS = """
    GatherScreen { align: center middle; }
    GatherScreen > VerticalScroll {
        width: 90%; height: 85%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, title: str, blocks: list[tuple[str, str, bool]], diff: str, *,
                 rows: list[tuple[str, str, str, str, str]] | None = None,
                 raw: GatherContent | None = None, mode: str = "") -> None:
        """Args:
            title: the command line and a one-line verdict.
            blocks: (header, output, ok) per group of identical hosts, majority first.
            diff: unified diff of minority outputs against the majority ("" if none).
            rows: per host (name, state, exit code, duration, detail), inventory order.
            raw: the raw comparison, when the one above is normalised (``r`` toggles).
            mode: how the outputs above were compared (shown under the view).
        """
        super().__init__()
        self._shown = GatherContent(title, blocks, diff, rows or [], mode)
        self._other = raw

    def compose(self) -> ComposeResult:
        """The per-host table, the blocks, then the diff."""
        scroll = VerticalScroll(Static(self._body(), id="gather-body"))
        self._decorate(scroll)
        yield scroll

    def _decorate(self, scroll: VerticalScroll) -> None:
        scroll.border_title = escape(self._shown.title)
        hint = "r raw" if self._other is not None and self._raw_is_other else \
            "r normalised" if self._other is not None else ""
        parts = (escape(self._shown.mode), hint, "esc close")
        scroll.border_subtitle = " · ".join(p for p in parts if p)

    _raw_is_other = True

    def action_raw(self) -> None:
        """Switch between the normalised and the raw comparison."""
        if self._other is None:
            return
        self._shown, self._other = self._other, self._shown
        self._raw_is_other = not self._raw_is_other
        self.query_one("#gather-body", Static).update(self._body())
        self._decorate(self.query_one(VerticalScroll))

    def _body(self) -> Group:
        content = self._shown
        parts: list[RenderableType] = []
        if content.rows:
            table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
            for column in ("host", "state", "exit", "took", ""):
                table.add_column(column)
            for name, state, code, took, detail in content.rows:
                style = "green" if code == "0" else "red" if code not in ("-", "") else "yellow"
                table.add_row(name, state, Text(code, style=style), took, detail)
            parts.append(table)
        for header, output, ok in content.blocks:
            parts.append(Rule(Text(header, style="bold green" if ok else "bold red"),
                              align="left", style="dim"))
            parts.append(Text(output.rstrip("\n") or "(no output)",
                              style="" if output.strip() else "dim italic"))
        if content.diff:
            parts.append(Rule(Text("differences from the majority", style="bold yellow"),
                              align="left", style="dim"))
            parts.append(render_diff(content.diff))
        return Group(*parts)

    async def action_dismiss(self, result: None = None) -> None:
        """Close the view."""
        self.dismiss(result)
