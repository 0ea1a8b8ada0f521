"""Ask the zone's DNS server: single RRsets (UDP with TCP fallback), zone transfers, and
raw signed exchanges over TCP.

The server is reached like every service of the cluster: through a
:class:`~tui.core.fleet.dial.Dialer`.  With the default :class:`DirectDialer` queries go
over UDP and fall back to TCP when the answer is truncated; with a jump host (a
:class:`TunnelDialer`) UDP cannot be forwarded, so every query goes over TCP through the
jump host's SSH connection.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.xfr
import dns.zone

from tui.core.dns.records import absolute
from tui.core.fleet.dial import Dialer, DirectDialer

DEFAULT_TIMEOUT = 3.0


class DnsUnreachable(Exception):
    """The server did not answer (timeout, refused connection, broken jump host).

    Attributes:
        server: ``address:port``.
        reason: what happened, in words.
    """

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"{server}: {reason}")
        self.server = server
        self.reason = reason


@dataclass(frozen=True)
class RRsetAnswer:
    """What the server answered for one name and type.

    Attributes:
        name: absolute name asked.
        rdtype: type asked.
        rcode: NOERROR, NXDOMAIN, REFUSED, SERVFAIL...
        values: the record values, sorted ("" entries never occur); empty when none.
        ttl: the RRset's TTL, None when there is no RRset.
        authoritative: the AA flag was set.
        transport: ``udp`` or ``tcp`` (the one that gave this answer).
    """

    name: str
    rdtype: str
    rcode: str
    values: tuple[str, ...]
    ttl: int | None
    authoritative: bool
    transport: str

    @property
    def exists(self) -> bool:
        """True when the server has this RRset."""
        return bool(self.values)


class DnsClient:
    """Queries to one DNS server.

    Args:
        address: the server's address (``dns.server``).
        port: its port (``dns.port``).
        dialer: how TCP reaches it (default: directly).
        timeout: seconds per query.
    """

    def __init__(self, address: str, port: int = 53, *, dialer: Dialer | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.port = port
        self.dialer: Dialer = dialer or DirectDialer()
        self.timeout = timeout

    @property
    def server(self) -> str:
        """``address:port`` for messages."""
        return f"{self.address}:{self.port}"

    @property
    def tcp_only(self) -> bool:
        """True when UDP cannot be used (the server is behind a jump host)."""
        return not isinstance(self.dialer, DirectDialer)

    async def rrset(self, name: str, rdtype: str) -> RRsetAnswer:
        """Ask for ``name``/``rdtype`` (no recursion).

        Raises:
            DnsUnreachable: no answer.
        """
        query = dns.message.make_query(absolute(name), rdtype)
        query.flags &= ~dns.flags.RD
        if self.tcp_only:
            response = dns.message.from_wire(await self.exchange_tcp(query.to_wire()))
            transport = "tcp"
        else:
            try:
                response, used_tcp = await dns.asyncquery.udp_with_fallback(
                    query, self.address, timeout=self.timeout, port=self.port)
            except (dns.exception.Timeout, TimeoutError):
                raise DnsUnreachable(self.server, f"no answer within {self.timeout:g} s "
                                     "over UDP") from None
            except OSError as exc:
                raise DnsUnreachable(self.server, exc.strerror or str(exc)) from None
            transport = "tcp" if used_tcp else "udp"
        return _answer(absolute(name), rdtype, response, transport)

    async def find_zone(self, name: str) -> str | None:
        """The zone this server serves ``name`` from (the SOA owner it answers with), or
        None when it is not authoritative for it (REFUSED, no SOA).

        Raises:
            DnsUnreachable: no answer.
        """
        query = dns.message.make_query(absolute(name), "SOA")
        query.flags &= ~dns.flags.RD
        if self.tcp_only:
            response = dns.message.from_wire(await self.exchange_tcp(query.to_wire()))
        else:
            try:
                response, _tcp = await dns.asyncquery.udp_with_fallback(
                    query, self.address, timeout=self.timeout, port=self.port)
            except (dns.exception.Timeout, TimeoutError):
                raise DnsUnreachable(self.server, f"no answer within {self.timeout:g} s "
                                     "over UDP") from None
            except OSError as exc:
                raise DnsUnreachable(self.server, exc.strerror or str(exc)) from None
        if not response.flags & dns.flags.AA:
            return None
        for rrset in (*response.answer, *response.authority):
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset.name.to_text().lower()
        return None

    async def exchange_tcp(self, wire: bytes) -> bytes:
        """Send one wire message over TCP and return the wire response.

        Raises:
            DnsUnreachable: cannot connect, or no complete answer in time.
        """
        try:
            host, port = await self.dialer.endpoint(self.address, self.port)
        except OSError as exc:
            raise DnsUnreachable(self.server, str(exc)) from None
        writer = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                return await reader.readexactly(length)
        except TimeoutError:
            raise DnsUnreachable(self.server, f"no answer within {self.timeout:g} s over "
                                 "TCP") from None
        except asyncio.IncompleteReadError:
            raise DnsUnreachable(self.server, "the server closed the TCP connection "
                                 "without answering") from None
        except OSError as exc:
            raise DnsUnreachable(self.server, exc.strerror or str(exc)) from None
        finally:
            if writer is not None:
                writer.close()

    async def axfr(self, zone: str, key: dns.tsig.Key | None = None) -> dns.zone.Zone:
        """Transfer ``zone`` (signed with ``key`` when given).

        Raises:
            DnsUnreachable: no answer.
            dns.xfr.TransferError: the server refused (its rcode is in the exception).
        """
        origin = dns.name.from_text(absolute(zone))
        result = dns.zone.Zone(origin, relativize=False)
        query, _serial = dns.xfr.make_query(result, keyring=key,
                                            keyname=key.name if key else None,
                                            keyalgorithm=key.algorithm if key
                                            else dns.tsig.default_algorithm)
        try:
            host, port = await self.dialer.endpoint(self.address, self.port)
        except OSError as exc:
            raise DnsUnreachable(self.server, str(exc)) from None
        try:
            await dns.asyncquery.inbound_xfr(host, result, query, port=port,
                                             timeout=self.timeout, lifetime=self.timeout * 4)
        except (dns.exception.Timeout, TimeoutError):
            raise DnsUnreachable(self.server, "the zone transfer did not finish in "
                                 f"{self.timeout * 4:g} s") from None
        except (EOFError, ConnectionError) as exc:
            raise DnsUnreachable(self.server, f"the zone transfer was cut off ({exc})") \
                from None
        except OSError as exc:
            raise DnsUnreachable(self.server, exc.strerror or str(exc)) from None
        return result


def _answer(name: str, rdtype: str, response: dns.message.Message,
            transport: str) -> RRsetAnswer:
    values: list[str] = []
    ttl: int | None = None
    wanted = dns.rdatatype.from_text(rdtype)
    for rrset in response.answer:
        if rrset.rdtype == wanted and rrset.name == dns.name.from_text(name):
            values.extend(_value(r.to_text()) for r in rrset)
            ttl = rrset.ttl
    return RRsetAnswer(name, rdtype, dns.rcode.to_text(response.rcode()),
                       tuple(sorted(values)), ttl,
                       bool(response.flags & dns.flags.AA), transport)


def _value(text: str) -> str:
    """A record value as compared: names absolute and lower case."""
    return text.lower()


__all__ = ["DEFAULT_TIMEOUT", "DnsClient", "DnsUnreachable", "RRsetAnswer"]
