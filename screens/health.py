"""Health screen: the live grid of every probe of the control plane, and the VIP guard.

A thin view over the workbench's health engine (:class:`tui.core.health.engine.HealthWork`,
the poller ``hardway health`` uses).  Rows are the controllers, the VIP, the hypervisor
and the DNS server; columns the probes.  The poller runs in a worker while the screen is
shown (rounds never overlap; keys stay live; another screen in front pauses it, so the
console's keys do not share the loop with the probes); its events mark cells dirty and a
short timer applies them by key, at most four times a second (each application redraws
the rows it touches: on the first round that, not the probes, was the screen's main
cost).  The first round starts when the screen is created, before its widgets are
composed and laid out, so the probes' connections (jump-host channels, TLS handshakes)
overlap the screen's first layout; the first results are painted at once, later ones
batch, and a round's end is painted when it comes.  Enter opens a cell's
drill-down; ``g`` starts or stops the VIP guard (issue 16) in a worker (it keeps running
on other screens), whose swaps land in the transition log below the grid; Esc goes back
to the console.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Header, Static
from textual.worker import Worker

from screens.health_detail import ProbeDetailScreen, log_line
from tui.boundary import report_failure, start_action
from tui.core.errors import UserError
from tui.core.health.engine import GuardToggled, HealthWork, WorkEvent
from tui.core.health.model import Group
from tui.core.health.poller import ProbeUpdated, RoundFinished, RoundStarted, StateChanged
from tui.core.health.report import RoundReport, Verdict
from tui.core.lb.guard import GuardAction, GuardEvent
from tui.core.workbench import Workbench
from tui.widgets.footer import KeyFooter
from tui.widgets.health_grid import HealthGrid
from tui.widgets.internals import BatchAwareScreen

VERDICT_STYLE = {Verdict.HEALTHY: "bold green", Verdict.DEGRADED: "bold yellow",
                 Verdict.DOWN: "bold red"}
FLUSH_DELAY = 0.25
"""Seconds between a probe's result and its cell's update (results batch meanwhile)."""
FIRST_PAINT_DELAY = 0.01
"""The same for the screen's first results (nothing to batch with yet)."""
LOG_LINES = 50
"""Transition-log lines shown (the engine keeps more)."""
GUARD_GROUP = "vip-guard"
FIRST = (Group.ETCD, Group.APISERVER, Group.VIP)
"""Column families the summary names first (what an operator looks for)."""


