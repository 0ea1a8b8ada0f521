"""Breakages a new user hit, driven like a user: none freezes the app or ends it.

* F5 on a host that accepts TCP and never speaks SSH: keys stay live.
* A corrupt ``pki/last-push.json``, then restore: a notification naming the file.
* Issuing the KTHW certificates (RSA): off the UI loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from screens.certs import CertsScreen
from screens.console import ConsoleScreen
from tui.app import create_app
from tui.boundary import running
from tui.core.console.events import ConsoleChanged
from tui.core.inventory.load import load_inventory
from tui.core.pki import issue as pki_issue
from tui.core.workbench import ActionEvent, ActionPhase, Workbench
from tui.lab.lab import LabRunner
from tui.widgets.host_pane import HostPane

UP = ("controller-0", "controller-1")
SILENT = "controller-2"


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.05)


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[str, int]]:
    """A TCP server on loopback that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield "127.0.0.1", port
    finally:
        for writer in held:
            writer.close()
        server.close()


def _inventory_with_silent_host(lab: Any, tmp_path: Path, address: tuple[str, int]) -> Path:
    """The lab inventory, with controller-2's SSH endpoint moved to the silent server."""
    text = lab.inventory_path.read_text()
    text = re.sub(r"(?m)^config = .*$\n", "", text)
    blocks = text.split("[[controllers]]")
    for i, block in enumerate(blocks):
        if f'name = "{SILENT}"' in block:
            blocks[i] = block.replace(
                f'name = "{SILENT}"\n',
                f'name = "{SILENT}"\nssh = {{ host = "{address[0]}", port = {address[1]} }}\n')
    path = tmp_path / "inventory.toml"
    path.write_text("[[controllers]]".join(blocks))
    return path


async def test_keys_stay_live_while_f5_waits_for_a_silent_host(
        lab_runner: LabRunner, tmp_path: Path, silent_server: tuple[str, int]) -> None:
    """A key pressed 0.3 s after F5 takes effect within 100 ms (the reconnect is a
    worker; before, it was awaited inline and every key waited up to 10 s)."""
    inventory = load_inventory(_inventory_with_silent_host(lab_runner.lab, tmp_path,
                                                           silent_server))
    assert inventory.host(SILENT).ssh.port == silent_server[1]
    workbench = Workbench(inventory, host_keys="ask", audit_path=tmp_path / "audit.jsonl",
                          connect_timeout=10.0, user_ssh_files=False)
    app = create_app(workbench)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        await _until(pilot, lambda: all(screen.console.shell(h) is not None for h in UP))
        effects: list[float] = []
        screen.console.subscribe(
            lambda c: effects.append(time.monotonic()) if c == ConsoleChanged("mode") else None)
        screen.query_one(f"#pane-{SILENT}", HostPane).view.focus()
        await pilot.pause()
        await pilot.press("f5")
        assert "reconnect" in running(app)  # visible: the header names it
        assert "reconnecting controller-2" in str(app.sub_title)
        await asyncio.sleep(0.3)
        pressed = time.monotonic()
        await pilot.press("f4")
        await _until(pilot, lambda: bool(effects), timeout=12)
        latency = effects[0] - pressed
        assert "reconnect" in running(app), "the silent host answered?"
        assert screen.console.type_through
        assert latency < 0.1, f"F4 took {latency * 1000:.0f} ms during the reconnect"
        await workbench.close()


def _record_notifications(app: Any) -> list[tuple[str, str]]:
    """(message, severity) of every notification from now on (still shown as usual)."""
    notes: list[tuple[str, str]] = []
    notify = app.notify

    def recording(message: str, **kwargs: Any) -> None:
        notes.append((message, kwargs.get("severity", "information")))
        notify(message, **kwargs)

    app.notify = recording
    return notes


@pytest.fixture
def pki_copy(lab_runner: LabRunner, tmp_path: Path) -> Path:
    """A copy of the lab's PKI directory (the lab's own stays untouched)."""
    copy = tmp_path / "pki"
    shutil.copytree(lab_runner.lab.inventory_path.parent / "pki", copy)
    return copy


async def _certs_screen(pilot: Pilot[Any]) -> CertsScreen:
    await pilot.press("ctrl+g", "k")
    await _until(pilot, lambda: isinstance(pilot.app.screen, CertsScreen))
    screen = pilot.app.screen
    assert isinstance(screen, CertsScreen)
    await _until(pilot, lambda: screen.survey is not None and not running(pilot.app),
                 timeout=30)
    return screen


async def test_restore_with_a_corrupt_push_record_says_what_is_wrong(
        lab_runner: LabRunner, tmp_path: Path, pki_copy: Path) -> None:
    (pki_copy / "last-push.json").write_text("{ this is not json")
    inventory = load_inventory(lab_runner.lab.inventory_path)
    workbench = Workbench(inventory, host_keys="ask", audit_path=tmp_path / "audit.jsonl",
                          pki_dir=pki_copy, user_ssh_files=False)
    app = create_app(workbench)
    async with app.run_test(size=(170, 44)) as pilot:
        await _certs_screen(pilot)
        notes = _record_notifications(app)
        await pilot.press("u")
        await _until(pilot, lambda: not running(app))
        assert any("last-push.json is not a readable push record" in m for m, _ in notes), \
            notes
        assert [severity for _, severity in notes] == ["error"]
        assert app.is_running and app.return_code is None
        await pilot.press("r")  # the screen still works: a new survey runs
        await _until(pilot, lambda: not running(app), timeout=30)
        await workbench.close()


