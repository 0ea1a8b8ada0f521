"""Confined lab hosts: the lab's own namespaces, seen from the lab process.

:class:`Confinement` starts the warden (:mod:`tui.lab.warden`) in a new user, network,
mount and PID namespace; the warden builds a private network (a bridge, one network
namespace per host, veth pairs) and starts each host's init (:mod:`tui.lab.nshost`),
which builds the host's own root.  The lab process itself stays in the machine's
namespaces and uses the hosts through:

* :meth:`HostHandle.enter` -- the ``nsenter`` prefix that runs a command inside the host
  (its user, mount, network, PID and UTS namespaces; uid 0 of the lab's user namespace,
  which has no power over the machine);
* :meth:`HostHandle.listen` / :meth:`HostHandle.tcp_socket` -- sockets made inside the
  host's network namespace and passed back (SCM_RIGHTS): the lab's SSH servers listen on
  the hosts' own addresses, and the jump host dials from inside the lab network.

Addresses other than loopback are only ever used on such sockets: :func:`guard_address`
refuses them anywhere else.  :func:`unavailable` says, in one line, why a machine cannot
confine hosts (not Linux, no ``unshare``/``nsenter``, user namespaces turned off).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ctypes
import ipaddress
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.errors import UserError

HERE = Path(__file__).resolve().parent
WARDEN = HERE / "warden.py"
NSHOST = HERE / "nshost.py"
START_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1

_support: str | bool | None = False  # False: not checked yet


class LabAddressRefused(UserError):
    """A non-loopback address was about to be used outside the lab's own namespaces."""


def guard_address(address: str, *, inside: bool) -> None:
    """Refuse a non-loopback ``address`` unless the socket lives in a lab namespace.

    Raises:
        LabAddressRefused: ``address`` is not in 127.0.0.0/8 (or ::1) and ``inside`` is
            False: a packet for it could leave the machine.
    """
    if inside:
        return
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise LabAddressRefused(
            f"The lab refuses to use {address} outside its own network namespace: only "
            "loopback addresses (127.0.0.0/8) may be used on the machine's network.")


def unavailable() -> str | None:
    """Why hosts cannot be confined here (one line), or None when they can."""
    global _support
    if _support is not False:
        return _support  # type: ignore[return-value]
    reason: str | None = None
    if not sys.platform.startswith("linux"):
        reason = f"this system ({sys.platform}) has no Linux namespaces"
    else:
        missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
        if missing:
            reason = f"{', '.join(missing)} not found (util-linux and iproute2 are needed)"
        else:
            try:
                probe = subprocess.run(
                    ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid",
                     "--fork", "true"], capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired) as exc:
                reason = f"unshare failed: {exc}"
            else:
                if probe.returncode != 0:
                    reason = ("unprivileged user namespaces are turned off "
                              f"({probe.stderr.strip() or 'unshare failed'}; see "
                              "sysctl kernel.unprivileged_userns_clone)")
    _support = reason
    return reason


def readonly_paths() -> list[str]:
    """Directories the hosts need read-only at their own paths: Python and the project."""
    project = HERE.parents[1]
    candidates = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(
        os.path.realpath(sys.executable))), str(project)}
    paths = []
    for path in sorted(candidates):
        if path in ("/", "/usr") or (path.startswith("/usr/") and \
                not path.startswith("/usr/local")):
            continue
        paths.append(path)
    return paths


@dataclass(frozen=True)
class HostNetwork:
    """One confined host: its name, directory and network.

    Attributes:
        name: host name (also its UTS host name).
        directory: ``DIR/hosts/NAME``, the writable layer of its root.
        addresses: CIDR addresses on its ``eth0`` (``10.10.0.10/24``).
        gateway: default route (None: none).
        loopback_addresses: extra addresses on ``lo`` (``10.50.0.1/32``: the VIP).
        local_routes: blocks delivered locally as a whole (``ip route add local BLOCK dev
            lo``): the hypervisor takes every address of the control-plane block, as a
            router whose ipfw ``fwd`` rules pick the VIP's packets out of its traffic does.
        router: forward packets between its networks (the hypervisor).
    """

    name: str
    directory: Path
    addresses: tuple[str, ...]
    gateway: str | None = None
    loopback_addresses: tuple[str, ...] = ()
    router: bool = False
    local_routes: tuple[str, ...] = ()


