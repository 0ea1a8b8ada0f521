"""Snapshots of the hosts table (ctrl+g o from the console): live connection states."""

from __future__ import annotations

import time
from typing import Any

from textual.pilot import Pilot

from tui.app import create_app
from tui.boundary import running
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner

SIZE = (110, 14)


def _app(runner: LabRunner, tmp_path: Any) -> Any:
    inventory = load_inventory(runner.lab.inventory_path)
    return create_app(Workbench(inventory, host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))


async def _connected(pilot: Pilot[Any]) -> None:
    """Every host connected or failed, the console's start finished; then the table."""
    app = pilot.app
    deadline = time.monotonic() + 30
    while True:
        ready, failed, total = app.workbench.counts()
        if ready + failed == total and not running(app):
            break
        assert time.monotonic() < deadline, "hosts did not settle"
        await pilot.pause(0.05)
    await app.workers.wait_for_complete()
    await pilot.press("ctrl+g", "o")  # from the console to the hosts table
    await pilot.pause()


def test_all_hosts_connected(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Any) -> None:
    app = _app(snapshot_lab, tmp_path)
    assert snap_compare(app, terminal_size=SIZE, run_before=_connected)


def test_one_host_down(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Any) -> None:
    lab = snapshot_lab.lab
    snapshot_lab.call(lab.stop_host, "controller-1")
    try:
        app = _app(snapshot_lab, tmp_path)
        assert snap_compare(app, terminal_size=SIZE, run_before=_connected)
    finally:
        snapshot_lab.call(lab.start_host, "controller-1")
