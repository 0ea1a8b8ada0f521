"""A dnspython stand-in for BIND, for labs on machines without ``named``.

It serves one zone the way the lab's real BIND is configured (see :mod:`tui.lab.bind`),
and answers as BIND 9.18 does (the shared test module checks both side by side):

* queries over UDP and TCP: authoritative answers, NXDOMAIN / NODATA with the SOA,
  REFUSED outside the zone, TC over UDP when the answer does not fit;
* AXFR over TCP to the TSIG key only (REFUSED unsigned, as ``allow-transfer { key K; }``);
* RFC 2136 updates signed with the key (REFUSED unsigned, as ``update-policy { grant K
  zonesub ANY; }``): prerequisites (YXDOMAIN, NXDOMAIN, YXRRSET, NXRRSET), NOTZONE for
  names outside the zone, NOTAUTH for another zone, all or nothing, SOA serial + 1;
* TSIG checks as RFC 8945 and BIND: an unknown key name or algorithm -> NOTAUTH with TSIG
  error BADKEY, a wrong MAC -> NOTAUTH/BADSIG (both unsigned), a time outside the fudge
  -> NOTAUTH/BADTIME signed, with the server's clock in "other data".

Usage::

    server = StandinDnsServer("something.local", records, key_name="hardway-key",
                              key_secret=secret)
    await server.start("127.0.10.2", 5353)
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig
import dns.update
import dns.zone

from tui.core.dns.records import Record, absolute
from tui.core.dns.tsig import FUDGE, append_rr, sign
from tui.lab.bind import BindServer, named_missing_reason
from tui.lab.zonedata import zone_text

log = logging.getLogger("hardway.lab.dns")

UDP_LIMIT = 512
"""Bytes of a UDP answer without EDNS (RFC 1035); more sets TC."""


class _Reject(Exception):
    def __init__(self, rcode: dns.rcode.Rcode) -> None:
        super().__init__(dns.rcode.to_text(rcode))
        self.rcode = rcode


class StandinDnsServer:
    """One zone over UDP and TCP with RFC 2136 and TSIG.

    Args:
        zone: the zone name.
        records: its A/PTR records (SOA and NS are added: ``ns.ZONE`` at the address).
        key_name: the TSIG key allowed to update and transfer.
        key_secret: its base64 secret.
        algorithm: the key's algorithm.
        ttl: the SOA/NS TTL.
        clock: the server's clock (seconds since the epoch).
    """

    def __init__(self, zone: str, records: Sequence[Record], *, key_name: str,
                 key_secret: str, algorithm: str = "hmac-sha256", ttl: int = 300,
                 clock: Callable[[], float] = time.time) -> None:
        self.origin = dns.name.from_text(absolute(zone))
        self.records = tuple(records)
        self.key = dns.tsig.Key(absolute(key_name), key_secret, algorithm)
        self.ttl = ttl
        self.clock = clock
        self.address = ""
        self.port = 0
        self.zone: dns.zone.Zone = dns.zone.Zone(self.origin)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, address: str, port: int) -> None:
        """Load the zone and listen on ``address:port`` (UDP and TCP)."""
        self.address, self.port = address, port
        text = zone_text(self.origin.to_text(), self.records, address, ttl=self.ttl)
        self.zone = dns.zone.from_text(text, self.origin, relativize=False)
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, address, port)
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(address, port))
        except BaseException:
            self._tcp.close()
            raise
        self._udp = transport

    async def stop(self) -> None:
        """Stop listening."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
            self._tcp = None

    @property
    def serial(self) -> int:
        """The zone's SOA serial."""
        soa = self.zone.find_rdataset(self.origin, dns.rdatatype.SOA)
        return int(soa[0].serial)

    # -- transport ------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                wire = await reader.readexactly(length)
                for answer in self.handle(wire, tcp=True):
                    writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    # -- messages -------------------------------------------------------------------------

    def handle(self, wire: bytes, *, tcp: bool) -> list[bytes]:
        """The wire answers to one wire request ([] to stay silent)."""
        try:
            plain = dns.message.from_wire(wire, keyring=False)
        except dns.exception.DNSException:
            return self._formerr(wire)
        if plain.flags & dns.flags.QR:
            return []
        request: dns.message.Message = plain
        mac = b""
        if plain.tsig is not None:
            checked = self._check_tsig(wire, plain)
            if isinstance(checked, bytes):
                return [checked]
            request = checked
            mac = plain.tsig[0].mac
        signed = plain.tsig is not None
        opcode = plain.opcode()
        try:
            if opcode == dns.opcode.UPDATE:
                response = self._update(request, signed)
            elif opcode == dns.opcode.QUERY and request.question and \
                    request.question[0].rdtype == dns.rdatatype.AXFR:
                response = self._axfr(request, signed, tcp)
            elif opcode == dns.opcode.QUERY:
                response = self._query(request)
            else:
                response = _response(request, dns.rcode.NOTIMP)
        except _Reject as exc:
            response = _response(request, exc.rcode)
        if signed:
            return [sign(response, self.key, clock=self.clock, request_mac=mac).wire]
        out = response.to_wire()
        if not tcp and len(out) > UDP_LIMIT:
            response.answer.clear()
            response.authority.clear()
            response.additional.clear()
            response.flags |= dns.flags.TC
            out = response.to_wire()
        return [out]

    def _formerr(self, wire: bytes) -> list[bytes]:
        if len(wire) < 12:
            return []
        (ident, flags) = struct.unpack("!HH", wire[:4])
        header = struct.pack("!HHHHHH", ident, 0x8000 | (flags & 0x7900) | dns.rcode.FORMERR,
                             0, 0, 0, 0)
        return [header]

    def _check_tsig(self, wire: bytes, plain: dns.message.Message
                    ) -> dns.message.Message | bytes:
        """The verified request, or the wire of the TSIG error answer."""
        assert plain.tsig is not None
        rdata = plain.tsig[0]
        keyname = plain.tsig.name
        if keyname != self.key.name or rdata.algorithm != self.key.algorithm:
            return self._unsigned_error(plain, dns.rcode.BADKEY)
        try:
            return dns.message.from_wire(wire, keyring={self.key.name: self.key})
        except dns.tsig.BadSignature:
            return self._unsigned_error(plain, dns.rcode.BADSIG)
        except dns.tsig.BadTime:
            now = int(self.clock())
            other = struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF)
            response = _response(plain, dns.rcode.NOTAUTH)
            return sign(response, self.key, clock=lambda: rdata.time_signed, error=
                        dns.rcode.BADTIME, other=other, request_mac=rdata.mac).wire
        except (dns.tsig.BadKey, dns.tsig.BadAlgorithm, dns.message.UnknownTSIGKey):
            return self._unsigned_error(plain, dns.rcode.BADKEY)

    def _unsigned_error(self, plain: dns.message.Message, error: dns.rcode.Rcode) -> bytes:
        """NOTAUTH with an unsigned TSIG carrying ``error`` (BADKEY, BADSIG), as BIND."""
        assert plain.tsig is not None
        rdata = plain.tsig[0]
        response = _response(plain, dns.rcode.NOTAUTH)
        tsig = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG,
                                         rdata.algorithm, int(self.clock()), FUDGE, b"",
                                         plain.id, error, b"")
        body = tsig.to_wire() or b""
        record = (plain.tsig.name.to_wire() or b"") + struct.pack(
            "!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(body)) + body
        return append_rr(response.to_wire(), record)

    # -- queries --------------------------------------------------------------------------

    def _query(self, request: dns.message.Message) -> dns.message.Message:
        if len(request.question) != 1:
            raise _Reject(dns.rcode.FORMERR)
        question = request.question[0]
        if not question.name.is_subdomain(self.origin):
            raise _Reject(dns.rcode.REFUSED)
        response = _response(request, dns.rcode.NOERROR)
        response.flags |= dns.flags.AA
        node = self.zone.get_node(question.name)
        if node is None:
            if not self._has_descendant(question.name):
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._negative_soa())
            return response
        for rdataset in node.rdatasets:
            if question.rdtype in (rdataset.rdtype, dns.rdatatype.ANY):
                response.answer.append(_rrset(question.name, rdataset))
        if not response.answer:
            response.authority.append(self._negative_soa())
        return response

    def _has_descendant(self, name: dns.name.Name) -> bool:
        return any(other != name and other.is_subdomain(name) for other in self.zone.nodes)

    def _negative_soa(self) -> dns.rrset.RRset:
        soa = self.zone.find_rdataset(self.origin, dns.rdatatype.SOA)
        ttl = min(soa.ttl, int(soa[0].minimum))
        return dns.rrset.from_rdata(self.origin, ttl, soa[0])

    def _axfr(self, request: dns.message.Message, signed: bool,
              tcp: bool) -> dns.message.Message:
        if not tcp or not signed:
            raise _Reject(dns.rcode.REFUSED)
        if request.question[0].name != self.origin:
            raise _Reject(dns.rcode.NOTAUTH)
        response = _response(request, dns.rcode.NOERROR)
        response.flags |= dns.flags.AA
        soa = self.zone.find_rdataset(self.origin, dns.rdatatype.SOA)
        response.answer.append(_rrset(self.origin, soa))
        for name, node in sorted(self.zone.nodes.items()):
            for rdataset in node.rdatasets:
                if rdataset.rdtype != dns.rdatatype.SOA:
                    response.answer.append(_rrset(name, rdataset))
        response.answer.append(_rrset(self.origin, soa))
        return response

    # -- RFC 2136 -------------------------------------------------------------------------

    def _update(self, request: dns.message.Message, signed: bool) -> dns.message.Message:
        if not isinstance(request, dns.update.UpdateMessage) or len(request.zone) != 1 or \
                request.zone[0].rdtype != dns.rdatatype.SOA:
            raise _Reject(dns.rcode.FORMERR)
        if request.zone[0].name != self.origin:
            raise _Reject(dns.rcode.NOTAUTH)
        if not signed:
            raise _Reject(dns.rcode.REFUSED)
        for rrset in request.prerequisite:
            self._prerequisite(rrset)
        for rrset in request.update:
            if not rrset.name.is_subdomain(self.origin):
                raise _Reject(dns.rcode.NOTZONE)
        changed = False
        for rrset in request.update:
            changed = self._apply(rrset) or changed
        if changed:
            self._bump_serial()
        return _response(request, dns.rcode.NOERROR)

    def _prerequisite(self, rrset: dns.rrset.RRset) -> None:
        if rrset.ttl != 0:
            raise _Reject(dns.rcode.FORMERR)
        if not rrset.name.is_subdomain(self.origin):
            raise _Reject(dns.rcode.NOTZONE)
        rdclass = rrset.deleting or rrset.rdclass
        node = self.zone.get_node(rrset.name)
        existing = (node.get_rdataset(dns.rdataclass.IN, rrset.rdtype)
                    if node is not None and rrset.rdtype != dns.rdatatype.ANY else None)
        if rdclass == dns.rdataclass.ANY:
            if rrset.rdtype == dns.rdatatype.ANY:
                if node is None or not len(node.rdatasets):
                    raise _Reject(dns.rcode.NXDOMAIN)
            elif not existing:
                raise _Reject(dns.rcode.NXRRSET)
        elif rdclass == dns.rdataclass.NONE:
            if rrset.rdtype == dns.rdatatype.ANY:
                if node is not None and len(node.rdatasets):
                    raise _Reject(dns.rcode.YXDOMAIN)
            elif existing:
                raise _Reject(dns.rcode.YXRRSET)
        elif not existing or set(existing) != set(rrset):
            raise _Reject(dns.rcode.NXRRSET)

    def _apply(self, rrset: dns.rrset.RRset) -> bool:
        rdclass = rrset.deleting or rrset.rdclass
        apex = rrset.name == self.origin
        protected = (dns.rdatatype.SOA, dns.rdatatype.NS) if apex else ()
        if rdclass == dns.rdataclass.ANY:
            node = self.zone.get_node(rrset.name)
            if node is None:
                return False
            types = ([r.rdtype for r in node.rdatasets] if rrset.rdtype == dns.rdatatype.ANY
                     else [rrset.rdtype])
            changed = False
            for rdtype in types:
                if rdtype in protected or node.get_rdataset(dns.rdataclass.IN, rdtype) is None:
                    continue
                self.zone.delete_rdataset(rrset.name, rdtype)
                changed = True
            self._prune(rrset.name)
            return changed
        if rdclass == dns.rdataclass.NONE:
            existing = self.zone.get_rdataset(rrset.name, rrset.rdtype)
            if existing is None or rrset.rdtype in protected:
                return False
            before = len(existing)
            for rdata in rrset:
                existing.discard(rdata)
            if not len(existing):
                self.zone.delete_rdataset(rrset.name, rrset.rdtype)
                self._prune(rrset.name)
            return len(existing) != before
        if rrset.rdtype == dns.rdatatype.SOA:
            return False
        target = self.zone.find_rdataset(rrset.name, rrset.rdtype, create=True)
        before_items, before_ttl = set(target), target.ttl
        for rdata in rrset:
            target.add(rdata)
        target.ttl = rrset.ttl
        return set(target) != before_items or target.ttl != before_ttl

    def _prune(self, name: dns.name.Name) -> None:
        node = self.zone.get_node(name)
        if node is not None and not len(node.rdatasets):
            self.zone.delete_node(name)

    def _bump_serial(self) -> None:
        soa = self.zone.find_rdataset(self.origin, dns.rdatatype.SOA)
        old = soa[0]
        soa.clear()
        soa.add(old.replace(serial=(old.serial + 1) % 2**32))


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: StandinDnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            answers = self.server.handle(data, tcp=False)
        except Exception:
            log.exception("DNS stand-in failed on a UDP request")
            return
        if self.transport is not None:
            for answer in answers:
                self.transport.sendto(answer, addr)


