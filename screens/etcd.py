"""etcd screen: KTHW doc 07 as a previewed plan, step x host, then the live members.

A thin view over the workbench's etcd engine, the one ``hardway etcd`` uses
(:class:`tui.core.etcd.engine.EtcdWork`): the same :class:`PreparedEtcdPlan`, drawn
instead of printed.

* the step x host matrix (:class:`~tui.widgets.step_matrix.StepMatrix`) and, under it,
  the running step (or the cursor's) on every host;
* beside it, for the cursor's host: the plan as ``hardway etcd plan`` prints it (every
  step skipped with its reason or to do: the commands, the files with their diffs, the
  ``etcd.service`` among them), or, for a host that failed, the diagnosis above the tail
  of ``journalctl -u etcd``;
* once etcd answers (after a bootstrap, or on open when it already runs), the member
  table (name, ID, leader, health, RTT, DB size), refreshed every :data:`REFRESH` seconds
  by updating only the cells that changed.

Every action runs as a worker through :func:`tui.boundary.start_action`: keys stay live,
failures become notifications.  ``p`` previews, ``a`` previews then asks before applying,
``s`` asks every member for its status (diagnosing the unhealthy ones).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Header, Static

from tui.boundary import report_failure, start_action
from tui.core.errors import UserError
from tui.core.etcd.client import EtcdError
from tui.core.etcd.diagnose import Diagnosis
from tui.core.etcd.engine import (
    EtcdOptions,
    EtcdStatus,
    EtcdWork,
    FailureReport,
    MemberRow,
    PreparedEtcdPlan,
)
from tui.core.pki.report import render_preview
from tui.core.plan import PlanEvent, PlanResult, StepPreview
from tui.core.workbench import Workbench
from tui.widgets import format as display
from tui.widgets.footer import KeyFooter
from tui.widgets.internals import BatchAwareScreen
from tui.widgets.plan_preview import PlanPreviewScreen
from tui.widgets.step_matrix import StepDetail, StepMatrix

REFRESH = 2.0
"""Seconds between two rounds of the member table (counted from the end of a round)."""
JOURNAL_TAIL = 40
"""Journal lines shown under a failure's diagnosis."""
STEPS = ("binaries", "directories", "certificates", "unit", "start", "verify")
"""The bootstrap plan's steps (the matrix's rows before the first preview)."""
HEALTH_WIDTH = 24
"""Characters of an unhealthy member's reason in the member table."""
MEMBER_COLUMNS = (("name", "name"), ("id", "ID"), ("leader", "leader"),
                  ("health", "health"), ("rtt", "RTT"), ("db", "DB size"))


def short_health(row: MemberRow) -> str:
    """Why ``row`` is not healthy, short enough for its cell (``s`` gives the diagnosis)."""
    why = row.health.split(": ", 1)[1] if row.health.startswith("etcd at ") else row.health
    if not why.startswith("health "):  # "nothing listens there (connection refused)."
        why = why.split(" (", 1)[0]
    why = why.rstrip(".")
    return why if len(why) <= HEALTH_WIDTH else why[:HEALTH_WIDTH - 1] + "…"


def member_cells(row: MemberRow) -> dict[str, Text]:
    """The member table's cells for ``row``, by column key."""
    health = (Text("✔ healthy", style="green") if row.healthy
              else Text(f"✖ {short_health(row)}", style="bold red"))
    db = f"{row.db_size / 1024:.0f} KiB" if row.db_size is not None else "–"
    rtt = f"{row.rtt * 1000:.1f} ms" if row.rtt is not None else "–"
    return {"name": Text(row.name, style="bold"), "id": Text(row.member_id or "–"),
            "leader": Text("★ leader", style="bold yellow") if row.leader else Text(""),
            "health": health, "rtt": Text(rtt, justify="right"),
            "db": Text(db, justify="right")}


