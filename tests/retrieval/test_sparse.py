"""Qdrant BM25 encoding per domain: stemming, identifier parts, legal references, Unicode
normalisation and CJK text."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.retrieval.sparse import (
    FORMAT_CHARACTERS,
    SparseEncoder,
    SparseVector,
    legal_reference_tokens,
    normalize_text,
    script_bigrams,
    section_reference_tokens,
)
from server.settings import Bm25Settings, Domain, Settings

ENCODERS = {d: SparseEncoder(Settings().domains[d].bm25) for d in Domain}


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


_LATIN_WITH_MARKS = st.text(
    alphabet=st.sampled_from(
        [*"aeiouncAEIOUNC ßøæ", "\u0301", "\u0300", "\u0302", "\u0308", "\u0327", "ﬁ", "ｆ", "①"]
    ),
    min_size=1,
    max_size=30,
)


@pytest.mark.parametrize("domain", list(Domain))
@given(text=_LATIN_WITH_MARKS)
def test_unicode_forms_analyse_alike(domain: Domain, text: str) -> None:
    """Invariant: a text and its NFC, NFD, NFKC and NFKD forms give the same document and
    query vectors, so a word typed in one form matches the same word stored in another."""
    enc = ENCODERS[domain]
    reference = enc.encode_document(text, 10.0)
    query = enc.encode_query(text)
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        variant = unicodedata.normalize(form, text)
        assert enc.encode_document(variant, 10.0) == reference
        assert enc.encode_query(variant) == query


_FORMAT = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]


def test_the_format_character_list_is_unicode_category_cf() -> None:
    """FORMAT_CHARACTERS is written out (compiled once, not built from 1.1M code points at
    import): it must be exactly the running Python's Unicode Cf characters."""
    listed = [chr(c) for c in range(0x110000) if FORMAT_CHARACTERS.fullmatch(chr(c))]
    assert listed == _FORMAT


@pytest.mark.parametrize("domain", list(Domain))
@given(
    words=st.lists(st.text(alphabet="abcdefgh", min_size=2, max_size=9), min_size=1, max_size=4),
    marks=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(_FORMAT)), max_size=4),
)
def test_invisible_format_characters_never_split_a_word(
    domain: Domain, words: list[str], marks: list[tuple[int, str]]
) -> None:
    """Invariant: a soft hyphen, zero-width space, word joiner, byte-order or direction mark
    anywhere in a text changes neither its document nor its query vector (they split
    ``Versicherungs\u00adgesellschaft`` into two terms the word as typed never matched)."""
    enc = ENCODERS[domain]
    text = " ".join(words)
    marked = list(text)
    for position, mark in marks:
        marked.insert(position % (len(marked) + 1), mark)
    variant = "".join(marked)
    assert enc.encode_document(variant, 10.0) == enc.encode_document(text, 10.0)
    assert enc.encode_query(variant) == enc.encode_query(text)


def test_accents_fold_and_compatibility_forms_unify() -> None:
    enc = ENCODERS[Domain.DOCS]
    doc = enc.encode_document("Grünfeld résumé, the ﬁnal ＡＰＩ", 10.0)
    for query in ("Grunfeld", "resume", "final", "api"):
        assert _overlap(enc.encode_query(query), doc) == 1, query


_CJK = st.text(
    alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x4E40)
    | st.sampled_from(list("のはをにがカタナ한국어")),
    min_size=2,
    max_size=24,
)


@pytest.mark.parametrize("domain", list(Domain))
@given(text=_CJK, data=st.data())
def test_any_cjk_substring_matches_its_document(
    domain: Domain, text: str, data: st.DataObject
) -> None:
    """Invariant: a query that is any substring of a document's CJK run (one character or
    more) has every one of its terms in that document, with no word boundaries needed."""
    enc = ENCODERS[domain]
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    doc = enc.encode_document(f"前言。{text}，后记", 10.0)
    query = enc.encode_query(text[start:end])
    assert query.indices
    assert set(query.indices) <= set(doc.indices)


_UNSPACED = st.sampled_from(
    [
        "ระบบค้นหาแบบผสมช่วยให้ค้นหาเอกสารได้รวดเร็วก็ดี",  # Thai, with vowel and tone marks
        "ລະບົບຄົ້ນຫາເອກະສານໄດ້ໄວ",  # Lao
        "ប្រព័ន្ធស្វែងរកឯកសារលឿន",  # Khmer
        "စာရွက်စာတမ်းရှာဖွေရေးစနစ်",  # Myanmar
    ]
).flatmap(lambda run: st.lists(st.sampled_from(run), min_size=1, max_size=30).map("".join))


@pytest.mark.parametrize("domain", list(Domain))
@given(text=_UNSPACED, data=st.data())
def test_any_thai_lao_khmer_or_myanmar_substring_matches_its_document(
    domain: Domain, text: str, data: st.DataObject
) -> None:
    """Field case ``cjk``, its kind beyond CJK: scripts written without spaces between words.
    A word of such a run found nothing (the word tokenizer read the run between marks as one
    term). Invariant: a query that is any substring of a document's run with a letter in it
    has every one of its terms in that document."""
    enc = ENCODERS[domain]
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    doc = enc.encode_document(f"intro: {text}. outro", 10.0)
    query = enc.encode_query(text[start:end])
    if any(unicodedata.category(c)[0] == "L" for c in text[start:end]):
        assert query.indices
    assert set(query.indices) <= set(doc.indices)


