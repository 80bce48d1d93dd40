"""Rare-word lookup and definition lookup sets, derived from a tuning corpus by rule
(eval_sets.rare_word_queries, rare_common_queries, definition_queries).

Invariant: every rare-word query is a word found in exactly one document of the corpus
(compared case-folded, as a whole word), that document is its only relevant one, no document
answers two queries, and the choice depends on the corpus alone. A rare-common query is such a
word followed by a word of the same document found in 5-50 % of the documents.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval_eval.beir import BeirDocument
from retrieval_eval.eval_sets import (
    COMMON_SHARE,
    RARE_WORD,
    TUNING_SETS,
    definition_queries,
    rare_common_queries,
    rare_word_queries,
)

COMMON = st.sampled_from(["server", "these", "documentation", "network"])
WORDS = st.sampled_from(
    ["pickle", "Pickle", "loads", "ANP32E", "zeta_fn", "alpha", "betamax", "x1", "gammas", "p53"]
)


def _corpus(texts: list[list[str]]) -> list[BeirDocument]:
    return [BeirDocument(f"d{i}", "", " ".join(words)) for i, words in enumerate(texts)]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.lists(WORDS, max_size=6), max_size=12), count=st.integers(1, 20))
def test_each_query_names_one_document(texts: list[list[str]], count: int) -> None:
    corpus = _corpus(texts)
    queries, qrels = rare_word_queries(corpus, count)
    assert set(queries) == set(qrels) and len(queries) <= count
    answers = [next(iter(judged)) for judged in qrels.values()]
    assert all(len(judged) == 1 for judged in qrels.values())
    assert len(set(answers)) == len(answers)  # one query per document at most
    for qid, word in queries.items():
        assert RARE_WORD.fullmatch(word) and qid == f"rare:{word.casefold()}"
        holding = [
            d.doc_id
            for d in corpus
            if word.casefold() in {w.casefold() for w in RARE_WORD.findall(d.text)}
        ]
        assert holding == list(qrels[qid])
    assert rare_word_queries(list(reversed(corpus)), count) == (queries, qrels)  # order-free


def test_words_in_two_documents_or_too_short_are_never_asked() -> None:
    corpus = _corpus([["pickle", "shared"], ["Shared", "loads"], ["abc", "x1"]])
    queries, qrels = rare_word_queries(corpus)
    assert set(queries.values()) == {"pickle", "loads"}
    assert qrels["rare:pickle"] == {"d0": 1} and qrels["rare:loads"] == {"d1": 1}


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.lists(WORDS | COMMON, max_size=8), max_size=24))
def test_a_rare_common_query_is_a_rare_word_and_a_common_word_of_its_document(
    texts: list[list[str]],
) -> None:
    corpus = _corpus(texts)
    queries, qrels = rare_common_queries(corpus)
    _, rare_qrels = rare_word_queries(corpus, count=len(corpus))
    low, high = max(2.0, COMMON_SHARE[0] * len(corpus)), COMMON_SHARE[1] * len(corpus)
    for qid, query in queries.items():
        word, common = query.split(" ")
        assert qid == f"rare-common:{word.casefold()}"
        assert qrels[qid] == rare_qrels[f"rare:{word.casefold()}"]  # a rare-word query's answer
        [doc_id] = qrels[qid]
        doc = next(d for d in corpus if d.doc_id == doc_id)
        assert common in {w.casefold() for w in RARE_WORD.findall(doc.text)}
        share = sum(common in {w.casefold() for w in RARE_WORD.findall(d.text)} for d in corpus)
        assert low <= share <= high and common != "these"  # a stopword is no topic
    assert rare_common_queries(list(reversed(corpus))) == (queries, qrels)  # order-free


def test_rare_common_example() -> None:
    texts = [["pickle", "server"], ["network", "server"], ["network", "alpha"], ["plain"]]
    queries, qrels = rare_common_queries(_corpus(texts))
    assert queries == {"rare-common:pickle": "pickle server", "rare-common:alpha": "alpha network"}
    assert qrels == {"rare-common:pickle": {"d0": 1}, "rare-common:alpha": {"d2": 1}}


def test_every_corpus_of_a_domain_has_its_derived_sets() -> None:
    corpora = {(s.domain, s.directory) for s in TUNING_SETS if s.derive is None}
    for derive, suffix in (("rare-words", "-rare"), ("rare-common", "-rare-common")):
        derived = [s for s in TUNING_SETS if s.derive == derive]
        assert {(s.domain, s.directory) for s in derived} == corpora
        assert all(re.fullmatch(rf"[a-z-]+{suffix}", s.name) for s in derived)


NAMES = st.sampled_from(["NewReader", "raw_decode", "flush", "Reset", "parse_args", "Walk"])


@settings(max_examples=200, deadline=None)
@given(
    docs=st.lists(
        st.tuples(NAMES, st.sampled_from(["pkg/a.go:", "m.py:Cls.", ""]), st.lists(NAMES)),
        max_size=10,
    ),
    count=st.integers(1, 20),
)
def test_each_definition_query_names_the_one_function_defining_it(
    docs: list[tuple[str, str, list[str]]], count: int
) -> None:
    """A definition query is a name of five characters or more that exactly one document
    defines (its title after ':') and another document's text uses; that document is its only
    relevant one; the choice depends on the corpus alone."""
    corpus = [
        BeirDocument(f"d{i}", f"{prefix}{name}" if prefix else name, " ".join(uses))
        for i, (name, prefix, uses) in enumerate(docs)
    ]
    queries, qrels = definition_queries(corpus, count)
    assert len(queries) <= count and queries.keys() == qrels.keys()
    for query_id, name in queries.items():
        definers = [
            d.doc_id
            for d in corpus
            if ":" in d.title and d.title.rpartition(":")[2].rsplit(".", 1)[-1] == name
        ]
        assert len(name) >= 5 and qrels[query_id] == {definers[0]: 1} and len(definers) == 1
        users = [d for d in corpus if d.doc_id != definers[0] and name in d.text.split()]
        assert users
    assert definition_queries(list(reversed(corpus)), count)[0].keys() == queries.keys()


def test_each_code_corpus_has_its_definition_set() -> None:
    code = {s.directory for s in TUNING_SETS if s.domain.value == "code" and s.derive is None}
    derived = [s for s in TUNING_SETS if s.derive == "definitions"]
    assert {s.directory for s in derived} == code
    assert all(s.name.endswith("-definitions") for s in derived)
