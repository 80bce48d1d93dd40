"""``retrieval-mcp doctor [--json] [--repair]``: the checks of server/doctor.py, printed.

Exit status: 0 when nothing is a problem (warnings allowed), 1 when at least one check found a
problem, 2 on bad usage (argparse) or when the checks themselves cannot run.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.cli_mcp import add_oauth_arguments
from server.cli_types import RERANKER_HELP
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


@contextmanager
def said_once(findings: list[Finding]) -> Iterator[None]:
    """Warnings the checked components log while the checks run are held back, and after them
    logged only when no finding already says them: a component that cannot load logs why (a
    server needs that line) and doctor reports the same sentence as a finding, which a terminal
    showed twice."""
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            held.append(record)
            return False
        return True

    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(hold)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(hold)
        said = [f.detail for f in findings]
        for record in held:
            message = record.getMessage()
            # the same sentence, or it followed by the remedy the finding's action gives
            if not any(message in d or (d and message.startswith(d)) for d in said):
                logging.getLogger(record.name).handle(record)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run the checks; print one line per finding (or JSON); 1 when any is a problem."""
    findings: list[Finding] = []
    with said_once(findings):
        findings += run_checks(Settings.from_cli(args), repair=args.repair)
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
    p.add_argument("--reranker", help=RERANKER_HELP)
    p.add_argument("--tokens-file", help="tokens file (default: RETRIEVAL_MCP__TOKENS_FILE)")
    add_oauth_arguments(p)
    p.set_defaults(func=cmd_doctor)
