"""A kube-apiserver stand-in for the hardway lab (installed as /usr/local/bin/kube-apiserver).

It takes the real command line (unknown flags are refused, as pflag does) and serves what
hardway looks at, the way kube-apiserver v1.18 does:

* HTTPS on ``--bind-address:--secure-port`` (6443).  ``--bind-address=0.0.0.0`` (the
  default) binds the lab host's own address (``HARDWAY_LAB_ADDRESS``), so every lab host
  can use port 6443.
* ``/healthz``, ``/livez``, ``/readyz`` (``?verbose`` lists ``[+]ping ok`` ... then
  ``healthz check passed``; ``?exclude=NAME``), ``/version`` (``gitVersion`` v1.18.6).
  Anonymous clients may read exactly those; sub-paths such as ``/readyz/etcd`` are 403
  unless the client certificate (checked against ``--client-ca-file``) is in
  ``system:masters``.
* The serving certificate: ``--tls-cert-file``/``--tls-private-key-file``, re-read from
  disk every minute.  When BOTH are missing it does what the real one does: reuse
  ``--cert-dir``/apiserver.crt and .key (default /var/run/kubernetes) when readable, else
  generate a self-signed pair there -- issuer ``<advertise address>-ca@<unix time>``,
  leaf ``<advertise address>@<unix time>``, SANs the advertise address, the first service
  IP (10.0.0.1 without ``--service-cluster-ip-range``), kubernetes.default.svc,
  kubernetes.default, kubernetes and localhost -- and logs ``Generated self-signed cert``.
  With SNI ``apiserver-loopback-client`` it serves its in-memory loopback certificate.
* It exits 1 with a message when a file it needs (certificate, key, client CA, etcd and
  kubelet credentials, service account key, encryption config) cannot be read.
* The etcd health check dials ``--etcd-servers`` with the ``--etcd-*`` credentials, unless
  the lab says it runs no etcd (``HARDWAY_LAB_ETCD=absent``), which leaves the check out.

Paths on the command line are the host's; ``HARDWAY_LAB_ROOT`` maps them under the lab
host's root.  Standalone: standard library plus ``cryptography`` (only to generate
certificates); it must not import ``tui``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import os
import signal
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSION = os.environ.get("HARDWAY_LAB_KUBERNETES_VERSION", "1.18.6").lstrip("v")
ROOT = os.environ.get("HARDWAY_LAB_ROOT", "")
LAB_ADDRESS = os.environ.get("HARDWAY_LAB_ADDRESS", "")
ETCD_MODE = os.environ.get("HARDWAY_LAB_ETCD", "dial")
RELOAD_SECONDS = float(os.environ.get("HARDWAY_LAB_CERT_RELOAD_SECONDS", "60"))
LOOPBACK_NAME = "apiserver-loopback-client"
DEFAULT_CERT_DIR = "/var/run/kubernetes"

BOOL_FLAGS = {
    "allow-privileged", "anonymous-auth", "enable-bootstrap-token-auth", "kubelet-https",
    "enable-aggregator-routing", "logtostderr", "alsologtostderr", "profiling",
    "enable-swagger-ui", "help", "version", "enable-garbage-collector",
    "enable-priority-and-fairness", "watch-cache",
}
VALUE_FLAGS = {
    "advertise-address", "apiserver-count", "audit-log-maxage", "audit-log-maxbackup",
    "audit-log-maxsize", "audit-log-path", "audit-policy-file", "authorization-mode",
    "bind-address", "cert-dir", "client-ca-file", "enable-admission-plugins",
    "disable-admission-plugins", "encryption-provider-config", "etcd-cafile", "etcd-certfile",
    "etcd-keyfile", "etcd-servers", "etcd-prefix", "event-ttl", "insecure-port",
    "insecure-bind-address", "kubelet-certificate-authority", "kubelet-client-certificate",
    "kubelet-client-key", "kubelet-preferred-address-types", "kubelet-timeout",
    "proxy-client-cert-file", "proxy-client-key-file", "requestheader-client-ca-file",
    "requestheader-allowed-names", "requestheader-extra-headers-prefix",
    "requestheader-group-headers", "requestheader-username-headers", "runtime-config",
    "secure-port", "service-account-issuer", "service-account-key-file",
    "service-account-signing-key-file", "service-account-api-audiences", "api-audiences",
    "service-cluster-ip-range", "service-node-port-range", "tls-cert-file",
    "tls-private-key-file", "tls-cipher-suites", "tls-min-version", "tls-sni-cert-key",
    "token-auth-file", "v", "vmodule", "log-dir", "log-file", "feature-gates",
    "storage-backend", "default-not-ready-toleration-seconds",
    "default-unreachable-toleration-seconds", "max-requests-inflight",
    "max-mutating-requests-inflight", "kubernetes-service-node-port",
    "endpoint-reconciler-type", "external-hostname", "cloud-provider", "cloud-config",
    "oidc-issuer-url", "oidc-client-id", "shutdown-delay-duration", "min-request-timeout",
    "request-timeout", "target-ram-mb", "storage-media-type", "watch-cache-sizes",
}
SHORTHANDS = {"v": "v", "h": "help"}

FILE_FLAGS = {  # flag -> how the real one words a failure to read it
    "client-ca-file": "unable to load client CA file",
    "requestheader-client-ca-file": "unable to load requestheader client CA file",
    "service-account-key-file": "failed to parse service-account-issuer-key-file",
    "encryption-provider-config": "error while parsing encryption provider configuration file",
    "etcd-cafile": "failed to load etcd CA file",
    "etcd-certfile": "failed to load etcd client certificate",
    "etcd-keyfile": "failed to load etcd client key",
    "kubelet-certificate-authority": "failed to load kubelet CA file",
    "kubelet-client-certificate": "failed to load kubelet client certificate",
    "kubelet-client-key": "failed to load kubelet client key",
    "proxy-client-cert-file": "failed to load proxy client certificate",
    "proxy-client-key-file": "failed to load proxy client key",
    "token-auth-file": "unable to load token auth file",
    "audit-policy-file": "loading audit policy file",
}

POSTSTART_CHECKS = [
    "poststarthook/start-kube-apiserver-admission-initializer",
    "poststarthook/generic-apiserver-start-informers",
    "poststarthook/start-apiextensions-informers",
    "poststarthook/start-apiextensions-controllers",
    "poststarthook/crd-informer-synced",
    "poststarthook/bootstrap-controller",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "poststarthook/start-cluster-authentication-info-controller",
    "poststarthook/start-kube-aggregator-informers",
    "poststarthook/apiservice-registration-controller",
    "poststarthook/apiservice-status-available-controller",
    "poststarthook/kube-apiserver-autoregistration",
    "autoregister-completion",
    "poststarthook/apiservice-openapi-controller",
]
PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
GO_TLS_ERRORS = {  # how Go's net/http words what a client's alert means
    "TLSV1_ALERT_UNKNOWN_CA": "remote error: tls: unknown certificate authority",
    "SSLV3_ALERT_BAD_CERTIFICATE": "remote error: tls: bad certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "remote error: tls: unknown certificate",
    "TLSV1_ALERT_DECRYPT_ERROR": "remote error: tls: error decrypting message",
    "UNEXPECTED_EOF_WHILE_READING": "EOF",
    "WRONG_VERSION_NUMBER": "tls: first record does not look like a TLS handshake",
    "HTTP_REQUEST": "tls: first record does not look like a TLS handshake",
}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


class StartupError(Exception):
    """The stand-in cannot start: printed as ``Error: MESSAGE``, exit status 1."""


# -- logging ------------------------------------------------------------------------------

def log(message: str, *, level: str = "I", source: str = "server.go:150") -> None:
    """One klog line on stderr: ``I0412 10:00:00.123456   12345 file.go:NN] message``."""
    now = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now))
    micros = int((now % 1) * 1_000_000)
    sys.stderr.write(f"{level}{stamp}.{micros:06d} {os.getpid():>7} {source}] {message}\n")
    sys.stderr.flush()


def host_path(path: str) -> str:
    """A path from the command line, mapped under the lab host's root."""
    if ROOT and path.startswith("/"):
        return ROOT.rstrip("/") + path
    return path


