"""Legal retrieval measured through the product's ingest path (the legal chunker, sections).

The tuning sets' ``retrieval-mcp eval`` indexes BEIR records as sentence-packed passages, with
no section paths, so it cannot show what depends on them (a chunk's own citation as BM25
terms). This script writes each corpus record of a legal tuning set as a file, ingests the
folder with ``retrieval-mcp ingest --domain legal`` into a fresh store and scores the set's
queries (document-level nDCG@10, tune and held-out parts), or, with ``--citations DIR``,
queries every numbered clause of every file in DIR by citation within its own file
(``section 3.3``, ``clause 3.3``, ``§ 3.3``, ``what does section 3.3 say``; success@1).

    python scripts/eval_ingest_path.py --set legal --store /tmp/s1 [--json out.json]
    python scripts/eval_ingest_path.py --citations /usr/share/common-licenses --store /tmp/s2

Run it from two checkouts (PYTHONPATH) to compare versions; README "BM25 and legal
references" has the figures. Minutes on two cores; no network.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from retrieval_eval.splits import split_of
from server.cli import main as cli
from server.ingest.chunkers.legal import Clause, parse_clauses

ROOT = Path(__file__).resolve().parent.parent
STYLES = ["section {n}", "clause {n}", "§ {n}", "what does section {n} say"]


def _quiet(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(argv)
    if code != 0:
        raise SystemExit(f"error: {' '.join(argv[:2])} exited {code}")
    return out.getvalue()


def _search(store: Path, query: str, *extra: str) -> list[dict[str, Any]]:
    argv = ["search", query, "--domain", "legal", "--tenant", "t", "--store", str(store)]
    hits: list[dict[str, Any]] = json.loads(_quiet([*argv, "--json", "--top-k", "10", *extra]))[
        "hits"
    ]
    return hits


def _ingest(folder: Path, store: Path) -> None:
    _quiet(["ingest", str(folder), "--domain", "legal", "--tenant", "t", "--store", str(store)])


def tuning_set(name: str, store: Path) -> dict[str, object]:
    base = ROOT / "datasets" / "eval" / name
    corpus = store.parent / f"{store.name}-corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    for line in (base / "corpus.jsonl").open():
        record = json.loads(line)
        text = f"{record.get('title', '')}\n\n{record['text']}\n"
        (corpus / f"{record['_id']}.txt").write_text(text)
    _ingest(corpus, store)
    queries = {
        json.loads(line)["_id"]: json.loads(line)["text"]
        for line in (base / "queries.jsonl").open()
    }
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in list((base / "qrels" / "test.tsv").open())[1:]:
        query, doc, score = line.rstrip("\n").split("\t")
        qrels[query][doc] = int(score)
    per_query: dict[str, float] = {}
    for query, relevant in qrels.items():
        docs: list[str] = []
        for hit in _search(store, queries[query]):
            doc = Path(str(hit["source"])).stem
            if doc not in docs:
                docs.append(doc)
        dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs[:10]))
        best = sorted(relevant.values(), reverse=True)[:10]
        ideal = sum(s / math.log2(i + 2) for i, s in enumerate(best))
        per_query[query] = dcg / ideal if ideal else 0.0
    parts = {
        part: [v for q, v in per_query.items() if split_of(q) == part]
        for part in ("tune", "heldout")
    }
    return {
        "set": name,
        "ndcg@10": {part: sum(v) / len(v) for part, v in parts.items() if v},
        "per_query": per_query,
    }


def _clauses(node: Clause, path: list[str]) -> list[tuple[list[str], str]]:
    out = []
    for child in node.children:
        first = " ".join(next((line for line in child.lines if line.strip()), "").split())
        out.append(([*path, child.label], first))
        out += _clauses(child, [*path, child.label])
    return out


def citations(folder: Path, store: Path) -> dict[str, object]:
    _ingest(folder, store)
    ranks: dict[str, list[int | None]] = defaultdict(list)
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        for path, first in _clauses(parse_clauses(file.read_text(errors="replace")), []):
            number = re.fullmatch(r"(?:(?:Art\.|Section|Clause|§) )?(\d+(?:\.\d+)+)", path[-1])
            if number is None:
                continue
            for style in STYLES:
                hits = _search(store, style.format(n=number[1]), "--filter", f"path_prefix={file}")
                rank = None
                for i, hit in enumerate(hits, start=1):
                    cited = str(hit["metadata"].get("section_path", ""))
                    want = " > ".join(path)
                    text = " ".join(str(hit["text"]).split())
                    if cited == want or cited.startswith(want + " > ") or first[:40] in text:
                        rank = i
                        break
                ranks[style].append(rank)
    return {
        "folder": str(folder),
        "success@1": {s: sum(r == 1 for r in v) / len(v) for s, v in ranks.items() if v},
        "queries": sum(len(v) for v in ranks.values()),
    }


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--set", choices=["legal", "legal-policy"])
    what.add_argument("--citations", type=Path, help="a folder of legal texts")
    parser.add_argument("--store", type=Path, required=True, help="a new store directory")
    parser.add_argument("--json", type=Path, help="write the result (with per-query scores)")
    args = parser.parse_args(argv)
    if args.store.exists():
        parser.error(f"--store {args.store} exists; give a new directory")
    result = tuning_set(args.set, args.store) if args.set else citations(args.citations, args.store)
    shown = {k: v for k, v in result.items() if k != "per_query"}
    print(json.dumps(shown, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(run())
