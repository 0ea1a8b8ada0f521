"""etcd screen: KTHW doc 07 as a previewed plan, step x host, then the live members.

A thin view over the workbench's etcd engine, the one ``hardway etcd`` uses
(:class:`tui.core.etcd.engine.EtcdWork`): the same :class:`PreparedEtcdPlan`, drawn
instead of printed.

* the step x host matrix (:class:`~tui.widgets.step_matrix.StepMatrix`) and, under it,
  the running step (or the cursor's) on every host;
* beside it, for the cursor's host: the ``etcd.service`` the plan writes and its diff
  (before anything is applied), or, for a host that failed, the diagnosis above the tail
  of ``journalctl -u etcd``;
* once the cluster is healthy, the member table (name, ID, leader, health, RTT, DB size),
  refreshed every :data:`REFRESH` seconds by updating only the cells that changed.

Every action runs as a worker through :func:`tui.boundary.start_action`: keys stay live,
failures become notifications.  ``p`` previews, ``b`` previews then asks before running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Header, Static

from tui.boundary import report_failure, start_action
from tui.core.errors import UserError
from tui.core.etcd.client import EtcdError
from tui.core.etcd.engine import EtcdWork, FailureReport, MemberRow, PreparedEtcdPlan
from tui.core.etcd.unit import etcd_paths
from tui.core.plan import FileChange, PlanEvent, PlanResult, StepPreview
from tui.core.workbench import Workbench
from tui.widgets import format as display
from tui.widgets.footer import StableFooter
from tui.widgets.plan_preview import PlanPreviewScreen
from tui.widgets.step_matrix import StepDetail, StepMatrix

REFRESH = 2.0
"""Seconds between two rounds of the member table (counted from the end of a round)."""
JOURNAL_TAIL = 40
"""Journal lines shown under a failure's diagnosis."""
STEPS = ("binaries", "directories", "certificates", "unit", "start", "verify")
"""The bootstrap plan's steps (the matrix's rows before the first preview)."""
MEMBER_COLUMNS = (("name", "name"), ("id", "ID"), ("leader", "leader"),
                  ("health", "health"), ("rtt", "RTT"), ("db", "DB size"))


def member_cells(row: MemberRow) -> dict[str, Text]:
    """The member table's cells for ``row``, by column key."""
    health = (Text("✔ healthy", style="green") if row.healthy
              else Text(f"✖ {row.health}", style="bold red", overflow="ellipsis"))
    db = f"{row.db_size / 1024:.0f} KiB" if row.db_size is not None else "–"
    rtt = f"{row.rtt * 1000:.1f} ms" if row.rtt is not None else "–"
    return {"name": Text(row.name, style="bold"), "id": Text(row.member_id or "–"),
            "leader": Text("★ leader", style="bold yellow") if row.leader else Text(""),
            "health": health, "rtt": Text(rtt, justify="right"),
            "db": Text(db, justify="right")}


def unit_renderable(host: str, change: FileChange | None) -> tuple[str, RenderableType]:
    """(title, body) of the unit pane for ``host``."""
    if change is None:
        return (f"etcd.service · {host}",
                Text("Preview (p) shows the unit this host gets and its diff.", style="dim"))
    if not change.changed:
        return (f"{change.path} · {host} · unchanged",
                Text("The unit on this host is already the one the plan writes.",
                     style="green"))
    state = "new file" if change.old_sha256 is None else "changes"
    body = Text()
    for line in (change.diff or "").splitlines():
        style = ("bold" if line.startswith(("---", "+++")) else
                 "cyan" if line.startswith("@@") else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "")
        body.append(display.stable(line) + "\n", style=style)
    return f"{change.path} · {host} · {state}", body


def failure_renderable(report: FailureReport, tail: int = JOURNAL_TAIL) -> RenderableType:
    """The diagnosis (or the bare failure) above the journal's tail."""
    parts: list[RenderableType] = []
    if report.detail:
        parts.append(Text(f"{report.step} failed: {display.stable(report.detail)}",
                          style="red"))
    for diagnosis in report.diagnoses:
        head = Text("✖ ", style="bold red")
        head.append(display.stable(diagnosis.summary), style="bold")
        parts += [Text(""), head,
                  Text(f"  fix: {display.stable(diagnosis.fix)}", style="green"),
                  Text(f"  log: {display.stable(diagnosis.evidence)}", style="dim",
                       overflow="ellipsis", no_wrap=True)]
    if not report.diagnoses and report.journal:
        parts += [Text(""), Text("The journal holds no message hardway recognises; read "
                                 "its tail below.", style="yellow")]
    lines = report.journal[-tail:]
    if lines:
        parts += [Text(""), Text(f"journalctl -u etcd · {report.host} · last {len(lines)} "
                                 "lines", style="bold reverse")]
        parts += [Text(display.stable(line), style="dim", no_wrap=True, overflow="ellipsis")
                  for line in lines]
    return Group(*parts)


