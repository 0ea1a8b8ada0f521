"""Console shells on their own I/O thread: SSH decryption and OSC 133 parsing off the UI loop.

A flood of output (``seq 1 1000000`` on three hosts) costs seconds of CPU in asyncssh and
in the shell's marker parser.  On the UI's event loop that work delays every keystroke and
frame.  :class:`ShellReactor` runs a second event loop on a daemon thread with its own
:class:`~tui.core.fleet.fleet.Fleet` (same hosts, options, host-key policy and audit log as
the app's fleet, separate SSH connections) and opens the console's shells there.

The UI side sees each shell through a :class:`ReactorShell`, which has the interface of
:class:`~tui.core.fleet.shell.Shell` that the console uses:

* keystrokes (:meth:`ReactorShell.write`, ``interrupt``, ``resize``) are handed to the I/O
  loop directly with ``call_soon_threadsafe`` -- no message hops on the UI loop;
* events are queued and delivered on the UI loop in batches, at most once per
  ``flush_interval`` per shell, consecutive :class:`ShellOutput` chunks joined into one;
* :meth:`ReactorShell.send_line` runs on the calling (UI) thread under the shell's lock and
  delivers the queued events and its :class:`CommandStarted` before it returns, exactly as
  :meth:`Shell.send_line` does.

:class:`ReactorFleet` is the :class:`~tui.core.console.shells.ShellFleet` the console is
given: states, connects and reconnects are the app fleet's; ``open_shell`` is the
reactor's.  Known limit: the reactor's connections trust the host keys the app's fleet
accepted (recorded or for this session); an unknown key on the reactor's side is never
asked about on the UI (the console only opens shells on hosts the app fleet reached).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import asyncssh

from tui.core.fleet.connection import HostUnavailable
from tui.core.fleet.events import ConnState, StateChanged
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.listeners import ReplayingListeners
from tui.core.fleet.shell import (
    BACKLOG_LIMIT,
    READY_TIMEOUT,
    CommandStarted,
    Shell,
    ShellEvent,
    ShellOutput,
    output_size,
)

log = logging.getLogger("hardway.fleet.reactor")

FLUSH_INTERVAL = 0.02
"""Seconds between two deliveries of one shell's events to the UI loop (at most)."""
PENDING_LIMIT = 128 * 1024
"""Characters of output queued for the UI before the shell stops reading from the host
(SSH flow control then holds the host back): bounds memory and the cost of one delivery."""
FLOOD_SIZE = 64 * 1024
"""A delivery this large means the host is flooding (``seq 1 1000000``, a big ``cat``)..."""
FLOOD_INTERVAL = 0.1
"""...and the next one waits this long, with up to FLOOD_PENDING characters queued: fewer,
larger pieces cost the UI loop less per line (a Terminal fed more lines than its
scrollback holds skips the ones that would scroll out), which leaves the loop free for
keystrokes and the other panes.  Nobody reads a flood 50 times a second."""
FLOOD_PENDING = 1024 * 1024
STOP_WAIT = 5.0

T = TypeVar("T")

__all__ = ["FLUSH_INTERVAL", "ReactorFleet", "ReactorShell", "ShellReactor"]


