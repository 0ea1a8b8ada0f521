"""The control socket of a lab host: how ``systemctl`` and ``journalctl`` reach the lab.

The shims in each host's ``lab-bin`` run ``tui/lab/standins/lab_ctl.py``, which sends its
argv as one JSON line ``{"tool": ..., "argv": [...]}`` over the host's control socket
(``/var/run/systemd/private`` under the host root) and copies the answer -- JSON lines
``{"o": text}``, ``{"e": text}``, then ``{"x": status}`` -- to its stdout, stderr and exit
status.  :class:`ControlServer` is the listening end; the commands themselves live in
:mod:`tui.lab.systemctl` and :mod:`tui.lab.journalctl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.lab.supervisor import Supervisor

CONTROL_SOCKET = "/var/run/systemd/private"
"""The control socket's path on a lab host (mapped under the host root)."""

MAX_REQUEST = 1 << 20


class Output:
    """Where a command writes: JSON lines to the client."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def out(self, text: str) -> None:
        """Write to the client's stdout."""
        await self._send({"o": text})

    async def err(self, text: str) -> None:
        """Write to the client's stderr."""
        await self._send({"e": text})

    async def _send(self, message: dict[str, object]) -> None:
        if not message.get("o") and not message.get("e") and "x" not in message:
            return
        self._writer.write(json.dumps(message).encode() + b"\n")
        await self._writer.drain()

    async def exit(self, status: int) -> None:
        """Tell the client its exit status (the last message)."""
        await self._send({"x": status})


def bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` (0600), even when the path is longer than
    ``sun_path`` allows (bound through ``/proc/self/fd`` of its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(os.fsencode(path)) < 100:
            sock.bind(str(path))
        else:
            fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
            try:
                sock.bind(f"/proc/self/fd/{fd}/{path.name}")
            finally:
                os.close(fd)
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


Command = Callable[["Supervisor", list[str], "Output"], Awaitable[int]]
"""A tool's implementation: (supervisor, argv, output) -> exit status."""


class ControlServer:
    """The control socket of one lab host.

    Args:
        supervisor: the host's supervisor.
        path: where the socket lives on disk.
        commands: tool name (``systemctl``) -> implementation.
        follows: tool -> predicate on argv telling whether the command streams until the
            client goes away (``journalctl -f``).
    """

    def __init__(self, supervisor: Supervisor, path: Path, commands: Mapping[str, Command],
                 follows: Mapping[str, Callable[[list[str]], bool]] | None = None) -> None:
        self.supervisor = supervisor
        self.path = path
        self.commands = dict(commands)
        self.follows = dict(follows or {})
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def open_requests(self) -> int:
        """Requests being served right now (``journalctl -f`` followers included)."""
        return len(self._tasks)

    async def start(self) -> None:
        """Listen on the socket."""
        if self._server is not None:
            return
        self._server = await asyncio.start_unix_server(self._serve, sock=bind_unix(self.path),
                                                       limit=MAX_REQUEST)

    async def close(self) -> None:
        """Stop listening and end every open request (followers included)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        out = Output(writer)
        try:
            line = await reader.readline()
            request = json.loads(line)
            tool, argv = request["tool"], [str(a) for a in request["argv"]]
            command = self.commands[tool]
            follows = self.follows.get(tool)
            if follows is not None and follows(argv):
                watcher = asyncio.ensure_future(reader.read())  # EOF: the client is gone
                job = asyncio.ensure_future(command(self.supervisor, argv, out))
                await asyncio.wait([watcher, job], return_when=asyncio.FIRST_COMPLETED)
                for pending in (watcher, job):
                    pending.cancel()
                if job.done() and not job.cancelled() and job.exception() is None:
                    await out.exit(job.result())
            else:
                await out.exit(await command(self.supervisor, argv, out))
        except (ValueError, KeyError, TypeError):
            with contextlib.suppress(OSError):
                await out.err("lab: malformed request on the control socket\n")
                await out.exit(1)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
