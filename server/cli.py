"""Command line: ``retrieval-mcp COMMAND``, the commands listed above (``--help``).

Results go to stdout; logs and progress bars go to stderr. Errors are one readable line
(exit code 2), never a traceback. ``index``, ``eval`` and ``bench`` run the evaluation package
``retrieval_eval`` (imported when one of them runs: the product itself never needs it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from server.cli_types import RERANKER_HELP, filter_pair, positive_int
from server.errors import InvalidRequestError, RetrievalError
from server.hit_preview import copy_places, hit_place, hit_text, preview_budget
from server.ingest.cli import register_ingest_commands
from server.settings import Domain, Settings
from server.shutdown import Terminated, terminate_like_interrupt

if TYPE_CHECKING:
    from server.retrieval.results import SearchResponse

logger = logging.getLogger("retrieval_mcp")

DOMAINS = [d.value for d in Domain]


def _print_result_text(result: SearchResponse, budget: int) -> None:
    """The text view: a header, notes, and per hit its citation line and its preview (the
    text the Searcher trimmed around the query's matches for the preview ``budget``)."""
    from server.retrieval.freshness import render_freshness
    from server.retrieval.searcher import trimmed_note

    print(
        f"{len(result.hits)} hit{'' if len(result.hits) == 1 else 's'} for {result.query!r} "
        f"in {result.domain.value} "
        f"(fusion {result.fusion}, rerank_applied={result.rerank_applied})"
    )
    if result.rerank_note:
        print(f"  note: {result.rerank_note}")
    cut = sum(hit.truncated for hit in result.hits)
    # the Searcher's trim note sends an MCP client to get_chunk; here the previews are the
    # view itself, and --json has the whole texts
    mcp_note = trimmed_note(cut, len(result.hits), budget) if cut else None
    for note in result.notes:
        if note != mcp_note:
            print(f"  note: {note}")
    if cut:
        print(f"  note: {cut} of {len(result.hits)} previews trimmed; --json prints whole texts")
    for root in result.freshness:  # as the MCP text view: only what is not fresh
        if root.status != "fresh":
            print(f"  note: {render_freshness(root)}")
    code = result.domain is Domain.CODE
    for rank, hit in enumerate(result.hits, start=1):
        trimmed = "  (trimmed)" if hit.truncated else ""
        # the citation, as the MCP text gives it (file:lines (symbol), heading path, section)
        place = f"{hit_place(hit)}  ({hit.source}#{hit.chunk_index})"
        print(f"{rank:>2}. {hit.score:.4f}  {place}{trimmed}")
        if hit.also_in:
            print(f"    same text also in: {copy_places(hit)}")
        print(hit_text(hit.text, code=code))


def _no_evaluation(exc: ImportError) -> RetrievalError:
    """The one-line error when the evaluation package (or one of its modules) is missing."""
    return RetrievalError(
        f"this command needs the evaluation package retrieval_eval, which did not import "
        f"({exc}); install retrieval-mcp[eval] or run from a source checkout"
    )


def cmd_index(args: argparse.Namespace) -> int:
    """Index a BEIR-style corpus.jsonl (one record per document) for one tenant."""
    try:
        from retrieval_eval.beir import load_corpus
        from retrieval_eval.runner import index_documents
    except ImportError as exc:
        raise _no_evaluation(exc) from None
    from server.retrieval.factory import build_retrieval

    docs = load_corpus(Path(args.corpus))
    retrieval = build_retrieval(Settings.from_cli(args), with_reranker=False)
    try:
        report = index_documents(retrieval, docs, domain=args.domain, tenant=args.tenant)
    finally:
        retrieval.close()
    print(report.model_dump_json(indent=2))
    return 0


def _filters(given: list[tuple[str, str]] | None) -> dict[str, str | list[str]]:
    """``--filter NAME=VALUE`` pairs as a search's filters: a name given more than once matches
    any of its values (a list, as the MCP tools take it); names are checked by the search."""
    filters: dict[str, str | list[str]] = {}
    for name, value in given or []:
        before = filters.get(name)
        if before is None:
            filters[name] = value
        else:
            filters[name] = [*([before] if isinstance(before, str) else before), value]
    return filters


def cmd_search(args: argparse.Namespace) -> int:
    """Hybrid search for one tenant; prints typed hits."""
    from server.retrieval.edge_store import holds_store, store_path_problem
    from server.retrieval.factory import build_retrieval
    from server.retrieval.limits import Limits
    from server.retrieval.request_filters import check_filters
    from server.retrieval.types import SearchRequest
    from server.tenants import validate_tenant

    settings = Settings.from_cli(args)
    # the request's own faults first, in a moment: opening a store takes seconds
    limits = Limits.from_settings(settings)
    limits.query(args.query)
    limits.check_top_k(args.top_k)
    validate_tenant(args.tenant)
    filters = _filters(args.filter)
    check_filters(Domain(args.domain), filters)
    store = Path(settings.store_path).expanduser()
    problem = None if settings.qdrant_url else store_path_problem(store)
    if problem is not None:
        raise InvalidRequestError(problem)
    if not settings.qdrant_url and not holds_store(store):
        # a search never creates a store: a mistyped --store would leave an empty one behind
        what = "the folder holds no store" if store.exists() else "no such folder"
        raise InvalidRequestError(
            f"no store at {store} ({what}): ingest creates it (or check --store)"
        )
    # the text view shows each hit's preview (trimmed around its matches, as the MCP text
    # content is); --json keeps the whole texts
    budget = preview_budget(args.top_k)
    request = SearchRequest(
        args.query,
        domain=args.domain,
        tenant=args.tenant,
        top_k=args.top_k,
        mode=args.mode,
        filters=filters,
        max_chars=None if args.json else budget,
    )
    # models load when the search first needs them: a bad request fails in one line before
    # seconds of loading, a BM25 search never loads the dense model, only hybrid+rerank the
    # cross-encoder (and only it says when that one cannot load)
    retrieval = build_retrieval(settings, lazy=True, with_reranker=args.mode == "hybrid+rerank")
    try:
        result = retrieval.searcher.search(request)
    finally:
        retrieval.close()
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        _print_result_text(result, budget)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Score retrieval modes on a BEIR dataset."""
    try:
        from retrieval_eval.beir import load_beir
        from retrieval_eval.eval_sets import prepare_dataset
        from retrieval_eval.runner import format_table, parse_modes, run_eval, write_json
        from retrieval_eval.splits import select_split
    except ImportError as exc:
        raise _no_evaluation(exc) from None

    modes = parse_modes(args.modes)
    dataset = load_beir(
        prepare_dataset(Path(args.dataset)),
        Path(args.queries) if args.queries else None,
        Path(args.qrels) if args.qrels else None,
    )
    dataset.queries = select_split(dataset.queries, args.split)
    dataset.qrels = {q: dataset.qrels[q] for q in dataset.queries}
    if not dataset.queries:
        raise RetrievalError(f"no query of {args.dataset} is in the {args.split} part")
    if args.limit:
        keep = list(dataset.queries)[: args.limit]
        dataset.queries = {q: dataset.queries[q] for q in keep}
    report = run_eval(
        dataset,
        Settings.from_cli(args),
        domain=args.domain,
        modes=modes,
        store_dir=Path(args.store) if args.store else None,
    )
    report["split"] = args.split
    print(format_table(report))
    if args.json:
        write_json(report, Path(args.json))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Latency, throughput and memory figures from one run."""
    try:
        from retrieval_eval.bench import SECTION_NAMES, run_bench
        from retrieval_eval.eval_sets import SCIFACT
    except ImportError as exc:
        raise _no_evaluation(exc) from None

    names = ["environment", "domains"] if args.ingest else args.sections.split(",")
    unknown = [n for n in names if n.strip() not in SECTION_NAMES]
    if unknown:
        raise RetrievalError(
            f"unknown bench section(s) {', '.join(unknown)}; "
            f"expected some of: {', '.join(SECTION_NAMES)}"
        )
    sizes = [int(s) for s in args.chunks.split(",") if s.strip().isdigit() and int(s) > 0]
    if not sizes or len(sizes) != len([s for s in args.chunks.split(",") if s.strip()]):
        raise RetrievalError("--chunks takes positive integers, e.g. 10000,100000")
    sections = [SECTION_NAMES[n.strip()] for n in names]
    dataset = Path(args.dataset) if args.dataset else SCIFACT
    soak = args.soak_seconds
    print(run_bench(sizes, dataset, queries=args.queries, sections=sections, soak_seconds=soak))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Ingest the bundled sample corpora (embedded store), then query them through a real MCP
    session with the server (in-process client): tools/list and one search per domain."""
    from server.cli_demo import run_demo

    run_demo(Settings.from_cli(args), args.tenant)
    return 0


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="embedded store directory (default: RETRIEVAL_STORE_PATH)")
    p.add_argument("--reranker", help=RERANKER_HELP)


def _register_evaluation_commands(sub: Any) -> None:
    """``index``, ``eval`` and ``bench``: parsed here, run by retrieval_eval (see cmd_*)."""
    p = sub.add_parser("index", help="index a BEIR-style corpus.jsonl for a tenant")
    p.add_argument("corpus", help="corpus.jsonl with _id, title, text per line")
    p.add_argument("--domain", choices=DOMAINS, default="docs")
    p.add_argument("--tenant", required=True)
    _store_args(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("eval", help="evaluate on a BEIR dataset")
    p.add_argument("dataset", help="directory with corpus.jsonl, queries.jsonl, qrels")
    p.add_argument("--queries", help="queries file (default DATASET/queries.jsonl)")
    p.add_argument("--qrels", help="qrels TSV (default DATASET/qrels/test.tsv, or *train*)")
    p.add_argument("--domain", choices=DOMAINS, default="docs")
    p.add_argument("--modes", default="bm25-baseline,bm25,dense,hybrid,hybrid+rerank")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N queries")
    p.add_argument(
        "--split",
        choices=["all", "tune", "heldout"],
        default="all",
        help="score only the tune or the held-out part (by SHA-256 of the query id)",
    )
    _store_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="latency / throughput / memory benchmark")
    p.add_argument("--chunks", default="10000,100000", help="store sizes, comma-separated")
    p.add_argument("--queries", type=positive_int, default=200, help="queries per measurement")
    p.add_argument(
        "--dataset",
        help="BEIR directory whose corpus provides the text (default: ../shared/datasets/scifact "
        "beside the source checkout)",
    )
    p.add_argument(
        "--sections",
        default="environment,ingest,stores,domains,server,watch",
        help="comma-separated: environment, backends (each inference backend beside torch), "
        "ingest, stores, domains (per-domain ingest and "
        "no-op re-ingest), server (MCP start-up and protocol overhead), watch (save to "
        "searchable, idle overhead), concurrency (1/4/16 HTTP clients, not in the default)",
    )
    p.add_argument(
        "--ingest", action="store_true", help="shorthand for --sections environment,domains"
    )
    p.add_argument(
        "--soak-seconds",
        type=float,
        default=0.0,
        help="concurrency section: afterwards, 16 clients for this long; RSS must stay within "
        "the first minute's peak",
    )
    p.set_defaults(func=cmd_bench)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage fault is one ``error:`` line (exit 2) as every other bad input
    is, not the usage block first (``--help`` still prints it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands (their parsers are :class:`OneLineParser`s
    too: argparse makes subparsers of the parent's class)."""
    parser = OneLineParser(prog="retrieval-mcp", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("search", help="hybrid search as one tenant")
    p.add_argument("query")
    p.add_argument("--domain", choices=DOMAINS, default="docs")
    p.add_argument("--tenant", required=True)
    p.add_argument("--top-k", type=positive_int, default=10)
    p.add_argument(
        "--mode", choices=["bm25", "dense", "hybrid", "hybrid+rerank"], default="hybrid+rerank"
    )
    p.add_argument(
        "--filter",
        action="append",
        type=filter_pair,
        metavar="NAME=VALUE",
        help="narrow the search as the MCP tools' filters do, e.g. path_glob='src/**/*.py', "
        "path_prefix=guides, language=python, section=12.3 (legal); repeat a name to match any "
        "of its values",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _store_args(p)
    p.set_defaults(func=cmd_search)

    _register_evaluation_commands(sub)
    register_ingest_commands(sub)

    p = sub.add_parser("demo", help="ingest the bundled samples, query them over MCP")
    p.add_argument("--tenant", default="demo")
    _store_args(p)
    p.set_defaults(func=cmd_demo)

    from server.cli_mcp import register as register_mcp_commands
    from server.cli_migrate import register as register_migrate_command

    register_mcp_commands(sub)
    register_migrate_command(sub)
    from server.cli_doctor import register as register_doctor

    register_doctor(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``retrieval-mcp`` console script; ``argv`` None reads ``sys.argv``.

    Only then is this process the program being run: called with ``argv`` from a host (a test,
    an embedding application) it never replaces that host's process (``serve``'s allocator
    re-execution, :mod:`server.allocator`)."""
    args = build_parser().parse_args(argv)
    args.own_process = argv is None
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "huggingface_hub", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    terminate_like_interrupt()  # SIGTERM unwinds like Ctrl-C: the store is closed on the way
    try:
        code: int = args.func(args)
        return code
    except RetrievalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # what no check caught (a path this user cannot reach): one line
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Terminated as exc:
        print(f"terminated ({exc})", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
