"""DNS checks: the API name resolves to the VIP; each host's record matches the inventory.

Resolution is a seam, :data:`Resolver` (name -> IPv4 addresses; ``LookupError`` with the
reason when the name has none), so the DNS work of another module can be plugged in.
The working default, :class:`ServerResolver`, asks the inventory's DNS server directly
(dnspython, over TCP, reached through the :class:`~tui.core.fleet.dial.Dialer` like every
cluster service), the authoritative answer rather than a cache's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from tui.core.fleet.dial import Dialer
from tui.core.health.http_checks import ms
from tui.core.health.model import Outcome

__all__ = ["Resolver", "ServerResolver", "record_check", "zone_check"]

Resolver = Callable[[str], Awaitable[tuple[str, ...]]]
"""Resolve a name to its IPv4 addresses; raise LookupError (the reason) when it has none."""


class ServerResolver:
    """Ask DNS server ``server:port`` for A records over TCP, through ``dialer``.

    TCP connections are kept and reused (one query at a time on each, at most
    ``connections`` of them), and opened again when the server has closed them (servers
    close idle TCP clients after a while).

    Args:
        server: the DNS server's address (the inventory's ``dns.server``).
        port: its port.
        dialer: where to connect for it.
        timeout: seconds per query.
        connections: TCP connections kept at most.
    """

    def __init__(self, server: str, port: int, dialer: Dialer, *, timeout: float = 2.0,
                 connections: int = 4) -> None:
        self.server, self.port, self.dialer, self.timeout = server, port, dialer, timeout
        self._idle: list[dns.asyncbackend.StreamSocket] = []
        self._slots = asyncio.Semaphore(max(1, connections))

    async def __call__(self, name: str) -> tuple[str, ...]:
        """The A records of ``name`` (CNAMEs followed by the server's answer)."""
        response = await self.query(name, dns.rdatatype.A)
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            raise LookupError(f"{self.server} answers {dns.rcode.to_text(rcode)} for {name}")
        addresses = tuple(str(rdata.address) for rrset in response.answer
                          if rrset.rdtype == dns.rdatatype.A for rdata in rrset)
        if not addresses:
            raise LookupError(f"{self.server} has no A record for {name}")
        return addresses

    async def query(self, name: str, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        """The server's answer to ``name``/``rdtype`` (any rcode).

        Raises:
            LookupError: no answer (timeout, refused connection), with the reason.
        """
        query = dns.message.make_query(name, rdtype)
        async with self._slots:
            sock = self._idle.pop() if self._idle else None
            try:
                response, sock = await self._exchange(query, sock)
            except dns.exception.Timeout:
                raise LookupError(f"the DNS server {self.server}:{self.port} did not answer "
                                  f"within {self.timeout:g} s") from None
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                raise LookupError(f"the DNS server {self.server}:{self.port} failed: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
            self._idle.append(sock)
        return response

    async def _exchange(self, query: dns.message.Message,
                        sock: dns.asyncbackend.StreamSocket | None
                        ) -> tuple[dns.message.Message, dns.asyncbackend.StreamSocket]:
        """One query on ``sock`` (or a new connection); a failed socket is closed."""
        if sock is not None:
            try:
                return await dns.asyncquery.tcp(query, self.server, timeout=self.timeout,
                                                sock=sock), sock
            except BaseException as exc:
                await _close(sock)
                if not isinstance(exc, OSError | EOFError | dns.exception.DNSException):
                    raise  # cancelled (the probe's timeout): not kept, not retried
                # closed while idle: once more on a new connection
        host, port = await self.dialer.endpoint(self.server, self.port)
        backend = dns.asyncbackend.get_default_backend()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = await backend.make_socket(family, socket.SOCK_STREAM, 0, None, (host, port),
                                         self.timeout)
        try:
            return await dns.asyncquery.tcp(query, self.server, timeout=self.timeout,
                                            sock=sock), sock
        except BaseException:
            await _close(sock)
            raise

    async def close(self) -> None:
        """Close the kept connections."""
        idle, self._idle = self._idle, []
        for sock in idle:
            await _close(sock)


async def _close(sock: dns.asyncbackend.StreamSocket) -> None:
    with contextlib.suppress(Exception):
        await sock.close()


async def record_check(resolve: Resolver, name: str, expected: str, *, what: str) -> Outcome:
    """``name`` must resolve to exactly ``expected``.

    Args:
        what: who the record is for, in words (``the API VIP``, ``controller-0``).
    """
    started = time.monotonic()
    try:
        addresses = await resolve(name)
    except LookupError as exc:
        reason = exc.args[0] if exc.args else str(exc)
        return Outcome.fail(f"{name} does not resolve: {reason}",
                            verbose=f"{name} A ?\n{reason}\nexpected {expected} ({what})")
    latency = time.monotonic() - started
    verbose = f"{name} A {' '.join(addresses)}\nexpected {expected} ({what})"
    if set(addresses) == {expected}:
        return Outcome.ok(f"{name} -> {expected} in {ms(latency)}", latency, verbose,
                          facts={"addresses": list(addresses)})
    if expected in addresses:
        others = ", ".join(a for a in addresses if a != expected)
        return Outcome.warn(f"{name} -> {expected} and also {others}", latency, verbose,
                            facts={"addresses": list(addresses)})
    return Outcome.fail(f"{name} -> {', '.join(addresses)}, not {expected} ({what})", latency,
                        verbose, facts={"addresses": list(addresses)})


async def zone_check(server: ServerResolver, zone: str) -> Outcome:
    """The DNS server answers authoritatively for ``zone`` (its SOA record)."""
    started = time.monotonic()
    where = f"{server.server}:{server.port}"
    try:
        response = await server.query(zone, dns.rdatatype.SOA)
    except LookupError as exc:
        reason = exc.args[0] if exc.args else str(exc)
        return Outcome.fail(f"{zone} SOA: {reason}", verbose=f"{zone} SOA @{where}\n{reason}")
    latency = time.monotonic() - started
    rcode = dns.rcode.to_text(response.rcode())
    soa = [rdata for rrset in response.answer if rrset.rdtype == dns.rdatatype.SOA
           for rdata in rrset]
    authoritative = bool(response.flags & dns.flags.AA)
    verbose = "\n".join([f"{zone} SOA @{where}: {rcode}"
                         f"{', authoritative' if authoritative else ', NOT authoritative'}",
                         *(rrset.to_text() for rrset in response.answer)])
    if response.rcode() != dns.rcode.NOERROR or not soa:
        return Outcome.fail(f"{where} answers {rcode} without an SOA for {zone}", latency,
                            verbose)
    serial = int(soa[0].serial)
    facts: dict[str, object] = {"serial": serial, "authoritative": authoritative}
    if not authoritative:
        return Outcome.warn(f"{zone} serial {serial}, but {where} is not authoritative",
                            latency, verbose, facts=facts)
    return Outcome.ok(f"{zone} serial {serial} in {ms(latency)}", latency, verbose,
                      facts=facts)
