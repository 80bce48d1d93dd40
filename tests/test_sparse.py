"""Qdrant BM25 encoding per domain: stemming, identifier parts, legal references."""

from server.retrieval.sparse import SparseEncoder, SparseVector, legal_reference_tokens
from server.settings import Bm25Settings, Settings


def _overlap(query: SparseVector, doc: SparseVector) -> int:
    return len(set(query.indices) & set(doc.indices))


def test_prose_stemming_matches_inflections() -> None:
    enc = SparseEncoder(Settings().domains["docs"].bm25)
    doc = enc.encode_document("The runners were running quickly.", avg_len=10)
    assert _overlap(enc.encode_query("run"), doc) == 1
    # stopwords carry no weight
    assert enc.encode_query("the").indices == []


def test_code_tokenizer_splits_identifiers() -> None:
    enc = SparseEncoder(Settings().domains["code"].bm25)
    doc = enc.encode_document("def getUserName(self): return self.user_name", avg_len=10)
    assert _overlap(enc.encode_query("user name"), doc) == 2
    http = enc.encode_document("class HTTPServerError(Exception): pass", avg_len=10)
    assert _overlap(enc.encode_query("server error"), http) == 2
    # the word analyzer of prose does not split camelCase
    prose = SparseEncoder(Bm25Settings())
    assert _overlap(prose.encode_query("user name"), prose.encode_document("getUserName", 10)) == 0


def test_legal_reference_tokens() -> None:
    assert legal_reference_tokens("see Section 12.3(b) and § 5") == [
        "ref12",
        "ref12x3",
        "ref12x3xb",
        "ref5",
    ]
    assert legal_reference_tokens("Art. 14(2)") == ["ref14", "ref14x2"]
    assert legal_reference_tokens("nothing here") == []


def test_legal_references_match_whole_reference() -> None:
    enc = SparseEncoder(Settings().domains["legal"].bm25)
    target = enc.encode_document("12.3(b) The Supplier shall indemnify the Customer.", 20)
    other = enc.encode_document("3.12 Payment is due in 12 days (b) net.", 20)
    query = enc.encode_query("12.3(b)")
    assert _overlap(query, target) > _overlap(query, other)
    section = enc.encode_document("§ 5 Termination. Either party may terminate.", 20)
    assert _overlap(enc.encode_query("§ 5"), section) >= 1


def test_token_count_follows_analyzer() -> None:
    enc = SparseEncoder(Bm25Settings())
    # "the", "on", "a" are stopwords; "mats" stems to "mat"
    assert enc.count_tokens("the cat cat sat on a mat mats") == 5
    assert enc.count_tokens("") == 0
