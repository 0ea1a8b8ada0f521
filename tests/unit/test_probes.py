"""Health probes against a real local HTTPS server on 127.0.0.1 with self-made certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tui.core.health.probes import apiserver_probe, etcd_health, tls_context

Pair = tuple[bytes, bytes]  # (cert PEM, key PEM)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(cn: str = "Test Cluster CA") -> tuple[Pair, ec.EllipticCurvePrivateKey, x509.Name]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)), key, name


def make_leaf(ca: tuple[Pair, ec.EllipticCurvePrivateKey, x509.Name], cn: str,
              ips: list[str]) -> Pair:
    _pair, ca_key, ca_name = ca
    key = _key()
    now = dt.datetime.now(dt.UTC)
    sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=5))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


@pytest.fixture(scope="module")
def pki() -> dict[str, object]:
    ca = make_ca()
    other = make_ca("Other CA")
    return {
        "ca": ca[0][0],
        "server": make_leaf(ca, "kubernetes", ["127.0.0.1"]),
        "no_loopback": make_leaf(ca, "kubernetes", ["10.10.0.10"]),
        "client": make_leaf(ca, "admin", []),
        "other_ca": other[0][0],
        "foreign_client": make_leaf(other, "admin", []),
    }


Handler = Callable[[str], bytes]


@dataclass
class Server:
    """A tiny HTTPS server: answers each request with ``handler(path)`` (raw HTTP bytes)."""

    port: int = 0
    requests: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    peer_certs: list[object] = field(default_factory=list)


def response(status: int, body: str, *, chunked: bool = False) -> bytes:
    reason = {200: "OK", 403: "Forbidden", 500: "Internal Server Error",
              503: "Service Unavailable"}[status]
    data = body.encode()
    if chunked:
        half = len(data) // 2
        encoded = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n"
                           for c in (data[:half], data[half:]) if c) + b"0\r\n\r\n"
        return (f"HTTP/1.1 {status} {reason}\r\nTransfer-Encoding: chunked\r\n"
                "Content-Type: text/plain\r\n\r\n").encode() + encoded
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(data)}\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + data


async def serve(tmp: Path, pair: Pair, handler: Handler, *, client_ca: bytes | None = None,
                silent: bool = False) -> tuple[Server, asyncio.Server]:
    (tmp / "s.pem").write_bytes(pair[0])
    (tmp / "s-key.pem").write_bytes(pair[1])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "s.pem", tmp / "s-key.pem")
    state = Server()

    def on_sni(_sock: object, name: str | None, _ctx: object) -> None:
        state.sni.append(name)

    ctx.sni_callback = on_sni
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca.decode())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            state.requests.append(path)
            state.peer_certs.append(writer.get_extra_info("peercert"))
            if silent:
                await asyncio.sleep(10)
            writer.write(handler(path))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    state.port = server.sockets[0].getsockname()[1]
    return state, server


@pytest.fixture
async def closing() -> AsyncIterator[list[asyncio.Server]]:
    servers: list[asyncio.Server] = []
    yield servers
    for server in servers:
        server.close()


def apiserver_handler(path: str) -> bytes:
    if path.startswith("/livez?verbose"):
        return response(200, "[+]ping ok\n[+]etcd ok\nhealthz check passed\n")
    if path in ("/livez", "/readyz", "/healthz"):
        return response(200, "ok")
    if path == "/version":
        return response(200, '{"gitVersion": "v1.18.6"}', chunked=True)
    return response(403, '{"kind":"Status","code":403}')


async def test_apiserver_probe_verifies_against_the_ca(tmp_path: Path, pki: dict,
                                                       closing: list) -> None:
    state, server = await serve(tmp_path, pki["server"], apiserver_handler)
    closing.append(server)
    result = await apiserver_probe("127.0.0.1", state.port, ca_pem=pki["ca"])
    assert result.ok, result.detail
    assert result.status == 200 and result.body == "ok"
    assert result.latency is not None and 0 < result.latency < 5
    assert result.detail.startswith("livez 200 in ") and result.detail.endswith(" s")
    assert result.target == f"https://127.0.0.1:{state.port}/livez"
    assert state.requests == ["/livez"]
    assert state.sni == [None], "no SNI may be sent to kube-apiserver for an IP address"


async def test_verbose_and_chunked_answers(tmp_path: Path, pki: dict, closing: list) -> None:
    state, server = await serve(tmp_path, pki["server"], apiserver_handler)
    closing.append(server)
    verbose = await apiserver_probe("127.0.0.1", state.port, "/livez?verbose",
                                    ca_pem=pki["ca"])
    assert verbose.ok and "[+]ping ok" in verbose.body
    version = await apiserver_probe("127.0.0.1", state.port, "/version", ca_pem=pki["ca"])
    assert version.ok and version.body == '{"gitVersion": "v1.18.6"}'
    forbidden = await apiserver_probe("127.0.0.1", state.port, "/readyz/etcd",
                                      ca_pem=pki["ca"])
    assert not forbidden.ok and forbidden.status == 403


async def test_wrong_ca_fails_with_a_plain_reason(tmp_path: Path, pki: dict,
                                                  closing: list) -> None:
    state, server = await serve(tmp_path, pki["server"], apiserver_handler)
    closing.append(server)
    result = await apiserver_probe("127.0.0.1", state.port, ca_pem=pki["other_ca"])
    assert not result.ok and result.status is None
    assert "does not verify against the CA" in result.detail
    unverified = await apiserver_probe("127.0.0.1", state.port)
    assert unverified.ok, "without a CA the probe only checks health"


async def test_certificate_without_the_dialled_address(tmp_path: Path, pki: dict,
                                                       closing: list) -> None:
    """The seed's bug: a serving certificate without 127.0.0.1 fails the probe."""
    state, server = await serve(tmp_path, pki["no_loopback"], apiserver_handler)
    closing.append(server)
    result = await apiserver_probe("127.0.0.1", state.port, ca_pem=pki["ca"])
    assert not result.ok
    assert "does not list 127.0.0.1 among its SANs" in result.detail


