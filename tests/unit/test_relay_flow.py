"""The relay's per-channel batching and flow control (tui.core.fleet.relayhost._Channel)."""

from __future__ import annotations

import asyncio

from tui.core.fleet import relaywire as wire
from tui.core.fleet.relayhost import (
    FLOOD_PENDING,
    FLOOD_SIZE,
    PENDING_LIMIT,
    TYPED_WINDOW,
    _Channel,
)


class FakeChan:
    """Records pause_reading/resume_reading."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


class FakeRelay:
    """Collects the DATA frames a channel sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        kind, _, size = wire.HEADER.unpack(data[:wire.HEADER.size])
        assert kind == wire.DATA and size == len(data) - wire.HEADER.size
        self.sent.append(data[wire.HEADER.size:])


def channel() -> tuple[_Channel, FakeRelay, FakeChan]:
    relay, chan = FakeRelay(), FakeChan()
    ch = _Channel(relay, 7)  # type: ignore[arg-type]
    ch.chan = chan  # type: ignore[assignment]
    ch.opened = True
    return ch, relay, chan


async def test_an_echo_goes_at_once_and_packets_of_one_turn_are_joined() -> None:
    ch, relay, _ = channel()
    ch.received(b"l")
    ch.received(b"s")
    await asyncio.sleep(0)
    assert relay.sent == [b"ls"]


async def test_reading_stops_when_the_app_is_too_far_behind_and_resumes_on_ack() -> None:
    ch, relay, chan = channel()
    piece = b"x" * (PENDING_LIMIT // 3 + 1)
    ch.received(piece)
    await asyncio.sleep(0)
    assert relay.sent == [piece] and chan.calls == []
    ch.received(piece)
    ch.received(piece)  # in flight + buffered is now over the limit: stop reading
    assert chan.calls == ["pause"]
    await asyncio.sleep(0.05)
    assert b"".join(relay.sent) == piece * 3
    ch.acked(len(piece) * 3)  # the app has shown everything: read again
    assert chan.calls == ["pause", "resume"]


async def test_output_waits_while_the_app_has_not_acknowledged_enough() -> None:
    ch, relay, _ = channel()
    ch.unacked = PENDING_LIMIT + 1  # the app is behind
    ch.received(b"a")
    await asyncio.sleep(0.05)
    assert relay.sent == []
    ch.acked(PENDING_LIMIT + 1)
    await asyncio.sleep(0)
    assert relay.sent == [b"a"]


async def test_a_flood_switches_to_larger_rarer_pieces() -> None:
    ch, relay, _ = channel()
    ch.received(b"y" * (FLOOD_SIZE + 1))
    await asyncio.sleep(0)
    assert ch.flooding and ch.limit == FLOOD_PENDING
    ch.received(b"z")
    await asyncio.sleep(0.02)
    assert len(relay.sent) == 1  # the next piece waits for the flood interval
    await asyncio.sleep(0.12)
    assert relay.sent[1] == b"z" and not ch.flooding


class WritableChan(FakeChan):
    """Also records what is written to the host."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


async def test_typing_into_a_flood_brings_back_the_normal_pace_and_limit() -> None:
    relay, chan = FakeRelay(), WritableChan()
    ch = _Channel(relay, 7)  # type: ignore[arg-type]
    ch.chan, ch.opened = chan, True  # type: ignore[assignment]
    ch.write(b"seq 1 1000000\r")  # a line typed at a quiet prompt changes nothing
    assert ch.limit == PENDING_LIMIT and not ch.batching
    ch.received(b"y" * (FLOOD_SIZE + 1))
    await asyncio.sleep(0)
    assert ch.batching and ch.limit == FLOOD_PENDING
    ch.write(b"q")  # the user types into the flooding pane
    assert chan.written == [b"seq 1 1000000\r", b"q"]
    assert ch.flooding and not ch.batching and ch.limit == PENDING_LIMIT
    ch.received(b"y" * (FLOOD_SIZE + 1))
    await asyncio.sleep(0)
    ch.received(b"q")
    await asyncio.sleep(0.03)
    assert relay.sent[-1].endswith(b"q")  # at the normal pace, not after the flood interval
    ch.typed -= TYPED_WINDOW  # long after the last key: back to flood-sized pieces
    assert ch.batching and ch.limit == FLOOD_PENDING
