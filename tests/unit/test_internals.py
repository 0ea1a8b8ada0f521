"""One test per private Textual name that tui/widgets/internals.py uses.

A Textual upgrade that renames or changes one of them fails here, naming it, instead of
misbehaving at run time.  Keep this list and the module docstring of
``tui.widgets.internals`` in step.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from rich.style import Style
from textual.app import App, ComposeResult
from textual.cache import FIFOCache
from textual.message import Message
from textual.reactive import Reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Input, Static
from textual.worker import WorkerFailed

from tui.widgets import internals


class Nudge(Message):
    """A message nobody handles."""


class Probe(internals.DirectKeysApp):
    """A tiny app over the hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []
        self.failures: list[BaseException] = []

    def compose(self) -> ComposeResult:
        yield Input(id="line")
        yield Static("hello", id="text")
        yield Footer()

    def intercept_key(self, event: Any) -> bool:
        self.keys.append(event.key)
        return event.key == "x"  # x is taken before Textual's queues

    def worker_failed(self, error: BaseException) -> bool:
        self.failures.append(error)
        return True


def test_app_post_message_is_the_key_entry() -> None:
    method = App.__dict__.get("_post_message") or App._post_message
    assert inspect.iscoroutinefunction(method), "App._post_message changed"
    assert list(inspect.signature(method).parameters) == ["self", "message"]


async def test_direct_keys_see_every_key_first() -> None:
    app = Probe()
    async with app.run_test() as pilot:
        app.query_one(Input).focus()
        await pilot.press("a", "x", "b")
        assert app.keys[-3:] == ["a", "x", "b"]
        assert app.query_one(Input).value == "ab"  # x never reached the Input


async def test_message_queue_empty() -> None:
    app = Probe()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert internals.queue_empty(app) is True
        app.post_message(Nudge())  # anything queued
        assert internals.queue_empty(app) is False


async def test_handle_exception_gets_failed_workers() -> None:
    assert callable(getattr(App, "_handle_exception", None)), "App._handle_exception gone"

    async def fails() -> None:
        raise KeyError("boom")

    app = Probe()
    async with app.run_test() as pilot:
        worker = app.run_worker(fails(), exit_on_error=True)
        with pytest.raises(WorkerFailed):
            await worker.wait()
        await pilot.pause()
        assert [type(e) for e in app.failures] == [KeyError]
        assert app.is_running and app.return_code is None


async def test_input_watch_value_and_virtual_size() -> None:
    assert callable(Input.__dict__.get("_watch_value")), "Input._watch_value gone"
    virtual = Widget.__dict__["virtual_size"]
    assert isinstance(virtual, Reactive) and virtual._layout, "virtual_size no longer lays out"


async def test_input_restart_blink() -> None:
    app = Probe()
    async with app.run_test():
        line = app.query_one(Input)
        internals.restart_blink(line)
        assert line._cursor_visible is True


async def test_widget_check_disabled() -> None:
    app = Probe()
    async with app.run_test():
        text = app.query_one("#text", Static)
        assert internals.scroll_disabled(text) is False
        text.disabled = True
        assert internals.scroll_disabled(text) is True


async def test_widget_styles_cache() -> None:
    app = Probe()
    async with app.run_test():
        cache = internals.styles_cache(app.query_one("#text", Static))
        assert callable(cache.clear) and callable(cache.get_inner_outer)


def test_style_link_id() -> None:
    assert internals.has_link(Style(link="https://example.org")) is True
    assert internals.has_link(Style(bold=True)) is False


def test_strip_slots() -> None:
    assert set(Strip.__slots__) == (set(internals.STRIP_LAZY_CACHES)
                                    | set(internals.STRIP_EAGER_SLOTS))
    plain = Strip([], 0)
    for name, size in internals.STRIP_LAZY_CACHES.items():
        cache = getattr(plain, name)
        assert isinstance(cache, FIFOCache) and cache._maxsize == size, name


async def test_present_now_names() -> None:
    app = Probe()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(app._batch_count, int)
        assert callable(app._display)
        assert isinstance(app._background_screens, list)
        for flag in ("_layout_required", "_scroll_required", "_repaint_required",
                     "_recompose_required"):
            assert isinstance(getattr(screen, flag), bool), flag
        compositor = screen._compositor
        assert isinstance(compositor._dirty_regions, set)
        text = app.query_one("#text", Static)
        text.update("changed")
        await asyncio.sleep(0)
        # on a settled screen a changed widget is put on screen at once
        await pilot.pause()
        text.refresh()
        assert internals.present_now(text) in (True, False)
        assert text.render().plain == "changed"  # type: ignore[union-attr]


class Painted(internals.BatchAwareScreen):
    """A BatchAwareScreen that counts the frames it renders."""

    def __init__(self) -> None:
        super().__init__()
        self.renders = 0

    def compose(self) -> ComposeResult:
        yield Static("painted", id="painted")

    def _compositor_refresh(self) -> None:
        if not self.app._batch_count:
            self.renders += 1
        super()._compositor_refresh()


