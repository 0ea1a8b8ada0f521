"""What a certificate really says: from PEM bytes, a local file, or a TLS server.

``fetch_served`` does a TLS handshake without verification and WITHOUT SNI: kube-apiserver
answers the SNI name ``apiserver-loopback-client`` with its own loopback certificate, so
sending any name could hide the certificate clients actually see.

Usage::

    info = inspect_file(Path("pki/kubernetes.pem"))
    served = await fetch_served("10.10.0.10", 6443)
    chains_to(served, ca.cert), served.fingerprint == info.fingerprint
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tui.core.errors import UserError
from tui.core.fleet.dial import Dialer, DirectDialer

__all__ = ["CertInfo", "chains_to", "fetch_served", "inspect_file", "inspect_pem",
           "key_matches"]

_NAME_LABELS = {
    NameOID.COUNTRY_NAME: "C", NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L", NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.COMMON_NAME: "CN",
}
_KEY_USAGES = (
    ("digital_signature", "digitalSignature"), ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"), ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"), ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
_EXT_KEY_USAGES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping", ExtendedKeyUsageOID.OCSP_SIGNING:
    "OCSPSigning",
}


@dataclass(frozen=True)
class CertInfo:
    """The facts of one certificate, ready to show and to diagnose.

    Attributes:
        source: where it came from (a path, ``HOST:/path`` or ``served on ADDR:PORT``).
        subject_cn, issuer_cn: common names ("" when absent).
        subject, issuer: full names, ``C=US, ST=Oregon, ..., CN=kubernetes`` (DER order).
        dns_names, ip_addresses: SANs in certificate order (IPs as strings).
        not_before, not_after: validity (aware, UTC).
        key_usage: e.g. ``("digitalSignature", "keyEncipherment")``.
        ext_key_usage: e.g. ``("serverAuth", "clientAuth")`` (dotted OID when unnamed).
        fingerprint: ``SHA256:`` + lowercase hex of the DER.
        is_ca: BasicConstraints CA:TRUE.
        self_signed: issuer equals subject and its own key verifies the signature.
        public_key_pem: SubjectPublicKeyInfo PEM (compare with a key file's public half).
        pem: the certificate as PEM.
    """

    source: str
    subject_cn: str
    subject: str
    issuer_cn: str
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    key_usage: tuple[str, ...]
    ext_key_usage: tuple[str, ...]
    fingerprint: str
    is_ca: bool
    self_signed: bool
    public_key_pem: bytes
    pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        """The parsed certificate (parsed again from ``pem``)."""
        return x509.load_pem_x509_certificate(self.pem)

    def days_left(self, now: dt.datetime | None = None) -> float:
        """Days until ``not_after`` (negative once expired)."""
        now = now or dt.datetime.now(dt.UTC)
        return (self.not_after - now).total_seconds() / 86400


def inspect_pem(data: bytes, source: str) -> CertInfo:
    """Parse the first certificate in ``data`` (PEM; DER accepted too).

    Raises:
        UserError: no certificate could be read; the message names ``source``.
    """
    cert = _load_first(data, source)
    return certificate_info(cert, source)


def inspect_file(path: Path) -> CertInfo:
    """Inspect the certificate in a local file (its path is the source).

    Raises:
        UserError: the file is missing, unreadable or holds no certificate.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise UserError(f"{path} does not exist: expected a PEM certificate there.") from exc
    except OSError as exc:
        raise UserError(f"Cannot read the certificate {path}: {exc.strerror or exc}.") from exc
    return inspect_pem(data, str(path))


def certificate_info(cert: x509.Certificate, source: str) -> CertInfo:
    """The :class:`CertInfo` of an already parsed certificate."""
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
        ip_addresses = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    is_ca = False
    with contextlib.suppress(x509.ExtensionNotFound):
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public_key_pem = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return CertInfo(
        source=source,
        subject_cn=_common_name(cert.subject),
        subject=_display_name(cert.subject),
        issuer_cn=_common_name(cert.issuer),
        issuer=_display_name(cert.issuer),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_usage=_key_usage(cert),
        ext_key_usage=_ext_key_usage(cert),
        fingerprint="SHA256:" + cert.fingerprint(hashes.SHA256()).hex(),
        is_ca=is_ca,
        self_signed=cert.issuer == cert.subject and _signed_by(cert, cert),
        public_key_pem=public_key_pem,
        pem=cert.public_bytes(serialization.Encoding.PEM),
    )


async def fetch_served(address: str, port: int, *, timeout: float = 5.0,
                       dialer: Dialer | None = None) -> CertInfo:
    """The certificate a TLS server presents on ``address:port`` (no verification, no SNI),
    reached through ``dialer`` (direct by default; through the jump host when it is one).

    Raises:
        UserError: no connection, no TLS, or no certificate within ``timeout`` seconds.
    """
    where = f"{address}:{port}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    writer: asyncio.StreamWriter | None = None
    try:
        # server_hostname="" makes asyncio send no SNI at all.
        async with asyncio.timeout(timeout):
            host, dialled = await (dialer or DirectDialer()).endpoint(address, port)
            _, connected = await asyncio.open_connection(host, dialled, ssl=context,
                                                         server_hostname="")
        writer = connected
        ssl_object = connected.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    except TimeoutError as exc:
        raise UserError(f"No TLS handshake with {where} within {timeout:g}s: is the service "
                        "listening there (and the host reachable)?") from exc
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"Cannot fetch the certificate served on {where}: "
                        f"{_reason(exc)}. Is the service running and speaking TLS on that "
                        "port?") from exc
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
    if not der:
        raise UserError(f"The TLS server on {where} presented no certificate.")
    return certificate_info(x509.load_der_x509_certificate(der), f"served on {where}")


def chains_to(info: CertInfo, ca_cert: x509.Certificate) -> bool:
    """True when ``ca_cert`` issued this certificate (issuer name and signature check)."""
    return _signed_by(info.cert, ca_cert)


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """True when ``key_pem`` is the private key of the certificate in ``cert_pem``.

    An unreadable or encrypted key, or no certificate, counts as not matching.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(key.public_key().public_bytes(serialization.Encoding.DER, spki)
                == cert.public_key().public_bytes(serialization.Encoding.DER, spki))


def _load_first(data: bytes, source: str) -> x509.Certificate:
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
            return certs[0]
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        what = "empty" if not data.strip() else "not a readable certificate"
        raise UserError(f"{source} is {what}: expected a PEM certificate "
                        "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----).") from exc


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, ValueError (names), TypeError (key type)
        return False
    return True


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _display_name(name: x509.Name) -> str:
    parts = []
    for attribute in name:
        label = _NAME_LABELS.get(attribute.oid, attribute.oid.dotted_string)
        parts.append(f"{label}={attribute.value!s}")
    return ", ".join(parts)


def _key_usage(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    names = [label for attr, label in _KEY_USAGES if getattr(usage, attr)]
    if usage.key_agreement:
        if usage.encipher_only:
            names.append("encipherOnly")
        if usage.decipher_only:
            names.append("decipherOnly")
    return tuple(names)


def _ext_key_usage(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(_EXT_KEY_USAGES.get(oid, oid.dotted_string) for oid in usage)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
