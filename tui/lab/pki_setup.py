"""The lab's PKI: a KTHW certificate authority in ``DIR/pki`` and the certificates on hosts.

``DIR/pki`` is the default ``--pki`` directory of every ``hardway certs`` command for the
lab (``pki/`` beside the inventory), so the product finds the lab's CA where it would find
a user's.  The CA is created once and kept; a certificate is issued again only when the
one on disk no longer fits its profile (other subject or SANs, another CA, a key that does
not match, fewer than 30 days left), so a lab directory that is reused starts fast and a
``hardway certs issue`` fix survives a lab restart.

The lab's own certificates use ECDSA P-256 keys by default: issuing them costs
microseconds where RSA 2048 costs ~50 ms each, and labs start often (tests).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from tui.core.inventory.model import Host, Inventory
from tui.core.pki.ca import CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority
from tui.core.pki.profiles import Profile, write_pair
from tui.lab.control_plane import ENCRYPTION_CONFIG, host_file, write_bytes

PKI_DIR = "pki"
RENEW_BEFORE = dt.timedelta(days=30)
LAB_KEY_TYPE = "ecdsa"

CONTROLLER_FILES = ("ca.pem", "ca-key.pem", "kubernetes.pem", "kubernetes-key.pem",
                    "service-account.pem", "service-account-key.pem")
ETCD_FILES = ("ca.pem", "kubernetes.pem", "kubernetes-key.pem")
KUBELET_DIR = "/var/lib/kubelet"
CONTROLLER_KUBECONFIGS = ("kube-controller-manager.kubeconfig", "kube-scheduler.kubeconfig")
"""Moved into /var/lib/kubernetes by KTHW doc 08 (when the lab has made them)."""


@dataclass(frozen=True)
class PkiReport:
    """What :func:`ensure_pki` did.

    Attributes:
        directory: the PKI directory.
        created_ca: True when the CA was created now.
        issued: stems of the certificates issued now.
        kept: stems of the certificates that were still right.
    """

    directory: Path
    created_ca: bool
    issued: tuple[str, ...]
    kept: tuple[str, ...]


def load_or_create_ca(directory: Path, key_type: str = LAB_KEY_TYPE) -> tuple[
        CertificateAuthority, bool]:
    """The CA in ``directory``, created when neither ca.pem nor ca-key.pem exists."""
    if (directory / CA_CERT_FILE).exists() or (directory / CA_KEY_FILE).exists():
        return CertificateAuthority.load(directory), False
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return CertificateAuthority.create(directory, key_type=key_type), True


def fits(directory: Path, profile: Profile, ca: CertificateAuthority,
         now: dt.datetime | None = None) -> bool:
    """True when ``NAME.pem``/``NAME-key.pem`` exist and still match ``profile`` and ``ca``."""
    try:
        cert = x509.load_pem_x509_certificate((directory / profile.cert_file).read_bytes())
        key = serialization.load_pem_private_key(
            (directory / profile.key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    now = now or dt.datetime.now(dt.UTC)
    if cert.issuer != ca.cert.subject or cert.not_valid_after_utc - RENEW_BEFORE < now:
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    der = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, der) != \
            cert.public_key().public_bytes(serialization.Encoding.DER, der):
        return False
    return _subject_and_sans(cert) == _wanted(profile)


def _subject_and_sans(cert: x509.Certificate) -> tuple[object, ...]:
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    org = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = frozenset(sans.get_values_for_type(x509.DNSName))
        ips = frozenset(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = frozenset(), frozenset()
    return (cn, org, dns, ips)


def _wanted(profile: Profile) -> tuple[object, ...]:
    return ([profile.common_name], [profile.organization], frozenset(profile.dns_names),
            frozenset(profile.ip_addresses))


def ensure_pki(directory: Path, profiles: Sequence[Profile], *,
               key_type: str = LAB_KEY_TYPE) -> PkiReport:
    """Create the CA if needed and (re)issue every certificate that does not fit its profile.

    Raises:
        UserError: the directory holds half a CA or files that cannot be read or written.
    """
    ca, created = load_or_create_ca(directory, key_type)
    issued, kept = [], []
    for profile in profiles:
        if not created and fits(directory, profile, ca):
            kept.append(profile.name)
            continue
        write_pair(directory, profile.name, ca.issue(profile, key_type=key_type))
        issued.append(profile.name)
    return PkiReport(directory, created, tuple(issued), tuple(kept))


def _copy(source: Path, target: Path) -> None:
    mode = 0o600 if source.name.endswith("-key.pem") or source.name == ENCRYPTION_CONFIG \
        else 0o644
    write_bytes(target, source.read_bytes(), mode)


def install_controller(pki_dir: Path, inventory: Inventory, host: Host) -> list[Path]:
    """KTHW's controller files: /var/lib/kubernetes (with the encryption config), /etc/etcd."""
    paths = inventory.paths
    written = []
    kubeconfigs = tuple(name for name in CONTROLLER_KUBECONFIGS if (pki_dir / name).exists())
    for directory, names in ((paths.kubernetes_config,
                              (*CONTROLLER_FILES, ENCRYPTION_CONFIG, *kubeconfigs)),
                             (paths.etcd_config, ETCD_FILES)):
        for name in names:
            target = host_file(host, f"{directory.rstrip('/')}/{name}")
            _copy(pki_dir / name, target)
            written.append(target)
    return written


def install_worker(pki_dir: Path, inventory: Inventory, host: Host) -> list[Path]:
    """KTHW's worker files: ca.pem in /var/lib/kubernetes, NAME(-key).pem in /var/lib/kubelet."""
    targets = [(pki_dir / "ca.pem",
                host_file(host, f"{inventory.paths.kubernetes_config.rstrip('/')}/ca.pem"))]
    for name in (f"{host.name}.pem", f"{host.name}-key.pem"):
        targets.append((pki_dir / name, host_file(host, f"{KUBELET_DIR}/{name}")))
    for source, target in targets:
        _copy(source, target)
    return [target for _source, target in targets]


def install(pki_dir: Path, inventory: Inventory, hosts: Iterable[Host] | None = None) -> None:
    """Put every host's certificates in place (controllers and workers)."""
    for host in hosts if hosts is not None else inventory.hosts:
        if host.role == "controller":
            install_controller(pki_dir, inventory, host)
        else:
            install_worker(pki_dir, inventory, host)