async def test_unhealthy_answer_names_the_failing_checks(tmp_path: Path, pki: dict,
                                                         closing: list) -> None:
    body = "[+]ping ok\n[-]etcd failed: reason withheld\nhealthz check failed\n"
    state, server = await serve(tmp_path, pki["server"], lambda _p: response(500, body))
    closing.append(server)
    result = await apiserver_probe("127.0.0.1", state.port, "/readyz?verbose",
                                   ca_pem=pki["ca"])
    assert not result.ok and result.status == 500
    assert result.detail == "readyz 500: [-]etcd failed: reason withheld"


async def test_refused_and_silent_servers(tmp_path: Path, pki: dict, closing: list) -> None:
    state, server = await serve(tmp_path, pki["server"], apiserver_handler, silent=True)
    closing.append(server)
    result = await apiserver_probe("127.0.0.1", state.port, ca_pem=pki["ca"], timeout=0.3)
    assert not result.ok and "no answer from 127.0.0.1" in result.detail
    server.close()
    await server.wait_closed()
    refused = await apiserver_probe("127.0.0.1", state.port, ca_pem=pki["ca"])
    assert not refused.ok and "connection refused" in refused.detail


def etcd_handler(body: str, status: int = 200) -> Handler:
    return lambda path: response(status, body) if path == "/health" else response(403, "")


async def test_etcd_health_with_a_client_certificate(tmp_path: Path, pki: dict,
                                                     closing: list) -> None:
    state, server = await serve(tmp_path, pki["server"], etcd_handler('{"health":"true"}'),
                                client_ca=pki["ca"])
    closing.append(server)
    cert, key = pki["client"]
    result = await etcd_health("127.0.0.1", state.port, ca_pem=pki["ca"], cert_pem=cert,
                               key_pem=key)
    assert result.ok, result.detail
    assert result.detail.startswith("etcd health 200 in ")
    assert state.peer_certs[-1], "the client certificate was not presented"

    anonymous = await etcd_health("127.0.0.1", state.port, ca_pem=pki["ca"])
    assert not anonymous.ok

    foreign = await etcd_health("127.0.0.1", state.port, ca_pem=pki["ca"],
                                cert_pem=pki["foreign_client"][0],
                                key_pem=pki["foreign_client"][1])
    assert not foreign.ok


async def test_etcd_unhealthy_answer(tmp_path: Path, pki: dict, closing: list) -> None:
    state, server = await serve(
        tmp_path, pki["server"], etcd_handler('{"health":"false","reason":"NOSPACE"}', 503))
    closing.append(server)
    cert, key = pki["client"]
    result = await etcd_health("127.0.0.1", state.port, ca_pem=pki["ca"], cert_pem=cert,
                               key_pem=key)
    assert not result.ok and result.status == 503
    assert result.detail == "etcd health 503: health false (NOSPACE)"


async def test_context_from_files_and_bad_pem(tmp_path: Path, pki: dict) -> None:
    (tmp_path / "ca.pem").write_bytes(pki["ca"])
    (tmp_path / "c.pem").write_bytes(pki["client"][0])
    (tmp_path / "k.pem").write_bytes(pki["client"][1])
    ctx = tls_context(tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "k.pem")
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with pytest.raises(ValueError, match="CA certificate cannot be loaded"):
        tls_context(b"not a pem")
    with pytest.raises(ValueError, match="both"):
        tls_context(pki["ca"], cert_pem=pki["client"][0])
    with pytest.raises(ValueError, match="client certificate or key"):
        tls_context(pki["ca"], pki["client"][0], pki["foreign_client"][1])
    bad = await apiserver_probe("127.0.0.1", 1, ca_pem=b"garbage")
    assert not bad.ok and "CA certificate cannot be loaded" in bad.detail
