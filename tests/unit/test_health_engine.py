"""The health engine (ENGINES["health"]) and the grid's cell texts, on synthetic probes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.health_synthetic import FrozenClock, build_poller
from tui.core.errors import UserError
from tui.core.health.engine import HealthWork, LogKind, open_engine
from tui.core.health.history import Sample
from tui.core.health.model import Kind, Outcome, Status
from tui.core.health.report import CellSnapshot
from tui.core.health.states import State
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory
from tui.core.lb.guard import GuardAction, GuardEvent
from tui.core.workbench import Workbench
from tui.widgets.health_grid import cell_text, latency_text, sparkline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    shutil.copy(ROOT / "config" / "something.local.toml", tmp_path / "hardway.toml")
    return load_inventory(tmp_path / "hardway.toml")


async def test_the_log_keeps_changes_errors_and_guard_actions(inventory: Inventory,
                                                              tmp_path: Path) -> None:
    clock = FrozenClock()
    work = HealthWork(inventory, None, tmp_path, poller=build_poller("degraded", clock),
                      clock=clock)
    seen: list[object] = []
    work.subscribe(seen.append)
    for _ in range(6):
        await work.poller.run_round(wait_all=True)
    keys = [e.key for e in work.log]
    assert "controller-1/readyz" in keys
    assert "controller-0/readyz" not in keys  # a first answer (UNKNOWN -> UP) is no news
    entry = work.log_for("controller-1/readyz")[-1]
    assert (entry.before, entry.after, entry.alarm) == (State.UP, State.DOWN, True)
    assert "Connection refused" in entry.text and entry.at == clock.now - 2.0  # round 5
    error = work.last_error("controller-1/readyz")
    assert error is not None and error.status is Status.FAIL
    assert work.last_error("controller-0/readyz") is None
    assert len(seen) > 6 * 45  # every poller event reaches the engine's listeners
    work._on_guard(GuardEvent(GuardAction.KEPT_LAST, clock.now, ("controller-2",),
                              "no controller answers /readyz"))
    guard = [e for e in work.log_for("vip/vip") if e.kind is LogKind.GUARD]
    assert guard and guard[0].alarm and "EVERY BACKEND IS DOWN" in guard[0].text
    assert not any(e.kind is LogKind.GUARD for e in work.log_for("controller-1/readyz"))
    assert seen[-1] is not None and isinstance(seen[-1], GuardEvent)
    with pytest.raises(RuntimeError):
        work.configure(interval=0.5)
    await work.aclose()


def test_the_workbench_builds_the_engine_and_names_a_missing_ca(inventory: Inventory,
                                                                tmp_path: Path) -> None:
    workbench = Workbench(inventory, audit_path=tmp_path / "audit.jsonl",
                          pki_dir=tmp_path / "nothing", user_ssh_files=False, relay=False)
    work = workbench.health
    assert work is workbench.engine("health") and work.fleet is workbench.fleet
    assert isinstance(open_engine(workbench), HealthWork)
    work.configure(interval=0.5, fall=2)
    assert work.settings.interval == 0.5 and work.settings.fall == 2
    with pytest.raises(UserError, match=r"ca\.pem"):
        _ = work.poller
    assert work.guard_unavailable() is None  # hypervisor, VIP and fleet are there
    bare = HealthWork(inventory, None, tmp_path)
    assert "fleet" in (bare.guard_unavailable() or "")


def _snap(state: State, counter: str, outcome: Outcome | None) -> CellSnapshot:
    return CellSnapshot("c/readyz", "c", Kind.READYZ, "t", state, counter, outcome, False, 3)


def test_cell_texts() -> None:
    ok = Outcome.ok("fine", 0.0123)
    assert cell_text(_snap(State.UNKNOWN, "", None)).plain == "…"
    assert cell_text(_snap(State.UP, "", ok)).plain == "✔ 12ms"
    assert cell_text(_snap(State.UP, "2/3 DOWN", Outcome.fail("x"))).plain == "✖ ↓2/3"
    assert cell_text(_snap(State.DOWN, "", Outcome.fail("x"))).plain == "✖ DOWN"
    assert cell_text(_snap(State.DOWN, "1/2 UP", ok)).plain == "↑1/2"
    vip = Outcome.warn("6/18 failed", 0.04, facts={"requests": 18, "failed": 6})
    assert cell_text(_snap(State.UP, "", vip)).plain == "! 6/18"
    assert [latency_text(x) for x in (None, 0.0004, 0.25, 1.25)] == ["", "<1ms", "250ms",
                                                                     "1.2s"]


def test_sparkline_scales_and_marks_failures() -> None:
    samples = [Sample(float(i), lat, Status.OK if lat else Status.FAIL)
               for i, lat in enumerate([0.01, 0.02, None, 0.05])]
    assert sparkline(samples).plain == "▁▃×█"
    assert len(sparkline(samples * 10, width=12).plain) == 12
    assert sparkline([]).plain == "···"
