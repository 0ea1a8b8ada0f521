"""Console extras driven like a user: unknown host keys, scrollback search, the palette."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from screens.console import ConsoleScreen
from tui.app import create_app
from tui.core.fleet.hostkeys import default_record_file
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner
from tui.widgets.host_key_modal import HostKeyModal
from tui.widgets.host_pane import HostPane

HOSTS = ("controller-0", "controller-1", "controller-2")


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.05)


def _inventory_without_known_keys(lab: Any, tmp_path: Path) -> Path:
    """A copy of the lab inventory whose known_hosts file is empty (keys never seen)."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    text = lab.inventory_path.read_text()
    text = re.sub(r'(?m)^known_hosts = .*$', f'known_hosts = "{empty}"', text)
    text = re.sub(r'(?m)^config = .*$\n', "", text)
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


async def _answer_each_key(pilot: Any, answer: Callable[[], Awaitable[None]]) -> list[Any]:
    """Answer the host-key modal of every host, one after the other; their prompts."""
    app = pilot.app
    prompts = []
    for _ in HOSTS:
        await _until(pilot, lambda: isinstance(app.screen, HostKeyModal))
        await pilot.pause(0.1)  # let the modal compose
        modal = app.screen
        prompts.append(modal.prompt)
        await answer()
        await _until(pilot, lambda m=modal: app.screen is not m)
    return prompts


async def test_unknown_keys_are_asked_about_and_recorded(lab_runner: LabRunner,
                                                         tmp_path: Path) -> None:
    inventory = load_inventory(_inventory_without_known_keys(lab_runner.lab, tmp_path))
    app = create_app(Workbench(inventory, host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))
    async with app.run_test(size=(160, 40)) as pilot:
        prompts = await _answer_each_key(pilot, lambda: pilot.click("#record"))
        assert all(p.fingerprint.startswith("SHA256:") for p in prompts)
        assert sorted(p.host for p in prompts) == list(HOSTS)
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        await _until(pilot, lambda: all(screen.console.status(h).state == "ready"
                                        for h in HOSTS))
    recorded = default_record_file().read_text().splitlines()
    assert len(recorded) == 3
    assert all(line.startswith("[127.") and " ssh-ed25519 " in line for line in recorded)


async def test_keys_accepted_once_are_trusted_by_the_console_relay(
        lab_runner: LabRunner, tmp_path: Path) -> None:
    """"Accept once" is not written anywhere, yet the relay (another process, strict)
    opens the console's shells: the app hands it the keys accepted for this session."""
    inventory = load_inventory(_inventory_without_known_keys(lab_runner.lab, tmp_path))
    app = create_app(Workbench(inventory, host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))
    async with app.run_test(size=(160, 40)) as pilot:
        await _answer_each_key(pilot, lambda: pilot.click("#once"))
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        await _until(pilot, lambda: all(
            getattr(screen.console.shell(h), "state", None) == "open" for h in HOSTS))
        relay = screen.workbench.relay
        assert relay is not None and relay.running
    assert not default_record_file().exists()


async def test_refusing_an_unknown_key_leaves_that_host_down(lab_runner: LabRunner,
                                                             tmp_path: Path) -> None:
    inventory = load_inventory(_inventory_without_known_keys(lab_runner.lab, tmp_path))
    app = create_app(Workbench(inventory, host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))
    async with app.run_test(size=(160, 40)) as pilot:
        await _answer_each_key(pilot, lambda: pilot.press("escape"))  # escape refuses
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        await _until(pilot, lambda: all(
            screen.query_one(f"#pane-{h}", HostPane).has_class("-down") for h in HOSTS))
        assert "refused" in screen.console.status("controller-0").reason
    assert not default_record_file().exists()


async def test_search_and_palette(lab_runner: LabRunner, tmp_path: Path) -> None:
    app = create_app(Workbench(load_inventory(lab_runner.lab.inventory_path), host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))
    async with app.run_test(size=(160, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        await _until(pilot, lambda: all(screen.console.shell(h) for h in HOSTS))
        # issue 12 #18: Textual's generic commands come last, under "More:", or not at all
        assert [c.title for c in app.get_system_commands(screen)] == [
            "Quit", "Keys", "More: theme", "More: screenshot"]
        bar = screen.query_one("#broadcast-input")
        line = "for i in $(seq 1 80); do echo line $i; done; echo needle-{name}"
        bar.value = line  # type: ignore[attr-defined]
        await pilot.press("enter")
        panes = [screen.query_one(f"#pane-{h}", HostPane) for h in HOSTS]
        await _until(pilot, lambda: all("needle-" in p.terminal.text() for p in panes))
        await pilot.press("f10")
        await pilot.press(*"line 7")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert all(not p.view.following for p in panes)  # scrolled back to the hits
        assert all(any("line 7" in row for row in p.view.visible_text()) for p in panes)
        await pilot.press("ctrl+g", "p")
        await pilot.press(*"hosts table")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await _until(pilot, lambda: app.current_mode == "hosts")