def test_thai_words_numbers_and_punctuation() -> None:
    assert script_bigrams("ค้นหา") == " คน นห หา "  # the tone mark dropped, as the tokenizer did
    assert script_bigrams("ปี ๒๕๖๙, ok").split() == ["ป", "๒๕๖๙", ",", "ok"]  # one number
    assert script_bigrams("ก๑๒ข").split() == ["ก", "๑๒", "ข"]
    enc = ENCODERS[Domain.DOCS]
    thai = enc.encode_document("ระบบค้นหาแบบผสมช่วยให้ค้นหาเอกสารได้รวดเร็ว ปี ๒๕๖๙", 20.0)
    other = enc.encode_document("ร้านอาหารเปิดทุกวันตั้งแต่เช้า", 20.0)
    for query in ("เอกสาร", "ค้นหา", "แบบผสม", "๒๕๖๙"):
        terms = enc.encode_query(query).indices
        assert _overlap(enc.encode_query(query), thai) == len(terms), query
        assert _overlap(enc.encode_query(query), other) < len(terms), query  # bigrams: some


def test_cjk_bigrams_shape() -> None:
    assert script_bigrams("混合检索") == " 混合 合检 检索 "
    assert script_bigrams("龙井茶", unigrams=True) == " 龙井 井茶 龙 井 茶 "
    assert script_bigrams("茶 and tea") == "茶 and tea"  # a lone character stays as it is
    enc = ENCODERS[Domain.DOCS]
    travel = enc.encode_document("下个月我们去杭州旅行，计划游览西湖并品尝当地的龙井茶。", 20.0)
    other = enc.encode_document("本系统采用混合检索：稠密向量与关键词匹配相结合。", 20.0)
    for query in ("杭州旅行", "西湖", "龙井茶", "茶"):
        assert _overlap(enc.encode_query(query), travel) == len(enc.encode_query(query).indices)
        assert _overlap(enc.encode_query(query), other) == 0


def test_numbers_stay_searchable() -> None:
    """Error codes, ports, years and versions are keywords (the multilingual tokenizer drops
    digit-only tokens, which is why it is not the default)."""
    for domain in Domain:
        enc = ENCODERS[domain]
        doc = enc.encode_document("HTTP 503 on port 8080 since 2026", 10.0)
        for query in ("503", "8080", "2026"):
            assert _overlap(enc.encode_query(query), doc) == 1, (domain, query)


@given(st.text() | st.text(alphabet=st.characters(max_codepoint=127)))
def test_normalize_text_is_nfkc_without_format_characters(text: str) -> None:
    """Invariant: the ASCII shortcut changes nothing: every text normalises to its NFKC form
    with the format characters removed."""
    expected = FORMAT_CHARACTERS.sub("", unicodedata.normalize("NFKC", text))
    assert normalize_text(text) == expected


@given(
    numbers=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    subs=st.lists(st.sampled_from("abcd"), max_size=2),
    keyword=st.sampled_from(["", "Art. ", "Section ", "§ "]),
    cited_as=st.sampled_from(["Section {}", "clause {}", "§ {}", "Art. {}", "see {}"]),
)
def test_a_chunk_holds_the_terms_of_a_citation_of_it(
    numbers: list[int], subs: list[str], keyword: str, cited_as: str
) -> None:
    """The chunk at ``Art. 4 > 4.2 > (a)`` holds every ``sec`` term a citation of it
    (``Article 4.2(a)``, ``§ 4.2(a)``, ``clause 4.2(a)``) gives its query, and a citation of
    another clause gives a term the chunk lacks."""
    number = ".".join(map(str, numbers))
    top = f"{keyword}{numbers[0]}" if keyword else str(numbers[0])
    labels = [top] + ([number] if len(numbers) > 1 else []) + [f"({s})" for s in subs]
    own = set(section_reference_tokens(" > ".join(labels)))
    cited = number + "".join(f"({s})" for s in subs)
    if (
        len(numbers) == 1
        and not subs
        and not cited_as.startswith(("Section", "clause", "§", "Art"))
    ):
        return  # a bare "4" is no reference in running text
    query = ENCODERS[Domain.LEGAL].analyze(cited_as.format(cited), query=True)
    wanted = {t for t in query.split() if t.startswith("sec") and t[3:4].isdigit()}
    assert wanted and wanted <= own, (labels, cited_as.format(cited), wanted, own)
    sibling = ".".join(map(str, [*numbers[:-1], numbers[-1] + 100]))
    other_cited = cited_as.format(sibling + "".join(f"({s})" for s in subs))
    other = ENCODERS[Domain.LEGAL].analyze(other_cited, query=True)
    assert {t for t in other.split() if t.startswith("sec") and t[3:4].isdigit()} - own
