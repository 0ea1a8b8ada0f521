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
from typing import TYPE_CHECKING, Protocol

from tui.core.errors import UserError

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
    """Through the SSH connection of jump host ``jump`` (a local forward per destination).

    Args:
        fleet: the fleet whose connection to ``jump`` is used (and opened when needed).
        jump: the jump host's name (a host or the hypervisor of the inventory).
    """

    def __init__(self, fleet: Fleet, jump: str) -> None:
        self._fleet = fleet
        self.jump = jump
        self._forwards: dict[tuple[str, int], tuple[asyncssh.SSHClientConnection,
                                                    asyncssh.SSHListener]] = {}
        self._lock = asyncio.Lock()

    async def endpoint(self, address: str, port: int) -> tuple[str, int]:
        """A ``127.0.0.1`` port forwarded to ``address:port`` by the jump host."""
        import asyncssh

        async with self._lock:
            try:
                conn = await self._fleet.jump_connection(self.jump)
            except UserError as exc:
                raise OSError(f"jump host {self.jump}: {exc}") from None
            key = (address, port)
            known = self._forwards.get(key)
            if known is not None and known[0] is conn:
                return "127.0.0.1", known[1].get_port()
            if known is not None:
                known[1].close()
            try:
                listener = await conn.forward_local_port("127.0.0.1", 0, address, port)
            except (asyncssh.Error, OSError) as exc:
                raise OSError(f"jump host {self.jump} cannot forward to {address}:{port}: "
                              f"{exc}") from None
            self._forwards[key] = (conn, listener)
            return "127.0.0.1", listener.get_port()

    async def close(self) -> None:
        """Close every forward."""
        async with self._lock:
            for _conn, listener in self._forwards.values():
                listener.close()
            self._forwards.clear()


def dialer_for(inventory: Inventory, fleet: Fleet) -> Dialer:
    """The dialer the inventory implies: through ``ssh.jump`` when it names one."""
    jump = inventory.ssh.jump
    if jump is None:
        jumps = {h.ssh.jump for h in inventory.controllers if h.ssh.jump}
        jump = next(iter(jumps)) if len(jumps) == 1 else None
    return DirectDialer() if jump is None else TunnelDialer(fleet, jump)


__all__ = ["Dialer", "DirectDialer", "TunnelDialer", "dialer_for"]
