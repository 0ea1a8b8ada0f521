"""TSIG keys: a reference that holds no secret, read only when a signed message is sent.

The inventory names the key (``dns.tsig_name``, ``dns.tsig_algorithm``) and the file that
holds its secret (``dns.tsig_secret_file``).  :class:`TsigKeyRef` keeps only those; the
secret is read by :meth:`TsigKeyRef.load` at the moment an update (or a signed zone
transfer) is sent, and never kept in a value that is printed, logged or serialised.

The secret file may hold the base64 secret alone, or BIND's ``key`` statement as
``tsig-keygen`` prints it (``key "NAME" { algorithm hmac-sha256; secret "..."; };``).

:func:`sign` signs a message with an explicit clock (so tests can sign with a skewed clock,
and so the signing time is known when the server answers BADTIME); :func:`read_response`
parses the answer and reports the peer's TSIG error and, for BADTIME, the server's clock.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

from tui.core.errors import UserError
from tui.core.inventory.model import Dns

FUDGE = 300
"""Seconds of clock difference a TSIG signature tolerates (RFC 8945's recommended value)."""

TSIG_ERRORS = {16: "BADSIG", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME",
               21: "BADALG", 22: "BADTRUNC"}
"""TSIG error codes by number (16 is BADSIG in a TSIG record, BADVERS in EDNS)."""

_KEY_STATEMENT = re.compile(
    r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{(?P<body>.*?)\}\s*;', re.DOTALL | re.IGNORECASE)
_SECRET = re.compile(r'secret\s+"(?P<secret>[^"]+)"', re.IGNORECASE)
_ALGORITHM = re.compile(r'algorithm\s+"?(?P<algorithm>[\w.-]+)"?', re.IGNORECASE)


@dataclass(frozen=True)
class TsigKeyRef:
    """Where a TSIG key's secret is, without the secret.

    Attributes:
        name: the key name the server knows (e.g. ``hardway-key``).
        algorithm: ``hmac-sha256`` and friends.
        secret_file: the file holding the secret.
    """

    name: str
    algorithm: str
    secret_file: Path

    @classmethod
    def from_inventory(cls, dns_table: Dns) -> TsigKeyRef | None:
        """The key the inventory's ``[dns]`` table names (None when it names none)."""
        if dns_table.tsig_name is None or dns_table.tsig_secret_file is None:
            return None
        return cls(dns_table.tsig_name, dns_table.tsig_algorithm, dns_table.tsig_secret_file)

    def load(self) -> dns.tsig.Key:
        """Read the secret now and return the dnspython key.

        Raises:
            UserError: the file is missing, unreadable or holds no valid base64 secret
                (the message names the file, never its content).
        """
        try:
            text = self.secret_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"The TSIG secret file {self.secret_file} (dns.tsig_secret_file) "
                            f"does not exist; create it with the secret of key {self.name!r} "
                            f"(e.g. `tsig-keygen -a {self.algorithm} {self.name} > "
                            f"{self.secret_file}`), mode 600.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"The TSIG secret file {self.secret_file} (dns.tsig_secret_file) "
                            f"cannot be read: {getattr(exc, 'strerror', None) or exc}.") from None
        secret, algorithm = _parse_secret(text, self.name)
        if secret is None:
            raise UserError(f"The TSIG secret file {self.secret_file} holds no usable secret "
                            f"for key {self.name!r}: expected the base64 secret alone or a BIND "
                            f'`key "{self.name}" {{ algorithm ...; secret "..."; }};` '
                            "statement.")
        try:
            raw = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise UserError(f"The TSIG secret in {self.secret_file} is not valid base64 "
                            f"(key {self.name!r}); copy it again from the server's key "
                            "statement.") from None
        if not raw:
            raise UserError(f"The TSIG secret in {self.secret_file} is empty.")
        return dns.tsig.Key(_key_name(self.name), raw, algorithm or self.algorithm)


def _key_name(name: str) -> dns.name.Name:
    return dns.name.from_text(name)


def _parse_secret(text: str, name: str) -> tuple[str | None, str | None]:
    statements = list(_KEY_STATEMENT.finditer(text))
    if statements:
        wanted = name.rstrip(".").lower()
        chosen = next((m for m in statements
                       if m.group("name").rstrip(".").lower() == wanted), None)
        if chosen is None:
            return None, None
        secret = _SECRET.search(chosen.group("body"))
        algorithm = _ALGORITHM.search(chosen.group("body"))
        return (secret.group("secret").strip() if secret else None,
                algorithm.group("algorithm") if algorithm else None)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith(("#", ";", "//"))]
    if len(lines) != 1 or " " in lines[0]:
        return None, None
    return lines[0], None