def _os_error(exc: OSError, path: str) -> str:
    reason = (exc.strerror or str(exc)).lower()
    return f"open {path}: {reason}"


# -- flags --------------------------------------------------------------------------------

def parse_flags(argv: list[str]) -> dict[str, str]:
    """Parse the command line like pflag: ``--name=value``, ``--name value``, ``--bool``.

    Raises:
        StartupError: an unknown flag, a missing value or a stray argument.
    """
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg in {"-", "--"}:
            raise StartupError(f"unknown command \"{arg}\" for \"kube-apiserver\"")
        name, eq, value = arg.lstrip("-").partition("=")
        if not arg.startswith("--"):
            if name not in SHORTHANDS:
                raise StartupError(f"unknown shorthand flag: '{name[:1]}' in {arg}")
            name = SHORTHANDS[name]
        if name in BOOL_FLAGS:
            flags[name] = value if eq else "true"
        elif name in VALUE_FLAGS:
            if not eq:
                if i >= len(argv):
                    raise StartupError(f"flag needs an argument: --{name}")
                value = argv[i]
                i += 1
            flags[name] = value
        else:
            raise StartupError(f"unknown flag: --{name}")
    return flags


# -- certificates -------------------------------------------------------------------------

def first_service_ip(flags: dict[str, str]) -> str:
    """The first address of ``--service-cluster-ip-range`` (10.0.0.1 by default)."""
    cidr = flags.get("service-cluster-ip-range", "10.0.0.0/24").split(",")[0]
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise StartupError(f"invalid argument \"{cidr}\" for \"--service-cluster-ip-range\" "
                           f"flag: {exc}") from exc
    return str(network.network_address + 1)


