"""Inspecting certificates: hardway agrees with `openssl x509 -text` and `openssl verify`;
served certificates are fetched over TLS without SNI."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tui.core.errors import UserError
from tui.core.inventory.load import load_inventory
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.inspect import (
    CertInfo,
    chains_to,
    fetch_served,
    inspect_file,
    inspect_pem,
    key_matches,
)
from tui.core.pki.profiles import Profile, profile_named, write_pair

SEED = Path(__file__).resolve().parents[2] / "config" / "something.local.toml"
KU_NAMES = {"Digital Signature": "digitalSignature", "Key Encipherment": "keyEncipherment",
            "Certificate Sign": "keyCertSign", "CRL Sign": "cRLSign"}
EKU_NAMES = {"TLS Web Server Authentication": "serverAuth",
             "TLS Web Client Authentication": "clientAuth"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateAuthority, Path]:
    """A CA with kubernetes (seed SANs), worker-0 (ECDSA) and admin pairs written."""
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create(directory)
    inv = load_inventory(SEED)
    write_pair(directory, "kubernetes", ca.issue(profile_named(inv, "kubernetes")))
    write_pair(directory, "worker-0", ca.issue(profile_named(inv, "worker-0"), key_type="ecdsa"))
    write_pair(directory, "admin", ca.issue(Profile("admin", "admin", "system:masters")))
    return ca, directory


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("other"))


def openssl_text(path: Path) -> dict[str, object]:
    """The facts `openssl x509 -noout -text` and `-fingerprint -sha256` print."""
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(path)],
                          capture_output=True, text=True, check=True, timeout=30).stdout
    lines = [line.strip() for line in text.splitlines()]

    def after(label: str) -> str:
        for index, line in enumerate(lines):
            if line.startswith(label):
                rest = line[len(label):].strip()
                return rest if rest not in ("", "critical") else lines[index + 1]
        return ""

    def when(value: str) -> dt.datetime:
        return dt.datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y GMT").replace(
            tzinfo=dt.UTC)

    sans = [item.strip() for item in after("X509v3 Subject Alternative Name:").split(",")
            if item.strip()]
    fingerprint = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(path)],
        capture_output=True, text=True, check=True, timeout=30).stdout
    return {
        "subject": after("Subject:").replace(" = ", "="),
        "issuer": after("Issuer:").replace(" = ", "="),
        "not_before": when(after("Not Before:")),
        "not_after": when(after("Not After :")),
        "dns": tuple(s.removeprefix("DNS:") for s in sans if s.startswith("DNS:")),
        "ip": tuple(s.removeprefix("IP Address:") for s in sans if s.startswith("IP Address:")),
        "ku": tuple(KU_NAMES[u.strip()] for u in after("X509v3 Key Usage:").split(",")),
        "eku": tuple(EKU_NAMES[u.strip()]
                     for u in after("X509v3 Extended Key Usage:").split(",") if u.strip()),
        "ca": after("X509v3 Basic Constraints:").startswith("CA:TRUE"),
        "fingerprint": "SHA256:" + fingerprint.split("=", 1)[1].strip().replace(":", "").lower(),
    }


def ours(info: CertInfo) -> dict[str, object]:
    return {"subject": info.subject, "issuer": info.issuer, "not_before": info.not_before,
            "not_after": info.not_after, "dns": info.dns_names, "ip": info.ip_addresses,
            "ku": info.key_usage, "eku": info.ext_key_usage, "ca": info.is_ca,
            "fingerprint": info.fingerprint}


@pytest.mark.parametrize("name", ["ca", "kubernetes", "worker-0", "admin"])
def test_inspect_agrees_with_openssl_text(pki: tuple[CertificateAuthority, Path],
                                          name: str) -> None:
    _, directory = pki
    info = inspect_file(directory / f"{name}.pem")
    assert ours(info) == openssl_text(directory / f"{name}.pem")
    assert info.source == str(directory / f"{name}.pem")
    assert info.self_signed == (name == "ca")


def test_kubernetes_facts(pki: tuple[CertificateAuthority, Path]) -> None:
    _, directory = pki
    info = inspect_file(directory / "kubernetes.pem")
    assert info.subject_cn == "kubernetes" and info.issuer_cn == "Kubernetes"
    assert "127.0.0.1" in info.ip_addresses and "localhost" in info.dns_names
    assert info.key_usage == ("digitalSignature", "keyEncipherment")
    assert info.ext_key_usage == ("serverAuth", "clientAuth")
    assert 364 < info.days_left() <= 365
    assert info.public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize("name", ["kubernetes", "worker-0", "admin"])
def test_chains_to_agrees_with_openssl_verify(pki: tuple[CertificateAuthority, Path],
                                              other_ca: CertificateAuthority,
                                              name: str) -> None:
    ca, directory = pki
    info = inspect_file(directory / f"{name}.pem")

    def verify(ca_file: Path) -> bool:
        result = subprocess.run(["openssl", "verify", "-CAfile", str(ca_file),
                                 str(directory / f"{name}.pem")], capture_output=True, timeout=30)
        return result.returncode == 0

    assert chains_to(info, ca.cert) is verify(ca.cert_path) is True
    assert chains_to(info, other_ca.cert) is verify(other_ca.cert_path) is False


def test_chains_to_rejects_a_forged_issuer_name(pki: tuple[CertificateAuthority, Path],
                                                tmp_path: Path) -> None:
    """Same subject as the cluster CA, different key: only the signature tells them apart."""
    ca, _ = pki
    impostor = CertificateAuthority.create(tmp_path)
    assert impostor.cert.subject == ca.cert.subject
    info = inspect_pem(impostor.issue(Profile("admin", "admin", "system:masters")).cert_pem,
                       "forged")
    assert info.issuer == inspect_pem(ca.cert_pem, "ca").subject
    assert not chains_to(info, ca.cert)


def test_key_matches(pki: tuple[CertificateAuthority, Path]) -> None:
    _, directory = pki
    cert, key = (directory / "kubernetes.pem").read_bytes(), (directory / "kubernetes-key.pem")
    assert key_matches(cert, key.read_bytes())
    assert key_matches((directory / "worker-0.pem").read_bytes(),
                       (directory / "worker-0-key.pem").read_bytes())
    assert not key_matches(cert, (directory / "admin-key.pem").read_bytes())
    assert not key_matches(cert, (directory / "worker-0-key.pem").read_bytes())
    assert not key_matches(cert, b"garbage")


def test_bad_input_names_the_source(tmp_path: Path, pki: tuple[CertificateAuthority, Path]
                                    ) -> None:
    with pytest.raises(UserError, match=r"^controller-1:/var/lib/kubernetes/kubernetes\.pem is "
                                        r"not a readable certificate"):
        inspect_pem(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
                    "controller-1:/var/lib/kubernetes/kubernetes.pem")
    with pytest.raises(UserError, match=r"^local\.pem is empty"):
        inspect_pem(b"", "local.pem")
    with pytest.raises(UserError, match=r"nowhere\.pem does not exist"):
        inspect_file(tmp_path / "nowhere.pem")
    _, directory = pki
    der = inspect_file(directory / "admin.pem").cert.public_bytes(serialization.Encoding.DER)
    assert inspect_pem(der, "der").subject_cn == "admin"


async def _tls_server(cert: Path, key: Path, seen: list[str | None]
                      ) -> AsyncIterator[asyncio.Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember(_sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        seen.append(server_name)

    context.sni_callback = remember

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server


async def test_fetch_served_reads_the_certificate_without_sni(
        pki: tuple[CertificateAuthority, Path]) -> None:
    ca, directory = pki
    seen: list[str | None] = []
    async for server in _tls_server(directory / "kubernetes.pem",
                                    directory / "kubernetes-key.pem", seen):
        port = server.sockets[0].getsockname()[1]
        info = await fetch_served("127.0.0.1", port)
        assert info.source == f"served on 127.0.0.1:{port}"
        assert info.fingerprint == inspect_file(directory / "kubernetes.pem").fingerprint
        assert chains_to(info, ca.cert)
        # a name would be sent as SNI by default; hardway must not send it
        by_name = await fetch_served("localhost", port)
        assert by_name.fingerprint == info.fingerprint
    assert seen == [None, None]


async def _serve(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                   object]) -> asyncio.Server:
    return await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]


async def test_fetch_served_failures_are_user_errors() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(UserError, match=f"127.0.0.1:{closed_port}"):
        await fetch_served("127.0.0.1", closed_port, timeout=2)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    async with await _serve(silent) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(UserError, match=r"No TLS handshake with 127\.0\.0\.1:\d+ within 0.3s"):
            await fetch_served("127.0.0.1", port, timeout=0.3)
    async with await _serve(plain_http) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(UserError, match="TLS"):
            await fetch_served("127.0.0.1", port, timeout=2)
