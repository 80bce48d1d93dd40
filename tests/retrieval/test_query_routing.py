"""Query-adaptive fusion: which queries count as keyword-like, and which fusion serves them."""

from __future__ import annotations

import pytest

from server.retrieval.query_routing import fusion_for, query_features
from server.settings import DomainSettings, FusionSettings


@pytest.mark.parametrize(
    ("query", "citation", "identifier", "quoted"),
    [
        ("what does § 5 say about termination", True, False, False),
        ("MPL-2.0 section 3.1", True, False, False),
        ("Apache-2.0 § 4(c)", True, False, False),
        ("how do I read a file line by line", False, False, False),
        ("getUserName returns null", False, True, False),
        ("where is read_file defined", False, True, False),
        ("os.path join", False, True, False),
        ("Vec::new capacity", False, True, False),
        ("call len( on a list", False, True, False),
        ("upload the file(s) to storage", False, False, False),
        ("HTTPServer shutdown", False, True, False),
        ("list all URLs", False, False, False),
        ('the phrase "best efforts" in contracts', False, False, True),
        ("the `--prune` flag", False, False, True),
        ("don't delete the backups", False, False, False),
        ("e.g. a vendor's invoice", False, False, False),
    ],
)
def test_query_features(query: str, citation: bool, identifier: bool, quoted: bool) -> None:
    features = query_features(query)
    assert (features.citation, features.identifier, features.quoted) == (
        citation,
        identifier,
        quoted,
    )
    assert features.words == len(query.split())


def test_fusion_for_routes_keyword_queries_only_when_configured() -> None:
    natural = FusionSettings(method="dbsf")
    keyword = FusionSettings(method="rrf", rrf_k=1, dense_weight=1.0, sparse_weight=10.0)
    plain = DomainSettings(collection="legal", fusion=natural)
    assert fusion_for(plain, "section 12.3(b)") == (natural, "")
    routed = DomainSettings(collection="legal", fusion=natural, keyword_fusion=keyword)
    assert fusion_for(routed, "section 12.3(b)") == (keyword, "citation")
    assert fusion_for(routed, "can the licence be terminated") == (natural, "")
    assert fusion_for(routed, '"sublicense"') == (keyword, "quoted")
    only_citations = routed.model_copy(update={"keyword_triggers": ["citation"]})
    assert fusion_for(only_citations, "getUserName") == (natural, "")
    short = only_citations.model_copy(update={"keyword_max_words": 2})
    assert fusion_for(short, "indemnity cap") == (keyword, "short")
