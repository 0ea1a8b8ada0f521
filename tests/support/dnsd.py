"""DNS servers for tests: the lab's BIND and stand-in behind one interface, and NSD.

Usage (async)::

    server = await start_zone_server("bind", tmp_path, ZONE, records)
    server.address, server.port, server.key_ref, server.key_file (nsupdate -k)
    await server.stop()

:func:`running_nsd` runs a real NSD with its own config on an unprivileged port for the
zone-file mode tests.  Nothing here imports pytest.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tui.core.dns.records import Record, absolute
from tui.core.dns.tsig import TsigKeyRef
from tui.lab.bind import BindServer, named_missing_reason
from tui.lab.dns_server import StandinDnsServer

KEY_NAME = "hardway-key"
ALGORITHM = "hmac-sha256"
KINDS = ("bind", "standin")


def free_port(address: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``address`` right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def missing_reason(kind: str) -> str | None:
    """Why ``kind`` cannot run here (None when it can)."""
    if kind == "bind":
        return named_missing_reason()
    return None


def tool_missing_reason(*tools: str) -> str | None:
    """Why one of ``tools`` (dig, nsupdate, nsd...) cannot run here."""
    for tool in tools:
        if shutil.which(tool) is None:
            return (f"{tool} is not installed; run scripts/install-test-deps.sh "
                    "(bind9-dnsutils, nsd)")
    return None


def key_statement(name: str, secret: str, algorithm: str = ALGORITHM) -> str:
    """BIND's key statement, as ``tsig-keygen`` prints it (nsupdate -k reads it)."""
    return f'key "{name}" {{\n\talgorithm {algorithm};\n\tsecret "{secret}";\n}};\n'


@dataclass
class ZoneServer:
    """A running zone server and what clients need."""

    kind: str
    zone: str
    address: str
    port: int
    secret: str
    key_file: Path
    key_ref: TsigKeyRef
    server: BindServer | StandinDnsServer

    async def stop(self) -> None:
        """Stop the server."""
        await self.server.stop()

    def write_key(self, path: Path, *, name: str = KEY_NAME, secret: str | None = None,
                  algorithm: str = ALGORITHM) -> TsigKeyRef:
        """A key file (another name or secret for the wrong-key tests) and its reference."""
        path.write_text(key_statement(name, secret or self.secret, algorithm))
        path.chmod(0o600)
        return TsigKeyRef(name, algorithm, path)


async def start_zone_server(kind: str, directory: Path, zone: str,
                            records: Sequence[Record]) -> ZoneServer:
    """Start BIND or the stand-in for ``zone`` on 127.0.0.1 with a fresh key.

    BIND binds only addresses configured on an interface, so 127.0.0.1 (lo's own
    address) with a free port; the stand-in takes the same for the same tests.
    """
    directory.mkdir(parents=True, exist_ok=True)
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    address, port = "127.0.0.1", free_port()
    server: BindServer | StandinDnsServer
    if kind == "bind":
        server = BindServer(zone, records, key_name=KEY_NAME, key_secret=secret,
                            algorithm=ALGORITHM, directory=directory / "named")
    else:
        server = StandinDnsServer(zone, records, key_name=KEY_NAME, key_secret=secret,
                                  algorithm=ALGORITHM)
    await server.start(address, port)
    key_file = directory / "hardway-key.key"
    key_file.write_text(key_statement(KEY_NAME, secret))
    key_file.chmod(0o600)
    return ZoneServer(kind, absolute(zone), address, port, secret, key_file,
                      TsigKeyRef(KEY_NAME, ALGORITHM, key_file), server)


def dig(server: ZoneServer | tuple[str, int], name: str, rdtype: str = "A",
        *extra: str) -> str:
    """``dig +short`` output (stripped)."""
    address, port = ((server.address, server.port) if isinstance(server, ZoneServer)
                     else server)
    result = subprocess.run(["dig", "+short", "+norecurse", "+time=2", "+tries=2",
                             f"@{address}", "-p", str(port), name, rdtype, *extra],
                            capture_output=True, text=True, timeout=30)
    return result.stdout.strip()


def nsupdate(server: ZoneServer, key_file: Path, commands: str
             ) -> subprocess.CompletedProcess[str]:
    """Run ``nsupdate -k KEY_FILE`` with ``commands`` (server and send lines added)."""
    script = f"server {server.address} {server.port}\n{commands.strip()}\nsend\n"
    return subprocess.run(["nsupdate", "-t", "5", "-k", str(key_file)], input=script,
                          capture_output=True, text=True, timeout=30)


# -- NSD -------------------------------------------------------------------------------


@dataclass
class Nsd:
    """A running NSD: its zone file, config and control command."""

    zone: str
    address: str
    port: int
    directory: Path
    zone_file: Path
    config: Path
    process: subprocess.Popen[bytes]

    @property
    def reload_command(self) -> str:
        """The command that reloads the zone (nsd-control with this config)."""
        return f"nsd-control -c {self.config} reload {self.zone.rstrip('.')}"

    def log(self) -> str:
        """NSD's log so far."""
        with contextlib.suppress(FileNotFoundError):
            return (self.directory / "nsd.log").read_text(errors="replace")
        return ""


def nsd_config(directory: Path, zone: str, address: str, port: int, zone_file: Path,
               user: str) -> str:
    """An nsd.conf that keeps everything in ``directory`` and is controlled over a Unix
    socket (no TLS keys)."""
    name = zone.rstrip(".")
    return f"""server:
    ip-address: {address}@{port}
    port: {port}
    username: "{user}"
    chroot: ""
    zonesdir: "{directory}"
    database: ""
    zonelistfile: "{directory}/zone.list"
    xfrdfile: "{directory}/xfrd.state"
    xfrdir: "{directory}"
    pidfile: "{directory}/nsd.pid"
    logfile: "{directory}/nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
remote-control:
    control-enable: yes
    control-interface: "{directory}/nsd.sock"
zone:
    name: "{name}"
    zonefile: "{zone_file}"
"""


@contextlib.contextmanager
def running_nsd(directory: Path, zone: str, zone_text: str, *, owner: str | None = None,
                address: str = "127.0.0.1") -> Iterator[Nsd]:
    """Run NSD for ``zone`` (text ``zone_text``) from ``directory`` until the block exits.

    ``owner``: the user who may edit the zone file and run nsd-control (NSD runs as that
    user); ``directory`` is made traversable for it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port(address)
    zone_file = directory / f"{zone.rstrip('.')}.zone"
    zone_file.write_text(zone_text)
    config = directory / "nsd.conf"
    user = owner or ""
    config.write_text(nsd_config(directory, zone, address, port, zone_file, user))
    if owner and os.geteuid() == 0:
        shutil.chown(directory, owner)
        for path in directory.iterdir():
            shutil.chown(path, owner)
        directory.chmod(0o755)
    process = subprocess.Popen(["nsd", "-d", "-c", str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Nsd(absolute(zone), address, port, directory, zone_file, config, process)
    try:
        deadline = time.monotonic() + 15
        while not dig((address, port), zone, "SOA"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nsd did not start: {server.log()[-2000:]}")
            time.sleep(0.1)
        if owner and os.geteuid() == 0:
            sock = directory / "nsd.sock"
            if sock.exists():
                shutil.chown(sock, owner)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


__all__ = ["ALGORITHM", "KEY_NAME", "KINDS", "Nsd", "ZoneServer", "dig", "free_port",
           "key_statement", "missing_reason", "nsd_config", "nsupdate", "running_nsd",
           "start_zone_server", "tool_missing_reason"]
