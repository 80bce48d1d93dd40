"""``retrieval-mcp doctor [--json] [--repair]``: the checks of server/doctor.py, printed.

Exit status: 0 when nothing is a problem (warnings allowed), 1 when at least one check found a
problem, 2 on bad usage (argparse) or when the checks themselves cannot run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from server.cli_mcp import add_oauth_arguments
from server.doctor import (
    Finding,
    check_disk,
    check_embedder,
    check_lock,
    check_oauth,
    check_reranker,
    check_store,
    check_tokens_file,
    check_versions,
    to_json,
)
from server.errors import RetrievalError
from server.settings import Settings


def run_checks(settings: Settings, *, repair: bool = False) -> list[Finding]:
    """Every check, in the order the report lists them."""
    findings = [*check_versions(), *check_embedder(settings), *check_reranker(settings)]
    if settings.qdrant_url:
        from server.retrieval.qdrant_store import QdrantStore

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        try:
            QdrantStore.connect(settings.qdrant_url, key)
            findings.append(Finding("store", "ok", f"Qdrant at {settings.qdrant_url} answers"))
        except RetrievalError as exc:
            findings.append(Finding("store", "problem", str(exc), "check RETRIEVAL_QDRANT_URL"))
    else:
        root = Path(settings.store_path).expanduser()
        findings += [*check_lock(root), *check_disk(root, settings)]
        findings += check_store(settings, repair=repair)
    findings += check_tokens_file(Path(settings.mcp.tokens_file).expanduser())
    findings += check_oauth(settings)
    return findings


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run the checks; print one line per finding (or JSON); 1 when any is a problem."""
    findings = run_checks(Settings.from_cli(args), repair=args.repair)
    report = to_json(findings)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for finding in findings:
            print(finding.line())
        problems = sum(f.status == "problem" for f in findings)
        print("healthy" if report["healthy"] else f"{problems} problem(s) found")
    return 0 if report["healthy"] else 1


def register(sub: Any) -> None:
    """Add ``doctor`` to the main parser."""
    p = sub.add_parser(
        "doctor",
        help="check models, store, lock and socket, disk, tokens file, OAuth issuer, versions "
        "(exit 0 healthy, 1 problems found)",
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument(
        "--repair",
        action="store_true",
        help="move damaged collections aside (to <store>/.damaged/) so they can be re-ingested",
    )
    p.add_argument("--store", help="embedded store directory (default: RETRIEVAL_STORE_PATH)")
    p.add_argument("--reranker", help="cross-encoder id or path, or 'none'")
    p.add_argument("--tokens-file", help="tokens file (default: RETRIEVAL_MCP__TOKENS_FILE)")
    add_oauth_arguments(p)
    p.set_defaults(func=cmd_doctor)
