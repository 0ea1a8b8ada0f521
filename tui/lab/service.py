"""One lab service: its unit definition and its process, states and restarts.

:class:`Service` is systemd's service state machine in small: ``start`` spawns
``ExecStart`` (a child of the lab process, in its own session), its output goes to the
host's journal, and when the main process ends ``Restart=`` decides what comes next --
with systemd's journal lines at every step.  :class:`~tui.lab.supervisor.Supervisor`
owns the services of one host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.inventory.model import Paths
from tui.lab import processes
from tui.lab.journal import Journal
from tui.lab.namespaces import HostHandle
from tui.lab.systemd_unit import (
    ExecCommand,
    UnitFile,
    expand_environment,
    parse_environment,
    parse_timespan,
)

if TYPE_CHECKING:
    from tui.lab.supervisor import Supervisor

UNITS_DIR = Paths().systemd_units
"""Where unit files live on a host (mapped under the host root in the lab)."""

SERVICE_MARKER = "HARDWAY_LAB_SERVICE"
"""Environment variable naming the host root a service process belongs to."""

SEARCH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

READ_SIZE = 65536
SHUTDOWN_GRACE = 1.0
"""Seconds a service gets between SIGTERM and SIGKILL when its host stops."""

CLEAN_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})

EXIT_NAMES = {0: "SUCCESS", 1: "FAILURE", 2: "INVALIDARGUMENT", 3: "NOTIMPLEMENTED",
              4: "NOPERMISSION", 5: "NOTINSTALLED", 6: "NOTCONFIGURED", 7: "NOTRUNNING",
              200: "CHDIR", 203: "EXEC", 209: "STDOUT"}
EXEC_FAILED = 203


class ServiceError(Exception):
    """A systemctl job that failed: the message systemctl prints and its exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def unit_name(name: str) -> str:
    """``kube-apiserver`` -> ``kube-apiserver.service`` (other suffixes are kept)."""
    if "." in name and name.rsplit(".", 1)[1] in {"service", "target", "socket", "timer",
                                                   "mount", "path", "slice", "scope"}:
        return name
    return name + ".service"


def exit_status_text(code: str, status: int | str) -> str:
    """``1/FAILURE`` for an exit code, the signal name (``TERM``) for a signal."""
    if code == "killed" or code == "dumped":
        return str(status)
    if isinstance(status, int):
        return f"{status}/{EXIT_NAMES[status]}" if status in EXIT_NAMES else str(status)
    return str(status)


@dataclass(frozen=True)
class ServiceHost:
    """What a supervisor knows about its host.

    Attributes:
        name: host name (journal lines, ``%H``).
        root: the host root every logical path is mapped under.
        address: the host's lab address.
        environment: extra variables for every service (lab settings).
        units_dir: the logical unit directory.
        confined: the host's namespaces; services then run inside them with the host's
            own paths (None: on the machine, paths mapped under ``root``).
    """

    name: str
    root: Path
    address: str
    environment: Mapping[str, str] = field(default_factory=dict)
    units_dir: str = UNITS_DIR
    confined: HostHandle | None = None

    def path(self, logical: str) -> Path:
        """Map an absolute host path under the root."""
        return Path(str(self.root).rstrip("/") + "/" + logical.lstrip("/"))


