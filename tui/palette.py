"""Command palette provider: every screen and console action by name (ctrl+p)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("Console", "app.switch_mode('console')", "every host's shell and the broadcast bar"),
    ("Hosts table", "app.switch_mode('hosts')", "connection state of every host"),
    ("Certificates", "app.switch_mode('certs')",
     "what every host holds and serves, findings, issue and push"),
    ("Interrupt the broadcast set (^C)", "screen.interrupt",
     "Ctrl-C to the foreground command on every host in the set"),
    ("Gather the last broadcast", "screen.gather",
     "exit codes and outputs grouped by host, minority outputs diffed"),
    ("Toggle type-through", "screen.type_through", "every keystroke to every host in the set"),
    ("Search the scrollback", "screen.search", "find text in the panes"),
    ("Reconnect", "screen.reconnect", "the focused host, or every host that is down"),
    ("Zoom the focused pane", "screen.zoom", "show one pane; again to tile"),
    ("Toggle transcripts", "screen.transcripts", "write per-host transcripts (secrets redacted)"),
    ("Attach with OpenSSH", "screen.attach", "the focused host in the real terminal"),
)
"""(name, action, help) — ``screen.*`` actions exist on the console screen only."""


class HardwayCommands(Provider):
    """Screens and console actions for the command palette."""

    def _available(self) -> list[tuple[str, str, str]]:
        on_console = type(self.screen).__name__ == "ConsoleScreen"
        return [c for c in COMMANDS if on_console or not c[1].startswith("screen.")]

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
