"""Stalled hosts against a real OpenSSH sshd: keepalives (from ssh_config when set) declare a
frozen host lost in bounded time and say it stalled; a timeout whose kill cannot be
delivered says the connection stalled; a handshake that stalls after TCP says so."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sshd import Sshd, loopback_network, running_sshd, sshd_missing_reason
from tui.core.fleet.events import Exited, Failed, Output
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.model import Host, SSHOptions

pytestmark = [
    pytest.mark.sshd,
    pytest.mark.skipif(sshd_missing_reason() is not None, reason=sshd_missing_reason() or ""),
]

NET = loopback_network()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), address=f"{NET}.40") as sshd:
        yield sshd


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found += [int(entry), *descendants(int(entry))]
    return found


@contextlib.contextmanager
def frozen(server: Sshd) -> Iterator[list[int]]:
    """SIGSTOP every per-connection sshd process (the host freezes), SIGCONT after."""
    pids = [p for p in descendants(server.process.pid)
            if Path(f"/proc/{p}/comm").read_text().strip().startswith("sshd")]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def fleet_for(tmp: Path, server: Sshd, config: str | None = None, **kwargs: object) -> Fleet:
    known = tmp / "known_hosts"
    known.write_text(server.known_hosts_line())
    config_path = None
    if config is not None:
        config_path = tmp / "ssh_config"
        config_path.write_text(config)
    host = Host("frozen", ipaddress.IPv4Address(server.address), "controller",
                ssh=SSHOptions(user=server.user, identity=server.client_key_path,
                               port=server.port, known_hosts=known, config=config_path))
    policy = HostKeyPolicy("strict", record_file=tmp / "record", user_files=False)
    return Fleet([host], host_keys=policy, use_user_config=False, **kwargs)  # type: ignore[arg-type]


async def run_frozen(fleet: Fleet, server: Sshd, command: str,
                     timeout: float | None) -> list[object]:
    """Run ``command``, freeze the host once it started; its final events (a frozen host
    never answers: without the mechanism under test this would wait forever, so a
    guard ends it after 40 s and the test fails)."""
    finals: list[object] = []

    async def follow() -> None:
        freeze: contextlib.ExitStack = contextlib.ExitStack()
        with freeze:
            async for event in fleet.stream(None, command, timeout=timeout):
                if isinstance(event, Output) and "started" in event.data:
                    await asyncio.sleep(0.2)
                    freeze.enter_context(frozen(server))
                elif isinstance(event, Exited | Failed):
                    finals.append(event)

    async with fleet:
        await asyncio.wait_for(follow(), 40)
    return finals


async def test_keepalives_from_ssh_config_declare_a_frozen_host_stalled(
        tmp_path: Path, server: Sshd) -> None:
    fleet = fleet_for(tmp_path, server, "Host *\n  ServerAliveInterval 1\n"
                      "  ServerAliveCountMax 2\n")
    finals = await run_frozen(fleet, server, "echo started; sleep 600", None)
    assert len(finals) == 1 and isinstance(finals[0], Failed), finals
    reason = finals[0].reason
    assert reason.startswith(f"the connection to frozen ({server.address}:{server.port}) "
                             "stalled while the command ran: no answer to 2 keepalives sent "
                             "1 s apart"), reason


async def test_keepalives_are_on_by_default(tmp_path: Path, server: Sshd) -> None:
    fleet = fleet_for(tmp_path, server)
    async with fleet:
        await fleet.connect()
        connection = fleet._connection("frozen")
        assert connection.resolved is not None
        assert connection.resolved.options.keepalive_interval == 15.0
        assert connection.resolved.options.keepalive_count_max == 3
        assert connection.keepalive_summary == "3 keepalives sent 15 s apart"


async def test_timeout_on_a_stalled_connection_says_it_stalled(tmp_path: Path,
                                                               server: Sshd) -> None:
    fleet = fleet_for(tmp_path, server)
    finals = await run_frozen(fleet, server, "echo started; sleep 600", 1.0)
    assert len(finals) == 1 and isinstance(finals[0], Failed), finals
    assert finals[0].reason == (
        "the command on frozen timed out after 1 s and the connection "
        f"({server.address}:{server.port}) has stalled: the host answered neither the kill "
        "nor the channel close, so the command may still be running there")


@pytest.mark.parametrize("banner", [b"SSH-2.0-OpenSSH_9.6\r\n", b""],
                         ids=["banner-then-silence", "silence"])
async def test_handshake_stall_after_tcp_says_so(tmp_path: Path, banner: bytes) -> None:
    address = f"{NET}.41"
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind((address, 0))
        listener.listen(4)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        accepted: list[socket.socket] = []

        def serve() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    peer, _ = listener.accept()
                    if banner:
                        peer.sendall(banner)
                    accepted.append(peer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            host = Host("stalls", ipaddress.IPv4Address(address), "controller",
                        ssh=SSHOptions(user="nobody", port=port))
            policy = HostKeyPolicy("strict", record_file=tmp_path / "r", user_files=False)
            async with Fleet([host], host_keys=policy, use_user_config=False,
                             connect_timeout=0.5) as fleet:
                await fleet.connect()
        finally:
            stop.set()
            thread.join(2)
            for peer in accepted:
                peer.close()
    said = ("the server sent its banner 'SSH-2.0-OpenSSH_9.6', then nothing" if banner
            else "no SSH banner came")
    assert fleet.reason("stalls") == (
        f"timed out during the SSH handshake with {address}:{port} after 0.5 s (TCP "
        f"connected, {said}); sshd there may be overloaded, stopped or not an SSH server")
