"""Symbol chunks for C, C++, C#, Ruby, PHP, Kotlin, Swift, Scala and shell (real grammar wheels).

The samples in ``code_samples/`` are written for these tests (idiomatic, with nesting, doc
comments and overloads). Invariants checked on them and on broken copies of them:

* a chunk's text is exactly the file's lines ``start_line..end_line`` (nothing rewritten);
* every line with code on it is in a chunk (nothing dropped), and in a well-formed file every
  non-blank line is in exactly one chunk (closing ``}``/``end`` lines join the member above);
* names are qualified by their containers with dots, whatever the language writes.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.code_languages import LANGUAGES, LanguageSpec, header_language
from server.ingest.chunkers.code_treesitter import chunk_treesitter
from server.ingest.chunking import chunk_file
from server.ingest.runner import make_budget, run_ingest
from server.ingest.walker import CODE_LANGUAGES, SourceFile, detect_format
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval
from server.retrieval.types import SearchRequest
from server.settings import Domain, IngestSettings

SAMPLES = Path(__file__).parent / "code_samples"
_CODE = re.compile(r"[^\s{}()\[\];,]")
"""A line with more than brackets on it (code_common drops bracket-only stretches between
symbols; see the module docstring of code_treesitter for why symbols never leave one)."""

Row = tuple[str, str, str, int, int]
"""(symbol, symbol_kind, signature, start_line, end_line) of one chunk."""

EXPECTED: dict[str, tuple[str, list[Row]]] = {
    "ring_buffer.c": (
        "c",
        [
            ("ring_buffer.c", "module", "", 1, 8),
            ("ring_buffer_t", "class", "typedef struct ring_buffer", 10, 15),
            ("ring_status", "class", "enum ring_status", 17, 21),
            (
                "ring_overflow_cb",
                "class",
                "typedef void (*ring_overflow_cb)(ring_buffer_t *ring, uint8_t dropped)",
                23,
                23,
            ),
            ("ring_buffer.c", "module", "", 25, 25),
            ("ring_init", "function", "void ring_init(ring_buffer_t *ring)", 27, 33),
            (
                "ring_count",
                "function",
                "static inline size_t ring_count(const ring_buffer_t *ring)",
                35,
                39,
            ),
            (
                "ring_push",
                "function",
                "enum ring_status ring_push(ring_buffer_t *ring, uint8_t byte)",
                41,
                54,
            ),
            (
                "ring_pop",
                "function",
                "enum ring_status ring_pop(ring_buffer_t *ring, uint8_t *out)",
                56,
                64,
            ),
            (
                "ring_reserve",
                "function",
                "uint8_t * ring_reserve(ring_buffer_t *ring, size_t len)",
                66,
                75,
            ),
            (
                "ring_set_overflow_handler",
                "function",
                "void ring_set_overflow_handler(ring_overflow_cb handler)",
                77,
                80,
            ),
        ],
    ),
    "ring_buffer.h": (
        "c",
        [
            ("ring_buffer.h", "module", "", 1, 14),
            ("RING_MIN", "function", "#define RING_MIN(a, b) ((a) < (b) ? (a) : (b))", 16, 17),
            ("ring_buffer.h", "module", "", 19, 19),
            ("ring_buffer_t", "class", "typedef struct ring_buffer ring_buffer_t", 20, 20),
            (
                "ring_overflow_cb",
                "class",
                "typedef void (*ring_overflow_cb)(ring_buffer_t *ring, uint8_t dropped)",
                22,
                23,
            ),
            ("ring_status", "class", "enum ring_status", 25, 30),
            ("ring_init", "function", "void ring_init(ring_buffer_t *ring)", 32, 35),
            (
                "ring_push",
                "function",
                "enum ring_status ring_push(ring_buffer_t *ring, uint8_t byte)",
                37,
                39,
            ),
            (
                "ring_pop",
                "function",
                "enum ring_status ring_pop(ring_buffer_t *ring, uint8_t *out)",
                41,
                41,
            ),
            (
                "ring_reserve",
                "function",
                "uint8_t *ring_reserve(ring_buffer_t *ring, size_t len)",
                43,
                44,
            ),
            ("ring_buffer.h", "module", "", 46, 52),
        ],
    ),
    "lru_cache.hpp": (
        "cpp",
        [
            ("lru_cache.hpp", "module", "", 1, 8),
            # The namespace's bare `namespace storage::cache {` line joins its first member.
            ("storage.cache.Eviction", "class", "enum class Eviction", 10, 13),
            ("storage.cache.Stats", "class", "struct Stats", 15, 19),
            ("storage.cache.LruCache", "class", "class LruCache", 21, 26),
            (
                "storage.cache.LruCache.LruCache",
                "method",
                "explicit LruCache(std::size_t capacity) : capacity_(capacity)",
                27,
                27,
            ),
            ("storage.cache.LruCache.~LruCache", "method", "~LruCache() = default", 28, 28),
            (
                "storage.cache.LruCache.get",
                "method",
                "std::optional<Value> get(const Key& key)",
                30,
                40,
            ),
            (
                "storage.cache.LruCache.put",
                "method",
                "void put(const Key& key, Value value)",
                42,
                42,
            ),
            (
                "storage.cache.LruCache.put",
                "method",
                "void put(const Key& key, Value value, Eviction reason)",
                43,
                43,
            ),
            ("storage.cache.LruCache.stats", "method", "const Stats& stats() const", 45, 45),
            # The private fields after the last method: a chunk of the class.
            ("storage.cache.LruCache", "class", "class LruCache", 47, 53),
            # Out-of-class definitions `LruCache<Key, Value>::put` -> LruCache.put.
            (
                "storage.cache.LruCache.put",
                "method",
                "void LruCache<Key, Value>::put(const Key& key, Value value)",
                55,
                59,
            ),
            (
                "storage.cache.LruCache.put",
                "method",
                "void LruCache<Key, Value>::put(const Key& key, Value value, Eviction reason)",
                61,
                72,
            ),
        ],
    ),
    "metrics.cpp": (
        "cpp",
        [
            ("metrics.cpp", "module", "", 1, 6),
            # An anonymous namespace adds nothing to the names inside it.
            ("telemetry.escape", "function", "std::string escape(const std::string& raw)", 8, 20),
            ("telemetry.Counter", "class", "class Counter", 22, 24),
            ("telemetry.Counter.Counter", "method", "Counter() = default", 25, 25),
            (
                "telemetry.Counter.Counter",
                "method",
                "explicit Counter(double start) : value_(start)",
                26,
                26,
            ),
            ("telemetry.Counter.inc", "method", "void inc()", 28, 28),
            ("telemetry.Counter.inc", "method", "void inc(double by)", 29, 29),
            ("telemetry.Counter.value", "method", "double value() const", 31, 31),
            ("telemetry.Counter", "class", "class Counter", 33, 35),
            ("telemetry.Counter.inc", "method", "void Counter::inc(double by)", 37, 42),
            (
                "telemetry.Registry.render",
                "method",
                "std::string Registry::render() const",
                44,
                51,
            ),
            (
                "telemetry.Registry.Registry",
                "method",
                "Registry::Registry(std::string job) : job_(std::move(job))",
                53,
                53,
            ),
            ("telemetry.Registry.~Registry", "method", "Registry::~Registry()", 55, 57),
            (
                "telemetry.operator==",
                "function",
                "bool operator==(const Counter& a, const Counter& b)",
                59,
                63,
            ),
            ("main", "function", "int main()", 65, 68),
        ],
    ),
    "OrderService.cs": (
        "csharp",
        [
            ("OrderService.cs", "module", "", 1, 4),
            ("Shop.Orders.OrderStatus", "class", "public enum OrderStatus", 6, 14),
            ("Shop.Orders.IPricingRule", "class", "public interface IPricingRule", 16, 18),
            (
                "Shop.Orders.IPricingRule.Apply",
                "method",
                "decimal Apply(decimal subtotal, int quantity)",
                19,
                20,
            ),
            (
                "Shop.Orders.OrderLine",
                "class",
                "public record OrderLine(string Sku, int Quantity, decimal UnitPrice)",
                22,
                22,
            ),
            # Attributes stay in the chunk but not in the signature.
            ("Shop.Orders.OrderService", "class", "public sealed class OrderService", 24, 30),
            (
                "Shop.Orders.OrderService.OrderService",
                "method",
                "public OrderService(IEnumerable<IPricingRule> rules)",
                32,
                35,
            ),
            # A property between two methods: a chunk of the class.
            ("Shop.Orders.OrderService", "class", "public sealed class OrderService", 37, 37),
            (
                "Shop.Orders.OrderService.Price",
                "method",
                "public decimal Price(OrderLine line)",
                39,
                48,
            ),
            (
                "Shop.Orders.OrderService.Price",
                "method",
                "public decimal Price(IEnumerable<OrderLine> lines)",
                50,
                59,
            ),
            (
                "Shop.Orders.OrderService.Place",
                "method",
                "public void Place(OrderLine line)",
                61,
                62,
            ),
            (
                "Shop.Orders.OrderService.PlaceAsync",
                "method",
                "public async Task PlaceAsync(OrderLine line)",
                64,
                68,
            ),
            (
                "Shop.Orders.OrderService.BulkDiscount",
                "class",
                "private sealed class BulkDiscount : IPricingRule",
                70,
                72,
            ),
            (
                "Shop.Orders.OrderService.BulkDiscount.Apply",
                "method",
                "public decimal Apply(decimal subtotal, int quantity)",
                73,
                76,
            ),
            ("Shop.Orders.Money", "class", "public struct Money", 78, 81),
            ("Shop.Orders.Money.ToString", "method", "public override string ToString()", 83, 85),
        ],
    ),
    "rate_limiter.rb": (
        "ruby",
        [
            ("rate_limiter.rb", "module", "", 1, 3),
            ("Throttle", "class", "module Throttle", 5, 6),
            (
                "Throttle.LimitExceeded",
                "class",
                "class LimitExceeded < StandardError; end",
                7,
                8,
            ),
            ("Throttle", "class", "module Throttle", 10, 10),
            ("Throttle.TokenBucket", "class", "class TokenBucket", 12, 16),
            (
                "Throttle.TokenBucket.initialize",
                "method",
                "def initialize(capacity, rate = DEFAULT_RATE)",
                18,
                24,
            ),
            ("Throttle.TokenBucket.take!", "method", "def take!(cost = 1)", 26, 34),
            ("Throttle.TokenBucket.take", "method", "def take(cost = 1)", 36, 41),
            (
                "Throttle.TokenBucket.from_config",
                "method",
                "def self.from_config(config)",
                43,
                46,
            ),
            # `private` joins the method below it.
            ("Throttle.TokenBucket.refill", "method", "def refill", 48, 54),
            ("Throttle.TokenBucket.clock", "method", "def clock", 56, 57),
            # `class << self` methods are the module's own.
            ("Throttle.bucket_for", "method", "def bucket_for(key)", 59, 63),
            ("Throttle.buckets", "method", "def buckets", 65, 71),
            ("Throttle.Middleware", "class", "class Throttle::Middleware", 73, 73),
            ("Throttle.Middleware.initialize", "method", "def initialize(app)", 74, 76),
            ("Throttle.Middleware.call", "method", "def call(env)", 78, 84),
        ],
    ),
    "InvoiceRepository.php": (
        "php",
        [
            ("InvoiceRepository.php", "module", "", 1, 8),
            # `namespace App\Billing;` qualifies everything after it.
            ("App.Billing.Billable", "class", "interface Billable", 10, 14),
            (
                "App.Billing.Billable.amountInCents",
                "method",
                "public function amountInCents(): int",
                15,
                16,
            ),
            ("App.Billing.Timestamps", "class", "trait Timestamps", 18, 20),
            ("App.Billing.Timestamps.touch", "method", "public function touch(): void", 22, 26),
            ("App.Billing.Currency", "class", "enum Currency: string", 28, 31),
            (
                "App.Billing.Currency.symbol",
                "method",
                "public function symbol(): string",
                33,
                40,
            ),
            ("App.Billing.InvoiceRepository", "class", "final class InvoiceRepository", 42, 50),
            (
                "App.Billing.InvoiceRepository.__construct",
                "method",
                "public function __construct(private PDO $db)",
                52,
                54,
            ),
            (
                "App.Billing.InvoiceRepository.find",
                "method",
                "public function find(string $number): ?array",
                56,
                65,
            ),
            (
                "App.Billing.InvoiceRepository.fromDsn",
                "method",
                "public static function fromDsn(string $dsn): self",
                67,
                74,
            ),
            (
                "App.Billing.format_cents",
                "function",
                "function format_cents(int $cents, Currency $currency = Currency::Euro): string",
                76,
                79,
            ),
        ],
    ),
    "SyncScheduler.kt": (
        "kotlin",
        [
            ("SyncScheduler.kt", "module", "", 1, 4),
            ("Frequency", "class", "enum class Frequency(val period: Duration)", 6, 9),
            ("Frequency.next", "method", "fun next(from: Long): Long", 11, 12),
            ("Job", "class", "interface Job", 14, 16),
            ("Job.run", "method", "suspend fun run(): Result<Unit>", 18, 19),
            (
                "JobRecord",
                "class",
                "data class JobRecord(val name: String, val lastRun: Long?)",
                21,
                21,
            ),
            (
                "SyncScheduler",
                "class",
                "class SyncScheduler(private val clock: () -> Long)",
                23,
                31,
            ),
            (
                "SyncScheduler.constructor",
                "method",
                "constructor() : this(System::currentTimeMillis)",
                33,
                33,
            ),
            (
                "SyncScheduler.register",
                "method",
                "fun register(job: Job, frequency: Frequency)",
                35,
                38,
            ),
            ("SyncScheduler.register", "method", "fun register(jobs: Collection<Job>)", 40, 40),
            # The annotation is in the chunk, not in the signature.
            (
                "SyncScheduler.runDue",
                "method",
                "suspend fun runDue(records: Map<String, JobRecord>): List<String>",
                42,
                54,
            ),
            # The companion object's constant; its function is the class's own.
            (
                "SyncScheduler",
                "class",
                "class SyncScheduler(private val clock: () -> Long)",
                56,
                57,
            ),
            (
                "SyncScheduler.withSystemClock",
                "method",
                "fun withSystemClock(): SyncScheduler",
                59,
                61,
            ),
            ("Backoff", "class", "object Backoff", 63, 63),
            (
                "Backoff.retry",
                "method",
                "suspend fun retry(times: Int, block: suspend () -> Unit)",
                64,
                70,
            ),
            # An extension function is named after its receiver type.
            (
                "Duration.toMinutesText",
                "method",
                "fun Duration.toMinutesText(): String",
                72,
                72,
            ),
        ],
    ),
    "ImageCache.swift": (
        "swift",
        [
            ("ImageCache.swift", "module", "", 1, 2),
            ("ImageSource", "class", "enum ImageSource: String", 4, 9),
            ("ImageLoader", "class", "protocol ImageLoader", 11, 12),
            (
                "ImageLoader.load",
                "method",
                "func load(_ url: URL) async throws -> Data",
                13,
                14,
            ),
            ("ImageCache", "class", "final class ImageCache", 16, 21),
            (
                "ImageCache.init",
                "method",
                "init(directory: URL = FileManager.default.temporaryDirectory)",
                23,
                25,
            ),
            ("ImageCache.init", "method", "convenience init(name: String)", 27, 29),
            (
                "ImageCache.image",
                "method",
                "func image(for url: URL) -> (UIImage, ImageSource)?",
                31,
                42,
            ),
            (
                "ImageCache.image",
                "method",
                "func image(for url: URL, loader: ImageLoader) async throws -> UIImage",
                44,
                51,
            ),
            ("ImageCache.path", "method", "private func path(for url: URL) -> URL", 53, 55),
            ("ImageCache.deinit", "method", "deinit", 57, 60),
            ("CacheKey", "class", "struct CacheKey: Hashable", 62, 64),
            ("CacheKey.main", "method", "static func main(_ url: URL) -> CacheKey", 66, 70),
            ("ImageCache", "class", "extension ImageCache", 72, 72),
            ("ImageCache.purge", "method", "func purge()", 73, 77),
            (
                "prefetch",
                "function",
                "func prefetch(_ urls: [URL], into cache: ImageCache)",
                79,
                84,
            ),
        ],
    ),
    "WordCount.scala": (
        "scala",
        [
            ("WordCount.scala", "module", "", 1, 4),
            ("Token", "class", "final case class Token(text: String, offset: Int)", 6, 7),
            ("Tokenizer", "class", "trait Tokenizer", 9, 10),
            ("Tokenizer.tokenize", "method", "def tokenize(text: String): Seq[Token]", 11, 11),
            (
                "Tokenizer.tokenize",
                "method",
                "def tokenize(lines: Iterator[String]): Iterator[Token]",
                13,
                15,
            ),
            ("Order", "class", "sealed trait Order", 17, 17),
            ("Order", "class", "object Order", 18, 18),
            ("Order.ByCount", "class", "case object ByCount extends Order", 19, 19),
            ("Order.Alphabetical", "class", "case object Alphabetical extends Order", 20, 21),
            (
                "WordCount",
                "class",
                "class WordCount(stopWords: Set[String]) extends Tokenizer",
                23,
                27,
            ),
            ("WordCount.this", "method", "def this()", 29, 29),
            # Scala's indented body would reach into the next doc comment: cut at its last token.
            (
                "WordCount.tokenize",
                "method",
                "override def tokenize(text: String): Seq[Token]",
                31,
                32,
            ),
            ("WordCount.add", "method", "def add(text: String): this.type", 34, 40),
            (
                "WordCount.top",
                "method",
                "def top(n: Int, order: Order = Order.ByCount): List[(String, Int)]",
                42,
                46,
            ),
            ("WordCount", "class", "object WordCount", 48, 49),
            ("WordCount.fromFile", "method", "def fromFile(path: String): WordCount", 51, 57),
            ("WordCount.main", "method", "def main(args: Array[String]): Unit", 59, 61),
            ("Level", "class", "enum Level", 63, 64),
            ("Level.label", "method", "def label: String", 66, 66),
            ("String", "class", "extension (s: String)", 68, 68),
            ("String.wordCount", "method", "def wordCount: Int", 69, 69),
        ],
    ),
    "deploy.sh": (
        "shell",
        [
            ("deploy.sh", "module", "", 1, 6),
            ("log", "function", "log()", 8, 11),
            ("die", "function", "die()", 13, 13),
            ("build_release", "function", "function build_release", 15, 22),
            ("upload", "function", "function upload()", 24, 27),
            ("activate", "function", "activate()", 29, 36),
            ("rollback", "function", "rollback()", 38, 43),
            ("usage", "function", "usage()", 45, 50),
            ("main", "function", "main()", 52, 66),
            ("deploy.sh", "module", "", 68, 68),
        ],
    ),
}


@pytest.fixture(scope="module")
def roomy(embedder: DenseEmbedder) -> TokenBudget:
    """A budget no sample symbol exceeds: one chunk per symbol."""
    return TokenBudget(embedder.count_tokens, 4096)


@pytest.fixture(scope="module")
def budget(embedder: DenseEmbedder) -> TokenBudget:
    """The default ingest budget (256 tokens)."""
    return make_budget(embedder, IngestSettings())


def _source_file(name: str) -> SourceFile:
    path = SAMPLES / name
    detected = detect_format(path, Domain.CODE)
    assert detected is not None, name
    return SourceFile(path, SAMPLES, name, detected[0], detected[1])


def _chunk(
    name: str, budget: TokenBudget, text: str | None = None, overlap: int = 0
) -> list[Piece]:
    """Pieces of a sample through the real entry point (type detection, then dispatch)."""
    data = (SAMPLES / name).read_bytes() if text is None else text.encode()
    return chunk_file(_source_file(name), data, Domain.CODE, budget, overlap_lines=overlap)


def _row(piece: Piece) -> Row:
    meta = piece.metadata
    return (
        meta["symbol"],
        meta["symbol_kind"],
        meta["signature"],
        meta["start_line"],
        meta["end_line"],
    )


def _assert_real_lines_and_coverage(text: str, pieces: list[Piece], *, exact: bool) -> None:
    """Chunk text is the file's own lines; every line with code is in a chunk.

    ``exact``: every non-blank line (braces and ``end`` too) is in exactly one chunk.
    """
    lines = text.split("\n")
    seen = [0] * len(lines)
    for piece in pieces:
        start, end = piece.metadata["start_line"], piece.metadata["end_line"]
        assert piece.text == "\n".join(lines[start - 1 : end]), (start, end)
        for i in range(start - 1, end):
            seen[i] += 1
    missing = [i + 1 for i, line in enumerate(lines) if _CODE.search(line) and not seen[i]]
    assert not missing, f"lines in no chunk: {missing}"
    if exact:
        uncovered = [i + 1 for i, line in enumerate(lines) if line.strip() and seen[i] != 1]
        assert not uncovered, f"lines not in exactly one chunk: {uncovered}"


def test_samples_cover_every_language() -> None:
    languages = {language for language, _ in EXPECTED.values()}
    assert languages == {"c", "cpp", "csharp", "ruby", "php", "kotlin", "swift", "scala", "shell"}
    assert languages <= set(LANGUAGES)
    assert sorted(p.name for p in SAMPLES.iterdir()) == sorted(EXPECTED)
    for path in SAMPLES.iterdir():
        assert 40 <= len(path.read_text().splitlines()) <= 120, path.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_symbol_names_kinds_signatures_and_lines(name: str, roomy: TokenBudget) -> None:
    language, expected = EXPECTED[name]
    pieces = _chunk(name, roomy)
    assert [_row(p) for p in pieces] == expected
    assert {p.metadata["language"] for p in pieces} == {language}
    for piece in pieces:
        if piece.metadata["symbol_kind"] != "module":
            assert piece.title == f"{name}: {piece.metadata['signature']}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chunks_are_real_lines_covering_the_file_once(name: str, roomy: TokenBudget) -> None:
    text = (SAMPLES / name).read_text()
    _assert_real_lines_and_coverage(text, _chunk(name, roomy), exact=True)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_default_budget_windows_keep_symbols_and_lines(
    name: str, roomy: TokenBudget, budget: TokenBudget
) -> None:
    text = (SAMPLES / name).read_text()
    whole = {(_row(p)[0], _row(p)[3]): _row(p) for p in _chunk(name, roomy)}
    windows = _chunk(name, budget, overlap=2)
    _assert_real_lines_and_coverage(text, windows, exact=False)
    for piece in windows:
        assert budget.embedded_tokens(piece.title, piece.text) <= budget.max_tokens
        symbol, kind, signature, start, end = _row(piece)
        owner = [r for (s, _), r in whole.items() if s == symbol and r[3] <= start <= r[4]]
        assert owner, (symbol, start)
        assert (owner[0][1], owner[0][2]) == (kind, signature)
        assert end <= owner[0][4]


def _callable_to_break(name: str) -> Row:
    """A callable of four lines or more in the middle of a sample."""
    rows = [r for r in EXPECTED[name][1] if r[1] in ("function", "method") and r[4] - r[3] >= 3]
    return rows[len(rows) // 2]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_syntax_error_file_still_chunks(name: str, roomy: TokenBudget) -> None:
    """A half-typed line in one body: every line is still chunked, symbols still found."""
    target = _callable_to_break(name)
    lines = (SAMPLES / name).read_text().split("\n")
    at = target[4] - 1  # above its last line: inside its body
    broken = "\n".join([*lines[:at], "    value = compute(1 +", *lines[at:]])
    pieces = _chunk(name, roomy, broken)
    _assert_real_lines_and_coverage(broken, pieces, exact=False)
    kinds = {p.metadata["symbol_kind"] for p in pieces}
    assert kinds & {"function", "method", "class"}, kinds
    # The parser's recovery decides how far an error reaches; within one body, the symbols
    # that end above it keep their exact chunks in these grammars.
    if name in {"ImageCache.swift", "InvoiceRepository.php", "WordCount.scala"}:
        before = [r for r in EXPECTED[name][1] if r[4] < target[3] and r[1] != "module"]
        assert before and set(before) <= {_row(p) for p in pieces}


_JUNK = ["    value = compute(1 +", "}", "end", '"', "/*", "{", "class", "def", "(", "#if X", "'"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_edited_files_never_lose_lines(data: st.DataObject, roomy: TokenBudget) -> None:
    """Property: whatever half-finished edit a file is in, no code line leaves the chunks."""
    name = data.draw(st.sampled_from(sorted(EXPECTED)))
    lines = (SAMPLES / name).read_text().split("\n")
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(lines) - 1))
        edit = data.draw(st.sampled_from(["insert", "delete", "truncate"]))
        if edit == "insert":
            lines.insert(at, data.draw(st.sampled_from(_JUNK)))
        elif edit == "delete":
            del lines[at]
        else:
            lines[at] = lines[at][: data.draw(st.integers(0, len(lines[at])))]
    text = "\n".join(lines)
    _assert_real_lines_and_coverage(text, _chunk(name, roomy, text), exact=False)


def test_header_with_cpp_lines_is_parsed_and_labelled_as_cpp(
    tmp_path: Path, roomy: TokenBudget
) -> None:
    source = (
        "#pragma once\n"
        "#include <string>\n"
        "\n"
        "namespace geo {\n"
        "\n"
        "/// A point on the plane.\n"
        "class Point {\n"
        "public:\n"
        "    double norm() const;\n"
        "};\n"
        "\n"
        "}  // namespace geo\n"
    )
    assert header_language(source) == "cpp"
    assert header_language((SAMPLES / "ring_buffer.h").read_text()) == "c"
    path = tmp_path / "point.h"
    path.write_text(source)
    file = SourceFile(path, tmp_path, "point.h", "code", "c")
    assert detect_format(path, Domain.CODE) == ("code", "c")
    pieces = chunk_file(file, source.encode(), Domain.CODE, roomy, overlap_lines=0)
    assert [_row(p) for p in pieces] == [
        ("point.h", "module", "", 1, 2),
        ("geo.Point", "class", "class Point", 4, 8),
        ("geo.Point.norm", "method", "double norm() const", 9, 12),
    ]
    assert {p.metadata["language"] for p in pieces} == {"cpp"}
    _assert_real_lines_and_coverage(source, pieces, exact=True)


@pytest.mark.parametrize(
    ("suffix", "language"),
    [
        (".c", "c"),
        (".h", "c"),
        (".cc", "cpp"),
        (".cxx", "cpp"),
        (".hh", "cpp"),
        (".hxx", "cpp"),
        (".cs", "csharp"),
        (".rb", "ruby"),
        (".rake", "ruby"),
        (".php", "php"),
        (".kt", "kotlin"),
        (".kts", "kotlin"),
        (".swift", "swift"),
        (".scala", "scala"),
        (".sc", "scala"),
        (".sh", "shell"),
        (".bash", "shell"),
        (".zsh", "shell"),
    ],
)
def test_extensions_map_to_parsed_languages(suffix: str, language: str) -> None:
    assert detect_format(Path(f"src/x{suffix}"), Domain.CODE) == ("code", language)
    assert CODE_LANGUAGES[suffix] in LANGUAGES


def test_language_without_its_grammar_falls_back_to_line_windows(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, roomy: TokenBudget
) -> None:
    """A spec whose grammar wheel is not installed: line windows, a warning, all lines kept."""
    missing = LanguageSpec("tree_sitter_cobol_not_installed", "language", {}, frozenset())
    monkeypatch.setitem(LANGUAGES, "cobol", missing)
    text = (SAMPLES / "deploy.sh").read_text()
    with caplog.at_level("WARNING"):
        pieces = chunk_treesitter(
            text, language="cobol", rel_path="deploy.cob", budget=roomy, overlap_lines=0
        )
    assert [p.metadata["symbol_kind"] for p in pieces] == ["window"]
    assert pieces[0].metadata["language"] == "cobol"
    assert "no cobol grammar" in caplog.text
    _assert_real_lines_and_coverage(text, pieces, exact=True)


def test_nesting_deeper_than_the_stack_falls_back_to_line_windows(roomy: TokenBudget) -> None:
    source = "module A\n" * 1500 + "  def x; end\n" + "end\n" * 1500
    pieces = chunk_treesitter(
        source, language="ruby", rel_path="deep.rb", budget=roomy, overlap_lines=0
    )
    assert {p.metadata["symbol_kind"] for p in pieces} == {"window"}
    _assert_real_lines_and_coverage(source, pieces, exact=False)


# -- end to end ------------------------------------------------------------------------------

SEARCHES = {
    "c": ("ring_reserve", "ring_reserve"),
    "cpp": ("escape", "telemetry.escape"),
    "csharp": ("BulkDiscount", "Shop.Orders.OrderService.BulkDiscount"),
    "ruby": ("from_config", "Throttle.TokenBucket.from_config"),
    "php": ("format_cents", "App.Billing.format_cents"),
    "kotlin": ("runDue", "SyncScheduler.runDue"),
    "swift": ("prefetch", "prefetch"),
    "scala": ("fromFile", "WordCount.fromFile"),
    "shell": ("build_release", "build_release"),
}
"""language -> (query: a name defined once in that language's sample, the symbol it names)."""


@pytest.mark.slow
def test_ingest_and_search_a_symbol_in_every_language(tmp_path: Path, retrieval: Retrieval) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLES, repo / "src")
    report = run_ingest(retrieval.indexer, [repo], domain="code", tenant="acme", progress=False)
    assert not report.skipped
    assert len(report.added) == len(EXPECTED)
    for language, (query, symbol) in SEARCHES.items():
        # Over every language at once: the name's own chunk comes first.
        hits = retrieval.searcher.search(
            SearchRequest(query, domain="code", tenant="acme", top_k=3, mode="hybrid")
        ).hits
        assert hits, language
        top = hits[0].metadata
        assert (top["symbol"], top["language"]) == (symbol, language), (query, top)
        path = repo / "src" / str(top["rel_path"]).removeprefix("src/")
        lines = path.read_text().split("\n")
        assert hits[0].text == "\n".join(lines[top["start_line"] - 1 : top["end_line"]])


