"""The health engine the screen uses: the poller over the workbench's fleet, a transition
log, and the VIP guard on demand (Textual-free).

``ENGINES["health"]`` builds a :class:`HealthWork` from the workbench (its inventory,
fleet and PKI directory); the health screen gets it with ``workbench.engine("health")``::

    work = workbench.engine("health")
    unsubscribe = work.subscribe(view.on_event)   # poller events, guard events, toggles
    await work.run()                              # rounds until cancelled (a worker)
    await work.run_guard()                        # the VIP guard until cancelled (a worker)

The session (probes, poller, kept connections) is built on first use, so a cluster
without ``ca.pem`` fails there with one :class:`~tui.core.errors.UserError` paragraph.
Every change of state (rise/fall) and every action of the guard lands in one bounded
log of :class:`LogEntry`; :meth:`HealthWork.log_for` gives one probe's part of it.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.events import Listeners
from tui.core.health.catalog import ALL_KINDS, Credentials, ProbeOptions, Seams
from tui.core.health.model import Kind, Outcome, Status
from tui.core.health.poller import HealthEvent, Poller, ProbeUpdated, StateChanged
from tui.core.health.session import HealthSession
from tui.core.health.states import State
from tui.core.health.vip_checks import VipBackends

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory
    from tui.core.lb.guard import GuardEvent, GuardSettings, VipGuard
    from tui.core.workbench import Workbench

__all__ = ["GuardToggled", "HealthSettings", "HealthWork", "LogEntry", "LogKind",
           "WorkEvent", "open_engine"]

GUARD_KINDS = frozenset({Kind.VIP_ADDRESS, Kind.VIP_NAME, Kind.VIP_RULES})
"""Probes whose transition log also shows the guard's actions."""
RULES_REFRESH = 10.0
"""Seconds the VIP rules read from the hypervisor are reused (each read is audited)."""


@dataclass(frozen=True)
class HealthSettings:
    """How the engine polls.

    Attributes:
        interval: seconds between rounds (the next starts when one ends).
        rise, fall: HAProxy's counters.
        timeout: seconds per probe run.
        kinds: the probe kinds wanted.
        rounds: stop after this many rounds (None: until cancelled).
        guard: the VIP guard's settings (None: its defaults).
        ipfw: the hypervisor's ipfw command (``sudo ipfw``, ``/sbin/ipfw``), for the
            ``vip-rules`` probe and the guard, as ``hardway vip --ipfw``.
    """

    interval: float = 2.0
    rise: int = 2
    fall: int = 3
    timeout: float = 2.0
    kinds: frozenset[Kind] = ALL_KINDS
    rounds: int | None = None
    guard: GuardSettings | None = None
    ipfw: str = "ipfw"


class LogKind(enum.Enum):
    """What a log entry records."""

    TRANSITION = "transition"
    GUARD = "guard"


@dataclass(frozen=True)
class LogEntry:
    """One line of the transition log.

    Attributes:
        at: wall-clock time.
        kind: a probe's transition or a guard action.
        row: the grid row (``controller-1``, ``vip``, ``hypervisor``).
        key: the probe's key (None for a guard action).
        before, after: the states (transitions only).
        text: what happened, in words (the reason included).
        alarm: the user must look (a probe DOWN, a refused swap, the last backend kept).
    """

    at: float
    kind: LogKind
    row: str
    key: str | None
    text: str
    before: State | None = None
    after: State | None = None
    alarm: bool = False


@dataclass(frozen=True)
class GuardToggled:
    """The guard started or stopped; ``reason`` says why it stopped, if it failed."""

    running: bool
    reason: str = ""


if TYPE_CHECKING:
    WorkEvent = HealthEvent | GuardEvent | GuardToggled
    """Everything a :class:`HealthWork` listener receives."""
else:
    WorkEvent = object


@dataclass
class _Errors:
    """The last failed outcome of each probe (the drill-down's "last error")."""

    last: dict[str, Outcome] = field(default_factory=dict)


