"""The VIP guard: health checks for the hypervisor's ipfw round robin.

ipfw has no health checks, so a controller that cannot answer keeps receiving its share
of new connections (a third of them, with three controllers).  The guard runs the health
poller's ``/readyz`` probe against every controller directly (through the Dialer), with
HAProxy's rise/fall; when a backend goes DOWN it builds the rule set without it in the
spare set and swaps it in (:meth:`HypervisorIpfw.apply`: atomic, the previous rules kept
for rollback), and when it comes back UP it is added back the same way.  Probabilities
are recomputed so the remaining backends share the traffic evenly.

It never removes the last backend: with every backend down it keeps the rules as they
are and says so loudly (:attr:`GuardAction.KEPT_LAST`), since a VIP with no rule would
refuse every connection, even to a controller that comes back.  A swap the hypervisor
refuses leaves the old set in force (:attr:`GuardAction.SWAP_FAILED`, with its reason)
and is tried again on the next change or round.  Every action is a typed
:class:`GuardEvent` for the CLI and the health screen, and an ``vip-guard`` record in
the audit log (the ipfw commands themselves are audited as every remote command is).

Defaults: a probe every second, rise 2, fall 2, 1 s timeout: a stopped kube-apiserver is
out of the rules about 2 s after it stops answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.health.catalog import Credentials, ProbeOptions
from tui.core.health.model import Kind
from tui.core.health.poller import HealthEvent, StateChanged
from tui.core.health.session import HealthSession
from tui.core.health.states import State
from tui.core.lb.hypervisor import HypervisorIpfw, vip_backends, vip_layout
from tui.core.lb.ipfw import Backend, VipLayout, swap_commands
from tui.core.lb.rules import Action

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory

log_name = "hardway.vip.guard"


@dataclass(frozen=True)
class GuardSettings:
    """How the guard probes and acts.

    Attributes:
        interval: seconds between probe rounds.
        rise: consecutive passes that bring a backend back.
        fall: consecutive failures that take it out.
        timeout: seconds per probe.
        dry_run: say which swaps would be made, change nothing.
    """

    interval: float = 1.0
    rise: int = 2
    fall: int = 2
    timeout: float = 1.0
    dry_run: bool = False


class GuardAction(enum.Enum):
    """What the guard did or saw."""

    STARTED = "started"
    BACKEND_DOWN = "backend-down"
    BACKEND_UP = "backend-up"
    SWAPPED = "swapped"
    WOULD_SWAP = "would-swap"
    SWAP_FAILED = "swap-failed"
    KEPT_LAST = "kept-last"


@dataclass(frozen=True)
class GuardEvent:
    """One thing the guard did or saw.

    Attributes:
        action: what.
        at: wall-clock time.
        backends: the backends in the rules after it (for swaps), or the backend concerned.
        reason: in plain words (the probe's detail, the hypervisor's refusal, ...).
        commands: the ipfw commands run (or that would run).
    """

    action: GuardAction
    at: float
    backends: tuple[str, ...]
    reason: str
    commands: tuple[str, ...] = ()

    def line(self) -> str:
        """One line for people: ``09:10:02 swapped: rules now controller-0, controller-2 ...``."""
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at))
        names = ", ".join(self.backends) or "none"
        words = {
            GuardAction.STARTED: f"watching {names}",
            GuardAction.BACKEND_DOWN: f"{names} is DOWN",
            GuardAction.BACKEND_UP: f"{names} is UP again",
            GuardAction.SWAPPED: f"swapped: the VIP now goes to {names}",
            GuardAction.WOULD_SWAP: f"dry run: would swap the VIP to {names}",
            GuardAction.SWAP_FAILED: f"SWAP REFUSED, the old rules stay in force "
                                     f"(wanted {names})",
            GuardAction.KEPT_LAST: f"EVERY BACKEND IS DOWN: keeping the rules for {names}",
        }[self.action]
        return f"{stamp} {words}: {self.reason}" if self.reason else f"{stamp} {words}"


GuardListener = Callable[[GuardEvent], None]


@dataclass
class _Status:
    in_rules: tuple[str, ...] | None = None
    up: dict[str, bool] = field(default_factory=dict)


class VipGuard:
    """Keep the VIP's rules to the controllers that answer.

    Args:
        inventory: the cluster (controllers, API port, VIP, hypervisor).
        fleet: an open fleet over it (the hypervisor's connection, the jump host).
        credentials: the cluster CA (probes verify TLS against it).
        settings: probe timing and dry run.
        hypervisor: the ipfw runner (default: the inventory's hypervisor, ``ipfw``).
        layout: the VIP's sets and rule numbers (default: set 10 active, 11 spare).
    """

    def __init__(self, inventory: Inventory, fleet: Fleet, credentials: Credentials,
                 settings: GuardSettings | None = None, *,
                 hypervisor: HypervisorIpfw | None = None,
                 layout: VipLayout | None = None) -> None:
        if inventory.hypervisor is None:
            raise UserError("The VIP guard changes the hypervisor's ipfw rules, but the "
                            "inventory has no [hypervisor] table.")
        self.inventory = inventory
        self.fleet = fleet
        self.settings = settings or GuardSettings()
        self.hypervisor = hypervisor or HypervisorIpfw(fleet, inventory.hypervisor.name)
        self.layout = layout or vip_layout(inventory)
        self._own_layout = layout is not None
        self.backends = vip_backends(inventory)
        self.session = HealthSession.open(
            inventory, fleet, credentials,
            ProbeOptions(kinds=frozenset({Kind.READYZ}), timeout=self.settings.timeout),
            interval=self.settings.interval, rise=self.settings.rise,
            fall=self.settings.fall)
        self._status = _Status()
        self._listeners: list[GuardListener] = []
        self._lock = asyncio.Lock()
        self._pending: asyncio.Task[GuardEvent | None] | None = None
        self.events: list[GuardEvent] = []

    def inventory_changed(self, inventory: Inventory) -> None:
        """The inventory was read again (a VIP move): later swaps render rules for the new
        VIP, never the old one."""
        self.inventory = inventory
        if not self._own_layout:
            self.layout = vip_layout(inventory)
        self.backends = vip_backends(inventory)

    # -- listeners ------------------------------------------------------------------------

    def subscribe(self, listener: GuardListener) -> Callable[[], None]:
        """Call ``listener`` with every :class:`GuardEvent`; returns an unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, action: GuardAction, backends: Sequence[str], reason: str,
              commands: Sequence[str] = ()) -> GuardEvent:
        event = GuardEvent(action, time.time(), tuple(backends), reason, tuple(commands))
        self.events.append(event)
        del self.events[:-200]
        audit = self.fleet.audit
        if audit is not None and action not in (GuardAction.STARTED,):
            audit.record(host=self.hypervisor.name, kind="vip-guard", status=None,
                         duration=0.0, action=action.value, backends=list(backends),
                         reason=reason)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a view's bug must not stop the guard
                import logging

                logging.getLogger(log_name).exception("guard listener failed")
        return event

    # -- state ----------------------------------------------------------------------------

    @property
    def in_rules(self) -> tuple[str, ...] | None:
        """The backends the active rules send to (None until read)."""
        return self._status.in_rules

    def up(self) -> list[Backend]:
        """Backends whose ``/readyz`` is UP now, in inventory order."""
        rows = set(self.session.poller.rows_up(Kind.READYZ))
        return [b for b in self.backends if b.name in rows]

    def status_line(self) -> str:
        """The guard's state on one line, for a live status line: each controller's
        ``/readyz`` (``UP 4ms``, ``UP 1/2 DOWN``, ``DOWN``, ``?``) and who is in the rules.

        ``controller-0 UP 4ms · controller-1 DOWN · controller-2 UP 5ms · VIP ->
        controller-0, controller-2 · round 42``
        """
        parts = []
        for cell in self.session.poller.snapshot():
            if cell.kind is not Kind.READYZ:
                continue
            if cell.state is State.UNKNOWN:
                parts.append(f"{cell.row} ?")
                continue
            words = [cell.row, cell.state.value.upper()]
            outcome = cell.outcome
            if cell.state is State.UP and outcome is not None and outcome.latency is not None:
                words.append(f"{outcome.latency * 1000:.0f}ms")
            if cell.counter:
                words.append(cell.counter)
            parts.append(" ".join(words))
        rules = self.in_rules
        parts.append("VIP -> " + (", ".join(rules) or "none" if rules is not None else "?"))
        if self.settings.dry_run:
            parts.append("dry run")
        parts.append(f"round {self.session.poller.round}")
        return " · ".join(parts)

    async def read_rules(self) -> tuple[str, ...]:
        """The backends the hypervisor's active set forwards the VIP to now."""
        rules = await self.hypervisor.read_rules()
        by_address = {b.address: b.name for b in self.backends}
        names = [by_address.get(r.fwd_address or "", r.fwd_address or "?") for r in rules
                 if r.set == self.layout.active_set and r.action is Action.FWD
                 and r.dst == self.layout.vip]
        self._status.in_rules = tuple(names)
        return self._status.in_rules

    # -- running --------------------------------------------------------------------------

    async def run(self, rounds: int | None = None) -> None:
        """Probe and act until cancelled (or for ``rounds`` probe rounds)."""
        await self.read_rules()
        self._emit(GuardAction.STARTED, [b.name for b in self.backends],
                   f"rules now: {', '.join(self.in_rules or ()) or 'none'}; probing "
                   f"/readyz every {self.settings.interval:g} s (rise "
                   f"{self.settings.rise}, fall {self.settings.fall})")
        unsubscribe = self.session.poller.subscribe(self._on_health)
        try:
            await self.session.poller.run(rounds)
            if self._pending is not None:
                await self._pending
        finally:
            unsubscribe()
            await self.session.close()

    def _on_health(self, event: HealthEvent) -> None:
        if not isinstance(event, StateChanged) or event.kind is not Kind.READYZ:
            return
        transition = event.transition
        if transition.after is State.DOWN:
            self._emit(GuardAction.BACKEND_DOWN, [event.row], transition.reason)
        elif transition.after is State.UP and transition.before is State.DOWN:
            self._emit(GuardAction.BACKEND_UP, [event.row], transition.reason)
        if transition.after in (State.UP, State.DOWN):
            self._pending = asyncio.ensure_future(self.reconcile())

    async def reconcile(self) -> GuardEvent | None:
        """Make the rules list exactly the backends that are UP (never none)."""
        async with self._lock:
            known = {cell.row: cell.state for cell in self.session.poller.snapshot()
                     if cell.kind is Kind.READYZ}
            if any(state is State.UNKNOWN for state in known.values()):
                return None  # not every backend has been judged yet
            up = self.up()
            current = self.in_rules
            names = tuple(b.name for b in up)
            if not up:
                kept = current or ()
                return self._emit(GuardAction.KEPT_LAST, kept,
                                  "no controller answers /readyz; removing the last rules "
                                  "would refuse every connection, so they stay")
            if current == names:
                return None
            commands = self.hypervisor.commands(swap_commands(self.layout, up))
            if self.settings.dry_run:
                self._status.in_rules = names
                return self._emit(GuardAction.WOULD_SWAP, names, _why(current, names),
                                  commands)
            try:
                result = await self.hypervisor.apply(self.layout, up)
            except UserError as exc:
                return self._emit(GuardAction.SWAP_FAILED, names, str(exc), commands)
            if not result.ok:
                failed = next((r for r in result.ran if not r.ok), None)
                reason = ((failed.stderr or failed.stdout).strip() or
                          f"`{failed.command}` exited {failed.status}") if failed else \
                    "the rules read back differ from the wanted ones"
                with contextlib.suppress(UserError):
                    await self.read_rules()
                return self._emit(GuardAction.SWAP_FAILED, names, reason, commands)
            self._status.in_rules = names
            return self._emit(GuardAction.SWAPPED, names, _why(current, names), commands)


def _why(before: tuple[str, ...] | None, after: tuple[str, ...]) -> str:
    gone = [n for n in before or () if n not in after]
    back = [n for n in after if n not in (before or ())]
    parts = []
    if gone:
        parts.append(f"{', '.join(gone)} removed (DOWN)")
    if back:
        parts.append(f"{', '.join(back)} added (UP)")
    return "; ".join(parts) or "rules rewritten"


__all__ = ["GuardAction", "GuardEvent", "GuardSettings", "VipGuard"]
