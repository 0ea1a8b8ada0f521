"""Certificates screen: what every host holds and serves, why it is wrong, and the fix.

A thin view over the workbench's certificate engine, the one ``hardway certs`` uses
(:class:`tui.core.pki.usecase.CertificateWork`: survey, issue, push and restore) and
``matrix`` (status per certificate and host).  Every action runs as a worker through
:func:`tui.boundary.start_action`: keys stay live, failures become notifications.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Static

from tui.boundary import start_action
from tui.core.pki.diagnose import CertFinding, FixAction
from tui.core.pki.grouping import group_findings
from tui.core.pki.matrix import Cell, Matrix, build_matrix
from tui.core.pki.survey import Survey
from tui.core.pki.usecase import CertificateWork, PreparedPlan
from tui.core.plan import PlanEvent, PlanResult
from tui.core.workbench import Workbench
from tui.widgets import format as display
from tui.widgets.footer import KeyFooter
from tui.widgets.internals import BatchAwareScreen
from tui.widgets.plan_preview import PlanPreviewScreen

STYLE = {"ok": "green", "warning": "yellow", "error": "bold red", "absent": "dim",
         "n/a": "dim", "unknown": "magenta"}
GLYPH = {"ok": "✔", "warning": "!", "error": "✖", "absent": "·", "n/a": "", "unknown": "?"}
NARROW = 110
"""Below this many columns the host columns show glyphs under short names (``c-0`` for
``controller-0``), the matrix takes most of the height and the pane under it shows the
findings or, after ``d``, the highlighted certificate."""


def short_names(names: Sequence[str]) -> dict[str, str]:
    """Column headings for ``names`` at narrow widths: the first letter and what follows
    the last dash (``controller-0`` -> ``c-0``, ``worker-12`` -> ``w-12``), or the names
    themselves when two would look alike."""
    short = {}
    for name in names:
        head, _, tail = name.rpartition("-")
        short[name] = f"{head[0]}-{tail}" if head and tail else name
    if len(set(short.values())) < len(short):
        return {name: name for name in names}
    return short


KEYS = {FixAction.ISSUE: ("i", "issue"), FixAction.PUSH: ("p", "push"),
        FixAction.RESTORE: ("u", "restore")}
"""The screen's key for each fix action (its BINDINGS)."""


def screen_fix(finding: CertFinding) -> str:
    """The fix as this screen's keys (``press i to issue, then p to push``), then what is
    left to do by hand; the CLI's words when hardway has no action for it."""
    if not finding.actions:
        return finding.fix
    text = ""
    for index, action in enumerate(finding.actions):
        key, verb = KEYS[action]
        if index == 0:
            text = f"press {key} to {verb}"
        elif action is FixAction.RESTORE:
            text += f", or {key} to {verb}"
        else:
            text += f", then {key} to {verb}"
    return text + (f", then {finding.after}" if finding.after else "")


STATE_STYLE = {"pending": "dim", "checking": "cyan", "skipped": "dim", "running": "yellow",
               "done": "green", "failed": "bold red"}


