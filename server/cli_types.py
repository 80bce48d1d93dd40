"""Argument types shared by the command-line modules (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1; anything else is argparse's one-line usage error (exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def filter_pair(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` split at the first ``=`` (a glob or path may hold more); a missing ``=``
    or an empty name is argparse's one-line usage error (exit 2). An empty value is left to
    the search, which names the filter."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (e.g. path_glob='*.py')")
    return name.strip(), value


RERANKER_HELP = "cross-encoder id or path; 'none', 'off', 'false' or '' switches reranking off"
"""The ``--reranker`` help of every command that has the flag (read by settings.parse_reranker)."""
