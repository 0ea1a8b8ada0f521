"""Opening a shell through the relay (tui.core.fleet.relay + tui.core.fleet.shell) when
the shell's first output arrives in the same read as the relay's OPENED.

The relay host writes OPENED and, right after it, the output buffered while the channel
opened (the login shell's first prompt): on a busy machine the app reads both frames in
one turn of its reader, so the prompt reaches the Shell before ``_open`` has resumed and
typed the setup line.  That prompt is preamble like the rest; shown, it stayed in the pane
in front of the prompt printed after the setup line: "root@worker-8:# root@worker-8:# ".
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from tui.core.fleet import relaywire as wire
from tui.core.fleet.relay import ShellRelay
from tui.core.fleet.shell import ShellOutput, ShellState
from tui.core.inventory.model import Host
from tui.core.term import Terminal

HOST = Host("worker-8", ipaddress.IPv4Address("10.10.0.28"), "worker")
PROMPT = "\x1b[?2004hroot@worker-8:# "


class Source:
    """The app fleet as the relay sees it (a FleetSource with one host)."""

    audit = None

    def host(self, name: str) -> Host:
        return HOST

    def endpoint(self, name: str) -> str:
        return "10.10.0.28:22"

    def relay_spec(self) -> Any:
        return None

    def session_keys(self) -> list[tuple[str, int, str]]:
        return []


class ScriptedRelayProcess:
    """Plays the relay process: answers the app's frames as relayhost does."""

    def __init__(self) -> None:
        self.stdout = asyncio.StreamReader()
        self.stdin = self
        self.returncode: int | None = None
        self._pending = b""

    def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= wire.HEADER.size:
            kind, number, size = wire.HEADER.unpack(self._pending[:wire.HEADER.size])
            end = wire.HEADER.size + size
            if len(self._pending) < end:
                return
            payload, self._pending = self._pending[wire.HEADER.size:end], self._pending[end:]
            self._answer(kind, number, payload)

    def _answer(self, kind: int, number: int, payload: bytes) -> None:
        if kind == wire.CONNECT:
            self.stdout.feed_data(wire.control(wire.CONNECTED, number, {
                "endpoint": "10.10.0.28:22", "user": "root"}))
        elif kind == wire.OPEN:
            # relayhost._open: OPENED, then at once the output buffered meanwhile (bash's
            # first prompt); the app finds both in its pipe
            self.stdout.feed_data(wire.frame(wire.OPENED, number)
                                  + wire.frame(wire.DATA, number, PROMPT.encode()))
        elif kind == wire.WRITE and b"__hw_id=0" in payload:  # the setup line: its echo,
            # the ready marker, then the prompt with the integration's markers
            self.stdout.feed_data(wire.frame(wire.DATA, number, (
                payload.decode().replace("\n", "\r\n") + "\x1b[?2004l\r"
                "\x1b]133;hardway;ready;bash;0\x07\x1b]133;D;0;hw=0\x07\x1b]133;A\x07"
                + PROMPT + "\x1b]133;B;hw=0\x07\x1b[K").encode()))


async def test_the_first_prompt_read_with_opened_is_preamble_not_shown_twice() -> None:
    relay = ShellRelay(Source())  # type: ignore[arg-type]
    process = ScriptedRelayProcess()
    relay._process = process  # type: ignore[assignment]
    relay._reader = asyncio.ensure_future(relay._read(process))  # type: ignore[arg-type]
    try:
        shell = await relay.open_shell("worker-8", columns=47, rows=14)
        assert shell.state == ShellState.OPEN and shell.kind == "bash"
        shown: list[str] = []
        shell.subscribe(lambda e: shown.append(e.data) if isinstance(e, ShellOutput) else None)
        pane = Terminal(47, 14)
        pane.feed("".join(shown))
        assert pane.text() == "root@worker-8:# "  # one prompt, not "...:# root@worker-8:# "
        assert shell.preamble.startswith(PROMPT)  # the login shell's prompt: hidden, kept
    finally:
        relay._stopped = True
        process.stdout.feed_eof()
        await relay._reader
