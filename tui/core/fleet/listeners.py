"""Event listeners that replay what happened before the first one subscribed."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")


class ReplayingListeners(Generic[E]):
    """Call every listener with each event; the first subscriber gets the backlog.

    Until someone subscribes, events are kept (the first prompt of a shell is not lost);
    ``size`` measures an event and the backlog stops growing past ``limit``.  A listener
    that raises is logged and never breaks delivery to the others.
    """

    def __init__(self, *, limit: int, size: Callable[[E], int]) -> None:
        self._listeners: list[Callable[[E], None]] = []
        self._backlog: list[E] | None = []
        self._backlog_size = 0
        self._limit = limit
        self._size = size

    def subscribe(self, callback: Callable[[E], None]) -> Callable[[], None]:
        """Add ``callback`` (replaying the backlog to the first one); returns unsubscribe."""
        self._listeners.append(callback)
        backlog, self._backlog = self._backlog, None
        for event in backlog or ():
            self._call(callback, event)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def emit(self, event: E) -> None:
        """Deliver ``event`` to every listener, or keep it until the first subscribes."""
        if self._backlog is not None:
            size = self._size(event)
            self._backlog_size += size
            if size and self._backlog_size > self._limit:
                return  # output past the limit is dropped; state events are always kept
            self._backlog.append(event)
            return
        for callback in list(self._listeners):
            self._call(callback, event)

    @staticmethod
    def _call(callback: Callable[[E], None], event: E) -> None:
        try:
            callback(event)
        except Exception:
            log.exception("shell listener failed")