def plan_renderable(host: str, items: Sequence[StepPreview]) -> RenderableType:
    """``host``'s part of the plan, as ``hardway etcd plan`` prints it (commands, files,
    the unit's diff)."""
    if not items:
        return Text("Preview (p) checks every step on every controller and shows here what "
                    "this host gets: the commands, the files and the etcd.service diff.",
                    style="dim")
    buffer = io.StringIO()
    render_preview(buffer, {host: items}, colour=True)
    return Text.from_ansi(display.stable(buffer.getvalue()), no_wrap=True,
                          overflow="ellipsis")


def step_line(body: RenderableType, step: str | None) -> int:
    """The line of ``body`` (a host plan) where ``step`` starts (0: not found)."""
    if not isinstance(body, Text) or step is None:
        return 0
    for index, line in enumerate(body.plain.splitlines()):
        if line == f"  {step}" or line.startswith(f"  {step}: "):
            return index
    return 0


def failure_renderable(report: FailureReport, tail: int = JOURNAL_TAIL) -> RenderableType:
    """The diagnosis (or the bare failure) above the journal's tail."""
    parts: list[RenderableType] = []
    detail = report.detail
    said = "; ".join(d.summary for d in report.diagnoses)
    if said and detail.endswith(said):  # the step's detail ends with the diagnoses below
        detail = detail[:-len(said)].rstrip(": ")
    if detail:
        parts.append(Text(f"{report.step} failed: {display.stable(detail)}", style="red"))
    for diagnosis in report.diagnoses:
        head = Text("✖ ", style="bold red")
        head.append(display.stable(diagnosis.summary), style="bold")
        parts += [Text(""), head,
                  Text(f"  fix: {display.stable(diagnosis.fix)}", style="green"),
                  Text(f"  log: {display.stable(diagnosis.evidence)}", style="dim",
                       overflow="ellipsis", no_wrap=True)]
    if not report.diagnoses and report.journal:
        parts += [Text(""), Text("No known problem in this journal." if report.step in
                                 ("journal", "status") else "The journal holds no message "
                                 "hardway recognises; read its tail below.",
                                 style="dim" if report.step in ("journal", "status")
                                 else "yellow")]
    lines = report.journal[-tail:]
    if lines:
        parts += [Text(""), Text(f"journalctl -u etcd · {report.host} · last {len(lines)} "
                                 "lines", style="bold reverse")]
        parts += [Text(display.stable(line), style="dim", no_wrap=True, overflow="ellipsis")
                  for line in lines]
    return Group(*parts)


