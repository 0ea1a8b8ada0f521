"""KTHW certificate profiles (doc 04) derived from the inventory, and writing issued pairs.

Every profile names its file stem (``kubernetes`` -> kubernetes.pem + kubernetes-key.pem),
the subject and the SANs, each SAN with who dials it (``sans_reasons``).

Usage::

    for profile in profiles_for(inventory):
        write_pair(pki_dir, profile.name, ca.issue(profile))
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.inventory.model import Host, Inventory, San
from tui.core.pki.ca import write_atomic

if TYPE_CHECKING:
    from tui.core.pki.ca import Issued

__all__ = ["KTHW_UNIT", "LEAF_VALIDITY_DAYS", "Profile", "profile_named", "profiles_for",
           "write_pair"]

KTHW_UNIT = "Kubernetes The Hard Way"  # OU of every KTHW leaf certificate
LEAF_VALIDITY_DAYS = 365  # cfssl profile "kubernetes": 8760h


@dataclass(frozen=True)
class Profile:
    """What one certificate must say.

    Attributes:
        name: file stem, e.g. ``kubernetes``, ``admin``, ``worker-0``.
        common_name: subject CN (the Kubernetes user name for client certificates).
        organization: subject O (the Kubernetes group).
        dns_names: DNS SANs, in order.
        ip_addresses: IP SANs, in order (dotted quads).
        validity_days: lifetime (KTHW: 365).
        sans_reasons: every SAN with who dials it (empty for client-only certificates).
        organizational_unit: subject OU (KTHW: "Kubernetes The Hard Way").
    """

    name: str
    common_name: str
    organization: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    validity_days: int = LEAF_VALIDITY_DAYS
    sans_reasons: tuple[San, ...] = ()
    organizational_unit: str = KTHW_UNIT

    @property
    def cert_file(self) -> str:
        """``NAME.pem``."""
        return f"{self.name}.pem"

    @property
    def key_file(self) -> str:
        """``NAME-key.pem``."""
        return f"{self.name}-key.pem"

    @classmethod
    def from_sans(cls, name: str, common_name: str, organization: str,
                  sans: tuple[San, ...], **kwargs: object) -> Profile:
        """A profile whose DNS and IP SANs are exactly ``sans`` (reasons kept)."""
        return cls(name, common_name, organization,
                   dns_names=tuple(s.value for s in sans if s.kind == "dns"),
                   ip_addresses=tuple(s.value for s in sans if s.kind == "ip"),
                   sans_reasons=sans, **kwargs)  # type: ignore[arg-type]


def profiles_for(inventory: Inventory) -> list[Profile]:
    """Every KTHW certificate for this cluster, in KTHW's order.

    admin, worker-N (one per worker), kube-controller-manager, kube-proxy, kube-scheduler,
    kubernetes (the API server; SANs = ``inventory.api_server_sans``), service-account.
    """
    profiles = [Profile("admin", "admin", "system:masters")]
    profiles += [_worker(host) for host in inventory.workers]
    profiles += [
        Profile("kube-controller-manager", "system:kube-controller-manager",
                "system:kube-controller-manager"),
        Profile("kube-proxy", "system:kube-proxy", "system:node-proxier"),
        Profile("kube-scheduler", "system:kube-scheduler", "system:kube-scheduler"),
        Profile.from_sans("kubernetes", "kubernetes", "Kubernetes", inventory.api_server_sans),
        Profile("service-account", "service-accounts", "Kubernetes"),
    ]
    return profiles


def profile_named(inventory: Inventory, name: str) -> Profile:
    """The profile whose file stem is ``name`` (KeyError when there is none)."""
    for profile in profiles_for(inventory):
        if profile.name == name:
            return profile
    raise KeyError(name)


def _worker(host: Host) -> Profile:
    """KTHW: CN system:node:NAME, O system:nodes, SANs NAME, external IP, internal IP."""
    sans = [San("dns", host.name,
                f"{host.name}'s node name: the API server dials its kubelet by it "
                "(logs, exec, port-forward)")]
    external = _external_ip(host)
    if external is not None:
        sans.append(San("ip", external,
                        f"{host.name}'s external address: clients outside the node network "
                        "dial its kubelet there"))
    sans.append(San("ip", str(host.address),
                    f"{host.name}'s address: the API server dials its kubelet on :10250"))
    return Profile.from_sans(host.name, f"system:node:{host.name}", "system:nodes", tuple(sans))


def _external_ip(host: Host) -> str | None:
    """``vars.EXTERNAL_IP``, else the SSH address when it is a different, routable IPv4."""
    candidate = host.vars.get("EXTERNAL_IP") or host.ssh_host
    try:
        address = ipaddress.IPv4Address(candidate)
    except ValueError:
        return None
    if address == host.address or address.is_loopback:
        return None
    return str(address)


def write_pair(directory: Path, name: str, issued: Issued) -> tuple[Path, Path]:
    """Write ``NAME.pem`` (0644) and ``NAME-key.pem`` (0600) atomically; returns both paths.

    The key is written first, so a reader never sees a new certificate beside an old key for
    longer than one rename.

    Raises:
        UserError: the directory is not writable.
    """
    directory = Path(directory)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    write_atomic(key_path, issued.key_pem, 0o600)
    write_atomic(cert_path, issued.cert_pem, 0o644)
    return cert_path, key_path