class HealthScreen(BatchAwareScreen):
    """Probes x rows, a summary line, the transition log (see the module docstring)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.switch_mode('console')", "Console", id="leave",
                tooltip="Back to the console"),
        Binding("enter", "drill", "Details", id="health-drill", show=True,
                tooltip="The probe's full output, its last error and its transitions"),
        Binding("g", "toggle_guard", "VIP guard", id="health-guard",
                tooltip="Start or stop the VIP guard: controllers whose /readyz is DOWN "
                        "leave the hypervisor's round robin (never the last one)"),
        Binding("r", "poke", "Probe now", id="health-poke",
                tooltip="Start the next round now"),
    ]
    PALETTE: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("Toggle the VIP guard", "screen.toggle_guard",
         "keep the hypervisor's VIP rules to the controllers that answer /readyz"),
        ("Probe details", "screen.drill", "the selected cell's full output and transitions"),
        ("Probe now", "screen.poke", "start the next health round now"),
    )

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench
        self.work: HealthWork = workbench.health
        self.report: RoundReport | None = None
        self._dirty: set[str] = set()
        self._flush_timer: Timer | None = None
        self._guard_worker: Worker[object] | None = None
        self._poll_worker: Worker[None] | None = None
        self._unsubscribe = self.work.subscribe(self._on_event)
        self._painted = False
        self.failure: str | None = None
        """Why the probes could not start (shown instead of the grid)."""
        self._start_early()

    def _start_early(self) -> None:
        """Start the first round now, before compose (a missing CA waits for on_mount,
        which shows why)."""
        try:
            self.work.poller  # noqa: B018 - builds the probes; raises without a CA
        except UserError:
            return
        self._poll_worker = self.run_worker(self._poll(), name="health rounds",
                                            group="health-poll", exit_on_error=False)

    def compose(self) -> ComposeResult:
        """Header, summary, grid, transition log, footer."""
        yield Header(icon="⎈")
        yield Static("", id="health-summary")
        yield HealthGrid(id="health-grid")
        with VerticalScroll(id="health-log"):
            yield Static("", id="health-log-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Build the grid from the probes and start polling in a worker."""
        grid = self.query_one(HealthGrid)
        grid.border_title = "Health"
        self.query_one("#health-log", VerticalScroll).border_title = (
            "Transitions · newest first")
        try:
            poller = self.work.poller
        except UserError as error:
            self._show_failure(str(error))
            report_failure(self.app, error, action="health")
            return
        grid.build(poller.cells.values())
        grid.border_subtitle = (f"every {poller.interval:g} s · rise "
                                f"{self.work.settings.rise} / fall {self.work.settings.fall}"
                                " · Enter details")
        self._render_summary()
        self._render_log()
        self._start_polling()
        if self._dirty or self.report is not None:
            self._schedule_flush()  # results that came in while the screen was composed

    def _start_polling(self) -> None:
        worker = self._poll_worker
        built = self.query_one(HealthGrid).row_count > 0
        if built and self.failure is None and (worker is None or worker.is_finished):
            self._poll_worker = self.run_worker(self._poll(), name="health rounds",
                                                group="health-poll", exit_on_error=False)

    def on_screen_suspend(self) -> None:
        """Another screen is shown: stop polling (the console's keys come first), unless
        it is this screen's own drill-down on top."""
        if self in self.app.screen_stack:
            return
        if self._poll_worker is not None:
            self._poll_worker.cancel()
            self._poll_worker = None

    def on_screen_resume(self) -> None:
        """Shown again: the next round starts at once."""
        self._start_polling()

    def _show_failure(self, reason: str) -> None:
        """No grid: the reason, and where the app looks for the PKI, in its place."""
        self.failure = reason
        self.query_one(HealthGrid).display = False
        pane = self.query_one("#health-log", VerticalScroll)
        pane.border_title = "Why the probes cannot start"
        text = Text(reason + "\n\n", style="bold red")
        text.append(f"The app reads the cluster CA and kubernetes.pem from "
                    f"{self.work.pki_dir}/ (pki/ beside the inventory); `hardway certs "
                    "issue` creates them, `hardway health --pki DIR` reads another "
                    "directory.", style="")
        self.query_one("#health-log-text", Static).update(text)
        self._render_summary()

    def on_unmount(self) -> None:
        """Stop listening."""
        self._unsubscribe()

    async def _poll(self) -> None:
        try:
            await self.work.run()
        except Exception as error:  # the boundary: a notification, the app keeps going
            report_failure(self.app, error, action="health rounds")

    # -- events (on the app's loop) -------------------------------------------------------

    def _on_event(self, event: WorkEvent) -> None:
        if not self.is_mounted:  # the first round started before compose
            if isinstance(event, ProbeUpdated):
                self._dirty.add(event.cell.key)
            elif isinstance(event, RoundFinished):
                self.report = event.report
            return
        if isinstance(event, ProbeUpdated):
            self._dirty.add(event.cell.key)
            self._schedule_flush()
        elif isinstance(event, RoundFinished):
            self.report = event.report
            self._flush_now()  # the round is complete: nothing left to batch with
        elif isinstance(event, StateChanged):
            self._render_log()
        elif isinstance(event, GuardEvent):
            self._on_guard(event)
        elif isinstance(event, GuardToggled):
            self._render_summary()
            if not event.running:
                self.notify("VIP guard stopped; the rules stay as they are"
                            + (f": {event.reason}" if event.reason else ""),
                            severity="error" if event.reason else "information", timeout=6)
        elif isinstance(event, RoundStarted):
            return

    def _schedule_flush(self) -> None:
        if self._flush_timer is None and self.is_mounted:
            delay = FLUSH_DELAY if self._painted else FIRST_PAINT_DELAY
            self._flush_timer = self.set_timer(delay, self._flush)

    def _flush_now(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
        self._flush()

    def _flush(self) -> None:
        """Apply the cells that changed since the last flush, by key."""
        self._flush_timer = None
        self._painted = True
        dirty, self._dirty = self._dirty, set()
        cells = self.work.poller.cells
        with self.app.batch_update():
            self.query_one(HealthGrid).refresh_cells(cells[k] for k in dirty if k in cells)
            self._render_summary()

    def _on_guard(self, event: GuardEvent) -> None:
        self._render_log()
        self._render_summary()
        if event.action is GuardAction.KEPT_LAST:
            self.notify(f"Every controller is DOWN: the VIP guard keeps the rules for "
                        f"{', '.join(event.backends) or 'the last backend'} (it never removes "
                        "the last one)", title="VIP guard", severity="error", timeout=15)
        elif event.action is GuardAction.SWAP_FAILED:
            self.notify(f"The hypervisor refused the swap; the old rules stay in force: "
                        f"{event.reason}", title="VIP guard", severity="error", timeout=15)
        elif event.action in (GuardAction.SWAPPED, GuardAction.WOULD_SWAP):
            self.notify(event.line(), title="VIP guard", timeout=6)

    # -- rendering ------------------------------------------------------------------------

    def _render_summary(self) -> None:
        summary = self.query_one("#health-summary", Static)
        if self.failure is not None:
            summary.update(Text("✖ the probes cannot start (why: below)", style="bold red"))
            return
        report = self.report
        if report is None:
            line = Text("waiting for the first round…", style="dim")
        else:
            line = Text()
            line.append(report.verdict.value.upper(), style=VERDICT_STYLE[report.verdict])
        guard = self.work.guard
        line.append(" · guard ", style="dim")
        if guard is None:
            line.append("off", style="dim")
        else:
            rules = guard.in_rules
            line.append("ON", style="bold cyan")
            if rules is not None:
                line.append(f" → {', '.join(rules) or 'none'}", style="cyan")
        if report is not None:
            groups = sorted(report.summary, key=lambda s: (s.group not in FIRST,
                                                           FIRST.index(s.group)
                                                           if s.group in FIRST else 0))
            line.append(" · " + " · ".join(str(g) for g in groups))
            line.append(f" · round {report.round}", style="dim")
        summary.update(line)

    def _render_log(self) -> None:
        entries = list(self.work.log)[-LOG_LINES:][::-1]
        text = Text("\n").join(log_line(e) for e in entries) if entries else \
            Text("no transitions yet: probes change state after rise/fall results",
                 style="dim")
        self.query_one("#health-log-text", Static).update(text)

    # -- actions --------------------------------------------------------------------------

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        """Enter (or a click) on a cell: its drill-down."""
        event.stop()
        self.action_drill()

    def action_drill(self) -> None:
        """Open the selected probe's drill-down."""
        if self.failure is not None:
            return
        key = self.query_one(HealthGrid).key_at_cursor()
        if key is None:
            self.notify("Move to a probe's cell (not the host or latency column) for its "
                        "details.", severity="warning", timeout=4)
            return
        self.app.push_screen(ProbeDetailScreen(self.work, key))

    def action_poke(self) -> None:
        """Start the next round now."""
        if self.failure is None:
            self.work.poller.poke()

    def action_toggle_guard(self) -> None:
        """Start the VIP guard in a worker, or stop it."""
        worker = self._guard_worker
        if worker is not None and not worker.is_finished:
            worker.cancel()
            self._guard_worker = None
            return
        why = self.work.guard_unavailable()
        if why is not None:
            self.notify(f"The VIP guard cannot run: {why}.", severity="warning", timeout=6)
            return
        self._guard_worker = start_action(self, self.work.run_guard, group=GUARD_GROUP,
                                          label="VIP guard")
