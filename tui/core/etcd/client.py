"""HTTPS to etcd: ``/health``, ``/version`` and the v3 JSON gateway, with a client certificate.

No etcdctl: one TLS connection per request (``Connection: close``), opened where the
:class:`~tui.core.fleet.dial.Dialer` says (directly, or through the jump host), verifying
the served certificate against the cluster CA for the *member's* address.  Answers are
typed values; 64-bit integers that the gateway sends as decimal strings are ints here.

Usage::

    client = EtcdClient.from_files(ca, cert, key, dialer=dialer)
    health = await client.health("10.240.0.10")
    members = await client.members("10.240.0.10")        # MemberList
    status = await client.status("10.240.0.10")          # MemberStatus
    result = await client.snapshot("10.240.0.10", Path("etcd.db"))   # verified

Failures raise :class:`EtcdError` with one sentence naming the endpoint (``health`` never
raises: its :class:`Health` says what went wrong).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.core.etcd.unit import CLIENT_PORT
from tui.core.fleet.dial import Dialer, DirectDialer
from tui.core.health.probes import PemSource, tls_context

DEFAULT_TIMEOUT = 5.0
MAX_BODY = 4 * 1024 * 1024
SNAPSHOT_TIMEOUT = 300.0


class EtcdError(Exception):
    """A request to etcd failed; the message is one sentence for people.

    Attributes:
        endpoint: ``address:port``.
        status: HTTP status when etcd answered (None for network or TLS failures).
        kind: ``refused``, ``timeout``, ``tls``, ``client-cert``, ``http``, ``protocol``.
    """

    def __init__(self, message: str, endpoint: str, *, status: int | None = None,
                 kind: str = "protocol") -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers (lower-case), body, round-trip seconds."""

    status: int
    headers: dict[str, str]
    body: bytes
    rtt: float


@dataclass(frozen=True)
class Health:
    """``/health`` of one member.

    Attributes:
        endpoint: ``address:port``.
        ok: HTTP 200 and ``{"health":"true"}``.
        detail: why not (or ``health true``).
        rtt: seconds for the request (None without an answer).
        error_kind: the :class:`EtcdError` kind when there was no answer.
    """

    endpoint: str
    ok: bool
    detail: str
    rtt: float | None = None
    error_kind: str | None = None


@dataclass(frozen=True)
class Member:
    """One member as ``member list`` reports it.

    Attributes:
        id: the member ID (uint64).
        name: ``--name`` (empty while a newly added member has not started).
        peer_urls, client_urls: as advertised.
        is_learner: a learner (raft non-voting) member.
    """

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False

    @property
    def hex_id(self) -> str:
        """The ID as etcdctl prints it (lower-case hex)."""
        return format(self.id, "x")

    @property
    def started(self) -> bool:
        """etcdctl's ``started``: the member has published its name."""
        return bool(self.name)


@dataclass(frozen=True)
class MemberList:
    """``/v3/cluster/member/list`` from one endpoint."""

    cluster_id: int
    answered_by: int
    members: tuple[Member, ...]
    rtt: float


@dataclass(frozen=True)
class MemberStatus:
    """``/v3/maintenance/status`` of one member.

    Attributes:
        endpoint: ``address:port``.
        member_id, cluster_id: from the header.
        version: etcd's version.
        db_size, db_size_in_use: bytes (in use: 3.4+; 0 when not reported).
        leader: the leader's member ID (0: no leader).
        raft_term, raft_index, raft_applied_index: raft progress.
        revision: the key-value store revision.
        errors: alarms and errors the member reports.
        rtt: seconds for the request.
    """

    endpoint: str
    member_id: int
    cluster_id: int
    version: str
    db_size: int
    db_size_in_use: int
    leader: int
    raft_term: int
    raft_index: int
    raft_applied_index: int
    revision: int
    errors: tuple[str, ...] = ()
    rtt: float = 0.0

    @property
    def is_leader(self) -> bool:
        """This member leads."""
        return self.leader != 0 and self.leader == self.member_id