def generate_self_signed(host: str, alternate_ips: list[str], alternate_dns: list[str],
                         *, key_type: str = "rsa") -> tuple[bytes, bytes]:
    """client-go's ``GenerateSelfSignedCertKey``: a CA and a leaf, both named after ``host``.

    Returns (leaf PEM + CA PEM, leaf key PEM).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def new_key() -> Any:
        if key_type == "ecdsa":
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = int(now.timestamp())
    ca_key, leaf_key = new_key(), new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}-ca@{stamp}")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=True, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = []
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in alternate_ips]
    names += [x509.DNSName(name) for name in alternate_dns]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@{stamp}")]))
        .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=True, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption())
    return leaf.public_bytes(pem) + ca_cert.public_bytes(pem), key_pem


def _readable(path: str) -> bool:
    try:
        with open(host_path(path), "rb"):
            return True
    except OSError:
        return False


def _write(path: str, data: bytes, mode: int) -> None:
    target = host_path(path)
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    temp = f"{target}.tmp{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temp, target)


def serving_pair(flags: dict[str, str], advertise: str) -> tuple[str, str]:
    """The (certificate, key) paths to serve, generating the self-signed pair if needed."""
    cert, key = flags.get("tls-cert-file", ""), flags.get("tls-private-key-file", "")
    if cert or key:
        if not (cert and key):
            missing = "--tls-private-key-file" if cert else "--tls-cert-file"
            raise StartupError(f"unable to load server certificate: {missing} is required "
                               "when the other TLS flag is set")
        return cert, key
    cert_dir = flags.get("cert-dir", DEFAULT_CERT_DIR).rstrip("/") or "/"
    cert, key = f"{cert_dir}/apiserver.crt", f"{cert_dir}/apiserver.key"
    if _readable(cert) and _readable(key):
        return cert, key
    alternate_ips = [first_service_ip(flags)]
    alternate_dns = ["kubernetes.default.svc", "kubernetes.default", "kubernetes"]
    bind = flags.get("bind-address", "0.0.0.0")
    if bind in {"0.0.0.0", "::"}:
        alternate_dns.append("localhost")
    else:
        alternate_ips.append(bind)
    cert_pem, key_pem = generate_self_signed(advertise, alternate_ips, alternate_dns)
    try:
        _write(cert, cert_pem, 0o644)
        _write(key, key_pem, 0o600)
    except OSError as exc:
        raise StartupError(f"unable to generate self signed cert: {_os_error(exc, cert)}") \
            from exc
    log(f"Generated self-signed cert ({cert}, {key})", source="serving.go:312")
    return cert, key


def _stamp(paths: list[str]) -> tuple[tuple[int, int, int], ...]:
    stamps = []
    for path in paths:
        try:
            info = os.stat(host_path(path))
            stamps.append((info.st_ino, info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append((0, 0, -1))
    return tuple(stamps)


class Certificates:
    """The TLS contexts: the serving pair (reloadable) and the lazy loopback pair."""

    def __init__(self, cert: str, key: str, client_ca: str) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.current = self.build(cert, key)
        self.stamp = _stamp([cert, key])
        self._loopback: ssl.SSLContext | None = None

    def build(self, cert: str, key: str) -> ssl.SSLContext:
        """A server context for the pair; raises StartupError when it cannot be loaded."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        for path in (cert, key):
            try:
                with open(host_path(path), "rb"):
                    pass
            except OSError as exc:
                raise StartupError(f"unable to load server certificate: "
                                   f"{_os_error(exc, path)}") from exc
        try:
            context.load_cert_chain(host_path(cert), host_path(key))
        except ssl.SSLError as exc:
            raise StartupError(f"unable to load server certificate: tls: failed to load "
                               f"{cert} with {key}: {exc.reason or exc}") from exc
        if self.client_ca:
            try:
                context.load_verify_locations(host_path(self.client_ca))
            except (OSError, ssl.SSLError) as exc:
                raise StartupError(f"unable to load client CA file \"{self.client_ca}\": "
                                   f"{exc}") from exc
            context.verify_mode = ssl.CERT_OPTIONAL
        context.sni_callback = self._choose
        return context

    def _choose(self, sslobj: ssl.SSLObject, server_name: str | None,
                context: ssl.SSLContext) -> None:
        if server_name == LOOPBACK_NAME:
            sslobj.context = self.loopback()
        elif context is not self.current:
            sslobj.context = self.current

    def loopback(self) -> ssl.SSLContext:
        """The in-memory loopback certificate, as the real apiserver makes at start."""
        if self._loopback is None:
            import tempfile

            cert_pem, key_pem = generate_self_signed(LOOPBACK_NAME, [], [])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory() as tmp:  # TMPDIR is inside the lab host
                Path(tmp, "c").write_bytes(cert_pem)
                Path(tmp, "k").write_bytes(key_pem)
                context.load_cert_chain(str(Path(tmp, "c")), str(Path(tmp, "k")))
            self._loopback = context
        return self._loopback

    def reload_if_changed(self) -> None:
        """Re-read the pair when a file changed on disk (the real one checks every minute)."""
        stamp = _stamp([self.cert, self.key])
        if stamp == self.stamp:
            return
        self.stamp = stamp
        try:
            self.current = self.build(self.cert, self.key)
        except StartupError as exc:
            log(f"failed to reload the serving certificate: {exc}", level="E",
                source="dynamic_serving_content.go:111")
            return
        log(f"Loaded a new cert/key pair for \"serving-cert::{self.cert}::{self.key}\"",
            source="dynamic_serving_content.go:130")