async def test_batch_aware_screen_renders_no_frame_inside_a_batch() -> None:
    """``Screen._compositor_refresh`` is where a screen renders; inside a batch it would
    render a frame ``App._display`` drops.  The screen asks for a whole repaint instead
    (``Screen._repaint_required``), done after the batch."""
    app = Probe()
    async with app.run_test() as pilot:
        screen = Painted()
        await app.push_screen(screen)
        await pilot.pause()
        assert callable(screen._compositor_refresh)
        before = screen.renders
        with app.batch_update():
            screen._compositor_refresh()
            assert screen._repaint_required is True
            assert screen.renders == before
        screen.refresh()
        await pilot.pause()
        assert screen._repaint_required is False
        assert screen.renders > before


class Modal(internals.BatchAwareScreen):
    """A mode's screen, counting the times its nodes are styled again."""

    def __init__(self) -> None:
        super().__init__()
        self.restyled = 0

    def compose(self) -> ComposeResult:
        yield Static("mode", id="mode")

    def update_node_styles(self, animate: bool = True) -> None:
        self.restyled += 1
        super().update_node_styles(animate)


class Modes(App[None]):
    """An app whose mode ``extra`` builds its screen with :func:`styles_are_current`
    (``plain``: without it)."""

    def __init__(self) -> None:
        super().__init__()
        self.built: dict[str, Modal] = {}
        self.add_mode("extra", lambda: self._build("extra", True))
        self.add_mode("plain", lambda: self._build("plain", False))

    def _build(self, name: str, current: bool) -> Modal:
        screen = self.built[name] = Modal()
        if current:
            internals.styles_are_current(screen, self)
        return screen


async def test_css_update_counts_and_the_first_screen_resume(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``Screen._css_update_count`` (-1 on a new screen) against ``App._css_update_count``
    makes ``App._init_mode`` re-parse every stylesheet (``App.refresh_css``), and
    ``Screen._on_screen_resume`` styles every node again unless the ScreenResume says
    not to: :func:`styles_are_current` and :class:`BatchAwareScreen` avoid both on a
    mode's first showing, and only then."""
    from textual.screen import Screen

    assert Screen().__dict__.get("_css_update_count") == -1, "Screen._css_update_count"
    assert "refresh_styles" in inspect.getsource(Screen._on_screen_resume)
    refreshed: list[str] = []
    original = App.refresh_css

    def counting(self: App[Any], animate: bool = True) -> None:
        refreshed.append(self.current_mode)
        original(self, animate)

    monkeypatch.setattr(App, "refresh_css", counting)
    app = Modes()
    async with app.run_test() as pilot:
        assert isinstance(app._css_update_count, int), "App._css_update_count"
        await pilot.pause()
        refreshed.clear()
        await app.switch_mode("plain")
        await pilot.pause()
        assert "plain" in refreshed, "App._init_mode no longer refreshes a new screen's CSS"
        plain_first = app.built["plain"].restyled
        refreshed.clear()
        await app.switch_mode("extra")
        await pilot.pause()
        assert "extra" not in refreshed
        first = app.built["extra"].restyled
        assert first < plain_first, "the first ScreenResume styled the nodes again"
        await app.switch_mode("plain")
        await app.switch_mode("extra")
        await pilot.pause()
        assert app.built["extra"].restyled > first  # shown again: styled as Textual does
        assert app.screen.query_one("#mode", Static).styles.color is not None


def _private_names() -> set[str]:
    """The private attribute names the internals module docstring lists (``X._name``)."""
    import re

    doc = internals.__doc__ or ""
    names = set(re.findall(r"``\w+\.(_\w+)``", doc))
    names |= set(re.findall(r"``(_\w+)``", doc))  # the Strip slots
    return names


def test_no_private_textual_name_is_used_outside_the_internals_module() -> None:
    """Every use lives in ``tui/widgets/internals.py`` (a Textual upgrade breaks one module):
    an attribute of that list read anywhere else in ``tui`` or ``screens`` fails here."""
    import ast
    from pathlib import Path

    names = _private_names()
    assert {"_compositor_refresh", "_watch_value", "_batch_count", "_compositor"} <= names
    root = Path(internals.__file__).resolve().parents[2]
    found = []
    sources = [*root.joinpath("tui").rglob("*.py"), *root.joinpath("screens").rglob("*.py")]
    for path in sorted(sources):
        if path.name == "internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in names:
                found.append(f"{path.relative_to(root)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module and any(
                    part.startswith("_") for part in node.module.split(".")[1:]) \
                    and node.module.startswith("textual"):
                found.append(f"{path.relative_to(root)}:{node.lineno} from {node.module}")
    assert found == [], "private Textual names outside tui/widgets/internals.py: " + \
        ", ".join(found)