@dataclass(frozen=True)
class SnapshotResult:
    """A snapshot saved on this machine.

    Attributes:
        path: the file (etcd's db with its SHA-256 appended, like ``etcdctl snapshot save``).
        size: bytes written.
        sha256: hex digest of the whole file.
        verified: the appended SHA-256 matched and the file is a bbolt database.
        duration: seconds.
        endpoint: where it came from.
    """

    path: Path
    size: int
    sha256: str
    verified: bool
    duration: float
    endpoint: str
    detail: str = field(default="")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _member(data: dict[str, Any]) -> Member:
    return Member(id=_int(data.get("ID")), name=str(data.get("name") or ""),
                  peer_urls=tuple(data.get("peerURLs") or ()),
                  client_urls=tuple(data.get("clientURLs") or ()),
                  is_learner=bool(data.get("isLearner")))


class EtcdClient:
    """Requests to etcd members over HTTPS with the cluster CA and a client certificate.

    Args:
        context: client TLS context (see :meth:`from_files`).
        dialer: where to connect for a member address (default: directly).
        timeout: seconds for one request (connect, handshake, answer).
    """

    def __init__(self, context: ssl.SSLContext, *, dialer: Dialer | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.context = context
        self.dialer: Dialer = dialer or DirectDialer()
        self.timeout = timeout

    @classmethod
    def from_files(cls, ca: PemSource, cert: PemSource | None, key: PemSource | None, *,
                   dialer: Dialer | None = None,
                   timeout: float = DEFAULT_TIMEOUT) -> EtcdClient:
        """A client verifying against ``ca`` and presenting ``cert``/``key``.

        Raises:
            ValueError: a PEM cannot be loaded (the message says which).
        """
        return cls(tls_context(ca, cert, key), dialer=dialer, timeout=timeout)

    # -- transport ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _exchange(self, address: str, port: int, method: str, path: str,
                        body: bytes | None) -> AsyncIterator[tuple[asyncio.StreamReader, int,
                                                                   dict[str, str]]]:
        endpoint = _endpoint(address, port)
        try:
            host, real_port = await self.dialer.endpoint(address, port)
            server_hostname = address if self.context.check_hostname else None
            reader, writer = await asyncio.open_connection(
                host, real_port, ssl=self.context, server_hostname=server_hostname)
        except ssl.SSLCertVerificationError as exc:
            message = exc.verify_message or str(exc)
            if "mismatch" in message.lower():
                why = f"its certificate does not list {address} among its SANs ({message})"
            else:
                why = f"its certificate does not verify against the cluster CA ({message})"
            raise EtcdError(f"etcd at {endpoint}: {why}.", endpoint, kind="tls") from None
        except ssl.SSLError as exc:
            raise EtcdError(f"etcd at {endpoint}: the TLS handshake failed "
                            f"({exc.reason or exc}).", endpoint, kind="tls") from None
        except ConnectionRefusedError:
            raise EtcdError(f"etcd at {endpoint}: nothing listens there (connection "
                            "refused).", endpoint, kind="refused") from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise EtcdError(f"etcd at {endpoint}: cannot connect" + (f" ({why})" if why
                                                                    else "") + ".",
                            endpoint, kind="refused") from None
        try:
            head = [f"{method} {path} HTTP/1.1", f"Host: {endpoint}",
                    "User-Agent: hardway", "Accept: application/json", "Connection: close"]
            if body is not None:
                head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
            await writer.drain()
            status, headers = await _read_head(reader)
            yield reader, status, headers
        except ssl.SSLError as exc:
            # TLS 1.3: a refused client certificate shows up on the first read.
            reason = exc.reason or str(exc)
            if "CERTIFICATE" in reason.upper() or "UNKNOWN_CA" in reason.upper():
                raise EtcdError(f"etcd at {endpoint} refused the client certificate "
                                f"({reason}).", endpoint, kind="client-cert") from None
            raise EtcdError(f"etcd at {endpoint}: TLS failed ({reason}).", endpoint,
                            kind="tls") from None
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            raise EtcdError(f"etcd at {endpoint} closed the connection without an answer "
                            f"({type(exc).__name__}); a refused client certificate looks "
                            "like this.", endpoint, kind="client-cert") from None
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def request(self, address: str, method: str, path: str, payload: Any = None, *,
                      port: int = CLIENT_PORT) -> Answer:
        """One request; ``payload`` (not None) is sent as JSON.

        Raises:
            EtcdError: no answer (the kind says why).
        """
        endpoint = _endpoint(address, port)
        body = None if payload is None else json.dumps(payload).encode()
        start = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                async with self._exchange(address, port, method, path, body) as (
                        reader, status, headers):
                    data = await _read_body(reader, headers)
        except TimeoutError:
            raise EtcdError(f"etcd at {endpoint} did not answer {path} within "
                            f"{self.timeout:g} s.", endpoint, kind="timeout") from None
        return Answer(status, headers, data, time.monotonic() - start)

    async def _json(self, address: str, path: str, payload: Any, port: int
                    ) -> tuple[dict[str, Any], float]:
        answer = await self.request(address, "POST" if payload is not None else "GET", path,
                                    payload, port=port)
        endpoint = _endpoint(address, port)
        try:
            data = json.loads(answer.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise EtcdError(f"etcd at {endpoint} answered {path} with HTTP {answer.status} "
                            f"and no JSON ({answer.body[:80]!r}).", endpoint,
                            status=answer.status)
        if answer.status != 200 or ("error" in data and "header" not in data):
            message = data.get("message") or data.get("error") or answer.body[:200].decode(
                "utf-8", "replace")
            raise EtcdError(f"etcd at {endpoint} refused {path}: {message} "
                            f"(HTTP {answer.status}).", endpoint, status=answer.status,
                            kind="http")
        return data, answer.rtt

    # -- API ----------------------------------------------------------------------------

    async def health(self, address: str, *, port: int = CLIENT_PORT) -> Health:
        """``GET /health``; never raises."""
        endpoint = _endpoint(address, port)
        try:
            answer = await self.request(address, "GET", "/health", port=port)
        except EtcdError as exc:
            return Health(endpoint, False, str(exc), None, exc.kind)
        try:
            data = json.loads(answer.body or b"{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if answer.status == 200 and data.get("health") == "true":
            return Health(endpoint, True, "health true", answer.rtt)
        reason = data.get("reason") or f"HTTP {answer.status}"
        return Health(endpoint, False, f"health {data.get('health', '?')} ({reason})",
                      answer.rtt)

    async def version(self, address: str, *, port: int = CLIENT_PORT) -> dict[str, str]:
        """``GET /version``: ``{"etcdserver": ..., "etcdcluster": ...}``."""
        data, _rtt = await self._json(address, "/version", None, port)
        return {str(k): str(v) for k, v in data.items()}

    async def members(self, address: str, *, port: int = CLIENT_PORT) -> MemberList:
        """``/v3/cluster/member/list``."""
        data, rtt = await self._json(address, "/v3/cluster/member/list", {}, port)
        header = data.get("header") or {}
        return MemberList(cluster_id=_int(header.get("cluster_id")),
                          answered_by=_int(header.get("member_id")),
                          members=tuple(_member(m) for m in data.get("members") or ()),
                          rtt=rtt)

    async def status(self, address: str, *, port: int = CLIENT_PORT) -> MemberStatus:
        """``/v3/maintenance/status``."""
        data, rtt = await self._json(address, "/v3/maintenance/status", {}, port)
        header = data.get("header") or {}
        return MemberStatus(
            endpoint=_endpoint(address, port), member_id=_int(header.get("member_id")),
            cluster_id=_int(header.get("cluster_id")), version=str(data.get("version", "")),
            db_size=_int(data.get("dbSize")), db_size_in_use=_int(data.get("dbSizeInUse")),
            leader=_int(data.get("leader")), raft_term=_int(data.get("raftTerm")),
            raft_index=_int(data.get("raftIndex")),
            raft_applied_index=_int(data.get("raftAppliedIndex")),
            revision=_int(header.get("revision")),
            errors=tuple(str(e) for e in data.get("errors") or ()), rtt=rtt)

    async def member_add(self, address: str, peer_urls: list[str], *,
                         port: int = CLIENT_PORT) -> tuple[Member, tuple[Member, ...]]:
        """``/v3/cluster/member/add``: the new member and the members after the change."""
        data, _rtt = await self._json(address, "/v3/cluster/member/add",
                                      {"peerURLs": list(peer_urls)}, port)
        return (_member(data.get("member") or {}),
                tuple(_member(m) for m in data.get("members") or ()))

    async def member_remove(self, address: str, member_id: int, *,
                            port: int = CLIENT_PORT) -> tuple[Member, ...]:
        """``/v3/cluster/member/remove``: the members left."""
        data, _rtt = await self._json(address, "/v3/cluster/member/remove",
                                      {"ID": str(member_id)}, port)
        return tuple(_member(m) for m in data.get("members") or ())

    async def snapshot(self, address: str, target: Path, *, port: int = CLIENT_PORT,
                       timeout: float = SNAPSHOT_TIMEOUT,
                       progress: Callable[[int], None] | None = None) -> SnapshotResult:
        """Stream ``/v3/maintenance/snapshot`` into ``target`` (0600, atomically) and verify.

        Raises:
            EtcdError: the stream failed or the data does not verify (``target`` is then
                not created; a partial file never replaces an earlier one).
        """
        endpoint = _endpoint(address, port)
        target = Path(target)
        temp = target.with_name(f".{target.name}.part")
        start = time.monotonic()
        digest = hashlib.sha256()
        size = 0
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                async with asyncio.timeout(timeout):
                    async with self._exchange(address, port, "POST",
                                              "/v3/maintenance/snapshot", b"{}") as (
                            reader, status, headers):
                        if status != 200:
                            refused = (await _read_body(reader, headers))[:200]
                            raise EtcdError(f"etcd at {endpoint} refused the snapshot "
                                            f"(HTTP {status}: {refused!r}).", endpoint,
                                            status=status, kind="http")
                        async for message in _json_lines(_body_chunks(reader, headers)):
                            if "error" in message:
                                err = message["error"]
                                why = err.get("message") if isinstance(err, dict) else err
                                raise EtcdError(f"etcd at {endpoint} stopped the snapshot: "
                                                f"{why}.", endpoint, kind="http")
                            blob = base64.b64decode((message.get("result") or {}).get(
                                "blob") or "")
                            handle.write(blob)
                            digest.update(blob)
                            size += len(blob)
                            if progress is not None:
                                progress(size)
                handle.flush()
                os.fsync(handle.fileno())
            from tui.core.etcd.snapshot import verify_snapshot

            check = verify_snapshot(temp)
            if not check.ok:
                raise EtcdError(f"the snapshot from {endpoint} does not verify: "
                                f"{check.detail}.", endpoint, kind="protocol")
            os.replace(temp, target)
        except TimeoutError:
            raise EtcdError(f"the snapshot from {endpoint} took longer than {timeout:g} s.",
                            endpoint, kind="timeout") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return SnapshotResult(target, size, digest.hexdigest(), True,
                              time.monotonic() - start, endpoint, check.detail)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise asyncio.IncompleteReadError(head, None)
    headers: dict[str, str] = {}
    for line in lines:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _body_chunks(reader: asyncio.StreamReader, headers: dict[str, str]
                       ) -> AsyncIterator[bytes]:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining > 0:
            chunk = await reader.read(min(remaining, 65536))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(chunk)
            yield chunk
    else:
        while chunk := await reader.read(65536):
            yield chunk


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    parts: list[bytes] = []
    total = 0
    async for chunk in _body_chunks(reader, headers):
        total += len(chunk)
        if total > MAX_BODY:
            break
        parts.append(chunk)
    return b"".join(parts)


async def _json_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """The gateway's stream: one JSON object per line (``{"result": {...}}``)."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)


__all__ = ["Answer", "EtcdClient", "EtcdError", "Health", "Member", "MemberList",
           "MemberStatus", "SnapshotResult"]
