"""Definitions first (server/retrieval/definitions.py).

Invariant: for a query that is one name, the hits are a permutation of the fused hits in which,
among the first ``definition_depth``, every chunk defining the name precedes every other, each
group in its fused order, and hits past the depth keep their places; any other query is left
as fused.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.ingest.runner import run_ingest
from server.retrieval.definitions import asked_name, definitions_first
from server.retrieval.factory import Retrieval
from server.retrieval.results import SearchHit
from server.retrieval.types import SearchRequest


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("computeShippingInsurancePremium", ("computeShippingInsurancePremium",)),
        ("raw_decode()", ("raw_decode",)),
        ("def raw_decode", ("raw_decode",)),
        ("class Holder", ("Holder",)),
        ("Holder.method", ("Holder", "method")),
        ("Vec::new", ("Vec", "new")),
        ("Foo#bar", ("Foo", "bar")),
        ("  padded  ", ("padded",)),
        ("how do I read a file", None),
        ("read file", None),
        ("b.Grow(64)", None),
        ("def", ("def",)),
        ("§ 5", None),
        ("", None),
        ("Holder.", None),
    ],
)
def test_a_query_that_is_one_name_asks_for_it(query: str, name: tuple[str, ...] | None) -> None:
    assert asked_name(query) == name


def _hit(
    i: int,
    symbol: str | None,
    kind: str = "function",
    defines: list[str] | None = None,
    part: int | None = None,
) -> SearchHit:
    metadata: dict[str, object] = {} if symbol is None else {"symbol": symbol, "symbol_kind": kind}
    if defines:
        metadata["defines"] = defines
    if part is not None:
        metadata.update(part=part, parts=max(part, 3))
    return SearchHit(
        id=str(i),
        score=1.0 - i / 100,
        doc_id=f"d{i}",
        source=f"s{i}.py",
        chunk_index=0,
        title="",
        text=f"text {i}",
        citation=f"s{i}.py",
        metadata=metadata,
    )


SYMBOLS = st.one_of(
    st.none(),
    st.sampled_from(["load", "Load", "Cache.load", "Cache.Load", "loader", "Other.load2", "x"]),
)
KINDS = st.sampled_from(["function", "method", "module", "window"])


NAMES = st.sampled_from(["load", "Load", "Cache.load", "Cache.Load", "loader", "Other.load2", "x"])


@settings(max_examples=300, deadline=None)
@given(
    symbols=st.lists(
        st.tuples(SYMBOLS, KINDS, st.lists(NAMES, max_size=3), st.none() | st.integers(1, 3)),
        max_size=30,
    ),
    depth=st.integers(1, 40),
    query=st.sampled_from(["load", "Cache.load", "LOAD", "def load"]),
)
def test_definitions_lead_within_the_depth_each_group_in_its_order(
    symbols: list[tuple[str | None, str, list[str], int | None]], depth: int, query: str
) -> None:
    """A hit defines its symbol (not a module or line window) and each name of its
    ``defines`` (definitions starting in a window of a shared line); a definition's
    continuation windows (part 2 on) follow the others of its group."""
    hits = [_hit(i, s, k, d, p) for i, (s, k, d, p) in enumerate(symbols)]
    name = asked_name(query)
    assert name is not None
    placed, moved = definitions_first(hits, name, depth)
    assert sorted(h.id for h in placed) == sorted(h.id for h in hits)
    assert [h.id for h in placed[depth:]] == [h.id for h in hits[depth:]]

    def group_of(symbol: str) -> int:
        parts = tuple(symbol.replace("::", ".").split("."))[-len(name) :]
        if parts == name:
            return 0
        same = len(parts) == len(name) and all(
            a.lower() == b.lower() for a, b in zip(parts, name, strict=True)
        )
        return 1 if same else 2

    def group(hit: SearchHit) -> int:
        symbol, kind = hit.metadata.get("symbol"), hit.metadata.get("symbol_kind")
        defined = list(hit.metadata.get("defines", []))  # type: ignore[call-overload]
        if symbol is not None and kind not in ("module", "window"):
            defined.append(symbol)
        return min((group_of(s) for s in defined), default=2)

    def place(hit: SearchHit) -> tuple[int, bool]:
        g = group(hit)
        return g, g < 2 and int(hit.metadata.get("part", 1)) > 1  # type: ignore[call-overload]

    head = placed[:depth]
    assert [place(h) for h in head] == sorted(place(h) for h in head)
    for key in {place(h) for h in head}:
        ids = [int(h.id) for h in head if place(h) == key]
        assert ids == sorted(ids)
    assert moved == sum(1 for place, h in enumerate(placed) if int(h.id) > place)


PRICING = """import { roundCents } from './money.js';

