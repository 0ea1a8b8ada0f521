"""LazyStrip: a Textual Strip whose per-strip caches are made on first use.

Textual's :class:`~textual.strip.Strip` builds seven small caches in ``__init__``.  A
flooding terminal pane makes a new Strip for every visible row on every frame, and most
of those caches are never touched: building them was a quarter of a frame's cost.  A
:class:`LazyStrip` behaves exactly like a Strip (it is one) but creates each cache the
first time Textual reaches for it.  It relies on Strip's slot names, which
:mod:`tui.widgets.internals` lists; a unit test fails if Textual's Strip gains or loses one.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.cache import FIFOCache
from textual.strip import Strip

from tui.widgets.internals import STRIP_EAGER_SLOTS, STRIP_LAZY_CACHES, init_strip

LAZY_CACHES = STRIP_LAZY_CACHES
EAGER_SLOTS = STRIP_EAGER_SLOTS


class LazyStrip(Strip):
    """A Strip of ``segments`` exactly ``cell_length`` cells long, caches made lazily."""

    __slots__ = ()

    def __init__(self, segments: list[Segment], cell_length: int | None = None) -> None:
        # Deliberately not calling Strip.__init__: that is what builds every cache.
        init_strip(self, segments, cell_length)

    def __getattr__(self, name: str) -> object:
        size = LAZY_CACHES.get(name)
        if size is None:
            raise AttributeError(name)
        cache: FIFOCache[object, object] = FIFOCache(size)
        setattr(self, name, cache)
        return cache
