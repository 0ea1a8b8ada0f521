"""A pane says when its session was lost, whichever connection noticed first."""

from __future__ import annotations

import ipaddress

import pytest
from textual.app import App, ComposeResult

from tui.core.console.events import HostState
from tui.core.inventory.model import Host
from tui.widgets.host_pane import HostPane, PaneStatus

LOST = "connection to 10.0.0.12:22 lost"


class OnePane(App[None]):
    def compose(self) -> ComposeResult:
        yield HostPane(Host("controller-2", ipaddress.IPv4Address("10.0.0.12"), "controller"))


@pytest.mark.parametrize("then", [HostState.CONNECTING, HostState.CLOSED, HostState.FAILED])
async def test_a_ready_session_that_ends_is_marked_lost_once(then: HostState) -> None:
    """The app fleet's connection may notice first (the host is then reconnecting) or
    the shell's own (closed, failed): either way the pane says the session was lost,
    and the failure that follows with the same reason adds nothing."""
    app = OnePane()
    async with app.run_test() as pilot:
        pane = app.query_one(HostPane)
        pane.status = PaneStatus(state=HostState.READY)
        await pilot.pause()
        pane.status = PaneStatus(state=then, reason=LOST)
        await pilot.pause()
        pane.status = PaneStatus(state=HostState.FAILED, reason=LOST, retry=(1, 600.0))
        await pilot.pause()
        text = pane.terminal.text()
        assert text.count("session lost") == 1, text
        assert text.count(LOST) == 1, text
