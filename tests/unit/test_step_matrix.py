"""StepMatrix (any Plan as steps x hosts) and the etcd screen's member table, on fixed
events: cells change by key, the table is never rebuilt, running cells count their time."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from screens.etcd import EtcdScreen, short_health
from tests.support.etcd_cluster import write_inventory
from tui.app import create_app
from tui.core.etcd.engine import MemberRow
from tui.core.inventory.load import load_inventory
from tui.core.plan import PlanEvent, Preview, StepPreview
from tui.core.workbench import Workbench
from tui.widgets import step_matrix
from tui.widgets.step_matrix import StepMatrix

HOSTS = ["a", "b"]


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def monotonic(self) -> float:
        return self.now


class MatrixApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StepMatrix()


def _text(matrix: StepMatrix, step: str, host: str) -> str:
    return str(matrix.get_cell(step, host))


async def test_preview_events_and_elapsed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(step_matrix, "time", clock)
    app = MatrixApp()
    async with app.run_test() as pilot:
        matrix = app.query_one(StepMatrix)
        matrix.show_steps(["one", "two"], HOSTS)
        first_rows = list(matrix.rows)
        matrix.show_preview({"a": [StepPreview("one", "a", Preview(), done="already there"),
                                   StepPreview("two", "a", Preview(commands=("ls",)))]})
        assert matrix.state("one", "a").kind == "skipped"
        assert matrix.state("one", "a").detail == "already there"
        assert matrix.state("two", "a").detail == "run ls"
        assert _text(matrix, "two", "a") == "○ to do"
        # a pending event keeps the preview's mark; others replace it
        matrix.apply(PlanEvent("two", "a", "pending"))
        assert matrix.state("two", "a").kind == "todo"
        matrix.apply(PlanEvent("two", "a", "running"))
        assert _text(matrix, "two", "a") == "▶ running 0.00s"
        clock.now += 3.25
        await pilot.pause(step_matrix.TICK + 0.3)  # the ticker updates the running cell
        assert _text(matrix, "two", "a") == "▶ running 3.25s"
        assert matrix.active_step == "two" and matrix.focus_step() == "two"
        matrix.apply(PlanEvent("two", "a", "failed", "boom", 75.0))
        assert _text(matrix, "two", "a") == "✖ failed 1m15s"
        assert matrix.failed == ("two", "a") and matrix.active_step is None
        await pilot.pause(step_matrix.TICK + 0.3)
        assert matrix._ticker is None  # nothing runs: the ticker stopped
        # the same shape again: cells reset, rows kept (no rebuild)
        matrix.show_steps(["one", "two"], HOSTS)
        assert list(matrix.rows) == first_rows
        assert _text(matrix, "two", "a") == "· pending"


def test_short_health() -> None:
    def row(health: str) -> MemberRow:
        return MemberRow("c", None, False, health)

    assert short_health(row("etcd at 10.0.0.1:2379: nothing listens there (connection "
                            "refused).")) == "nothing listens there"
    assert short_health(row("health false (NOSPACE)")) == "health false (NOSPACE)"
    assert len(short_health(row("x" * 80))) == 24


async def test_member_table_updates_cells_and_keeps_rows(tmp_path: Path) -> None:
    inventory = load_inventory(write_inventory(tmp_path, "127.0.249"))
    app = create_app(Workbench(inventory, host_keys="ask",
                               audit_path=tmp_path / "audit.jsonl"), connect=False)
    rows = [MemberRow(f"controller-{i}", f"{i:016x}", True, "health true", leader=i == 0,
                      db_size=20480, rtt=0.001) for i in range(3)]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+g", "e")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, EtcdScreen)
        table = screen.query_one("#etcd-members", DataTable)
        assert not table.display
        screen.show_members(rows)
        assert table.display and table.row_count == 3
        keys = list(table.rows)
        updated: list[tuple[object, object]] = []
        real = table.update_cell

        def spy(row: Any, column: Any, value: Any, **kwargs: Any) -> None:
            updated.append((row, column))
            real(row, column, value, **kwargs)

        table.update_cell = spy
        changed = [rows[0], dataclasses.replace(rows[1], rtt=0.004),
                   dataclasses.replace(rows[2], healthy=False, health="health false")]
        screen.show_members(changed)
        assert list(table.rows) == keys and table.row_count == 3
        assert sorted(map(str, (c for _r, c in updated))) == ["health", "rtt"]
        assert "2/3 healthy" in str(table.border_title)
        assert "health false" in str(table.get_cell("controller-2", "health"))
