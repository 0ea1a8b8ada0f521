"""Snapshots of the console in its interesting states (deterministic: fixed lab network,
frozen durations, no blinking cursor, waits on real completion instead of sleeping)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from screens.console import ConsoleScreen
from tui.app import create_app
from tui.core.fleet.hostkeys import HostKeyPrompt
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner
from tui.widgets import format as display_format
from tui.widgets.broadcast_bar import BroadcastInput
from tui.widgets.host_key_modal import HostKeyModal
from tui.widgets.host_pane import HostPane

SIZE = (160, 36)
HOSTS = ("controller-0", "controller-1", "controller-2")


@pytest.fixture(autouse=True)
def _frozen_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Command durations vary from run to run; show a fixed one."""
    monkeypatch.setattr(display_format, "format_duration", lambda seconds: "0.01 s")


@pytest.fixture(scope="module")
def grid_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """Twelve hosts (3 controllers, 9 workers) for the compact grid."""
    with LabRunner(tmp_path_factory.mktemp("gridlab"), controllers=3, workers=9,
                   network="127.0.78") as runner:
        yield runner


def _app(runner: LabRunner, tmp_path: Path) -> Any:
    return create_app(Workbench(load_inventory(runner.lab.inventory_path), host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))


def _screen(pilot: Pilot[Any]) -> ConsoleScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ConsoleScreen)
    return screen


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.05)


async def _ready(pilot: Pilot[Any], hosts: tuple[str, ...] = HOSTS) -> None:
    """Every shell open and its prompt drawn; the bar's cursor does not blink."""
    await pilot.app.workers.wait_for_complete()
    screen = _screen(pilot)
    screen.query_one(BroadcastInput).cursor_blink = False
    await _until(pilot, lambda: all(screen.console.shell(h) is not None for h in hosts))
    await _until(pilot, lambda: all(
        "#" in screen.query_one(f"#pane-{h}", HostPane).terminal.text() for h in hosts))


async def _broadcast(pilot: Pilot[Any], line: str) -> None:
    """Type a line in the bar, press Enter and wait until every receiving host finished."""
    screen = _screen(pilot)
    bar = screen.query_one(BroadcastInput)
    bar.focus()
    bar.value = line
    await pilot.press("enter")
    await _until(pilot, lambda: screen.console.broadcasts and not any(
        row.state in ("pending", "running") for row in screen.console.gather().rows))
    await _painted(pilot)


async def _painted(pilot: Pilot[Any]) -> None:
    """Every pane shows its terminal's newest state, and the app is idle."""
    await pilot.app.workers.wait_for_complete()
    panes = list(_screen(pilot).query(HostPane))
    await _until(pilot, lambda: all(p.view.painted for p in panes))
    await pilot.pause()