# -- health -------------------------------------------------------------------------------

class Health:
    """The checks behind /healthz, /livez and /readyz."""

    def __init__(self, flags: dict[str, str]) -> None:
        self.flags = flags
        self.etcd_servers = [s for s in flags.get("etcd-servers", "").split(",") if s]
        self.dial_etcd = ETCD_MODE != "absent"
        self._etcd_cache: tuple[float, bool] = (0.0, False)
        self.shutting_down = False

    def names(self, endpoint: str) -> list[str]:
        """The checks of ``/healthz``, ``/livez`` or ``/readyz``, in the real order."""
        names = ["ping", "log"] + (["etcd"] if self.dial_etcd else []) + POSTSTART_CHECKS
        if endpoint == "/readyz":
            names.append("shutdown")
        return names

    async def check(self, name: str) -> bool:
        """Run one check."""
        if name == "etcd":
            return await self.etcd_healthy()
        if name == "shutdown":
            return not self.shutting_down
        return True

    async def etcd_healthy(self) -> bool:
        """GET /health on the etcd servers with the client certificate (cached for 1 s)."""
        checked, healthy = self._etcd_cache
        if time.monotonic() - checked < 1.0:
            return healthy
        healthy = False
        for server in self.etcd_servers:
            if await self._etcd_health(server):
                healthy = True
                break
        self._etcd_cache = (time.monotonic(), healthy)
        return healthy

    async def _etcd_health(self, server: str) -> bool:
        url = urlsplit(server)
        if not url.hostname:
            return False
        context: ssl.SSLContext | None = None
        if url.scheme == "https":
            context = ssl.create_default_context(
                cafile=host_path(self.flags["etcd-cafile"])
                if self.flags.get("etcd-cafile") else None)
            if self.flags.get("etcd-certfile"):
                context.load_cert_chain(host_path(self.flags["etcd-certfile"]),
                                        host_path(self.flags.get("etcd-keyfile", "")) or None)
        try:
            async with asyncio.timeout(2.0):
                reader, writer = await asyncio.open_connection(
                    url.hostname, url.port or 2379, ssl=context,
                    server_hostname=url.hostname if context else None)
                writer.write(f"GET /health HTTP/1.1\r\nHost: {url.netloc}\r\n"
                             "Connection: close\r\n\r\n".encode())
                answer = await reader.read()
                writer.close()
        except (OSError, ssl.SSLError, TimeoutError, ValueError):
            return False
        head, _, body = answer.partition(b"\r\n\r\n")
        return head.startswith(b"HTTP/1.1 200") and b'"health":"true"' in body.replace(b" ", b"")


