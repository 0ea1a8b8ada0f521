"""The health screen on the lab, as a user drives it: ctrl+g h, a stopped kube-apiserver,
Enter for the details, and ``g`` for the VIP guard (issue 16) on the confined lab.

Nothing here asserts wall-clock figures: the rounds are short (0.3-0.5 s) and the tests
wait for what the grid shows, with timeouts that only stop a hang.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Group
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Static

from screens.health import HealthScreen
from screens.health_detail import ProbeDetailScreen
from tests.conftest import running_lab
from tui.app import create_app
from tui.core.health.engine import LogKind
from tui.core.health.model import Kind, Status
from tui.core.health.states import State
from tui.core.inventory.load import load_inventory
from tui.core.lb.guard import GuardSettings
from tui.core.workbench import Workbench
from tui.lab import namespaces
from tui.lab.lab import HYPERVISOR, LabRunner
from tui.widgets.health_grid import HealthGrid

CONTROLLERS = ("controller-0", "controller-1", "controller-2")


def ssh(lab: LabRunner, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on a lab host with OpenSSH, as a user would."""
    return subprocess.run(["ssh", "-F", str(lab.lab.ssh_config_path), host, command],
                          capture_output=True, text=True, timeout=120, check=False)


async def apiserver(lab: LabRunner, host: str, verb: str) -> None:
    """``systemctl VERB kube-apiserver`` on ``host`` (off the app's loop)."""
    done = await asyncio.to_thread(ssh, lab, host, f"systemctl {verb} kube-apiserver")
    assert done.returncode == 0, done.stderr


def _workbench(lab: LabRunner, tmp_path: Path, **settings: Any) -> Workbench:
    workbench = Workbench(load_inventory(lab.lab.inventory_path),
                          audit_path=tmp_path / "audit.jsonl", user_ssh_files=False,
                          relay=False)
    workbench.health.configure(**settings)
    return workbench


async def _until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 60.0,
                 seen: Callable[[], None] | None = None) -> None:
    """Wait (polling) until ``condition()`` holds; ``seen`` runs at every poll."""
    deadline = time.monotonic() + timeout
    while True:
        if seen is not None:
            seen()
        if condition():
            return
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.03)


async def _open(pilot: Pilot[Any]) -> HealthScreen:
    """ctrl+g h, and every cell answered once."""
    await pilot.press("ctrl+g", "h")
    await _until(pilot, lambda: isinstance(pilot.app.screen, HealthScreen))
    screen = pilot.app.screen
    assert isinstance(screen, HealthScreen)
    await _until(pilot, lambda: screen.report is not None and all(
        c.state is not State.UNKNOWN for c in screen.report.cells))
    return screen


def text_of(screen: Any, selector: str) -> str:
    """The plain text a Static shows."""
    content = screen.query_one(selector, Static).content
    if isinstance(content, Group):
        return "\n".join(r.plain for r in content.renderables if isinstance(r, Text))
    return content.plain if isinstance(content, Text) else str(content)


def shown(screen: HealthScreen, row: str, kind: Kind) -> str:
    """What the grid shows in a cell (plain text)."""
    return str(screen.query_one(HealthGrid).get_cell(row, kind.value).plain)


