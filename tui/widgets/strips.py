"""LazyStrip: a Textual Strip whose per-strip caches are made on first use.

Textual's :class:`~textual.strip.Strip` builds seven small caches in ``__init__``.  A
flooding terminal pane makes a new Strip for every visible row on every frame, and most
of those caches are never touched: building them was a quarter of a frame's cost.  A
:class:`LazyStrip` behaves exactly like a Strip (it is one) but creates each cache the
first time Textual reaches for it.  It relies on Strip's slot names, which
:data:`LAZY_CACHES` lists; a unit test fails if Textual's Strip gains or loses one.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.cache import FIFOCache
from textual.strip import Strip

LAZY_CACHES: dict[str, int] = {
    "_crop_cache": 16,
    "_style_cache": 16,
    "_filter_cache": 4,
    "_line_length_cache": 4,
    "_crop_extend_cache": 4,
    "_offsets_cache": 4,
}
"""Strip's cache slots and their sizes (as ``Strip.__init__`` makes them)."""
EAGER_SLOTS = ("_segments", "_cell_length", "_divide_cache", "_render_cache", "_link_ids",
               "_cell_count")
"""Strip's other slots, set in :meth:`LazyStrip.__init__` (the compositor divides every
strip, so that cache is always used)."""


class LazyStrip(Strip):
    """A Strip of ``segments`` exactly ``cell_length`` cells long, caches made lazily."""

    __slots__ = ()

    def __init__(self, segments: list[Segment], cell_length: int | None = None) -> None:
        # Deliberately not calling Strip.__init__: that is what builds every cache.
        self._segments = segments
        self._cell_length = cell_length
        self._divide_cache = FIFOCache(4)
        self._render_cache = None
        self._link_ids = None
        self._cell_count = None

    def __getattr__(self, name: str) -> object:
        size = LAZY_CACHES.get(name)
        if size is None:
            raise AttributeError(name)
        cache: FIFOCache[object, object] = FIFOCache(size)
        setattr(self, name, cache)
        return cache
