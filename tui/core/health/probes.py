"""HTTPS health probes: kube-apiserver /livez /readyz /healthz /version and etcd /health.

Each probe opens one TLS connection, sends one ``GET`` and returns a :class:`ProbeResult`;
it never raises for network or TLS trouble (the reason is in ``detail``).  The TLS layer
verifies the served certificate against the cluster CA when one is given, including that
the dialled address is one of its SANs, and sends no SNI for an IP address (kube-apiserver
answers the SNI ``apiserver-loopback-client`` with its own loopback certificate).

Build a context once with :func:`tls_context` and pass it as ``context=`` when probing
many hosts often (the health grid); the ``ca_pem``/``cert_pem``/``key_pem`` arguments are
the convenient form for one-off probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tui.core.fleet.dial import Dialer, DirectDialer

DEFAULT_TIMEOUT = 5.0
MAX_BODY = 1024 * 1024
"""Bytes of a response body read at most (health answers are tiny)."""

PemSource = bytes | str | Path
"""PEM data (bytes or str) or the path of a PEM file."""


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe.

    Attributes:
        ok: the service answered and is healthy.
        status: HTTP status (None when there was no HTTP answer).
        latency: seconds from connecting to the complete answer (None without one).
        detail: one line for people, e.g. ``livez 200 in 0.21 s`` or why it failed.
        body: the response body (decoded, at most 1 MiB).
        target: what was dialled, e.g. ``https://127.0.10.10:6443/livez``.
    """

    ok: bool
    status: int | None
    latency: float | None
    detail: str
    body: str = ""
    target: str = ""


@dataclass(frozen=True)
class HttpAnswer:
    """A parsed HTTP response."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def tls_context(ca_pem: PemSource | None = None, cert_pem: PemSource | None = None,
                key_pem: PemSource | None = None) -> ssl.SSLContext:
    """A client TLS context: verify against ``ca_pem`` (None: no verification), and
    present ``cert_pem``/``key_pem`` as the client certificate when given.

    Raises:
        ValueError: a PEM cannot be loaded (the message names which one).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and name by default
    if ca_pem is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        try:
            if isinstance(ca_pem, Path):
                context.load_verify_locations(cafile=str(ca_pem))
            else:
                data = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
                context.load_verify_locations(cadata=data)
        except (ssl.SSLError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"the CA certificate cannot be loaded: {exc}") from None
    if cert_pem is not None or key_pem is not None:
        if cert_pem is None or key_pem is None:
            raise ValueError("a client certificate needs both the certificate and its key")
        _load_client_pair(context, cert_pem, key_pem)
    return context


def _load_client_pair(context: ssl.SSLContext, cert: PemSource, key: PemSource) -> None:
    """Load a client pair; PEM data goes through private temp files removed at once."""
    if isinstance(cert, Path) and isinstance(key, Path):
        paths = (cert, key)
        directory = None
    else:
        directory = tempfile.mkdtemp(prefix="hardway-probe-")
        paths = (_spill(directory, "cert.pem", cert), _spill(directory, "key.pem", key))
    try:
        context.load_cert_chain(str(paths[0]), str(paths[1]))
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"the client certificate or key cannot be loaded: {exc}") from None
    finally:
        if directory is not None:
            for path in paths:
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                os.rmdir(directory)


def _spill(directory: str, name: str, source: PemSource) -> Path:
    if isinstance(source, Path):
        return source
    path = Path(directory) / name
    data = source.encode() if isinstance(source, str) else source
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


async def https_get(address: str, port: int, path: str, *, context: ssl.SSLContext,
                    timeout: float = DEFAULT_TIMEOUT,
                    headers: dict[str, str] | None = None,
                    dialer: Dialer | None = None, server_name: str | None = None,
                    user_agent: str = "hardway-probe") -> HttpAnswer:
    """One ``GET`` over TLS to ``address:port``; no SNI is sent for an IP address.

    The connection goes where ``dialer`` says (default: directly); the certificate is
    checked against ``server_name`` (the name sent as SNI and ``Host``) when given, else
    against ``address``.

    Raises:
        OSError, ssl.SSLError, TimeoutError, ValueError: the exchange failed.
    """
    async with asyncio.timeout(timeout):
        name = server_name or address
        server_hostname = name if context.check_hostname else ""
        host, real_port = await (dialer or DirectDialer()).endpoint(address, port)
        reader, writer = await asyncio.open_connection(
            host, real_port, ssl=context, server_hostname=server_hostname)
        try:
            lines = [f"GET {path} HTTP/1.1", f"Host: {_host_header(name, port)}",
                     f"User-Agent: {user_agent}", "Accept: */*", "Connection: close"]
            lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            return await read_answer(reader)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await writer.wait_closed()


