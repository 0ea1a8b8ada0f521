"""The console screen driven like a user (Textual pilot) against real lab shells.

Each test asserts on the hosts' own state (files, processes, shell variables), not
only on what the screen shows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from screens.console import ConsoleScreen
from tui.app import HardwayApp, create_app
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner
from tui.widgets.host_pane import HostPane

HOSTS = ("controller-0", "controller-1", "controller-2")


@pytest.fixture
async def console(lab_runner: LabRunner,
                  tmp_path: Path) -> AsyncIterator[tuple[HardwayApp, Pilot[Any]]]:
    """The app on the session lab, every shell open, the broadcast bar focused."""
    app = create_app(Workbench(load_inventory(lab_runner.lab.inventory_path), host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))
    async with app.run_test(size=(200, 50)) as pilot:
        await app.workers.wait_for_complete()
        screen = _screen(app)
        await _until(pilot, lambda: all(screen.console.shell(h) is not None for h in HOSTS))
        yield app, pilot


def _screen(app: HardwayApp) -> ConsoleScreen:
    assert isinstance(app.screen, ConsoleScreen)
    return app.screen


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        await pilot.pause(0.05)


async def _type(pilot: Pilot[Any], line: str) -> None:
    """Type a line into the broadcast bar like a user and press Enter."""
    bar = pilot.app.screen.query_one("#broadcast-input")
    bar.focus()
    bar.value = line  # type: ignore[attr-defined]
    await pilot.press("enter")


async def _finished(pilot: Pilot[Any]) -> Any:
    """Wait until the last broadcast finished on every host it was sent to."""
    screen = _screen(pilot.app)  # type: ignore[arg-type]
    await _until(pilot, lambda: not any(row.state in ("pending", "running")
                                        for row in screen.console.gather().rows))
    return screen.console.gather()


def _pane_text(app: HardwayApp, host: str) -> str:
    return _screen(app).query_one(f"#pane-{host}", HostPane).terminal.text()


async def test_broadcast_skips_a_toggled_off_host(console: Any, lab_runner: LabRunner) -> None:
    app, pilot = console
    await _type(pilot, "@-controller-1")
    await _type(pilot, "touch marker-{name}")
    report = await _finished(pilot)
    assert {row.host for row in report.rows if row.status == 0} == {"controller-0",
                                                                    "controller-2"}
    home = {h: lab_runner.lab.host_root(h) / "root" for h in HOSTS}
    assert (home["controller-0"] / "marker-controller-0").exists()
    assert (home["controller-2"] / "marker-controller-2").exists()
    assert not list(home["controller-1"].glob("marker-*"))
    assert not _screen(app).query_one("#pane-controller-1", HostPane).status.in_set
    for host in ("controller-0", "controller-2"):
        (home[host] / f"marker-{host}").unlink()


async def test_variables_persist_between_broadcasts(console: Any) -> None:
    app, pilot = console
    await _type(pilot, "export X=1")
    await _finished(pilot)
    await _type(pilot, "echo X=$X on {name} as $ETCD_NAME")
    report = await _finished(pilot)
    outputs = {h: "\n".join(b.lines) for b in report.blocks for h in b.hosts}
    assert outputs == {h: f"X=1 on {h} as {h}" for h in HOSTS}
    for host in HOSTS:
        assert f"X=1 on {host} as {host}" in _pane_text(app, host)


async def test_gather_finds_the_divergent_host(console: Any) -> None:
    _, pilot = console
    await _type(pilot, "test {name} = controller-1 && echo odd || echo even")
    report = await _finished(pilot)
    assert [(b.hosts, b.lines) for b in report.blocks] == [
        (("controller-0", "controller-2"), ("even",)), (("controller-1",), ("odd",))]
    assert "-even\n+odd" in report.diff
    await pilot.press("f3")
    await pilot.pause()
    assert type(pilot.app.screen).__name__ == "GatherScreen"
    await pilot.press("escape")


async def test_ctrl_c_stops_sleep_on_every_host(console: Any, lab_runner: LabRunner) -> None:
    _, pilot = console
    await _type(pilot, "sleep 100")

    def sleeping() -> list[str]:
        found = []
        for host in HOSTS:
            for pid in lab_runner.lab.pids(host):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if cmdline.split(b"\0")[:2] == [b"sleep", b"100"]:
                    found.append(host)
        return found

    await _until(pilot, lambda: sorted(sleeping()) == list(HOSTS))
    await pilot.press("ctrl+c")
    await _until(pilot, lambda: not sleeping(), timeout=30)  # sleep 100 ends only by ^C
    report = await _finished(pilot)
    assert {row.status for row in report.rows} == {130}


async def test_carriage_return_progress_ends_as_one_line(console: Any) -> None:
    app, pilot = console
    await _type(pilot, r"printf 'get  10%%\rget  50%%\rget 100%%\n'")
    await _finished(pilot)
    for host in HOSTS:
        lines = _pane_text(app, host).splitlines()
        assert "get 100%" in lines
        assert not any("10%" in line or "50%" in line for line in lines
                       if not line.startswith(("root@", "$", "#")) and "printf" not in line)


async def test_a_killed_host_marks_its_pane_and_the_others_carry_on(
        console: Any, lab_runner: LabRunner) -> None:
    app, pilot = console
    screen = _screen(app)
    await asyncio.wrap_future(lab_runner.submit(lab_runner.lab.stop_host, "controller-2"))
    try:
        pane = screen.query_one("#pane-controller-2", HostPane)
        await _until(pilot, lambda: pane.has_class("-down"))
        assert pane.status.state in ("closed", "failed")
        assert pane.status.reason
        await _type(pilot, "echo alive-{name}")
        report = await _finished(pilot)
        outputs = {h: "\n".join(b.lines) for b in report.blocks for h in b.hosts}
        assert outputs == {"controller-0": "alive-controller-0",
                           "controller-1": "alive-controller-1"}
    finally:
        await asyncio.wrap_future(lab_runner.submit(lab_runner.lab.start_host, "controller-2"))
    # F5 with nothing focused reconnects every host that is down
    screen.query_one("#broadcast-input").focus()
    await pilot.press("f5")
    await _until(pilot, lambda: screen.console.status("controller-2").state == "ready")
    assert not pane.has_class("-down")


async def test_a_dropped_host_comes_back_by_itself_and_its_pane_marks_both_ends(
        console: Any, lab_runner: LabRunner) -> None:
    """Issue 12 #15: a VM reboot (the host stops, then starts again) needs no F5: the
    console redials with backoff, and the pane marks where the session was lost and
    where the new one began."""
    app, pilot = console
    screen = _screen(app)
    pane = screen.query_one("#pane-controller-1", HostPane)
    await asyncio.wrap_future(lab_runner.submit(lab_runner.lab.stop_host, "controller-1"))
    try:
        await _until(pilot, lambda: pane.has_class("-down"))
        await _until(pilot, lambda: pane.status.retry is not None)
        assert "retry" in str(pane.border_title)
        text = pane.terminal.text()
        assert "session lost" in text and "reconnecting by itself" in text, text
        await pilot.pause(1.5)  # the first attempts fail: the host is still down
        assert screen.console.status("controller-1").state != "ready"
    finally:
        await asyncio.wrap_future(lab_runner.submit(lab_runner.lab.start_host, "controller-1"))
    await _until(pilot, lambda: screen.console.status("controller-1").state == "ready",
                 timeout=20)
    await _until(pilot, lambda: "new session" in pane.terminal.text())
    assert not pane.has_class("-down") and pane.status.retry is None
    await _type(pilot, "echo back-{name}")
    report = await _finished(pilot)
    assert {h for b in report.blocks for h in b.hosts} == set(HOSTS)


async def test_keys_typed_into_a_pane_reach_only_its_host_in_order(
        console: tuple[HardwayApp, Pilot[Any]], lab_runner: LabRunner) -> None:
    """Keys take the direct route to the focused pane's shell (``typed_now``); their order
    is kept and the app's bindings still win over it."""
    app, pilot = console
    screen = _screen(app)
    pane = screen.query_one("#pane-controller-1", HostPane)
    pane.view.focus()
    await pilot.pause()
    await pilot.press(*"echo order-$HOST_NAME-0123456789 > typed.txt", "enter")
    home = lab_runner.lab.host_root("controller-1") / "root"
    await _until(pilot, lambda: (home / "typed.txt").exists()
                 and (home / "typed.txt").read_text() == "order-controller-1-0123456789\n")
    assert not (lab_runner.lab.host_root("controller-0") / "root" / "typed.txt").exists()
    await pilot.press("f6")  # a console binding (zoom), not a key for the host
    await _until(pilot, lambda: screen.has_class("-zoom") and pane.has_class("-zoomed"))
    await pilot.press("f6")
    await _until(pilot, lambda: not screen.has_class("-zoom"))


