"""What the app does before its first frame (issue 11, start-up): no wall clocks here, the
work itself is counted (``bench/startup.py`` measures the times)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.css.stylesheet import Stylesheet
from textual.screen import Screen

from screens.console import ConsoleScreen
from tui.app import HardwayApp, create_app
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner

pytestmark = pytest.mark.usefixtures("no_real_home")


def _app(lab_runner: LabRunner, tmp_path: Path) -> tuple[Workbench, HardwayApp]:
    """The app on the session lab, not connecting (only its start-up is looked at)."""
    workbench = Workbench(load_inventory(lab_runner.lab.inventory_path), host_keys="strict",
                          audit_path=tmp_path / "audit.jsonl")
    return workbench, create_app(workbench, connect=False)


async def test_the_first_screen_is_styled_without_reparsing_the_stylesheets(
        lab_runner: LabRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every re-parse reads every widget's CSS again (10-20 ms each on the first frame's
    path): the console is the default mode, the theme is set before the app runs, and
    the first showing of a mode's screen neither re-parses nor styles its nodes twice."""
    reparsed: list[int] = []
    restyled: list[str] = []
    original = Stylesheet.reparse
    update_styles = Screen.update_node_styles

    def counting(self: Stylesheet) -> None:
        reparsed.append(1)
        original(self)

    def counting_styles(self: Screen[Any], animate: bool = True) -> None:
        restyled.append(type(self).__name__)
        update_styles(self, animate)

    monkeypatch.setattr(Stylesheet, "reparse", counting)
    monkeypatch.setattr(Screen, "update_node_styles", counting_styles)
    workbench, app = _app(lab_runner, tmp_path)
    async with workbench, app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConsoleScreen)
        assert app.current_mode == "console"
        assert app.current_theme.name == "hardway"
        assert app.get_css_variables()["background"] == "#1C1F24"
        assert reparsed == [], f"{len(reparsed)} full re-parses before the first frame"
        assert restyled == [], f"screens styled again on their first showing: {restyled}"
        await pilot.press("ctrl+g", "o")
        await pilot.pause()
        assert app.current_mode == "hosts"
        assert reparsed == []
        restyled.clear()
        await pilot.press("ctrl+g", "c")
        await pilot.pause()
        assert app.current_mode == "console" and isinstance(app.screen, ConsoleScreen)
        assert "ConsoleScreen" in restyled  # shown again: styled as Textual does


ON_A_TERMINAL = """
import asyncio, sys
from pathlib import Path
from textual.drivers import linux_driver
from screens.console import ConsoleScreen
from tui.app import create_app
from tui.core.workbench import Workbench

order = []
write = linux_driver.LinuxDriver.write
def written(driver, data):
    if "controller-0" in data and "frame" not in order:
        order.append("frame")
    return write(driver, data)
linux_driver.LinuxDriver.write = written
def opened(screen):
    order.append("ssh")
    screen.app.exit(0)
ConsoleScreen._open_console = opened

async def main():
    workbench = Workbench.from_path(Path(sys.argv[1]), host_keys="strict", relay=False,
                                    audit_path=Path(sys.argv[2]))
    async with workbench:
        await asyncio.wait_for(create_app(workbench, connect=False).run_async(), 30)
asyncio.run(main())
Path(sys.argv[3]).write_text(" ".join(order))
"""


def test_ssh_loads_after_the_first_frame_reaches_the_terminal(lab_runner: LabRunner,
                                                              tmp_path: Path) -> None:
    """The console model is built once the first frame is on a real terminal (Textual's
    Ready). With the console as the default mode, waiting for a screen refresh (twice)
    let it load before anything was drawn; headless tests cannot see it, so the app runs
    on a pseudo-terminal here."""
    import os
    import pty
    import select
    import subprocess
    import sys

    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
    order = tmp_path / "order"
    process = subprocess.Popen(  # Textual draws on stderr: the terminal here
        [sys.executable, "-c", ON_A_TERMINAL, str(lab_runner.lab.inventory_path),
         str(tmp_path / "audit.jsonl"), str(order)], stdin=slave, stdout=slave, stderr=slave,
        env=env, start_new_session=True)
    os.close(slave)
    try:
        while select.select([master], [], [], 30)[0]:
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break
    finally:
        os.close(master)
        process.wait(timeout=30)
    assert order.read_text() == "frame ssh"


