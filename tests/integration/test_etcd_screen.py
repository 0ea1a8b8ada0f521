"""The etcd screen used like a user on the confined ``certs-pushed`` lab (KTHW docs 04-06
done): open it with ctrl+g e, preview, apply, watch the matrix go done and the member
table fill with three healthy members; then break one member and see its failure
explained above its journal.

Everything is real: SSH to the confined controllers, the release tarball the lab cached
beside its inventory, etcd itself, HTTPS with the lab's client certificate.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from screens.etcd import EtcdScreen
from tests.conftest import running_lab
from tui.app import HardwayApp, create_app
from tui.core.etcd.engine import EtcdOptions
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.lab import etcd_release, namespaces
from tui.lab.lab import LabRunner
from tui.widgets.plan_preview import PlanPreviewScreen
from tui.widgets.step_matrix import StepMatrix

pytestmark = [
    pytest.mark.skipif(namespaces.unavailable() is not None,
                       reason=f"no namespaces: {namespaces.unavailable()}"),
    pytest.mark.skipif(etcd_release.find_binaries() is None,
                       reason="no etcd binaries (scripts/install-test-deps.sh)"),
]

SIZE = (200, 50)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A confined lab where KTHW docs 04-06 are done and etcd is not installed."""
    with running_lab(tmp_path_factory.mktemp("etcdscreen"), 31, controllers=3,
                     isolation="namespaces", scenario="certs-pushed") as runner:
        yield runner


def hardway_run(inventory: Path, host: str, command: str) -> str:
    """``hardway run -i INVENTORY -w HOST -- COMMAND`` (what a user would type)."""
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "run", "-i", str(inventory), "-w", host, "--",
         command], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.1)


async def _open(pilot: Pilot[Any]) -> EtcdScreen:
    """ctrl+g e from the console; wait for the first preview."""
    app = pilot.app
    assert isinstance(app, HardwayApp)
    await _until(pilot, lambda: app.workbench.counts()[0] == 3)
    await pilot.press("ctrl+g", "e")
    await _until(pilot, lambda: isinstance(app.screen, EtcdScreen))
    screen = app.screen
    assert isinstance(screen, EtcdScreen)
    await _until(pilot, lambda: screen.prepared is not None)
    return screen


async def _apply(pilot: Pilot[Any], screen: EtcdScreen) -> None:
    """a, then Bootstrap in the confirmation."""
    await pilot.press("a")
    await _until(pilot, lambda: isinstance(pilot.app.screen, PlanPreviewScreen))
    await pilot.pause(0.2)
    await pilot.click("#go")


def _side(screen: EtcdScreen) -> str:
    """The side pane's text as the user reads it (unwrapped)."""
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(screen.query_one("#etcd-side-text", Static).content)
    return console.export_text()


def _app(runner: LabRunner, tmp_path: Path) -> Any:
    inventory = load_inventory(runner.lab.inventory_path)
    return create_app(Workbench(inventory, host_keys="ask",
                                audit_path=tmp_path / "audit.jsonl"))


async def test_preview_apply_then_three_live_members(lab: LabRunner, tmp_path: Path) -> None:
    app = _app(lab, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot)
        matrix = screen.query_one(StepMatrix)
        hosts = ["controller-0", "controller-1", "controller-2"]
        assert matrix.hosts == hosts
        assert [matrix.state("binaries", h).kind for h in hosts] == ["todo"] * 3
        # the cursor's host's plan: commands, the unit and its diff
        side = _side(screen)
        assert "$ mkdir -p /etc/etcd /var/lib/etcd" in side
        assert "+++ b/etc/systemd/system/etcd.service" in side
        assert "+  --name controller-0 \\" in side
        assert not screen.query_one("#etcd-members", DataTable).display  # etcd not running
        assert not screen.has_class("-members")

        await _apply(pilot, screen)
        await _until(pilot, lambda: screen.rounds >= 1, timeout=120)
        for step in matrix.steps:
            assert [matrix.state(step, h).kind for h in hosts] == ["done"] * 3, step
        assert all(matrix.state("binaries", h).duration is not None for h in hosts)
        assert screen.applied
        table = screen.query_one("#etcd-members", DataTable)
        assert table.display and table.row_count == 3
        assert "3/3 healthy" in str(table.border_title)
        leaders = [str(table.get_cell(h, "leader")) for h in hosts]
        assert sum("leader" in cell for cell in leaders) == 1, leaders

        # live: the table keeps its rows (never rebuilt) as new rounds arrive
        rows_before = list(table.rows)
        seen = screen.rounds
        await _until(pilot, lambda: screen.rounds >= seen + 2, timeout=20)
        assert list(table.rows) == rows_before and table.row_count == 3

        # s: status (members and diagnoses) says healthy
        await pilot.press("s")
        await _until(pilot, lambda: "etcd-status" not in app.__dict__.get(
            "_hardway_busy", {}) and screen.rounds > seen + 2, timeout=30)
        assert "3/3 healthy" in str(table.border_title)
        await pilot.press("escape")
        await _until(pilot, lambda: not isinstance(app.screen, EtcdScreen))


async def test_a_failing_host_shows_its_diagnosis_and_journal(lab: LabRunner,
                                                              tmp_path: Path) -> None:
    """Needs the cluster of the test above: controller-0 loses its data directory, so the
    start step brings it back as a `new` member of a cluster that already exists."""
    inventory_path = lab.lab.inventory_path
    hardway_run(inventory_path, "controller-0",
                "systemctl stop etcd; rm -rf /var/lib/etcd/member")
    app = _app(lab, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot)
        screen.options = EtcdOptions(start_timeout=10)
        matrix = screen.query_one(StepMatrix)
        assert matrix.state("start", "controller-0").kind == "todo"
        await _apply(pilot, screen)
        await _until(pilot, lambda: matrix.failed is not None, timeout=120)
        await _until(pilot, lambda: screen.side == "failure", timeout=60)
        assert matrix.failed == ("start", "controller-0")
        assert matrix.state("start", "controller-0").duration is not None
        report = screen.failures["controller-0"]
        assert report.diagnoses, report
        assert report.journal, report
        side = _side(screen)
        assert "start failed" in str(screen.query_one("#etcd-side").border_title)
        assert report.diagnoses[0].summary in side
        assert "fix: " in side
        assert "journalctl -u etcd · controller-0" in side
        # the diagnosis comes above the journal's tail
        assert side.index("fix: ") < side.index("journalctl -u etcd · controller-0")
        assert report.journal[-1][:60] in side