/**
 * Premium for shipping insurance on an order of the given value.
 */
function computeShippingInsurancePremium(orderValue, rate) {
  const base = orderValue * rate;
  const floor = 0.5;
  return roundCents(Math.max(base, floor));
}

function computeGiftWrapFee(items) {
  return roundCents(items.length * 1.25);
}

export { computeShippingInsurancePremium, computeGiftWrapFee };
"""
CHECKOUT = """import { computeShippingInsurancePremium } from './pricing.js';

export function checkoutTotal(cart) {
  let total = cart.items.reduce((sum, item) => sum + item.price, 0);
  if (cart.insured) {
    total += computeShippingInsurancePremium(total, 0.0175);
  }
  return total;
}
"""


def test_a_name_finds_its_definition_before_imports_exports_and_calls(
    retrieval: Retrieval, tmp_path: Path
) -> None:
    """A fresh user's trial: the import line and the export list, short chunks holding the
    name, ranked above the function."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "pricing.js").write_text(PRICING)
    (tmp_path / "src" / "checkout.js").write_text(CHECKOUT)
    run_ingest(retrieval.indexer, [tmp_path], domain="code", tenant="acme", progress=False)
    for query in ("computeShippingInsurancePremium", "function computeShippingInsurancePremium"):
        result = retrieval.searcher.search(
            SearchRequest(query, domain="code", tenant="acme", top_k=5)
        )
        top = result.hits[0]
        assert top.metadata["symbol"] == "computeShippingInsurancePremium", query
        assert "function computeShippingInsurancePremium(" in top.text
        placed_first = [n for n in result.notes if n.startswith("definitions of ")]
        assert bool(placed_first) == (top.stages.fused_rank != 1), (placed_first, top.stages)
    asked = retrieval.searcher.search(
        SearchRequest("checkoutTotal", domain="code", tenant="acme", top_k=3)
    )
    assert asked.hits[0].metadata["symbol"] == "checkoutTotal"


def test_a_name_defined_on_a_line_it_shares_finds_its_window(
    retrieval: Retrieval, tmp_path: Path
) -> None:
    """Fresh user: a 40 KB literal and two functions on one line; a search for either name
    ranked slices of the literal (BM25 matched the name's letters in it) above the window
    defining it."""
    blob = base64.b64encode(random.Random(5).randbytes(30_000)).decode()
    line = (
        f'export const CERT = "{blob}"; export function f(a) {{ return a; }} '
        "export function g(b) { return b; }\n"
    )
    (tmp_path / "cert.js").write_text(line)
    run_ingest(retrieval.indexer, [tmp_path], domain="code", tenant="acme", progress=False)
    for name in ("f", "g"):
        result = retrieval.searcher.search(SearchRequest(name, domain="code", tenant="acme"))
        assert f"function {name}(" in result.hits[0].text, (name, result.hits[0].metadata)


def test_the_window_where_a_definition_starts_comes_before_its_continuation(
    retrieval: Retrieval, tmp_path: Path
) -> None:
    """Fresh user: `function f(a) { const k = "<40 KB>"; return a; }`: every window is f's,
    and a slice of the literal ranked above the window holding `function f(a)`."""
    blob = base64.b64encode(random.Random(6).randbytes(30_000)).decode()
    (tmp_path / "key.js").write_text(f'function f(a) {{ const k = "{blob}"; return a; }}\n')
    run_ingest(retrieval.indexer, [tmp_path], domain="code", tenant="acme", progress=False)
    top = retrieval.searcher.search(SearchRequest("f", domain="code", tenant="acme")).hits[0]
    assert top.text.startswith("function f(a)") and top.metadata["part"] == 1
