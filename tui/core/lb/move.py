"""Move the API VIP as one plan: the engine the CLI (``hardway vip move``) and the DNS/VIP
screen share (the workbench's ``vip`` engine).

:meth:`VipMoves.prepare` lints the new address (its block, and that nothing uses it:
the inventory, the zone, the hypervisor's rules), reads the cluster, issues the new
``kubernetes.pem`` in memory, and returns a :class:`MovePlan`: the typed steps
(:class:`~tui.core.lb.move_context.MoveStepKind`), each with its exact preview (commands,
file diffs, the DNS UPDATE message), and ``run(on_event)``.  Running it journals every
change before it is made (:mod:`tui.core.lb.move_journal`); a failure stops the plan
and the :class:`MoveResult` says, step by step, what was changed and what was not.
:meth:`VipMoves.prepare_rollback` turns the journal into the plan that undoes the changes
in reverse order (:mod:`tui.core.lb.move_undo`).

Nothing here imports Textual; results are values, never sentences to parse.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.inventory.model import San
from tui.core.lb.hypervisor import HypervisorIpfw, vip_backends, vip_layout
from tui.core.lb.ipfw import VipLayout
from tui.core.lb.move_context import Fault, MoveContext, MoveStepKind, step_title
from tui.core.lb.move_journal import MoveJournal, MoveStatus
from tui.core.lb.move_lint import describe, lint_new_vip
from tui.core.lb.move_rules import check_layout
from tui.core.lb.move_steps import move_steps
from tui.core.lb.move_undo import undo_steps
from tui.core.pki.services import RolloutOptions
from tui.core.plan import Plan, PlanEvent, PlanResult, StepFailed, StepPreview

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory
    from tui.core.lb.move_survey import VipSurvey
    from tui.core.pki.ca import Issued
    from tui.core.workbench import Workbench

EventCallback = Callable[[PlanEvent], None]


class MoveAction(StrEnum):
    """What a :class:`MovePlan` does."""

    MOVE = "move"
    ROLLBACK = "rollback"


class StepOutcome(StrEnum):
    """How one step of a run ended."""

    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class StepView:
    """One step of a plan, for previews.

    Attributes:
        kind: which step.
        name: the plan step's name (``aliases``, ``undo rules``...).
        title: one line saying what it does.
        hosts: where it runs (controllers, the hypervisor, ``dns SERVER``, ``local``...).
        previews: per host, the exact commands, file changes and notes.
    """

    kind: MoveStepKind
    name: str
    title: str
    hosts: tuple[str, ...]
    previews: tuple[StepPreview, ...]


@dataclass(frozen=True)
class HostOutcome:
    """One step on one host after a run."""

    host: str
    outcome: StepOutcome
    detail: str = ""


@dataclass(frozen=True)
class StepResult:
    """One step after a run.

    Attributes:
        kind: which step.
        name: the plan step's name.
        title: what it does.
        outcome: done, skipped, failed, not run (the worst of its hosts).
        changed: the journal holds a change of this step (a rollback undoes it).
        hosts: per host outcome and detail.
    """

    kind: MoveStepKind
    name: str
    title: str
    outcome: StepOutcome
    changed: bool
    hosts: tuple[HostOutcome, ...]


@dataclass(frozen=True)
class MoveResult:
    """How a move or rollback ended.

    Attributes:
        action: move or rollback.
        old_vip: the VIP before the move.
        new_vip: the VIP the move goes to.
        status: the journal's status afterwards.
        steps: every step, in plan order.
        journal: the journal file.
    """

    action: MoveAction
    old_vip: str
    new_vip: str
    status: MoveStatus
    steps: tuple[StepResult, ...]
    journal: Path

    @property
    def ok(self) -> bool:
        """No step failed."""
        return all(s.outcome is not StepOutcome.FAILED for s in self.steps)

    @property
    def failed(self) -> StepResult | None:
        """The step that stopped the run."""
        return next((s for s in self.steps if s.outcome is StepOutcome.FAILED), None)

    @property
    def changed(self) -> list[StepResult]:
        """Steps that changed something (a rollback undoes them)."""
        return [s for s in self.steps if s.changed]

    @property
    def unchanged(self) -> list[StepResult]:
        """Steps that changed nothing (skipped or not run)."""
        return [s for s in self.steps if not s.changed]


@dataclass
class MovePlan:
    """A move (or its rollback), ready to preview and run.

    Attributes:
        action: move or rollback.
        old_vip: the VIP before the move.
        new_vip: the VIP it goes to.
        steps: the steps with their previews, in order.
        notes: what the user should know before confirming.
        plan: the underlying :class:`~tui.core.plan.Plan`.
    """

    action: MoveAction
    old_vip: str
    new_vip: str
    steps: tuple[StepView, ...]
    notes: tuple[str, ...]
    plan: Plan
    _start: Callable[[EventCallback | None], MoveJournal] | None = field(default=None,
                                                                       repr=False)
    _ctx: MoveContext | None = field(default=None, repr=False)
    _finished: bool = field(default=False, repr=False)

    async def run(self, on_event: EventCallback | None = None) -> MoveResult:
        """Carry the plan out (once), reporting progress to ``on_event``."""
        if self._finished or self._start is None:
            raise UserError("This plan already ran (or is a preview only); prepare a new one.")
        self._finished = True
        journal = self._start(on_event)
        result = await self.plan.run(on_event)
        if self.action is MoveAction.MOVE:
            journal.status = MoveStatus.DONE if result.ok else MoveStatus.FAILED
        else:
            done = result.ok and not list(journal.pending())
            journal.status = MoveStatus.ROLLED_BACK if done else MoveStatus.ROLLBACK_FAILED
        return _result(self, result, journal)


def _result(plan: MovePlan, result: PlanResult, journal: MoveJournal) -> MoveResult:
    steps = []
    rank = {StepOutcome.FAILED: 0, StepOutcome.NOT_RUN: 1, StepOutcome.DONE: 2,
            StepOutcome.SKIPPED: 3}
    for view in plan.steps:
        hosts = []
        for host in view.hosts:
            event = result.states.get((view.name, host))
            if event is None or event.state in ("pending", "checking"):
                outcome = StepOutcome.NOT_RUN
            elif event.state == "running":
                outcome = StepOutcome.FAILED if result.failure else StepOutcome.NOT_RUN
            else:
                outcome = StepOutcome(event.state)
            hosts.append(HostOutcome(host, outcome, event.detail if event else ""))
        outcome = min((h.outcome for h in hosts), key=rank.__getitem__,
                      default=StepOutcome.NOT_RUN)
        if plan.action is MoveAction.MOVE:
            changed = any(e.step == view.kind.value for e in journal.entries)
        else:
            changed = outcome is StepOutcome.DONE
        steps.append(StepResult(view.kind, view.name, view.title, outcome, changed,
                                tuple(hosts)))
    return MoveResult(plan.action, plan.old_vip, plan.new_vip, journal.status, tuple(steps),
                      journal.path)


class VipMoves:
    """The ``vip`` engine: prepare a move of the API VIP, or the rollback of the last one.

    Args:
        inventory: the cluster (its ``[api] vip`` is the VIP to move).
        fleet: the workbench's fleet.
        pki_dir: the local PKI directory (``ca.pem``, ``kubernetes.pem``; the journal
            lives in ``PKI/vip-move/``).
        ipfw: the ipfw command on the hypervisor.
        active_set: the VIP's ipfw set.
        spare_set: the disabled set used to build and roll back.
        first_rule: the number of the VIP's first rule.
        options: rollout timeouts and sudo.
        fault: called after each change, before its verification (tests).
    """

    def __init__(self, inventory: Inventory, fleet: Fleet, pki_dir: Path, *,
                 ipfw: str = "ipfw", active_set: int = 10, spare_set: int = 11,
                 first_rule: int = 1000, options: RolloutOptions | None = None,
                 fault: Fault | None = None) -> None:
        self.inventory = inventory
        self.fleet = fleet
        self.pki_dir = Path(pki_dir)
        self.ipfw = ipfw
        self.sets = {"active_set": active_set, "spare_set": spare_set,
                     "first_rule": first_rule}
        self.options = options or RolloutOptions()
        self.fault = fault
        self._dialer: object | None = None
        self.on_reload: Callable[[], object] | None = None
        """Read the inventory again for the whole workbench (set by :func:`open_engine`)."""

    def configure(self, *, ipfw: str | None = None, active_set: int | None = None,
                  spare_set: int | None = None, first_rule: int | None = None,
                  options: RolloutOptions | None = None, fault: Fault | None = None) -> None:
        """Change the knobs a view offers (the CLI's --ipfw, --set...); None keeps one."""
        if ipfw is not None:
            self.ipfw = ipfw
        for key, value in (("active_set", active_set), ("spare_set", spare_set),
                           ("first_rule", first_rule)):
            if value is not None:
                self.sets[key] = value
        if options is not None:
            self.options = options
        if fault is not None:
            self.fault = fault

    @property
    def journal_dir(self) -> Path:
        """``PKI/vip-move``."""
        return MoveJournal.at(self.pki_dir)

    def journal(self) -> MoveJournal | None:
        """The journal of the last move (None: never moved)."""
        return MoveJournal.load(self.journal_dir)

    def _hypervisor(self) -> str:
        if self.inventory.hypervisor is None:
            raise UserError(f"{self.inventory.path}: there is no [hypervisor] section, so "
                            "there are no VIP rules to move (add name, address and firewall "
                            "= \"ipfw\").")
        return self.inventory.hypervisor.name

    def dialer(self) -> object:
        """How cluster addresses are reached (through the jump host), kept open."""
        from tui.core.fleet.dial import dialer_for

        if self._dialer is None:
            self._dialer = dialer_for(self.inventory, self.fleet)
        return self._dialer

    def reload(self) -> None:
        """Read the inventory file again (a finished move or rollback rewrote its VIP):
        through the workbench when it gave ``on_reload`` (so every engine and view gets
        it), else here."""
        from tui.core.inventory.load import load_inventory

        if self.on_reload is not None:
            self.on_reload()  # calls inventory_changed below
            return
        self.inventory = load_inventory(self.inventory.path)

    def inventory_changed(self, inventory: Inventory) -> None:
        """The workbench read the inventory again."""
        self.inventory = inventory

    async def survey(self) -> VipSurvey:
        """The zone's drift, the hypervisor's rules against the wanted ones, the journal."""
        from tui.core.lb.move_survey import survey_vip

        return await survey_vip(self)

    def _context(self, old: VipLayout, new: VipLayout, ipfw: str) -> MoveContext:
        from tui.core.dns.zoneplan import client_for

        dialer = self.dialer()
        dns = client_for(self.inventory, dialer) if self.inventory.dns is not None else None  # type: ignore[arg-type]
        hv = HypervisorIpfw(self.fleet, self._hypervisor(), ipfw=ipfw)
        return MoveContext(self.inventory, self.fleet, hv, old, new,
                           vip_backends(self.inventory), self.pki_dir, dialer,  # type: ignore[arg-type]
                           dns=dns, options=self.options, fault=self.fault, ipfw=ipfw)

    def _check_inventory(self) -> str:
        from tui.core.inventory.gate import require_runnable

        require_runnable(self.inventory, "vip move", allow=("api.vip",))
        if self.inventory.api.vip is None:
            raise UserError(f"{self.inventory.path}: [api] vip is not set, so there is no "
                            "VIP to move; set it with `hardway vip apply --vip` first.")
        if self.inventory.dns is not None and self.inventory.dns.mode != "rfc2136":
            raise UserError(f"{self.inventory.path}: dns.mode is "
                            f"{self.inventory.dns.mode!r}; vip move updates the API name "
                            "with RFC 2136 only. Move the record with `hardway dns apply` "
                            "after the move, or drop [dns] for the move.")
        return str(self.inventory.api.vip)

    async def _connect(self) -> None:
        names = [h.name for h in self.inventory.controllers]
        states = await self.fleet.connect(names)
        down = [n for n in names if states.get(n) is not None and states[n].value != "ready"]
        if down:
            raise UserError("vip move needs every controller: "
                            + "; ".join(f"{n}: {self.fleet.reason(n)}" for n in down))

    async def _used(self, ctx: MoveContext) -> tuple[dict[str, str], list[str]]:
        """Addresses in use by the hypervisor's rules and the zone's records."""
        used: dict[str, str] = {}
        notes: list[str] = []
        for rule in await ctx.hv.read_rules():
            for address in (rule.dst, rule.fwd_address):
                if address and address != ctx.old.vip:
                    used.setdefault(address, f"ipfw rule {rule.number} (set {rule.set}) on "
                                             f"{ctx.hv.name}")
        if ctx.dns is not None and self.inventory.dns is not None:
            from tui.core.dns.drift import transfer
            from tui.core.dns.tsig import TsigKeyRef

            zone, reason = await transfer(ctx.dns, self.inventory.dns.zone,
                                          TsigKeyRef.from_inventory(self.inventory.dns))
            if zone is None:
                notes.append(f"the zone's records were not checked for the new VIP: {reason}")
            else:
                origin = zone.origin
                for name, rdataset in zone.iterate_rdatasets("A"):
                    owner = (name.derelativize(origin) if origin is not None else name).to_text()
                    if ctx.api_name is not None and owner == ctx.api_name:
                        continue
                    for rdata in rdataset:
                        used.setdefault(rdata.to_text(), f"the DNS record {owner}")
        return used, notes

    def _issue(self, new_vip: str, old_vip: str) -> tuple[Issued, bytes | None, str]:
        from tui.core.pki.ca import CertificateAuthority
        from tui.core.pki.profiles import Profile, profile_named

        moved = dataclasses.replace(self.inventory, api=dataclasses.replace(
            self.inventory.api, vip=ipaddress.IPv4Address(new_vip)))
        base = profile_named(moved, "kubernetes")
        sans = (*base.sans_reasons, San("ip", old_vip, "the old VIP, served until the move "
                                                      "removes it"))
        profile = Profile.from_sans(base.name, base.common_name, base.organization, sans)
        issued = CertificateAuthority.load(self.pki_dir).issue(profile)
        path = self.pki_dir / "kubernetes.pem"
        old = path.read_bytes() if path.exists() else None
        note = (f"reissued by {self.pki_dir.name}/ca.pem: IP SANs "
                f"{', '.join(profile.ip_addresses)} (+ {new_vip}; {old_vip} kept)")
        return issued, old, note

    async def prepare(self, new_vip: str) -> MovePlan:
        """Lint ``new_vip``, read the cluster and build the move with its preview.

        Raises:
            UserError: the address is refused (every reason), the inventory or the
                cluster cannot be moved, or a previous move is not finished.
        """
        old_vip = self._check_inventory()
        journal = self.journal()
        if journal is not None and journal.status.open:
            raise UserError(f"The move of the VIP from {journal.old_vip} to "
                            f"{journal.new_vip} is not finished ({journal.status.value}, "
                            f"journal {journal.path}): roll it back first with `hardway vip "
                            "move --rollback`.")
        findings = lint_new_vip(self.inventory, new_vip)
        if findings:
            raise UserError(describe(findings, new_vip))
        new_vip = str(ipaddress.IPv4Address(new_vip.strip()))
        old = vip_layout(self.inventory, active_set=self.sets["active_set"],
                         spare_set=self.sets["spare_set"], first_rule=self.sets["first_rule"])
        new = dataclasses.replace(old, vip=new_vip)
        await self._connect()
        ctx = self._context(old, new, self.ipfw)
        used, notes = await self._used(ctx)
        findings = lint_new_vip(self.inventory, new_vip, used=used)
        if findings:
            raise UserError(describe(findings, new_vip))
        check_layout(await ctx.sets(), old)
        issued, old_cert, sans_note = await asyncio.to_thread(self._issue, new_vip, old_vip)
        steps = move_steps(ctx, issued, old_cert, sans_note)
        if ctx.api_name is None:
            notes.append("the inventory has no [dns] table or no api.hostname: no DNS "
                         "record is changed and the new VIP is verified by address only")
        notes += self._kubeconfig_notes(old_vip)

        def start(on_event: EventCallback | None) -> MoveJournal:
            ctx.on_event, ctx.live = on_event, True
            ctx.journal = MoveJournal.begin(
                self.journal_dir, inventory=self.inventory.path, old_vip=old_vip,
                new_vip=new_vip, layout={**self.sets, "ipfw": self.ipfw})
            return ctx.journal

        return await self._plan(MoveAction.MOVE, old_vip, new_vip, steps, notes, ctx, start)

    def _kubeconfig_notes(self, old_vip: str) -> list[str]:
        stale = sorted(p.name for p in self.pki_dir.glob("*.kubeconfig")
                       if f"//{old_vip}:" in p.read_text(errors="replace"))
        if not stale:
            return []
        return [f"{', '.join(stale)} in {self.pki_dir} still name https://{old_vip}: "
                "regenerate and push them after the move (not part of this plan)"]

    async def prepare_rollback(self) -> MovePlan:
        """The plan that undoes the last move's changes, last first.

        Raises:
            UserError: no journal, or nothing left to undo.
        """
        journal = self.journal()
        if journal is None:
            raise UserError(f"There is no VIP move to roll back (no journal in "
                            f"{self.journal_dir}).", exit_code=1)
        if not list(journal.pending()):
            if journal.status.open:  # every change undone: the move is closed
                journal.status = MoveStatus.ROLLED_BACK
            raise UserError(f"The move from {journal.old_vip} to {journal.new_vip} has "
                            f"nothing left to undo ({journal.status.value}; journal "
                            f"{journal.path}).", exit_code=1)
        layout = journal.layout
        sets = {k: int(layout.get(k, v)) for k, v in self.sets.items()}
        old = vip_layout(self.inventory, vip=journal.old_vip, active_set=sets["active_set"],
                         spare_set=sets["spare_set"], first_rule=sets["first_rule"])
        new = dataclasses.replace(old, vip=journal.new_vip)
        await self._connect()
        ctx = self._context(old, new, str(layout.get("ipfw") or self.ipfw))
        ctx.journal = journal
        steps = undo_steps(ctx)
        notes = [f"journal {journal.path} ({journal.status.value}): "
                 f"{len(list(journal.pending()))} changes to undo, last first"]

        def start(on_event: EventCallback | None) -> MoveJournal:
            ctx.on_event, ctx.live = on_event, True
            journal.status = MoveStatus.ROLLING_BACK
            return journal

        return await self._plan(MoveAction.ROLLBACK, journal.old_vip, journal.new_vip, steps,
                                notes, ctx, start)

    async def _plan(self, action: MoveAction, old_vip: str, new_vip: str, steps: Sequence,
                    notes: list[str], ctx: MoveContext,
                    start: Callable[[EventCallback | None], MoveJournal]) -> MovePlan:
        plan = Plan(list(steps))
        try:
            previews = await plan.preview()
        except StepFailed as exc:
            raise UserError(f"vip move: cannot preview the plan: {exc}") from None
        views = []
        for step in plan.steps:
            kind = MoveStepKind(step.name.removeprefix("undo "))
            title = step_title(kind, old_vip, new_vip)
            if action is MoveAction.ROLLBACK:
                title = f"undo: {title}"
            per_step = tuple(p for h in step.hosts for p in previews[h] if p.step == step.name)
            views.append(StepView(kind, step.name, title, tuple(step.hosts), per_step))
        return MovePlan(action, old_vip, new_vip, tuple(views), tuple(n for n in notes if n),
                        plan, start, ctx)

    async def aclose(self) -> None:
        """Release the dialer's forwards."""
        dialer, self._dialer = self._dialer, None
        if dialer is not None:
            await dialer.close()  # type: ignore[attr-defined]


def open_engine(workbench: Workbench) -> VipMoves:
    """The workbench's ``vip`` engine (see :data:`tui.core.workbench.ENGINES`)."""
    moves = VipMoves(workbench.inventory, workbench.fleet, workbench.pki_dir)
    moves.on_reload = workbench.reload_inventory
    return moves


__all__ = ["HostOutcome", "MoveAction", "MovePlan", "MoveResult", "StepOutcome", "StepResult",
           "StepView", "VipMoves", "open_engine"]