class EtcdScreen(BatchAwareScreen):
    """Bootstrap etcd on every controller and watch its members (module docstring)."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.switch_mode('console')", "Console", id="etcd-leave",
                tooltip="Back to the console"),
        Binding("p", "preview", "Plan", id="etcd-preview",
                tooltip="Check every step on every controller; show commands and diffs"),
        Binding("a", "apply", "Apply…", id="etcd-apply",
                tooltip="Preview, confirm, then bootstrap etcd (KTHW doc 07) everywhere"),
        Binding("s", "status", "Status", id="etcd-status",
                tooltip="Ask every member now; diagnose the unhealthy ones"),
        Binding("j", "journal", "Journal", id="etcd-journal",
                tooltip="journalctl -u etcd of the cursor's host, with its diagnosis"),
        Binding("v", "plan_view", "Host plan", id="etcd-plan-view",
                tooltip="The cursor's host's plan: commands, files, the unit's diff"),
    ]
    PALETTE = (
        ("etcd: plan (preview the bootstrap)", "screen.preview",
         "check every step on every controller, show commands and diffs"),
        ("etcd: apply (bootstrap)", "screen.apply", "preview, confirm, run KTHW doc 07"),
        ("etcd: status", "screen.status", "ask every member; the live member table"),
        ("etcd: journal", "screen.journal", "the cursor's host's journalctl -u etcd"),
    )
    DEFAULT_CSS = """
    EtcdScreen #etcd-body { height: 1fr; }
    EtcdScreen.-wide #etcd-body { layout: horizontal; }
    EtcdScreen.-narrow #etcd-body { layout: vertical; }
    EtcdScreen.-wide #etcd-left { width: 1fr; height: 1fr; }
    EtcdScreen.-narrow #etcd-left { height: auto; }
    EtcdScreen #etcd-members { height: auto; border: round $success 60%;
                               border-title-color: $success; display: none; }
    EtcdScreen.-members #etcd-members { display: block; }
    EtcdScreen #etcd-side { border: round $primary 50%; padding: 0 1;
                            border-title-color: $primary; }
    EtcdScreen #etcd-side-text { width: auto; min-width: 100%; }
    EtcdScreen.-wide #etcd-side { width: 1fr; height: 1fr; }
    EtcdScreen.-narrow #etcd-side { height: 1fr; min-height: 5; }
    EtcdScreen.-narrow.-members #etcd-step { display: none; }
    EtcdScreen.-narrow.-failure #etcd-step { display: none; }
    EtcdScreen.-narrow.-failure #etcd-members { display: none; }
    EtcdScreen #etcd-side.-failed { border: round $error; border-title-color: $error; }
    """

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench
        work = workbench.engine("etcd")
        assert isinstance(work, EtcdWork)
        self.work = work
        self.options = EtcdOptions()
        """How plans are built (the screen has no flags: the caches, KTHW's timeout)."""
        self.prepared: PreparedEtcdPlan | None = None
        self.previews: dict[str, list[StepPreview]] = {}
        self.failures: dict[str, FailureReport] = {}
        self.side = "plan"
        """What the side pane shows: ``plan`` or ``failure`` (of the cursor's host)."""
        self.applied = False
        """The shown plan has been applied (the side pane says so)."""
        self.members: dict[str, dict[str, Text]] = {}
        self.rounds = 0
        """Member-table rounds shown (tests wait on it)."""
        self._timer: Timer | None = None
        self._live = False

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Matrix, step detail and members on the left; host plan or journal on the right."""
        yield Header(icon="⎈")
        with Vertical(id="etcd-body"):
            with Vertical(id="etcd-left"):
                yield StepMatrix(id="etcd-matrix")
                yield StepDetail(id="etcd-step")
                yield DataTable(id="etcd-members", cursor_type="row", show_cursor=False)
            with ScrollableContainer(id="etcd-side"):
                yield Static("", id="etcd-side-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Empty matrix of the bootstrap's steps; then the first preview and one round of
        the member table (workers: the table stays when etcd already runs)."""
        matrix = self.query_one(StepMatrix)
        matrix.border_title = "Bootstrap · KTHW doc 07"
        matrix.show_steps(STEPS, self.work.controllers)
        members = self.query_one("#etcd-members", DataTable)
        members.border_title = "Members"
        for key, label in MEMBER_COLUMNS:
            members.add_column(label, key=key)
        self._render_detail()
        self._render_side()
        if getattr(self.app, "connect_on_start", True):
            self.action_preview()
            self._start_live(probe=True)

    # -- views (typed values in, widgets out; the snapshot tests drive these) ---------------

    def show_preview(self, steps: Sequence[str], hosts: Sequence[str],
                     preview: Mapping[str, Sequence[StepPreview]]) -> None:
        """A fresh plan's shape and its preview: cells to do or skipped, the host plans."""
        matrix = self.query_one(StepMatrix)
        matrix.show_steps(steps, hosts)
        matrix.show_preview(preview)
        self.previews = {h: list(items) for h, items in preview.items()}
        self.failures = {}
        self.applied = False
        self.side = "plan"
        self._render_detail()
        self._render_side()

    def plan_event(self, event: PlanEvent) -> None:
        """One plan event: its cell, and the step detail when it concerns that step."""
        self.query_one(StepMatrix).apply(event)
        self._render_detail()

    def show_failure(self, report: FailureReport) -> None:
        """A failed host: cursor on its cell, its diagnosis and journal beside."""
        self.failures[report.host] = report
        matrix = self.query_one(StepMatrix)
        if report.step in matrix.steps:
            matrix.point_at(report.step, report.host)
        self.side = "failure"
        self._render_detail()
        self._render_side()

    def show_members(self, rows: Sequence[MemberRow], note: str = "") -> None:
        """The member table: rows added once, then only changed cells updated."""
        table = self.query_one("#etcd-members", DataTable)
        self.set_class(True, "-members")
        healthy = sum(r.healthy for r in rows)
        leader = next((r.name for r in rows if r.leader), "none")
        table.border_title = f"Members · {healthy}/{len(rows)} healthy · leader {leader}"
        table.border_subtitle = note or f"live, every {REFRESH:g} s"
        with self.app.batch_update():
            for row in rows:
                cells = member_cells(row)
                shown = self.members.get(row.name)
                if shown is None:
                    table.add_row(*(cells[key] for key, _label in MEMBER_COLUMNS),
                                  key=row.name)
                else:
                    for key, value in cells.items():
                        if shown.get(key) != value:
                            table.update_cell(row.name, key, value, update_width=True)
                self.members[row.name] = cells
        self.rounds += 1

    # -- rendering ------------------------------------------------------------------------

    def _render_detail(self) -> None:
        matrix = self.query_one(StepMatrix)
        step = matrix.focus_step()
        self.query_one(StepDetail).show(step, matrix.column(step) if step else [],
                                        wrap=not self.has_class("-narrow"),
                                        selected=matrix.cursor_host())

    def _side_host(self) -> str:
        matrix = self.query_one(StepMatrix)
        host = matrix.cursor_host()
        if host is None:
            failed = matrix.failed
            host = failed[1] if failed else (matrix.hosts or ["?"])[0]
        return host

    def _render_side(self) -> None:
        host = self._side_host()
        pane = self.query_one("#etcd-side", ScrollableContainer)
        text = self.query_one("#etcd-side-text", Static)
        report = self.failures.get(host)
        self.set_class(self.side == "failure" and report is not None, "-failure")
        if self.side == "failure" and report is not None:
            failed = report.step not in ("journal", "status")
            pane.border_title = (f"{host} · {report.step} failed" if failed
                                 else f"{host} · journalctl -u etcd")
            pane.set_class(failed or bool(report.diagnoses), "-failed")
            text.update(failure_renderable(report))
            self.call_after_refresh(pane.scroll_to, y=0, animate=False)
            return
        pane.set_class(False, "-failed")
        items = self.previews.get(host, [])
        todo = sum(i.done is None and not i.preview.empty for i in items)
        pane.border_title = (f"{host} · plan · applied" if items and self.applied else
                             f"{host} · plan · {todo} step(s) to do" if items
                             else f"{host} · plan")
        body = plan_renderable(host, items)
        text.update(body)
        line = step_line(body, self.query_one(StepMatrix).focus_step())
        self.call_after_refresh(pane.scroll_to, y=line, animate=False)

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        """The cursor moved: its step's detail, its host's plan or failure."""
        if isinstance(event.data_table, StepMatrix):
            self._render_detail()
            self._render_side()

    # -- actions --------------------------------------------------------------------------

    def action_plan_view(self) -> None:
        """Show the cursor's host's plan (commands, files, the unit's diff)."""
        self.side = "plan"
        self._render_side()

    def action_preview(self) -> None:
        """Check every step on every controller (a worker); change nothing."""
        start_action(self, self._preview, group="etcd", label="etcd plan")

    async def _preview(self) -> PreparedEtcdPlan:
        prepared = await self.work.prepare_bootstrap(self.options)
        self.prepared = prepared
        self.show_preview([s.name for s in prepared.plan.steps], prepared.plan.hosts,
                          prepared.preview)
        return prepared

    def action_apply(self) -> None:
        """Preview, ask, run; progress in the matrix; diagnosis on failure."""
        start_action(self, self._apply, group="etcd", label="etcd bootstrap")

    async def _apply(self) -> None:
        prepared = await self._preview()
        if not prepared.todo:
            self.notify("etcd bootstrap: nothing to do, every step is already done; "
                        "verifying the cluster", timeout=5)
        elif not await self.app.push_screen_wait(PlanPreviewScreen(
                f"{prepared.title} {', '.join(prepared.plan.hosts)}", prepared.preview,
                "Bootstrap")):
            return
        self.query_one(StepMatrix).show_plan(prepared.plan)
        self.query_one(StepMatrix).show_preview(prepared.preview)
        result = await prepared.run(self.plan_event)
        self._finished(prepared, result)

    def _finished(self, prepared: PreparedEtcdPlan, result: PlanResult) -> None:
        report = prepared.failure(result)
        if report is None:
            applied = sum(e.state == "done" and e.step != "verify"
                          for e in result.states.values())
            self.notify("etcd bootstrap complete: " + (f"{applied} step(s) applied"
                        if applied else "nothing changed, the cluster was already healthy"),
                        timeout=6)
            self.applied = True
            self._render_side()
            self._start_live()
            return
        ctx = prepared.ctx
        failed = result.failed_hosts(report.step) or [report.host]
        for host in {*failed, *ctx.diagnoses} - {report.host}:
            event = result.states.get((report.step, host))
            step, detail = ((report.step, event.detail) if host in failed and event
                            else ("journal", ""))
            self.failures[host] = FailureReport(step, host, detail,
                                                tuple(ctx.diagnoses.get(host, ())),
                                                tuple(ctx.journals.get(host, ())))
        self.show_failure(report)
        untouched = ", ".join(result.untouched_hosts()) or "none"
        self.notify(f"etcd bootstrap stopped: {report.step} failed on {', '.join(failed)}. "
                    f"Untouched: {untouched}.", severity="error", timeout=15)

    def action_journal(self) -> None:
        """Read the cursor's host's journal and diagnose it (a worker)."""
        host = self._side_host()
        start_action(self, lambda: self._journal(host), group="etcd-journal",
                     label=f"reading {host}'s journal")

    async def _journal(self, host: str) -> None:
        report = await self.work.journal(host)
        kept = self.failures.get(host)
        if kept is not None and kept.step not in ("journal", "status"):
            report = FailureReport(kept.step, host, kept.detail, report.diagnoses,
                                   report.journal)
        self.failures[host] = report
        self.side = "failure"
        self._render_side()

    def action_status(self) -> None:
        """Ask every member now (diagnosing the unhealthy ones) and keep the table live."""
        start_action(self, self._status, group="etcd-status", label="etcd status")

    async def _status(self) -> EtcdStatus:
        status = await self.work.status()
        self.show_members(status.rows)
        by_host: dict[str, list[Diagnosis]] = {}
        for diagnosis in status.diagnoses:
            by_host.setdefault(diagnosis.host, []).append(diagnosis)
        for host, found in by_host.items():
            self.failures[host] = FailureReport("status", host, "", tuple(found))
        if status.healthy:
            self.notify(f"etcd: {len(status.rows)} members healthy", timeout=4)
        else:
            words = [p.message for p in status.problems] + [d.summary for d in status.diagnoses]
            self.notify("etcd: " + " ".join(words[:3]), severity="warning", timeout=10)
        self._start_live()
        return status

    # -- the live member table ------------------------------------------------------------

    def _start_live(self, *, probe: bool = False) -> None:
        """Keep the member table live (``probe``: only when a member answers at all)."""
        self._live = True
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.run_worker(self._poll(probe), group="etcd-members", exclusive=True,
                        exit_on_error=False)

    async def _poll(self, probe: bool = False) -> None:
        """One round, then the next one :data:`REFRESH` seconds after it ended (rounds
        never overlap); skipped while another screen is shown."""
        try:
            if self.is_current:
                rows = await self.work.members()
                if probe and not any(r.healthy or r.member_id for r in rows):
                    self._live = False  # etcd does not run yet: no table until it does
                    return
                self.show_members(rows)
        except (UserError, EtcdError, OSError) as error:
            if probe:
                self._live = False
                return
            self.query_one("#etcd-members", DataTable).border_subtitle = (
                f"refresh failed: {error}")
        except Exception as error:  # a bug: once, through the boundary, and stop
            report_failure(self.app, error, action="etcd members")
            self._live = False
            return
        if self._live and self.is_attached:
            self._timer = self.set_timer(REFRESH, self._start_live)

    def on_unmount(self) -> None:
        """Stop refreshing."""
        self._live = False
        if self._timer is not None:
            self._timer.stop()
