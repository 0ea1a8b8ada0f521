"""HTTP(S) for the poller: connections kept alive between rounds, through the Dialer.

:class:`HttpClient` keeps idle connections per endpoint (address, port, TLS context,
server name), so a probe repeated every 2 s pays the TCP and TLS handshakes once, not
every round.  A connection that fails (reset, closed by the server while idle, a timeout
in the middle of an answer) is dropped and the next request opens a new one; a request
that finds its kept connection closed before any byte of the answer is sent again once
on a fresh connection (the server may close idle connections at any time).

``fresh=True`` opens a connection just for that request and closes it afterwards: the
VIP probe needs that, because every new TCP connection is a new draw of the round robin
(a kept connection sticks to one backend).

Every connection goes to the endpoint the :class:`~tui.core.fleet.dial.Dialer` gives for
the cluster address; TLS verifies the cluster address (or the DNS name passed as
``server_name``).  No SNI is sent for an IP address (kube-apiserver answers the SNI
``apiserver-loopback-client`` with another certificate; Python sends none for an IP).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from dataclasses import dataclass, field

from tui.core.fleet.dial import Dialer, DirectDialer
from tui.core.health.probes import HttpAnswer, read_answer

__all__ = ["Exchange", "HttpClient"]

EndpointKey = tuple[str, int, int, str]
"""(address, port, id of the TLS context or 0 for plain HTTP, server name)."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer_der: bytes | None
    opened: float = field(default_factory=time.monotonic)
    requests: int = 0

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class Exchange:
    """One request and its answer.

    Attributes:
        answer: status, headers and body.
        latency: seconds from sending the request to the whole answer (plus the
            handshakes when the connection was opened for it).
        reused: True when a kept-alive connection carried it (no handshake).
        peer_der: the server certificate (DER) of the connection, None for plain HTTP.
    """

    answer: HttpAnswer
    latency: float
    reused: bool
    peer_der: bytes | None


class HttpClient:
    """Keep-alive HTTP/1.1 client over TLS or plain TCP.

    Args:
        dialer: where to connect for a cluster address (default: directly).
        idle_per_endpoint: idle connections kept per endpoint (extra ones are closed).
    """

    def __init__(self, dialer: Dialer | None = None, *, idle_per_endpoint: int = 2) -> None:
        self.dialer = dialer or DirectDialer()
        self.idle_per_endpoint = idle_per_endpoint
        self._idle: dict[EndpointKey, list[_Connection]] = {}
        self.opened = 0
        """Connections opened so far (handshakes paid)."""

    async def request(self, address: str, port: int, path: str, *,
                      context: ssl.SSLContext | None, method: str = "GET",
                      server_name: str | None = None, host_header: str | None = None,
                      headers: dict[str, str] | None = None, body: bytes = b"",
                      fresh: bool = False) -> Exchange:
        """Send one request to ``address:port`` and read the answer.

        Args:
            address, port: the cluster address (dialled through the dialer).
            path: request target with query (``/readyz?verbose``).
            context: TLS client context, None for plain HTTP.
            method: ``GET`` or ``POST``.
            server_name: the name TLS verifies (and sends as SNI); default ``address``.
            host_header: the ``Host:`` header (default ``address:port``).
            headers: extra request headers.
            body: request body (``Content-Length`` is set).
            fresh: use a new connection and close it afterwards.

        Raises:
            OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError: it failed
                (the connection is dropped).  The caller bounds the time.
        """
        name = address if server_name is None else server_name
        key: EndpointKey = (address, port, id(context) if context else 0, name)
        wire = self._wire(method, path, host_header or _host_header(address, port),
                          headers, body, keep_alive=not fresh)
        kept = None if fresh else self._take(key)
        if kept is not None:
            started = time.monotonic()
            try:
                answer = await self._exchange(kept, wire)
            except BaseException as exc:
                kept.close()  # never kept after a failure or a cancellation
                retry = (isinstance(exc, ConnectionError | asyncio.IncompleteReadError)
                         and not getattr(exc, "partial", b""))
                if not retry:
                    raise
                # closed while idle: send again on a fresh connection
            else:
                return self._done(key, kept, answer, started, reused=True, fresh=False)
        started = time.monotonic()
        connection = await self._open(address, port, context, name)
        try:
            answer = await self._exchange(connection, wire)
        except BaseException:
            connection.close()
            raise
        return self._done(key, connection, answer, started, reused=False, fresh=fresh)

    async def close(self) -> None:
        """Close every kept connection."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
        await asyncio.sleep(0)

    def idle_count(self) -> int:
        """Kept connections now (for tests and the benchmark)."""
        return sum(len(c) for c in self._idle.values())

    # -- internals ----------------------------------------------------------------------

    def _take(self, key: EndpointKey) -> _Connection | None:
        connections = self._idle.get(key)
        while connections:
            connection = connections.pop()
            if not connection.writer.is_closing() and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    def _done(self, key: EndpointKey, connection: _Connection, answer: HttpAnswer,
              started: float, *, reused: bool, fresh: bool) -> Exchange:
        latency = time.monotonic() - started
        connection.requests += 1
        closing = answer.headers.get("connection", "").lower() == "close"
        if fresh or closing or len(self._idle.get(key, ())) >= self.idle_per_endpoint:
            connection.close()
        else:
            self._idle.setdefault(key, []).append(connection)
        return Exchange(answer, latency, reused, connection.peer_der)

    async def _open(self, address: str, port: int, context: ssl.SSLContext | None,
                    name: str) -> _Connection:
        host, real_port = await self.dialer.endpoint(address, port)
        if context is None:
            reader, writer = await asyncio.open_connection(host, real_port)
            self.opened += 1
            return _Connection(reader, writer, None)
        sni = "" if not context.check_hostname and _is_ip(name) else name
        reader, writer = await asyncio.open_connection(host, real_port, ssl=context,
                                                       server_hostname=sni)
        self.opened += 1
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return _Connection(reader, writer, der)

    @staticmethod
    async def _exchange(connection: _Connection, wire: bytes) -> HttpAnswer:
        connection.writer.write(wire)
        await connection.writer.drain()
        return await read_answer(connection.reader)

    @staticmethod
    def _wire(method: str, path: str, host: str, headers: dict[str, str] | None, body: bytes,
              *, keep_alive: bool) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: hardway-health",
                 "Accept: */*", f"Connection: {'keep-alive' if keep_alive else 'close'}"]
        if body or method == "POST":
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _host_header(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True

