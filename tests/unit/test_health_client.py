"""The poller's HTTPS client: kept-alive connections, reconnection, the Dialer, TLS names.

A real TLS server on 127.0.0.1 (certificates from tui.core.pki) stands for a cluster
address that is only reachable through a dialer: the client is asked for 10.99.0.1 and
a mapping dialer sends it to the loopback port, while TLS still verifies 10.99.0.1.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tui.core.health.client import HttpClient
from tui.core.health.probes import apiserver_probe, tls_context
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.profiles import Profile

CLUSTER_ADDRESS = "10.99.0.1"


@dataclass
class Server:
    port: int = 0
    connections: int = 0
    requests: list[str] = field(default_factory=list)
    drop_after_first: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n")[0].decode()
                headers = head.decode().lower()
                if "content-length:" in headers:
                    length = int(headers.split("content-length:")[1].split("\r\n")[0])
                    await reader.readexactly(length)
                self.requests.append(line)
                if "/hang" in line:
                    await asyncio.Event().wait()
                close = "/close" in line
                body = b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             + (b"Connection: close\r\n" if close else b"") + b"\r\n" + body)
                await writer.drain()
                if close or self.drop_after_first:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


class MapDialer:
    """Every cluster address is reached on 127.0.0.1:``port`` (like a tunnel's forward)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[tuple[str, int]] = []

    async def endpoint(self, address: str, port: int) -> tuple[str, int]:
        self.asked.append((address, port))
        return "127.0.0.1", self.port

    async def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create(directory, key_type="ecdsa")
    issued = ca.issue(Profile("kubernetes", "kubernetes", "Kubernetes",
                              ip_addresses=(CLUSTER_ADDRESS,)), key_type="ecdsa")
    (directory / "server.pem").write_bytes(issued.cert_pem)
    (directory / "server-key.pem").write_bytes(issued.key_pem)
    return directory


@pytest.fixture
async def server(pki: Path) -> AsyncIterator[Server]:
    state = Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server-key.pem")
    listener = await asyncio.start_server(state.serve, "127.0.0.1", 0, ssl=context)
    state.port = listener.sockets[0].getsockname()[1]
    yield state
    for writer in state.writers:
        writer.close()
    listener.close()


async def test_connections_are_kept_between_requests(pki: Path, server: Server) -> None:
    dialer = MapDialer(server.port)
    client = HttpClient(dialer)
    context = tls_context((pki / "ca.pem").read_bytes())
    first = await client.request(CLUSTER_ADDRESS, 6443, "/livez", context=context)
    assert first.answer.status == 200 and not first.reused and first.peer_der
    for _ in range(5):
        again = await client.request(CLUSTER_ADDRESS, 6443, "/livez", context=context)
        assert again.reused
    assert server.connections == 1 and client.opened == 1 and len(server.requests) == 6
    assert dialer.asked == [(CLUSTER_ADDRESS, 6443)]
    assert server.requests[0] == "GET /livez HTTP/1.1"
    await client.close()


async def test_a_connection_closed_while_idle_is_opened_again(pki: Path,
                                                              server: Server) -> None:
    server.drop_after_first = True
    client = HttpClient(MapDialer(server.port))
    context = tls_context((pki / "ca.pem").read_bytes())
    for _ in range(3):
        exchange = await client.request(CLUSTER_ADDRESS, 6443, "/readyz", context=context)
        assert exchange.answer.status == 200
        await asyncio.sleep(0.01)  # the server's close arrives
    assert server.connections == 3 and len(server.requests) == 3
    await client.close()


async def test_fresh_and_connection_close_are_not_kept(pki: Path, server: Server) -> None:
    client = HttpClient(MapDialer(server.port))
    context = tls_context((pki / "ca.pem").read_bytes())
    for _ in range(3):
        await client.request(CLUSTER_ADDRESS, 6443, "/healthz", context=context, fresh=True)
    assert server.connections == 3 and client.idle_count() == 0
    await client.request(CLUSTER_ADDRESS, 6443, "/close", context=context)
    assert client.idle_count() == 0
    post = await client.request(CLUSTER_ADDRESS, 2379, "/v3/maintenance/status",
                                context=context, method="POST", body=b"{}")
    assert post.answer.status == 200
    assert server.requests[-1] == "POST /v3/maintenance/status HTTP/1.1"
    await client.close()


async def test_tls_verifies_the_cluster_address_not_the_endpoint(pki: Path,
                                                                 server: Server) -> None:
    client = HttpClient(MapDialer(server.port))
    context = tls_context((pki / "ca.pem").read_bytes())
    with pytest.raises(ssl.SSLCertVerificationError):
        await client.request("10.99.0.2", 6443, "/livez", context=context)
    result = await apiserver_probe(CLUSTER_ADDRESS, 6443, ca_pem=(pki / "ca.pem").read_bytes(),
                                   dialer=MapDialer(server.port))
    assert result.ok and result.status == 200
    await client.close()


async def test_a_request_cut_by_its_timeout_leaves_no_connection_behind(
        pki: Path, server: Server) -> None:
    client = HttpClient(MapDialer(server.port))
    context = tls_context((pki / "ca.pem").read_bytes())
    await client.request(CLUSTER_ADDRESS, 6443, "/livez", context=context)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.request(CLUSTER_ADDRESS, 6443, "/hang", context=context)
    assert client.idle_count() == 0  # the half-used connection was closed, not kept
    after = await client.request(CLUSTER_ADDRESS, 6443, "/livez", context=context)
    assert after.answer.status == 200 and not after.reused and server.connections == 2
    await client.close()