@dataclass
class HostHandle:
    """A running confined host, as the lab process uses it."""

    network: HostNetwork
    control: Path
    pid: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, cwd: str = "/") -> list[str]:
        """The command prefix that runs a program inside this host (as its root).

        As an ordinary user the lab's user namespace maps only that user (to root) and
        denies setgroups, so nsenter keeps the caller's credentials (which are the
        host's root there) instead of setting them, which would fail with EPERM."""
        keep = ["--preserve-credentials"] if os.geteuid() != 0 else []
        return ["nsenter", "-t", str(self.pid), "--user", *keep, "--mount", "--net",
                "--pid", "--uts", f"--wdns={cwd}", "--"]

    def _request(self, request: dict[str, object]) -> tuple[dict[str, object], int | None]:
        with self._lock, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10.0)
            _connect_unix(conn, self.control)
            conn.sendall((json.dumps(request) + "\n").encode())
            data, fds = b"", array.array("i")
            while not data.endswith(b"\n"):
                chunk, ancillary, _flags, _addr = conn.recvmsg(
                    4096, socket.CMSG_SPACE(fds.itemsize))
                if not chunk:
                    raise OSError(f"{self.network.name}: its init closed the control socket")
                data += chunk
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            reply = json.loads(data)
            return reply, (fds[0] if fds else None)

    def _socket(self, request: dict[str, object], kind: int) -> socket.socket:
        reply, fd = self._request(request)
        if not reply.get("ok") or fd is None:
            err = int(reply.get("errno") or 0)  # type: ignore[call-overload]
            raise OSError(err, str(reply.get("error") or "no socket"))
        family = socket.AF_INET6 if ":" in str(request.get("address", "")) else socket.AF_INET
        return socket.socket(family, kind, fileno=fd)

    def listen(self, address: str, port: int, *, udp: bool = False) -> socket.socket:
        """A socket bound (and listening, for TCP) on ``address:port`` inside the host.

        Raises:
            OSError: the host refused (address in use, not its address, ...).
        """
        kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        sock = self._socket({"op": "listen", "address": address, "port": port, "udp": udp},
                            kind)
        sock.setblocking(False)
        return sock

    def tcp_socket(self, address: str = "0.0.0.0") -> socket.socket:
        """A fresh TCP socket of the host's network namespace (to ``connect`` from there)."""
        sock = self._socket({"op": "socket", "address": address}, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    def set_link(self, up: bool) -> None:
        """Plug (``up``) or unplug the host's network: unplugged, it is a powered-off VM."""
        reply, _fd = self._request({"op": "link", "up": up})
        if not reply.get("ok"):
            raise OSError(f"{self.network.name}: {reply.get('error')}")

    def kill_all(self) -> None:
        """End every process of the host (its init stays: the host's disk and network)."""
        self._request({"op": "killall"})

    def peer_pid(self) -> int:
        """The init's PID in the machine's PID namespace (from the control socket)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10.0)
            _connect_unix(conn, self.control)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                    struct.calcsize("3i"))
            pid, _uid, _gid = struct.unpack("3i", creds)
            return pid


def _connect_unix(conn: socket.socket, path: Path) -> None:
    if len(os.fsencode(path)) < 100:
        conn.connect(str(path))
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:  # connect through /proc/self/fd/N/NAME: short, and no chdir in a threaded process
        conn.connect(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Confinement:
    """The lab's namespaces: a warden process and one handle per confined host.

    Args:
        directory: the lab directory (``DIR/run`` holds control sockets and specs).
        hosts: the hosts to build.
    """

    def __init__(self, directory: Path, hosts: Sequence[HostNetwork]) -> None:
        self.directory = directory
        self.run_dir = directory / "run"
        self.handles = {h.name: HostHandle(h, self.run_dir / f"{h.name}.sock")
                        for h in hosts}
        self._warden: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the warden and every host; returns once all hosts serve their control.

        Raises:
            UserError: a host could not be built (the warden's reason).
        """
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        readonly = readonly_paths()
        hosts = []
        for index, handle in enumerate(self.handles.values()):
            net = handle.network
            spec = {"hostname": net.name, "host_dir": str(net.directory),
                    "control": str(handle.control), "addresses": list(net.addresses),
                    "loopback_addresses": list(net.loopback_addresses),
                    "local_routes": list(net.local_routes),
                    "gateway": net.gateway, "router": net.router, "readonly": readonly}
            path = self.run_dir / f"{net.name}.json"
            path.write_text(json.dumps(spec), encoding="utf-8")
            hosts.append({"name": net.name, "netns": f"h{index}", "spec": str(path)})
        warden_spec = self.run_dir / "warden.json"
        warden_spec.write_text(json.dumps({
            "python": sys.executable, "nshost": str(NSHOST), "hosts": hosts,
            "timeout": timeout}), encoding="utf-8")
        self._warden = await asyncio.create_subprocess_exec(
            "unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork",
            "--kill-child", "--mount-proc", "--", sys.executable, "-P", str(WARDEN),
            str(warden_spec), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent)
        assert self._warden.stdout is not None
        failures: list[str] = []
        async with asyncio.timeout(timeout + 5.0):
            while True:
                line = (await self._warden.stdout.readline()).decode(errors="replace")
                if not line:
                    failures.append("the warden exited")
                    break
                word, _, rest = line.strip().partition(" ")
                if word == "up":
                    break
                if word in ("failed", "error"):
                    failures.append(rest)
        if failures:
            await self.stop()
            raise UserError("The lab could not build its confined hosts: "
                            + "; ".join(failures))
        for handle in self.handles.values():
            handle.pid = await asyncio.to_thread(handle.peer_pid)

    def handle(self, name: str) -> HostHandle:
        """The running host ``name``."""
        return self.handles[name]

    async def stop(self) -> None:
        """End the warden: every host, process, mount and namespace of the lab goes."""
        warden, self._warden = self._warden, None
        if warden is None:
            return
        if warden.stdin is not None:
            warden.stdin.close()
        try:
            async with asyncio.timeout(5.0):
                await warden.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                warden.kill()
            await warden.wait()
        for handle in self.handles.values():
            with contextlib.suppress(OSError):
                handle.control.unlink()


__all__ = ["Confinement", "HostHandle", "HostNetwork", "LabAddressRefused", "guard_address",
           "unavailable"]