@dataclass
class UnitDefinition:
    """A loaded unit (or the reason it could not be loaded).

    Attributes:
        name: ``NAME.service``.
        load_state: ``loaded``, ``not-found`` or ``bad-setting``.
        fragment: the unit file's logical path ("" when not found).
        dropins: logical paths of drop-ins read after the unit.
        config: the parsed assignments (None when not found).
        exec_start: the commands to run.
        fingerprint: file paths with mtimes and sizes, to notice changes on disk.
    """

    name: str
    load_state: str
    fragment: str = ""
    dropins: tuple[str, ...] = ()
    config: UnitFile | None = None
    exec_start: tuple[ExecCommand, ...] = ()
    fingerprint: tuple[tuple[str, int, int], ...] = ()

    def setting(self, section: str, key: str, default: str = "") -> str:
        """The last value of ``key`` (``default`` when unset or not loaded)."""
        return self.config.value(section, key, default) if self.config else default

    @property
    def description(self) -> str:
        """``Description=``, else the unit name."""
        return self.setting("Unit", "Description") or self.name

    @property
    def service_type(self) -> str:
        """``Type=`` (simple by default)."""
        return self.setting("Service", "Type", "simple")

    @property
    def timeout_start(self) -> float:
        """``TimeoutStartSec=`` (or ``TimeoutSec=``) in seconds (90 s by default)."""
        value = self.setting("Service", "TimeoutStartSec") or self.setting("Service",
                                                                          "TimeoutSec")
        return parse_timespan(value, 90.0)

    @property
    def restart(self) -> str:
        """``Restart=`` (no by default)."""
        return self.setting("Service", "Restart", "no")

    @property
    def restart_sec(self) -> float:
        """``RestartSec=`` in seconds (100 ms by default)."""
        return parse_timespan(self.setting("Service", "RestartSec"), 0.1)

    @property
    def timeout_stop(self) -> float:
        """``TimeoutStopSec=`` (or ``TimeoutSec=``) in seconds (90 s by default)."""
        value = self.setting("Service", "TimeoutStopSec") or self.setting("Service",
                                                                         "TimeoutSec")
        return parse_timespan(value, 90.0)

    @property
    def start_limit(self) -> tuple[float, int]:
        """(``StartLimitIntervalSec=``, ``StartLimitBurst=``), 10 s and 5 by default."""
        interval = self.setting("Unit", "StartLimitIntervalSec") or self.setting(
            "Service", "StartLimitIntervalSec") or self.setting("Service", "StartLimitInterval")
        burst = self.setting("Unit", "StartLimitBurst") or self.setting("Service",
                                                                        "StartLimitBurst")
        return parse_timespan(interval, 10.0), int(burst) if burst.isdigit() else 5

    @property
    def wanted_by(self) -> list[str]:
        """Targets from ``WantedBy=`` (space separated lists allowed)."""
        if self.config is None:
            return []
        return [t for value in self.config.values("Install", "WantedBy") for t in value.split()]

    @property
    def has_install(self) -> bool:
        """True when the unit has an [Install] section with WantedBy/RequiredBy/Alias/Also."""
        if self.config is None:
            return False
        return any(self.config.values("Install", key)
                   for key in ("WantedBy", "RequiredBy", "Alias", "Also"))


