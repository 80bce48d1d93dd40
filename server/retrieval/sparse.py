"""BM25 sparse vectors from Qdrant's own encoder (qdrant_edge.Bm25), one analyzer per domain.

Documents carry BM25 term-frequency weights computed with their tenant's average length;
Qdrant applies IDF at query time (sparse vector with the IDF modifier), in the embedded and the
remote store alike.

Documents and queries pass through the same analysis (:meth:`SparseEncoder.analyze`): Unicode
NFKC normalisation first (a word typed composed, decomposed, full-width or with a ligature is
one term) with invisible format characters removed (soft hyphens, zero-width spaces and
joiners, byte-order and direction marks), then CJK handling, then the domain's tokenizer.
Qdrant's ``word`` and ``code`` tokenizers see a run of Chinese, Japanese or Korean characters
between punctuation as one token, so such runs are rewritten as overlapping character bigrams,
the dictionary-free CJK analysis of Lucene's CJKAnalyzer: a query matches any document sharing
its two-character sequences, whatever the word boundaries. Documents also keep each character
as a unigram, so a one-character query (``猫``) matches too; queries use unigrams only for a
lone character. Qdrant's ``multilingual`` tokenizer (dictionary segmentation) is available per
domain, but it drops tokens made only of digits (``404``, ``2026``, ``8080``), which keyword
lookups need.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass

from qdrant_edge import Bm25, Bm25Config, DisabledStemmer, StopwordsSet, TokenizerType

from server.settings import Bm25Settings

_TOKENIZERS = {
    "word": TokenizerType.Word,
    "code": TokenizerType.Code,
    "multilingual": TokenizerType.Multilingual,
}
_DOC_MODELS = 16
"""BM25 document encoders kept, one per distinct average length (tenants differ)."""

# Han (incl. extension A and compatibility ideographs), kana, Hangul syllables, bopomofo.
_CJK_RUN = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uac00-\ud7af]{2,}"
)


FORMAT_CHARACTERS = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)
"""Unicode's format characters (general category Cf; this list is Unicode 14's, and a test
checks it against the running Python's): invisible marks that sit inside words."""


def normalize_text(text: str) -> str:
    """Unicode NFKC (compatibility forms and composed/decomposed accents unified), then the
    format characters removed: a soft hyphen, zero-width space, word joiner, byte-order mark or
    direction mark inside a word (``Versicherungs\u00adgesellschaft``, HTML's ``&shy;``) split
    it into two terms that the word as typed never matched.

    ASCII text is returned as it is (every ASCII character is NFKC-stable and none is a
    format character), without the scan for format characters, which takes ~20 ns a
    character: a search folds every hit's text to tell copies apart (duplicates.py)."""
    if text.isascii():  # O(1): CPython records it with the string
        return text
    return FORMAT_CHARACTERS.sub("", unicodedata.normalize("NFKC", text))


# Thai, Lao, Myanmar (and its extensions A and B), Khmer (and its symbols): written without
# spaces between words, like CJK, and with vowel and tone marks around their letters.
_SOUTHEAST_ASIAN_RUN = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff\ua9e0-\ua9ff\uaa60-\uaa7f]+"
)


def _grams(letters: str, unigrams: bool) -> list[str]:
    if len(letters) < 2:
        return [letters]
    grams = [letters[i : i + 2] for i in range(len(letters) - 1)]
    return grams + list(letters) if unigrams else grams


def script_bigrams(text: str, *, unigrams: bool = False) -> str:
    """Runs of scripts written without spaces between words replaced by their overlapping
    character bigrams (and, with ``unigrams``, their single characters too), separated by
    spaces: CJK runs of two or more characters as they are (Lucene's CJKAnalyzer); Thai, Lao,
    Myanmar and Khmer runs by their letters, their vowel and tone marks dropped (the word
    tokenizer splits a word at each mark and drops it, so ``ค้นหา`` was ``ค`` and ``นหา``),
    digits and punctuation in a run splitting it."""

    if text.isascii():  # O(1), as in normalize_text: most queries and chunks have no such run
        return text

    def cjk(match: re.Match[str]) -> str:
        return " " + " ".join(_grams(match.group(0), unigrams)) + " "

    def southeast_asian(match: re.Match[str]) -> str:
        out: list[str] = []
        letters = ""
        for char in match.group(0):
            kind = unicodedata.category(char)[0]
            if kind == "M":
                continue
            if kind == "L":
                letters += char
                continue
            out += _grams(letters, unigrams) if letters else []
            letters = ""
            if kind == "N" and out and out[-1][-1:].isdigit():
                out[-1] += char  # a number (๒๕๖๙) stays one term
            else:
                out.append(char)  # punctuation, a symbol: a boundary
        out += _grams(letters, unigrams) if letters else []
        return " " + " ".join(out) + " "

    return _SOUTHEAST_ASIAN_RUN.sub(southeast_asian, _CJK_RUN.sub(cjk, text))


# "§ 5", "§§ 12.3(b)", "Section 4(d)", "Art. 14(2)", "Clause 7.1", "12.3(b)", "4(d)".
_NUMBER = r"\d+[a-z]?(?:\.\d+[a-z]?)*"
_SUBPARTS = r"(?:\s?\([a-z0-9]{1,5}\))*"
_LEGAL_REFERENCE = re.compile(
    rf"(?:§§?\s*|\b(?:sections?|sec\.|articles?|art\.|clauses?|paragraphs?|para\.)\s+)"
    rf"(?P<num>{_NUMBER}|[ivxlc]+\b)(?P<sub>{_SUBPARTS})"
    rf"|\b(?P<bare>\d+(?:\.\d+)+|\d+(?=\())(?P<bsub>{_SUBPARTS})",
    re.IGNORECASE,
)
_SUBPART = re.compile(r"\(([a-z0-9]{1,5})\)", re.IGNORECASE)


