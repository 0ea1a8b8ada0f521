"""Snapshots of the health screen (ctrl+g h): healthy, degraded, down, drill-down open.

The engine is real (poller, rise/fall, history, report, transition log) over scripted
probe answers and a frozen clock (:mod:`tests.support.health_synthetic`); no host is
contacted (the app does not connect), so every run draws the same picture.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from screens.health import HealthScreen
from screens.health_detail import ProbeDetailScreen
from tests.support import health_synthetic
from tui.app import create_app
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.widgets.health_grid import HealthGrid

ROOT = Path(__file__).resolve().parents[2]
SMALL, LARGE = (80, 24), (200, 50)


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times render in UTC whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str, rounds: int) -> Any:
    health_synthetic.install(monkeypatch, scenario, rounds)
    shutil.copy(ROOT / "config" / "something.local.toml", tmp_path / "hardway.toml")
    inventory = load_inventory(tmp_path / "hardway.toml")
    workbench = Workbench(inventory, host_keys="ask", audit_path=tmp_path / "audit.jsonl",
                          user_ssh_files=False, relay=False)
    return create_app(workbench, connect=False)


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.05)


async def _health(pilot: Pilot[Any], rounds: int) -> HealthScreen:
    """Open the health screen and wait until its ``rounds`` rounds are drawn."""
    await pilot.press("ctrl+g", "h")
    await _until(pilot, lambda: isinstance(pilot.app.screen, HealthScreen))
    screen = pilot.app.screen
    assert isinstance(screen, HealthScreen)
    await _until(pilot, lambda: screen.report is not None and screen.report.round == rounds)
    await pilot.app.workers.wait_for_complete()
    await _until(pilot, lambda: not screen._dirty and screen._flush_timer is None)
    await pilot.pause()
    return screen


STATES = [("healthy", 8, (0, 3)),
          ("degraded", 8, (1, 7)),  # the cursor on controller-1's readyz
          ("down", 6, (0, 3))]
"""Scenario, rounds, cursor (row, column).  degraded: controller-1's API server stopped
(its cells DOWN, the VIP warns a third failing, its certificate cell on the way down);
down: etcd lost quorum (no API server ready, nothing through the VIP)."""


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "200x50"])
@pytest.mark.parametrize(("scenario", "rounds", "cursor"), STATES,
                         ids=[s[0] for s in STATES])
def test_grid(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              size: tuple[int, int], scenario: str, rounds: int,
              cursor: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _health(pilot, rounds)
        screen.query_one(HealthGrid).move_cursor(row=cursor[0], column=cursor[1])

    assert snap_compare(_app(tmp_path, monkeypatch, scenario, rounds), terminal_size=size,
                        run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "200x50"])
def test_drill_down(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    size: tuple[int, int]) -> None:
    """Enter on controller-0's readyz while etcd has no quorum: the verbose [+]/[-]
    lines, the last error and the probe's transitions."""
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _health(pilot, 6)
        screen.query_one(HealthGrid).move_cursor(row=0, column=7)
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(pilot.app.screen, ProbeDetailScreen))
        await pilot.pause()

    assert snap_compare(_app(tmp_path, monkeypatch, "down", 6), terminal_size=size,
                        run_before=run_before)
