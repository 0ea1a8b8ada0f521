"""KeyFooter: the screen's keys on the bottom row, drawn by one widget.

Textual's Footer is a container of one FooterKey widget per key (a dozen on the
console) and recomposes them, then lays out the whole screen, every time the screen's
bindings are updated, which happens on every focus change: 40-100 ms of the UI loop while
hosts stream output, and a dozen more widgets to mount, style, arrange and render before
the first frame.  This footer draws the same row itself: each key as Textual's footer
shows it (the key bold in ``$footer-key-foreground``, its description, the command
palette's key docked right behind a thin bar), hover, tooltip and click included.  An
update whose keys are the same (in another order, at most) changes nothing; others only
repaint the row.

It also shows only what fits: Textual's Footer cuts the row wherever the width ends
("f5 Reco"), hiding quit and the ctrl+g escape at 80 columns.  This one keeps whole keys,
in the screen's order, and drops from the end the ones that do not fit (never quit and
the escape, whose description then says more keys are behind it).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget

KEEP = frozenset({"quit", "prefix"})
"""Binding ids a footer never drops: the way out and the escape to everything else."""

MORE = "More…"
"""The escape's description once keys were dropped (ctrl+g ? lists them all)."""

PALETTE_BAR = "▏"
"""Drawn left of the command palette's key (Textual's footer: a ``vkey`` border)."""


def key_width(key_display: str, description: str, compact: bool) -> int:
    """Cells a key takes: key and description with their padding."""
    return len(key_display) + len(description) + (1 if compact else 3)


def fit(items: list[tuple[Binding, str, int]], width: int) -> tuple[list[int], bool]:
    """Which of ``items`` (binding, key display, cells) to show in ``width`` cells.

    Returns:
        The indexes kept, in order, and whether any was dropped.  Items are dropped from
        the end, never those whose binding id is in :data:`KEEP`.
    """
    kept = list(range(len(items)))
    total = sum(cells for _b, _k, cells in items)
    for index in reversed(range(len(items))):
        if total <= width:
            break
        if items[index][0].id in KEEP:
            continue
        kept.remove(index)
        total -= items[index][2]
    return kept, len(kept) < len(items)


@dataclass(frozen=True)
class FooterItem:
    """One key on the row: where it is and what it does."""

    key: str
    """The key pressed when the item is clicked."""
    display: str
    description: str
    tooltip: str
    enabled: bool
    start: int
    """First cell of the item on the row."""
    width: int
    palette: bool = False
    """The command palette's key (docked right, compact, behind :data:`PALETTE_BAR`)."""

    def text(self, key: Style, description: Style) -> Text:
        """The item's cells: `` f5 Reconnect `` (the palette's: ``▏f12 Palette ``)."""
        if self.palette:
            return Text.assemble((self.display, key), (f" {self.description} ", description))
        return Text.assemble((f" {self.display} ", key), (f"{self.description} ", description))


