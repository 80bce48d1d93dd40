"""Query-adaptive fusion: feature detection and routing are a pure function of the text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrieval_eval.adaptive_fusion import AdaptiveFusion, query_features
from server.settings import FusionSettings

KEYWORD = FusionSettings(method="rrf", rrf_k=1, dense_weight=1.0, sparse_weight=5.0)
NATURAL = FusionSettings(method="dbsf")


@pytest.mark.parametrize(
    "text",
    ["GPL-3.0 § 5", "Apache-2.0 section 4(c)", "what does 12.3(b) require", "Art. 14(2) GDPR"],
)
def test_citations(text: str) -> None:
    assert query_features(text).citation


@pytest.mark.parametrize(
    "text",
    [
        "getUserName",
        "where is HttpServer configured",
        "HTTPServer",
        "read_file helper",
        "HTTP_PROXY",
        "Foo.bar",
        "strings.TrimSpace",
        "Vec::new",
        "call len( on it",
        "fmt.Println(strings.Contains(s, sub))",
    ],
)
def test_identifiers(text: str) -> None:
    assert query_features(text).identifier


@pytest.mark.parametrize(
    "text",
    [
        "how do I read a file line by line",
        "Set a task factory that will be used by the loop",
        "URLs and PDFs e.g. scanned ones",
        "which file(s) does it write",
        "What is Debian GNU/Linux?",
    ],
)
def test_prose_has_no_identifier(text: str) -> None:
    assert not query_features(text).identifier


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ('the "termination" clause', True),
        ("the “Contributor” definition", True),
        ("use `git log` here", True),
        ("the 'as is' warranty", True),
        ("don't and can't", False),
        ("the users' guide", False),
    ],
)
def test_quoted_phrases(text: str, quoted: bool) -> None:
    assert query_features(text).quoted is quoted


def test_word_count_and_short_routing() -> None:
    assert query_features("  grant of  patent licence ").words == 4
    by_length = AdaptiveFusion(KEYWORD, NATURAL, short_words=3)
    assert by_length.route("patent licence") == "keyword"
    assert by_length.route("grant of patent licence") == "natural"
    assert AdaptiveFusion(KEYWORD, NATURAL).route("patent licence") == "natural"


def test_triggers_choose_the_features() -> None:
    citations = AdaptiveFusion(KEYWORD, NATURAL, triggers=frozenset({"citation"}))
    assert citations.route("GPL-3.0 § 5") == "keyword"
    assert citations.route('Debian changelog: "debian/changelog"') == "natural"
    assert citations.route("strings.TrimSpace") == "natural"
    assert citations.name == "citation"
    assert AdaptiveFusion(KEYWORD, NATURAL, short_words=3).name == (
        "citation|identifier|quoted or <=3 words"
    )


def test_fusion_for_routes_to_the_two_settings() -> None:
    adaptive = AdaptiveFusion(KEYWORD, NATURAL)
    assert adaptive.fusion_for("GPL-3.0 § 5") == KEYWORD
    assert adaptive.fusion_for('the "as is" clause') == KEYWORD
    assert adaptive.fusion_for("bytes.TrimPrefix(b, p)") == KEYWORD
    assert adaptive.fusion_for("how do I check whether a key is set") == NATURAL


@given(
    st.lists(st.sampled_from(["how", "do", "i", "grant", "patent", "licence", "the"]), min_size=4)
)
def test_plain_lowercase_words_route_natural(words: list[str]) -> None:
    """No digit, capital, punctuation or quote: nothing keyword-like, whatever the order."""
    text = " ".join(words)
    features = query_features(text)
    assert not (features.citation or features.identifier or features.quoted)
    assert AdaptiveFusion(KEYWORD, NATURAL, short_words=3).route(text) == "natural"
