"""What the app does before its first frame (issue 11, start-up): no wall clocks here, the
work itself is counted (``bench/startup.py`` measures the times)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.css.stylesheet import Stylesheet

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
    path): the console is the default mode and the theme is set before the app runs."""
    reparsed: list[int] = []
    original = Stylesheet.reparse

    def counting(self: Stylesheet) -> None:
        reparsed.append(1)
        original(self)

    monkeypatch.setattr(Stylesheet, "reparse", counting)
    workbench, app = _app(lab_runner, tmp_path)
    async with workbench, app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConsoleScreen)
        assert app.current_mode == "console"
        assert app.current_theme.name == "hardway"
        assert app.get_css_variables()["background"] == "#1C1F24"
        assert len(reparsed) <= 1, f"{len(reparsed)} full re-parses before the first frame"
        await pilot.press("ctrl+g", "o")
        await pilot.pause()
        assert app.current_mode == "hosts"
        await pilot.press("ctrl+g", "c")
        await pilot.pause()
        assert app.current_mode == "console" and isinstance(app.screen, ConsoleScreen)


async def test_ssh_loads_after_the_first_frame(lab_runner: LabRunner, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The console model (and asyncssh with it, ~0.15 s) is built once Textual says the
    first frame is on the terminal (Ready), never before: with the console as the
    default mode, a screen refresh came before any frame had been drawn."""
    seen: list[bool] = []
    original = ConsoleScreen._open_console

    def recording(screen: ConsoleScreen) -> None:
        seen.append(screen.app._first_frame_shown)  # type: ignore[attr-defined]
        original(screen)

    monkeypatch.setattr(ConsoleScreen, "_open_console", recording)
    workbench, app = _app(lab_runner, tmp_path)
    async with workbench, app.run_test(size=(120, 40)) as pilot:
        for _ in range(50):
            if seen:
                break
            await pilot.pause(0.02)
        assert seen == [True]


def test_the_console_screen_loads_its_modals_when_they_open() -> None:
    """The first frame needs the panes and the bar, not the gather view, the searches or
    the send-file form (each import is paid before the first frame)."""
    import subprocess
    import sys

    modals = ("tui.widgets.gather_view", "tui.widgets.history_modal",
              "tui.widgets.search_modal", "tui.widgets.send_file_modal")
    code = ("import sys, screens.console; "
            f"print([m for m in {modals!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"