class _IOShell(Shell):
    """A :class:`Shell` living on the reactor's loop whose input may come from another thread.

    Incoming data and the UI thread's :meth:`send_line` are serialised by one lock; writes
    and window changes from other threads are handed to the reactor's loop.
    """

    def __init__(self, *args: Any, io_loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._io_loop = io_loop
        self._io_thread = threading.get_ident()
        self._lock = threading.RLock()

    def _on_io_thread(self) -> bool:
        return threading.get_ident() == self._io_thread

    def _received(self, data: bytes) -> None:
        with self._lock:
            super()._received(data)

    def _lost(self, exc: Exception | None) -> None:
        with self._lock:
            super()._lost(exc)

    def write(self, data: str) -> None:
        """Send raw keystrokes (from any thread)."""
        if self._on_io_thread():
            super().write(data)
        else:
            self._io_loop.call_soon_threadsafe(functools.partial(Shell.write, self, data))

    def send_line(self, line: str) -> CommandStarted | None:
        """Type ``line`` and Enter (from any thread; see :meth:`Shell.send_line`)."""
        with self._lock:
            return super().send_line(line)

    def pause(self) -> None:
        """Stop reading from the host (reactor thread); SSH flow control holds it back."""
        chan = self._chan
        if chan is not None and not self._gone.is_set():
            chan.pause_reading()

    def resume(self) -> None:
        """Read from the host again (from any thread)."""
        if not self._on_io_thread():
            self._io_loop.call_soon_threadsafe(self.resume)
            return
        chan = self._chan
        if chan is not None and not self._gone.is_set():
            with contextlib.suppress(asyncssh.Error, OSError):
                chan.resume_reading()

    def resize(self, columns: int, rows: int) -> None:
        """Change the PTY's window size (from any thread)."""
        if self._on_io_thread():
            super().resize(columns, rows)
        else:
            self.size = (columns, rows)
            self._io_loop.call_soon_threadsafe(
                functools.partial(Shell.resize, self, columns, rows))


class ReactorShell:
    """The UI thread's handle on a shell running on the reactor (see the module docstring)."""

    def __init__(self, shell: _IOShell, reactor: ShellReactor) -> None:
        self._shell = shell
        self._reactor = reactor
        self._ui_loop = reactor.ui_loop
        self._pending: list[ShellEvent] = []
        self._pending_lock = threading.Lock()
        self._pending_size = 0
        self._paused = False
        self._scheduled = False
        self._flooding = False
        self._next_flush = 0.0
        self._events: ReplayingListeners[ShellEvent] = ReplayingListeners(
            limit=BACKLOG_LIMIT, size=output_size)
        self.host = shell.host

    # -- what the console reads -------------------------------------------------------------

    @property
    def state(self) -> str:
        """opening, open, closed or failed."""
        return self._shell.state

    @property
    def reason(self) -> str:
        """Why the shell is closed or failed."""
        return self._shell.reason

    @property
    def kind(self) -> str | None:
        """bash, zsh, sh (None when the shell never reported)."""
        return self._shell.kind

    @property
    def preamble(self) -> str:
        """What the login shell printed before it was ready."""
        return self._shell.preamble

    @property
    def size(self) -> tuple[int, int]:
        """The window size as (columns, rows)."""
        return self._shell.size

    @property
    def busy(self) -> bool:
        """True while a command has not reached the next prompt."""
        return self._shell.busy

    @property
    def integrated(self) -> bool:
        """True when the foreground shell reports prompts and exit statuses."""
        return self._shell.integrated

    # -- input ------------------------------------------------------------------------------

    def write(self, data: str) -> None:
        """Send raw keystrokes now (straight to the I/O loop)."""
        self._shell.write(data)

    def interrupt(self) -> None:
        """Ctrl-C through the PTY."""
        self._shell.write("\x03")

    def resize(self, columns: int, rows: int) -> None:
        """Change the PTY's window size."""
        self._shell.resize(columns, rows)

    def send_line(self, line: str) -> CommandStarted | None:
        """Type ``line`` and Enter; its CommandStarted is delivered before this returns."""
        event = self._shell.send_line(line)
        self._flush()
        return event

    async def integrate(self, timeout: float = READY_TIMEOUT) -> bool:
        """Install integration in the shell now at the prompt (see :meth:`Shell.integrate`)."""
        done = await self._reactor.run(self._shell.integrate(timeout))
        self._flush()
        return done

    async def close(self) -> None:
        """Close the shell and wait until it is gone; its last events are delivered."""
        if self._reactor.running:
            await self._reactor.run(self._shell.close())
        self._flush()

    # -- events -----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[ShellEvent], None]) -> Callable[[], None]:
        """Call ``callback`` (on the UI loop) with every event; returns an unsubscribe.

        Events delivered before the first subscriber are replayed to it.
        """
        return self._events.subscribe(callback)

    def _queue(self, event: ShellEvent) -> None:
        """Shell listener (any thread): queue ``event`` and arm one delivery."""
        pause = False
        with self._pending_lock:
            self._pending.append(event)
            if isinstance(event, ShellOutput):
                self._pending_size += len(event.data)
                limit = FLOOD_PENDING if self._flooding else PENDING_LIMIT
                if self._pending_size > limit and not self._paused:
                    self._paused = pause = True
            scheduled, self._scheduled = self._scheduled, True
        if pause:
            self._shell.pause()
        if scheduled:
            return
        with contextlib.suppress(RuntimeError):  # a closed UI loop: nobody listens any more
            self._ui_loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        delay = self._next_flush - self._ui_loop.time()
        if delay > 0:
            self._ui_loop.call_later(delay, self._flush)
        else:
            self._flush()

    def _flush(self) -> None:
        """Deliver the queued events (UI loop), joining consecutive output chunks."""
        with self._pending_lock:
            events, self._pending = self._pending, []
            self._scheduled = False
            size, self._pending_size = self._pending_size, 0
            self._flooding = size > FLOOD_SIZE
            paused, self._paused = self._paused, False
        if paused:
            self._shell.resume()
        if not events:
            return
        interval = FLOOD_INTERVAL if self._flooding else self._reactor.flush_interval
        self._next_flush = self._ui_loop.time() + interval
        chunks: list[str] = []
        for event in events:
            if isinstance(event, ShellOutput):
                chunks.append(event.data)
                continue
            if chunks:
                self._deliver(ShellOutput(self.host, "".join(chunks)))
                chunks = []
            self._deliver(event)
        if chunks:
            self._deliver(ShellOutput(self.host, "".join(chunks)))

    def _deliver(self, event: ShellEvent) -> None:
        self._events.emit(event)


class ShellReactor:
    """A daemon thread with its own event loop and fleet, where the console's shells run.

    Create it on the UI loop (it remembers that loop for deliveries); :meth:`stop` closes
    the shells' connections and ends the thread.

    Args:
        fleet: the app's fleet; the reactor's fleet is its :meth:`Fleet.sibling`.
        flush_interval: seconds between two deliveries of one shell's events.
    """

    def __init__(self, fleet: Fleet, *, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.ui_loop = asyncio.get_running_loop()
        self.flush_interval = flush_interval
        self._app_fleet = fleet
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="hardway-shell-io", daemon=True)
        self._thread.start()
        self._fleet: Fleet | None = None
        self._stopped = False

    @property
    def running(self) -> bool:
        """True until :meth:`stop`."""
        return not self._stopped

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the reactor's loop and wait for its result from this loop."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wrap_future(future)

    async def _io_fleet(self) -> Fleet:
        if self._fleet is None:
            self._fleet = self._app_fleet.sibling()
        return self._fleet

    async def open_shell(self, name: str) -> ReactorShell:
        """Open ``name``'s interactive shell on the reactor (never raises for remote problems;
        check ``state`` and ``reason`` as for :func:`~tui.core.fleet.shell.open_shell`)."""
        return await self.run(self._open(name))

    async def _open(self, name: str) -> ReactorShell:
        fleet = await self._io_fleet()
        hc = fleet._connection(name)
        if hc.connection is None:  # a reconnect after a failure must not wait for backoff
            with contextlib.suppress(HostUnavailable):  # the shell below fails with the reason
                await hc.ensure(force=True)
        shell = _IOShell(hc, fleet.host(name), audit=fleet.audit, io_loop=self._loop)
        handle = ReactorShell(shell, self)
        shell.subscribe(handle._queue)
        try:
            await shell._open(READY_TIMEOUT)
        except BaseException:
            if shell._chan is not None:
                shell._chan.abort()
            raise
        return handle

    async def reconnect(self, name: str) -> None:
        """Drop ``name``'s reactor connection (the next shell connects anew)."""
        await self.run(self._drop(name))

    async def _drop(self, name: str) -> None:
        fleet = await self._io_fleet()
        await fleet._connection(name).close(state=ConnState.IDLE)

    async def stop(self) -> None:
        """Close the reactor's connections and end its thread."""
        if self._stopped:
            return
        self._stopped = True
        if self._fleet is not None:
            try:
                await asyncio.wait_for(self.run(self._fleet.close()), STOP_WAIT)
            except (TimeoutError, Exception) as error:  # closing must not stop the app
                log.debug("closing the shell reactor's fleet: %s", error)
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, STOP_WAIT)
        if not self._thread.is_alive():
            self._loop.close()


