"""One lab host: an asyncssh server on a loopback address with its own root.

The server accepts one login -- the user running the lab, with the lab's client key --
and hands every session channel to :class:`tui.lab.session.LabSession`.  A host can be
stopped (listener closed, connections dropped, every process it started killed) and
started again with the same host key, which is how the lab simulates a host dying.

A host may carry a :class:`~tui.lab.supervisor.Supervisor` (its ``systemctl``): starting
the host boots it -- ``/var/run`` is emptied like a tmpfs, the control socket opens and
enabled units start -- and stopping the host stops its services too.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from tui.core.errors import UserError
from tui.lab import journalctl, processes, systemctl
from tui.lab.control import CONTROL_SOCKET, ControlServer
from tui.lab.namespaces import HostHandle, LabAddressRefused, guard_address
from tui.lab.service import SERVICE_MARKER
from tui.lab.session import ORDINARY_LOGIN, HostContext, LabSession
from tui.lab.supervisor import Supervisor

LOGIN_TIMEOUT = 30.0


class _PeerGoneFilter(logging.Filter):
    """asyncio warns for every write to a connection its peer dropped; asyncssh still
    answers the channel closes that arrived just before a client exited.  An sshd does
    not care: drop those lines (only them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("socket.send() raised exception")


_PEER_GONE = _PeerGoneFilter()
FORWARD_CONNECT_TIMEOUT = 20.0


class LabAddressInUse(UserError):
    """The address and port a lab host wants are taken (another lab, or an sshd)."""


@dataclass
class LabHostSpec:
    """Where a lab host lives and listens.

    Attributes:
        name: host name (``controller-0``), also the inventory name.
        role: ``controller`` or ``worker``.
        address: the host's internal address in the inventory (``127.0.10.10``).
        listen: the address its sshd binds (the same, or 127.0.0.1 in shared mode).
        port: the TCP port its sshd binds.
        root: the host's root directory.
        door: for the hypervisor of a confined lab, where its sshd also listens on the
            machine's loopback (``127.0.10.1:2222``): the way in, as a jump host.
    """

    name: str
    role: str
    address: str
    listen: str
    port: int
    root: Path
    door: tuple[str, int] | None = None


class _LabSSHServer(asyncssh.SSHServer):
    """Per-connection server object: public-key login for one user and one key."""

    def __init__(self, host: LabHost) -> None:
        self._host = host
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._host.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._host.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        allowed = (self._host.user, ORDINARY_LOGIN) if self._host.confined is not None \
            else (self._host.user,)
        return username in allowed and key.public_data == self._host.client_key.public_data

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> Any:
        """``direct-tcpip`` (``ssh -J``, ``-L``): dialled from the host's own network."""
        return self._host.forward_to(dest_host, dest_port)

    def session_requested(self) -> LabSession:
        return LabSession(self._host.context)


@dataclass(eq=False)
class LabHost:
    """A lab host's running state: its listener, connections and sessions.

    Attributes:
        spec: where it lives and listens.
        host_key: its ed25519 host key (kept across restarts).
        client_key: the one public key allowed to log in.
        user: the one user name allowed to log in.
        supervisor: its service manager (None: no ``systemctl`` on this host).
    """

    spec: LabHostSpec
    host_key: asyncssh.SSHKey
    client_key: asyncssh.SSHKey
    user: str
    supervisor: Supervisor | None = None
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    sessions: set[LabSession] = field(default_factory=set)
    _acceptor: asyncssh.SSHAcceptor | None = None

    confined: HostHandle | None = None
    _door: asyncssh.SSHAcceptor | None = None

    def __post_init__(self) -> None:
        self.context = HostContext(name=self.spec.name, root=self.spec.root, user=self.user,
                                   on_open=self.sessions.add, on_close=self.sessions.discard,
                                   confined=self.confined)
        self.control: ControlServer | None = None
        if self.supervisor is not None:
            self.control = ControlServer(
                self.supervisor, self.supervisor.host.path(CONTROL_SOCKET),
                {"systemctl": systemctl.systemctl, "journalctl": journalctl.journalctl},
                {"journalctl": journalctl.follows})

    @property
    def running(self) -> bool:
        """True while the host accepts connections."""
        return self._acceptor is not None

    async def start(self) -> None:
        """Listen on the host's address and port (raises UserError when impossible)."""
        if _PEER_GONE not in logging.getLogger("asyncio").filters:
            logging.getLogger("asyncio").addFilter(_PEER_GONE)
        if self._acceptor is not None:
            return
        spec = self.spec
        try:
            where: dict[str, object] = {"host": spec.listen, "port": spec.port}
            if self.confined is not None:
                where = {"sock": self.confined.listen(spec.address, spec.port)}
            else:
                guard_address(spec.listen, inside=False)
            if spec.door is not None:
                guard_address(spec.door[0], inside=False)
                self._door = await self._listen(host=spec.door[0], port=spec.door[1])
            self._acceptor = await self._listen(**where)
        except OSError as exc:
            if self._door is not None:
                self._door.close()
                self._door = None
            where_text = f"{spec.listen}:{spec.port}"
            if exc.errno == errno.EADDRINUSE:
                raise LabAddressInUse(
                    f"The lab cannot listen on {where_text} for {spec.name}: the address is "
                    "already in use (another lab, or an sshd, is there). Stop it, or start "
                    "this lab on another network (--network 127.0.11) or port (--port 2223)."
                ) from exc
            raise UserError(
                f"The lab cannot listen on {where_text} for {spec.name}: "
                f"{exc.strerror or exc}. Lab hosts need a free loopback address and port."
            ) from exc
        if self.confined is not None:
            await asyncio.to_thread(self.confined.set_link, True)
        await self._boot()

    async def _listen(self, **where: object) -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
                **where,
                server_factory=lambda: _LabSSHServer(self),
                server_host_keys=[self.host_key],
                encoding=None,
                line_editor=False,
                allow_pty=True,
                agent_forwarding=False,
                x11_forwarding=False,
                login_timeout=LOGIN_TIMEOUT,
                reuse_address=True,
            )

    def forward_to(self, address: str, port: int) -> Any:
        """``direct-tcpip`` to ``address:port``, connected from this host's own network
        first, as sshd does: a refused or unreachable destination fails the channel open
        with its reason (refused outright for non-loopback addresses when unconfined)."""
        try:
            guard_address(address, inside=self.confined is not None)
        except LabAddressRefused:
            return False

        async def connect() -> _TcpBridge:
            try:
                async with asyncio.timeout(FORWARD_CONNECT_TIMEOUT):
                    if self.confined is not None:
                        sock = self.confined.tcp_socket(address)
                        try:
                            await asyncio.get_running_loop().sock_connect(sock, (address, port))
                        except BaseException:
                            sock.close()
                            raise
                        reader, writer = await asyncio.open_connection(sock=sock)
                    else:
                        reader, writer = await asyncio.open_connection(address, port)
            except TimeoutError:
                raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED,
                                                "Connection timed out") from None
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
                raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, reason) from None
            return _TcpBridge(reader, writer)

        return connect()

    async def _boot(self) -> None:
        """Empty /var/run (a tmpfs on a real host), open the control socket, start units."""
        if self.supervisor is None or self.control is None:
            return
        run = self.spec.root / "var" / "run"
        if run.is_dir():
            for entry in run.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        await self.control.start()
        await self.supervisor.boot()

    async def stop(self) -> None:
        """Die like a host: stop listening, drop connections, kill every process."""
        for acceptor in (self._acceptor, self._door):
            if acceptor is not None:
                acceptor.close()
                await acceptor.wait_closed()
        self._acceptor = self._door = None
        for conn in list(self.connections):
            conn.abort()
        if self.control is not None:
            await self.control.close()
        if self.supervisor is not None:
            await self.supervisor.shutdown()
        else:
            await processes.kill_marked(self.spec.root, marker=SERVICE_MARKER)
        sessions = list(self.sessions)
        for session in sessions:
            if session.pid is not None:
                processes.signal_session(session.pid, signal.SIGHUP)  # SIGKILL follows
        await processes.kill_marked(self.spec.root)
        if self.confined is not None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.confined.kill_all)  # daemons started by hand
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.confined.set_link, False)  # powered off
        if sessions:
            await asyncio.wait([asyncio.ensure_future(s.wait_finished()) for s in sessions],
                               timeout=5.0)
        self.connections.clear()
        self.sessions.clear()

    def service_pids(self) -> list[int]:
        """Live processes of this host's services (children of the lab, not of sessions)."""
        return processes.marked_pids(self.spec.root, marker=SERVICE_MARKER)

    def pids(self) -> list[int]:
        """Live processes started for this host (all sessions and their children)."""
        if processes.has_proc():
            return processes.marked_pids(self.spec.root)
        return sorted(s.pid for s in self.sessions if s.pid is not None
                      and processes.signal_group(s.pid, 0))


class _TcpBridge(asyncssh.SSHTCPSession[bytes]):
    """A forwarded channel joined to a TCP connection the lab host made."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._chan: asyncssh.SSHTCPChannel[bytes] | None = None
        self._pump: asyncio.Future[None] | None = None

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        self._chan = chan
        self._pump = asyncio.ensure_future(self._copy_out())

    async def _copy_out(self) -> None:
        chan = self._chan
        assert chan is not None
        with contextlib.suppress(OSError, asyncssh.Error):
            while data := await self._reader.read(65536):
                chan.write(data)
        with contextlib.suppress(OSError, asyncssh.Error):
            chan.write_eof()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self._writer.is_closing():  # the service closed its end: nothing to deliver to
            if self._chan is not None:
                self._chan.close()
            return
        self._writer.write(data)

    def eof_received(self) -> bool:
        with contextlib.suppress(OSError):
            if self._writer.can_write_eof():
                self._writer.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._writer.close()
        if self._pump is not None:
            self._pump.cancel()
