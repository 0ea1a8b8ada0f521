"""Copy bytes both ways between two stream pairs until both directions end."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

CHUNK = 65536


class _Reader(Protocol):
    async def read(self, n: int = -1) -> Any: ...


class _Writer(Protocol):
    def write(self, data: Any) -> None: ...

    async def drain(self) -> None: ...

    def write_eof(self) -> None: ...

    def close(self) -> None: ...


async def splice(a_reader: _Reader, a_writer: _Writer, b_reader: _Reader,
                 b_writer: _Writer) -> None:
    """a -> b and b -> a (asyncio or asyncssh streams), half-closing each side at EOF."""

    async def copy(reader: _Reader, writer: _Writer) -> None:
        closing = getattr(writer, "is_closing", lambda: False)
        with contextlib.suppress(Exception):
            while data := await reader.read(CHUNK):
                if closing():  # the other side has gone: stop rather than write into it
                    break
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.write_eof()

    try:
        await asyncio.gather(copy(a_reader, b_writer), copy(b_reader, a_writer))
    finally:
        for writer in (a_writer, b_writer):
            with contextlib.suppress(Exception):
                writer.close()
