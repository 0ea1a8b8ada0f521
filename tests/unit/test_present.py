"""present_now: a key's echo reaches the screen in the same loop turn, nothing else does."""

from __future__ import annotations

from typing import Any

from textual import events
from textual._compositor import CompositorUpdate
from textual.app import App, ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Label

from tui.widgets.broadcast_bar import BroadcastInput
from tui.widgets.present import present_now
from tui.widgets.terminal_view import TerminalView

SIZE = (60, 12)


class Frames(App[None]):
    """A pane and a bar; every frame the app displays is kept as text."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[str] = []

    def compose(self) -> ComposeResult:
        yield TerminalView(id="pane")
        yield BroadcastInput(id="bar")

    def _display(self, screen: Any, renderable: Any) -> None:
        if isinstance(renderable, CompositorUpdate):
            self.frames.append(renderable.render_segments(self.console))
        super()._display(screen, renderable)


def key(character: str) -> events.Key:
    return events.Key(character, character)


async def test_a_key_typed_into_the_bar_is_on_screen_before_the_next_loop_turn() -> None:
    app = Frames()
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one(BroadcastInput)
        bar.focus()
        await pilot.pause()
        before = len(app.frames)
        assert bar.take_key(key("q"))
        # no await in between: the frame was composed inside take_key
        assert len(app.frames) == before + 1
        assert "q" in app.frames[-1]
        assert bar.value == "q"


async def test_a_pane_echo_right_after_a_key_is_shown_at_once() -> None:
    app = Frames()
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(TerminalView)
        sent: list[str] = []
        view.sink = sent.append
        view.focus()
        await pilot.pause()
        assert view.take_key(key("z")) and sent == ["z"]
        before = len(app.frames)
        view.feed("zebra-echo")
        view._sync_soon()  # what the loop runs right after this batch of feeds
        assert len(app.frames) == before + 1
        assert "zebra-echo" in app.frames[-1]


async def test_output_nobody_typed_for_waits_for_the_regular_frame() -> None:
    app = Frames()
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(TerminalView)
        await pilot.pause()
        before = len(app.frames)
        view.feed("spontaneous")
        view._sync_soon()
        assert len(app.frames) == before  # no express frame: the screen's timer does it
        await pilot.pause(0.1)
        assert any("spontaneous" in frame for frame in app.frames[before:])


async def test_nothing_is_drawn_over_a_modal() -> None:
    class Modal(ModalScreen[None]):
        def compose(self) -> ComposeResult:
            yield Label("a question")

    app = Frames()
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one(BroadcastInput)
        await app.push_screen(Modal())
        await pilot.pause()
        bar.insert_text_at_cursor("x")
        assert not present_now(bar)
