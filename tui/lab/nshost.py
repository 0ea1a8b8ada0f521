"""A confined lab host's init: builds its root, brings up its network, hands out sockets.

Run by the lab's warden (:mod:`tui.lab.warden`) as the first process of a new mount, PID
and UTS namespace, inside the host's own network namespace, all owned by the lab's user
namespace::

    python -P nshost.py SPEC.json

It must not import ``tui`` (it runs as a plain script, fast, standard library only).  In
order it:

1. listens on its control socket (a path in the lab directory, bound before the root
   changes, so the lab process outside can reach it);
2. sets the host name (UTS namespace);
3. builds the host's root on a tmpfs and pivots into it: ``/usr`` (and the ``/bin``,
   ``/lib`` links) are the machine's, read-only; ``/etc`` and ``/usr/local`` are overlays
   whose writable layer is ``DIR/hosts/NAME/<dir>``; ``/var``, ``/opt``, ``/root``,
   ``/home``, ``/tmp`` and ``/run`` (= ``/var/run``) are the host's own directories (a
   fresh ``/var``: the machine's package state and service data stay out); its own
   ``/proc`` (only its processes), ``/sys``, ``/dev`` (a private ``/dev/shm``); the Python
   and project directories the lab's shims run from, read-only, at their own paths;
4. configures ``lo`` and ``eth0`` (addresses, default route) with ``ip -batch``;
5. serves the control socket: ``listen`` and ``socket`` answer a file descriptor of a TCP
   socket made in this host's network namespace (SCM_RIGHTS), ``killall`` ends every other
   process of the host (a host "dying"), ``link`` takes ``eth0`` down or up (a powered-off
   VM: its peers' packets go unanswered), ``ping`` answers; it reaps orphans as PID 1 does.

Nothing it does is visible outside the lab's namespaces; when it dies, the kernel ends
every process of the host.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import ctypes.util
import json
import os
import select
import signal
import socket
import subprocess
import sys
from typing import Any

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class SetupError(Exception):
    """The host cannot be built; the message says which step and why."""


def _mount(source: str, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    result = _libc.mount(source.encode(), target.encode(),
                         fstype.encode() if fstype else None, flags,
                         data.encode() if data else None)
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"mount {source} on {target} ({fstype or 'bind'}): "
                         f"{os.strerror(err)}")


def _pivot_root(new: str, old: str) -> None:
    if _libc.syscall(155, new.encode(), old.encode()) != 0:  # SYS_pivot_root on x86_64
        err = ctypes.get_errno()
        raise SetupError(f"pivot_root {new}: {os.strerror(err)}")


def _bind(source: str, target: str, *, readonly: bool, recursive: bool = False) -> None:
    flags = MS_BIND | (MS_REC if recursive else 0)
    _mount(source, target, None, flags)
    if readonly:
        _mount("none", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)


def _mkdir(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)


OVERLAYS = ("etc", "usr/local")
OWN = (("var", "var"), ("opt", "opt"), ("root", "root"), ("home", "home"), ("tmp", "tmp"),
       ("run", "var/run"))
SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def build_root(spec: dict[str, Any]) -> None:
    """Assemble the host's root under ``HOSTDIR/.root`` and pivot into it."""
    host_dir = spec["host_dir"]
    new = os.path.join(host_dir, ".root")
    work = os.path.join(host_dir, ".work")
    _mkdir(new)
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    for name in SYSTEM:
        source = "/" + name
        if os.path.islink(source):
            os.symlink(os.readlink(source), os.path.join(new, name))
        elif os.path.isdir(source):
            _mkdir(os.path.join(new, name))
            _bind(source, os.path.join(new, name), readonly=True, recursive=True)
    _mkdir(os.path.join(new, "usr"))
    _bind("/usr", os.path.join(new, "usr"), readonly=True, recursive=True)
    for name in OVERLAYS:
        upper = os.path.join(host_dir, name)
        scratch = os.path.join(work, name.replace("/", "-"))
        target = os.path.join(new, name)
        _mkdir(upper)
        _mkdir(scratch)
        _mkdir(target)
        lower = "/" + name
        if not os.path.isdir(lower):
            _bind(upper, target, readonly=False)
            continue
        options = f"lowerdir={lower},upperdir={upper},workdir={scratch}"
        try:
            _mount("overlay", target, "overlay", 0, options)
        except SetupError:
            _mount("overlay", target, "overlay", 0, options + ",userxattr")
    # The machine's units stay out of sight: /etc/systemd is the host's own.
    own_systemd = os.path.join(host_dir, "etc", "systemd")
    _mkdir(own_systemd)
    _bind(own_systemd, os.path.join(new, "etc", "systemd"), readonly=False)
    for name, source in OWN:
        target = os.path.join(new, name)
        _mkdir(target)
        _mkdir(os.path.join(host_dir, source))
        _bind(os.path.join(host_dir, source), target, readonly=False)
    for name in ("proc", "sys", "dev"):
        _mkdir(os.path.join(new, name))
    _mount("proc", os.path.join(new, "proc"), "proc", MS_NOSUID | MS_NODEV)
    try:
        _mount("sysfs", os.path.join(new, "sys"), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV)
    except SetupError:
        _bind("/sys", os.path.join(new, "sys"), readonly=True, recursive=True)
    _bind("/dev", os.path.join(new, "dev"), readonly=False, recursive=True)
    shm = os.path.join(new, "dev", "shm")
    if os.path.isdir(shm):
        _mount("tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for path in spec.get("readonly", []):
        if not os.path.isdir(path):
            continue
        target = new + path
        _mkdir(target)
        _bind(path, target, readonly=True, recursive=True)
    old = os.path.join(new, ".oldroot")
    _mkdir(old)
    _pivot_root(new, old)
    os.chdir("/")
    if _libc.umount2(b"/.oldroot", MNT_DETACH) != 0:
        raise SetupError(f"umount of the old root: {os.strerror(ctypes.get_errno())}")
    os.rmdir("/.oldroot")


def configure_network(spec: dict[str, Any]) -> None:
    """``lo`` up, the host's addresses on ``eth0`` (and ``lo``), its routes."""
    lines = ["link set lo up"]
    for address in spec.get("addresses", []):
        lines.append(f"address add {address} dev eth0")
    for address in spec.get("loopback_addresses", []):
        lines.append(f"address add {address} dev lo")
    lines.append("link set eth0 up")
    for block in spec.get("local_routes", []):
        lines.append(f"route add local {block} dev lo")
    gateway = spec.get("gateway")
    if gateway:
        lines.append(f"route add default via {gateway}")
    result = subprocess.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n", text=True,
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise SetupError(f"network setup: {result.stderr.strip() or result.stdout.strip()}")
    if spec.get("router"):
        with open("/proc/sys/net/ipv4/ip_forward", "w", encoding="ascii") as handle:
            handle.write("1\n")


def _reap(*_args: object) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _answer(conn: socket.socket, reply: dict[str, Any], fd: int | None = None) -> None:
    data = (json.dumps(reply) + "\n").encode()
    if fd is None:
        conn.sendall(data)
    else:
        conn.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def _handle(conn: socket.socket, request: dict[str, Any]) -> None:
    op = request.get("op")
    if op == "ping":
        _answer(conn, {"ok": True, "pid": os.getpid()})
    elif op in ("listen", "socket"):
        family = socket.AF_INET6 if ":" in str(request.get("address", "")) else socket.AF_INET
        kind = socket.SOCK_DGRAM if request.get("udp") else socket.SOCK_STREAM
        sock = socket.socket(family, kind)
        try:
            if op == "listen":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((request["address"], int(request["port"])))
                if kind == socket.SOCK_STREAM:
                    sock.listen(int(request.get("backlog", 128)))
        except OSError as exc:
            sock.close()
            _answer(conn, {"ok": False, "errno": exc.errno, "error": exc.strerror or str(exc)})
            return
        _answer(conn, {"ok": True}, sock.fileno())
        sock.close()
    elif op == "link":  # the host's network cable: "down" is a powered-off VM to its peers
        state = "up" if request.get("up") else "down"
        result = subprocess.run(["ip", "link", "set", "eth0", state], capture_output=True,
                                text=True, check=False)
        _answer(conn, {"ok": result.returncode == 0, "error": result.stderr.strip()})
    elif op == "killall":
        os.kill(-1, signal.SIGKILL)  # as PID 1: every process of this host but itself
        _reap()
        _answer(conn, {"ok": True})
    else:
        _answer(conn, {"ok": False, "error": f"unknown request {op!r}"})


def serve(server: socket.socket) -> None:
    """Answer control requests forever (one JSON line per request)."""
    buffers: dict[socket.socket, bytes] = {}
    while True:
        try:
            ready, _w, _x = select.select([server, *buffers], [], [], 1.0)
        except InterruptedError:
            continue
        _reap()
        for sock in ready:
            if sock is server:
                conn, _addr = server.accept()
                buffers[conn] = b""
                continue
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                buffers.pop(sock, None)
                sock.close()
                continue
            buffers[sock] += chunk
            while b"\n" in buffers[sock]:
                line, _, rest = buffers[sock].partition(b"\n")
                buffers[sock] = rest
                try:
                    _handle(sock, json.loads(line))
                except (OSError, ValueError, KeyError) as exc:
                    try:
                        _answer(sock, {"ok": False, "error": str(exc)})
                    except OSError:
                        break


def _listen_unix(path: str) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    directory, name = os.path.split(path)
    here = os.getcwd()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.chdir(directory)  # sun_path is short: bind relative to the directory
    try:
        server.bind(name)
    finally:
        os.chdir(here)
    server.listen(64)
    return server


def main(argv: list[str]) -> int:
    """Build the host from the spec file ``argv[1]`` and serve its control socket."""
    with open(argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    signal.signal(signal.SIGCHLD, _reap)
    try:
        server = _listen_unix(spec["control"])
        socket.sethostname(spec["hostname"])
        build_root(spec)
        configure_network(spec)
    except (SetupError, OSError) as exc:
        print(f"nshost {spec.get('hostname')}: {exc}", file=sys.stderr, flush=True)
        return 1
    print("ready", flush=True)
    serve(server)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
