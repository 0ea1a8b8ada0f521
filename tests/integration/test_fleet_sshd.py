"""The fleet against a real OpenSSH sshd on loopback (host keys, ProxyJump, kills, SFTP)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.sshd import Sshd, free_port, loopback_network, running_sshd, sshd_missing_reason
from tui.core.audit import AuditLog
from tui.core.fleet.events import ConnState, Exited, Failed, Output
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy, HostKeyPrompt
from tui.core.inventory.model import Host, Hypervisor, SSHOptions

pytestmark = [
    pytest.mark.sshd,
    pytest.mark.skipif(sshd_missing_reason() is not None, reason=sshd_missing_reason() or ""),
]

NET = loopback_network()
FleetFactory = Callable[..., Fleet]


def make_host(server: Sshd, name: str = "target", *, jump: str | None = None,
              known_hosts: Path | None = None, identity: Path | None = None,
              vars: dict[str, str] | None = None, port: int | None = None) -> Host:
    """An inventory Host that reaches ``server``."""
    return Host(name=name, address=ipaddress.IPv4Address(server.address), role="controller",
                ssh=SSHOptions(user=server.user, identity=identity or server.client_key_path,
                               port=port or server.port, jump=jump, known_hosts=known_hosts),
                vars=vars or {})


def policy(tmp: Path, mode: str = "strict", **kwargs: object) -> HostKeyPolicy:
    """A hermetic policy: no ~/.ssh files, record file in ``tmp``."""
    return HostKeyPolicy(mode, record_file=tmp / "record_known_hosts",  # type: ignore[arg-type]
                         user_files=False, **kwargs)  # type: ignore[arg-type]


def known(tmp: Path, *servers: Sshd) -> Path:
    path = tmp / "known_hosts"
    path.write_text("".join(s.known_hosts_line() for s in servers))
    return path


def pgrep(pattern: str) -> list[str]:
    result = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True,
                            check=False)
    return [line for line in result.stdout.splitlines() if "pgrep" not in line]


async def wait_gone(pattern: str, seconds: float = 5.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = pgrep(pattern)
        if not left:
            return []
        await asyncio.sleep(0.1)
    return pgrep(pattern)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), address=f"{NET}.10") as sshd:
        yield sshd


@pytest.fixture
def fleet_for(tmp_path: Path, server: Sshd) -> FleetFactory:
    """Build fleets against ``server`` with a trusted known_hosts and an audit log.

    Each test closes its fleet with ``async with``.
    """

    def build(**kwargs: object) -> Fleet:
        host = make_host(server, known_hosts=known(tmp_path, server),
                         vars={"POD_CIDR": "10.200.0.0/24"})
        fleet = Fleet([host], host_keys=policy(tmp_path), use_user_config=False,
                      audit=AuditLog(tmp_path / "audit.jsonl"), **kwargs)  # type: ignore[arg-type]
        return fleet

    return build


# -- host keys --------------------------------------------------------------------------


async def test_strict_refuses_unknown_key(tmp_path: Path, server: Sshd) -> None:
    fleet = Fleet([make_host(server)], host_keys=policy(tmp_path), use_user_config=False)
    async with fleet:
        states = await fleet.connect()
        result = (await fleet.run(None, "true"))["target"]
    expected = (f"unknown host key for target ({server.address}:{server.port}): ED25519 key "
                f"{server.fingerprint}; verify it out of band and rerun with --accept-new to "
                "record it")
    assert states == {"target": ConnState.FAILED}
    assert fleet.reason("target").startswith(expected)
    assert result.error is not None and result.error.startswith(expected)
    assert not (tmp_path / "record_known_hosts").exists()


async def test_accept_new_records_key_then_strict_is_clean(tmp_path: Path,
                                                            server: Sshd) -> None:
    notices: list[str] = []
    accepting = policy(tmp_path, "accept-new", notify=notices.append)
    async with Fleet([make_host(server)], host_keys=accepting, use_user_config=False) as fleet:
        result = (await fleet.run(None, "echo hello"))["target"]
    assert result.ok and result.stdout == "hello\n"
    record = (tmp_path / "record_known_hosts").read_text()
    assert record.startswith(f"[{server.address}]:{server.port} {server.host_public_key}")
    assert len(notices) == 1 and server.fingerprint in notices[0]

    strict = policy(tmp_path, "strict")
    async with Fleet([make_host(server)], host_keys=strict, use_user_config=False) as fleet:
        assert await fleet.connect() == {"target": ConnState.READY}
        assert fleet.reason("target") == ""


async def test_accept_new_asks_confirm_and_once_is_not_recorded(tmp_path: Path,
                                                                 server: Sshd) -> None:
    asked: list[HostKeyPrompt] = []

    async def confirm(prompt: HostKeyPrompt) -> str:
        asked.append(prompt)
        return "once"

    accepting = policy(tmp_path, "accept-new", confirm=confirm)
    async with Fleet([make_host(server)], host_keys=accepting, use_user_config=False) as fleet:
        assert await fleet.connect() == {"target": ConnState.READY}
    assert asked == [HostKeyPrompt("target", server.address, server.port, "ED25519",
                                   server.fingerprint)]
    assert not (tmp_path / "record_known_hosts").exists()


async def test_changed_key_is_refused_without_asking(tmp_path: Path) -> None:
    address = f"{NET}.12"
    port = free_port(address)
    with running_sshd(tmp_path / "old", address=address, port=port) as old:
        known_file = known(tmp_path, old)
        old_fp = old.fingerprint
        client_key = old.client_key_path
    with running_sshd(tmp_path / "new", address=address, port=port,
                      client_key=client_key) as new:
        assert new.fingerprint != old_fp

        async def confirm(prompt: HostKeyPrompt) -> str:
            raise AssertionError("a changed key must never be offered for confirmation")

        accepting = policy(tmp_path, "accept-new", confirm=confirm)
        host = make_host(new, known_hosts=known_file)
        async with Fleet([host], host_keys=accepting, use_user_config=False) as fleet:
            result = (await fleet.run(None, "true"))["target"]
    assert result.error is not None
    assert result.error.startswith(
        f"HOST KEY CHANGED for target ({address}:{port}): the key on record "
        f"({known_file}:1) is {old_fp}, the server offered {new.fingerprint}. If the host was "
        f"reinstalled, remove the old line with `ssh-keygen -R '[{address}]:{port}' -f "
        f"{known_file}`; otherwise someone may be intercepting.")
    assert not (tmp_path / "record_known_hosts").exists()


# -- connection failures ----------------------------------------------------------------


async def test_unreachable_host_fails_fast_and_does_not_delay_others(
        tmp_path: Path, server: Sshd) -> None:
    good = make_host(server, "good", known_hosts=known(tmp_path, server))
    closed_port = free_port(server.address)
    dead = make_host(server, "dead", port=closed_port)
    fleet = Fleet([good, dead], host_keys=policy(tmp_path), use_user_config=False)
    async with fleet:
        started = time.monotonic()
        seen: list[tuple[str, float]] = []
        async for event in fleet.stream(None, "sleep 1; echo done"):
            if isinstance(event, Exited | Failed):
                seen.append((event.host, time.monotonic() - started))
                if isinstance(event, Failed):
                    assert event.reason.startswith(
                        f"connection refused by {server.address}:{closed_port}")
        total = time.monotonic() - started
    assert [name for name, _ in seen] == ["dead", "good"]
    assert seen[0][1] < 0.5
    assert 1.0 <= total < 2.5


async def test_wrong_key_is_permission_denied(tmp_path: Path, server: Sshd) -> None:
    from tests.support.sshd import write_key

    stranger = tmp_path / "stranger"
    write_key(stranger)
    host = make_host(server, known_hosts=known(tmp_path, server), identity=stranger)
    async with Fleet([host], host_keys=policy(tmp_path), use_user_config=False) as fleet:
        await fleet.connect()
    assert fleet.state("target") == ConnState.FAILED
    assert fleet.reason("target").startswith(
        f"permission denied (publickey) for user {server.user} at "
        f"{server.address}:{server.port}")


async def test_connect_timeout_names_the_endpoint(tmp_path: Path) -> None:
    import socket

    address = f"{NET}.13"
    with socket.socket() as listener:  # accepts TCP but never speaks SSH
        listener.bind((address, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        host = Host("silent", ipaddress.IPv4Address(address), "controller",
                    ssh=SSHOptions(user="nobody", port=port))
        async with Fleet([host], host_keys=policy(tmp_path), use_user_config=False,
                         connect_timeout=0.5) as fleet:
            await asyncio.wait_for(fleet.connect(), 30)  # the silent peer never answers
    # TCP connects (the kernel accepts into the backlog): the SSH handshake is what stalls
    assert fleet.reason("silent") == (
        f"timed out during the SSH handshake with {address}:{port} after 0.5 s (TCP "
        "connected, no SSH banner came); sshd there may be overloaded, stopped or not an SSH "
        "server")


# -- ProxyJump --------------------------------------------------------------------------


async def test_proxyjump_through_hypervisor(tmp_path: Path) -> None:
    with running_sshd(tmp_path / "hv", address=f"{NET}.20", log_level="DEBUG1") as jump, \
            running_sshd(tmp_path / "target", address=f"{NET}.21",
                         client_key=tmp_path / "hv" / "client_ed25519") as target:
        known_file = known(tmp_path, jump, target)
        hypervisor = Hypervisor(
            name="hv", address=jump.address,
            ssh=SSHOptions(user=jump.user, identity=jump.client_key_path, port=jump.port,
                           known_hosts=known_file))
        host = make_host(target, "controller-0", jump="hv", known_hosts=known_file)
        fleet = Fleet([host], jump_hosts={"hv": hypervisor}, host_keys=policy(tmp_path),
                      use_user_config=False)
        async with fleet:
            result = (await fleet.run(None, "echo $HOST_NAME"))["controller-0"]
            assert fleet.state("hv") == ConnState.READY
        jump_log = jump.log()
        target_log = target.log()
    assert result.ok, result
    assert result.stdout == "controller-0\n"
    assert f"target {target.address} port {target.port}" in jump_log
    assert "Accepted publickey for" in target_log


async def test_proxyjump_failure_names_the_jump_host(tmp_path: Path, server: Sshd) -> None:
    closed = free_port(f"{NET}.22")
    hypervisor = Hypervisor(name="hv", address=f"{NET}.22",
                            ssh=SSHOptions(user=server.user, port=closed))
    host = make_host(server, jump="hv", known_hosts=known(tmp_path, server))
    async with Fleet([host], jump_hosts={"hv": hypervisor}, host_keys=policy(tmp_path),
                     use_user_config=False) as fleet:
        result = (await fleet.run(None, "true"))["target"]
    assert result.error is not None
    assert result.error.startswith(f"jump host hv: connection refused by {NET}.22:{closed}")


# -- exec -------------------------------------------------------------------------------


async def test_exports_substitution_streams_and_status(fleet_for: FleetFactory) -> None:
    fleet = fleet_for()
    async with fleet:
        results = await fleet.run(
            None, "echo $HOST_NAME $INTERNAL_IP $ETCD_NAME $POD_CIDR; echo {name}-{ip}-{POD_CIDR}"
                  " ${HOST_NAME} {unknown} {a,b}; echo oops >&2; exit 3")
    result = results["target"]
    ip = fleet.host("target").address
    assert result.stdout == (f"target {ip} target 10.200.0.0/24\n"
                             f"target-{ip}-10.200.0.0/24 target {{unknown}} {{a,b}}\n")
    assert result.stderr == "oops\n"
    assert result.status == 3 and result.error is None


async def test_utf8_split_across_reads_is_decoded_whole(fleet_for: FleetFactory) -> None:
    fleet = fleet_for()
    chunks: list[str] = []
    async with fleet:
        async for event in fleet.stream(None, r"printf '\303'; sleep 0.3; printf '\251\n'"):
            if isinstance(event, Output):
                chunks.append(event.data)
    assert "".join(chunks) == "é\n"
    assert "\ufffd" not in "".join(chunks)


async def test_timeout_kills_remote_process_and_children(fleet_for: FleetFactory) -> None:
    fleet = fleet_for()
    marker = f"sleep {int(time.time() * 1000) % 100000 + 200000}"
    running: list[str] = []
    finals = []
    async def follow() -> None:
        async for event in fleet.stream(None, f"{marker} & echo started; {marker}",
                                        timeout=1.0):
            if isinstance(event, Output) and event.data == "started\n":
                await asyncio.sleep(0.2)
                running.extend(pgrep(marker))
            elif isinstance(event, Exited | Failed):
                finals.append(event)

    async with fleet:
        await asyncio.wait_for(follow(), 60)  # the sleeps end only when killed
    assert len([line for line in running if line.endswith(marker)]) == 2, running
    assert len(finals) == 1 and isinstance(finals[0], Exited)
    assert finals[0].timed_out and finals[0].status is None
    assert await wait_gone(marker) == []


async def test_cancel_kills_remote_process(fleet_for: FleetFactory) -> None:
    fleet = fleet_for()
    marker = f"sleep {int(time.time() * 1000) % 100000 + 300000}"
    finals = []
    async with fleet, fleet.stream(None, f"echo started; {marker}") as stream:
        async for event in stream:
            if isinstance(event, Output) and "started" in event.data:
                assert pgrep(marker)
                stream.cancel()
            elif isinstance(event, Exited | Failed):
                finals.append(event)
    assert len(finals) == 1 and isinstance(finals[0], Exited) and finals[0].cancelled
    assert await wait_gone(marker) == []


async def test_pty_timeout_sends_ctrl_c(fleet_for: FleetFactory) -> None:
    fleet = fleet_for()
    marker = f"sleep {int(time.time() * 1000) % 100000 + 400000}"
    async with fleet:
        result = (await fleet.run(None, f"tty >/dev/null && echo tty; {marker}", pty=True,
                                  timeout=1.0))["target"]
    assert result.timed_out and result.stdout.startswith("tty")
    assert await wait_gone(marker) == []


async def test_stdin_input_reaches_command(fleet_for: FleetFactory) -> None:
    fleet = fleet_for()
    async with fleet:
        result = (await fleet.run(None, "wc -l", input=b"a\nb\nc\n"))["target"]
    assert result.stdout.strip() == "3"


async def test_sudo_that_needs_a_password_is_explained(fleet_for: FleetFactory) -> None:
    if not Path("/usr/bin/sudo").exists():
        pytest.skip("sudo is not installed (scripts/install-test-deps.sh installs it)")
    fleet = fleet_for()
    async with fleet:
        result = (await fleet.run(None, "id -u", sudo=True))["target"]
    assert result.error == (
        "sudo on target needs a password for user hardway-test: hardway runs `sudo -n` and "
        "cannot type passwords; allow NOPASSWD for this user in sudoers or log in as root")


async def test_connection_is_reused_and_reconnects_after_drop(fleet_for: FleetFactory) -> None:
    fleet = fleet_for()
    async with fleet:
        await fleet.run(None, "true")
        first = fleet.connection("target")
        await fleet.run(None, "true")
        assert fleet.connection("target") is first
        assert first is not None
        first.abort()  # the network drops the connection
        await asyncio.sleep(0.1)
        assert fleet.state("target") == ConnState.FAILED
        assert "lost" in fleet.reason("target")
        result = (await fleet.run(None, "echo back"))["target"]
        assert result.stdout == "back\n"
        assert fleet.connection("target") is not first


# -- SFTP and audit ---------------------------------------------------------------------


async def test_put_get_backup_and_owner_error(fleet_for: FleetFactory, server: Sshd) -> None:
    fleet = fleet_for()
    base = f"/tmp/hardway-put-{time.time_ns()}"
    path = f"{base}/etc/etcd/ca.pem"
    async with fleet:
        first = await fleet.put("target", b"one\n", path, mode=0o600)
        again = await fleet.put("target", b"one\n", path, mode=0o600)
        second = await fleet.put("target", b"two\n", path, mode=0o640)
        got = await fleet.get("target", path)
        backup = await fleet.get("target", path + ".hardway-bak")
        owned = await fleet.put("target", b"three\n", path, owner="root:root")
        listing = (await fleet.run(None, f"ls -A {base}/etc/etcd; stat -c %a {path}"))
        await fleet.run(None, f"rm -rf {base}")
    assert first.ok and first.changed and first.backup is None
    assert again.ok and not again.changed
    assert second.ok and second.backup == path + ".hardway-bak"
    assert got == b"two\n" and backup == b"one\n"
    assert owned.error == (
        f"Cannot give {path} on target to root:root: the login user {server.user} is not "
        "root, and only root may change a file's owner; log in as root or leave the owner "
        "out.")
    assert listing["target"].stdout.split() == ["ca.pem", "ca.pem.hardway-bak", "640"]


async def test_audit_records_commands_and_writes_without_secrets(
        fleet_for: FleetFactory, tmp_path: Path) -> None:
    fleet = fleet_for()
    assert fleet.audit is not None
    fleet.audit.add_secret("s3cr3t-tsig-value")
    async with fleet:
        await fleet.run(None, "echo s3cr3t-tsig-value >/dev/null; exit 4")
        await fleet.put("target", b"x", f"/tmp/hardway-audit-{time.time_ns()}/f")
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in lines] == ["exec", "put"]
    assert lines[0]["status"] == 4 and lines[0]["host"] == "target"
    assert lines[0]["command"] == "echo [REDACTED] >/dev/null; exit 4"
    assert lines[1]["status"] == 0 and lines[1]["size"] == 1
    assert "s3cr3t" not in (tmp_path / "audit.jsonl").read_text()
