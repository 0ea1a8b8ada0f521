"""etcd member checks over HTTPS with the client certificate (KTHW: kubernetes.pem).

* :func:`etcd_health_check`: ``GET /health`` -> ``{"health":"true"}``.
* :func:`etcd_status_check`: the v3 JSON gateway (etcd 3.4 and 3.5 serve it under
  ``/v3/``): ``POST /v3/maintenance/status`` gives the member's id, the leader's id, raft
  term and index, DB size and alarms; ``POST /v3/cluster/member/list`` gives every
  member's name and peer URLs, compared with the inventory's controllers (name
  ``controller-N``, peer URL ``https://ADDR:2380``).  64-bit numbers arrive as JSON
  strings (grpc-gateway's encoding).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping

from tui.core.health.client import HttpClient
from tui.core.health.http_checks import describe_error, ms
from tui.core.health.model import Outcome

__all__ = ["ETCD_CLIENT_PORT", "etcd_health_check", "etcd_status_check", "member_differences"]

ETCD_CLIENT_PORT = 2379
_ERRORS = (OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError)


async def etcd_health_check(client: HttpClient, address: str, port: int, *,
                            context: ssl.SSLContext) -> Outcome:
    """``GET /health``: ok when HTTP 200 and ``"health":"true"``."""
    where = f"{address}:{port}"
    try:
        exchange = await client.request(address, port, "/health", context=context)
    except _ERRORS as exc:
        return Outcome.fail(f"etcd: {describe_error(exc, where)}")
    answer = exchange.answer
    text = answer.body.decode("utf-8", "replace").strip()
    verbose = f"GET https://{where}/health -> {answer.status} {answer.reason}\n{text}"
    try:
        data = json.loads(text or "{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Outcome.fail(f"etcd: not an etcd health answer: {text[:80]!r}",
                            exchange.latency, verbose)
    if answer.status == 200 and data.get("health") == "true":
        return Outcome.ok(f"etcd healthy in {ms(exchange.latency)}", exchange.latency, verbose)
    reason = data.get("reason") or answer.reason or "unhealthy"
    return Outcome.fail(f"etcd health {data.get('health', '?')} ({reason})", exchange.latency,
                        verbose)


def member_differences(members: list[Mapping[str, object]],
                       expected: Mapping[str, str]) -> list[str]:
    """How the member list differs from ``expected`` (name -> peer URL), in sentences."""
    problems = []
    seen = {}
    for member in members:
        name = str(member.get("name") or "")
        peers = [str(u) for u in member.get("peerURLs", []) or []]  # type: ignore[attr-defined]
        if not name:
            problems.append(f"member {member.get('ID', '?')} has not started yet "
                            f"(peer URLs {', '.join(peers) or 'none'})")
            continue
        seen[name] = peers
        if name not in expected:
            problems.append(f"member {name} is not a controller of the inventory")
        elif expected[name] not in peers:
            problems.append(f"member {name} advertises {', '.join(peers) or 'no peer URL'}, "
                            f"the inventory says {expected[name]}")
    for name in expected:
        if name not in seen:
            problems.append(f"controller {name} is not a member")
    return problems


async def etcd_status_check(client: HttpClient, address: str, port: int, *,
                            context: ssl.SSLContext, expected: Mapping[str, str]) -> Outcome:
    """Member status (leader, raft term and index, DB size) and the member list.

    Args:
        expected: the inventory's members, name -> peer URL.

    Returns ok, warn (alarms, or a member list that disagrees with the inventory) or fail.
    """
    where = f"{address}:{port}"
    try:
        status_x = await client.request(address, port, "/v3/maintenance/status",
                                        context=context, method="POST", body=b"{}")
        members_x = await client.request(address, port, "/v3/cluster/member/list",
                                         context=context, method="POST", body=b"{}")
    except _ERRORS as exc:
        return Outcome.fail(f"etcd status: {describe_error(exc, where)}")
    latency = status_x.latency + members_x.latency
    for exchange, what in ((status_x, "status"), (members_x, "member list")):
        if exchange.answer.status != 200:
            body = exchange.answer.body.decode("utf-8", "replace").strip()
            return Outcome.fail(f"etcd {what} {exchange.answer.status}: {body[:160]}", latency,
                                body)
    try:
        status = json.loads(status_x.answer.body)
        members, names, member_lines, problems = _members(members_x.answer.body, expected)
    except (ValueError, AttributeError) as exc:
        return Outcome.fail(f"etcd status: not a v3 gateway answer ({exc})", latency)
    me = str(status.get("header", {}).get("member_id", ""))
    leader = str(status.get("leader", ""))
    facts: dict[str, object] = {
        "member": names.get(me, me), "leader": names.get(leader, leader) if leader != "0"
        else None, "is_leader": bool(leader) and leader == me,
        "raft_term": int(status.get("raftTerm", 0) or 0),
        "raft_index": int(status.get("raftIndex", 0) or 0),
        "db_size": int(status.get("dbSize", 0) or 0), "version": status.get("version", ""),
        "members": sorted(names.values()),
    }
    del members
    lines = [f"member {facts['member']} (etcd {facts['version']})",
             f"leader: {facts['leader'] or 'none'}",
             f"raft term {facts['raft_term']}, index {facts['raft_index']}",
             f"DB size {_size(facts['db_size'])}", "members:", *member_lines]
    role = "leader" if facts["is_leader"] else (
        f"follower of {facts['leader']}" if facts["leader"] else "no leader")
    detail = (f"{role}, term {facts['raft_term']}, index {facts['raft_index']}, "
              f"db {_size(facts['db_size'])}")
    alarms = [str(e) for e in status.get("errors", []) or []]
    if not facts["leader"]:
        return Outcome.fail(f"etcd: {detail}", latency, "\n".join(lines), facts=facts)
    if alarms or problems:
        lines += [f"alarm: {a}" for a in alarms] + [f"differs: {p}" for p in problems]
        first = (alarms or problems)[0]
        return Outcome.warn(f"{role}; {first}", latency, "\n".join(lines), facts=facts)
    return Outcome.ok(detail, latency, "\n".join(lines), facts=facts)


_MemberView = tuple[list[dict[str, object]], dict[str, str], list[str], list[str]]
_member_cache: dict[bytes, tuple[Mapping[str, str], _MemberView]] = {}


def _members(body: bytes, expected: Mapping[str, str]) -> _MemberView:
    """Parse a member list and compare it with ``expected``; kept per answer (every
    member of a cluster answers the same list, round after round).

    Raises:
        ValueError, AttributeError: not a member list.
    """
    known = _member_cache.get(body)
    if known is not None and known[0] is expected:
        return known[1]
    members = json.loads(body).get("members", [])
    names = {str(m.get("ID")): str(m.get("name") or "?") for m in members}
    lines = [f"  {m.get('name') or '(unstarted)'}  id {m.get('ID')}  peers "
             f"{', '.join(m.get('peerURLs', []))}  clients "
             f"{', '.join(m.get('clientURLs', []) or [])}" for m in members]
    view = (members, names, lines, member_differences(members, expected))
    if len(_member_cache) >= 16:
        _member_cache.clear()
    _member_cache[body] = (expected, view)
    return view


def _size(value: object) -> str:
    size = float(value) if isinstance(value, int | float) else 0.0
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