def test_the_console_screen_loads_its_modals_when_they_open() -> None:
    """The first frame needs the panes and the bar, not the gather view, the searches or
    the send-file form (each import is paid before the first frame)."""
    import subprocess
    import sys

    modals = ("tui.widgets.gather_view", "tui.widgets.history_modal",
              "tui.widgets.search_modal", "tui.widgets.send_file_modal",
              # nor the console model's records, nor SSH: they load after the first frame
              "tui.core.console.record", "tui.core.gather", "asyncssh",
              "tui.core.fleet.fleet")
    code = ("import sys, tui.app, screens.console; "
            f"print([m for m in {modals!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


SHELLS_FIRST = """
import asyncio, json, sys
from pathlib import Path
from tui.core.workbench import Workbench

async def main():
    workbench = Workbench.from_path(Path(sys.argv[1]), host_keys="strict",
                                    audit_path=Path(sys.argv[2]))
    release = asyncio.Event()
    load = workbench.load_fleet
    async def held():
        await release.wait()
        return await load()
    workbench.load_fleet = held
    hosts = [h.name for h in workbench.inventory.hosts]
    seen = {}
    async with workbench:
        console = workbench.console
        starting = asyncio.ensure_future(workbench.start_console())
        async def shells():
            while not all(console.shell(h) for h in hosts):
                await asyncio.sleep(0.01)
        await asyncio.wait_for(shells(), 60)
        seen["ssh loaded"] = "asyncssh" in sys.modules or workbench._fleet is not None
        seen["counts"] = workbench.counts()
        seen["pane"] = str(console.status(hosts[0]).state)
        seen["fleet while loading"] = str(console.fleet.state(hosts[0]))
        release.set()
        await asyncio.wait_for(starting, 60)
        seen["fleet"] = [str(workbench.fleet.state(h)) for h in hosts]
    print(json.dumps(seen))
asyncio.run(main())
"""


def test_console_shells_open_through_the_relay_before_the_app_loads_ssh(
        lab_runner: LabRunner, tmp_path: Path) -> None:
    """Every console shell is relayed: opening them needs neither asyncssh (~0.2 s of
    imports) nor the app's own fleet, which loads meanwhile off the UI loop.  Here the
    fleet's load is held until the shells are open: they open, the hosts count as
    connected, and the fleet connects once released (a fresh interpreter, so that
    ``sys.modules`` says what was imported)."""
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", SHELLS_FIRST, str(lab_runner.lab.inventory_path),
         str(tmp_path / "audit.jsonl")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"ssh loaded": False, "counts": [3, 0, 3], "pane": "ready",
                    "fleet while loading": "connecting", "fleet": ["ready"] * 3}


RELAY_BEFORE_TEXTUAL = """
import json, sys, types
from tui.core.fleet import relaylaunch

seen = []
real_launch = relaylaunch.launch
async def launch(spec=None):
    seen.append("textual" in sys.modules)  # when the spawn really starts
    return await real_launch(spec)
relaylaunch.launch = launch

class App:  # what `hardway` runs once tui.app is imported: end at once
    return_code = 0
    def exit(self, *args):
        pass
    async def run_async(self):
        return 0
def create_app(workbench, **options):
    import textual.app  # what importing the real tui.app costs, synchronously
    return App()
fake = types.ModuleType("tui.app")
fake.create_app = create_app
sys.modules["tui.app"] = fake

from tui.cli import main
code = main(["-i", sys.argv[1], "--no-confirm"])
print(json.dumps({"code": code, "textual loaded at the spawn": seen}))
"""


def test_the_relay_process_starts_before_the_app_imports_textual(
        lab_runner: LabRunner, tmp_path: Path) -> None:
    """The relay's own start (an interpreter, asyncssh: ~0.25 s) is what the console's
    shells wait for, so `hardway` spawns it before importing Textual (~0.15 s), on the
    other core.  ``warm_relay`` only schedules the spawn: without awaiting it, the spawn
    ran after the import, and every shell opened ~0.2 s later."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-c", RELAY_BEFORE_TEXTUAL, str(lab_runner.lab.inventory_path)],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"code": 0, "textual loaded at the spawn": [False]}
