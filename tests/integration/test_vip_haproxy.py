"""HAProxy for real in front of three HTTPS backends: one stops, clients never notice
once fall x inter has passed; a backend with a certificate from another CA is DOWN.

The backends are tiny TLS servers answering /healthz and /version like kube-apiserver,
with certificates from hardway's own CA (tui.core.pki); HAProxy is Debian's, started on
loopback with the config tui.core.lb.haproxy renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import loopback
from tui.core.lb.haproxy import HaproxySettings, check_config_local, render_config
from tui.core.lb.ipfw import Backend
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.profiles import Profile

NET = loopback.network(80, 20)
VIP = f"{NET}.10"
INTER_MS = 300


class HttpsBackend:
    """An HTTPS server answering GET /healthz with ``ok`` and /version with its name."""

    def __init__(self, name: str, address: str, cert: Path, key: Path) -> None:
        self.name, self.address = name, address
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.health_checks = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.address, self.port,
                                                 ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ", 2)[1].decode()
            if path == "/healthz":
                self.health_checks += 1
                status, body = "200 OK", b"ok"
            elif path == "/version":
                status, body = "200 OK", b'{"gitVersion":"v1.18.6","host":"%s"}' % (
                    self.name.encode())
            else:
                status, body = "404 Not Found", b"not found"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: "
                         f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("haproxy-pki")
    ca = CertificateAuthority.create(directory)
    ips = (VIP, *(f"{NET}.{11 + i}" for i in range(4)), "127.0.0.1")
    issued = ca.issue(Profile(name="kubernetes", common_name="kubernetes",
                              organization="Kubernetes", dns_names=("kubernetes",),
                              ip_addresses=ips))
    (directory / "kubernetes.pem").write_bytes(issued.cert_pem)
    (directory / "kubernetes-key.pem").write_bytes(issued.key_pem)
    other_dir = tmp_path_factory.mktemp("other-ca")
    other = CertificateAuthority.create(other_dir).issue(
        Profile(name="kubernetes", common_name="kubernetes", organization="Kubernetes",
                ip_addresses=ips))
    (other_dir / "self.pem").write_bytes(other.cert_pem)
    (other_dir / "self-key.pem").write_bytes(other.key_pem)
    return {"ca": ca.cert_path, "cert": directory / "kubernetes.pem",
            "key": directory / "kubernetes-key.pem", "other_cert": other_dir / "self.pem",
            "other_key": other_dir / "self-key.pem"}


@contextlib.contextmanager
def running_haproxy(settings: HaproxySettings, directory: Path) -> Iterator[Path]:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is needed (scripts/install-test-deps.sh installs it)")
    text = render_config(settings)
    verdict = check_config_local(text)
    assert verdict.ok, verdict.output
    config = directory / "haproxy.cfg"
    config.write_text(text)
    process = subprocess.Popen(["haproxy", "-db", "-f", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield config
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def server_states(socket_path: Path) -> dict[str, str]:
    """``show stat`` over the admin socket: server name -> UP / DOWN / ..."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(b"show stat\n")
    await writer.drain()
    data = (await reader.read()).decode()
    writer.close()
    header = data.splitlines()[0].lstrip("# ").split(",")
    states = {}
    for line in data.splitlines()[1:]:
        fields = dict(zip(header, line.split(","), strict=False))
        if fields.get("svname") not in (None, "FRONTEND", "BACKEND"):
            states[fields["svname"]] = fields["status"]
    return states