# -- HTTP -----------------------------------------------------------------------------------

def _status_json(code: int, reason: str, message: str) -> bytes:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": {}, "code": code}
    if code == 401:
        del body["details"]
    return json.dumps(body, indent=2).encode() + b"\n"


def version_info() -> dict[str, str]:
    """What GET /version answers."""
    major, minor, *_ = [*VERSION.split("."), "0", "0"][:3]
    return {"major": major, "minor": minor, "gitVersion": f"v{VERSION}",
            "gitCommit": "dff82dc0de47299ab66c83c626e08b245ab19037", "gitTreeState": "clean",
            "buildDate": "2020-07-15T16:51:04Z", "goVersion": "go1.13.9", "compiler": "gc",
            "platform": "linux/amd64"}


class Request:
    """A parsed HTTP request line and headers."""

    def __init__(self, method: str, target: str, version: str,
                 headers: dict[str, str]) -> None:
        self.method, self.version, self.headers = method, version, headers
        parts = urlsplit(target)
        self.path = parts.path or "/"
        self.query = parse_qs(parts.query, keep_blank_values=True)

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 keeps the connection unless the client said close."""
        connection = self.headers.get("connection", "").lower()
        return self.version == "HTTP/1.1" and connection != "close"


class ApiServer:
    """The HTTPS endpoint."""

    def __init__(self, flags: dict[str, str], certificates: Certificates,
                 health: Health) -> None:
        self.flags = flags
        self.certificates = certificates
        self.health = health
        self.anonymous = flags.get("anonymous-auth", "true") != "false"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: the TLS handshake, then requests until the client closes."""
        peer = writer.get_extra_info("peername") or ("?", 0)
        try:
            await writer.start_tls(self.certificates.current, ssl_handshake_timeout=10.0)
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log(f"http: TLS handshake error from {peer[0]}:{peer[1]}: "
                f"{GO_TLS_ERRORS.get(reason, reason)}", source="log.go:172")
            writer.close()
            return
        user = self._user(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(60):
                        head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                    return
                request = self._parse(head)
                if request is None:
                    writer.write(self._response(400, b"400 Bad Request", "text/plain", False))
                    return
                length = int(request.headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(min(length, 1 << 20))
                status, body, content_type = await self.answer(request, user)
                if request.method == "HEAD":
                    body = b""
                writer.write(self._response(status, body, content_type, request.keep_alive,
                                            length=len(body)))
                await writer.drain()
                if not request.keep_alive:
                    return
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    @staticmethod
    def _user(writer: asyncio.StreamWriter) -> tuple[str, list[str]] | None:
        """(CN, groups) of a verified client certificate, None for anonymous."""
        sslobj = writer.get_extra_info("ssl_object")
        peer = sslobj.getpeercert() if sslobj is not None else None
        if not peer:
            return None
        cn, groups = "", []
        for rdn in peer.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
                elif key == "organizationName":
                    groups.append(value)
        return cn, groups

    @staticmethod
    def _parse(head: bytes) -> Request | None:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            return None
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return Request(method, target, version, headers)

    @staticmethod
    def _response(status: int, body: bytes, content_type: str, keep_alive: bool,
                  length: int | None = None) -> bytes:
        date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
        headers = [f"HTTP/1.1 {status} {REASONS.get(status, '')}",
                   "Cache-Control: no-cache, private", f"Content-Type: {content_type}",
                   "X-Content-Type-Options: nosniff", f"Date: {date}",
                   f"Content-Length: {len(body) if length is None else length}"]
        if not keep_alive:
            headers.append("Connection: close")
        return ("\r\n".join(headers) + "\r\n\r\n").encode() + body

    async def answer(self, request: Request,
                     user: tuple[str, list[str]] | None) -> tuple[int, bytes, str]:
        """(status, body, content type) for a request."""
        if user is None and not self.anonymous:
            return 401, _status_json(401, "Unauthorized", "Unauthorized"), "application/json"
        path = request.path
        verb = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put",
                "DELETE": "delete", "PATCH": "patch"}.get(request.method, request.method.lower())
        master = user is not None and "system:masters" in user[1]
        name = user[0] if user is not None else "system:anonymous"
        public = verb == "get" and path in PUBLIC_PATHS
        if not (public or master):
            message = f"forbidden: User \"{name}\" cannot {verb} path \"{path}\""
            return 403, _status_json(403, "Forbidden", message), "application/json"
        if path in {"/version", "/version/"}:
            return 200, json.dumps(version_info(), indent=2).encode(), "application/json"
        for endpoint in HEALTH_PATHS:
            if path == endpoint:
                return await self._health(endpoint, request)
            if path.startswith(endpoint + "/"):
                return await self._one_check(endpoint, path[len(endpoint) + 1:])
        if path == "/":
            paths = sorted(["/api", "/apis", "/healthz", "/livez", "/readyz", "/version"])
            return 200, json.dumps({"paths": paths}, indent=2).encode(), "application/json"
        return 404, b"404 page not found\n", "text/plain; charset=utf-8"

    async def _health(self, endpoint: str, request: Request) -> tuple[int, bytes, str]:
        excluded = {e for values in request.query.get("exclude", []) for e in values.split(",")}
        lines, healthy = [], True
        for name in self.health.names(endpoint):
            if name in excluded:
                lines.append(f"[+]{name} excluded: ok")
            elif await self.health.check(name):
                lines.append(f"[+]{name} ok")
            else:
                lines.append(f"[-]{name} failed: reason withheld")
                healthy = False
        if healthy and "verbose" not in request.query:
            return 200, b"ok", "text/plain; charset=utf-8"
        lines.append("healthz check passed" if healthy else "healthz check failed")
        body = ("\n".join(lines) + "\n").encode()
        return (200 if healthy else 500), body, "text/plain; charset=utf-8"

    async def _one_check(self, endpoint: str, name: str) -> tuple[int, bytes, str]:
        if name not in self.health.names(endpoint):
            return 404, b"404 page not found\n", "text/plain; charset=utf-8"
        if await self.health.check(name):
            return 200, b"ok", "text/plain; charset=utf-8"
        return 500, f"internal server error: {name} check failed\n".encode(), \
            "text/plain; charset=utf-8"


# -- main -----------------------------------------------------------------------------------

def check_files(flags: dict[str, str]) -> None:
    """Refuse to start when a file the real one reads at start cannot be read."""
    for flag, wording in FILE_FLAGS.items():
        path = flags.get(flag)
        if not path:
            continue
        try:
            with open(host_path(path), "rb"):
                pass
        except OSError as exc:
            raise StartupError(f"{wording} \"{path}\": {_os_error(exc, path)}") from exc


def addresses(flags: dict[str, str]) -> tuple[str, str]:
    """(address to listen on, advertise address)."""
    bind = flags.get("bind-address", "0.0.0.0")
    wildcard = bind in {"0.0.0.0", "::", ""}
    listen = (LAB_ADDRESS or "127.0.0.1") if wildcard else bind
    advertise = flags.get("advertise-address") or (listen if wildcard else bind)
    return listen, advertise


async def run(flags: dict[str, str]) -> int:
    """Start serving; return the exit status when told to stop."""
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # klog lines only in the journal
    listen, advertise = addresses(flags)
    log(f"Version: v{VERSION}", source="server.go:656")
    check_files(flags)
    cert, key = serving_pair(flags, advertise)
    certificates = Certificates(cert, key, flags.get("client-ca-file", ""))
    health = Health(flags)
    if not health.dial_etcd:
        log("hardway lab: this lab runs no etcd (HARDWAY_LAB_ETCD=absent); the etcd health "
            "check is left out", source="lab.go:1")
    server = ApiServer(flags, certificates, health)
    port = int(flags.get("secure-port", "6443"))
    try:
        listener = await asyncio.start_server(server.serve, listen, port, reuse_address=True)
    except OSError as exc:
        raise StartupError(f"failed to create listener: failed to listen on {listen}:{port}: "
                           f"listen tcp {listen}:{port}: bind: "
                           f"{(exc.strerror or str(exc)).lower()}") from exc
    log(f"Serving securely on {listen}:{port}", source="secure_serving.go:178")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tasks = [asyncio.ensure_future(_every(RELOAD_SECONDS, certificates.reload_if_changed))]
    parent = os.environ.get("HARDWAY_LAB_PARENT", "")
    if parent.isdigit():
        tasks.append(asyncio.ensure_future(_every(1.0, _exit_if_orphaned(int(parent), stop))))
    await stop.wait()
    health.shutting_down = True
    log("Shutting down the kube-apiserver stand-in", source="controller.go:181")
    listener.close()
    for task in tasks:
        task.cancel()
    return 0


def _exit_if_orphaned(parent: int, stop: asyncio.Event) -> Callable[[], None]:
    def check() -> None:
        if os.getppid() != parent:  # the lab is gone: do not outlive it
            stop.set()
    return check


async def _every(seconds: float, action: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(seconds)
        action()


def main(argv: list[str]) -> int:
    """Entry point: parse flags, serve, exit 0 on SIGTERM and 1 on a startup error."""
    try:
        flags = parse_flags(argv)
        if flags.get("version", "false") != "false":
            print(f"Kubernetes v{VERSION}")
            return 0
        if flags.get("help", "false") != "false":
            print("The Kubernetes API server (hardway lab stand-in: HTTPS /healthz /livez "
                  "/readyz /version).\n\nUsage:\n  kube-apiserver [flags]")
            return 0
        return asyncio.run(run(flags))
    except StartupError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.stderr.flush()
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
