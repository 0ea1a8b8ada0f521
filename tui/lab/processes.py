"""Processes the lab starts: finding them again and ending them for good.

Every process a lab session starts carries ``HARDWAY_LAB_HOST=<host root>`` in its
environment.  On Linux the lab finds all of them through ``/proc`` -- including
grandchildren that left their session with ``setsid`` -- so stopping a host or the
lab leaves nothing behind.  Elsewhere it falls back to the process groups it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path

MARKER = "HARDWAY_LAB_HOST"
"""Environment variable naming the lab host root a process belongs to."""

HANGUP_GRACE = 0.5
"""Seconds between SIGHUP and SIGKILL when a session or host goes away."""

_PROC = Path("/proc")


def has_proc() -> bool:
    """True where ``/proc/<pid>/environ`` and ``stat`` can be read (Linux)."""
    return (_PROC / "self" / "environ").exists()


def marked_pids(root: Path, marker: str = MARKER) -> list[int]:
    """Live processes whose environment marks them as started for host ``root``.

    ``marker`` is the variable to look for: :data:`MARKER` (SSH sessions) or the
    supervisor's ``HARDWAY_LAB_SERVICE`` (services).  Zombies are not listed (their
    environment is empty).  Returns ``[]`` where ``/proc`` is missing.
    """
    return pids_marked_with([f"{marker}={root}"])


def pids_marked_with(marks: Iterable[str]) -> list[int]:
    """Live processes whose environment holds any of ``marks`` (``VARIABLE=value``), found
    in one pass over ``/proc`` (``[]`` where it is missing)."""
    if not has_proc():
        return []
    needles = [mark.encode() + b"\0" for mark in marks]
    me = os.getpid()
    found: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if any(environ.startswith(n) or (b"\0" + n) in environ for n in needles):
            found.append(int(entry.name))
    return sorted(found)


async def kill_everywhere(roots: Iterable[Path], markers: Iterable[str],
                          timeout: float = 5.0) -> list[int]:
    """SIGKILL every process marked (with any of ``markers``) for any of host ``roots``,
    and wait until none is left (at most ``timeout``): the lab going away.

    One pass over ``/proc`` per round for every host at once: stopping 30 hosts one by one,
    each polling ``/proc`` for its own processes, kept the lab's loop busy for a minute
    while 30 etcd members lost their quorum and elected leaders on two cores.

    Returns the pids that were alive when it started.
    """
    marks = [f"{marker}={root}" for root in roots for marker in markers]
    pids = pids_marked_with(marks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    left = pids
    while left and loop.time() < deadline:
        signal_pids(left, signal.SIGKILL)
        await asyncio.sleep(0.05)
        left = pids_marked_with(marks)
    return pids


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """``(pid, fields)`` for every process, fields = /proc/PID/stat after ``(comm)``:
    state, ppid, pgrp, session, ... (Linux only; nothing elsewhere)."""
    if not has_proc():
        return
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ..."; comm may hold spaces and parens.
        fields = stat.rpartition(")")[2].split()
        if len(fields) >= 4:
            yield int(entry.name), fields


def children(parent: int) -> list[int]:
    """Pids whose parent is ``parent``."""
    return [pid for pid, fields in process_stats() if int(fields[1]) == parent]


def session_members(sid: int) -> list[tuple[int, int]]:
    """``(pid, pgid)`` of every live process in session ``sid`` (Linux only)."""
    return [(pid, int(fields[2])) for pid, fields in process_stats()
            if fields[0] != "Z" and int(fields[3]) == sid]


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to process group ``pgid``; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_group_but(pgid: int, signum: int, spare: int) -> bool:
    """Send ``signum`` to every member of group ``pgid`` except ``spare``.

    A confined host's programs run under an ``nsenter`` parent in the same group; it
    does not pass signals on, so it is spared and reports the program's own end.
    Falls back to the whole group where ``/proc`` is missing.
    """
    if not has_proc():
        return signal_group(pgid, signum)
    members = [pid for pid, fields in process_stats()
               if int(fields[2]) == pgid and pid != spare and fields[0] != "Z"]
    signal_pids(members, signum)
    return bool(members)


def signal_pids(pids: Iterable[int], signum: int) -> None:
    """Send ``signum`` to each pid, ignoring processes that already ended."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def signal_session(sid: int, signum: int) -> None:
    """Send ``signum`` to every process group of session ``sid`` (and the leader's group)."""
    groups = {pgid for _pid, pgid in session_members(sid)}
    groups.add(sid)
    for pgid in groups:
        signal_group(pgid, signum)


async def hang_up_session(sid: int, grace: float = HANGUP_GRACE) -> None:
    """SIGHUP every process of session ``sid``, then SIGKILL what is left after ``grace``."""
    signal_session(sid, signal.SIGHUP)
    signal_session(sid, signal.SIGCONT)  # stopped jobs must see the hangup too
    deadline = asyncio.get_running_loop().time() + grace
    while asyncio.get_running_loop().time() < deadline:
        if not _session_alive(sid):
            return
        await asyncio.sleep(0.05)
    signal_session(sid, signal.SIGKILL)
    if has_proc():
        signal_pids((pid for pid, _pgid in session_members(sid)), signal.SIGKILL)


async def kill_marked(root: Path, grace: float = HANGUP_GRACE,
                      marker: str = MARKER) -> list[int]:
    """End every process marked for host ``root``: SIGHUP, then SIGKILL after ``grace``.

    Returns the pids that were still alive when it started.
    """
    pids = marked_pids(root, marker)
    if not pids:
        return []
    signal_pids(pids, signal.SIGHUP)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline and marked_pids(root, marker):
        await asyncio.sleep(0.05)
    for _attempt in range(40):
        left = marked_pids(root, marker)
        if not left:
            break
        signal_pids(left, signal.SIGKILL)
        await asyncio.sleep(0.05)
    return pids


def _session_alive(sid: int) -> bool:
    if has_proc():
        return bool(session_members(sid))
    return signal_group(sid, 0)
