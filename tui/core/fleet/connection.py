"""One SSH connection per host: connect, verify the host key, reconnect with backoff.

:class:`HostConnection` owns the asyncssh connection of one target, its state
(:class:`~tui.core.fleet.events.ConnState`) and a reason in plain words when it failed.  The
connection is opened on first use (under the fleet's fan-out semaphore), reused for every
command and SFTP call, and reopened on the next use after it dropped.  After a failed
attempt the next automatic attempt waits for a backoff window (1 s, doubling, at most 30 s);
:meth:`HostConnection.reconnect` tries at once.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from tui.core.audit import AuditLog
from tui.core.errors import UserError
from tui.core.fleet import hostkeys
from tui.core.fleet.errors import HostUnavailable as HostUnavailable
from tui.core.fleet.events import ConnState, StateChanged
from tui.core.fleet.hostkeys import HostKeyPolicy, HostKeyPrompt
from tui.core.fleet.sshconfig import OptionsFactory, Resolved, Target

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
MAX_CHANNELS = 8
"""Concurrent exec channels per connection (OpenSSH's MaxSessions defaults to 10)."""


@dataclass
class _Offered:
    host: str
    addr: str
    port: int
    key: asyncssh.SSHKey


class _Client(asyncssh.SSHClient):
    """Captures an untrusted host key (and refuses it) and reports a dropped connection."""

    def __init__(self, owner: HostConnection) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHClientConnection | None = None
        self.offered: _Offered | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self._conn = conn

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.offered = _Offered(host, addr, port, key)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._lost(self._conn, exc)


class HostConnection:
    """The SSH connection to one target, opened lazily and reused.

    Args:
        target: what to dial.
        options: the fleet's option factory (OpenSSH config, keys, timeouts).
        policy: host-key policy.
        semaphore: the fleet's fan-out limit for connection attempts.
        jump: returns the HostConnection of a jump host by name (None if unknown).
        emit: receives StateChanged events.
        audit: records accepted host keys.
    """

    def __init__(self, target: Target, *, options: OptionsFactory, policy: HostKeyPolicy,
                 semaphore: asyncio.Semaphore,
                 jump: Callable[[str], HostConnection | None],
                 emit: Callable[[StateChanged], None], audit: AuditLog | None = None,
                 max_channels: int = MAX_CHANNELS) -> None:
        self.target = target
        self.name = target.name
        self._options = options
        self._policy = policy
        self._semaphore = semaphore
        self._jump = jump
        self._emit = emit
        self._audit = audit
        self.state = ConnState.IDLE
        self.reason = ""
        self.connection: asyncssh.SSHClientConnection | None = None
        self.resolved: Resolved | None = None
        self.channels = asyncio.Semaphore(max_channels)
        self._lock = asyncio.Lock()
        self._sftp: asyncssh.SFTPClient | None = None
        self._sftp_lock = asyncio.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self._closing = False
        self.stale_temps: set[str] = set()
        """Temp files of interrupted puts, removed before the next put."""

    @property
    def endpoint(self) -> str:
        """``address:port`` actually dialled (after the OpenSSH config), for messages."""
        if self.resolved is not None:
            return f"{self.resolved.host}:{self.resolved.port}"
        return f"{self.target.dial}:{self.target.ssh.port}"

    @property
    def keepalive_summary(self) -> str:
        """The keepalive setting in words ("3 keepalives sent 15 s apart")."""
        options = self.resolved.options if self.resolved is not None else None
        interval = getattr(options, "keepalive_interval", None) or \
            self._options.keepalive_interval
        count = getattr(options, "keepalive_count_max", None) or \
            self._options.keepalive_count_max
        return f"{count} keepalives sent {float(interval):g} s apart"

    @property
    def user(self) -> str:
        """The remote login user (known after the first attempt)."""
        if self.resolved is not None:
            return self.resolved.user
        return self.target.ssh.user or ""

    def _set(self, state: ConnState, reason: str = "") -> None:
        if state == self.state and reason == self.reason:
            return
        self.state, self.reason = state, reason
        self._emit(StateChanged(self.name, state, reason))

    async def ensure(self, *, force: bool = False) -> asyncssh.SSHClientConnection:
        """The open connection, connecting first if needed.

        Raises:
            HostUnavailable: the host cannot be reached (reason in plain words), or it failed
                recently and the backoff window has not passed (unless ``force``).
        """
        conn = self.connection
        if conn is not None and not force:
            return conn
        async with self._lock:
            if self.connection is not None and not force:
                return self.connection
            wait = self._retry_at - time.monotonic()
            if not force and self._failures and wait > 0:
                raise HostUnavailable(f"{self.reason} (next attempt in {wait:.0f} s; "
                                      "reconnect to retry now)")
            self._closing = False
            self._set(ConnState.CONNECTING)
            try:
                conn = await self._connect()
            except HostUnavailable as exc:
                self._failures += 1
                delay = min(BACKOFF_FIRST * 2 ** (self._failures - 1), BACKOFF_MAX)
                self._retry_at = time.monotonic() + delay
                self._set(ConnState.FAILED, exc.reason)
                raise
            except asyncio.CancelledError:
                self._set(ConnState.IDLE)
                raise
            self._failures = 0
            self.connection = conn
            self._set(ConnState.READY)
            return conn

    async def reconnect(self) -> asyncssh.SSHClientConnection:
        """Close the current connection (if any) and connect now, ignoring the backoff."""
        await self.close(state=ConnState.IDLE)
        self._failures = 0
        return await self.ensure(force=True)

    async def sftp(self) -> asyncssh.SFTPClient:
        """The SFTP client on this connection (started once per connection)."""
        conn = await self.ensure()
        async with self._sftp_lock:
            if self._sftp is None or self.connection is not conn:
                try:
                    self._sftp = await conn.start_sftp_client()
                except (asyncssh.Error, OSError) as exc:
                    raise HostUnavailable(
                        f"the SFTP subsystem on {self.name} ({self.endpoint}) is not "
                        f"available: {_text(exc)}; enable `Subsystem sftp` in its "
                        "sshd_config") from None
            return self._sftp

    async def close(self, state: ConnState = ConnState.CLOSED) -> None:
        """Close the connection (no error if it is not open).

        A host that failed and has no connection keeps its FAILED state and reason.
        """
        conn = self.connection
        self._closing = True
        self.connection = None
        self._sftp = None
        if conn is not None:
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), 5)
            except (TimeoutError, asyncssh.Error, OSError):
                conn.abort()
        if conn is not None or self.state != ConnState.FAILED:
            self._set(state)  # a failed host keeps its reason

    def _lost(self, conn: asyncssh.SSHClientConnection, exc: Exception | None) -> None:
        if conn is not self.connection:
            return
        self.connection = None
        self._sftp = None
        if self._closing:
            return
        detail = _text(exc) if exc else "closed by the server"
        self._set(ConnState.FAILED, f"connection to {self.endpoint} lost: {detail}; "
                  "hardway reconnects on the next command")

    async def _connect(self) -> asyncssh.SSHClientConnection:
        try:
            resolved = await self._options.resolve(self.target)
        except UserError as exc:
            raise HostUnavailable(str(exc)) from None
        self.resolved = resolved
        tunnel = await self._tunnel()
        files = self._policy.files(resolved.known_hosts)

        def known_hosts(host: str, addr: str, port: int | None) -> object:
            return self._policy.trusted(files, host, addr, port)

        for _ in range(3):
            client = _Client(self)
            try:
                async with self._semaphore:
                    return await asyncssh.connect(
                        self.target.dial, resolved.port, options=resolved.options,
                        config=() if resolved.options.config.loaded else None,
                        tunnel=tunnel if tunnel is not None else (),
                        known_hosts=known_hosts, client_factory=lambda c=client: c,
                        encryption_algs=resolved.ciphers)
            except asyncssh.HostKeyNotVerifiable as exc:
                await self._judge_key(client.offered, files, exc)
            except asyncssh.KeyExchangeFailed as exc:
                match = self._policy.lookup(files, resolved.host, resolved.host, resolved.port)
                if match.host_keys:
                    raise HostUnavailable(hostkeys.mismatched_types_message(
                        self.name, resolved.host, resolved.port, match)) from None
                raise HostUnavailable(self._describe(exc)) from None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise HostUnavailable(self._describe(exc, client)) from None
        raise HostUnavailable(f"the host key of {self.name} ({self.endpoint}) was accepted "
                              "but the server kept offering a key hardway does not trust")

    async def _tunnel(self) -> asyncssh.SSHClientConnection | None:
        jump_name = self.target.jump
        if jump_name is None:
            return None
        jump = self._jump(jump_name)
        if jump is None:
            raise HostUnavailable(
                f"{self.name} should be reached through the jump host {jump_name!r} "
                "(ssh.jump), but no host or hypervisor of that name is in the inventory")
        if jump is self:
            return None
        try:
            return await jump.ensure()
        except HostUnavailable as exc:
            raise HostUnavailable(f"jump host {jump_name}: {exc.reason}") from None

    async def _judge_key(self, offered: _Offered | None, files: list[Path],
                         exc: asyncssh.HostKeyNotVerifiable) -> None:
        """Decide about a refused host key; return to retry, raise to give up."""
        assert self.resolved is not None
        host, port = self.resolved.host, self.resolved.port
        if offered is None:
            match = self._policy.lookup(files, host, host, port)
            if match.revoked:
                raise HostUnavailable(hostkeys.revoked_message(self.name, host, port, match))
            raise HostUnavailable(f"the host key of {self.name} ({self.endpoint}) could not "
                                  f"be verified: {exc.reason}")
        match = self._policy.lookup(files, offered.host, offered.addr, offered.port)
        if match.host_keys:
            raise HostUnavailable(hostkeys.changed_message(
                self.name, host, port, offered.key, match))
        prompt = HostKeyPrompt(self.name, host, port, hostkeys.key_type(offered.key),
                               hostkeys.fingerprint(offered.key))
        decision = await self._policy.decide(prompt)
        if decision == "record":
            record = self._policy.record(offered.host, offered.addr, offered.port, offered.key)
            if self._audit is not None:
                self._audit.record(host=self.name, kind="hostkey", status=0, duration=0.0,
                                   path=str(record), fingerprint=prompt.fingerprint,
                                   key_type=prompt.key_type, endpoint=self.endpoint)
            return
        if decision == "once":
            self._policy.trust_once(offered.host, offered.port, offered.key)
            return
        if self._policy.mode == "strict":
            raise HostUnavailable(hostkeys.unknown_message(self.name, host, port, offered.key))
        raise HostUnavailable(hostkeys.refused_message(self.name, host, port, offered.key))

    def _describe(self, exc: BaseException, client: _Client | None = None) -> str:
        """A failed connection attempt in plain words.

        A timeout after the TCP connection was made is a stalled SSH handshake (sshd
        overloaded, stopped, or something else listening), not a host that cannot be
        reached: the message says which, and whether the server's banner came.
        """
        endpoint = self.endpoint
        if isinstance(exc, TimeoutError):
            conn = client._conn if client is not None else None
            if conn is not None:
                banner = conn.get_extra_info("server_version")
                said = (f"the server sent its banner {banner!r}, then nothing" if banner
                        else "no SSH banner came")
                return (f"timed out during the SSH handshake with {endpoint} after "
                        f"{self._options.connect_timeout:g} s (TCP connected, {said}); sshd "
                        "there may be overloaded, stopped or not an SSH server")
            return (f"timed out after {self._options.connect_timeout:g} s connecting to "
                    f"{endpoint}")
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused by {endpoint}"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve the host name {self.target.dial!r}: {exc.strerror}"
        if isinstance(exc, asyncssh.PermissionDenied):
            identity = self.target.ssh.identity
            offered = f"the identity file {identity}" if identity else \
                "ssh-agent and the default keys (~/.ssh/id_*)"
            return (f"permission denied (publickey) for user {self.user} at {endpoint}: the "
                    f"server accepted none of the keys offered ({offered})")
        if isinstance(exc, asyncssh.ChannelOpenError):
            return (f"the jump host {self.target.jump} could not open a connection to "
                    f"{endpoint}: {_text(exc)}")
        if isinstance(exc, asyncssh.ConnectionLost):
            return (f"{endpoint} closed the connection during the SSH handshake "
                    f"({_text(exc)}); sshd may be refusing this user or too many "
                    "connections (MaxStartups)")
        if isinstance(exc, asyncssh.DisconnectError):
            return f"{endpoint} disconnected: {_text(exc)}"
        if isinstance(exc, ConnectionResetError):
            return f"connection to {endpoint} was reset during the SSH handshake"
        if isinstance(exc, OSError):
            return f"cannot connect to {endpoint}: {exc.strerror or exc}"
        return f"cannot connect to {endpoint}: {type(exc).__name__}: {exc}"


def _text(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__