class Service:
    """One unit's runtime state: its process, states and restart bookkeeping."""

    def __init__(self, supervisor: Supervisor, definition: UnitDefinition) -> None:
        self.supervisor = supervisor
        self.definition = definition
        self.name = definition.name
        self.active_state = "inactive"
        self.sub_state = "dead"
        self.result = "success"
        self.main_pid = 0
        self.exec_pid = 0
        self.exec_code = ""  # exited | killed | dumped
        self.exec_status: int | str = 0
        self.exec_start_time = 0.0
        self.exec_exit_time = 0.0
        self.state_change_time = 0.0
        self.n_restarts = 0
        self.running_command: ExecCommand | None = None
        self.lock = asyncio.Lock()
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._restart_timer: asyncio.Task[None] | None = None
        self._stopping = False
        self._exited = asyncio.Event()
        self._starts: deque[float] = deque(maxlen=64)

    @property
    def journal(self) -> Journal:
        """The host's journal."""
        return self.supervisor.journal

    def _set_state(self, active: str, sub: str) -> None:
        self.active_state, self.sub_state = active, sub
        self.state_change_time = time.time()

    @property
    def running(self) -> bool:
        """True while the main process runs."""
        return self._process is not None and self._process.returncode is None

    # -- jobs ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the service (a no-op when it runs); raises ServiceError when impossible."""
        async with self.lock:
            await self._start_locked(manual=True)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop the service: KillSignal to its process group, SIGKILL after the timeout."""
        async with self.lock:
            await self._stop_locked(timeout)

    async def restart(self) -> None:
        """Stop (when running) and start again."""
        async with self.lock:
            await self._stop_locked(None)
            await self._start_locked(manual=True)

    def reset_failed(self) -> None:
        """Forget a failure (``systemctl reset-failed``)."""
        if self.active_state == "failed":
            self._set_state("inactive", "dead")
        self.result = "success"
        self._starts.clear()

    async def _start_locked(self, *, manual: bool) -> None:
        self._cancel_restart_timer()
        if self.running:
            return
        definition = self.definition
        if definition.load_state == "not-found":
            raise ServiceError(f"Unit {self.name} not found.", 5)
        if definition.load_state != "loaded":
            raise ServiceError(
                f"Unit {self.name} has a bad unit file setting.\n"
                f"See system logs and 'systemctl status {self.name}' for details.", 1)
        if manual:
            self.result = "success"
        interval, burst = definition.start_limit
        now = time.monotonic()
        while self._starts and now - self._starts[0] > interval:
            self._starts.popleft()
        if len(self._starts) >= burst:
            self.journal.systemd(self.name, f"{self.name}: Start request repeated too quickly.")
            self.journal.systemd(self.name, f"{self.name}: Failed with result "
                                            "'start-limit-hit'.")
            self.journal.systemd(self.name, f"Failed to start {definition.description}.")
            self.result = "start-limit-hit"
            self._set_state("failed", "failed")
            raise ServiceError(
                f"Job for {self.name} failed because start of the service was attempted too "
                f"often.\nSee \"systemctl status {self.name}\" and \"journalctl -xeu "
                f"{self.name}\" for details.\nTo force a start use \"systemctl reset-failed "
                f"{self.name}\" followed by \"systemctl start {self.name}\" again.", 1)
        self._starts.append(now)
        if definition.service_type == "oneshot":
            await self._run_oneshot()
            return
        self._set_state("activating", "start")
        if definition.service_type not in ("simple", "idle"):  # starts systemd waits for
            self.journal.systemd(self.name, f"Starting {definition.description}...")
        notify = self._notify_socket() if definition.service_type == "notify" else None
        try:
            if not await self._spawn(definition.exec_start[0], notify):
                if definition.service_type in ("exec", "notify"):
                    raise ServiceError(self._job_failed("control process exited with error "
                                                        "code"), 1)
                return
            if notify is not None:
                await self._wait_ready(notify[0])
        finally:
            if notify is not None:
                notify[0].close()
                with contextlib.suppress(OSError):
                    os.unlink(notify[2])
        self._set_state("active", "running")
        self.journal.systemd(self.name, f"Started {definition.description}.")

    async def _stop_locked(self, timeout: float | None) -> None:
        restarting = self._cancel_restart_timer()
        if not self.running:
            if restarting or self.active_state in {"activating", "deactivating"}:
                self._set_state("inactive", "dead")
                self.journal.systemd(self.name, f"Stopped {self.definition.description}.")
            return
        definition = self.definition
        process = self._process
        assert process is not None
        self.journal.systemd(self.name, f"Stopping {definition.description}...")
        self._set_state("deactivating", "stop-sigterm")
        self._stopping = True
        kill_signal = _signal_named(definition.setting("Service", "KillSignal", "SIGTERM"))
        self._signal(process.pid, kill_signal)
        self._signal(process.pid, signal.SIGCONT)
        limit = definition.timeout_stop if timeout is None else timeout
        timed_out = False
        try:
            await asyncio.wait_for(self._exited.wait(), limit)
        except TimeoutError:
            timed_out = True
            self.journal.systemd(self.name, f"{self.name}: State 'stop-sigterm' timed out. "
                                            "Killing.")
            self.journal.systemd(self.name, f"{self.name}: Killing process {process.pid} "
                                            f"({self._comm()}) with signal SIGKILL.")
            processes.signal_group(process.pid, signal.SIGKILL)
            await self._exited.wait()
        self._stopping = False
        if timed_out:
            self.result = "timeout"
            self.journal.systemd(self.name, f"{self.name}: Failed with result 'timeout'.")
            self._set_state("failed", "failed")
        else:
            self.journal.systemd(self.name, f"{self.name}: Deactivated successfully.")
            self._set_state("inactive", "dead")
        self.journal.systemd(self.name, f"Stopped {definition.description}.")

    def _cancel_restart_timer(self) -> bool:
        timer, self._restart_timer = self._restart_timer, None
        if timer is not None and not timer.done():
            if timer is not asyncio.current_task():
                timer.cancel()
            return True
        return False

    def _job_failed(self, why: str) -> str:
        article = "" if why.startswith(("a ", "the ")) else "the "
        return (f"Job for {self.name} failed because {article}{why}.\n"
                f"See \"systemctl status {self.name}\" and \"journalctl -xeu {self.name}\" "
                "for details.")

    # -- processes --------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        host = self.supervisor.host
        if host.confined is not None:
            env = {"PATH": ":".join(SEARCH_DIRS), "LANG": "C.UTF-8",
                   "INVOCATION_ID": uuid.uuid4().hex}
        else:
            env = {
                "PATH": ":".join([str(host.path("/usr/local/bin")), str(host.root / "lab-bin"),
                                  *SEARCH_DIRS]),
                "LANG": "C.UTF-8",
                "TMPDIR": str(host.root / "tmp"),
                "INVOCATION_ID": uuid.uuid4().hex,
            }
        env.update(host.environment)
        config = self.definition.config
        if config is not None:
            for value in config.values("Service", "EnvironmentFile"):
                env.update(self._environment_file(value))
            env.update(parse_environment(config.values("Service", "Environment")))
        env["HARDWAY_LAB_UNIT"] = self.name
        if host.confined is None:  # a confined host's processes die with its PID namespace
            env["HARDWAY_LAB_PARENT"] = str(os.getpid())
        env[SERVICE_MARKER] = str(host.root)
        return env

    def _environment_file(self, value: str) -> dict[str, str]:
        optional = value.startswith("-")
        path = self.supervisor.host.path(value.lstrip("-"))
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            if not optional:
                self.journal.systemd(self.name, f"{self.name}: Failed to load environment "
                                                f"files: {exc.strerror}")
            return {}
        pairs = [line for line in lines if line.strip() and line.lstrip()[0] not in "#;"]
        return parse_environment([line.strip() for line in pairs])

    def _working_directory(self) -> Path:
        wanted = self.definition.setting("Service", "WorkingDirectory").lstrip("-")
        if wanted and wanted != "~":
            return self.supervisor.host.path(wanted)
        return self.supervisor.host.root

    def _notify_socket(self) -> tuple[socket.socket, str, str] | None:
        """A datagram socket for sd_notify: (socket, NOTIFY_SOCKET value, path here)."""
        host = self.supervisor.host
        logical = f"/var/run/systemd/notify/{self.name}"  # /run on a confined host
        path = host.path(logical)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.bind(f"/proc/self/fd/{fd}/{path.name}")
        except OSError:
            sock.close()
            return None
        finally:
            os.close(fd)
        sock.setblocking(False)
        shown = logical if host.confined is not None else str(path)
        if len(shown.encode()) >= 108:
            sock.close()
            return None
        return sock, shown, str(path)

    async def _wait_ready(self, sock: socket.socket) -> None:
        """Until the service says READY=1 (systemd's Type=notify), exits, or times out."""
        loop = asyncio.get_running_loop()
        limit = self.definition.timeout_start
        exited = asyncio.ensure_future(self._exited.wait())
        try:
            async with asyncio.timeout(limit):
                while True:
                    received = asyncio.ensure_future(loop.sock_recv(sock, 4096))
                    done, _ = await asyncio.wait({received, exited},
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if received not in done:
                        received.cancel()
                        self.journal.systemd(self.name, "Failed to start "
                                                        f"{self.definition.description}.")
                        raise ServiceError(self._job_failed(
                            "control process exited with error code"), 1)
                    if b"READY=1" in received.result().split(b"\n"):
                        return
        except TimeoutError:
            self.journal.systemd(self.name, f"{self.name}: start operation timed out. "
                                            "Terminating.")
            await self._stop_locked(None)
            self.result = "timeout"
            self.journal.systemd(self.name, f"{self.name}: Failed with result 'timeout'.")
            self.journal.systemd(self.name, f"Failed to start {self.definition.description}.")
            self._set_state("failed", "failed")
            raise ServiceError(self._job_failed("a timeout was exceeded"), 1) from None
        finally:
            exited.cancel()

    def _signal(self, pid: int, signum: int) -> None:
        """Signal the service's processes (not the ``nsenter`` that waits for them)."""
        if self.supervisor.host.confined is not None:
            processes.signal_group_but(pid, signum, spare=pid)
        else:
            processes.signal_group(pid, signum)

    def _launch(self, argv: list[str], executable: Path,
                logical: str) -> tuple[list[str], str, str]:
        """(argv, executable, cwd) for the machine: through ``nsenter`` when confined."""
        host = self.supervisor.host
        if host.confined is None:
            return argv, str(executable), str(self._working_directory())
        wanted = self.definition.setting("Service", "WorkingDirectory").lstrip("-")
        cwd = wanted if wanted.startswith("/") else "/"
        if not logical.startswith("/"):
            root = str(host.root).rstrip("/")
            text = str(executable)
            logical = text[len(root):] if text.startswith(root + "/") else text
        prefix = host.confined.enter(cwd)
        return [*prefix, logical, *argv[1:]], prefix[0], "/"

    async def _spawn(self, command: ExecCommand,
                     notify: tuple[socket.socket, str, str] | None = None) -> bool:
        """Start ``command``; on failure log like systemd and record status 203/EXEC."""
        env = self._environment()
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify[1]
        argv = expand_environment(command.argv, env)
        executable = self.supervisor.resolve_executable(command.path)
        self._exited = asyncio.Event()
        self.running_command = command
        self.exec_start_time = time.time()
        reason = "No such file or directory"
        if executable is not None:
            full, program, cwd = self._launch(argv or [command.path], executable,
                                              command.path)
            try:
                process = await asyncio.create_subprocess_exec(
                    full[0], *full[1:], executable=program,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, cwd=cwd, env=env,
                    start_new_session=True)
            except OSError as exc:
                reason = exc.strerror or str(exc)
            else:
                self._process = process
                self.main_pid = self.exec_pid = process.pid
                self._watcher = asyncio.ensure_future(self._watch(process))
                return True
        self.journal.systemd(self.name, f"{self.name}: Failed to locate executable "
                                        f"{command.path}: {reason}")
        self.journal.systemd(self.name, f"{self.name}: Failed at step EXEC spawning "
                                        f"{command.path}: {reason}")
        self.exec_pid, self.main_pid = 0, 0
        self._exited.set()
        await self._after_exit("exited", EXEC_FAILED, clean=False)
        return False

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        """Copy output to the journal; when the main process ends, decide what comes next."""
        assert process.stdout is not None
        ident = (self.definition.setting("Service", "SyslogIdentifier")
                 or os.path.basename(self.running_command.path if self.running_command
                                     else self.name))
        reader = asyncio.ensure_future(self._copy_output(process.stdout, ident, process.pid))
        returncode = await process.wait()
        await asyncio.wait([reader], timeout=0.2)  # let the last lines arrive first
        processes.signal_group(process.pid, signal.SIGKILL)  # KillMode=control-group
        self._process = None
        self.main_pid = 0
        self.exec_exit_time = time.time()
        status: int | str
        if returncode < 0:
            signum = -returncode
            code, status = "killed", signal.Signals(signum).name.removeprefix("SIG")
            clean = signum in CLEAN_SIGNALS
        else:
            code, status, clean = "exited", returncode, returncode == 0
        self._exited.set()
        if self._stopping:
            self.exec_code, self.exec_status = code, status
            return
        await self._after_exit(code, status, clean=clean)

    async def _copy_output(self, stream: asyncio.StreamReader, ident: str, pid: int) -> None:
        pending = b""
        while data := await stream.read(READ_SIZE):
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.journal.append(self.name, ident, pid,
                                    line.rstrip(b"\r").decode("utf-8", "replace"))
        if pending:
            self.journal.append(self.name, ident, pid, pending.decode("utf-8", "replace"))

    async def _after_exit(self, code: str, status: int | str, *, clean: bool) -> None:
        """The main process ended on its own: log, then restart, fail or go inactive."""
        self.exec_code, self.exec_status = code, status
        name = self.name
        if clean:
            self.journal.systemd(name, f"{name}: Deactivated successfully.")
        else:
            self.journal.systemd(name, f"{name}: Main process exited, code={code}, "
                                       f"status={exit_status_text(code, status)}")
            self.result = "exit-code" if code == "exited" else "signal"
            self.journal.systemd(name, f"{name}: Failed with result '{self.result}'.")
        if self._should_restart(code, clean):
            self._set_state("activating", "auto-restart")
            self._restart_timer = asyncio.ensure_future(self._restart_later())
        elif clean:
            self._set_state("inactive", "dead")
        else:
            self._set_state("failed", "failed")

    def _should_restart(self, code: str, clean: bool) -> bool:
        policy = self.definition.restart
        if policy == "always":
            return True
        if policy == "on-success":
            return clean
        if policy == "on-failure":
            return not clean
        if policy in {"on-abnormal", "on-abort"}:
            return code != "exited" and not clean
        return False

    async def _restart_later(self) -> None:
        await asyncio.sleep(self.definition.restart_sec)
        async with self.lock:
            if self.sub_state != "auto-restart":
                return
            self._restart_timer = None
            self.n_restarts += 1
            self.journal.systemd(self.name, f"{self.name}: Scheduled restart job, restart "
                                            f"counter is at {self.n_restarts}.")
            with contextlib.suppress(ServiceError):
                await self._start_locked(manual=False)

    async def _run_oneshot(self) -> None:
        definition = self.definition
        self._set_state("activating", "start")
        self.journal.systemd(self.name, f"Starting {definition.description}...")
        for command in definition.exec_start:
            if not await self._spawn(command):
                raise ServiceError(self._job_failed("control process exited with error "
                                                    "code"), 1)
            process = self._process
            assert process is not None and self._watcher is not None
            self._stopping = True  # the watcher only records the status
            await self._watcher
            self._stopping = False
            failed = self.exec_code != "exited" or self.exec_status != 0
            if failed and not command.ignore_errors:
                await self._after_exit(self.exec_code, self.exec_status, clean=False)
                raise ServiceError(self._job_failed("control process exited with error "
                                                    "code"), 1)
        if definition.setting("Service", "RemainAfterExit") in {"yes", "true", "1", "on"}:
            self._set_state("active", "exited")
        else:
            self.journal.systemd(self.name, f"{self.name}: Deactivated successfully.")
            self._set_state("inactive", "dead")
        self.journal.systemd(self.name, f"Finished {definition.description}.")

    def _comm(self) -> str:
        return os.path.basename(self.running_command.path) if self.running_command else ""

    async def close(self) -> None:
        """Stop quickly (host shutdown) and cancel every task of this service."""
        await self.stop(timeout=SHUTDOWN_GRACE)
        self._cancel_restart_timer()
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher


def _signal_named(name: str) -> signal.Signals:
    text = name.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    try:
        return signal.Signals["SIG" + text.removeprefix("SIG")]
    except KeyError:
        return signal.SIGTERM
