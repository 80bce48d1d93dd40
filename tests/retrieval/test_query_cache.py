"""The query-vector cache (server/retrieval/query_cache.py).

Invariants: it behaves as an LRU map of capacity entries (checked as a property against a
plain model of one, for any sequence of puts and gets); a hit returns the vector put, as
floats; and its vector memory is taken when it is made, so filling it allocates no vector
memory (the soak's resident set grew while a 2,048-entry cache filled for minutes).
"""

from __future__ import annotations

import tracemalloc
from collections import OrderedDict

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from server.retrieval.embedder import DenseEmbedder
from server.retrieval.query_cache import QueryVectorCache

operations = st.lists(
    st.tuples(st.sampled_from(["put", "get"]), st.integers(min_value=0, max_value=9)),
    max_size=60,
)


@given(operations, st.integers(min_value=0, max_value=5))
def test_it_answers_as_an_lru_map_of_its_capacity(
    steps: list[tuple[str, int]], capacity: int
) -> None:
    cache = QueryVectorCache(capacity, dimension=3)
    model: OrderedDict[str, list[float]] = OrderedDict()
    for number, (operation, key) in enumerate(steps):
        text = f"query {key}"
        if operation == "put":
            vector = [float(key), float(number), 0.5]
            cache.put(text, np.asarray(vector, dtype=np.float32))
            if capacity:
                model[text] = vector
                model.move_to_end(text)
                while len(model) > capacity:
                    model.popitem(last=False)
        else:
            expected = model.get(text)
            if expected is not None:
                model.move_to_end(text)
            assert cache.get(text) == expected
        assert len(cache) == len(model)


def test_filling_the_cache_allocates_no_vector_memory() -> None:
    capacity, dimension = 512, 384
    cache = QueryVectorCache(capacity, dimension)
    assert cache.nbytes == capacity * dimension * 4
    texts = [f"q{i}" for i in range(3 * capacity)]  # made first: not counted below
    vector = np.ones(dimension, dtype=np.float32)
    tracemalloc.start()
    try:
        for text in texts:
            cache.put(text, vector)
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(cache) == capacity
    # The map's entries only: far below one float32 vector (1.5 kB) per entry.
    assert grown < capacity * 200
    assert cache.get(texts[-1]) == vector.tolist() and cache.get(texts[0]) is None


def test_the_embedder_serves_a_repeated_query_from_the_cache(embedder: DenseEmbedder) -> None:
    embedder.cache.clear()
    first = embedder.embed_query("how is the retention period configured")
    hits = embedder.cache.hits
    again = embedder.embed_query("how is the retention period configured")
    assert embedder.cache.hits == hits + 1
    assert again == first
    assert np.allclose(
        embedder.embed_documents(["how is the retention period configured"])[0], first
    )
