"""TerminalView in a real Textual app (Pilot): rendering, batching, keys, size, scrolling."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.widgets import Input

from tui.core.term import Terminal
from tui.widgets.terminal_view import TerminalView

WIDTH, HEIGHT = 40, 10
COLUMNS = WIDTH - 1  # one column for the vertical scrollbar


class CountingView(TerminalView):
    """Counts the repaints that had new output to show."""

    repaints = 0

    def sync(self) -> None:
        if self.terminal.version != self._painted:
            self.repaints += 1
        super().sync()


class Pane(App[None]):
    """One terminal pane, recording what it posts."""

    def __init__(self, terminal: Terminal | None = None) -> None:
        super().__init__()
        self.terminal = terminal
        self.inputs: list[str] = []
        self.sizes: list[tuple[int, int]] = []

    def compose(self) -> ComposeResult:
        yield CountingView(self.terminal, id="pane")

    def on_terminal_view_input(self, message: TerminalView.Input) -> None:
        self.inputs.append(message.data)

    def on_terminal_view_resized(self, message: TerminalView.Resized) -> None:
        self.sizes.append((message.columns, message.rows))


def rendered(view: TerminalView) -> list[str]:
    """What render_line produces for each visible row, trailing blanks stripped."""
    return [view.render_line(y).text.rstrip() for y in range(HEIGHT)]


async def test_feeds_are_batched_and_only_the_tail_is_shown() -> None:
    app = Pane()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        view = app.query_one(CountingView)
        await pilot.pause()
        before = view.repaints
        for i in range(500):
            view.feed(f"line {i}\r\n")
        view.feed("\x1b[1;32muser@ctl-0\x1b[0m:~$ ")
        assert view.virtual_size.height == HEIGHT  # not applied yet: one timer for all feeds
        await pilot.pause(0.2)
        assert view.repaints - before == 1
        assert rendered(view) == [f"line {i}" for i in range(491, 500)] + ["user@ctl-0:~$"]
        assert view.visible_text()[-2:] == ["line 499", "user@ctl-0:~$ "]
        prompt = view.render_line(HEIGHT - 1)
        styles = [segment.style for segment in prompt if segment.text.startswith("user")]
        assert styles and styles[0] is not None and styles[0].bold


async def test_view_reports_its_size_and_resizes_the_terminal() -> None:
    app = Pane()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        view = app.query_one(CountingView)
        await pilot.pause()
        assert app.sizes == [(COLUMNS, HEIGHT)]
        assert (view.terminal.columns, view.terminal.rows) == (COLUMNS, HEIGHT)
        await pilot.resize_terminal(60, 15)
        await pilot.pause()
        assert app.sizes[-1] == (59, 15)
        assert (view.terminal.columns, view.terminal.rows) == (59, 15)


async def test_keys_post_input_bytes_and_tab_stays_in_the_pane() -> None:
    app = Pane()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        view = app.query_one(CountingView)
        view.focus()
        await pilot.press("l", "s", "enter", "ctrl+c", "up", "tab", "backspace", "escape")
        assert app.inputs == ["l", "s", "\r", "\x03", "\x1b[A", "\t", "\x7f", "\x1b"]
        assert app.focused is view
        view.feed("\x1b[?1h")  # vim's "keypad transmit": arrows in application mode
        await pilot.press("down")
        assert app.inputs[-1] == "\x1bOB"


async def test_reserved_keys_reach_the_app_bindings() -> None:
    class WithBinding(App[None]):
        BINDINGS: ClassVar[list[BindingType]] = [("f2", "toggled", "Toggle")]
        toggles = 0

        def compose(self) -> ComposeResult:
            yield TerminalView(reserved_keys={"f2"})
            yield Input()

        def action_toggled(self) -> None:
            self.toggles += 1

    app = WithBinding()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        app.query_one(TerminalView).focus()
        await pilot.press("f2")
        assert app.toggles == 1


async def test_terminal_replies_are_sent_back_as_input() -> None:
    app = Pane()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        view = app.query_one(CountingView)
        view.feed("ab\x1b[6n")
        await pilot.pause()
        assert app.inputs == ["\x1b[1;3R"]


async def test_cursor_is_drawn_only_when_focused() -> None:
    app = Pane()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        view = app.query_one(CountingView)
        app.set_focus(None)
        view.feed("$ ")
        await pilot.pause(0.1)
        row = view.terminal.cursor
        assert row == (0, 2)
        assert not any(s.style and s.style.reverse for s in view.render_line(0))
        view.focus()
        await pilot.pause()
        cells = [(s.text, bool(s.style and s.style.reverse)) for s in view.render_line(0)]
        assert cells[:2] == [("$ ", False), (" ", True)]  # the cell after the prompt


async def test_scrolled_back_view_stays_put_while_output_arrives() -> None:
    app = Pane(Terminal(COLUMNS, HEIGHT, scrollback=100))
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        view = app.query_one(CountingView)
        view.feed("".join(f"old {i}\r\n" for i in range(50)))
        await pilot.pause(0.1)
        view.scroll_to(y=30, animate=False, immediate=True)
        await pilot.pause()
        assert not view.following
        assert rendered(view)[0] == "old 30"
        view.feed("".join(f"new {i}\r\n" for i in range(80)))  # 131 lines: 21 drop off
        await pilot.pause(0.1)
        assert view.terminal.first_line == 21
        assert not view.following
        assert rendered(view)[0] == "old 30"  # same text, though its index moved
        view.focus()
        await pilot.press("shift+pageup")  # scrollback keys stay local, as in xterm
        assert rendered(view)[0] == "old 21"
        await pilot.press("shift+pagedown")
        assert rendered(view)[0] == "old 30"
        assert not any("\x1b[5" in data for data in app.inputs)
        view.follow()
        await pilot.pause()
        assert rendered(view)[-2] == "new 79"
        hits = view.terminal.search("new 3")
        view.scroll_to_line(hits[0])
        await pilot.pause()
        assert "new 3" in rendered(view)


async def test_alt_screen_program_is_shown_then_the_shell_again() -> None:
    app = Pane()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        view = app.query_one(CountingView)
        view.feed("".join(f"out {i}\r\n" for i in range(30)) + "$ ")
        await pilot.pause(0.1)
        shell = rendered(view)
        view.feed("\x1b[?1049h\x1b[H\x1b[2J\x1b[7m top \x1b[0m\x1b[3;1Hrow three")
        await pilot.pause(0.1)
        assert rendered(view)[:3] == [" top", "", "row three"]
        view.feed("\x1b[?1049l")
        await pilot.pause(0.1)
        assert rendered(view) == shell
