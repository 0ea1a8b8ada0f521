"""The SSH probe: the Fleet's connection to a host is alive and answers a no-op.

The no-op is the request OpenSSH's ``ServerAliveInterval`` sends: a global request
``keepalive@openssh.com`` with want-reply.  Every server answers it (success or
failure) without starting a process, so it measures the round trip of the connection
itself and leaves nothing in the host's logs or in hardway's audit of commands.  The
connection is the Fleet's (:meth:`~tui.core.fleet.fleet.Fleet.jump_connection`), opened
when it is not (a dropped one is opened again, with its reason when that fails).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tui.core.errors import UserError
from tui.core.health.http_checks import ms
from tui.core.health.model import Outcome

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet

__all__ = ["keepalive_round_trip", "ssh_check"]


async def keepalive_round_trip(conn: Any) -> None:
    """Send ``keepalive@openssh.com`` on ``conn`` (an asyncssh connection) and await the
    reply; asyncssh has no public call for it, so a ``true`` command is the fallback."""
    request = getattr(conn, "_make_global_request", None)
    if request is not None:
        await request(b"keepalive@openssh.com")
    else:  # pragma: no cover - only if asyncssh drops its internal method
        await conn.run("true", check=False)


async def ssh_check(fleet: Fleet, name: str) -> Outcome:
    """Is ``name``'s SSH connection alive, and how long does a no-op round trip take?"""
    try:
        conn = await fleet.jump_connection(name)
    except UserError as exc:
        return Outcome.fail(str(exc).rstrip("."))
    started = time.monotonic()
    try:
        await keepalive_round_trip(conn)
    except (OSError, EOFError) as exc:
        return Outcome.fail(f"{name}: the SSH connection failed ({exc})")
    if conn.is_closed():
        return Outcome.fail(f"{name}: the SSH connection closed")
    latency = time.monotonic() - started
    return Outcome.ok(f"ssh round trip {ms(latency)}", latency,
                      f"{fleet.endpoint(name)}: keepalive@openssh.com answered in "
                      f"{latency * 1000:.1f} ms", facts={"endpoint": fleet.endpoint(name)})