async def test_issuing_runs_off_the_ui_loop(lab_runner: LabRunner, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh CA and the whole KTHW set (RSA 2048) are made in a worker thread."""
    threads: list[threading.Thread] = []
    real = pki_issue.issue_certificates

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(pki_issue, "issue_certificates", spy)
    empty = tmp_path / "pki"
    inventory = load_inventory(lab_runner.lab.inventory_path)
    workbench = Workbench(inventory, host_keys="ask", audit_path=tmp_path / "audit.jsonl",
                          pki_dir=empty, user_ssh_files=False)
    app = create_app(workbench, connect=False)
    async with app.run_test(size=(170, 44)) as pilot:
        await pilot.press("ctrl+g", "k")
        await _until(pilot, lambda: isinstance(app.screen, CertsScreen))
        loop_thread = threading.current_thread()
        notes = _record_notifications(app)
        shown: list[str] = []
        busy_changed = app.busy_changed
        app.busy_changed = lambda: (busy_changed(), shown.append(str(app.sub_title)))
        await pilot.press("i")
        await _until(pilot, lambda: not running(app), timeout=60)
        assert any("issuing certificates" in title for title in shown), shown
        assert threads and threads[0] is not loop_thread
        assert (empty / "ca.pem").exists() and (empty / "kubernetes.pem").exists()
        assert any(m.startswith("issued ca, admin") for m, _ in notes), notes
        with contextlib.suppress(Exception):
            await workbench.close()


def test_hardway_logs_listener_failures_to_the_state_dir(
        lab_runner: LabRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hardway` (the app) configures the log file before anything runs: a listener that
    raises while the app runs leaves its traceback in $XDG_STATE_HOME/hardway/hardway.log
    (before, nothing configured a handler and Textual captured stderr)."""
    import logging

    import tui.app
    from tui.commands.app import _launch
    from tui.core import logfile

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    seen: list[Workbench] = []

    class Headless:
        return_code = 0

        def __init__(self, workbench: Workbench, **_options: object) -> None:
            self.workbench = workbench

        def exit(self, result: object = None, return_code: int = 0) -> None:
            self.return_code = return_code

        async def run_async(self) -> int:
            def broken(_event: object) -> None:
                raise ValueError("a view's listener broke")

            self.workbench.subscribe(broken)
            self.workbench.emit(ActionEvent("connect", ActionPhase.STARTED))
            seen.append(self.workbench)
            return 0

    monkeypatch.setattr(tui.app, "create_app", Headless)
    try:
        assert _launch(lab_runner.lab.inventory_path, accept_new=False, log_level=None) == 0
        log = tmp_path / "state" / "hardway" / "hardway.log"
        assert logfile.current_path() == log
        text = log.read_text()
        assert "ValueError: a view's listener broke" in text
        assert "a workbench listener (" in text and "Traceback" in text
        assert seen and seen[0].closed  # the workbench was closed with the app
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, logfile.HardwayLogHandler)]:
            root.removeHandler(handler)
            handler.close()


async def test_the_console_gives_the_frozen_objects_back_when_it_stops(
        lab_runner: LabRunner, tmp_path: Path) -> None:
    """gc.freeze() (the quiet collector, once every shell is up) is undone when the app,
    and with it the console screen, stops."""
    import gc

    workbench = Workbench(load_inventory(lab_runner.lab.inventory_path), host_keys="ask",
                          audit_path=tmp_path / "audit.jsonl", user_ssh_files=False)
    app = create_app(workbench)
    async with app.run_test(size=(200, 50)) as pilot:
        await _until(pilot, lambda: gc.get_freeze_count() > 0)
        threshold = gc.get_threshold()
        assert threshold[2] > 1000  # full collections taken over
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[2] < threshold[2]
    await workbench.close()


async def test_an_unconfined_lab_says_so_in_the_header(lab_runner: LabRunner,
                                                       tmp_path: Path) -> None:
    """The demo on a lab without namespaces: the header and a notification say it."""
    inventory = load_inventory(lab_runner.lab.inventory_path)
    workbench = Workbench(inventory, host_keys="ask", audit_path=tmp_path / "audit.jsonl",
                          user_ssh_files=False)
    app = create_app(workbench, connect=False,
                     lab_note="The lab hosts are NOT isolated (no user namespaces).")
    notes = _record_notifications(app)
    async with app.run_test(size=(120, 30)) as pilot:
        await _until(pilot, lambda: "NOT isolated" in str(app.sub_title))
        assert ("The lab hosts are NOT isolated (no user namespaces).", "warning") in notes
    with contextlib.suppress(Exception):
        await workbench.close()
