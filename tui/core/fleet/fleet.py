"""The Fleet: one SSH connection per host, commands as event streams, atomic file writes.

Usage::

    async with Fleet.from_inventory(inv, host_keys=HostKeyPolicy("strict")) as fleet:
        await fleet.connect()                       # concurrent, never raises per host
        async with fleet.stream(["controller-0", "controller-1"], "hostname") as events:
            async for event in events:               # Output..., then Exited/Failed per host
                ...                                  # leaving the block kills what still runs
        results = await fleet.run(None, "echo $ETCD_NAME", timeout=10)
        await fleet.put("controller-0", b"...", "/etc/etcd/ca.pem", mode=0o600)

Every command gets ``export HOST_NAME=... INTERNAL_IP=... ETCD_NAME=... <vars>`` and
``{name}``/``{ip}``/``{VAR}`` substitution (see :mod:`tui.core.fleet.command`); a host that
cannot connect yields Failed at once and never delays the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

import asyncssh

from tui.core.audit import AuditLog
from tui.core.errors import UserError
from tui.core.events import call
from tui.core.fleet.connection import HostConnection, HostUnavailable
from tui.core.fleet.defaults import KEEPALIVE_INTERVAL, fleet_hosts, host_named, jump_hosts
from tui.core.fleet.events import ConnState, Event, Exited, Failed, Output, StateChanged
from tui.core.fleet.execute import ExecOptions, run_on_host
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.fleet.sftp import PutResult, get_file, list_dir, put_file
from tui.core.fleet.shell import READY_TIMEOUT, Shell, open_shell
from tui.core.fleet.sshconfig import OptionsFactory, Target
from tui.core.inventory.model import Host, Hypervisor, Inventory

log = logging.getLogger("hardway.fleet")

__all__ = ["CommandResult", "CommandStream", "Fleet", "PutResult"]


@dataclass(frozen=True)
class CommandResult:
    """A command's gathered outcome on one host.

    Attributes:
        host: inventory name.
        stdout, stderr: decoded output (stderr is merged into stdout under a PTY).
        status: exit status; None when it was killed, timed out or never ran.
        duration: seconds.
        error: why the command could not run (connect failure, host key...), else None.
        timed_out: the timeout fired and the remote process was killed.
        signal: signal that ended the remote process, if any.
        cancelled: the command was cancelled and the remote process was killed.
    """

    host: str
    stdout: str
    stderr: str
    status: int | None
    duration: float
    error: str | None = None
    timed_out: bool = False
    signal: str | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """True when the command ran and exited 0."""
        return self.error is None and self.status == 0


class CommandStream:
    """Events of one command on several hosts: iterate, cancel, close.

    Output events interleave as they arrive; each host ends with exactly one Exited or
    Failed.  Closing the stream (``aclose``, leaving ``async with``, or cancelling the task
    that iterates) kills the command on every host still running it.
    """

    def __init__(self, fleet: Fleet, names: Sequence[str], command: str,
                 options: ExecOptions) -> None:
        self._fleet = fleet
        self.names = list(names)
        self._command = command
        self._options = options
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._open = len(self.names)
        self._started = False

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        for name in self.names:
            self._tasks[name] = asyncio.create_task(self._host(name),
                                                    name=f"hardway-exec-{name}")

    async def _host(self, name: str) -> None:
        fleet = self._fleet
        final: Event | None = None
        try:
            final = await run_on_host(fleet._connection(name), fleet.host(name),
                                      self._command, self._options, self._queue.put_nowait,
                                      fleet.audit)
        except asyncio.CancelledError:
            final = Exited(name, None, 0.0, cancelled=True)
        except UserError as exc:
            final = Failed(name, str(exc))
        except Exception as exc:  # never lose a host's final event
            log.exception("command on %s failed unexpectedly", name)
            final = Failed(name, f"internal error while running the command on {name}: "
                                 f"{type(exc).__name__}: {exc}")
        finally:
            self._queue.put_nowait(final or Exited(name, None, 0.0, cancelled=True))

    def __aiter__(self) -> CommandStream:
        return self

    async def __anext__(self) -> Event:
        self._start()
        if self._open == 0 and self._queue.empty():
            raise StopAsyncIteration
        try:
            event = await self._queue.get()
        except asyncio.CancelledError:
            self.cancel()
            raise
        if isinstance(event, Exited | Failed):
            self._open -= 1
        return event

    def cancel(self, names: Iterable[str] | None = None) -> None:
        """Kill the command on ``names`` (default: every host still running it)."""
        wanted = set(self.names if names is None else names)
        for name, task in self._tasks.items():
            if name in wanted and not task.done():
                task.cancel()

    async def aclose(self) -> None:
        """Cancel what still runs and wait until every remote process is gone."""
        self.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def __aenter__(self) -> CommandStream:
        self._start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


class Fleet:
    """SSH connections to a set of hosts, with commands, file transfer and audit.

    Args:
        hosts: the hosts commands may run on.
        jump_hosts: hosts and hypervisors that ``ssh.jump`` may name (by name).
        fanout: at most this many connection attempts at once.
        connect_timeout: seconds for TCP connect, handshake and authentication.
        host_keys: host-key policy (default: strict, record file in the XDG state dir).
        audit: where commands and writes are recorded (None: not recorded).
        use_user_config: read ``~/.ssh/config`` when a host names no ``ssh.config``.
        keepalive_interval: seconds between SSH keepalives (3 missed drop the connection).
    """

    def __init__(self, hosts: Sequence[Host], *,
                 jump_hosts: Mapping[str, Host | Hypervisor] | None = None,
                 fanout: int = 64, connect_timeout: float = 10.0,
                 host_keys: HostKeyPolicy | None = None, audit: AuditLog | None = None,
                 use_user_config: bool = True,
                 keepalive_interval: float = KEEPALIVE_INTERVAL) -> None:
        if fanout < 1:
            raise ValueError("fanout must be at least 1")
        self._hosts = {h.name: h for h in hosts}
        self._spec = (list(hosts), dict(jump_hosts or {}), {
            "fanout": fanout, "connect_timeout": connect_timeout,
            "use_user_config": use_user_config, "keepalive_interval": keepalive_interval})
        self.policy = host_keys or HostKeyPolicy()
        self.audit = audit
        self._listeners: list[Callable[[StateChanged], None]] = []
        self._semaphore = asyncio.Semaphore(fanout)
        self._options = OptionsFactory(connect_timeout=connect_timeout,
                                       use_user_config=use_user_config,
                                       keepalive_interval=keepalive_interval)
        self._connections: dict[str, HostConnection] = {}
        targets = [Target.of(m) for m in (jump_hosts or {}).values()]
        targets += [Target.of(h) for h in hosts]
        for target in targets:
            self._connections[target.name] = HostConnection(
                target, options=self._options, policy=self.policy,
                semaphore=self._semaphore, jump=self._connections.get, emit=self._emit,
                audit=audit)

    @classmethod
    def from_inventory(cls, inventory: Inventory, *, extra: Sequence[Host] = (),
                       **kwargs: object) -> Fleet:
        """A fleet of every host of ``inventory`` (and ``extra`` ones not already there);
        its hypervisor and hosts can be jumps."""
        return cls(fleet_hosts(inventory, extra), jump_hosts=jump_hosts(inventory),
                   **kwargs)  # type: ignore[arg-type]

    def sibling(self) -> Fleet:
        """A new, unconnected fleet of the same hosts with the same options, host-key policy
        and audit log (its own connections; e.g. for another thread's event loop)."""
        hosts, jumps, options = self._spec
        return Fleet(hosts, jump_hosts=jumps, host_keys=self.policy, audit=self.audit,
                     **options)  # type: ignore[arg-type]

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # -- hosts and state ------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Host names in inventory order (jump-only hosts excluded)."""
        return list(self._hosts)

    def host(self, name: str) -> Host:
        """The Host called ``name``.

        Raises:
            UserError: no such host in this fleet.
        """
        return host_named(self._hosts, name)

    def _connection(self, name: str) -> HostConnection:
        self.host(name)
        return self._connections[name]

    def _select(self, names: Iterable[str] | None) -> list[str]:
        if names is None:
            return self.names
        selected = list(dict.fromkeys(names))
        for name in selected:
            self.host(name)
        return selected

    def state(self, name: str) -> ConnState:
        """Connection state of ``name`` (hosts and jump hosts)."""
        return self._any(name).state

    def reason(self, name: str) -> str:
        """Why ``name`` is FAILED (empty otherwise)."""
        return self._any(name).reason

    def _any(self, name: str) -> HostConnection:
        try:
            return self._connections[name]
        except KeyError:
            raise UserError(f"There is no host called {name!r} in this fleet.") from None

    def subscribe(self, callback: Callable[[StateChanged], None]) -> Callable[[], None]:
        """Call ``callback`` with every StateChanged event; returns an unsubscribe function."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def _emit(self, event: StateChanged) -> None:
        for callback in list(self._listeners):
            call(callback, event, "fleet state")

    # -- connections ----------------------------------------------------------------------

    async def connect(self, names: Iterable[str] | None = None) -> dict[str, ConnState]:
        """Connect to ``names`` (default all) concurrently; failures become states."""
        selected = self._select(names)

        async def one(name: str) -> None:
            with contextlib.suppress(HostUnavailable):
                await self._connections[name].ensure()

        await asyncio.gather(*(one(n) for n in selected))
        return {n: self._connections[n].state for n in selected}

    async def reconnect(self, name: str) -> ConnState:
        """Drop and reopen ``name``'s connection now (ignores the backoff)."""
        with contextlib.suppress(HostUnavailable):
            await self._any(name).reconnect()
        return self._any(name).state

    async def close(self) -> None:
        """Close every connection (hosts first, then jump hosts)."""
        hosts = [c for n, c in self._connections.items() if n in self._hosts]
        jumps = [c for n, c in self._connections.items() if n not in self._hosts]
        await asyncio.gather(*(c.close() for c in hosts))
        await asyncio.gather(*(c.close() for c in jumps))

    def endpoint(self, name: str) -> str:
        """``address:port`` dialled for ``name`` (after the OpenSSH config is applied)."""
        return self._any(name).endpoint

    async def jump_connection(self, name: str) -> asyncssh.SSHClientConnection:
        """The connection to host or jump host ``name``, opened if needed (for forwards).

        Raises:
            UserError: no such host, or it cannot be reached (the reason).
        """
        try:
            return await self._any(name).ensure()
        except HostUnavailable as exc:
            raise UserError(f"{name} cannot be reached: {exc.reason}") from None

    def connection(self, name: str) -> asyncssh.SSHClientConnection | None:
        """The open asyncssh connection of ``name`` (for shells and port forwards)."""
        return self._connection(name).connection

    # -- commands -------------------------------------------------------------------------

    def stream(self, names: Iterable[str] | None, command: str, *,
               timeout: float | None = None, sudo: bool = False, pty: bool = False,
               input: bytes | None = None) -> CommandStream:
        """Run ``command`` on ``names`` (default all) as a stream of events.

        Args:
            names: host names; None means every host.
            command: shell command; ``{name}``, ``{ip}``, ``{VAR}`` substituted per host.
            timeout: seconds after which the remote command is killed (Exited.timed_out).
            sudo: run through ``sudo -n sh -c``.
            pty: allocate a PTY (colours, progress bars; stderr merges into stdout).
            input: bytes written to the command's stdin, then EOF (without a PTY).
        """
        options = ExecOptions(timeout=timeout, sudo=sudo, pty=pty, input=input)
        return CommandStream(self, self._select(names), command, options)

    async def run(self, names: Iterable[str] | None, command: str, *,
                  timeout: float | None = None, sudo: bool = False, pty: bool = False,
                  input: bytes | None = None) -> dict[str, CommandResult]:
        """Run ``command`` on ``names`` and gather the results (keys in host order)."""
        stream = self.stream(names, command, timeout=timeout, sudo=sudo, pty=pty, input=input)
        out: dict[str, list[str]] = {n: [] for n in stream.names}
        err: dict[str, list[str]] = {n: [] for n in stream.names}
        finals: dict[str, Event] = {}
        async with stream:
            async for event in stream:
                if isinstance(event, Output):
                    (out if event.stream == "stdout" else err)[event.host].append(event.data)
                elif isinstance(event, Exited | Failed):
                    finals[event.host] = event
        return {name: _result(name, "".join(out[name]), "".join(err[name]), finals.get(name))
                for name in stream.names}

    # -- shells ---------------------------------------------------------------------------

    async def open_shell(self, name: str, *, columns: int = 80, rows: int = 24,
                         term: str = "xterm-256color",
                         ready_timeout: float = READY_TIMEOUT) -> Shell:
        """A persistent interactive login shell on ``name`` (PTY, variables exported,
        OSC 133 integration; see :mod:`tui.core.fleet.shell`).  Never raises for remote
        problems: check ``shell.state`` and ``shell.reason``."""
        return await open_shell(self._connection(name), self.host(name), columns=columns,
                                rows=rows, term=term, ready_timeout=ready_timeout,
                                audit=self.audit)

    # -- files ----------------------------------------------------------------------------

    async def put(self, name: str, data: bytes, path: str, *, mode: int = 0o644,
                  owner: str | None = None, backup: bool = True) -> PutResult:
        """Write ``data`` to the logical ``path`` on ``name`` atomically (never raises for
        remote failures: see ``PutResult.error``)."""
        return await put_file(self._connection(name), self.host(name), data, path, mode=mode,
                              owner=owner, backup=backup, audit=self.audit)

    async def get(self, name: str, path: str) -> bytes:
        """Read the logical ``path`` from ``name``.

        Raises:
            UserError: unreachable host or unreadable file.
        """
        return await get_file(self._connection(name), self.host(name), path)

    async def list_dir(self, name: str, path: str) -> list[tuple[str, bool]]:
        """``(entry, is_directory)`` in ``path`` on ``name`` (absolute and logical, or
        relative to the login directory).

        Raises:
            UserError: unreachable host or unreadable directory.
        """
        return await list_dir(self._connection(name), self.host(name), path)


def _result(name: str, stdout: str, stderr: str, final: Event | None) -> CommandResult:
    if isinstance(final, Exited):
        return CommandResult(name, stdout, stderr, final.status, final.duration,
                             timed_out=final.timed_out, signal=final.signal,
                             cancelled=final.cancelled)
    reason = final.reason if isinstance(final, Failed) else "the command did not finish"
    return CommandResult(name, stdout, stderr, None, 0.0, error=reason)
