"""Drill-down of one health probe: its full output, the last error and its transition log.

Opened with Enter on a cell of the health grid; it follows the probe live (every result
re-renders it) and Esc closes it.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.core.health.engine import HealthWork, LogEntry, WorkEvent
from tui.core.health.model import Status
from tui.core.health.poller import ProbeUpdated
from tui.core.lb.guard import GuardEvent
from tui.widgets.footer import KeyFooter
from tui.widgets.health_grid import cell_text, latency_text

STATUS_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


def clock_text(at: float) -> str:
    """``HH:MM:SS`` in local time."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def log_line(entry: LogEntry) -> Text:
    """One transition-log line, red when it needs the user's eyes."""
    line = Text(f"{clock_text(entry.at)} ", style="dim")
    line.append(entry.text, style="bold red" if entry.alarm else "")
    return line


def detail_renderable(work: HealthWork, key: str) -> RenderableType:
    """Everything known about probe ``key``: state, output, last error, transitions."""
    cell = work.poller.cells[key]
    snap = cell.snapshot()
    outcome = snap.outcome
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="dim", no_wrap=True)
    facts.add_column()
    facts.add_row("target", snap.target)
    facts.add_row("state", Text.assemble(
        cell_text(snap), f" · {snap.state.value.upper()}" if snap.counter else "",
        f" · rise {cell.machine.rise} / fall {cell.machine.fall} · {snap.runs} runs"))
    if outcome is not None:
        facts.add_row("last", Text.assemble(
            (outcome.status.value.upper(), STATUS_STYLE[outcome.status]),
            f" at {clock_text(outcome.at)}", f" in {latency_text(outcome.latency)}"
            if outcome.latency is not None else "", f": {outcome.detail}"))
    entries = work.log_for(key)
    parts: list[RenderableType] = [facts, Text(f"\ntransitions ({len(entries)})",
                                               style="bold")]
    parts += [log_line(e) for e in entries] or [Text("none yet", style="dim")]
    error = work.last_error(key)
    parts.append(Text("\nlast error", style="bold"))
    if error is None:
        parts.append(Text("none since the screen opened", style="dim"))
    elif error is outcome:
        parts.append(Text("the last result (above; its output below)", style="red"))
    else:
        parts.append(Text(f"{clock_text(error.at)} {error.detail}", style="red"))
        if error.verbose.strip() and error.verbose.strip() != error.detail:
            parts.append(Text(error.verbose.rstrip(), style="dim"))
    parts.append(Text("\noutput", style="bold"))
    parts.append(Text(outcome.verbose.rstrip() or outcome.detail) if outcome is not None
                 else Text("waiting for the first answer…", style="dim"))
    return Group(*parts)


class ProbeDetailScreen(ModalScreen[None]):
    """One probe in full (see the module docstring)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back", id="health-detail-back",
                tooltip="Back to the health grid"),
    ]

    def __init__(self, work: HealthWork, key: str) -> None:
        super().__init__()
        self.work = work
        self.key = key

    def compose(self) -> ComposeResult:
        """The probe's details in a scrolling pane."""
        with VerticalScroll(id="health-detail"):
            yield Static(detail_renderable(self.work, self.key), id="health-detail-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Title the pane and follow the probe."""
        probe = self.work.poller.cells[self.key].probe
        pane = self.query_one("#health-detail", VerticalScroll)
        pane.border_title = f"{probe.row} · {probe.kind.value}"
        pane.border_subtitle = "Esc back"
        self._unsubscribe = self.work.subscribe(self._on_event)

    def on_unmount(self) -> None:
        """Stop following."""
        self._unsubscribe()

    def _on_event(self, event: WorkEvent) -> None:
        if (isinstance(event, ProbeUpdated) and event.cell.key == self.key) or \
                isinstance(event, GuardEvent):
            self.query_one("#health-detail-text", Static).update(
                detail_renderable(self.work, self.key))

    async def action_dismiss(self, result: None = None) -> None:
        """Close the drill-down."""
        self.dismiss(result)
