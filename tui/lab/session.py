"""One SSH session on a lab host: a real process, a PTY when asked, signals, cleanup.

An exec request runs ``/bin/sh -c CMD``; a shell request runs an interactive shell on
a PTY when the client asked for one (bash ``--norc --noprofile -i`` if installed, else
``/bin/sh -i``) and, like OpenSSH, a plain shell reading stdin otherwise.  Each
process starts its own session (``setsid``) in the host's home with a small, explicit
environment.  Signals from the client reach the process group (the terminal's
foreground group under a PTY); when the channel closes, the whole session gets SIGHUP
and, after a short grace, SIGKILL.  SFTP is asyncssh's own server, mapped to the
host's home for relative paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import inspect
import os
import shutil
import signal
import struct
import termios
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.constants import EXTENDED_DATA_STDERR

from tui.lab import processes
from tui.lab.namespaces import HostHandle

READ_SIZE = 65536
CONFINED_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                "/usr/lib/sftp-server")


ORDINARY_LOGIN = "kthw"
"""A confined host's second login: an ordinary user, as most real hosts are reached.
Its sessions see every file system read-only except /home, /tmp, /run and /dev (a mount
namespace of their own), so writing /var/lib/kubernetes takes ``sudo``."""
ORDINARY_HOME = f"/home/{ORDINARY_LOGIN}"
READ_ONLY_SCRIPT = (
    'cut -d" " -f5 /proc/self/mountinfo | sort -r | while read -r mp; do '
    'case "$mp" in /home|/home/*|/tmp|/tmp/*|/run|/run/*|/dev|/dev/*|/proc|/proc/*|/sys|'
    '/sys/*) ;; *) mount -o remount,bind,ro "$mp" 2>/dev/null ;; esac; done; exec "$@"')
"""Run inside ``unshare --mount``: make the ordinary login's view read-only, then exec."""


@dataclass(frozen=True)
class HostContext:
    """What a session needs to know about its lab host.

    Attributes:
        name: the lab host's name (``controller-0``).
        root: the host's root directory; remote paths live under it.
        user: the login name (the user running the lab).
        on_open: called with each session when it starts a process.
        on_close: called with each session when its channel is gone.
        confined: the host's namespaces (None: the fallback, a root directory on the
            machine); sessions then run inside them, as root of the lab's user namespace.
    """

    name: str
    root: Path
    user: str
    on_open: Callable[[LabSession], None]
    on_close: Callable[[LabSession], None]
    confined: HostHandle | None = None

    @property
    def home(self) -> Path:
        """HOME and working directory of every session (the host's own path when confined)."""
        return Path("/root") if self.confined is not None else self.root / "root"

    def ordinary(self, login: str | None) -> bool:
        """True for a session of :data:`ORDINARY_LOGIN` on a confined host."""
        return self.confined is not None and login == ORDINARY_LOGIN

    def home_of(self, login: str | None) -> Path:
        """The login's home: :data:`ORDINARY_HOME` for the ordinary login."""
        return Path(ORDINARY_HOME) if self.ordinary(login) else self.home

    def command_prefix(self, login: str | None = None) -> list[str]:
        """What runs a program inside the host (``nsenter ...``; nothing in the fallback);
        the ordinary login's programs run in a read-only view of the host."""
        if self.confined is None:
            return []
        prefix = self.confined.enter(str(self.home_of(login)))
        if self.ordinary(login):
            prefix += ["unshare", "--mount", "--propagation", "private", "--",
                       "/bin/sh", "-c", READ_ONLY_SCRIPT, "sh"]
        return prefix

    def spawn_cwd(self) -> str:
        """The working directory given to the spawning process on the machine."""
        return "/" if self.confined is not None else str(self.home)

    def sftp_server(self) -> str | None:
        """OpenSSH's sftp-server, run inside a confined host (None: use asyncssh's)."""
        if self.confined is None:
            return None
        return next((p for p in SFTP_SERVERS if os.access(p, os.X_OK)), None)

    def base_env(self, login: str | None = None) -> dict[str, str]:
        """The environment every session starts from (before the client's)."""
        if self.ordinary(login):
            return {"HOME": ORDINARY_HOME, "PATH": CONFINED_PATH, "USER": ORDINARY_LOGIN,
                    "LOGNAME": ORDINARY_LOGIN, "SHELL": _interactive_shell()[0],
                    "LANG": "C.UTF-8"}
        if self.confined is not None:
            return {"HOME": "/root", "PATH": CONFINED_PATH, "USER": "root", "LOGNAME": "root",
                    "SHELL": _interactive_shell()[0], "LANG": "C.UTF-8"}
        return {
            "HOME": str(self.home),
            "PATH": ":".join([str(self.root / "usr/local/bin"), str(self.root / "lab-bin"),
                              "/usr/local/bin", "/usr/bin", "/bin"]),
            "USER": self.user,
            "LOGNAME": self.user,
            "SHELL": "/bin/sh",
            "TMPDIR": str(self.root / "tmp"),
        }


class LabSFTPServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server with relative paths resolved against the host's home."""

    def __init__(self, chan: asyncssh.SSHServerChannel, home: Path) -> None:
        super().__init__(chan)
        self._home = os.fsencode(home)

    def map_path(self, path: bytes) -> bytes:
        """Absolute paths are used as given; relative ones start at the home directory."""
        if path.startswith(b"/"):
            return path
        return os.path.join(self._home, path) if path else self._home


def _take_controlling_tty() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _set_winsize(fd: int, size: tuple[int, int, int, int]) -> None:
    width, height, pixwidth, pixheight = size
    if width and height:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width,
                                                        pixwidth, pixheight))


def _interactive_shell() -> list[str]:
    bash = shutil.which("bash", path="/bin:/usr/bin")
    return [bash, "--norc", "--noprofile", "-i"] if bash else ["/bin/sh", "-i"]


def _plain_shell() -> list[str]:
    bash = shutil.which("bash", path="/bin:/usr/bin")
    return [bash, "--norc", "--noprofile", "-s"] if bash else ["/bin/sh", "-s"]


class LabSession(asyncssh.SSHServerProcess[bytes]):
    """An SSH session channel on a lab host (exec, shell or the SFTP subsystem)."""

    def __init__(self, host: HostContext) -> None:
        super().__init__(self._serve, self._sftp_server, asyncssh.sftp.MIN_SFTP_VERSION, False)
        self.host = host
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._master: int | None = None
        self._pending: list[Callable[[], None]] = []
        self._exited = asyncio.Event()
        self._wake = asyncio.Event()
        self._closed = False
        self._hangup: asyncio.Task[None] | None = None

    # -- asyncssh callbacks ---------------------------------------------------------

    def _sftp_server(self, chan: SSHChannel[bytes]) -> asyncssh.SFTPServer:
        return LabSFTPServer(cast(asyncssh.SSHServerChannel, chan), self.host.home)

    def session_started(self) -> None:
        """On a confined host, SFTP is OpenSSH's sftp-server run inside it, as sshd does."""
        chan = self._chan
        if chan is None or chan.get_subsystem() != "sftp" or not self.host.sftp_server():
            super().session_started()
            return
        stdin = asyncssh.SSHReader[bytes](self, chan)
        stdout = asyncssh.SSHWriter[bytes](self, chan)
        stderr = asyncssh.SSHWriter[bytes](self, chan, EXTENDED_DATA_STDERR)
        handler = self._start_process(stdin, stdout, stderr)
        if inspect.isawaitable(handler) and self._conn is not None:
            self._conn.create_task(handler, stdin.logger)

    def subsystem_requested(self, subsystem: str) -> bool:
        """Only the SFTP subsystem exists on a lab host."""
        return subsystem == "sftp"

    def signal_received(self, signal: str) -> None:
        """Deliver a client signal (``INT``, ``TERM``, ...) to the running process."""
        self._when_running(lambda: self._deliver(signal))

    def terminal_size_changed(self, width: int, height: int,
                              pixwidth: int, pixheight: int) -> None:
        """Resize the PTY (the kernel then sends SIGWINCH to the foreground group)."""
        def resize() -> None:
            if self._master is not None:
                _set_winsize(self._master, (width, height, pixwidth, pixheight))
        self._when_running(resize)

    def break_received(self, msec: int) -> bool:
        """A break acts like Ctrl-C on the terminal (SIGINT to the foreground group)."""
        self._when_running(lambda: self._deliver("INT"))
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """The channel is gone: hang up the whole process session, reap, forget."""
        super().connection_lost(exc)
        self._closed = True
        self._wake.set()
        if self.pid is not None and self._hangup is None:
            self._hangup = asyncio.ensure_future(processes.hang_up_session(self.pid))
        self.host.on_close(self)

    # -- process handling -----------------------------------------------------------

    async def wait_finished(self) -> None:
        """Wait until the process has been reaped and the hangup (if any) is over."""
        await self._exited.wait()
        if self._hangup is not None:
            await self._hangup

    def _when_running(self, action: Callable[[], None]) -> None:
        if self.pid is None:
            self._pending.append(action)
        elif not self._exited.is_set():
            action()

    def _deliver(self, name: str) -> None:
        signum = getattr(signal, "SIG" + name.upper().removeprefix("SIG"), None)
        if not isinstance(signum, int) or self.pid is None:
            return
        target = self.pid
        if self._master is not None:
            with contextlib.suppress(OSError):
                target = os.tcgetpgrp(self._master)
        if not processes.signal_group(target, signum):
            processes.signal_group(self.pid, signum)

    def _environment(self, pty: bool) -> dict[str, str]:
        env = self.host.base_env(self._login())
        peer = self.get_extra_info("peername") or ("", 0)
        local = self.get_extra_info("sockname") or ("", 0)
        env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {local[0]} {local[1]}"
        env["SSH_CLIENT"] = f"{peer[0]} {peer[1]} {local[1]}"
        if pty:
            env["TERM"] = self.term_type or "dumb"
            if self.host.confined is not None and "bash" in _interactive_shell()[0]:
                env["PS1"] = r"\u@\h:\w\$ "  # Debian's root prompt: root@controller-0:~#
            else:
                prompt = "# " if os.getuid() == 0 else "$ "
                env["PS1"] = f"{self.host.user}@{self.host.name}:{prompt}"
        env.update(self.env)
        env[processes.MARKER] = str(self.host.root)
        return env

    async def _serve(self, _process: Any) -> None:
        """Run the requested command or shell and report how it ended."""
        command = self.command
        pty = self.term_type is not None
        server = self.host.sftp_server()
        if self.subsystem == "sftp" and server is not None:
            argv, pty = [server], False
            if self.host.ordinary(self._login()):
                argv += ["-d", ORDINARY_HOME]
        elif command is not None:
            argv = ["/bin/sh", "-c", command]
        else:
            argv = _interactive_shell() if pty else _plain_shell()
        try:
            await self._spawn(argv, pty)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in command or env
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            self._refuse(f"lab {self.host.name}: cannot start {argv[0]}: {reason}", 127)
            return
        assert self.pid is not None
        self.host.on_open(self)
        if self._closed:  # the client left while the process was starting
            self._hangup = asyncio.ensure_future(processes.hang_up_session(self.pid))
        for action in self._pending:
            action()
        self._pending.clear()
        try:
            await self._pump_until_exit(pty)
        except Exception as exc:  # never leave the client hanging on a lab bug
            await processes.hang_up_session(self.pid, grace=0.0)
            self._refuse(f"lab {self.host.name}: session failed: {exc!r}", 255)
            raise
        finally:
            self._exited.set()
        self._report_exit()

    def _login(self) -> str | None:
        """The user name this session's connection logged in as."""
        name = self.get_extra_info("username")
        return str(name) if name else None

    def _refuse(self, message: str, status: int) -> None:
        self._exited.set()
        if self._closed:
            return
        with contextlib.suppress(OSError, asyncssh.Error):
            self.stderr.write(message.encode() + b"\r\n")
            self.exit(status)

    async def _spawn(self, argv: list[str], pty: bool) -> None:
        env = self._environment(pty)
        cwd = self.host.spawn_cwd()
        argv = self.host.command_prefix(self._login()) + argv
        if not pty:
            self._proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
        else:
            master, slave = os.openpty()
            try:
                _set_winsize(slave, self.term_size)
                env["SSH_TTY"] = os.ttyname(slave)
                self._proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                    start_new_session=True, preexec_fn=_take_controlling_tty)
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            self._master = master
        self.pid = self._proc.pid

    async def _pump_until_exit(self, pty: bool) -> None:
        proc = self._proc
        assert proc is not None
        stdin_task = asyncio.ensure_future(self._pump_stdin())
        try:
            if pty:
                output = asyncio.ensure_future(self._pump_pty())
                await proc.wait()
                self._wake.set()
                await output
            else:
                assert proc.stdout is not None and proc.stderr is not None
                # Like OpenSSH: the session ends when the process has exited AND its
                # output pipes reached EOF (a background job holding them keeps it open).
                await asyncio.gather(self._pump_pipe(proc.stdout, self.stdout),
                                     self._pump_pipe(proc.stderr, self.stderr),
                                     proc.wait())
        finally:
            stdin_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stdin_task
            if self._master is not None:
                os.close(self._master)
                self._master = None

    def _report_exit(self) -> None:
        proc = self._proc
        assert proc is not None
        if self._closed or proc.returncode is None:
            return
        try:
            if proc.returncode >= 0:
                self.exit(proc.returncode)
            else:
                name = signal.Signals(-proc.returncode).name.removeprefix("SIG")
                self.exit_with_signal(name, False, f"killed by SIG{name}")
        except (OSError, asyncssh.Error, ValueError):
            pass

    async def _pump_stdin(self) -> None:
        proc = self._proc
        assert proc is not None
        while True:
            try:
                data = await self.stdin.read(READ_SIZE)
            except (asyncssh.Error, OSError):
                return
            if not data:  # EOF from the client
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                return
            try:
                if self._master is not None:
                    await self._write_master(data)
                elif proc.stdin is not None:
                    proc.stdin.write(data)
                    await proc.stdin.drain()
            except OSError:  # the process closed its input; keep reading so signals flow
                continue

    async def _pump_pipe(self, source: asyncio.StreamReader,
                         target: asyncssh.SSHWriter[bytes]) -> None:
        while data := await source.read(READ_SIZE):
            if self._closed:
                continue  # nobody is listening; drain so the writer never blocks
            try:
                target.write(data)
                await target.drain()
            except (asyncssh.Error, OSError):
                self._closed = True

    @staticmethod
    def _more(master: int, data: bytes) -> bytes:
        """``data`` plus whatever else the PTY has ready (up to READ_SIZE): the kernel
        hands a PTY's output over a few KiB at a time, and OpenSSH's sshd buffers it into
        full SSH packets; one packet per read would cost both ends per-packet work."""
        chunks, total = [data], len(data)
        while total < READ_SIZE:
            try:
                more = os.read(master, READ_SIZE - total)
            except OSError:  # nothing more now (EAGAIN), or the end (the next read says)
                break
            if not more:
                break
            chunks.append(more)
            total += len(more)
        return b"".join(chunks) if len(chunks) > 1 else data

    async def _pump_pty(self) -> None:
        master = self._master
        assert master is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = os.read(master, READ_SIZE)
            except BlockingIOError:
                if self._exited_process() or self._closed:
                    return
                self._wake.clear()
                loop.add_reader(master, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    loop.remove_reader(master)
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:  # every holder of the terminal is gone
                    return
                raise
            if not data:
                return
            data = self._more(master, data)
            if self._closed:
                continue
            try:
                self.stdout.write(data)
                await self.stdout.drain()
            except (asyncssh.Error, OSError):
                self._closed = True

    def _exited_process(self) -> bool:
        return self._proc is not None and self._proc.returncode is not None

    async def _write_master(self, data: bytes) -> None:
        master = self._master
        assert master is not None
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            try:
                written = os.write(master, view)
                view = view[written:]
            except BlockingIOError:
                writable = asyncio.Event()
                loop.add_writer(master, writable.set)
                try:
                    await asyncio.wait_for(writable.wait(), 1.0)
                except TimeoutError:
                    pass
                finally:
                    loop.remove_writer(master)
