"""Start a real OpenSSH sshd on a loopback address for tests and benchmarks.

Usage::

    with running_sshd(tmp_path, address="127.0.201.10") as server:
        server.address, server.port, server.fingerprint, server.client_key_path

The server logs in a light test user (``hardway-test`` with ``/bin/sh`` and no rc files,
created on first use when we are root; otherwise the current user), authenticates it with a
client key generated in the test directory, and logs VERBOSE to ``server.log_path``.
Configuration follows /work/shared/reference/lab-notes.md.  Nothing here imports pytest:
tests call :func:`sshd_missing_reason` to decide whether to skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from tests.support import loopback
from tui.lab.processes import children

SSHD = Path("/usr/sbin/sshd")
TEST_USER = "hardway-test"
PRIVSEP_DIR = Path("/run/sshd")


def sshd_missing_reason() -> str | None:
    """Return why sshd tests cannot run here, or None when they can."""
    if not SSHD.exists():
        return (f"OpenSSH sshd ({SSHD}) is not installed; run scripts/install-test-deps.sh "
                "(apt-get install openssh-server) to run the real-sshd tests")
    return None


def loopback_network() -> str:
    """A /24 prefix on loopback for this process (``127.W.200-249``), avoiding the lab's."""
    return loopback.network(200, 50)


def free_port(address: str) -> int:
    """Return a TCP port that is free on ``address`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def ensure_test_user(name: str = TEST_USER) -> str:
    """Return the login user for sshd tests, creating ``name`` when we are root.

    As root the user gets ``/bin/sh`` as its shell and an unlocked password field (``*``)
    so that key logins work with ``UsePAM no``.  Without root, the current user is used.
    """
    if os.geteuid() != 0:
        return pwd.getpwuid(os.getuid()).pw_name
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name],
                       check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    if entry.pw_shell != "/bin/sh":
        subprocess.run(["usermod", "--shell", "/bin/sh", name], check=True, capture_output=True)
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
    return name


def _sshd_version() -> tuple[int, int]:
    result = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", result.stdout + result.stderr)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def write_key(path: Path) -> asyncssh.SSHKey:
    """Generate an ed25519 key at ``path`` (0600) with ``path.pub``; reuse an existing one."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return key


@dataclass
class Sshd:
    """A running sshd and what a client needs to reach it."""

    address: str
    port: int
    user: str
    directory: Path
    host_key_path: Path
    host_public_key: str
    fingerprint: str
    client_key_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    auth_dir: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def known_hosts_pattern(self) -> str:
        """``[addr]:port`` (or ``addr`` on port 22), as in a known_hosts file."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def known_hosts_line(self) -> str:
        """One known_hosts line for this server's host key."""
        return f"{self.known_hosts_pattern} {self.host_public_key}\n"

    def log(self) -> str:
        """The server's log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def child_pids(self) -> list[int]:
        """PIDs of per-connection sshd processes (children of the listener)."""
        return children(self.process.pid)

    def stop(self) -> None:
        """Stop the listener and every per-connection process (like a host dying)."""
        children = self.child_pids()
        if self.process.poll() is None:
            self.process.terminate()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _config(server_dir: Path, auth_dir: Path, address: str, port: int, host_key: Path,
            user: str, log_level: str, extra_config: str) -> str:
    lines = [
        f"ListenAddress {address}:{port}",
        f"HostKey {host_key}",
        f"PidFile {server_dir / 'sshd.pid'}",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        f"AuthorizedKeysFile {auth_dir / 'authorized_keys'}",
        "StrictModes no",
        "MaxStartups 500:30:1000",
        "MaxSessions 100",
        f"LogLevel {log_level}",
        "AllowTcpForwarding yes",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "Subsystem sftp internal-sftp",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
    ]
    if _sshd_version() >= (9, 8):
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n" + extra_config + "\n"


def _wait_listening(process: subprocess.Popen[bytes], address: str, port: int,
                    log_path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            raise RuntimeError(f"sshd on {address}:{port} exited with status "
                               f"{process.returncode}: {log.strip()}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((address, port)) == 0:
                return
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"sshd did not listen on {address}:{port} within {timeout} s")


@contextlib.contextmanager
def running_sshd(directory: Path, *, address: str = "127.0.0.1", port: int = 0,
                 host_key: Path | None = None, client_key: Path | None = None,
                 user: str | None = None, log_level: str = "VERBOSE",
                 extra_config: str = "") -> Iterator[Sshd]:
    """Run an OpenSSH sshd on ``address:port`` until the block exits.

    Args:
        directory: where config, keys, pid file and log go (created if missing).
        address: loopback address to listen on.
        port: TCP port; 0 picks a free one.
        host_key: host key file to use (generated as ``directory/host_ed25519`` if None);
            pass another server's key to reuse an identity, or a fresh path to change it.
        client_key: client key file (generated as ``directory/client_ed25519`` if None).
        user: login user (default: the ``hardway-test`` user, see :func:`ensure_test_user`).
        log_level: sshd LogLevel (VERBOSE; DEBUG1 shows forwarded connections).
        extra_config: extra sshd_config lines.
    """
    reason = sshd_missing_reason()
    if reason:
        raise RuntimeError(reason)
    directory.mkdir(parents=True, exist_ok=True)
    login = user or ensure_test_user()
    port = port or free_port(address)
    host_key = host_key or directory / "host_ed25519"
    server_key = write_key(host_key)
    client_key = client_key or directory / "client_ed25519"
    write_key(client_key)
    # authorized_keys must be readable by the login user: keep it out of 0700 test dirs.
    auth_dir = Path(tempfile.mkdtemp(prefix="hardway-sshd-"))
    auth_dir.chmod(0o755)
    authorized = auth_dir / "authorized_keys"
    authorized.write_text(Path(str(client_key) + ".pub").read_text())
    authorized.chmod(0o644)
    server_dir = directory / f"sshd-{address}-{port}"
    server_dir.mkdir(exist_ok=True)
    config_path = server_dir / "sshd_config"
    config_path.write_text(_config(server_dir, auth_dir, address, port, host_key, login,
                                   log_level, extra_config))
    log_path = server_dir / "sshd.log"
    if os.geteuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    process = subprocess.Popen([str(SSHD), "-D", "-f", str(config_path), "-E", str(log_path)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    server: Sshd | None = None
    try:
        _wait_listening(process, address, port, log_path)
        public = server_key.export_public_key("openssh").decode().strip()
        server = Sshd(address=address, port=port, user=login, directory=server_dir,
                      host_key_path=host_key, host_public_key=" ".join(public.split()[:2]),
                      fingerprint=server_key.get_fingerprint("sha256"),
                      client_key_path=client_key, log_path=log_path, process=process,
                      auth_dir=auth_dir)
        yield server
    finally:
        if server is not None:
            server.stop()
        elif process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(auth_dir, ignore_errors=True)
