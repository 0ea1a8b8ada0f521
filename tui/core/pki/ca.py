"""The cluster's certificate authority: create or load it (cfssl file names) and issue leaves.

A KTHW directory made with ``cfssl gencert -initca`` loads as it is: ``ca.pem`` and
``ca-key.pem`` (PKCS#1 ``RSA PRIVATE KEY``, SEC1 ``EC PRIVATE KEY`` or PKCS#8 ``PRIVATE KEY``).
Certificates follow KTHW doc 04: the CA is CN=Kubernetes O=Kubernetes OU=CA for 43800h with
keyCertSign+cRLSign; leaves carry digitalSignature+keyEncipherment and serverAuth+clientAuth.

Usage::

    ca = CertificateAuthority.create(Path("pki"))          # refuses to overwrite a CA
    ca = CertificateAuthority.load(Path("pki"))
    issued = ca.issue(profile)                              # Issued(cert_pem, key_pem, cert)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.core.pki.profiles import Profile

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CertificateAuthority",
    "Issued",
    "KeyType",
    "PrivateKey",
    "generate_key",
    "private_key_pem",
    "write_atomic",
]

KeyType = Literal["rsa", "ecdsa"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CA_VALIDITY_DAYS = 1825  # KTHW/cfssl: 43800h
BACKDATE = dt.timedelta(minutes=5)  # cfssl backdates NotBefore for clock skew

# KTHW's subject for every certificate (doc 04): C=US, L=Portland, ST=Oregon.
COUNTRY = "US"
STATE = "Oregon"
LOCALITY = "Portland"


@dataclass(frozen=True)
class Issued:
    """A freshly issued certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate


def generate_key(key_type: str = "rsa") -> PrivateKey:
    """A new private key: RSA 2048 (KTHW's) or ECDSA P-256.

    Raises:
        UserError: an unknown key type.
    """
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    raise UserError(f"Unknown key type {key_type!r}: expected \"rsa\" (RSA 2048, the KTHW "
                    "default) or \"ecdsa\" (ECDSA P-256).")


