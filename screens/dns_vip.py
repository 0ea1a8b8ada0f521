"""DNS / VIP screen: the zone against the inventory, the VIP's rules against the wanted ones,
and "move the API VIP" as one plan with per-step progress (issue 14).

A thin view over the workbench's ``vip`` engine (:class:`tui.core.lb.move.VipMoves`, the
one ``hardway vip move`` uses): :meth:`~tui.core.lb.move.VipMoves.survey` fills the DNS
and VIP panes, :meth:`~tui.core.lb.move.VipMoves.prepare` /
:meth:`~tui.core.lb.move.VipMoves.prepare_rollback` build the plan whose exact preview is
confirmed before it runs.  Every action runs as a worker through
:func:`tui.boundary.start_action`: keys stay live, failures become notifications.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Input, Static

from tui.boundary import start_action
from tui.core.dns.drift import DriftKind
from tui.core.dns.records import relative
from tui.core.errors import UserError
from tui.core.lb.move import MoveAction, MovePlan, MoveResult, StepOutcome, VipMoves
from tui.core.lb.move_survey import RulesView, VipSurvey
from tui.core.lb.move_view import plan_lines
from tui.core.plan import PlanEvent
from tui.core.workbench import Workbench
from tui.widgets import format as display
from tui.widgets.footer import KeyFooter
from tui.widgets.internals import BatchAwareScreen
from tui.widgets.plan_preview import PlanPreviewScreen

DRIFT_STYLE = {DriftKind.MISSING: "bold red", DriftKind.WRONG_VALUE: "bold red",
               DriftKind.EXTRA: "yellow", DriftKind.WRONG_TTL: "yellow"}
STATE_STYLE = {"pending": "dim", "checking": "cyan", "running": "yellow", "done": "green",
               "skipped": "dim", "failed": "bold red", "not run": "dim"}
GLYPH = {"pending": "·", "checking": "…", "running": "▶", "done": "✔", "skipped": "–",
         "failed": "✖", "not run": "·"}


class MovePreviewScreen(PlanPreviewScreen):
    """The move's (or rollback's) exact preview, as ``hardway vip move --dry-run`` prints it."""

    def __init__(self, plan: MovePlan) -> None:
        verb = "Move" if plan.action is MoveAction.MOVE else "Roll back"
        super().__init__(f"{verb} the API VIP {plan.old_vip} → {plan.new_vip}", {}, verb)
        self._lines = plan_lines(plan)

    def on_mount(self) -> None:
        """Put the plan's text in place of the (empty) certificate preview (Textual runs
        the base class's handler too: Cancel keeps the focus)."""
        self.query_one("#plan-text Static", Static).update(
            Text(display.stable("\n".join(self._lines))))