class CertsScreen(BatchAwareScreen):
    """Certificates x hosts, the selected certificate in detail, findings in plain words."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.switch_mode('console')", "Console", id="leave",
                tooltip="Back to the console"),
        Binding("r", "survey", "Re-check", id="certs-survey",
                tooltip="Read every host's certificates and what it serves again"),
        Binding("i", "issue", "Issue", id="certs-issue",
                tooltip="Create the CA if missing; reissue certificates that do not fit"),
        Binding("p", "push", "Push…", id="certs-push",
                tooltip="Preview, then roll the PKI out one controller at a time"),
        Binding("u", "restore", "Restore…", id="certs-restore",
                tooltip="Put back what the last push replaced"),
        Binding("d", "toggle_detail", "Detail", id="certs-detail",
                tooltip="Narrow terminals: the highlighted certificate instead of the "
                        "findings (d again: back)"),
    ]

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench
        self.work: CertificateWork = workbench.certs
        self.survey: Survey | None = None
        self.matrix: Matrix | None = None
        self.narrow = False
        self.compact = False
        """Glyph columns under short names: narrow, or the full labels would not fit."""
        self.detail_shown = False
        """Narrow terminals: the detail pane replaces the findings under the matrix."""

    @property
    def pki_dir(self) -> Path:
        """The PKI directory: ``pki/`` beside the inventory (as the CLI's default)."""
        return self.work.pki_dir

    def compose(self) -> ComposeResult:
        """Matrix and findings on the left, the selected certificate on the right."""
        yield Header(icon="⎈")
        with Horizontal(id="certs-body"):
            with Vertical(id="certs-left"):
                yield DataTable(id="cert-matrix", cursor_type="cell", zebra_stripes=True)
                yield DataTable(id="cert-progress", cursor_type="none")
                with VerticalScroll(id="cert-findings"):
                    yield Static("", id="cert-findings-text")
            with VerticalScroll(id="cert-detail"):
                yield Static("", id="cert-detail-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Start the first survey."""
        self.query_one("#cert-progress").display = False
        self.query_one("#cert-findings", VerticalScroll).border_title = "Findings"
        self.query_one("#cert-detail", VerticalScroll).border_title = "Certificate"
        self.query_one("#cert-matrix", DataTable).border_title = (
            f"Certificates · local PKI: {self.pki_dir.name}/ beside the inventory")
        self._render_matrix()
        if getattr(self.app, "connect_on_start", True):
            self.action_survey()

    # -- survey ---------------------------------------------------------------------------

    def action_survey(self) -> None:
        """Survey every host again (in a worker)."""
        start_action(self, self._survey, group="certs", label="reading certificates")

    async def _survey(self) -> None:
        self._show_findings_text("Reading certificates on every host…")
        self.survey = await self.work.survey()
        self._render_matrix()
        self.on_resize()  # the labels may no longer fit beside the detail pane
        self._render_findings(self.survey.findings)

    # -- matrix and detail ----------------------------------------------------------------

    def _render_matrix(self) -> None:
        table = self.query_one("#cert-matrix", DataTable)
        cursor = table.cursor_coordinate
        self.matrix = build_matrix(self.workbench.inventory, self.survey, self.pki_dir)
        table.clear(columns=True)
        table.add_column("certificate", key="certificate")
        heading = (short_names(self.matrix.columns) if self.compact
                   else {c: c for c in self.matrix.columns})
        for column in self.matrix.columns:
            table.add_column(heading[column], key=column)
        for row in self.matrix.rows:
            cells: list[RenderableType] = [row.label]
            for column in self.matrix.columns:
                cell = self.matrix.cell(row.key, column)
                pending = self.survey is None and column != "local"
                shown = GLYPH[cell.status] if self.compact else (
                    f"{GLYPH[cell.status]} {cell.short}".strip())
                cells.append(Text("…" if pending and cell.status == "n/a" and
                                  row.role in ("controller", "worker") else shown,
                                  style=STYLE[cell.status]))
            table.add_row(*cells, key=row.key)
        if table.row_count:
            table.move_cursor(row=min(cursor.row, table.row_count - 1),
                              column=max(1, min(cursor.column, len(self.matrix.columns))))
        self._render_detail()

    def on_resize(self) -> None:
        """Narrow terminals: glyph columns, short names, findings or detail under the
        matrix."""
        narrow = self.size.width < NARROW
        self.query_one("#certs-body").set_class(narrow, "-narrow")
        compact = narrow or not self._fits(self.size.width * 3 // 5 - 4)
        if (narrow, compact) != (self.narrow, self.compact):
            self.narrow, self.compact = narrow, compact
            self._render_matrix()
            self.refresh_bindings()
        self._show_lower_pane()

    def _fits(self, width: int) -> bool:
        """Whether the matrix with its full cell labels fits in ``width`` columns."""
        matrix = self.matrix or build_matrix(self.workbench.inventory, self.survey,
                                             self.pki_dir)
        total = max((len(r.label) for r in matrix.rows), default=0) + 2
        for column in matrix.columns:
            cells = [matrix.cell(r.key, column) for r in matrix.rows]
            total += max([len(column), *(len(f"{GLYPH[c.status]} {c.short}") for c in cells)])
            total += 2
        return total <= width

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``d`` (detail instead of the findings) exists on narrow terminals only."""
        if action == "toggle_detail":
            return self.narrow
        return True

    def action_toggle_detail(self) -> None:
        """Narrow terminals: swap the findings and the highlighted certificate."""
        self.detail_shown = not self.detail_shown
        self._show_lower_pane()

    def _show_lower_pane(self) -> None:
        detail = not self.narrow or self.detail_shown
        self.query_one("#certs-body").set_class(self.narrow and self.detail_shown, "-detail")
        self.query_one("#cert-detail").display = detail
        self.query_one("#cert-findings").display = not self.narrow or not self.detail_shown

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        """Show the highlighted certificate in the detail pane."""
        if event.data_table.id == "cert-matrix":
            self._render_detail()

    def _selected(self) -> tuple[str, str, Cell] | None:
        if self.matrix is None:
            return None
        table = self.query_one("#cert-matrix", DataTable)
        coordinate = table.cursor_coordinate
        if coordinate.column == 0 or not self.matrix.rows:
            return None
        row = self.matrix.rows[min(coordinate.row, len(self.matrix.rows) - 1)]
        column = self.matrix.columns[min(coordinate.column - 1, len(self.matrix.columns) - 1)]
        return row.label, column, self.matrix.cell(row.key, column)

    def _render_detail(self) -> None:
        selected = self._selected()
        text = self.query_one("#cert-detail-text", Static)
        if selected is None:
            text.update(Text("Move to a cell to see that certificate.", style="dim"))
            return
        label, column, cell = selected
        text.update(detail_renderable(label, column, cell))

    # -- findings and progress ------------------------------------------------------------

    def _show_findings_text(self, message: str) -> None:
        self.query_one("#cert-findings-text", Static).update(Text(message, style="dim"))

    def _render_findings(self, findings: list[CertFinding]) -> None:
        problems = [f for f in findings if f.severity != "ok"]
        if not problems:
            ok = [f.message for f in findings if f.severity == "ok"]
            body = Text("✔ Every certificate fits: "
                        + (display.stable(ok[-1]) if ok else "nothing to fix."),
                        style="green")
            self.query_one("#cert-findings-text", Static).update(body)
            self.query_one("#cert-findings", VerticalScroll).border_title = "Findings"
            return
        parts: list[RenderableType] = []
        groups = group_findings(problems)
        for finding in (group.finding for group in groups):
            glyph, style = ("✖", "bold red") if finding.severity == "error" else ("!", "yellow")
            head = Text(f"{glyph} ", style=style)
            head.append(display.stable(finding.message))
            parts.append(head)
            parts.append(Text(f"  fix: {display.stable(screen_fix(finding))}", style="dim"))
        self.query_one("#cert-findings-text", Static).update(Group(*parts))
        errors = sum(f.severity == "error" for f in problems)
        self.query_one("#cert-findings", VerticalScroll).border_title = (
            f"Findings · {errors} error(s), {len(problems) - errors} warning(s)"
            + (f" in {len(groups)} problem(s)" if len(groups) < len(problems) else ""))

    def _start_progress(self, steps: list[str], hosts: list[str]) -> None:
        table = self.query_one("#cert-progress", DataTable)
        table.clear(columns=True)
        table.add_column("host", key="host")
        for step in steps:
            table.add_column(step, key=step)
        for host in hosts:
            table.add_row(host, *[Text("· pending", style="dim") for _ in steps], key=host)
        table.display = True
        table.border_title = "Rollout"

    def _on_plan_event(self, event: PlanEvent) -> None:
        table = self.query_one("#cert-progress", DataTable)
        try:
            text = event.state if not event.detail else f"{event.state}: {event.detail}"
            table.update_cell(event.host, event.step,
                              Text(text[:40], style=STATE_STYLE.get(event.state, "")),
                              update_width=True)
        except Exception:  # a gate or step the table does not show
            return

    # -- actions --------------------------------------------------------------------------

    def action_issue(self) -> None:
        """Issue what is missing or does not fit (off the UI loop), then re-check."""
        start_action(self, self._issue, group="certs", label="issuing certificates")

    async def _issue(self) -> None:
        self._show_findings_text(f"Issuing certificates in {self.pki_dir}…")
        result = await self.work.issue()
        if result.written:
            self.notify(f"issued {', '.join(result.written)} in {self.pki_dir}; push (p) to "
                        "roll them out", timeout=8)
        else:
            self.notify("nothing to issue: every local certificate fits", timeout=5)
        self._render_matrix()
        if self.survey is not None:
            self._render_findings(self.survey.findings)

    def action_push(self) -> None:
        """Preview the rollout, then run it when confirmed."""
        start_action(self, self._push, group="certs", label="push")

    async def _push(self) -> None:
        prepared = await self.work.prepare_push()
        await self._confirm_and_run(
            prepared, f"Push {self.pki_dir.name}/ — one controller at a time, health-gated",
            "Push")

    def action_restore(self) -> None:
        """Preview putting the last push's backups back, then run it when confirmed."""
        start_action(self, self._restore, group="certs", label="restore")

    async def _restore(self) -> None:
        prepared = await self.work.prepare_restore()
        if prepared.empty:
            self.notify("nothing to restore: the last push recorded no change", timeout=5)
            return
        await self._confirm_and_run(prepared, "Restore the files the last push replaced",
                                    "Restore")

    async def _confirm_and_run(self, prepared: PreparedPlan, title: str, verb: str) -> None:
        """Show the exact preview; on confirmation run the plan with per-host progress."""
        if not await self.app.push_screen_wait(
                PlanPreviewScreen(title, prepared.preview, verb)):
            return
        plan = prepared.plan
        self._start_progress([s.name for s in plan.steps], plan.hosts)
        self._report(await prepared.run(self._on_plan_event), str(prepared.kind))
        await self._survey()

    def _report(self, result: PlanResult, what: str) -> None:
        if result.ok:
            self.notify(f"{what} finished on every host", timeout=6)
        else:
            untouched = ", ".join(result.untouched_hosts()) or "none"
            self.notify(f"{what} stopped: {result.failure}. Untouched: {untouched}. "
                        "Restore (u) puts the backups back.", severity="error", timeout=20)


def detail_renderable(label: str, column: str, cell: Cell,
                      now: datetime | None = None) -> RenderableType:
    """The detail pane: subject, issuer, validity bar, SANs (missing ones with the reason)."""
    where = "the local PKI" if column == "local" else column
    title = Text(f"{label} — {where}\n", style="bold")
    info = cell.info
    notes = [Text(display.stable(n), style="bold red" if n.startswith("✖") else
                  "yellow" if n.startswith("!") else "") for n in cell.notes]
    if info is None:
        return Group(title, Text(cell.short or "no certificate here", style=STYLE[cell.status]),
                     *notes)
    now = now or datetime.now(UTC)
    total = (info.not_after - info.not_before).total_seconds() or 1
    used = min(1.0, max(0.0, (now - info.not_before).total_seconds() / total))
    width = 24
    filled = round(used * width)
    left = info.days_left(now)
    bar_style = "red" if left < 0 else "yellow" if left < 30 else "green"
    bar = Text("▰" * filled + "▱" * (width - filled), style=bar_style)
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("subject", escape(display.stable(info.subject)))
    facts.add_row("issuer", Text(display.stable(info.issuer), style="bold red" if cell.short in (
        "self-signed", "other issuer") else ""))
    facts.add_row("valid", Text.assemble(bar, display.stable(
        f"  until {info.not_after:%Y-%m-%d} ({int(left)} days left)")))
    facts.add_row("sha256", display.stable(info.fingerprint))
    facts.add_row("usage", ", ".join((*info.key_usage, *info.ext_key_usage)) or "–")
    parts: list[RenderableType] = [title, *notes, facts] if notes else [title, facts]
    if cell.required:
        sans = Table.grid(padding=(0, 1))
        sans.add_column(no_wrap=True)
        sans.add_column(no_wrap=True)
        sans.add_column(style="dim", ratio=1)
        missing = {(s.kind, s.value) for s in cell.missing}
        for san in cell.required:
            lost = (san.kind, san.value) in missing
            sans.add_row(Text("✖" if lost else "✔", style="bold red" if lost else "green"),
                         Text(f"{san.kind.upper()} {san.value}",
                              style="bold red" if lost else ""),
                         san.reason if lost else "")
        parts += [Text("\nrequired SANs", style="bold"), sans]
    else:
        names = [*(f"DNS {n}" for n in info.dns_names), *(f"IP {a}" for a in info.ip_addresses)]
        parts.append(Text("\nSANs: " + (", ".join(names) or "none")))
    return Group(*parts)
