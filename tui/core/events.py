"""The one listener type of the engine, and where listener failures go.

Every engine part that tells views about changes (the workbench, the fleet's state
changes, the console model, a plan's progress) calls its listeners through
:class:`Listeners`.  A listener that raises never stops delivery to the others, and its
traceback goes to the ``hardway`` logger (the log file of :mod:`tui.core.logfile`, under
the XDG state dir), never to a stderr that a full-screen app has taken over.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("hardway.events")

E = TypeVar("E")

Listener = Callable[[E], None]
"""A callable that receives one event; it runs on the engine's event loop."""


class Listeners(Generic[E]):
    """An ordered set of listeners of one event type.

    Args:
        what: names the source in the log line of a failing listener (``console``).
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._listeners: list[Listener[E]] = []

    def __len__(self) -> int:
        return len(self._listeners)

    def subscribe(self, listener: Listener[E]) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns its unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: E) -> None:
        """Deliver ``event`` to every listener, in subscription order."""
        for listener in list(self._listeners):
            call(listener, event, self._what)


def call(listener: Listener[E], event: E, what: str) -> None:
    """Call ``listener(event)``; an exception is logged with its traceback, not raised."""
    try:
        listener(event)
    except Exception:
        log.exception("a %s listener (%s) failed on %r", what,
                      getattr(listener, "__qualname__", repr(listener)), event)
