"""Snapshots of the DNS/VIP screen (ctrl+g v): the seed's VIP in the node block with DNS
drift and a hypervisor that lost a backend, then a move half way through its plan.

The data are fixed (the seed inventory, a served zone and rule set built here, plan
events sent by the test), computed by the product's own code: the drift by
``tui.core.dns.drift.compare``, the rules by ``tui.core.lb.ipfw``, the plan's titles by
``step_title``.  No host is contacted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from screens.dns_vip import DnsVipScreen
from tui.app import create_app
from tui.core.dns.drift import DriftReport, RRset, compare, wanted_rrsets
from tui.core.dns.records import wanted_records
from tui.core.inventory.lint import lint
from tui.core.inventory.load import load_inventory
from tui.core.lb.hypervisor import vip_backends, vip_layout
from tui.core.lb.ipfw import wanted_rules
from tui.core.lb.move import MoveAction, MovePlan, StepView
from tui.core.lb.move_context import MoveStepKind, step_title
from tui.core.lb.move_journal import MoveStatus
from tui.core.lb.move_survey import VipSurvey, rules_view
from tui.core.plan import Plan, PlanEvent
from tui.core.workbench import Workbench

SEED = Path(__file__).resolve().parents[2] / "config" / "something.local.toml"
OLD, NEW = "10.10.0.100", "10.50.0.1"


@pytest.fixture
def inventory_path(tmp_path: Path) -> Path:
    """The seed inventory with its first VIP, inside the node block."""
    path = tmp_path / "seed" / "inventory.toml"
    path.parent.mkdir()
    path.write_text(SEED.read_text().replace(f'vip = "{NEW}"', f'vip = "{OLD}"'))
    return path


def survey(path: Path) -> VipSurvey:
    """The seed as a survey would read it: controller-2 missing from DNS and from the
    hypervisor's rules (the guard took it out), a stray record left behind."""
    inventory = load_inventory(path)
    assert inventory.dns is not None
    wanted = wanted_rrsets(wanted_records(inventory))
    served = {k: v for k, v in wanted.items() if not k[0].startswith("controller-2.")}
    stray = RRset(f"old-lb.{inventory.dns.zone}", "A", 300, ("10.10.0.99",))
    report = DriftReport(inventory.dns.zone, f"{inventory.dns.server}:53",
                         wanted_records(inventory), served,
                         compare(wanted, served, zone_rrsets=[*wanted.values(), stray]),
                         extras_checked=True)
    layout = vip_layout(inventory)
    backends = vip_backends(inventory)
    rules = rules_view("nucklehead", wanted_rules(layout, backends[:2]), layout, backends)
    return VipSurvey(OLD, f"kubernetes.{inventory.dns.zone}", tuple(backends), rules, report,
                     None, tuple(f.message for f in lint(inventory) if f.key == "api.vip"),
                     (MoveStatus.ROLLED_BACK, OLD, NEW))


def plan(path: Path) -> MovePlan:
    """The move's ten steps (titles from the engine), no preview needed on screen."""
    inventory = load_inventory(path)
    controllers = tuple(h.name for h in inventory.controllers)
    where = {MoveStepKind.ALIASES: controllers, MoveStepKind.REMOVE_ALIASES: controllers,
             MoveStepKind.CERTIFICATE: ("kubernetes.pem",), MoveStepKind.INVENTORY: ("local",),
             MoveStepKind.DNS: ("dns 10.10.0.2:53",), MoveStepKind.REMOVE_DNS:
             ("dns 10.10.0.2:53",), MoveStepKind.VERIFY: (f"{NEW}:6443",)}
    views = tuple(StepView(kind, kind.value, step_title(kind, OLD, NEW),
                           where.get(kind, ("nucklehead",)), ()) for kind in MoveStepKind)
    return MovePlan(MoveAction.MOVE, OLD, NEW, views, (
        "kube-proxy.kubeconfig still names https://10.10.0.100: regenerate it after the move",),
        Plan([]))


