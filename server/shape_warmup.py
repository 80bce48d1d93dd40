"""Every query shape a long-running server will meet, run once as soon as its models are up.

OpenVINO's CPU plugin keeps memory for each input shape it has run (its prepared kernels) and
grows its working memory to the largest shape so far; neither is given back. Queries are
padded to a bounded series of shapes (input_shapes.py), but under load the rarer ones (a
long query in a full micro-batch) turn up minutes apart: a 5-minute soak at 16 HTTP clients
grew by 10 MB after its first minute (488 -> 498 MB), in steps as a new shape came. Bounding
OpenVINO's runtime cache (``CPU_RUNTIME_CACHE_CAPACITY``) did not stop it, since most of the
growth is working memory and allocations outside that cache (16 entries: 40 MB grown over
1,000 simulated batches against 46 MB unbounded; capacity 0: 58 MB, and every shape
recompiled), and a coarser series (powers of two) met fewer shapes but made a single query's
embedding 1.2-1.7x slower. Running every query shape once at start-up costs one or two
seconds of one core, once, and puts the memory the server will reach under load into its
first minute, where it stays.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from server.errors import RetrievalError
from server.retrieval.input_shapes import padded_size
from server.runtime import ServerRuntime

if TYPE_CHECKING:  # numpy and the tokenizers stay off the start-up path
    from server.retrieval.embedder import DenseEmbedder

logger = logging.getLogger(__name__)

QUERY_TOKENS = 64
"""The longest query, in tokens (special tokens included), whose shapes are warmed. Search
queries are short (SciFact's longest is under 64); a longer one still pads to the series and
adds at most one shape per size of the series above 64, as before."""

SPECIAL_TOKENS = 2
"""``[CLS]`` and ``[SEP]``: the shortest encoding a text can have."""


def query_shapes(
    max_rows: int, window: int, max_tokens: int = QUERY_TOKENS
) -> list[tuple[int, int]]:
    """Every padded (rows, tokens) shape a batch of at most ``max_rows`` queries of at most
    ``max_tokens`` tokens (within the model ``window``) runs at, largest first (so working
    memory is allocated once at its largest). Raises ValueError for ``max_rows`` below 1."""
    if max_rows < 1:
        raise ValueError(f"a batch of {max_rows} queries cannot be warmed")
    longest = min(max_tokens, window)
    rows = {padded_size(n) for n in range(1, max_rows + 1)}
    tokens = {padded_size(n, window) for n in range(min(SPECIAL_TOKENS, longest), longest + 1)}
    return sorted(((r, t) for r in rows for t in tokens), key=lambda s: (-s[0] * s[1], s))


def warm_query_shapes(embedder: DenseEmbedder, max_rows: int) -> int:
    """Embed one batch at each of :func:`query_shapes` (rows capped at the embedder's batch
    size); returns how many shapes ran (0 on a backend other than OpenVINO, whose memory does
    not grow per shape as measured). Texts are one repeated word-piece, so each batch's
    length is exactly the shape's; the query cache is not touched."""
    if embedder.backend != "openvino":
        return 0
    shapes = query_shapes(min(max_rows, embedder.batch_size), embedder.max_tokens)
    for rows, tokens in shapes:
        text = " ".join(["a"] * (tokens - SPECIAL_TOKENS))
        embedder.embed_documents([text] * rows)
    return len(shapes)


def warm_when_loaded(runtime: ServerRuntime, poll_seconds: float = 0.5) -> threading.Thread:
    """A started daemon thread that waits for ``runtime``'s models to load, then runs
    :func:`warm_query_shapes` with rows up to ``concurrency.max_batch``. It never triggers
    the load itself; queries arriving meanwhile wait at most one warm-up call (the embedder
    runs one call at a time). A failed warm-up is logged, never raised."""

    def wait_then_warm() -> None:
        while not runtime.model_status().loaded:
            time.sleep(poll_seconds)
        started = time.perf_counter()
        try:
            count = warm_query_shapes(runtime.embedder(), runtime.settings.concurrency.max_batch)
        except RetrievalError:  # the model did not load: the loader said why already
            return
        except Exception:  # warming is an optimisation: serving goes on without it
            logger.exception("warming the query shapes failed")
            return
        if count:
            logger.info("%d query shapes warmed in %.1fs", count, time.perf_counter() - started)

    thread = threading.Thread(target=wait_then_warm, name="retrieval-mcp-warm-shapes", daemon=True)
    thread.start()
    return thread
