"""BroadcastBar: the line at the bottom of the console that types into many hosts.

It shows who receives input (the broadcast set), takes a line and posts it; in
type-through mode every keystroke is posted raw instead (like tmux synchronize-panes),
and the bar turns an unmistakable colour.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label

from tui.core.term.keys import encode_key
from tui.widgets.internals import QuietInput, present_now, restart_blink

PLACEHOLDER = ("command for every host in the set · @controllers @none +name -name "
               "change the set · {name} {ip} {VAR} per host")


class BroadcastInput(QuietInput):
    """The bar's input: history on up/down, raw keys in type-through mode.

    An :class:`~textual.widgets.Input` in every respect (``Changed`` and ``Submitted``
    messages, cursor, selection), whose typing never lays out the screen
    (:class:`~tui.widgets.internals.QuietInput`).
    """

    type_through: reactive[bool] = reactive(False)
    """Send each keystroke to the hosts instead of editing a line."""

    @dataclass
    class History(Message):
        """Up (-1) or down (+1) pressed: the bar asks the model for that history line."""

        direction: int

    @dataclass
    class Keystroke(Message):
        """Raw input for every host in the set (type-through mode)."""

        data: str

    @dataclass
    class Pasted(Message):
        """A paste of several lines (line mode: the console asks before sending it), or
        any paste in type-through mode (sent at once, bracketed where the shell asked)."""

        text: str
        type_through: bool

    @dataclass
    class SearchHistory(Message):
        """ctrl+r: search the history for a line to take into the bar."""

    @dataclass
    class Complete(Message):
        """Tab: complete the word before the cursor (never a focus change)."""

    @dataclass
    class PasteDropped(Message):
        """Esc while a pasted block waited for Enter."""

    pending: str | None = None
    """The summary of a pasted block waiting for Enter (send) or Esc (drop), shown in
    place of the line; set by :meth:`BroadcastBar.show_pending`."""

    def on_paste(self, event: events.Paste) -> None:
        """Several lines, or type-through: the console's (Input would keep only the first
        line and drop the rest); one line is inserted where the cursor is, as Input does."""
        text = event.text
        if self.type_through or "\n" in text.strip("\r\n") or "\r" in text.strip("\r\n"):
            event.stop()
            event.prevent_default()
            if text.strip() or self.type_through:
                self.post_message(self.Pasted(text, self.type_through))

    def on_key(self, event: events.Key) -> None:
        """Enter (:meth:`submit_now`), type-through keys and history (Input's own key
        handler runs after this one unless the key was taken here)."""
        if event.key.startswith("f") and event.key[1:].isdigit():
            return  # function keys are the console's
        if event.key == "enter" and not self.type_through:
            event.stop()
            event.prevent_default()
            self.submit_now()
            return
        if self.pending is not None:
            # a pasted block waits: Enter sends it, Esc drops it, other keys do nothing
            event.stop()
            event.prevent_default()
            if event.key == "escape":
                self.post_message(self.PasteDropped())
            else:
                self.app.bell()
            return
        if event.key == "ctrl+r" and not self.type_through:
            event.stop()
            event.prevent_default()
            self.post_message(self.SearchHistory())
            return
        if event.key == "tab" and not self.type_through:
            event.stop()
            event.prevent_default()
            self.post_message(self.Complete())
            return
        if self.type_through:
            data = encode_key(event.key, event.character)
            if data is not None:
                event.stop()
                event.prevent_default()
                self.post_message(self.Keystroke(data))
            return
        if event.key in ("up", "down"):
            event.stop()
            event.prevent_default()
            self.post_message(self.History(-1 if event.key == "up" else 1))

    def submit_now(self) -> None:
        """Submit the line and empty the bar at once, in the order keys arrive.

        Input's Enter is a binding, run when the key has bubbled up to the app, and the
        console emptied the bar when the screen handled ``Submitted``: keys typed right
        after Enter (a paste, ``tmux send-keys``, a fast typist) were inserted before
        either, so ``@none`` Enter ``+c1`` Enter ``echo`` Enter became one line,
        ``@none+c1echo``.  Here Enter is handled in the bar's own key order: whatever
        follows it starts the next line."""
        value = self.value
        result = self.validate(value) if "submitted" in self.validate_on else None
        self.value = ""
        self.post_message(self.Submitted(self, value, result))

    def take_key(self, event: events.Key) -> bool:
        """Insert a printable key now, as Input does, and show it in a frame of its own
        (the app's direct key route); False for anything else, which then takes the
        normal route."""
        if (self.type_through or self.pending is not None or not event.is_printable
                or event.character is None):
            return False
        restart_blink(self)
        selection = self.selection
        if selection.is_empty:
            self.insert_text_at_cursor(event.character)
        else:
            self.replace(event.character, *selection)
        present_now(self)
        return True


class BroadcastBar(Horizontal):
    """The set label, the input line and the mode badge."""

    DEFAULT_CSS = """
    BroadcastBar { height: 1; }
    """

    def compose(self) -> ComposeResult:
        """Set label, input, mode badge."""
        yield Label("", id="broadcast-set")
        yield BroadcastInput(placeholder=PLACEHOLDER, id="broadcast-input")
        yield Label("", id="broadcast-mode")

    @property
    def input(self) -> BroadcastInput:
        """The line editor."""
        return self.query_one(BroadcastInput)

    _shown: tuple[object, ...] = ()
    _width = -1

    def show_set(self, label: str, count: int) -> None:
        """Show who receives input, e.g. ``controller-[0-2] (3)`` (no-op when unchanged:
        a label update re-lays out the screen)."""
        if self._shown == ("set", label, count):
            return
        self._shown = ("set", label, count)
        text = f"→ {escape(label)} ({count})" if count else "→ nobody (@all to reset)"
        width = Text.from_markup(text).cell_len
        # a label as wide as before needs no screen layout (30-70 ms while hosts stream)
        self.query_one("#broadcast-set", Label).update(text, layout=width != self._width)
        self._width = width
        self.set_class(count == 0, "-empty")

    def show_pending(self, summary: str | None) -> None:
        """Show a pasted block waiting for Enter/Esc in place of the line (``summary``), or
        go back to the empty line (None)."""
        line = self.input
        line.pending = summary
        line.value = ""
        line.placeholder = summary if summary is not None else PLACEHOLDER
        self.set_class(summary is not None, "-pending")

    _mode: bool | None = None

    def show_mode(self, type_through: bool) -> None:
        """Switch the badge and colours between line mode and type-through."""
        if self._mode is type_through:
            return
        self._mode = type_through
        self.input.type_through = type_through
        self.set_class(type_through, "-type-through")
        badge = ("TYPE-THROUGH: every key goes to every host · F4 ends it" if type_through
                 else "line mode · F4 type-through · ^g screens")
        self.query_one("#broadcast-mode", Label).update(badge)
