"""The broadcast bar keeps Input's contract (Changed messages, cursor) without a layout
per key."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import App, ComposeResult
from textual.widgets import Input

from tui.widgets.broadcast_bar import BroadcastBar, BroadcastInput


class BarApp(App[None]):
    """Just the bar, recording what it posts."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: list[str] = []
        self.submitted: list[str] = []
        self.history: list[int] = []
        self.keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield BroadcastBar()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self.changed.append(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.submitted.append(event.value)

    @on(BroadcastInput.Keystroke)
    def _keystroke(self, event: BroadcastInput.Keystroke) -> None:
        self.keys.append(event.data)

    @on(BroadcastInput.History)
    def _history(self, event: BroadcastInput.History) -> None:
        self.history.append(event.direction)


def _spy_layouts(widget: Any) -> list[bool]:
    """Record every refresh(layout=True) of ``widget``."""
    layouts: list[bool] = []
    refresh = widget.refresh

    def spy(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("layout"):
            layouts.append(True)
        return refresh(*args, **kwargs)

    widget.refresh = spy
    return layouts


async def test_typing_posts_changed_and_clearing_moves_the_cursor() -> None:
    app = BarApp()
    async with app.run_test(size=(100, 3)) as pilot:
        bar = app.query_one(BroadcastInput)
        bar.focus()
        await pilot.pause()
        layouts = _spy_layouts(bar)
        await pilot.press("u", "p", "t", "i", "m", "e")
        await pilot.pause()
        assert bar.value == "uptime" and bar.cursor_position == 6
        assert app.changed[-1] == "uptime"
        assert app.changed[-6:] == ["u", "up", "upt", "upti", "uptim", "uptime"]
        await pilot.press("enter")
        assert app.submitted == ["uptime"]
        bar.value = ""
        await pilot.pause()
        assert bar.cursor_position == 0
        assert app.changed[-1] == ""
        assert layouts == [], "typing into the bar laid out the screen"


async def test_up_and_down_ask_for_history_and_type_through_posts_keys() -> None:
    app = BarApp()
    async with app.run_test(size=(100, 3)) as pilot:
        bar = app.query_one(BroadcastInput)
        bar.focus()
        await pilot.press("up", "down")
        assert app.history == [-1, 1]
        bar.type_through = True
        await pilot.press("l", "s", "enter")
        await pilot.pause()
        assert bar.value == ""  # nothing edited in type-through mode
        assert app.keys == ["l", "s", "\r"]
