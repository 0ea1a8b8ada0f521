"""Run one command on one host as a stream of events, and kill it on timeout or cancel.

:func:`run_on_host` opens a session channel on the host's connection, forwards output as
:class:`~tui.core.fleet.events.Output` events (decoded incrementally, so a UTF-8 character
split across reads comes out whole), and finishes with exactly one
:class:`~tui.core.fleet.events.Exited` or :class:`~tui.core.fleet.events.Failed`.  On timeout
or cancellation it sends TERM (the ``signal`` channel request; the command wrapper of
:mod:`tui.core.fleet.command` kills the whole process group) -- or ^C under a PTY -- and then
closes the channel.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import asyncssh

from tui.core.audit import AuditLog
from tui.core.fleet.command import needs_sudo_password, remote_command, substitute, values_for
from tui.core.fleet.connection import HostConnection, HostUnavailable
from tui.core.fleet.events import Event, Exited, Failed, Output
from tui.core.inventory.model import Host

TERM_TYPE = "xterm-256color"
TERM_SIZE = (200, 50)
KILL_WAIT = 3.0
"""Seconds to wait for the remote shell to exit after TERM (it sends KILL after 2 s)."""
PTY_KILL_WAIT = 1.0
OPEN_WAIT = 5.0
"""Seconds a cancelled command waits for its channel to open, so it can be killed."""
STDERR_HEAD = 4096


@dataclass(frozen=True)
class ExecOptions:
    """How to run a command (shared by every host of one stream)."""

    timeout: float | None = None
    sudo: bool = False
    pty: bool = False
    input: bytes | None = None


class _Session(asyncssh.SSHClientSession[bytes]):
    """Decode and forward output; remember how the remote process ended."""

    def __init__(self, host: str, emit: Callable[[Event], None]) -> None:
        self._host = host
        self._emit = emit
        self._decoders = {
            "stdout": codecs.getincrementaldecoder("utf-8")(errors="replace"),
            "stderr": codecs.getincrementaldecoder("utf-8")(errors="replace"),
        }
        self.stderr_head = ""
        self.status: int | None = None
        self.signal: str | None = None
        self.error: Exception | None = None
        self.done = asyncio.Event()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        stream = "stderr" if datatype == asyncssh.EXTENDED_DATA_STDERR else "stdout"
        text = self._decoders[stream].decode(data)
        if stream == "stderr" and len(self.stderr_head) < STDERR_HEAD:
            self.stderr_head += text[:STDERR_HEAD]
        if text:
            self._emit(Output(self._host, stream, text))  # type: ignore[arg-type]

    def exit_status_received(self, status: int) -> None:
        self.status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str,
                             lang: str) -> None:
        self.signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        for stream, decoder in self._decoders.items():
            rest = decoder.decode(b"", final=True)
            if rest:
                self._emit(Output(self._host, stream, rest))  # type: ignore[arg-type]
        self.error = exc
        self.done.set()


async def _stop(chan: asyncssh.SSHClientChannel[bytes], session: _Session, pty: bool) -> bool:
    """Kill the remote command: TERM (or ^C under a PTY), wait a little, close the channel.

    Returns:
        True when the host answered (the command ended or the channel closed); False when
        it said nothing at all, i.e. the connection stalled and the kill may not have
        been delivered.
    """
    try:
        if pty:
            chan.write(b"\x03")
        else:
            chan.send_signal("TERM")
    except (asyncssh.Error, OSError, BrokenPipeError):
        pass
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(session.done.wait(), PTY_KILL_WAIT if pty else KILL_WAIT)
    chan.close()
    try:
        await asyncio.wait_for(session.done.wait(), 2.0)
    except TimeoutError:
        chan.abort()
        return False
    return True


async def run_on_host(hc: HostConnection, host: Host, command: str, options: ExecOptions,
                      emit: Callable[[Event], None], audit: AuditLog | None = None) -> Event:
    """Run ``command`` on ``host``; emit Output events and return the final event.

    The final event (Exited or Failed) is returned, not emitted: the caller emits it so that
    exactly one final event per host reaches the consumer even when this is cancelled.
    """
    start = time.monotonic()
    final: Event
    user_command = substitute(command, values_for(host))
    try:
        conn = await hc.ensure()
    except HostUnavailable as exc:
        final = Failed(host.name, exc.reason)
        _audit(audit, hc, user_command, final, start, options)
        return final
    text = remote_command(user_command, host.env(), sudo=options.sudo, pty=options.pty)
    timed_out = cancelled = stalled = False
    async with hc.channels:
        opening = asyncio.ensure_future(conn.create_session(
            lambda: _Session(host.name, emit), text, encoding=None,
            term_type=TERM_TYPE if options.pty else None,
            term_size=TERM_SIZE if options.pty else None))
        try:
            try:
                chan, created = await asyncio.shield(opening)
            except asyncio.CancelledError:
                # The server may already run the command: let the open finish, then kill it.
                cancelled = True
                try:
                    chan, created = await asyncio.wait_for(opening, OPEN_WAIT)
                except (asyncssh.Error, OSError, TimeoutError, asyncio.CancelledError):
                    final = Exited(host.name, None, time.monotonic() - start, cancelled=True)
                    _audit(audit, hc, user_command, final, start, options)
                    return final
        except (asyncssh.Error, OSError) as exc:
            final = Failed(host.name, f"cannot start the command on {host.name} "
                                      f"({hc.endpoint}): {getattr(exc, 'reason', exc)}")
            _audit(audit, hc, user_command, final, start, options)
            return final
        session = cast(_Session, created)
        if cancelled:
            await _stop(chan, session, options.pty)
        else:
            try:
                if options.input:
                    chan.write(options.input)
                if not options.pty:
                    chan.write_eof()
                await asyncio.wait_for(session.done.wait(), options.timeout)
            except TimeoutError:
                timed_out = True
                stalled = not await _stop(chan, session, options.pty)
            except asyncio.CancelledError:
                cancelled = True
                await _stop(chan, session, options.pty)
            except (asyncssh.Error, OSError) as exc:
                session.error = exc
                chan.abort()
    duration = time.monotonic() - start
    final = _final(hc, host, session, options, duration, timed_out, cancelled, stalled)
    _audit(audit, hc, user_command, final, start, options)
    return final


def _final(hc: HostConnection, host: Host, session: _Session, options: ExecOptions,
           duration: float, timed_out: bool, cancelled: bool, stalled: bool = False) -> Event:
    if timed_out and stalled:
        return Failed(host.name, (
            f"the command on {host.name} timed out after {options.timeout:g} s and the "
            f"connection ({hc.endpoint}) has stalled: the host answered neither the kill nor "
            "the channel close, so the command may still be running there"))
    if timed_out or cancelled:
        return Exited(host.name, None, duration, signal=session.signal,
                      timed_out=timed_out, cancelled=cancelled)
    if session.status is None and session.signal is None:
        detail = getattr(session.error, "reason", None) or session.error or "channel closed"
        if "not responding to keepalive" in str(detail):
            return Failed(host.name, (
                f"the connection to {host.name} ({hc.endpoint}) stalled while the command ran: "
                f"no answer to {hc.keepalive_summary}; the host is frozen or the network "
                "dropped, and the command's outcome is unknown"))
        return Failed(host.name, f"the connection to {host.name} ({hc.endpoint}) was lost "
                                 f"while the command ran ({detail}); its outcome is unknown")
    if options.sudo and session.status == 1 and needs_sudo_password(session.stderr_head):
        return Failed(host.name, (
            f"sudo on {host.name} needs a password for user {hc.user or '?'}: hardway runs "
            "`sudo -n` and cannot type passwords; allow NOPASSWD for this user in sudoers "
            "or log in as root"))
    if options.sudo and session.status == 127 and "sudo" in session.stderr_head \
            and "not found" in session.stderr_head:
        return Failed(host.name, f"sudo is not installed on {host.name}; install it or "
                                 "log in as root")
    return Exited(host.name, session.status, duration, signal=session.signal)


def _audit(audit: AuditLog | None, hc: HostConnection, command: str, final: Event,
           start: float, options: ExecOptions) -> None:
    if audit is None:
        return
    duration = time.monotonic() - start
    if isinstance(final, Exited):
        audit.record(host=hc.name, kind="exec", command=command, status=final.status,
                     duration=duration, signal=final.signal, timed_out=final.timed_out or None,
                     cancelled=final.cancelled or None, remote_user=hc.user or None,
                     sudo=options.sudo or None)
    elif isinstance(final, Failed):
        audit.record(host=hc.name, kind="exec", command=command, status=None,
                     duration=duration, error=final.reason, remote_user=hc.user or None,
                     sudo=options.sudo or None)
