"""The CA: KTHW subject and usages, cfssl/openssl directories load, never overwritten."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tui.core.errors import UserError
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.profiles import Profile

ADMIN = Profile("admin", "admin", "system:masters")


def openssl(*args: str, cwd: Path) -> str:
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_create_writes_a_kthw_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "pki")
    key_file, cert_file = tmp_path / "pki" / "ca-key.pem", tmp_path / "pki" / "ca.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")  # as cfssl
    assert cert_file.read_bytes() == ca.cert_pem
    cert = ca.cert
    assert cert.subject.rfc4514_string() == (
        "CN=Kubernetes,OU=CA,O=Kubernetes,L=Portland,ST=Oregon,C=US")
    assert cert.issuer == cert.subject
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=43800)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert isinstance(ca.key, rsa.RSAPrivateKey) and ca.key.key_size == 2048
    assert "PRIVATE" not in repr(ca)


def test_create_never_overwrites_a_ca(tmp_path: Path) -> None:
    CertificateAuthority.create(tmp_path)
    before = (tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca-key.pem").read_bytes()
    with pytest.raises(UserError, match=r"ca\.pem already exists"):
        CertificateAuthority.create(tmp_path)
    (tmp_path / "ca.pem").unlink()  # a lone key is a CA too: still refused
    with pytest.raises(UserError, match=r"ca-key\.pem already exists"):
        CertificateAuthority.create(tmp_path)
    assert (tmp_path / "ca-key.pem").read_bytes() == before[1]


def test_leaf_has_kthw_usages_and_identifiers(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path)
    cert = ca.issue(ADMIN).cert
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [o.dotted_string for o in eku] == ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=8760)
    assert cert.not_valid_before_utc <= dt.datetime.now(dt.UTC)


def test_ecdsa_validity_and_start_options(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path, key_type="ecdsa", validity_days=30)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    issued = ca.issue(ADMIN, key_type="ecdsa", validity_days=10, not_before=start)
    key = serialization.load_pem_private_key(issued.key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert issued.key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert issued.cert.not_valid_before_utc == start
    assert issued.cert.not_valid_after_utc == start + dt.timedelta(days=10)
    with pytest.raises(UserError, match="dsa"):
        ca.issue(ADMIN, key_type="dsa")


def test_loads_an_openssl_made_ca_with_pkcs1_and_pkcs8_keys(tmp_path: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "pkcs8.pem",
            "-out", "ca.pem", "-days", "30", "-subj", "/CN=Kubernetes/O=Kubernetes/OU=CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=tmp_path)
    assert (tmp_path / "pkcs8.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    openssl("rsa", "-in", "pkcs8.pem", "-traditional", "-out", "ca-key.pem", cwd=tmp_path)
    assert (tmp_path / "ca-key.pem").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    pkcs1 = CertificateAuthority.load(tmp_path)
    (tmp_path / "ca-key.pem").write_bytes((tmp_path / "pkcs8.pem").read_bytes())
    pkcs8 = CertificateAuthority.load(tmp_path)
    assert pkcs1.cert == pkcs8.cert
    (tmp_path / "admin.pem").write_bytes(pkcs8.issue(ADMIN).cert_pem)
    assert openssl("verify", "-CAfile", "ca.pem", "admin.pem", cwd=tmp_path).endswith(": OK\n")


def test_load_explains_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"ca\.pem does not exist"):
        CertificateAuthority.load(tmp_path)
    ours, other = CertificateAuthority.create(tmp_path / "a"), CertificateAuthority.create(
        tmp_path / "b")
    (tmp_path / "a" / "ca-key.pem").write_bytes((tmp_path / "b" / "ca-key.pem").read_bytes())
    with pytest.raises(UserError, match="does not belong"):
        CertificateAuthority.load(tmp_path / "a")
    (tmp_path / "a" / "ca-key.pem").write_bytes(b"not a key")
    with pytest.raises(UserError, match=r"a/ca-key\.pem is not a PEM private key"):
        CertificateAuthority.load(tmp_path / "a")
    encrypted = other.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"))
    (tmp_path / "b" / "ca-key.pem").write_bytes(encrypted)
    with pytest.raises(UserError, match="encrypted"):
        CertificateAuthority.load(tmp_path / "b")
    # a leaf with its key is not a CA
    issued = ours.issue(ADMIN)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "ca.pem").write_bytes(issued.cert_pem)
    (tmp_path / "c" / "ca-key.pem").write_bytes(issued.key_pem)
    with pytest.raises(UserError, match="not a CA certificate"):
        CertificateAuthority.load(tmp_path / "c")