def legal_reference_tokens(text: str) -> list[str]:
    """One token per reference and per ancestor: ``12.3(b)`` -> ref12, ref12x3, ref12x3xb.

    Qdrant's word tokenizer splits ``12.3(b)`` into ``12``, ``3``, ``b``, which matches any
    text with those numbers; these tokens keep the reference whole, so a query naming a clause
    ranks that clause first and its parent section next.
    """
    tokens: list[str] = []
    for match in _LEGAL_REFERENCE.finditer(text):
        number = match.group("num") or match.group("bare")
        subparts = match.group("sub") or match.group("bsub") or ""
        parts = [p for p in number.lower().rstrip(".").split(".") if p]
        parts += [s.lower() for s in _SUBPART.findall(subparts)]
        for depth in range(1, len(parts) + 1):
            tokens.append("ref" + "x".join(parts[:depth]))
    return tokens


_SECTION_NUMBER = re.compile(
    r"^(?:(?:art\.|article|section|sec\.|clause|§§?)\s*)?"
    r"(?P<num>\d+[a-z]?(?:\.\d+[a-z]?)*|[ivxlc]+)\.?$",
    re.IGNORECASE,
)


def section_reference_tokens(section_path: str) -> list[str]:
    """A chunk's own citation as BM25 terms, one per level and ancestor: ``12 > 12.3 > (b)``
    -> sec12, sec12x3, sec12x3xb (``Art. 4`` and ``§ 4`` are 4, as :func:`legal_reference_tokens`
    reads them in a query; a numbered label is the whole number, a parenthesised one extends
    the number above it; other labels, ``Schedule 1`` or ``Part 2`` among them, add none).

    A query's references get the same terms (:meth:`SparseEncoder.analyze`), so a chunk that
    *is* the cited clause outranks a chunk that only mentions it (both hold ``ref12x3``).
    """
    tokens: list[str] = []
    parts: list[str] = []
    for label in (" ".join(label.split()) for label in section_path.split(">")):
        number = _SECTION_NUMBER.match(label)
        sub = _SUBPART.fullmatch(label)
        if number is not None:
            parts = [p for p in number["num"].lower().split(".") if p]
        elif sub is not None and parts:
            parts = [*parts, sub[1].lower()]
        else:
            continue
        # with its ancestors, as a query's references have them (1.1.1 under 1: sec1x1 too)
        tokens.extend("sec" + "x".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return list(dict.fromkeys(tokens))


@dataclass(frozen=True)
class SparseVector:
    """Indices and weights of a sparse vector (store-independent)."""

    indices: list[int]
    values: list[float]


class SparseEncoder:
    """Qdrant BM25 document/query encoder for one domain's analyzer."""

    def __init__(self, settings: Bm25Settings) -> None:
        self.settings = settings
        self._query_model = Bm25(self._config(avg_len=256.0))
        # b=0 and a huge k make each weight equal to the raw term frequency.
        self._counter = Bm25(self._config(avg_len=1.0, k=1e9, b=0.0))
        self._doc_models: OrderedDict[float, Bm25] = OrderedDict()
        self._lock = threading.Lock()

    def _config(self, avg_len: float, k: float | None = None, b: float | None = None) -> Bm25Config:
        s = self.settings
        return Bm25Config(
            k=s.k1 if k is None else k,
            b=s.b if b is None else b,
            avg_len=max(avg_len, 1.0),
            tokenizer=_TOKENIZERS[s.tokenizer],
            language=s.language,
            stemmer=None if s.stemming else DisabledStemmer(),
            stopwords=None if s.stopwords else StopwordsSet(custom=set()),
            ascii_folding=s.ascii_folding,
        )

    def analyze(self, text: str, *, query: bool = False) -> str:
        """The text the tokenizer sees: NFKC-normalised, runs of CJK, Thai, Lao, Myanmar and
        Khmer as bigrams (documents: plus unigrams; :func:`script_bigrams`) unless the tokenizer
        segments them, legal references as whole tokens."""
        text = normalize_text(text)
        if self.settings.tokenizer != "multilingual":
            text = script_bigrams(text, unigrams=not query)
        if self.settings.legal_references:
            extra = legal_reference_tokens(text)
            if query:  # a cited clause is also a chunk's own section (section_reference_tokens)
                extra += ["sec" + token[3:] for token in extra]
            if extra:
                return f"{text}\n{' '.join(extra)}"
        return text

    def _doc_model(self, avg_len: float) -> Bm25:
        key = round(max(avg_len, 1.0), 2)
        with self._lock:
            model = self._doc_models.get(key)
            if model is None:
                model = Bm25(self._config(avg_len=key))
                self._doc_models[key] = model
                while len(self._doc_models) > _DOC_MODELS:
                    self._doc_models.popitem(last=False)
            else:
                self._doc_models.move_to_end(key)
            return model

    def encode_document(self, text: str, avg_len: float) -> SparseVector:
        """BM25 term weights of a document in a corpus (its tenant's) of average length avg_len."""
        vec = self._doc_model(avg_len).embed_document(self.analyze(text))
        return SparseVector(list(vec.indices), list(vec.values))

    def encode_query(self, text: str) -> SparseVector:
        """Query terms, each with weight 1 (Qdrant multiplies in IDF)."""
        vec = self._query_model.embed_query(self.analyze(text, query=True))
        return SparseVector(list(vec.indices), list(vec.values))

    def count_tokens(self, text: str) -> int:
        """Document length in analyzer tokens (after stopwords), as BM25 counts it."""
        vec = self._counter.embed_document(self.analyze(text))
        return round(sum(vec.values))