@dataclass(frozen=True)
class Signed:
    """A signed message on the wire.

    Attributes:
        wire: the bytes to send.
        mac: the request MAC (the response's signature covers it).
        time_signed: the signing time (seconds since the epoch).
    """

    wire: bytes
    mac: bytes
    time_signed: int


def sign(message: dns.message.Message, key: dns.tsig.Key, *,
         clock: Callable[[], float] = time.time, fudge: int = FUDGE, error: int = 0,
         other: bytes = b"", request_mac: bytes = b"") -> Signed:
    """Render ``message`` and append a TSIG record signed at ``clock()``.

    ``error``, ``other`` and ``request_mac`` are for a server signing a response (the
    lab's stand-in answers BADTIME with its clock in ``other``)."""
    wire = message.to_wire()
    now = int(clock())
    template = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, fudge, b"",
        message.id, error, other)
    rdata, _ctx = dns.tsig.sign(wire, key, template, now, request_mac)
    record = bytearray()
    record += key.name.to_wire() or b""
    record += struct.pack("!HHI", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0)
    body = rdata.to_wire() or b""
    record += struct.pack("!H", len(body)) + body
    return Signed(append_rr(wire, bytes(record)), rdata.mac, now)


def append_rr(wire: bytes, record: bytes) -> bytes:
    """``wire`` with one more additional record (ARCOUNT + 1)."""
    (arcount,) = struct.unpack("!H", wire[10:12])
    return wire[:10] + struct.pack("!H", arcount + 1) + wire[12:] + record


@dataclass(frozen=True)
class Response:
    """A server's answer to a signed message.

    Attributes:
        message: the parsed response.
        tsig_error: the peer's TSIG error (``BADSIG``, ``BADKEY``, ``BADTIME``...) or None.
        server_time: for BADTIME, the server's clock from the TSIG "other data".
        verified: the response's own signature was checked and is good.
        local_error: our check of the response's signature failed (why), else None.
    """

    message: dns.message.Message
    tsig_error: str | None
    server_time: int | None
    verified: bool
    local_error: str | None = None


def read_response(wire: bytes, key: dns.tsig.Key, signed: Signed) -> Response:
    """Parse a response to ``signed``: the TSIG error if the peer gave one, else verify."""
    plain = dns.message.from_wire(wire, keyring=False, ignore_trailing=True)
    tsig_rr = plain.tsig
    error: str | None = None
    server_time: int | None = None
    if tsig_rr is not None:
        rdata = tsig_rr[0]
        if rdata.error:
            error = TSIG_ERRORS.get(rdata.error) or dns.rcode.to_text(
                dns.rcode.Rcode(rdata.error))
            if rdata.error == dns.rcode.BADTIME and len(rdata.other) == 6:
                high, low = struct.unpack("!HI", rdata.other)
                server_time = (high << 32) | low
            return Response(plain, error, server_time, False)
    if tsig_rr is None:
        return Response(plain, None, None, False, "the response carries no TSIG signature")
    try:
        verified = dns.message.from_wire(wire, keyring=key, request_mac=signed.mac)
    except dns.tsig.BadTime:
        return Response(plain, None, None, False,
                        "the response's signature time is outside the allowed clock skew")
    except (dns.tsig.BadSignature, dns.tsig.BadKey, dns.tsig.BadAlgorithm,
            dns.message.UnknownTSIGKey, dns.exception.FormError) as exc:
        return Response(plain, None, None, False,
                        f"the response's signature does not verify ({type(exc).__name__})")
    return Response(verified, None, None, True)


__all__ = ["FUDGE", "Response", "Signed", "TsigKeyRef", "read_response", "sign"]
