"""StableFooter: Textual's Footer, rebuilt only when what it shows changes.

Textual's Footer recomposes (removes and mounts a dozen FooterKey widgets, then lays out
the whole screen) every time the screen's bindings are updated, which happens on every
focus change.  On the console that is moving between panes: each rebuild cost 40-100 ms
of the UI loop while hosts stream output.  Most focus changes leave the footer's keys as
they were (in another order, at most); this footer compares which keys it would show
and skips the rebuild when they are the same.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.screen import Screen
from textual.widgets import Footer

from tui.widgets.internals import footer_ready


class StableFooter(Footer):
    """A Footer that recomposes only when its keys, labels or enabled states change."""

    _shown: Hashable = None

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
            if binding.show or key == palette)

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Recompose (as Footer does) unless the shown bindings are unchanged."""
        if footer_ready(self) and screen.app.app_focus and screen is self.screen:
            signature = self._signature(screen)
            if signature == self._shown:
                return
            self._shown = signature
        super().bindings_changed(screen)
