"""The lab VIP: the forwarder obeys the lab ipfw rules (round robin, a dead backend, swap).

Three TCP backends on loopback, the forwarder on a VIP address, rules written with the
lab's ipfw command exactly as `hardway vip apply` sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import loopback
from tui.core.lb.ipfw import Backend, VipLayout, swap_commands
from tui.lab.forwarder import Forwarder
from tui.lab.ipfw import run

NET = loopback.network(30, 50)


class EchoBackend:
    """A backend that answers each connection with its name."""

    def __init__(self, address: str, name: str) -> None:
        self.address, self.name = address, name
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.hits = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.address, self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        self.hits += 1
        writer.write(self.name.encode() + b"\n")
        await writer.drain()
        writer.close()


def ipfw(state: Path, argv: tuple[str, ...]) -> None:
    err = io.StringIO()
    assert run(list(argv), state, stdout=io.StringIO(), stderr=err) == 0, err.getvalue()


def apply_rules(state: Path, layout: VipLayout, backends: list[EchoBackend]) -> None:
    for command in swap_commands(layout, [Backend(b.name, b.address, b.port)
                                          for b in backends]):
        ipfw(state, command.argv[1:])


async def request(host: str, port: int) -> str | None:
    """One new connection through the VIP: the backend's name, or None when it failed."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    except OSError:
        return None
    try:
        writer.write(b"hello\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5)
    except (TimeoutError, OSError):
        line = b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return line.decode().strip() or None


@pytest.fixture
async def backends() -> AsyncIterator[list[EchoBackend]]:
    started = [EchoBackend(f"{NET}.{11 + i}", f"controller-{i}") for i in range(3)]
    for backend in started:
        await backend.start()
    yield started
    for backend in started:
        if backend.server is not None and backend.server.is_serving():
            await backend.stop()


async def test_round_robin_one_backend_down_then_swap(tmp_path: Path,
                                                      backends: list[EchoBackend]) -> None:
    state = tmp_path / "ipfw.json"
    async with Forwarder(state, [(f"{NET}.10", 0)], rng=random.Random(7)) as forwarder:
        vip, port = forwarder.bound[0]
        layout = VipLayout(vip=vip, port=port)
        apply_rules(state, layout, backends)

        answers = [await request(vip, port) for _ in range(300)]
        counts = {b.name: answers.count(b.name) for b in backends}
        assert None not in answers
        assert all(70 <= n <= 130 for n in counts.values()), counts  # ~100 each

        await backends[1].stop()  # controller-1 goes down; the rules still send it 1/3
        answers = [await request(vip, port) for _ in range(300)]
        failed = answers.count(None) / len(answers)
        print(f"\nround robin with 1 of 3 backends down: {failed:.1%} of 300 new "
              f"connections failed")
        assert 0.20 <= failed <= 0.45, failed

        apply_rules(state, layout, [backends[0], backends[2]])  # swap without controller-1
        answers = [await request(vip, port) for _ in range(100)]
        assert answers.count(None) == 0, answers
        assert set(answers) == {"controller-0", "controller-2"}
        assert forwarder.stats.refused == answers.count(None) + round(failed * 300)


async def test_keep_state_pins_a_flow_across_a_swap(tmp_path: Path,
                                                    backends: list[EchoBackend]) -> None:
    """A connection opened before a swap stays with its backend; new ones follow the
    new rules at once; a disabled set is ignored."""
    state = tmp_path / "ipfw.json"
    async with Forwarder(state, [(f"{NET}.10", 0)]) as forwarder:
        vip, port = forwarder.bound[0]
        layout = VipLayout(vip=vip, port=port)
        apply_rules(state, layout, [backends[0]])
        reader, writer = await asyncio.open_connection(vip, port)  # opened, not yet used
        await asyncio.sleep(0.05)
        apply_rules(state, layout, [backends[2]])
        writer.write(b"hi\n")
        await writer.drain()
        assert (await reader.readline()).strip() == b"controller-0"
        writer.close()
        assert await request(vip, port) == "controller-2"
        ipfw(state, ("set", "disable", str(layout.active_set)))
        assert await request(vip, port) is None  # nothing enabled but the default deny
        ipfw(state, ("set", "enable", str(layout.active_set)))
        ipfw(state, ("set", "swap", str(layout.active_set), str(layout.spare_set)))
        assert await request(vip, port) == "controller-0"  # the rollback is one swap
        assert forwarder.stats.denied == 1
