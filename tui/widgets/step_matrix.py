"""StepMatrix: any :class:`~tui.core.plan.Plan` as a steps x hosts table, live.

Generic over :mod:`tui.core.plan`: rows are the plan's steps (its gate too, in rolling
mode), columns its hosts.  A preview marks each cell "to do" or "skipped" (with the
check's reason); then every :class:`~tui.core.plan.PlanEvent` updates one cell by its
keys (row = step, column = host), never rebuilding the table.  :class:`StepDetail` shows
one step's state on every host with the detail the cells have no room for.

Usage::

    matrix.show_plan(plan)                 # or show_steps(names, hosts)
    matrix.show_preview(await plan.preview())
    result = await plan.run(matrix.apply)  # on the app's loop
    detail.show(matrix.focus_step(), matrix.column(matrix.focus_step()))
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from rich.table import Table
from rich.text import Text
from textual.timer import Timer
from textual.widgets import DataTable, Static

from tui.core.plan import Plan, PlanEvent, StepPreview, StepState
from tui.widgets import format as display

CellKind = StepState | Literal["todo"]
"""A plan state, or ``todo``: the preview says the step has work on this host."""

GLYPH: dict[str, str] = {"pending": "·", "todo": "○", "checking": "…", "skipped": "↷",
                         "running": "▶", "done": "✔", "failed": "✖"}
WORD: dict[str, str] = {"pending": "pending", "todo": "to do", "checking": "checking",
                        "skipped": "skipped", "running": "running", "done": "done",
                        "failed": "failed"}
STYLE: dict[str, str] = {"pending": "dim", "todo": "cyan", "checking": "cyan",
                         "skipped": "dim", "running": "bold yellow", "done": "green",
                         "failed": "bold red"}
HOST_WIDTH = 15
"""Cell width: ``▶ running 4m05s`` fits, so a cell's text never resizes its column."""
TICK = 1.0
"""Seconds between two updates of the running cells' elapsed time."""


def short_duration(seconds: float) -> str:
    """``1.23s``, ``12.3s``, ``4m05s``: a duration that fits a cell."""
    return display.format_duration(seconds).replace(" min ", "m").replace(" s", "s")


@dataclass(frozen=True)
class CellState:
    """What one (step, host) cell shows.

    Attributes:
        kind: the plan state, or ``todo`` after a preview.
        detail: the skip reason, what was done, why it failed, or the preview's summary.
        duration: seconds the step took there (done and failed), or has been running
            (running: updated every :data:`TICK` seconds).
        started: ``time.monotonic()`` when it started running (running only).
    """

    kind: CellKind
    detail: str = ""
    duration: float | None = None
    started: float | None = None

    def cell(self) -> Text:
        """The cell's text: glyph, word, and the duration when there is one."""
        text = f"{GLYPH[self.kind]} {WORD[self.kind]}"
        if self.duration is not None and self.kind in ("running", "done", "failed"):
            text += f" {short_duration(self.duration)}"
        return Text(text, style=STYLE[self.kind], no_wrap=True, overflow="ellipsis")


PENDING = CellState("pending")


def preview_summary(item: StepPreview) -> CellState:
    """A preview as a cell: skipped with the check's reason, or what is to do."""
    if item.done is not None:
        return CellState("skipped", item.done)
    preview = item.preview
    changed = [f.path for f in preview.files if f.changed]
    parts = []
    if changed:
        parts.append(f"write {', '.join(changed)}")
    if preview.commands:
        parts.append("run " + "; ".join(preview.commands))
    parts += list(preview.notes)[:1] if not parts else []
    return CellState("todo", "; ".join(parts))


