"""Typed inventory model: the cluster as hardway sees it, plus derived facts.

The model is built by :func:`tui.core.inventory.load.load_inventory` from a TOML file;
nothing here reads files.  Every value is already validated and normalised.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Role = Literal["controller", "worker"]
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class SSHOptions:
    """How to reach a host over SSH (defaults merged with per-host overrides).

    Attributes:
        user: login user; None means "as ~/.ssh/config or the local user".
        identity: private key file; None means ssh-agent / ~/.ssh/config.
        port: TCP port of sshd.
        jump: name of the jump host (the hypervisor) or None.
        known_hosts: extra known_hosts file checked before ~/.ssh/known_hosts.
        config: OpenSSH client config file (default ~/.ssh/config when it exists).
    """

    user: str | None = None
    identity: Path | None = None
    port: int = 22
    jump: str | None = None
    known_hosts: Path | None = None
    config: Path | None = None


@dataclass(frozen=True)
class Host:
    """One machine of the cluster (a controller or a worker).

    Attributes:
        name: DNS label, e.g. ``controller-0``; also ETCD_NAME.
        address: internal (node network) IPv4 address.
        role: ``controller`` or ``worker``.
        ssh: resolved SSH options.
        ssh_host: address or name to dial (defaults to ``address``).
        root: path prefix for every remote path ("" on a real host; a jail or lab root).
        vars: free-form per-host variables, exported into commands and shells.
    """

    name: str
    address: ipaddress.IPv4Address
    role: Role
    ssh: SSHOptions = field(default_factory=SSHOptions)
    ssh_host: str = ""
    root: str = ""
    vars: dict[str, str] = field(default_factory=dict)

    @property
    def dial(self) -> str:
        """The host name or address the SSH client connects to."""
        return self.ssh_host or str(self.address)

    def env(self) -> dict[str, str]:
        """Variables exported into every command and shell on this host."""
        values = {
            "HOST_NAME": self.name,
            "INTERNAL_IP": str(self.address),
            "ETCD_NAME": self.name,
        }
        values.update(self.vars)
        return values

    def path(self, remote: str) -> str:
        """Map an absolute remote path through this host's ``root`` prefix."""
        if not self.root:
            return remote
        return self.root.rstrip("/") + "/" + remote.lstrip("/")


@dataclass(frozen=True)
class Networks:
    """The cluster's address blocks."""

    nodes: ipaddress.IPv4Network
    control_plane_services: ipaddress.IPv4Network | None
    pods: ipaddress.IPv4Network
    services: ipaddress.IPv4Network


@dataclass(frozen=True)
class Api:
    """The Kubernetes API endpoint: virtual IP, DNS name and port."""

    vip: ipaddress.IPv4Address | None
    hostname: str | None
    port: int = 6443


@dataclass(frozen=True)
class Hypervisor:
    """The admin/hypervisor box that load-balances the VIP and may be the jump host."""

    name: str
    address: str
    os: str = "freebsd"
    firewall: str = "ipfw"
    ssh: SSHOptions = field(default_factory=SSHOptions)


@dataclass(frozen=True)
class Dns:
    """The authoritative DNS server for the cluster zone."""

    server: str
    zone: str
    port: int = 53
    mode: Literal["rfc2136", "zonefile"] = "rfc2136"
    tsig_name: str | None = None
    tsig_algorithm: str = "hmac-sha256"
    tsig_secret_file: Path | None = None
    zone_file: str | None = None


@dataclass(frozen=True)
class Paths:
    """Remote paths on every host (KTHW defaults); mapped through ``Host.root``."""

    etcd_config: str = "/etc/etcd"
    etcd_data: str = "/var/lib/etcd"
    kubernetes_config: str = "/var/lib/kubernetes"
    kubernetes_run: str = "/var/run/kubernetes"
    bin: str = "/usr/local/bin"
    systemd_units: str = "/etc/systemd/system"


@dataclass(frozen=True)
class Versions:
    """Component versions (KTHW 1.18.6 defaults)."""

    etcd: str = "3.4.10"
    kubernetes: str = "1.18.6"


@dataclass(frozen=True)
class San:
    """A required subject alternative name and who dials it."""

    kind: Literal["ip", "dns"]
    value: str
    reason: str


@dataclass(frozen=True)
class Finding:
    """A validation or lint result: severity, the key path it concerns, a sentence."""

    severity: Severity
    key: str
    message: str


@dataclass(frozen=True)
class Inventory:
    """The whole cluster description, validated, with derived facts."""

    path: Path
    name: str
    domain: str
    networks: Networks
    api: Api
    ssh: SSHOptions
    controllers: tuple[Host, ...]
    workers: tuple[Host, ...] = ()
    hypervisor: Hypervisor | None = None
    dns: Dns | None = None
    paths: Paths = field(default_factory=Paths)
    versions: Versions = field(default_factory=Versions)
    settings: dict[str, object] = field(default_factory=dict)

    @property
    def hosts(self) -> tuple[Host, ...]:
        """Controllers then workers, in file order."""
        return self.controllers + self.workers

    def host(self, name: str) -> Host:
        """Return the host called ``name`` (KeyError when unknown)."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def groups(self) -> dict[str, list[str]]:
        """Named groups for host selection: controllers, workers, all."""
        return {
            "controllers": [h.name for h in self.controllers],
            "workers": [h.name for h in self.workers],
            "all": [h.name for h in self.hosts],
        }

    @property
    def etcd_initial_cluster(self) -> str:
        """``controller-0=https://IP0:2380,...`` for etcd's --initial-cluster."""
        return ",".join(f"{h.name}=https://{h.address}:2380" for h in self.controllers)

    @property
    def etcd_servers(self) -> str:
        """``https://IP0:2379,...`` for kube-apiserver's --etcd-servers."""
        return ",".join(f"https://{h.address}:2379" for h in self.controllers)

    @property
    def first_service_ip(self) -> ipaddress.IPv4Address:
        """The first address of the service CIDR (the ``kubernetes`` service)."""
        return self.networks.services.network_address + 1

    @property
    def cluster_dns_ip(self) -> ipaddress.IPv4Address:
        """The cluster DNS service address (.10 of the service CIDR)."""
        return self.networks.services.network_address + 10

    @property
    def api_server_sans(self) -> tuple[San, ...]:
        """Every SAN the API server certificate needs, with who dials it."""
        sans: list[San] = [
            San("ip", str(self.first_service_ip),
                "first service IP: pods reach the API as the `kubernetes` service"),
        ]
        for host in self.controllers:
            sans.append(San("ip", str(host.address),
                            f"{host.name}'s address: etcd peers, the load balancer and "
                            "direct checks dial it"))
        if self.api.vip is not None:
            sans.append(San("ip", str(self.api.vip),
                            "the API VIP: kubelets, kube-proxy and kubectl dial it"))
        sans.append(San("ip", "127.0.0.1",
                        "loopback: controller-manager, scheduler, admin kubeconfig "
                        "and the nginx health proxy dial https://127.0.0.1:6443"))
        sans.append(San("dns", "localhost", "local clients that dial by name"))
        for name in ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                     "kubernetes.default.svc.cluster", "kubernetes.svc.cluster.local",
                     "kubernetes.default.svc.cluster.local"):
            sans.append(San("dns", name, "in-cluster clients resolve the API by this name"))
        if self.api.hostname:
            sans.append(San("dns", self.api.hostname,
                            "the API DNS name in kubeconfigs for workers and admins"))
        return tuple(sans)