async def test_a_stopped_apiserver_goes_down_after_fall_and_back_up_after_rise(
        lab_runner: LabRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rebuilt: list[str] = []
    monkeypatch.setattr(HealthGrid, "clear",
                        lambda self, columns=False: rebuilt.append("clear"))  # never
    workbench = _workbench(lab_runner, tmp_path, interval=0.3, timeout=1.0,
                           kinds=frozenset({Kind.SSH, Kind.LIVEZ, Kind.READYZ}))
    app = create_app(workbench, connect=False)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open(pilot)
        work = screen.work
        grid = screen.query_one(HealthGrid)
        assert grid.row_count == 3 and shown(screen, "controller-1", Kind.READYZ)[0] == "✔"
        texts: set[str] = set()

        def watch() -> None:
            texts.add(shown(screen, "controller-1", Kind.READYZ))

        await apiserver(lab_runner, "controller-1", "stop")
        try:
            await _until(pilot, lambda: shown(screen, "controller-1", Kind.READYZ)
                         == "✖ DOWN", seen=watch)
            cell = work.poller.cells["controller-1/readyz"]
            failed = [s.status for s in cell.history.samples()][-3:]
            assert failed == [Status.FAIL] * 3  # DOWN after fall (3) failed rounds
            assert "✖ ↓1/3" in texts and "✖ ↓2/3" in texts, texts  # the way down shown
            assert shown(screen, "controller-0", Kind.READYZ).startswith("✔")
            assert shown(screen, "controller-1", Kind.SSH).startswith("✔")
            assert str(grid.get_cell("controller-1", "ok").plain) == "✖ 1/3"
            summary = text_of(screen, "#health-summary")
            assert "DEGRADED" in summary and "apiserver 2/3" in summary, summary
            down = [e for e in work.log if e.key == "controller-1/readyz"]
            assert down and down[-1].after is State.DOWN and "connection refused" in \
                down[-1].text

            grid.move_cursor(row=1, column=[k.value for k in grid.columns].index("readyz"))
            await pilot.press("enter")
            await _until(pilot, lambda: isinstance(app.screen, ProbeDetailScreen))
            detail = text_of(app.screen, "#health-detail-text")
            assert "UP -> DOWN" in detail and "last error" in detail
            assert "connection refused" in detail.split("output")[-1]
            number = work.poller.round
            await _until(pilot, lambda: work.poller.round >= number + 2)  # still polling
            await pilot.press("escape")
            await _until(pilot, lambda: app.screen is screen)
        finally:
            await apiserver(lab_runner, "controller-1", "start")
        texts.clear()
        await _until(pilot, lambda: shown(screen, "controller-1", Kind.READYZ)
                     .startswith("✔"), seen=watch)
        assert "↑1/2" in texts, texts  # rise (2) shown on the way up
        assert [e.after for e in work.log if e.key == "controller-1/readyz"][-2:] == \
            [State.DOWN, State.UP]
        assert grid.row_count == 3 and not rebuilt
        await pilot.press("escape")  # the console in front: the rounds pause
        await _until(pilot, lambda: not isinstance(app.screen, HealthScreen))
        await pilot.pause(0.5)
        paused = work.poller.round
        await pilot.pause(1.5)  # five intervals
        assert work.poller.round == paused
        await pilot.press("ctrl+g", "h")
        await _until(pilot, lambda: work.poller.round > paused and app.screen is screen)
        await workbench.close()


needs_namespaces = pytest.mark.skipif(namespaces.unavailable() is not None,
                                      reason=f"no namespaces: {namespaces.unavailable()}")


@pytest.fixture(scope="module")
def confined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A confined, healthy 3-controller lab: the hypervisor's ipfw round robin."""
    if namespaces.unavailable() is not None:
        pytest.skip(f"no namespaces: {namespaces.unavailable()}")
    with running_lab(tmp_path_factory.mktemp("healthguard"), 43, controllers=3,
                     isolation="namespaces") as runner:
        yield runner


@needs_namespaces
async def test_g_runs_the_vip_guard_from_the_screen(confined: LabRunner,
                                                    tmp_path: Path) -> None:
    workbench = _workbench(confined, tmp_path, interval=0.5, timeout=1.0,
                           kinds=frozenset({Kind.READYZ, Kind.VIP_ADDRESS, Kind.VIP_RULES}),
                           guard=GuardSettings(interval=0.5, timeout=1.0))
    app = create_app(workbench, connect=False)
    notes: list[str] = []
    real_notify = app.notify
    app.notify = lambda message, **kw: (notes.append(str(message)),  # type: ignore[method-assign]
                                        real_notify(message, **kw))[1]
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open(pilot)
        work = screen.work

        def guard_says(words: str) -> bool:
            return any(e.kind is LogKind.GUARD and words in e.text for e in work.log)

        await pilot.press("g")
        await _until(pilot, lambda: guard_says("watching"))
        assert "guard ON" in text_of(screen, "#health-summary")
        try:
            await apiserver(confined, "controller-1", "stop")
            await _until(pilot, lambda: guard_says("controller-1 removed"))
            assert "10.10.0.11" not in ssh(confined, HYPERVISOR, "ipfw list").stdout
            entries = work.log_for("vip/vip")  # the VIP cell's drill-down shows the swap
            assert any("swapped" in e.text and "controller-1 removed (DOWN)" in e.text
                       for e in entries)
            await apiserver(confined, "controller-0", "stop")
            await apiserver(confined, "controller-2", "stop")
            await _until(pilot, lambda: guard_says("EVERY BACKEND IS DOWN"))
            assert any("never removes the last" in n for n in notes), notes
            assert "fwd" in ssh(confined, HYPERVISOR, "ipfw list").stdout  # rules kept
        finally:
            for host in CONTROLLERS:
                await apiserver(confined, host, "start")
        await _until(pilot, lambda: work.guard is not None and work.guard.in_rules == CONTROLLERS)
        assert "10.10.0.11" in ssh(confined, HYPERVISOR, "ipfw list").stdout
        await pilot.press("g")  # stop the guard
        await _until(pilot, lambda: work.guard is None)
        assert "guard off" in text_of(screen, "#health-summary")
        assert any("VIP guard stopped" in n for n in notes), notes
        await workbench.close()
    audit = (tmp_path / "audit.jsonl").read_text()
    assert '"kind":"vip-guard"' in audit


async def test_without_a_ca_the_screen_says_why_and_where(tmp_path: Path) -> None:
    """No pki/ beside the inventory: no grid, the reason and the directory instead (no
    host is contacted: the app does not connect and the probes never start)."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "hardway.toml").write_text(
        (root / "config" / "something.local.toml").read_text())
    workbench = Workbench(load_inventory(tmp_path / "hardway.toml"),
                          audit_path=tmp_path / "audit.jsonl", user_ssh_files=False,
                          relay=False)
    app = create_app(workbench, connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+g", "h")
        await _until(pilot, lambda: isinstance(app.screen, HealthScreen))
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        await _until(pilot, lambda: screen.failure is not None)
        assert not screen.query_one(HealthGrid).display
        why = text_of(screen, "#health-log-text")
        assert f"{tmp_path}/pki/ca.pem cannot be read" in why and "certs issue" in why
        assert "cannot start" in text_of(screen, "#health-summary")
        await pilot.press("enter", "r")  # nothing to drill into or poke: no error
        assert app.screen is screen
        await workbench.close()


REFUSE_SWAP = """#!/bin/sh
case "$*" in *swap*) echo "ipfw: setsockopt(IP_FW_XDEL): Operation not permitted" >&2; exit 71;;
esac
exec ipfw "$@"
"""


@needs_namespaces
async def test_a_refused_swap_keeps_the_old_rules_and_the_screen_says_why(
        confined: LabRunner, tmp_path: Path) -> None:
    shim = confined.lab.host_root(HYPERVISOR) / "root" / "refuse-swap"
    shim.write_text(REFUSE_SWAP)
    shim.chmod(0o755)
    workbench = _workbench(confined, tmp_path, interval=0.5, timeout=1.0,
                           kinds=frozenset({Kind.READYZ, Kind.VIP_RULES}),
                           guard=GuardSettings(interval=0.5, timeout=1.0),
                           ipfw="/root/refuse-swap")
    app = create_app(workbench, connect=False)
    notes: list[str] = []
    real_notify = app.notify
    app.notify = lambda message, **kw: (notes.append(str(message)),  # type: ignore[method-assign]
                                        real_notify(message, **kw))[1]
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open(pilot)
        work = screen.work
        await pilot.press("g")
        await _until(pilot, lambda: work.guard is not None and work.guard.in_rules is not None)
        try:
            await apiserver(confined, "controller-1", "stop")
            await _until(pilot, lambda: any(e.kind is LogKind.GUARD and "SWAP REFUSED" in e.text
                                            for e in work.log))
            refused = next(e for e in work.log if "SWAP REFUSED" in e.text)
            assert refused.alarm and "Operation not permitted" in refused.text
            assert any("refused the swap" in n and "Operation not permitted" in n
                       for n in notes), notes
            assert "fwd 10.10.0.11,6443" in ssh(confined, HYPERVISOR, "ipfw list").stdout
            assert "SWAP REFUSED" in text_of(screen, "#health-log-text")
        finally:
            await apiserver(confined, "controller-1", "start")
        await pilot.press("g")
        await _until(pilot, lambda: work.guard is None)
        await workbench.close()
