"""The health screen paints each cell as its probe answers, not when the round ends.

The engine is real (poller, rise/fall, report) over the synthetic probes of
:mod:`tests.support.health_synthetic`, except the VIP probe, which waits until the test
lets it answer: every other cell must be on screen while that round is still running.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from screens.health import HealthScreen
from tests.support import health_synthetic as synthetic
from tui.app import create_app
from tui.core import workbench as workbench_module
from tui.core.health.engine import HealthSettings, HealthWork
from tui.core.health.model import Kind, Outcome, Probe
from tui.core.health.poller import Poller
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.widgets.health_grid import HealthGrid

ROOT = Path(__file__).resolve().parents[2]
SLOW = "vip/vip"
GATE: asyncio.Event | None = None


async def _answer(row: str, kind: Kind) -> Outcome:
    if f"{row}/{kind.value}" == SLOW:
        assert GATE is not None
        await GATE.wait()
    return synthetic.healthy(row, kind, 1)


def open_gated(workbench: Any) -> HealthWork:
    """``ENGINES["health"]``: the synthetic probes, the VIP one held back."""
    rows = [(c, synthetic.CONTROLLER_KINDS) for c in synthetic.CONTROLLERS]
    probes = [Probe(f"{row}/{kind.value}", row, kind, kind.value, 30.0,
                    partial(_answer, row, kind))
              for row, kinds in [*rows, *synthetic.OTHER_ROWS] for kind in kinds]
    clock = synthetic.FrozenClock()
    return HealthWork(workbench.inventory, None, workbench.pki_dir,
                      settings=HealthSettings(rounds=1),
                      poller=Poller(probes, interval=2.0, straggler_wait=60.0, clock=clock),
                      clock=clock)


async def test_cells_fill_before_the_round_ends(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    global GATE
    GATE = asyncio.Event()
    monkeypatch.setitem(workbench_module.ENGINES, "health", f"{__name__}:open_gated")
    shutil.copy(ROOT / "config" / "something.local.toml", tmp_path / "hardway.toml")
    workbench = Workbench(load_inventory(tmp_path / "hardway.toml"), host_keys="ask",
                          audit_path=tmp_path / "audit.jsonl", user_ssh_files=False,
                          relay=False)
    app = create_app(workbench, connect=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("ctrl+g", "h")
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        grid = screen.query_one(HealthGrid)

        def shown() -> dict[str, str]:
            return {key: str(grid.get_cell(c.probe.row, c.probe.kind.value).plain)
                    for key, c in screen.work.poller.cells.items()}

        deadline = time.monotonic() + 20
        while any(text == "…" for key, text in shown().items() if key != SLOW):
            assert time.monotonic() < deadline, f"cells not painted: {shown()}"
            await pilot.pause(0.02)
        assert shown()[SLOW] == "…"  # still probing: the round has not ended
        assert screen.report is None and screen.work.poller.round == 1
        GATE.set()
        while screen.report is None or "…" in shown().values():
            assert time.monotonic() < deadline, f"the round did not end: {shown()}"
            await pilot.pause(0.02)
        assert shown()[SLOW] != "…" and screen.report.round == 1