async def test_keys_typed_into_the_bar_build_the_line_and_history_keys_still_work(
        console: tuple[HardwayApp, Pilot[Any]]) -> None:
    """Printable keys take the direct route into the bar; up/down keep recalling history."""
    app, pilot = console
    bar = _screen(app).query_one("#broadcast-input")
    bar.focus()
    await pilot.pause()
    await pilot.press(*"echo bar-{name}", "enter")
    report = await _finished(pilot)
    assert [(b.hosts, b.lines) for b in report.blocks] == [
        ((h,), (f"bar-{h}",)) for h in HOSTS]
    await pilot.press("up")
    await _until(pilot, lambda: bar.value == "echo bar-{name}")  # type: ignore[attr-defined]
    await pilot.press("left", "x")
    await _until(pilot, lambda: bar.value == "echo bar-{namex}")  # type: ignore[attr-defined]


async def test_moving_the_focus_repaints_the_panes_involved_not_the_whole_screen(
        console: Any) -> None:
    """F2 while hosts stream: Textual's Screen.focused repainted every pane (30-40 ms)."""
    from textual._compositor import Compositor

    app, pilot = console
    screen = _screen(app)
    await pilot.pause(0.3)
    full: list[int] = []
    original = Compositor.render_full_update

    def counting(self: Compositor, *args: Any, **kwargs: Any) -> Any:
        full.append(1)
        return original(self, *args, **kwargs)

    Compositor.render_full_update = counting  # type: ignore[method-assign]
    try:
        for _ in range(3):
            await pilot.press("f2")
            await pilot.pause(0.1)
    finally:
        Compositor.render_full_update = original  # type: ignore[method-assign]
    focused = app.focused
    assert focused is not None and focused is screen._pane(HOSTS[2]).view
    assert full == []
