"""The embedded lab against real clients: OpenSSH's ssh, asyncssh, SFTP, real processes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.conftest import lab_network
from tui.core.errors import UserError
from tui.core.inventory.lint import lint
from tui.core.inventory.load import load_inventory
from tui.lab.lab import Lab, LabRunner

ROOT = Path(__file__).resolve().parents[2]


def _endpoint(lab: Lab, name: str) -> tuple[str, int]:
    spec = next(s for s in lab.hosts if s.name == name)
    return spec.listen, spec.port


def connect(lab: Lab, name: str, **kwargs: object) -> Any:
    """An asyncssh connection to lab host ``name`` with strict host key checking."""
    host, port = _endpoint(lab, name)
    options: dict[str, object] = {
        "username": lab.user, "client_keys": [str(lab.client_key_path)],
        "known_hosts": str(lab.known_hosts_path), "config": None,
    }
    options.update(kwargs)
    return asyncssh.connect(host, port, **options)


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; return the last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def read_until(stream: asyncssh.SSHReader[str], pattern: str,
                     timeout: float = 5.0) -> str:
    """Read ``stream`` until the regex ``pattern`` matches the text so far."""
    text = ""
    try:
        async with asyncio.timeout(timeout):
            while not re.search(pattern, text):
                chunk = await stream.read(4096)
                if not chunk:
                    break
                text += chunk
    except TimeoutError:
        pytest.fail(f"no {pattern!r} within {timeout} s; read so far: {text!r}")
    return text


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_system_ssh_client_works_with_strict_host_keys(lab_runner: LabRunner) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("OpenSSH client (ssh) is not installed")
    lab = lab_runner.lab
    result = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config_path), "-o", "BatchMode=yes", "controller-0",
         "hostname -s; echo $HOME"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"controller-0\n{lab.host_root('controller-0')}/root\n"


async def test_exec_separates_stdout_stderr_and_reports_status(lab_runner: LabRunner) -> None:
    async with connect(lab_runner.lab, "controller-1") as conn:
        result = await conn.run("echo out; echo err >&2; exit 3")
    assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 3)


async def test_exec_environment_is_the_hosts(lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    root = lab.host_root("controller-2")
    script = ('ETCD_NAME=$(hostname -s); echo "$ETCD_NAME $(hostname -i) $(hostname -f)"; '
              'pwd; echo "$HOME|$USER|$SHELL|$TMPDIR|${TERM-unset}|$FROM_CLIENT"; echo $PATH')
    async with connect(lab, "controller-2") as conn:
        result = await conn.run(script, env={"FROM_CLIENT": "hello"})
    address = next(s.address for s in lab.hosts if s.name == "controller-2")
    assert result.stdout.splitlines() == [
        f"controller-2 {address} controller-2.lab.home.arpa",
        f"{root}/root",
        f"{root}/root|{lab.user}|/bin/sh|{root}/tmp|unset|hello",
        f"{root}/usr/local/bin:{root}/lab-bin:/usr/local/bin:/usr/bin:/bin",
    ]
    assert result.exit_status == 0


async def test_pty_shell_keeps_state_and_follows_window_size(lab_runner: LabRunner) -> None:
    async with connect(lab_runner.lab, "controller-0") as conn:
        proc = await conn.create_process(term_type="xterm", term_size=(100, 30))
        proc.stdin.write("export X=1\necho $X\n")
        # The terminal echoes the input; the command's own output is a line "1".
        assert re.search(r"[\r\n]1\r\n", await read_until(proc.stdout, r"[\r\n]1\r\n"))
        proc.stdin.write("echo $TERM; tty; stty size\n")
        text = await read_until(proc.stdout, r"\d+ \d+\r\n")
        assert "xterm\r\n" in text and "/dev/pts/" in text and "30 100\r\n" in text
        proc.change_terminal_size(120, 40)
        proc.stdin.write("stty size\n")
        assert "40 120\r\n" in await read_until(proc.stdout, r"40 120\r\n")
        proc.stdin.write("exit 3\n")
        await asyncio.wait_for(proc.wait(), 5)
    assert proc.exit_status == 3


async def test_ctrl_c_through_the_pty_interrupts_the_foreground_job(
        lab_runner: LabRunner) -> None:
    async with connect(lab_runner.lab, "controller-0") as conn:
        proc = await conn.create_process(term_type="xterm", term_size=(80, 24))
        proc.stdin.write("sleep 100\n")
        await asyncio.sleep(0.3)
        proc.stdin.write("\x03")
        proc.stdin.write("echo status=$?\n")
        text = await read_until(proc.stdout, r"status=\d+")
        assert "status=130" in text
        proc.stdin.write("exit\n")
        await asyncio.wait_for(proc.wait(), 5)


@needs_proc
async def test_closing_the_channel_leaves_no_process(lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    before = set(lab.pids("controller-1"))
    async with connect(lab, "controller-1") as conn:
        proc = await conn.create_process("sleep 100 & sleep 101; echo never")
        assert await eventually(lambda: len(set(lab.pids("controller-1")) - before) >= 3)
        started = set(lab.pids("controller-1")) - before
        proc.close()
        assert await eventually(lambda: all(gone(pid) for pid in started), timeout=3.0), (
            f"still running after the channel closed: {started}")
    assert set(lab.pids("controller-1")) <= before


@needs_proc
async def test_dropping_the_connection_leaves_no_process(lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    before = set(lab.pids("controller-2"))
    conn = await connect(lab, "controller-2")
    shell = await conn.create_process(term_type="xterm", term_size=(80, 24))
    shell.stdin.write("sleep 100 &\nsleep 102\n")
    assert await eventually(lambda: len(set(lab.pids("controller-2")) - before) >= 3)
    started = set(lab.pids("controller-2")) - before
    conn.abort()
    assert await eventually(lambda: all(gone(pid) for pid in started), timeout=3.0), started


async def test_signals_reach_the_process_group(lab_runner: LabRunner) -> None:
    async with connect(lab_runner.lab, "controller-1") as conn:
        proc = await conn.create_process(
            "trap 'echo caught INT; exit 5' INT; echo ready; while :; do sleep 0.05; done")
        assert "ready" in await read_until(proc.stdout, "ready\n")
        proc.send_signal("INT")
        result = await asyncio.wait_for(proc.wait(), 5)  # collects the rest of the output
        assert (result.exit_status, result.stdout) == (5, "caught INT\n")

        # A signal still arrives after the client sent EOF, and an untrapped one is
        # reported as the exit signal.
        proc = await conn.create_process("echo ready; exec sleep 100")
        proc.stdin.write_eof()
        await read_until(proc.stdout, "ready\n")
        proc.send_signal("TERM")
        await asyncio.wait_for(proc.wait(), 5)
        assert proc.exit_signal is not None and proc.exit_signal[0] == "TERM"
        assert proc.returncode == -signal.SIGTERM


async def test_stdin_reaches_commands_and_a_shell_without_pty(lab_runner: LabRunner) -> None:
    async with connect(lab_runner.lab, "controller-0") as conn:
        result = await conn.run("tr a-z A-Z; echo done", input="hello lab\n")
        assert result.stdout == "HELLO LAB\ndone\n"
        # No PTY: like OpenSSH, a non-interactive shell reads commands from stdin;
        # the sudo shim runs the command as the lab's only user.
        shell = await conn.run(input="X=2\necho $X; sudo -n sh -c 'echo as $USER'\nexit 4\n")
    assert (shell.stdout, shell.stderr, shell.exit_status) == (
        f"2\nas {lab_runner.lab.user}\n", "", 4)


@needs_proc
async def test_stop_host_refuses_connections_and_start_host_restores(
        lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    conn = await connect(lab, "controller-2")
    proc = await conn.create_process("sleep 100")
    assert await eventually(lambda: bool(lab.pids("controller-2")))
    started = lab.pids("controller-2")
    await asyncio.wrap_future(lab_runner.submit(lab.stop_host, "controller-2"))
    try:
        await asyncio.wait_for(conn.wait_closed(), 5)
        await asyncio.wait_for(proc.wait_closed(), 5)
        assert all(gone(pid) for pid in started)
        assert not lab.running("controller-2")
        with pytest.raises(OSError):
            async with connect(lab, "controller-2", connect_timeout=3):
                pass
    finally:
        await asyncio.wrap_future(lab_runner.submit(lab.start_host, "controller-2"))
    async with connect(lab, "controller-2") as again:  # the same host key: strict check
        assert (await again.run("hostname")).stdout == "controller-2\n"


async def test_sftp_put_rename_and_relative_paths(lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    etc = lab.host_root("controller-0") / "etc"
    async with connect(lab, "controller-0") as conn, conn.start_sftp_client() as sftp:
        async with sftp.open(f"{etc}/lab-test.conf.tmp", "wb") as handle:
            await handle.write(b"new contents\n")
        (etc / "lab-test.conf").write_bytes(b"old\n")
        await sftp.posix_rename(f"{etc}/lab-test.conf.tmp", f"{etc}/lab-test.conf")
        async with sftp.open("notes.txt", "wb") as handle:
            await handle.write(b"in home\n")
        assert await sftp.realpath(".") == str(lab.host_root("controller-0") / "root")
    assert (etc / "lab-test.conf").read_bytes() == b"new contents\n"
    assert not (etc / "lab-test.conf.tmp").exists()
    assert (lab.host_root("controller-0") / "root" / "notes.txt").read_bytes() == b"in home\n"


async def test_only_the_lab_key_and_user_log_in(lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(lab, "controller-0", client_keys=[stranger]):
            pass
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(lab, "controller-0", username="not-" + lab.user):
            pass


def test_lab_files_and_inventory(lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    assert lab.directory.stat().st_mode & 0o777 == 0o700
    assert lab.client_key_path.stat().st_mode & 0o777 == 0o600
    for name in lab.names:
        root = lab.host_root(name)
        assert all((root / sub).is_dir() for sub in
                   ("etc", "var/lib", "var/run", "usr/local/bin", "root", "lab-bin"))
    known = lab.known_hosts_path.read_text()
    network = lab.network
    assert re.search(rf"(?m)^\[{re.escape(network)}\.10\]:2222,\[controller-0\]:2222 "
                     r"ssh-ed25519 AAAA\S+$", known)

    inv = load_inventory(lab.inventory_path)
    assert inv.name == "lab" and inv.domain == "lab.home.arpa"
    assert [h.name for h in inv.controllers] == ["controller-0", "controller-1", "controller-2"]
    assert [str(h.address) for h in inv.controllers] == [
        f"{network}.10", f"{network}.11", f"{network}.12"]
    assert inv.controllers[1].root == str(lab.host_root("controller-1"))
    assert inv.controllers[0].path("/etc/etcd") == f"{lab.host_root('controller-0')}/etc/etcd"
    assert inv.ssh.user == lab.user and inv.ssh.port == 2222
    assert inv.ssh.identity == lab.client_key_path
    assert inv.ssh.known_hosts == lab.known_hosts_path
    assert str(inv.networks.pods) == "10.200.0.0/16"
    assert str(inv.networks.services) == "10.32.0.0/24"
    block = inv.networks.control_plane_services
    assert inv.api.vip is not None and block is not None and inv.api.vip in block
    assert inv.api.hostname == "kubernetes.lab.home.arpa"
    assert lint(inv) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_shared_address_mode_uses_one_address_and_ports(tmp_path: Path) -> None:
    port = _free_port()
    with LabRunner(tmp_path / "lab", controllers=1, port=port, network=lab_network(40),
                   shared_address=True) as runner:
        lab = runner.lab
        inv = load_inventory(lab.inventory_path)
        host = inv.controllers[0]
        assert (host.dial, host.ssh.port) == ("127.0.0.1", port)
        assert str(host.address) == f"{lab_network(40)}.10"
        assert f"HostName 127.0.0.1\n  Port {port}\n" in lab.ssh_config_path.read_text()

        async def hostname() -> str:
            async with asyncssh.connect(
                    host.dial, host.ssh.port, username=lab.user, config=None,
                    client_keys=[str(lab.client_key_path)],
                    known_hosts=str(lab.known_hosts_path)) as conn:
                return str((await conn.run("hostname")).stdout)

        assert asyncio.run(hostname()) == "controller-0\n"


def test_a_lab_spread_over_two_processes_serves_each_host_once(tmp_path: Path) -> None:
    """``serve``: one LabRunner per group of hosts, with copies of the same keys."""
    network, first, second = lab_network(41), tmp_path / "a", tmp_path / "b"
    with pytest.raises(UserError, match="no host called 'controller-9'"):
        Lab(first, controllers=2, network=network, serve=["controller-9"])
    with LabRunner(first, controllers=2, network=network, services=False,
                   serve=["controller-0"]) as one:
        assert [h.name for h in one.lab.hosts] == ["controller-0"]
        second.mkdir()
        shutil.copytree(first / "hostkeys", second / "hostkeys")
        shutil.copy2(first / "id_ed25519", second / "id_ed25519")
        with LabRunner(second, controllers=2, network=network, services=False,
                       serve=["controller-1"]) as two:
            assert [h.name for h in two.lab.hosts] == ["controller-1"]
            inventory = load_inventory(one.lab.inventory_path)  # describes both hosts
            assert [h.name for h in inventory.hosts] == ["controller-0", "controller-1"]

            async def hostnames() -> list[str]:
                names = []
                for host in inventory.hosts:
                    async with asyncssh.connect(
                            host.dial, host.ssh.port, username=one.lab.user, config=None,
                            client_keys=[str(one.lab.client_key_path)],
                            known_hosts=str(one.lab.known_hosts_path)) as conn:
                        names.append(str((await conn.run("hostname")).stdout).strip())
                return names

            assert asyncio.run(hostnames()) == ["controller-0", "controller-1"]


@needs_proc
def test_lab_up_runs_in_the_foreground_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    directory = tmp_path / "uplab"
    network = lab_network(50)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    up = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "lab", "up", "--controllers", "1",
         "--dir", str(directory), "--network", network, "--isolation", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert up.stdout is not None and up.stderr is not None
        banner = ""
        deadline = time.monotonic() + 20
        while "Ctrl-C" not in banner and time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                break
            banner += line
        assert f"controller-0  {network}.10:2222" in banner, banner + (up.stderr.read()
                                                                        if up.poll() else "")
        assert f"ssh -F {directory}/ssh_config controller-0" in banner
        assert f"hardway run -i {directory}/inventory.toml" in banner

        lab = Lab(directory, controllers=1, network=network)

        async def leave_a_process() -> None:
            host = (f"{network}.10", 2222)
            async with asyncssh.connect(*host, username=lab.user, config=None,
                                        client_keys=[str(lab.client_key_path)],
                                        known_hosts=str(lab.known_hosts_path)) as conn:
                await conn.create_process("sleep 100")
                assert await eventually(lambda: bool(lab.pids("controller-0")))
                up.send_signal(signal.SIGINT)
                await asyncio.wait_for(conn.wait_closed(), 10)

        asyncio.run(leave_a_process())
        assert up.wait(timeout=15) == 0
        assert lab.pids("controller-0") == []
        assert "stopped" in up.stdout.read()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