class KeyFooter(Widget, can_focus=False):
    """The active bindings that fit the bottom row, drawn by this one widget."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "key-footer--key", "key-footer--description", "key-footer--hover",
        "key-footer--bar"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .key-footer--hover {
            color: $footer-key-foreground;
            background: $block-hover-background;
        }
        & > .key-footer--bar {
            color: $foreground 20%;
        }
    }
    """

    def __init__(self, *, show_command_palette: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_command_palette = show_command_palette
        self._shown: Hashable = None
        self._hover: FooterItem | None = None

    def on_mount(self) -> None:
        """Follow the screen's bindings (they change with the focus)."""
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self._shown = self._signature(self.screen)

    def on_unmount(self) -> None:
        """Stop following the screen's bindings."""
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _signature(self, screen: Screen[object]) -> Hashable:
        """What the row shows for ``screen``'s active bindings (the shown ones and the
        command palette's key)."""
        palette = self.app.COMMAND_PALETTE_BINDING
        # A set: the order of active bindings follows the focus (a focused Input binds
        # ctrl+e itself), and a row whose keys jump around on every focus change is no
        # better than one redrawn each time.
        return frozenset(
            (key, binding.action, binding.description, binding.group, enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
            if binding.show or key == palette)

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Repaint when the keys shown for ``screen`` changed (nothing to lay out)."""
        if screen is not self.screen or not self.is_attached:
            return
        signature = self._signature(screen)
        if signature != self._shown:
            self._shown = signature
            self._hover = None
            self.refresh()

    def items(self) -> list[FooterItem]:
        """The keys on the row at the current width, left to right, the palette's last."""
        screen = self.screen
        width = self.size.width or self.app.size.width
        rows: dict[str, tuple[Binding, bool, str]] = {}
        for _node, binding, enabled, tooltip in screen.active_bindings.values():
            if binding.show and binding.action not in rows:
                rows[binding.action] = (binding, enabled, tooltip)
        palette: FooterItem | None = None
        found = screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if found is not None and self.show_command_palette and \
                self.app.ENABLE_COMMAND_PALETTE:
            _node, binding, enabled, _tooltip = found
            display = self.app.get_key_display(binding)
            cells = len(display) + len(binding.description) + 3  # bar, space, padding
            palette = FooterItem(binding.key, display, binding.description,
                                 binding.tooltip or binding.description, enabled,
                                 max(0, width - cells), cells, palette=True)
            width -= key_width(display, binding.description, False)
        shown = list(rows.values())
        kept, dropped = fit([(b, self.app.get_key_display(b),
                              key_width(self.app.get_key_display(b), b.description, False))
                             for b, _e, _t in shown], width)
        items: list[FooterItem] = []
        start = 0
        for index in kept:
            binding, enabled, tooltip = shown[index]
            display = self.app.get_key_display(binding)
            description = MORE if dropped and binding.id == "prefix" else binding.description
            cells = key_width(display, description, False)
            items.append(FooterItem(binding.key, display, description,
                                    tooltip or binding.tooltip, enabled, start, cells))
            start += cells
        if palette is not None:
            items.append(palette)
        return items

    def render(self) -> Text:
        """The row: each key, blank footer between them and the palette's key."""
        width = self.size.width
        key = self.get_component_rich_style("key-footer--key")
        description = self.get_component_rich_style("key-footer--description")
        hover = self.get_component_rich_style("key-footer--hover")
        bar = self.get_component_rich_style("key-footer--bar")
        row = Text(no_wrap=True, overflow="crop", end="")
        hovered = self._hover
        for item in self.items():
            if item.start > len(row):
                row.append(" " * (item.start - len(row)))
            part = item.text(key, description)
            if item == hovered:
                part.stylize(Style(bgcolor=hover.bgcolor))  # under the pointer
            if not item.enabled:
                part.stylize(Style(dim=True))
            if item.palette:
                row.append(PALETTE_BAR, bar)
            row.append_text(part)
        if len(row) < width:
            row.append(" " * (width - len(row)))
        row.truncate(width)
        return row

    def item_at(self, x: int) -> FooterItem | None:
        """The item covering cell ``x`` of the row (None: blank footer)."""
        for item in self.items():
            if item.start <= x < item.start + item.width:
                return item
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        """Highlight the key under the pointer and show its tooltip."""
        item = self.item_at(event.x)
        if item != self._hover:
            self._hover = item
            self.tooltip = item.tooltip if item is not None and item.tooltip else None
            self.refresh()

    def on_leave(self, _event: events.Leave) -> None:
        """No key is highlighted once the pointer leaves the row."""
        if self._hover is not None:
            self._hover = None
            self.tooltip = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        """A click presses the key under the pointer (a bell for a disabled one)."""
        item = self.item_at(event.x)
        if item is None:
            return
        if item.enabled:
            self.app.simulate_key(item.key)
        else:
            self.app.bell()

    def on_resize(self, _event: events.Resize) -> None:
        """What fits depends on the width."""
        self._hover = None
        self.refresh()
