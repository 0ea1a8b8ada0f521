"""KeyFooter: the screen's keys drawn by one widget (hover, tooltip, click, fit)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from tui.widgets.footer import MORE, KeyFooter


class Pane(Static, can_focus=True):
    """A focusable widget that shows a key of its own while focused."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("f9", "app.bar", "Again")]


class Keys(App[None]):
    """An app with a few shown keys, one disabled, and an Input that adds its own."""

    COMMAND_PALETTE_BINDING = "f12"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "bar", "Bar"),
        Binding("f4", "type_through", "Type-through", tooltip="Type into every pane"),
        Binding("f5", "reconnect", "Reconnect"),
        Binding("ctrl+q", "quit", "Quit", id="quit"),
        Binding("ctrl+g", "prefix", "Screens…", id="prefix"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.done: list[str] = []
        self.bells = 0

    def compose(self) -> ComposeResult:
        yield Static("body")
        yield Input(id="line")
        yield Pane("pane")
        yield KeyFooter()

    def action_bar(self) -> None:
        self.done.append("bar")

    def action_type_through(self) -> None:
        self.done.append("type_through")

    def action_reconnect(self) -> None:
        self.done.append("reconnect")

    def action_prefix(self) -> None:
        self.done.append("prefix")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "reconnect" else True  # shown, disabled

    def bell(self) -> None:
        self.bells += 1


def _row(app: Keys) -> str:
    footer = app.query_one(KeyFooter)
    return footer.render().plain


async def test_the_row_shows_every_key_and_the_palette_key_on_the_right() -> None:
    app = Keys()
    async with app.run_test(size=(100, 12)) as pilot:
        await pilot.pause()
        row = _row(app)
        assert len(row) == 100
        assert row.startswith(" ^q Quit  f1 Bar  f4 Type-through  f5 Reconnect  ^g Screens… ")
        assert row.endswith("▏f12 palette ")
        footer = app.query_one(KeyFooter)
        assert list(footer.children) == []  # one widget, no key widgets


async def test_a_narrow_row_keeps_quit_and_the_escape() -> None:
    app = Keys()
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause()
        row = _row(app)
        assert "^q Quit" in row and f"^g {MORE}" in row and "f5" not in row
        assert row.endswith("▏f12 palette ")
        await pilot.resize_terminal(120, 12)
        await pilot.pause()
        assert "f5 Reconnect" in _row(app) and "Screens…" in _row(app)


async def test_a_click_presses_the_key_and_a_disabled_key_rings() -> None:
    app = Keys()
    async with app.run_test(size=(100, 12)) as pilot:
        await pilot.pause()
        footer = app.query_one(KeyFooter)
        items = {item.key: item for item in footer.items()}
        await pilot.click(KeyFooter, offset=(items["f4"].start + 1, 0))
        await pilot.pause()
        assert app.done == ["type_through"]
        await pilot.click(KeyFooter, offset=(items["f5"].start + 1, 0))
        await pilot.pause()
        assert app.done == ["type_through"] and app.bells == 1
        await pilot.click(KeyFooter, offset=(70, 0))  # blank footer
        await pilot.pause()
        assert app.done == ["type_through"] and app.bells == 1


async def test_hover_highlights_the_key_and_shows_its_tooltip() -> None:
    app = Keys()
    async with app.run_test(size=(100, 12)) as pilot:
        await pilot.pause()
        footer = app.query_one(KeyFooter)
        plain = footer.render()
        items = {item.key: item for item in footer.items()}
        f4 = items["f4"]
        await pilot.hover(KeyFooter, offset=(f4.start + 2, 0))
        await pilot.pause()
        assert footer._hover == f4
        assert footer.tooltip == "Type into every pane"
        hovered = footer.render()
        assert hovered.plain == plain.plain

        def background(text: Any, x: int) -> Any:
            return text.get_style_at_offset(app.console, x).bgcolor

        assert background(hovered, f4.start) != background(plain, f4.start)
        assert background(hovered, f4.start + f4.width) == background(plain, 0)
        await pilot.hover(Static)
        await pilot.pause()
        assert footer._hover is None and footer.tooltip is None


async def test_a_focus_change_with_the_same_keys_does_not_repaint() -> None:
    app = Keys()
    async with app.run_test(size=(100, 12)) as pilot:
        await pilot.pause()
        footer = app.query_one(KeyFooter)
        painted: list[int] = []
        original = footer.refresh

        def counting(*args: Any, **kwargs: Any) -> Any:
            painted.append(1)
            return original(*args, **kwargs)

        footer.refresh = counting  # type: ignore[method-assign]
        app.query_one(Input).focus()
        await pilot.pause()
        app.set_focus(None)
        await pilot.pause()
        assert painted == []
        app.query_one(Pane).focus()  # a key of its own: the row changes
        await pilot.pause()
        assert painted and "f9 Again" in _row(app)
        await pilot.press("f9")
        assert app.done == ["bar"]