def _response(request: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(request)
    response.tsig = None  # signed by the server itself (tui.core.dns.tsig.sign)
    response.keyring = None
    response.want_tsig_sign = False
    response.flags &= ~dns.flags.AA
    response.set_rcode(rcode)
    response.answer.clear()
    return response


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
    rrset.update(rdataset)
    return rrset




# -- for the lab: BIND when installed, else the stand-in ---------------------------------


def write_secret_file(path: Path, name: str, algorithm: str = "hmac-sha256") -> str:
    """Write a fresh TSIG key to ``path`` (mode 600) as BIND's ``key`` statement, the form
    ``tsig-keygen`` prints and ``nsupdate -k`` and hardway read; return the secret."""
    import base64
    import os
    import secrets

    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f'key "{name}" {{\n\talgorithm {algorithm};\n\tsecret "{secret}";\n}};\n')
    path.chmod(0o600)
    return secret


def lab_zone_server(zone: str, records: Sequence[Record], *, key_name: str, key_secret: str,
                    algorithm: str = "hmac-sha256", directory: Path,
                    prefer_bind: bool = True) -> BindServer | StandinDnsServer:
    """The lab's zone server: real BIND when ``named`` is installed (and preferred), else
    the stand-in; both have ``start(address, port)`` and ``stop()``.

    BIND binds only addresses configured on an interface (inside the lab's network
    namespace, or 127.0.0.1); the stand-in binds any loopback address.
    """
    if prefer_bind and named_missing_reason() is None:
        return BindServer(zone, records, key_name=key_name, key_secret=key_secret,
                          algorithm=algorithm, directory=directory)
    return StandinDnsServer(zone, records, key_name=key_name, key_secret=key_secret,
                            algorithm=algorithm)


__all__ = ["StandinDnsServer", "lab_zone_server", "write_secret_file"]
