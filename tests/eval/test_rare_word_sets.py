"""Rare-word lookup sets, derived from a tuning corpus by rule (eval_sets.rare_word_queries).

Invariant: every query is a word found in exactly one document of the corpus (compared
case-folded, as a whole word), that document is its only relevant one, no document answers two
queries, and the choice depends on the corpus alone.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval_eval.beir import BeirDocument
from retrieval_eval.eval_sets import RARE_WORD, TUNING_SETS, rare_word_queries

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


def test_every_corpus_of_a_domain_has_its_rare_word_set() -> None:
    derived = {(s.domain, s.directory) for s in TUNING_SETS if s.derive == "rare-words"}
    corpora = {(s.domain, s.directory) for s in TUNING_SETS if s.derive is None}
    assert derived == corpora
    assert all(re.fullmatch(r"[a-z-]+-rare", s.name) for s in TUNING_SETS if s.derive)