def test_identical_output(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await _broadcast(pilot, "echo $ETCD_NAME $INTERNAL_IP")
        await _broadcast(pilot, "uname -s")

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_one_host_toggled_out(snap_compare: Any, snapshot_lab: LabRunner,
                              tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        screen = _screen(pilot)
        bar = screen.query_one(BroadcastInput)
        bar.value = "@-controller-1"
        await pilot.press("enter")
        await _broadcast(pilot, "echo only {name}")
        pilot.app.clear_notifications()
        await _painted(pilot)

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_gather_view_with_a_divergent_host(snap_compare: Any, snapshot_lab: LabRunner,
                                           tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await _broadcast(pilot, "test {name} = controller-1 && echo stale || echo current")
        await pilot.press("f3")
        await _until(pilot, lambda: type(pilot.app.screen).__name__ == "GatherScreen")
        await pilot.pause()

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_type_through_on(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await pilot.press("f4")
        await pilot.press("l", "s")
        panes = list(_screen(pilot).query(HostPane))
        await _until(pilot, lambda: all(
            p.terminal.text().rstrip().endswith("ls") for p in panes))
        await _painted(pilot)

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_disconnected_host(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    lab = snapshot_lab.lab

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        snapshot_lab.call(lab.stop_host, "controller-2")
        pane = _screen(pilot).query_one("#pane-controller-2", HostPane)
        await _until(pilot, lambda: pane.has_class("-down"))
        await _broadcast(pilot, "hostname -s")
        pilot.app.clear_notifications()
        await _painted(pilot)

    app = _app(snapshot_lab, tmp_path)
    app.workbench.redial = (600.0,)  # the title says "retry 1 in 600 s" throughout
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        snapshot_lab.call(lab.start_host, "controller-2")


@pytest.mark.parametrize("size", [(200, 50), (80, 24)], ids=["200x50", "80x24"])
def test_twelve_hosts_compact_grid(snap_compare: Any, grid_lab: LabRunner,
                                   tmp_path: Path, size: tuple[int, int]) -> None:
    """At 80x24 the rows keep six lines each and the grid scrolls (titles never pile
    up over each other)."""
    names = tuple(h.name for h in load_inventory(grid_lab.lab.inventory_path).hosts)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot, names)
        await _broadcast(pilot, "echo {name}")

    assert snap_compare(_app(grid_lab, tmp_path), terminal_size=size,
                        run_before=run_before)


def test_host_key_modal(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    prompt = HostKeyPrompt(host="controller-3", addr="127.0.77.13", port=2222,
                           key_type="ED25519",
                           fingerprint="SHA256:Jx1n2x0cXkT9oVd3lq8S7Zb1nQ4mFfYVhL0s2G6tq8E")

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        pilot.app.push_screen(HostKeyModal(prompt))
        await _until(pilot, lambda: isinstance(pilot.app.screen, HostKeyModal)
                     and pilot.app.screen.is_mounted)
        await pilot.pause()

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_three_hosts_at_80x24(snap_compare: Any, snapshot_lab: LabRunner,
                              tmp_path: Path) -> None:
    """Two panes on top, the third across the bottom row: no empty quadrant."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await _broadcast(pilot, "echo {name}")

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=(80, 24),
                        run_before=run_before)


def test_zoomed_pane(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    """F6 on a focused pane: it fills the console area and its shell's window follows."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await _broadcast(pilot, "echo {name}")
        screen = _screen(pilot)
        screen.query_one("#pane-controller-1", HostPane).view.focus()
        await pilot.press("f6")
        shell = screen.console.shell("controller-1")
        await _until(pilot, lambda: shell is not None and shell.size[0] > 150)
        screen.query_one(BroadcastInput).focus()
        bar = screen.query_one(BroadcastInput)
        bar.value = "stty size"
        await pilot.press("enter")
        await _until(pilot, lambda: screen.console.broadcasts[-1].runs and not any(
            row.state in ("pending", "running") for row in screen.console.gather().rows))
        await _painted(pilot)

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_pasted_block_waits(snap_compare: Any, snapshot_lab: LabRunner,
                            tmp_path: Path) -> None:
    """A multi-line paste waits in the bar for Enter or Esc."""
    from textual import events

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        bar = _screen(pilot).query_one(BroadcastInput)
        bar.focus()
        bar.post_message(events.Paste("cat <<EOF | sudo tee /etc/etcd/x\na\nb\nEOF\n"))
        await _until(pilot, lambda: bar.pending is not None)
        await _painted(pilot)

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=(80, 24),
                        run_before=run_before)


def test_quit_asks_once(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    """ctrl+q with live sessions: the question over the dimmed panes, at 80x24."""
    from tui.widgets.quit_modal import QuitModal

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await _painted(pilot)
        await pilot.press("ctrl+q")
        await _until(pilot, lambda: isinstance(pilot.app.screen, QuitModal))
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=(80, 24),
                        run_before=run_before)


def test_history_search(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    """ctrl+r in the bar: the matching lines, newest first, over the dimmed console."""
    from tui.widgets.history_modal import HistorySearchModal

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        # typed earlier, not run here: the snapshot lab is not confined, and these lines
        # would change the machine running the tests (/etc/etcd, systemd)
        history = _screen(pilot).console.history
        for line in ("sudo mkdir -p /etc/etcd /var/lib/etcd", "echo {name}",
                     "sudo systemctl daemon-reload"):
            history.add(line)
        await _painted(pilot)
        await pilot.press("ctrl+r", *"etc")
        await _until(pilot, lambda: isinstance(pilot.app.screen, HistorySearchModal))
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=(80, 24),
                        run_before=run_before)


def test_send_a_local_file(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    """The palette's "Copy a local file to the set…": local path, remote path with
    {name}, substitution, at 80x24."""
    from textual.widgets import Input

    from tui.widgets.send_file_modal import SendFileModal

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await pilot.app.run_action("screen.send_file(True)", _screen(pilot))
        await _until(pilot, lambda: isinstance(pilot.app.screen, SendFileModal)
                     and bool(pilot.app.screen.query("#send-remote")))
        pilot.app.screen.query_one("#send-local", Input).value = "~/kthw/etcd.conf"
        pilot.app.screen.query_one("#send-remote", Input).value = "/etc/etcd/{name}.conf"
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=(80, 24),
                        run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), SIZE], ids=["80x24", "large"])
def test_key_help(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path,
                  size: tuple[int, int]) -> None:
    """ctrl+g ?: this screen's keys, what follows ctrl+g and the bar's syntax, over the
    dimmed console (scrolls at 80x24)."""
    from tui.widgets.key_help import KeyHelpModal

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await _painted(pilot)
        await pilot.press("ctrl+g", "question_mark")
        await _until(pilot, lambda: isinstance(pilot.app.screen, KeyHelpModal))
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=size,
                        run_before=run_before)