class StepMatrix(DataTable[Text]):
    """A plan's steps x hosts (see the module docstring)."""

    DEFAULT_CSS = """
    StepMatrix { height: auto; border: round $primary 50%; border-title-color: $primary; }
    StepMatrix:focus { border: round $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="cell", zebra_stripes=False)
        self.steps: list[str] = []
        self.hosts: list[str] = []
        self._cells: dict[tuple[str, str], CellState] = {}
        self._ticker: Timer | None = None

    # -- shape --------------------------------------------------------------------------

    def show_plan(self, plan: Plan) -> None:
        """Rows for ``plan``'s steps (and gate), columns for its hosts, all pending."""
        steps = [s.name for s in plan.steps]
        if plan.mode == "rolling" and plan.gate is not None:
            steps.append(plan.gate_name)
        self.show_steps(steps, plan.hosts)

    def show_steps(self, steps: Sequence[str], hosts: Sequence[str]) -> None:
        """Rows ``steps``, columns ``hosts``, every cell pending (the table is rebuilt only
        when the shape changes)."""
        self._cells = {}
        if list(steps) == self.steps and list(hosts) == self.hosts and self.row_count:
            for step in self.steps:
                for host in self.hosts:
                    self.update_cell(step, host, PENDING.cell())
            return
        self.steps, self.hosts = list(steps), list(hosts)
        self.clear(columns=True)
        self.add_column(Text("step"), key="step", width=max(map(len, self.steps), default=4))
        for host in self.hosts:
            self.add_column(Text(host), key=host, width=max(HOST_WIDTH, len(host)))
        for step in self.steps:
            self.add_row(Text(step, style="bold"), *[PENDING.cell() for _ in self.hosts],
                         key=step)
        if self.row_count:
            self.move_cursor(row=0, column=1)

    # -- state --------------------------------------------------------------------------

    def show_preview(self, preview: Mapping[str, Sequence[StepPreview]]) -> None:
        """Mark every previewed cell "to do" or "skipped" with the check's reason."""
        for items in preview.values():
            for item in items:
                self._set(item.step, item.host, preview_summary(item))

    def apply(self, event: PlanEvent) -> None:
        """A plan event: update its cell (a pending event keeps the preview's mark); a
        running cell then counts its elapsed time every :data:`TICK` seconds."""
        if event.state == "pending" and (event.step, event.host) in self._cells:
            return
        if event.state == "running":
            state = CellState("running", event.detail, event.duration or 0.0,
                              started=time.monotonic())
            self._set(event.step, event.host, state)
            if self._ticker is None:
                self._ticker = self.set_interval(TICK, self._tick)
            return
        self._set(event.step, event.host,
                  CellState(event.state, event.detail, event.duration))

    def _tick(self) -> None:
        """Every running cell's elapsed time; the ticker stops when nothing runs."""
        now = time.monotonic()
        running = [(key, state) for key, state in self._cells.items()
                   if state.kind == "running" and state.started is not None]
        for (step, host), state in running:
            assert state.started is not None
            self._set(step, host, replace(state, duration=now - state.started))
        if not running and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _set(self, step: str, host: str, state: CellState) -> None:
        if step not in self.steps or host not in self.hosts:
            return  # a step or host this matrix does not show
        if self._cells.get((step, host)) == state:
            return
        self._cells[(step, host)] = state
        self.update_cell(step, host, state.cell())

    def state(self, step: str, host: str) -> CellState:
        """The cell of ``step`` on ``host``."""
        return self._cells.get((step, host), PENDING)

    def column(self, step: str) -> list[tuple[str, CellState]]:
        """``step`` on every host, in column order."""
        return [(host, self.state(step, host)) for host in self.hosts]

    @property
    def active_step(self) -> str | None:
        """The first step checking or running on some host (None: nothing runs)."""
        for step in self.steps:
            if any(self.state(step, h).kind in ("checking", "running") for h in self.hosts):
                return step
        return None

    @property
    def failed(self) -> tuple[str, str] | None:
        """The first failed (step, host), in plan order (None: none failed)."""
        for step in self.steps:
            for host in self.hosts:
                if self.state(step, host).kind == "failed":
                    return step, host
        return None

    def focus_step(self) -> str | None:
        """The step the detail shows: the running one, else the cursor's row."""
        active = self.active_step
        if active is not None:
            return active
        if not self.steps:
            return None
        return self.steps[min(self.cursor_coordinate.row, len(self.steps) - 1)]

    def cursor_host(self) -> str | None:
        """The host of the cursor's column (None on the step column)."""
        column = self.cursor_coordinate.column
        if not self.hosts or column == 0:
            return None
        return self.hosts[min(column - 1, len(self.hosts) - 1)]

    def point_at(self, step: str, host: str) -> None:
        """Move the cursor to (``step``, ``host``)."""
        if step in self.steps and host in self.hosts:
            self.move_cursor(row=self.steps.index(step), column=self.hosts.index(host) + 1)


class StepDetail(Static):
    """One step on every host: state, duration and the full detail, one line each."""

    DEFAULT_CSS = """
    StepDetail { height: auto; border: round $primary 50%; padding: 0 1;
                 border-title-color: $primary; }
    """

    def show(self, step: str | None, cells: Sequence[tuple[str, CellState]], *,
             wrap: bool = True, selected: str | None = None) -> None:
        """Show ``step``'s ``cells`` (host, state), the ``selected`` host marked;
        ``wrap`` False: one line per host, the detail cut with an ellipsis."""
        if step is None:
            self.border_title = "step"
            self.update(Text("No plan yet.", style="dim"))
            return
        self.border_title = f"{step} · per host"
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1, no_wrap=not wrap)
        for host, state in cells:
            mark = "▸ " if host == selected else "  "
            grid.add_row(Text(mark + host, style="bold"), state.cell(),
                         Text(display.stable(state.detail) or "–",
                              style="red" if state.kind == "failed" else ""))
        self.update(grid)


__all__ = ["CellState", "StepDetail", "StepMatrix", "preview_summary", "short_duration"]
