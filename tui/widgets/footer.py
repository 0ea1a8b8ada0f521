"""StableFooter: Textual's Footer, rebuilt only when what it shows changes.

Textual's Footer recomposes (removes and mounts a dozen FooterKey widgets, then lays out
the whole screen) every time the screen's bindings are updated, which happens on every
focus change.  On the console that is moving between panes: each rebuild cost 40-100 ms
of the UI loop while hosts stream output.  Most focus changes leave the footer's keys as
they were (in another order, at most); this footer compares which keys it would show
and skips the rebuild when they are the same.

It also shows only what fits: Textual's Footer cuts the row wherever the width ends
("f5 Reco"), hiding quit and the ctrl+g escape at 80 columns.  This one keeps whole keys,
in the screen's order, drops from the end the ones that do not fit (never quit and the
escape, whose description then says more keys are behind it), and recomposes when the
width changes what fits.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from tui.widgets.internals import FooterKey

KEEP = frozenset({"quit", "prefix"})
"""Binding ids a footer never drops: the way out and the escape to everything else."""

MORE = "More…"
"""The escape's description once keys were dropped (ctrl+g ? lists them all)."""


def key_width(key_display: str, description: str, compact: bool) -> int:
    """Cells a FooterKey takes: key and description with their padding."""
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


class StableFooter(Footer):
    """A Footer that recomposes only when its keys, labels or enabled states change, and
    shows the keys that fit its width."""

    _shown: Hashable = None
    _fitted: tuple[int, ...] = ()
    _composed = False
    """True once the keys were composed (Textual's Footer waits for the screen's first
    bindings update and composes after the next refresh: a second layout before the
    first frame; this one composes its keys with the screen, from the screen's and the
    app's bindings, and the first update then changes nothing unless the focus adds a
    shown key)."""

    def _signature(self, screen: Screen[object]) -> Hashable:
        """What :meth:`Footer.compose` would show for ``screen``'s active bindings (the
        shown ones and the command palette's key)."""
        palette = self.app.COMMAND_PALETTE_BINDING
        # A set: the order of active bindings follows the focus (a focused Input binds
        # ctrl+e itself), and a footer whose keys jump around on every focus change is
        # no better than one rebuilt each time.
        return frozenset(
            (key, binding.action, binding.description, binding.group, enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
            if binding.show or key == palette) | {("width", self._fitted)}

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Recompose (as Footer does) unless the shown bindings are unchanged."""
        if self._composed and screen.app.app_focus and screen is self.screen:
            signature = self._signature(screen)
            if signature == self._shown:
                return
            self._shown = signature
        super().bindings_changed(screen)

    def _rows(self) -> list[tuple[Binding, bool, str]]:
        """The shown bindings, one per action, in the screen's order."""
        seen: dict[str, tuple[Binding, bool, str]] = {}
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in seen:
                seen[binding.action] = (binding, enabled, tooltip)
        return list(seen.values())

    def _layout(self) -> tuple[list[tuple[Binding, bool, str]], bool]:
        """The rows that fit the current width, and whether some were dropped."""
        rows = self._rows()
        width = self.size.width or self.app.size.width
        palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None and self.show_command_palette:
            binding = palette[1]
            width -= key_width(self.app.get_key_display(binding), binding.description,
                               False)
        items = [(b, self.app.get_key_display(b),
                  key_width(self.app.get_key_display(b), b.description, self.compact))
                 for b, _e, _t in rows]
        kept, dropped = fit(items, width)
        return [rows[i] for i in kept], dropped

    def compose(self) -> ComposeResult:
        """Whole keys that fit, then the palette key (groups are not used here)."""
        rows, dropped = self._layout()
        self._fitted = tuple(id(b) for b, _e, _t in rows)
        # what is shown now: the next bindings_changed rebuilds only if it differs (each
        # rebuild of the same keys before the first frame cost 15-20 ms)
        self._shown = self._signature(self.screen)
        self._composed = True
        self.styles.grid_size_columns = len(rows)
        yield from self._keys(rows, dropped)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, _tooltip = found
                # compact, as Textual's footer shows it (the class set now: see _keys)
                yield FooterKey(binding.key, self.app.get_key_display(binding),
                                binding.description, binding.action,
                                classes="-command-palette -compact", disabled=not enabled,
                                tooltip=binding.tooltip or binding.description)

    def _keys(self, rows: list[tuple[Binding, bool, str]], dropped: bool) -> Iterator[Any]:
        for binding, enabled, tooltip in rows:
            description = MORE if dropped and binding.id == "prefix" else binding.description
            key = FooterKey(binding.key, self.app.get_key_display(binding), description,
                            binding.action, disabled=not enabled,
                            tooltip=tooltip or binding.tooltip)
            # A FooterKey starts compact and the binding below makes it follow the footer:
            # set at once, a key's mount does not add then remove "-compact" (two style
            # updates per key, 20 of the 25 before the console's first frame).
            key.set_reactive(FooterKey.compact, self.compact)
            key.set_class(self.compact, "-compact", update=False)
            yield key.data_bind(compact=Footer.compact)

    def on_resize(self, event: events.Resize) -> None:
        """Recompose when the new width changes which keys fit."""
        if not self._composed or not self.is_attached:
            return
        rows, _dropped = self._layout()
        if tuple(id(b) for b, _e, _t in rows) != self._fitted:
            self._shown = None
            self.call_later(self.recompose)