class EtcdScreen(Screen[None]):
    """Bootstrap etcd on every controller and watch its members (module docstring)."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.switch_mode('console')", "Console", id="etcd-leave",
                tooltip="Back to the console"),
        Binding("p", "preview", "Preview", id="etcd-preview",
                tooltip="Check every step on every controller; show the unit and its diff"),
        Binding("b", "bootstrap", "Bootstrap…", id="etcd-bootstrap",
                tooltip="Preview, confirm, then run KTHW doc 07 on every controller"),
        Binding("j", "journal", "Journal", id="etcd-journal",
                tooltip="journalctl -u etcd of the cursor's host, with its diagnosis"),
        Binding("u", "unit", "Unit", id="etcd-unit",
                tooltip="The cursor's host's etcd.service and its diff"),
        Binding("r", "refresh", "Members", id="etcd-refresh",
                tooltip="Ask every member now and keep the member table live"),
    ]
    PALETTE = (
        ("etcd: preview the bootstrap", "screen.preview", "check every step, show diffs"),
        ("etcd: bootstrap", "screen.bootstrap", "preview, confirm, run KTHW doc 07"),
        ("etcd: members", "screen.refresh", "the live member table"),
    )
    DEFAULT_CSS = """
    EtcdScreen #etcd-body { height: 1fr; }
    EtcdScreen.-wide #etcd-body { layout: horizontal; }
    EtcdScreen.-narrow #etcd-body { layout: vertical; }
    EtcdScreen.-wide #etcd-left { width: 1fr; height: 1fr; }
    EtcdScreen.-narrow #etcd-left { height: auto; }
    EtcdScreen #etcd-members { height: auto; border: round $success 60%;
                               border-title-color: $success; }
    EtcdScreen #etcd-side { border: round $primary 50%; padding: 0 1;
                            border-title-color: $primary; }
    EtcdScreen.-wide #etcd-side { width: 1fr; height: 1fr; }
    EtcdScreen.-narrow #etcd-side { height: 1fr; min-height: 5; }
    EtcdScreen #etcd-side.-failed { border: round $error; border-title-color: $error; }
    EtcdScreen.-narrow.-members #etcd-side { display: none; }
    """

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench
        work = workbench.engine("etcd")
        assert isinstance(work, EtcdWork)
        self.work = work
        self.unit_path = etcd_paths(workbench.inventory).unit
        self.prepared: PreparedEtcdPlan | None = None
        self.previews: dict[str, list[StepPreview]] = {}
        self.failures: dict[str, FailureReport] = {}
        self.side = "unit"
        """What the side pane shows: ``unit`` or ``failure`` (of the cursor's host)."""
        self.members: dict[str, dict[str, Text]] = {}
        self._timer: Timer | None = None
        self._live = False

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Matrix, step detail and members on the left; unit or journal on the right."""
        yield Header(icon="⎈")
        with Vertical(id="etcd-body"):
            with Vertical(id="etcd-left"):
                yield StepMatrix(id="etcd-matrix")
                yield StepDetail(id="etcd-step")
                yield DataTable(id="etcd-members", cursor_type="row", show_cursor=False)
            with VerticalScroll(id="etcd-side"):
                yield Static("", id="etcd-side-text")
        yield StableFooter()

    def on_mount(self) -> None:
        """Empty matrix of the bootstrap's steps; then the first preview (a worker)."""
        matrix = self.query_one(StepMatrix)
        matrix.border_title = "Bootstrap · KTHW doc 07"
        matrix.show_steps(STEPS, self.work.controllers)
        members = self.query_one("#etcd-members", DataTable)
        members.border_title = "Members"
        for key, label in MEMBER_COLUMNS:
            members.add_column(label, key=key)
        members.display = False
        self._render_detail()
        self._render_side()
        if getattr(self.app, "connect_on_start", True):
            self.action_preview()

    # -- views (typed values in, widgets out; the snapshot tests drive these) ---------------

    def show_preview(self, steps: Sequence[str], hosts: Sequence[str],
                     preview: Mapping[str, Sequence[StepPreview]]) -> None:
        """A fresh plan's shape and its preview: cells to do or skipped, unit diffs."""
        matrix = self.query_one(StepMatrix)
        matrix.show_steps(steps, hosts)
        matrix.show_preview(preview)
        self.previews = {h: list(items) for h, items in preview.items()}
        self.failures = {}
        self.side = "unit"
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
        table.display = True
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

    # -- rendering ------------------------------------------------------------------------

    def _render_detail(self) -> None:
        matrix = self.query_one(StepMatrix)
        step = matrix.focus_step()
        self.query_one(StepDetail).show(step, matrix.column(step) if step else [])

    def _side_host(self) -> str:
        matrix = self.query_one(StepMatrix)
        host = matrix.cursor_host()
        if host is None:
            failed = matrix.failed
            host = failed[1] if failed else (matrix.hosts or ["?"])[0]
        return host

    def _render_side(self) -> None:
        host = self._side_host()
        pane = self.query_one("#etcd-side", VerticalScroll)
        text = self.query_one("#etcd-side-text", Static)
        report = self.failures.get(host)
        if self.side == "failure" and report is not None:
            title = (f"{host} · journalctl -u etcd" if report.step == "journal"
                     else f"{host} · {report.step} failed")
            pane.border_title = title
            pane.set_class(report.step != "journal" or bool(report.diagnoses), "-failed")
            text.update(failure_renderable(report))
            return
        pane.set_class(False, "-failed")
        change = None
        for item in self.previews.get(host, []):
            change = next((f for f in item.preview.files if f.path == self.unit_path), change)
        title, body = unit_renderable(host, change)
        pane.border_title = title
        text.update(body)

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        """The cursor moved: its step's detail, its host's unit or failure."""
        if isinstance(event.data_table, StepMatrix):
            self._render_detail()
            self._render_side()

    # -- actions --------------------------------------------------------------------------

    def action_unit(self) -> None:
        """Show the cursor's host's unit and diff."""
        self.side = "unit"
        self.set_class(False, "-members")
        self._render_side()

    def action_preview(self) -> None:
        """Check every step on every controller (a worker); change nothing."""
        start_action(self, self._preview, group="etcd", label="etcd preview")

    async def _preview(self) -> PreparedEtcdPlan:
        prepared = await self.work.prepare_bootstrap()
        self.prepared = prepared
        self.show_preview([s.name for s in prepared.plan.steps], prepared.plan.hosts,
                          prepared.preview)
        if not prepared.todo:
            self._start_live()
        return prepared

    def action_bootstrap(self) -> None:
        """Preview, ask, run; progress in the matrix; diagnosis on failure."""
        start_action(self, self._bootstrap, group="etcd", label="etcd bootstrap")

    async def _bootstrap(self) -> None:
        prepared = await self._preview()
        if prepared.todo and not await self.app.push_screen_wait(PlanPreviewScreen(
                f"{prepared.title} {', '.join(prepared.plan.hosts)}", prepared.preview,
                "Bootstrap")):
            return
        self.query_one(StepMatrix).show_plan(prepared.plan)
        self.set_class(False, "-members")
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
            self._start_live()
            return
        for host in prepared.ctx.diagnoses:
            if host != report.host:
                self.failures[host] = FailureReport(
                    "journal", host, "", tuple(prepared.ctx.diagnoses[host]),
                    tuple(prepared.ctx.journals.get(host, ())))
        self.show_failure(report)
        untouched = ", ".join(result.untouched_hosts()) or "none"
        self.notify(f"etcd bootstrap stopped: {report.step} failed on {report.host}. "
                    f"Untouched: {untouched}.", severity="error", timeout=15)

    def action_journal(self) -> None:
        """Read the cursor's host's journal and diagnose it (a worker)."""
        host = self._side_host()
        start_action(self, lambda: self._journal(host), group="etcd-journal",
                     label=f"reading {host}'s journal")

    async def _journal(self, host: str) -> None:
        report = await self.work.journal(host)
        kept = self.failures.get(host)
        if kept is not None and kept.step != "journal":
            report = FailureReport(kept.step, host, kept.detail, report.diagnoses,
                                   report.journal)
        self.failures[host] = report
        self.side = "failure"
        self.set_class(False, "-members")
        self._render_side()

    # -- the live member table ------------------------------------------------------------

    def action_refresh(self) -> None:
        """Ask the members now and keep the table live."""
        self._start_live()

    def _start_live(self) -> None:
        self._live = True
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.run_worker(self._poll(), group="etcd-members", exclusive=True,
                        exit_on_error=False)

    async def _poll(self) -> None:
        """One round, then the next one :data:`REFRESH` seconds after it ended (rounds
        never overlap); skipped while another screen is shown."""
        try:
            if self.is_current:
                self.show_members(await self.work.members())
        except (UserError, EtcdError, OSError) as error:
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
