"""KTHW profiles from the inventory: exact subjects and SANs; pairs written 0600 atomically."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tui.core.inventory.load import load_inventory
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.profiles import Profile, profile_named, profiles_for, write_pair

CONFIG = Path(__file__).resolve().parents[2] / "config"
SEED = CONFIG / "something.local.toml"
KTHW = CONFIG / "kthw-gcp.toml"

API_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster", "kubernetes.svc.cluster.local",
           "kubernetes.default.svc.cluster.local")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("pki"))


def test_seed_kubernetes_profile_has_exact_sans() -> None:
    kubernetes = profile_named(load_inventory(SEED), "kubernetes")
    assert (kubernetes.common_name, kubernetes.organization) == ("kubernetes", "Kubernetes")
    assert kubernetes.ip_addresses == ("10.110.0.1", "10.10.0.10", "10.10.0.11", "10.10.0.12",
                                       "10.50.0.1", "127.0.0.1")
    assert kubernetes.dns_names == (*API_DNS, "kubernetes.something.local")
    reasons = {s.value: s.reason for s in kubernetes.sans_reasons}
    assert set(reasons) == set(kubernetes.ip_addresses) | set(kubernetes.dns_names)
    assert "loopback" in reasons["127.0.0.1"] and "VIP" in reasons["10.50.0.1"]
    assert kubernetes.validity_days == 365


def test_kthw_gcp_kubernetes_profile_has_exact_sans() -> None:
    kubernetes = profile_named(load_inventory(KTHW), "kubernetes")
    assert kubernetes.ip_addresses == ("10.32.0.1", "10.240.0.10", "10.240.0.11",
                                       "10.240.0.12", "203.0.113.10", "127.0.0.1")
    assert kubernetes.dns_names == API_DNS  # no api.hostname in the KTHW file


def test_profiles_follow_kthw_subjects_in_order() -> None:
    profiles = profiles_for(load_inventory(SEED))
    assert [(p.name, p.common_name, p.organization) for p in profiles] == [
        ("admin", "admin", "system:masters"),
        ("worker-0", "system:node:worker-0", "system:nodes"),
        ("worker-1", "system:node:worker-1", "system:nodes"),
        ("worker-2", "system:node:worker-2", "system:nodes"),
        ("kube-controller-manager", "system:kube-controller-manager",
         "system:kube-controller-manager"),
        ("kube-proxy", "system:kube-proxy", "system:node-proxier"),
        ("kube-scheduler", "system:kube-scheduler", "system:kube-scheduler"),
        ("kubernetes", "kubernetes", "Kubernetes"),
        ("service-account", "service-accounts", "Kubernetes"),
    ]
    clients = [p for p in profiles if p.name in ("admin", "kube-proxy", "service-account")]
    assert all(not p.dns_names and not p.ip_addresses for p in clients)
    assert {p.organizational_unit for p in profiles} == {"Kubernetes The Hard Way"}


def test_worker_sans_are_name_and_address_plus_external_ip_when_known() -> None:
    inv = load_inventory(SEED)
    worker = profile_named(inv, "worker-1")
    assert (worker.dns_names, worker.ip_addresses) == (("worker-1",), ("10.10.0.21",))
    assert "kubelet" in worker.sans_reasons[-1].reason
    # KTHW: -hostname=NAME,EXTERNAL_IP,INTERNAL_IP; the external address comes from the SSH
    # address when it is a different routable IP, or from vars.EXTERNAL_IP.
    via_ssh = dataclasses.replace(inv.workers[0], ssh_host="198.51.100.7")
    via_var = dataclasses.replace(inv.workers[0], vars={"EXTERNAL_IP": "198.51.100.8"})
    loopback = dataclasses.replace(inv.workers[0], ssh_host="127.0.10.20")
    for host, expected in ((via_ssh, ("198.51.100.7", "10.10.0.20")),
                           (via_var, ("198.51.100.8", "10.10.0.20")),
                           (loopback, ("10.10.0.20",))):
        changed = dataclasses.replace(inv, workers=(host,))
        assert profile_named(changed, "worker-0").ip_addresses == expected


def test_write_pair_writes_key_0600_and_cert_0644_without_temp_files(
        tmp_path: Path, ca: CertificateAuthority) -> None:
    profile = Profile("admin", "admin", "system:masters")
    first = ca.issue(profile)
    cert_path, key_path = write_pair(tmp_path / "out", "admin", first)
    assert (cert_path.name, key_path.name) == ("admin.pem", "admin-key.pem")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644
    assert cert_path.read_bytes() == first.cert_pem and key_path.read_bytes() == first.key_pem
    second = ca.issue(profile)
    write_pair(tmp_path / "out", "admin", second)  # leaves may be replaced (atomically)
    assert key_path.read_bytes() == second.key_pem
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["admin-key.pem",
                                                                   "admin.pem"]


def test_issued_certificate_carries_the_profile(ca: CertificateAuthority) -> None:
    kubernetes = profile_named(load_inventory(SEED), "kubernetes")
    cert = ca.issue(kubernetes).cert
    subject = {a.oid: a.value for a in cert.subject}
    assert subject == {NameOID.COUNTRY_NAME: "US", NameOID.STATE_OR_PROVINCE_NAME: "Oregon",
                       NameOID.LOCALITY_NAME: "Portland", NameOID.ORGANIZATION_NAME: "Kubernetes",
                       NameOID.ORGANIZATIONAL_UNIT_NAME: "Kubernetes The Hard Way",
                       NameOID.COMMON_NAME: "kubernetes"}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert tuple(san.get_values_for_type(x509.DNSName)) == kubernetes.dns_names
    assert tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) == (
        kubernetes.ip_addresses)
    admin = ca.issue(Profile("admin", "admin", "system:masters")).cert
    with pytest.raises(x509.ExtensionNotFound):
        admin.extensions.get_extension_for_class(x509.SubjectAlternativeName)