def private_key_pem(key: PrivateKey) -> bytes:
    """PEM as cfssl writes it: PKCS#1 ``RSA PRIVATE KEY`` or SEC1 ``EC PRIVATE KEY``."""
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename.

    The temporary file gets ``mode`` before any byte is written, so a key is never readable
    by others, not even for a moment.  With ``overwrite=False`` the final step is a hard
    link, which fails when ``path`` exists (no check-then-write race).

    Raises:
        UserError: the directory is not writable, or ``path`` exists and overwrite is False.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"Cannot write {path}: {exc.strerror or exc}. The directory "
                        f"{path.parent} must be writable.") from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            os.link(temp, path)
    except FileExistsError as exc:
        raise UserError(f"Refusing to overwrite {path}: it already exists. Move it away "
                        "first if you really mean to replace it.") from exc
    except OSError as exc:
        raise UserError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _kthw_name(common_name: str, organization: str, unit: str) -> x509.Name:
    """A subject in cfssl's order: C, ST, L, O, OU, CN."""
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, STATE),
        x509.NameAttribute(NameOID.LOCALITY_NAME, LOCALITY),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class CertificateAuthority:
    """A CA certificate with its private key, living in ``directory``.

    Attributes:
        cert: the CA certificate.
        key: its private key (never logged, never printed).
        directory: where ``ca.pem`` and ``ca-key.pem`` live.
    """

    def __init__(self, cert: x509.Certificate, key: PrivateKey, directory: Path) -> None:
        self.cert = cert
        self.key = key
        self.directory = Path(directory)

    def __repr__(self) -> str:  # never show the key
        return f"CertificateAuthority({self.directory}, {self.cert.subject.rfc4514_string()})"

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate as PEM (what goes into ca.pem everywhere)."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_path(self) -> Path:
        """``DIRECTORY/ca.pem``."""
        return self.directory / CA_CERT_FILE

    @property
    def key_path(self) -> Path:
        """``DIRECTORY/ca-key.pem``."""
        return self.directory / CA_KEY_FILE

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Load ``ca.pem`` and ``ca-key.pem`` from ``directory`` (a cfssl/KTHW directory).

        Raises:
            UserError: a file is missing, unreadable, not PEM, encrypted, not a CA, or the
                key does not belong to the certificate.
        """
        directory = Path(directory)
        cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        cert_data = _read(cert_path, "the CA certificate")
        key_data = _read(key_path, "the CA private key")
        try:
            cert = x509.load_pem_x509_certificate(cert_data)
        except ValueError as exc:
            raise UserError(f"{cert_path} is not a PEM certificate ({exc}). Expected the CA "
                            "certificate as written by `cfssl gencert -initca` "
                            "(-----BEGIN CERTIFICATE-----).") from exc
        try:
            key = serialization.load_pem_private_key(key_data, password=None)
        except TypeError as exc:
            raise UserError(f"{key_path} is encrypted; hardway needs an unencrypted CA key "
                            "(as cfssl writes it). Decrypt it with `openssl pkey`.") from exc
        except ValueError as exc:
            raise UserError(f"{key_path} is not a PEM private key. Expected an RSA or ECDSA "
                            "key in PKCS#1 (RSA PRIVATE KEY), SEC1 (EC PRIVATE KEY) or PKCS#8 "
                            "(PRIVATE KEY) form.") from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise UserError(f"{key_path} holds a {type(key).__name__}; hardway's CA must be an "
                            "RSA or ECDSA key.")
        if _public_der(key.public_key()) != _public_der(cert.public_key()):
            raise UserError(f"{key_path} does not belong to {cert_path}: the public keys "
                            "differ. Put the matching ca-key.pem beside ca.pem.")
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise UserError(f"{cert_path} is not a CA certificate (no BasicConstraints CA:TRUE); "
                            f"its subject is {cert.subject.rfc4514_string()}.")
        return cls(cert, key, directory)

    @classmethod
    def create(cls, directory: Path, *, key_type: str = "rsa",
               validity_days: int = CA_VALIDITY_DAYS) -> CertificateAuthority:
        """Create a new KTHW CA in ``directory`` (ca-key.pem 0600, ca.pem 0644).

        Raises:
            UserError: ``ca.pem`` or ``ca-key.pem`` already exists (a CA is never
                overwritten), or the directory is not writable.
        """
        directory = Path(directory)
        for existing in (directory / CA_CERT_FILE, directory / CA_KEY_FILE):
            if existing.exists():
                raise UserError(f"Refusing to create a CA in {directory}: {existing} already "
                                "exists, and hardway never overwrites a CA (every certificate "
                                "it signed would stop verifying). Load it instead, or choose "
                                "another --pki directory.")
        key = generate_key(key_type)
        name = _kthw_name("Kubernetes", "Kubernetes", "CA")
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        not_before = _utcnow() - BACKDATE
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + dt.timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / CA_KEY_FILE, private_key_pem(key), 0o600, overwrite=False)
        write_atomic(directory / CA_CERT_FILE, cert.public_bytes(serialization.Encoding.PEM),
                     0o644, overwrite=False)
        return cls(cert, key, directory)

    def issue(self, profile: Profile, *, key_type: str = "rsa",
              validity_days: int | None = None,
              not_before: dt.datetime | None = None) -> Issued:
        """Issue a leaf certificate for ``profile`` with a new key.

        Args:
            profile: subject and SANs (see :mod:`tui.core.pki.profiles`).
            key_type: ``rsa`` (2048) or ``ecdsa`` (P-256).
            validity_days: overrides the profile's (365 in KTHW).
            not_before: start of validity (aware); default now minus 5 minutes.
        """
        key = generate_key(key_type)
        start = not_before if not_before is not None else _utcnow() - BACKDATE
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        days = validity_days if validity_days is not None else profile.validity_days
        builder = (
            x509.CertificateBuilder()
            .subject_name(_kthw_name(profile.common_name, profile.organization,
                                     profile.organizational_unit))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
        )
        names = _general_names(profile.dns_names, profile.ip_addresses)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), private_key_pem(key), cert)

    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        try:
            ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False)


def _general_names(dns_names: tuple[str, ...],
                   ip_addresses: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return names


def _public_der(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UserError(f"{path} does not exist: {what} is missing. A PKI directory holds "
                        f"{CA_CERT_FILE} and {CA_KEY_FILE} (cfssl names); create one with "
                        "`hardway certs issue`.") from exc
    except OSError as exc:
        raise UserError(f"Cannot read {path} ({what}): {exc.strerror or exc}.") from exc
