"""The ``etcd.service`` unit of KTHW doc 07, rendered from the inventory.

For KTHW's own topology (``config/kthw-gcp.toml``) the text is byte for byte the file
doc 07's heredoc writes on each controller (``tests/data/kthw-1.18.6-etcd.service`` is
controller-0's).  For any inventory the flags are the same, with its names, addresses,
paths (``inventory.paths``: logical paths, mapped through ``Host.path()`` only when a file
is written) and token.

Usage::

    text = render_unit(inventory, inventory.host("controller-0"))
    flags = unit_flags(inventory, host, state="existing")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tui.core.inventory.model import Host, Inventory

UNIT_NAME = "etcd.service"
SERVICE = "etcd"
DEFAULT_TOKEN = "etcd-cluster-0"
CLIENT_PORT = 2379
PEER_PORT = 2380
CERT_FILE = "kubernetes.pem"
KEY_FILE = "kubernetes-key.pem"
CA_FILE = "ca.pem"
ClusterState = Literal["new", "existing"]


@dataclass(frozen=True)
class EtcdPaths:
    """Where etcd's files live on a controller (logical paths).

    Attributes:
        binary: the etcd executable (``/usr/local/bin/etcd``).
        etcdctl: etcdctl beside it.
        config: the directory with the certificates (``/etc/etcd``).
        data: the data directory (``/var/lib/etcd``).
        unit: the unit file (``/etc/systemd/system/etcd.service``).
    """

    binary: str
    etcdctl: str
    config: str
    data: str
    unit: str

    @property
    def cert(self) -> str:
        """The serving, peer and client certificate (``kubernetes.pem``)."""
        return f"{self.config}/{CERT_FILE}"

    @property
    def key(self) -> str:
        """Its key."""
        return f"{self.config}/{KEY_FILE}"

    @property
    def ca(self) -> str:
        """The cluster CA."""
        return f"{self.config}/{CA_FILE}"


def etcd_paths(inventory: Inventory) -> EtcdPaths:
    """The logical paths of etcd's files for ``inventory``."""
    paths = inventory.paths
    bin_dir = paths.bin.rstrip("/") or ""
    return EtcdPaths(binary=f"{bin_dir}/etcd", etcdctl=f"{bin_dir}/etcdctl",
                     config=paths.etcd_config.rstrip("/"), data=paths.etcd_data.rstrip("/"),
                     unit=f"{paths.systemd_units.rstrip('/')}/{UNIT_NAME}")


def peer_url(host: Host) -> str:
    """``https://IP:2380``."""
    return f"https://{host.address}:{PEER_PORT}"


def client_url(host: Host) -> str:
    """``https://IP:2379`` (the advertised client URL)."""
    return f"https://{host.address}:{CLIENT_PORT}"


def initial_cluster(members: tuple[Host, ...] | list[Host]) -> str:
    """``name=https://IP:2380,...`` for ``--initial-cluster``."""
    return ",".join(f"{h.name}={peer_url(h)}" for h in members)


def unit_flags(inventory: Inventory, host: Host, *, state: ClusterState = "new",
               token: str = DEFAULT_TOKEN, members: tuple[Host, ...] | None = None
               ) -> list[str]:
    """etcd's command-line words for ``host``, in KTHW's order (one word per unit line).

    Args:
        inventory: the cluster.
        host: the controller whose unit this is.
        state: ``--initial-cluster-state`` (``existing`` when a member rejoins).
        token: ``--initial-cluster-token``.
        members: the ``--initial-cluster`` members (default: every controller).
    """
    paths = etcd_paths(inventory)
    cluster = initial_cluster(members if members is not None else inventory.controllers)
    ip = host.address
    return [
        f"--name {host.name}",
        f"--cert-file={paths.cert}",
        f"--key-file={paths.key}",
        f"--peer-cert-file={paths.cert}",
        f"--peer-key-file={paths.key}",
        f"--trusted-ca-file={paths.ca}",
        f"--peer-trusted-ca-file={paths.ca}",
        "--peer-client-cert-auth",
        "--client-cert-auth",
        f"--initial-advertise-peer-urls https://{ip}:{PEER_PORT}",
        f"--listen-peer-urls https://{ip}:{PEER_PORT}",
        f"--listen-client-urls https://{ip}:{CLIENT_PORT},https://127.0.0.1:{CLIENT_PORT}",
        f"--advertise-client-urls https://{ip}:{CLIENT_PORT}",
        f"--initial-cluster-token {token}",
        f"--initial-cluster {cluster}",
        f"--initial-cluster-state {state}",
        f"--data-dir={paths.data}",
    ]


def render_unit(inventory: Inventory, host: Host, *, state: ClusterState = "new",
                token: str = DEFAULT_TOKEN, members: tuple[Host, ...] | None = None) -> str:
    """The text of ``etcd.service`` for ``host`` (see :func:`unit_flags` for the args)."""
    flags = unit_flags(inventory, host, state=state, token=token, members=members)
    lines = [f"ExecStart={etcd_paths(inventory).binary} \\"]
    lines += [f"  {flag} \\" for flag in flags[:-1]]
    lines.append(f"  {flags[-1]}")
    return "\n".join([
        "[Unit]",
        "Description=etcd",
        "Documentation=https://github.com/coreos",
        "",
        "[Service]",
        "Type=notify",
        *lines,
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def unit_state(text: str) -> ClusterState | None:
    """The ``--initial-cluster-state`` a unit's text asks for (None when absent)."""
    for word in ("--initial-cluster-state new", "--initial-cluster-state=new"):
        if word in text:
            return "new"
    for word in ("--initial-cluster-state existing", "--initial-cluster-state=existing"):
        if word in text:
            return "existing"
    return None


__all__ = ["CLIENT_PORT", "DEFAULT_TOKEN", "PEER_PORT", "SERVICE", "UNIT_NAME", "EtcdPaths",
           "client_url", "etcd_paths", "initial_cluster", "peer_url", "render_unit",
           "unit_flags", "unit_state"]