class ReactorFleet:
    """The console's fleet: the app fleet's states, the reactor's shells."""

    def __init__(self, fleet: Fleet, reactor: ShellReactor) -> None:
        self._fleet = fleet
        self.reactor = reactor
        self.audit = fleet.audit

    def state(self, name: str) -> ConnState:
        """Connection state of ``name`` (the app fleet's)."""
        return self._fleet.state(name)

    def reason(self, name: str) -> str:
        """Why ``name`` is FAILED (the app fleet's)."""
        return self._fleet.reason(name)

    def subscribe(self, callback: Callable[[StateChanged], None]) -> Callable[[], None]:
        """Follow the app fleet's StateChanged events."""
        return self._fleet.subscribe(callback)

    async def connect(self, names: Iterable[str] | None = None) -> dict[str, ConnState]:
        """Connect the app fleet to ``names``."""
        return await self._fleet.connect(names)

    async def reconnect(self, name: str) -> ConnState:
        """Reconnect ``name`` on the app fleet and drop the reactor's connection to it."""
        state = await self._fleet.reconnect(name)
        await self.reactor.reconnect(name)
        return state

    async def open_shell(self, name: str) -> ReactorShell:
        """Open ``name``'s shell on the reactor."""
        self._fleet.host(name)  # UserError for an unknown host, on this thread
        return await self.reactor.open_shell(name)