_RUST = """/// A point.
#[derive(Debug, Clone)]
pub struct P { x: i32 }

impl P {
    /// New point.
    #[inline]
    pub fn new(x: i32) -> Self { P { x } }
}

mod util {
    pub fn helper() -> i32 { 1 }
}
"""
_TYPESCRIPT = """/** A service. */
@Injectable()
export class Svc {
  @Input() name = "";

  /** Runs. */
  @HostListener("click")
  run(): void {}
}
"""
_JAVA = """/** Colours. */
public enum Colour {
    RED, GREEN;

    /** Hex code. */
    @Override
    public String toString() { return "x"; }
}
"""


_TS_NAMESPACES = """namespace Legacy.Billing {
  export function computeOldTotal(items: number[]): number {
    return items.reduce((a, b) => a + b, 0);
  }

  export class Invoice {
    render(): string { return "invoice"; }
  }
}

export namespace Shapes {
  export function areaOfCircle(r: number): number { return Math.PI * r * r; }

  export const UNIT = 1;
}

declare module "legacy-lib" {
  export function parseLegacyDate(s: string): Date;
}

declare function parseIso(s: string): Date;

export declare abstract class BaseRunner {
    run(): void;
}
export declare function exportedDeclared(x: number): number;
"""


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        (
            "rust",
            _RUST,
            [
                ("P", "class", "pub struct P", 1, 3),  # `///` and `#[derive]` above it
                ("P", "class", "impl P", 5, 5),
                ("P.new", "method", "pub fn new(x: i32) -> Self", 6, 9),
                ("util.helper", "function", "pub fn helper() -> i32", 11, 13),  # a mod's fn
            ],
        ),
        (
            "rust",
            "pub struct RingBuffer<T> {\n    items: Vec<T>,\n}\n\n"
            "impl<T: Clone> RingBuffer<T> {\n    pub fn with_capacity(n: usize) -> Self {\n"
            "        todo!()\n    }\n}\n\n"
            "impl<T> Iterator for RingBuffer<T> {\n    type Item = T;\n"
            "    fn next(&mut self) -> Option<T> {\n        None\n    }\n}\n",
            [  # generic arguments are no part of a name: the struct's methods are its own
                ("RingBuffer", "class", "pub struct RingBuffer<T>", 1, 3),
                ("RingBuffer", "class", "impl<T: Clone> RingBuffer<T>", 5, 5),
                (
                    "RingBuffer.with_capacity",
                    "method",
                    "pub fn with_capacity(n: usize) -> Self",
                    6,
                    9,
                ),
                ("RingBuffer (Iterator)", "class", "impl<T> Iterator for RingBuffer<T>", 11, 12),
                ("RingBuffer (Iterator).next", "method", "fn next(&mut self) -> Option<T>", 13, 16),
            ],
        ),
        (
            "typescript",
            _TYPESCRIPT,
            [
                ("Svc", "class", "class Svc", 1, 4),
                ("Svc.run", "method", "run(): void", 6, 9),  # its decorator and doc comment
            ],
        ),
        (  # fresh user: namespaces and ambient modules had no symbols (one chunk, no name)
            "typescript",
            _TS_NAMESPACES,
            [
                (
                    "Legacy.Billing.computeOldTotal",
                    "function",
                    "function computeOldTotal(items: number[]): number",
                    1,
                    4,
                ),
                ("Legacy.Billing.Invoice", "class", "class Invoice", 6, 6),
                ("Legacy.Billing.Invoice.render", "method", "render(): string", 7, 9),
                (
                    "Shapes.areaOfCircle",
                    "function",
                    "function areaOfCircle(r: number): number",
                    11,
                    12,
                ),
                ("Shapes", "class", "namespace Shapes", 14, 15),  # its own code
                (
                    "legacy-lib.parseLegacyDate",
                    "function",
                    "function parseLegacyDate(s: string): Date",
                    17,
                    19,
                ),
                ("parseIso", "function", "function parseIso(s: string): Date", 21, 21),
                # `export declare`, as tsc writes every .d.ts (fresh user's second trial)
                ("BaseRunner", "class", "abstract class BaseRunner", 23, 23),
                ("BaseRunner.run", "method", "run(): void", 24, 25),
                (
                    "exportedDeclared",
                    "function",
                    "function exportedDeclared(x: number): number",
                    26,
                    26,
                ),
            ],
        ),
        (
            "java",
            _JAVA,
            [
                ("Colour", "class", "public enum Colour", 1, 3),
                ("Colour.toString", "method", "public String toString()", 5, 8),
            ],
        ),
    ],
)
def test_earlier_grammars_keep_attributes_decorators_and_enum_methods(
    language: str, source: str, expected: list[Row], roomy: TokenBudget
) -> None:
    pieces = chunk_treesitter(
        source, language=language, rel_path="x", budget=roomy, overlap_lines=0
    )
    assert [_row(p) for p in pieces] == expected
    _assert_real_lines_and_coverage(source, pieces, exact=True)
