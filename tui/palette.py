"""Command palette provider: every screen, and the current screen's actions (ctrl+g p or F12).

A screen offers its own actions by declaring ``PALETTE`` (a tuple of
:data:`PaletteCommand`); the provider never looks at screen classes by name.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

PaletteCommand = tuple[str, str, str]
"""(name, action, help): ``screen.*`` actions run on the screen that declares them."""

COMMANDS: tuple[PaletteCommand, ...] = (
    ("Console", "app.switch_mode('console')", "every host's shell and the broadcast bar"),
    ("Hosts table", "app.switch_mode('hosts')", "connection state of every host"),
    ("Certificates", "app.switch_mode('certs')",
     "what every host holds and serves, findings, issue and push"),
    ("etcd", "app.switch_mode('etcd')", "bootstrap (KTHW doc 07) step by host, live members"),
    ("Health grid", "app.switch_mode('health')",
     "every probe of the control plane, live; g toggles the VIP guard"),
    ("DNS / VIP", "app.switch_mode('dns_vip')",
     "the zone's drift, the VIP's ipfw rules, move the API VIP"),
)
"""Commands offered on every screen."""


class HardwayCommands(Provider):
    """Screens, and the current screen's ``PALETTE``, for the command palette."""

    def _available(self) -> list[PaletteCommand]:
        own: tuple[PaletteCommand, ...] = getattr(self.screen, "PALETTE", ())
        return [*COMMANDS, *own]

    def _runner(self, action: str) -> Callable[[], object]:
        return partial(self.app.run_action, action, self.screen)

    async def discover(self) -> Hits:
        """Everything, when nothing is typed yet."""
        for name, action, help_text in self._available():
            yield DiscoveryHit(name, self._runner(action), help=help_text)

    async def search(self, query: str) -> Hits:
        """Fuzzy-match the typed text against the command names."""
        matcher = self.matcher(query)
        for name, action, help_text in self._available():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), self._runner(action), help=help_text)
