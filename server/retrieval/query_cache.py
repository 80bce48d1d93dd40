"""The query-vector cache: an LRU map from query text to its vector, its memory taken at once.

Every vector lives in one float32 matrix of ``capacity`` rows allocated and written when the
cache is made, so filling the cache moves no memory: a slot freed by the least recently used
query is rewritten in place. Before, each cached query held its own 1.5 kB array and a
(model, text) key: a server under 16 clients with every query distinct (the soak) took four
to five minutes to fill 2,048 entries, and its resident set grew by the cache (~3.5 MB) all
that time. Now only the texts and the map's entries (about 0.2 kB a query) grow while it fills.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np


class QueryVectorCache:
    """Thread-safe LRU of query vectors, ``capacity`` entries of ``dimension`` float32 each.

    ``capacity`` 0 caches nothing. The matrix (``capacity`` x ``dimension`` x 4 bytes: 3 MB for
    the 2,048 x 384 default, from ``query_cache_size`` and the model) is resident from the start.
    """

    def __init__(self, capacity: int, dimension: int) -> None:
        self.capacity = max(0, capacity)
        # np.full writes every element: the pages are resident now, not on first use
        self._vectors = np.full((self.capacity, dimension), 0.0, dtype=np.float32)
        self._slots: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def nbytes(self) -> int:
        """Bytes of the vector matrix (allocated when the cache was made)."""
        return int(self._vectors.nbytes)

    def get(self, text: str) -> list[float] | None:
        """The cached vector of ``text`` (a fresh list), or None."""
        with self._lock:
            slot = self._slots.get(text)
            if slot is None:
                self.misses += 1
                return None
            self._slots.move_to_end(text)
            self.hits += 1
            return list(self._vectors[slot].tolist())

    def put(self, text: str, vector: Sequence[float] | np.ndarray) -> None:
        """Remember ``vector`` for ``text``, evicting the least recently used entry when full."""
        if self.capacity == 0:
            return
        with self._lock:
            slot = self._slots.get(text)
            if slot is not None:
                self._slots.move_to_end(text)
            elif len(self._slots) < self.capacity:
                slot = len(self._slots)
                self._slots[text] = slot
            else:
                _, slot = self._slots.popitem(last=False)
                self._slots[text] = slot
            self._vectors[slot] = vector

    def clear(self) -> None:
        """Forget every entry (benchmarks use it to measure cold queries); the matrix stays."""
        with self._lock:
            self._slots.clear()