class DnsVipScreen(BatchAwareScreen):
    """DNS records with drift, the VIP's rules have vs wanted, the move plan's progress."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.switch_mode('console')", "Console", id="leave",
                tooltip="Back to the console"),
        Binding("r", "survey", "Re-check", id="vip-survey",
                tooltip="Read the zone and the hypervisor's rules again"),
        Binding("m", "move", "Move VIP…", id="vip-move",
                tooltip="Type the new VIP, preview the plan, then run it"),
        Binding("b", "rollback", "Roll back…", id="vip-rollback",
                tooltip="Preview undoing the last move, then run it"),
    ]

    PALETTE: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("DNS/VIP: re-check", "screen.survey", "read the zone and the hypervisor's rules again"),
        ("DNS/VIP: move the API VIP", "screen.move", "preview and run the move to a new VIP"),
        ("DNS/VIP: roll back the last move", "screen.rollback",
         "preview and run the journal's undo"),
    )

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench
        engine = workbench.engine("vip")
        assert isinstance(engine, VipMoves)
        self.engine = engine
        self.survey: VipSurvey | None = None
        self.plan: MovePlan | None = None
        self.result: MoveResult | None = None
        self._states: dict[str, dict[str, PlanEvent]] = {}

    def compose(self) -> ComposeResult:
        """DNS and VIP on the left, the move on the right."""
        yield Header(icon="⎈")
        with Horizontal(id="vip-body"):
            with Vertical(id="vip-left"):
                yield DataTable(id="dns-records", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="vip-rules"):
                    yield Static("", id="vip-rules-text")
            with Vertical(id="vip-move"):
                yield Input(placeholder="new VIP, Enter previews",
                            id="new-vip")
                yield DataTable(id="move-steps", cursor_type="row")
                with VerticalScroll(id="move-detail"):
                    yield Static("", id="move-detail-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Titles, empty tables, then the first survey."""
        self.query_one("#dns-records", DataTable).border_title = "DNS"
        self.query_one("#vip-rules", VerticalScroll).border_title = "VIP"
        self.query_one("#new-vip", Input).border_title = "Move the API VIP"
        self.query_one("#move-steps", DataTable).border_title = "Plan"
        self.query_one("#move-detail", VerticalScroll).border_title = "Step"
        self._render_steps()
        self._detail(Text("m: type the new VIP, Enter previews the plan; b rolls back the "
                          "last move.", style="dim"))
        if getattr(self.app, "connect_on_start", True):
            self.action_survey()

    # -- survey -----------------------------------------------------------------------

    def action_survey(self) -> None:
        """Read the zone and the rules again (in a worker)."""
        start_action(self, self._survey, group="vip", label="reading DNS and the VIP rules")

    async def _survey(self) -> None:
        self.show_survey(await self.engine.survey())

    def show_survey(self, survey: VipSurvey) -> None:
        """Fill the DNS and VIP panes from ``survey``."""
        self.survey = survey
        self._render_dns(survey)
        self.query_one("#vip-rules-text", Static).update(rules_renderable(survey))
        rules = survey.rules
        state = ("no hypervisor" if rules is None else "unreadable" if rules.error
                 else "in sync" if rules.in_sync else "DIFFERS")
        self.query_one("#vip-rules", VerticalScroll).border_title = (
            f"VIP {survey.vip} · {rules.hypervisor + ' ' if rules else ''}ipfw · {state}")
        if self.plan is None and survey.journal is not None:
            status, old, new = survey.journal
            if status.open:
                self._detail(Text(f"The move {old} → {new} is not finished ({status.value}): "
                                  "b rolls it back.", style="bold yellow"))

    def _render_dns(self, survey: VipSurvey) -> None:
        table = self.query_one("#dns-records", DataTable)
        table.clear(columns=True)
        for column in ("name", "served", "wanted"):
            table.add_column(column, key=column)
        report = survey.dns
        if report is None:
            table.border_title = "DNS · " + ("no [dns] in the inventory"
                                             if survey.dns_error is None else "unreadable")
            if survey.dns_error:
                table.add_row(Text(display.stable(survey.dns_error), style="bold red"),
                              "", "")
            return
        drifts = {(d.name, d.rdtype): d for d in report.drifts}
        keys = sorted({*((r.name, r.rdtype) for r in report.wanted), *drifts})
        for name, rdtype in keys:
            drift = drifts.get((name, rdtype))
            served = report.served.get((name, rdtype)) or (drift.actual if drift else None)
            wanted = sorted({r.value for r in report.wanted
                             if (r.name, r.rdtype) == (name, rdtype)})
            have = ", ".join(served.values) if served is not None else "—"
            label = relative(name, report.zone) + ("" if rdtype == "A" else f" {rdtype}")
            if drift is None:
                table.add_row(label, have,
                              Text("✔", style="green"), key=f"{name} {rdtype}")
                continue
            style = DRIFT_STYLE[drift.kind]
            want = (", ".join(wanted) if wanted else "none") + f" ({drift.kind.value})"
            table.add_row(Text(label, style=style), Text(have, style=style),
                          Text(want, style=style),
                          key=f"{name} {rdtype}")
        count = len(report.drifts)
        table.border_title = (f"DNS {report.zone} on {report.server} · "
                              + ("in sync" if report.in_sync else f"{count} drift"))

    # -- the move ---------------------------------------------------------------------

    def action_move(self) -> None:
        """Focus the new-VIP field (Enter there previews the move)."""
        self.query_one("#new-vip", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Prepare the move to the typed address and show its preview."""
        value = event.value.strip()
        if not value:
            self.notify("type the new VIP first (e.g. 10.50.0.1)", severity="warning")
            return
        self.query_one("#move-steps", DataTable).focus()  # r, m, b are the screen's keys again
        start_action(self, lambda: self._prepare_and_run(value), group="vip",
                     label=f"moving the VIP to {value}")

    def action_rollback(self) -> None:
        """Preview undoing the last move, then run it when confirmed."""
        start_action(self, lambda: self._prepare_and_run(None), group="vip",
                     label="rolling back the VIP move")

    async def _prepare_and_run(self, new_vip: str | None) -> None:
        self._detail(Text("Reading the cluster and building the plan…", style="dim"))
        try:
            plan = await (self.engine.prepare(new_vip) if new_vip is not None
                          else self.engine.prepare_rollback())
        except UserError as exc:  # shown here too; the boundary notifies it
            self._detail(Text(display.stable(str(exc)), style="bold red"))
            raise
        self.show_plan(plan)
        if not await self.app.push_screen_wait(MovePreviewScreen(plan)):
            self._detail(Text("Not confirmed: nothing was changed.", style="dim"))
            return
        self.show_result(await plan.run(self.on_plan_event))
        self.engine.reload()
        await self._survey()

    def show_plan(self, plan: MovePlan) -> None:
        """Show ``plan``'s steps, every one pending."""
        self.plan, self.result = plan, None
        self._states = {view.name: {} for view in plan.steps}
        self._render_steps()
        notes = [Text(f"note: {display.stable(n)}", style="yellow") for n in plan.notes]
        self._detail(Group(Text(f"{len(plan.steps)} steps, {plan.old_vip} → {plan.new_vip}",
                                style="bold"), *notes))

    def on_plan_event(self, event: PlanEvent) -> None:
        """One step's progress on one host (from the running plan)."""
        if event.step not in self._states:
            return
        self._states[event.step][event.host] = event
        self._render_steps()
        if event.state in ("running", "failed") and event.detail:
            style = "bold red" if event.state == "failed" else ""
            self._detail(Text(display.stable(f"{event.step} · {event.host}: {event.detail}"),
                              style=style))

    def show_result(self, result: MoveResult) -> None:
        """Every step's outcome and what to do next."""
        self.result = result
        self._render_steps()
        failed = result.failed
        if failed is None:
            what = ("Moved: the API VIP is " + result.new_vip if result.action is
                    MoveAction.MOVE else "Rolled back: the API VIP is " + result.old_vip)
            self._detail(Text(what, style="bold green"))
            self.notify(what, timeout=8)
            return
        detail = "; ".join(f"{h.host}: {h.detail}" for h in failed.hosts
                           if h.outcome is StepOutcome.FAILED)
        self._detail(Group(Text(f"Stopped at {failed.name}", style="bold red"),
                           Text(display.stable(detail)),
                           Text("b rolls back what was changed.", style="yellow")))
        self.notify(f"VIP {result.action.value} stopped at {failed.name}; b rolls back",
                    severity="error", timeout=12)

    def _render_steps(self) -> None:
        table = self.query_one("#move-steps", DataTable)
        table.clear(columns=True)
        table.add_column("step", key="step")
        table.add_column("state", key="state")
        table.add_column("what", key="what")
        if self.plan is None:
            table.border_title = "Plan · none prepared"
            return
        outcomes = ({s.name: s.outcome.value for s in self.result.steps}
                    if self.result is not None else {})
        for view in self.plan.steps:
            state = outcomes.get(view.name) or _state(self._states.get(view.name, {}),
                                                      len(view.hosts))
            table.add_row(view.name,
                          Text(f"{GLYPH.get(state, '?')} {state}",
                               style=STATE_STYLE.get(state, "")),
                          Text(view.title, style="dim"), key=view.name)
        verb = "move" if self.plan.action is MoveAction.MOVE else "rollback"
        table.border_title = f"Plan · {verb} {self.plan.old_vip} → {self.plan.new_vip}"

    def _detail(self, renderable: RenderableType) -> None:
        self.query_one("#move-detail-text", Static).update(renderable)


def _state(events: dict[str, PlanEvent], hosts: int) -> str:
    """One step's state from its hosts' last events."""
    states = [e.state for e in events.values()]
    for worst in ("failed", "running", "checking"):
        if worst in states:
            return worst
    if len(states) < hosts:
        return "running" if states else "pending"
    return "done" if "done" in states else states[0] if states else "pending"


def rules_renderable(survey: VipSurvey) -> RenderableType:
    """The VIP pane: backends, the active set as the hypervisor has it, and the diff."""
    backends = Text("backends ", style="dim")
    backends.append(", ".join(f"{b.name} {b.address}" for b in survey.backends))
    parts: list[RenderableType] = [backends]
    parts += [Text(f"✖ {display.stable(p.split(': ')[0])}", style="bold red")
              for p in survey.placement]  # the first clause; `inventory check` explains
    rules: RulesView | None = survey.rules
    if rules is None:
        return Group(*parts, Text("the inventory has no [hypervisor]: no rules to show",
                                  style="dim"))
    if rules.error is not None:
        return Group(*parts, Text(display.stable(rules.error), style="bold red"))
    parts.append(Text(f"{survey.vip} on the hypervisor", style="bold"))
    parts += [Text(line) for line in rules.have] or [Text("(no rules)", style="bold red")]
    if rules.in_sync:
        parts.append(Text("✔ as `hardway vip rules` wants", style="green"))
    else:
        parts.append(Text("diff (- has, + wanted)", style="bold"))
        parts += [Text(line, style="red" if line.startswith("-") else "green")
                  for line in rules.diff]
    return Group(*parts)


__all__ = ["DnsVipScreen", "MovePreviewScreen", "rules_renderable"]