class HealthWork:
    """Health polling and the VIP guard over one inventory and fleet.

    Args:
        inventory: the cluster.
        fleet: the workbench's fleet (SSH probes, the jump host, the hypervisor).
        pki_dir: where ``ca.pem`` and ``kubernetes(-key).pem`` are.
        settings: polling settings (see :meth:`configure`).
        poller: a prepared poller (tests and benchmarks; default: built from the
            inventory on first use).
        clock: wall clock for guard entries and rule caching.
    """

    def __init__(self, inventory: Inventory, fleet: Fleet | None, pki_dir: Path, *,
                 settings: HealthSettings | None = None, poller: Poller | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.inventory = inventory
        self.fleet = fleet
        self.pki_dir = Path(pki_dir)
        self.settings = settings or HealthSettings()
        self.clock = clock
        self.session: HealthSession | None = None
        self._poller = poller
        self._listeners: Listeners[WorkEvent] = Listeners("health")
        self.log: deque[LogEntry] = deque(maxlen=500)
        self._errors = _Errors()
        self._wired = False
        self.guard: VipGuard | None = None
        self._rules_cache: tuple[float, tuple[str, ...]] | None = None
        self._seams: Seams | None = None

    # -- set-up ---------------------------------------------------------------------------

    def configure(self, **changes: object) -> None:
        """Change the settings before the first use (``interval=0.3``, ``fall=2``...).

        Raises:
            RuntimeError: the poller exists already.
        """
        if self._poller is not None:
            raise RuntimeError("the health poller is built; configure before first use")
        self.settings = replace(self.settings, **changes)  # type: ignore[arg-type]

    @property
    def poller(self) -> Poller:
        """The poller (probes built on first use).

        Raises:
            UserError: no readable ``ca.pem``, or no probe applies.
        """
        if self._poller is None:
            settings = self.settings
            credentials = Credentials.from_pki(self.pki_dir)
            seams = Seams(fleet=self.fleet, vip_backends=self._vip_backends_seam())
            self._seams = seams
            self.session = HealthSession.open(
                self.inventory, self.fleet, credentials,
                ProbeOptions(kinds=settings.kinds, timeout=settings.timeout), seams=seams,
                interval=settings.interval, rise=settings.rise, fall=settings.fall)
            self._poller = self.session.poller
        if not self._wired:
            self._wired = True
            self._poller.subscribe(self._on_health)
        return self._poller

    def subscribe(self, listener: Callable[[WorkEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every :data:`WorkEvent`; returns its unsubscribe."""
        return self._listeners.subscribe(listener)

    def inventory_changed(self, inventory: Inventory) -> None:
        """The workbench read the inventory again (a VIP move): the grid's probes and the
        guard follow the new addresses from the next round."""
        self.inventory = inventory
        self._rules_cache = None
        if self.session is not None:
            settings = self.settings
            self.session.retarget(inventory, Credentials.from_pki(self.pki_dir),
                                  ProbeOptions(kinds=settings.kinds, timeout=settings.timeout),
                                  self._seams)
        if self.guard is not None:
            self.guard.inventory_changed(inventory)

    # -- polling --------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll (rounds never overlap) until cancelled or ``settings.rounds`` are done."""
        await self.poller.run(self.settings.rounds)

    def _on_health(self, event: HealthEvent) -> None:
        if isinstance(event, ProbeUpdated):
            outcome = event.cell.outcome
            if outcome is not None and outcome.status is Status.FAIL:
                self._errors.last[event.cell.key] = outcome
        elif isinstance(event, StateChanged) and not (
                event.transition.before is State.UNKNOWN
                and event.transition.after is State.UP):  # a first answer: no news
            t = event.transition
            self.log.append(LogEntry(
                t.at, LogKind.TRANSITION, event.row, event.key,
                f"{event.row} {event.kind.value} {t.before.value.upper()} -> "
                f"{t.after.value.upper()}: {t.reason}", t.before, t.after,
                alarm=t.after is State.DOWN))
        self._listeners.emit(event)

    def last_error(self, key: str) -> Outcome | None:
        """The latest failed outcome of probe ``key`` (None: it never failed)."""
        return self._errors.last.get(key)

    def log_for(self, key: str) -> list[LogEntry]:
        """Probe ``key``'s transitions (and the guard's actions for the VIP's probes),
        oldest first."""
        cell = self.poller.cells.get(key)
        guarded = cell is not None and cell.probe.kind in GUARD_KINDS
        return [e for e in self.log
                if e.key == key or (guarded and e.kind is LogKind.GUARD)]

    # -- the VIP guard (issue 16) ---------------------------------------------------------

    @property
    def guard_running(self) -> bool:
        """The guard is watching the backends now."""
        return self.guard is not None

    def guard_unavailable(self) -> str | None:
        """Why this cluster cannot have a guard (None: it can)."""
        if self.inventory.hypervisor is None:
            return "the inventory has no [hypervisor] table, so there are no VIP rules to guard"
        if self.inventory.api.vip is None:
            return "the inventory's [api] has no vip"
        if self.fleet is None:
            return "no SSH fleet to reach the hypervisor"
        return None

    async def run_guard(self) -> None:
        """Run the VIP guard until cancelled: controllers whose /readyz goes DOWN leave
        the hypervisor's rules, and come back when UP (never the last one).

        Raises:
            UserError: no hypervisor or VIP, no CA, or the rules cannot be read.
        """
        from tui.core.lb.guard import GuardSettings, VipGuard
        from tui.core.lb.hypervisor import HypervisorIpfw

        why = self.guard_unavailable()
        if why is not None:
            raise UserError(f"The VIP guard cannot run: {why}.")
        assert self.fleet is not None and self.inventory.hypervisor is not None
        settings = self.settings.guard or GuardSettings()
        hypervisor = HypervisorIpfw(self.fleet, self.inventory.hypervisor.name,
                                    ipfw=self.settings.ipfw)
        guard = VipGuard(self.inventory, self.fleet, Credentials.from_pki(self.pki_dir),
                         settings, hypervisor=hypervisor)
        self.guard = guard
        unsubscribe = guard.subscribe(self._on_guard)
        self._listeners.emit(GuardToggled(True))
        reason = ""
        try:
            await guard.run()
        except UserError as exc:
            reason = str(exc)
            raise
        finally:
            unsubscribe()
            self.guard = None
            self._listeners.emit(GuardToggled(False, reason))

    def _on_guard(self, event: GuardEvent) -> None:
        from tui.core.lb.guard import GuardAction

        self._rules_cache = None  # the rules may have changed: read them next round
        alarm = event.action in (GuardAction.SWAP_FAILED, GuardAction.KEPT_LAST)
        self.log.append(LogEntry(event.at, LogKind.GUARD, "vip", None,
                                 f"guard: {event.line().split(' ', 1)[1]}", alarm=alarm))
        self._listeners.emit(event)

    def _vip_backends_seam(self) -> VipBackends | None:
        """Reads the backends of the hypervisor's active VIP rules (cached a while)."""
        inventory, fleet = self.inventory, self.fleet
        if fleet is None or inventory.hypervisor is None or inventory.api.vip is None \
                or inventory.hypervisor.firewall != "ipfw":
            return None
        from tui.core.lb.hypervisor import HypervisorIpfw, vip_layout
        from tui.core.lb.rules import Action

        ipfw = HypervisorIpfw(fleet, inventory.hypervisor.name, ipfw=self.settings.ipfw,
                              timeout=5.0)

        async def backends() -> tuple[str, ...]:
            layout = vip_layout(self.inventory)  # the VIP as now written (it may move)
            now = self.clock()
            cached = self._rules_cache
            if cached is not None and now - cached[0] < RULES_REFRESH:
                return cached[1]
            try:
                rules = await ipfw.read_rules()
            except UserError as exc:
                raise LookupError(str(exc)) from None
            found = tuple(r.fwd_address for r in rules
                          if r.set == layout.active_set and r.action is Action.FWD
                          and r.dst == layout.vip and r.fwd_address)
            self._rules_cache = (now, found)
            return found

        return backends

    # -- closing --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop polling and close the kept connections (the workbench calls this)."""
        if self.session is not None:
            await self.session.close()
        elif self._poller is not None:
            await self._poller.stop()
        await asyncio.sleep(0)


def open_engine(workbench: Workbench) -> HealthWork:
    """The workbench's ``health`` engine (see :data:`tui.core.workbench.ENGINES`)."""
    return HealthWork(workbench.inventory, workbench.fleet, workbench.pki_dir)