EVENTS = [
    *(PlanEvent("aliases", h, "done", f"{NEW}/32 on lo")
      for h in ("controller-0", "controller-1", "controller-2")),
    PlanEvent("rules", "nucklehead", "done", "6 rules in set 11 (disabled); read back"),
    PlanEvent("certificate", "kubernetes.pem", "running",
              "put files: done (4 written, 5 unchanged)"),
    PlanEvent("certificate", "controller-1", "running",
              "restart etcd: done (etcd health 200 in 0.04 s)"),
]


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.05)


def _app(path: Path, tmp_path: Path) -> Any:
    return create_app(Workbench(load_inventory(path), audit_path=tmp_path / "audit.jsonl",
                                user_ssh_files=False, relay=False), connect=False)


async def _screen(pilot: Pilot[Any], path: Path, *, moving: bool) -> None:
    await pilot.press("ctrl+g", "v")
    await _until(pilot, lambda: isinstance(pilot.app.screen, DnsVipScreen))
    screen = pilot.app.screen
    assert isinstance(screen, DnsVipScreen)
    screen.show_survey(survey(path))
    if moving:
        screen.show_plan(plan(path))
        for event in EVENTS:
            screen.on_plan_event(event)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
def test_seed_vip_with_drift(snap_compare: Any, inventory_path: Path, tmp_path: Path,
                             size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _screen(pilot, inventory_path, moving=False)

    assert snap_compare(_app(inventory_path, tmp_path), terminal_size=size,
                        run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
def test_move_in_progress(snap_compare: Any, inventory_path: Path, tmp_path: Path,
                          size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _screen(pilot, inventory_path, moving=True)

    assert snap_compare(_app(inventory_path, tmp_path), terminal_size=size,
                        run_before=run_before)


def test_move_preview_at_80x24(snap_compare: Any, inventory_path: Path,
                               tmp_path: Path) -> None:
    """The confirmation shows the plan as `vip move --dry-run` prints it; Cancel focused."""
    from screens.dns_vip import MovePreviewScreen
    from tui.core.plan import Preview, StepPreview

    base = plan(inventory_path)
    views = tuple(
        StepView(v.kind, v.name, v.title, v.hosts, (StepPreview(v.name, v.hosts[0], Preview(
            commands=("ipfw set swap 10 11",) if v.kind is MoveStepKind.SWITCH else (),
            notes=("both VIPs are served afterwards",)), None),)) for v in base.steps)
    preview_plan = MovePlan(base.action, base.old_vip, base.new_vip, views, base.notes,
                            Plan([]))

    async def run_before(pilot: Pilot[Any]) -> None:
        await _screen(pilot, inventory_path, moving=False)
        pilot.app.push_screen(MovePreviewScreen(preview_plan))
        await _until(pilot, lambda: isinstance(pilot.app.screen, MovePreviewScreen))
        await pilot.pause()

    assert snap_compare(_app(inventory_path, tmp_path), terminal_size=(80, 24),
                        run_before=run_before)


def test_the_survey_of_the_seed_is_what_the_panes_show(inventory_path: Path) -> None:
    data = survey(inventory_path)
    assert data.dns is not None and not data.dns.in_sync
    kinds = {(d.name.split(".")[0], d.kind.value) for d in data.dns.drifts}
    assert kinds == {("controller-2", "missing"), ("old-lb", "extra")}
    assert data.rules is not None and not data.rules.in_sync
    assert data.rules.diff == ("- 01000 p=0.500 → 10.10.0.10:6443",
                               "+ 01000 p=0.333 → 10.10.0.10:6443",
                               "- 01010 always  → 10.10.0.11:6443",
                               "+ 01010 p=0.500 → 10.10.0.11:6443",
                               "+ 01020 always  → 10.10.0.12:6443")
    assert data.placement and "inside networks.nodes" in data.placement[0]