async def wait_states(socket_path: Path, wanted: dict[str, str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        if socket_path.exists():
            with contextlib.suppress(OSError, IndexError):
                states = await server_states(socket_path)
                if all(states.get(k, "").startswith(v) for k, v in wanted.items()):
                    return
        await asyncio.sleep(0.1)
    raise AssertionError(f"HAProxy servers {states}, wanted {wanted}")


async def get_version(context: ssl.SSLContext, port: int) -> str | None:
    """GET /version through the VIP, TLS verified against the CA for the VIP's address."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(VIP, port, ssl=context, server_hostname=VIP), 5)
        writer.write(b"GET /version HTTP/1.1\r\nHost: kubernetes\r\nConnection: close\r\n\r\n")
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    except (TimeoutError, OSError, ssl.SSLError):
        return None
    if not response.startswith(b"HTTP/1.1 200"):
        return None
    return response.split(b'"host":"')[1].split(b'"')[0].decode()


@pytest.fixture
async def backends(pki: dict[str, Path]) -> AsyncIterator[list[HttpsBackend]]:
    started = [HttpsBackend(f"controller-{i}", f"{NET}.{11 + i}", pki["cert"], pki["key"])
               for i in range(3)]
    for backend in started:
        await backend.start()
    yield started
    for backend in started:
        await backend.stop()


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind((VIP, 0))
        return int(sock.getsockname()[1])


async def test_no_failed_requests_after_fall_times_inter(
        tmp_path: Path, pki: dict[str, Path], backends: list[HttpsBackend]) -> None:
    port = free_port()
    settings = HaproxySettings(
        vip=VIP, port=port, ca_file=str(pki["ca"]), inter_ms=INTER_MS, daemon_user=None,
        stats_socket=str(tmp_path / "admin.sock"),
        backends=tuple(Backend(b.name, b.address, b.port) for b in backends))
    client = ssl.create_default_context(cafile=str(pki["ca"]))
    with running_haproxy(settings, tmp_path):
        socket_path = tmp_path / "admin.sock"
        await wait_states(socket_path, {b.name: "UP" for b in backends})
        answers = [await get_version(client, port) for _ in range(30)]
        assert None not in answers
        assert set(answers) == {"controller-0", "controller-1", "controller-2"}
        # HAProxy starts its servers UP before the first check: wait for every backend to
        # have been checked (over verified TLS) before trusting the states.
        deadline = time.monotonic() + 10 * INTER_MS / 1000
        while not all(b.health_checks > 0 for b in backends) and time.monotonic() < deadline:
            await asyncio.sleep(INTER_MS / 1000 / 3)
        assert [b.health_checks > 0 for b in backends] == [True] * 3

        await backends[1].stop()
        await asyncio.sleep(settings.detection_seconds + 2 * INTER_MS / 1000)
        await wait_states(socket_path, {"controller-1": "DOWN"}, timeout=2)
        answers = [await get_version(client, port) for _ in range(300)]
        failed = answers.count(None)
        print(f"\nHAProxy, 1 of 3 backends down, after fall x inter = "
              f"{settings.detection_seconds:.1f} s: {failed} of 300 requests failed")
        assert failed == 0
        assert set(answers) == {"controller-0", "controller-2"}


async def test_a_backend_with_another_ca_is_down(tmp_path: Path, pki: dict[str, Path]) -> None:
    good = HttpsBackend("controller-0", f"{NET}.11", pki["cert"], pki["key"])
    bad = HttpsBackend("controller-1", f"{NET}.12", pki["other_cert"], pki["other_key"])
    for backend in (good, bad):
        await backend.start()
    try:
        settings = HaproxySettings(
            vip=VIP, port=free_port(), ca_file=str(pki["ca"]), inter_ms=INTER_MS,
            daemon_user=None, stats_socket=str(tmp_path / "admin.sock"),
            backends=(Backend(good.name, good.address, good.port),
                      Backend(bad.name, bad.address, bad.port)))
        with running_haproxy(settings, tmp_path):
            await wait_states(tmp_path / "admin.sock",
                              {"controller-0": "UP", "controller-1": "DOWN"})
            assert bad.health_checks == 0  # the TLS handshake failed: no HTTP request
    finally:
        for backend in (good, bad):
            await backend.stop()


async def test_haproxy_step_checks_before_it_replaces(fleet: object, inventory: object,
                                                      pki: dict[str, Path]) -> None:
    """On a lab host: a good config is checked with haproxy -c and installed; a config
    HAProxy refuses (a CA file that is not a certificate) fails the step and leaves the
    live file as it was."""
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory
    from tui.core.lb.haproxy import haproxy_step
    from tui.core.plan import StepFailed

    assert isinstance(fleet, Fleet) and isinstance(inventory, Inventory)
    host = inventory.controllers[0]
    config = f"/etc/haproxy-{os.getpid()}/haproxy.cfg"
    settings = HaproxySettings(vip=VIP, ca_file=f"/etc/haproxy-{os.getpid()}/ca.pem",
                               daemon_user=None,
                               backends=(Backend("controller-0", f"{NET}.11"),))
    binary = shutil.which("haproxy") or "haproxy"
    step = haproxy_step(fleet, host.name, settings, pki["ca"].read_bytes(),
                        config_path=config, reload_command="true", haproxy=binary)
    assert await step.check(host.name) is None  # type: ignore[misc]
    preview = await step.preview(host.name)  # type: ignore[misc]
    assert preview.commands[0].startswith(f"{binary} -c -q -f ")
    await step.apply(host.name)  # type: ignore[misc]
    live = await fleet.get(host.name, config)
    assert f"ca-file {host.path(settings.ca_file)}" in live.decode()
    assert await step.check(host.name) is not None  # type: ignore[misc]

    broken = haproxy_step(fleet, host.name, dataclasses.replace(settings, inter_ms=500),
                          b"not a certificate\n", config_path=config, reload_command="true",
                          haproxy=binary)
    with pytest.raises(StepFailed, match="haproxy -c"):
        await broken.apply(host.name)  # type: ignore[misc]
    assert await fleet.get(host.name, config) == live  # untouched
    assert await fleet.get(host.name, settings.ca_file) == pki["ca"].read_bytes()