def _host_header(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


async def read_answer(reader: asyncio.StreamReader) -> HttpAnswer:
    """Read one HTTP/1.1 response (status line, headers, body by length or chunks).

    Raises:
        ValueError: not an HTTP answer; asyncio.IncompleteReadError: the peer closed.
    """
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(min(int(headers["content-length"]), MAX_BODY))
    else:
        body = await reader.read(MAX_BODY)
    return HttpAnswer(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return b"".join(chunks)
        chunk = await reader.readexactly(size)
        await reader.readexactly(2)
        total += size
        if total <= MAX_BODY:
            chunks.append(chunk)


async def probe(name: str, address: str, port: int, path: str, *,
                context: ssl.SSLContext, timeout: float = DEFAULT_TIMEOUT,
                healthy: type[_Judge] | None = None,
                dialer: Dialer | None = None) -> ProbeResult:
    """GET ``path`` and judge the answer (default: healthy means HTTP 200).

    Args:
        name: short label used in ``detail`` (``livez``, ``etcd health``).
        address, port: where the service listens.
        path: request path with query, e.g. ``/livez?verbose``.
        context: TLS client context (see :func:`tls_context`).
        timeout: seconds for connect, handshake and answer together.
        healthy: a judge class; ``judge(answer)`` returns None when healthy or a reason.
        dialer: where to connect for ``address:port`` (default: directly).
    """
    target = f"https://{_host_header(address, port)}{path}"
    start = time.monotonic()
    try:
        answer = await https_get(address, port, path, context=context, timeout=timeout,
                                 dialer=dialer)
    except TimeoutError:
        return ProbeResult(False, None, None,
                           f"{name}: no answer from {address}:{port} within {timeout:g} s",
                           target=target)
    except ssl.SSLCertVerificationError as exc:
        return ProbeResult(False, None, None, f"{name}: {_verify_reason(exc, address)}",
                           target=target)
    except ssl.SSLError as exc:
        return ProbeResult(False, None, None,
                           f"{name}: TLS handshake with {address}:{port} failed "
                           f"({exc.reason or exc})", target=target)
    except ConnectionRefusedError:
        return ProbeResult(False, None, None,
                           f"{name}: nothing listens on {address}:{port} (connection refused)",
                           target=target)
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return ProbeResult(False, None, None,
                           f"{name}: {address}:{port} failed ({reason})", target=target)
    latency = time.monotonic() - start
    body = answer.body.decode("utf-8", "replace")
    problem = (healthy or _Judge).judge(answer)
    if problem is None:
        return ProbeResult(True, answer.status, latency,
                           f"{name} {answer.status} in {latency:.2f} s", body, target)
    return ProbeResult(False, answer.status, latency, f"{name} {answer.status}: {problem}",
                       body, target)


def _verify_reason(exc: ssl.SSLCertVerificationError, address: str) -> str:
    message = exc.verify_message or exc.reason or str(exc)
    if "mismatch" in message.lower():
        return (f"the served certificate does not list {address} among its SANs "
                f"({message})")
    return f"the served certificate does not verify against the CA ({message})"


class _Judge:
    """Healthy means HTTP 200; otherwise the reason is the body's failing lines."""

    @classmethod
    def judge(cls, answer: HttpAnswer) -> str | None:
        if answer.status == 200:
            return None
        text = answer.body.decode("utf-8", "replace").strip()
        failing = [line for line in text.splitlines() if line.startswith("[-]")]
        summary = "; ".join(failing) if failing else text.splitlines()[0] if text else ""
        return summary[:300] or answer.reason or "unhealthy"


class _EtcdJudge(_Judge):
    """etcd /health: HTTP 200 and ``{"health":"true"}``."""

    @classmethod
    def judge(cls, answer: HttpAnswer) -> str | None:
        try:
            data = json.loads(answer.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return f"not an etcd health answer: {answer.body[:80]!r}"
        if answer.status == 200 and data.get("health") == "true":
            return None
        reason = data.get("reason") or answer.reason or "unhealthy"
        return f"health {data.get('health', '?')} ({reason})"


async def apiserver_probe(address: str, port: int = 6443, path: str = "/livez", *,
                          ca_pem: PemSource | None = None,
                          context: ssl.SSLContext | None = None,
                          timeout: float = DEFAULT_TIMEOUT,
                          dialer: Dialer | None = None) -> ProbeResult:
    """Probe kube-apiserver's ``path`` (``/livez``, ``/readyz``, ``/healthz``, ``/version``,
    optionally with ``?verbose``) on ``address:port``.

    Args:
        ca_pem: the cluster CA: the served certificate must chain to it and list
            ``address``; None probes without verification.
        context: a prepared TLS context (overrides ``ca_pem``).
        timeout: seconds for the whole exchange.
        dialer: where to connect for ``address:port`` (default: directly).
    """
    name = path.lstrip("/").split("?")[0] or "/"
    try:
        ctx = context or tls_context(ca_pem)
    except ValueError as exc:
        return ProbeResult(False, None, None, f"{name}: {exc}")
    return await probe(name, address, port, path, context=ctx, timeout=timeout,
                       dialer=dialer)


async def etcd_health(address: str, port: int = 2379, *, ca_pem: PemSource | None = None,
                      cert_pem: PemSource | None = None, key_pem: PemSource | None = None,
                      context: ssl.SSLContext | None = None,
                      timeout: float = DEFAULT_TIMEOUT,
                      dialer: Dialer | None = None) -> ProbeResult:
    """Probe etcd's ``/health`` with a client certificate (KTHW requires one).

    Args:
        ca_pem: the CA the etcd serving certificate must chain to (None: no verification).
        cert_pem, key_pem: the client pair (KTHW uses kubernetes.pem).
        context: a prepared TLS context (overrides the PEM arguments).
        timeout: seconds for the whole exchange.
        dialer: where to connect for ``address:port`` (default: directly).
    """
    try:
        ctx = context or tls_context(ca_pem, cert_pem, key_pem)
    except ValueError as exc:
        return ProbeResult(False, None, None, f"etcd health: {exc}")
    return await probe("etcd health", address, port, "/health", context=ctx, timeout=timeout,
                       healthy=_EtcdJudge, dialer=dialer)


__all__ = [
    "HttpAnswer",
    "ProbeResult",
    "apiserver_probe",
    "etcd_health",
    "https_get",
    "probe",
    "read_answer",
    "tls_context",
]
