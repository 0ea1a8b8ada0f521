"""Reach a host's services (etcd, kube-apiserver, the VIP, DNS over TCP) as its SSH is reached.

Product code never opens a socket to a cluster address directly.  It asks a
:class:`Dialer` where to connect for ``(address, port)`` and connects there:

* :class:`DirectDialer` answers the address itself (the inventory names no jump host);
* :class:`TunnelDialer` answers a local port forward on ``127.0.0.1`` through the jump
  host's SSH connection (``direct-tcpip``, as ``ssh -L`` does), kept open and reused, and
  opened again when the jump connection was replaced.

TLS still verifies the *original* address: connect to the endpoint, but pass the
cluster address as ``server_hostname`` (Python sends no SNI for an IP address and checks
it against the certificate's IP SANs)::

    host, port = await dialer.endpoint("10.10.0.10", 6443)
    reader, writer = await asyncio.open_connection(host, port, ssl=context,
                                                   server_hostname="10.10.0.10")
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Protocol

from tui.core.errors import UserError
from tui.core.fleet.splice import splice

if TYPE_CHECKING:  # asyncssh is imported only when a tunnel is opened
    import asyncssh

    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory


class Dialer(Protocol):
    """Where to connect to reach ``address:port`` of the cluster."""

    async def endpoint(self, address: str, port: int) -> tuple[str, int]:
        """The ``(host, port)`` to open a TCP connection to.

        Raises:
            OSError: the destination cannot be reached (through the jump host, the
                reason it gave).
        """
        ...

    async def close(self) -> None:
        """Release forwards (a no-op for direct dialling)."""
        ...


class DirectDialer:
    """No jump host: every address is dialled as it is."""

    async def endpoint(self, address: str, port: int) -> tuple[str, int]:
        """``(address, port)`` unchanged."""
        return address, port

    async def close(self) -> None:
        """Nothing to release."""


class TunnelDialer:
    """Through the SSH connection of jump host ``jump``: a local forward per destination.

    Each connection to the forward opens a ``direct-tcpip`` channel on the jump host's
    connection (as ``ssh -L`` does).  Destinations are set up concurrently (a lock per
    destination, not one for all: the first health round asks for some twenty at once),
    and the channel that checks a new destination is kept for the first connection to
    its forward rather than closed, so a first request costs one channel round trip,
    not two.  When the jump host refuses one (nothing listens
    there, the host is down), the next :meth:`endpoint` for that destination checks
    again first and raises :class:`OSError` with the jump host's reason, so callers
    report "connection refused by 10.10.0.12:2379 (through the jump host nucklehead)"
    instead of an unexplained end of stream.

    Args:
        fleet: the fleet whose connection to ``jump`` is used (and opened when needed).
        jump: the jump host's name (a host or the hypervisor of the inventory).
        open_timeout: seconds the jump host may take to connect to a destination.
    """

    def __init__(self, fleet: Fleet, jump: str, *, open_timeout: float = 10.0) -> None:
        self._fleet = fleet
        self.jump = jump
        self.open_timeout = open_timeout
        self._forwards: dict[tuple[str, int], tuple[object, asyncio.Server]] = {}
        self._failures: dict[tuple[str, int], str] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._spares: dict[tuple[str, int], tuple[object, asyncssh.SSHReader[bytes],
                                                  asyncssh.SSHWriter[bytes]]] = {}

    async def endpoint(self, address: str, port: int) -> tuple[str, int]:
        """A ``127.0.0.1`` port forwarded to ``address:port`` by the jump host.

        Raises:
            OSError: the jump host cannot be reached, or refused this destination the last
                time and still does (its reason).
        """
        try:
            conn = await self._fleet.jump_connection(self.jump)
        except UserError as exc:
            raise OSError(f"jump host {self.jump}: {exc}") from None
        key = (address, port)
        async with self._locks.setdefault(key, asyncio.Lock()):
            known = self._forwards.get(key)
            if key in self._failures or known is None or known[0] is not conn:
                await self._recheck(conn, address, port)  # a reason now, not an EOF later
            if known is not None and known[0] is conn:
                return "127.0.0.1", known[1].sockets[0].getsockname()[1]
            if known is not None:
                known[1].close()

            async def forward(reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
                # the handler's own task: ending it quietly when the loop shuts down
                # (Python 3.11's start_server reports a cancelled handler as an error)
                with contextlib.suppress(asyncio.CancelledError):
                    await self._forward(conn, address, port, reader, writer)

            server = await asyncio.start_server(forward, "127.0.0.1", 0)
            self._forwards[key] = (conn, server)
            return "127.0.0.1", server.sockets[0].getsockname()[1]

    async def _open(self, conn: asyncssh.SSHClientConnection, address: str,
                    port: int) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
        import asyncssh

        try:
            async with asyncio.timeout(self.open_timeout):
                return await conn.open_connection(address, port, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            raise OSError(f"{exc.reason or 'connect failed'} ({address}:{port} through the "
                          f"jump host {self.jump})") from None
        except TimeoutError:
            raise OSError(f"the jump host {self.jump} could not connect to {address}:{port} "
                          f"within {self.open_timeout:g} s (is the host up?)") from None

    async def _recheck(self, conn: asyncssh.SSHClientConnection, address: str,
                       port: int) -> None:
        key = (address, port)
        try:
            reader, writer = await self._open(conn, address, port)
        except OSError as exc:
            self._failures[key] = str(exc)
            raise
        self._failures.pop(key, None)
        old = self._spares.pop(key, None)
        if old is not None:
            old[2].close()
        self._spares[key] = (conn, reader, writer)  # the first connection's channel

    def _take_spare(self, conn: asyncssh.SSHClientConnection, key: tuple[str, int]
                    ) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]] | None:
        spare = self._spares.pop(key, None)
        if spare is None:
            return None
        owner, reader, writer = spare
        if owner is conn and not writer.is_closing() and not reader.at_eof():
            return reader, writer
        writer.close()
        return None

    async def _forward(self, conn: asyncssh.SSHClientConnection, address: str, port: int,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            spare = self._take_spare(conn, (address, port))
            chan_reader, chan_writer = spare or await self._open(conn, address, port)
        except OSError as exc:
            self._failures[(address, port)] = str(exc)
            writer.close()
            return
        except Exception:  # the jump connection went away: the caller sees the stream end
            writer.close()
            return
        self._failures.pop((address, port), None)
        await splice(reader, writer, chan_reader, chan_writer)

    async def close(self) -> None:
        """Close every forward (and the channels kept for a first connection)."""
        for _conn, server in self._forwards.values():
            server.close()
        self._forwards.clear()
        for _owner, _reader, writer in self._spares.values():
            writer.close()
        self._spares.clear()


def dialer_for(inventory: Inventory, fleet: Fleet) -> Dialer:
    """The dialer the inventory implies: through ``ssh.jump`` when it names one."""
    jump = inventory.ssh.jump
    if jump is None:
        jumps = {h.ssh.jump for h in inventory.controllers if h.ssh.jump}
        jump = next(iter(jumps)) if len(jumps) == 1 else None
    return DirectDialer() if jump is None else TunnelDialer(fleet, jump)


__all__ = ["Dialer", "DirectDialer", "TunnelDialer", "dialer_for"]
