"""The bundled sample corpora that `retrieval-mcp demo` ingests and searches (cli_demo.py).

The samples ship as their own data package beside the product (``retrieval_samples/<domain>/``:
``corpus/``, ``queries.jsonl`` and a README naming each file's origin and licence), read through
``importlib.resources``, so the demo runs from any install and any working directory.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from server.settings import Domain

SEARCH_TOOLS = {Domain.DOCS: "doc_search", Domain.LEGAL: "legal_search", Domain.CODE: "code_search"}


@contextmanager
def sample_folder(domain: Domain | str) -> Iterator[Path]:
    """The sample folder of ``domain`` as a directory on disk, for the duration of the block.

    Installed packages are plain directories, so this is the package's own folder; a package
    imported from a zip archive is copied to a temporary directory first (the ingest walk needs
    real files).
    """
    resource = files("retrieval_samples") / Domain(domain).value
    if isinstance(resource, Path):
        yield resource
        return
    with tempfile.TemporaryDirectory(prefix="retrieval-samples-") as scratch:
        target = Path(scratch) / Domain(domain).value
        _copy_tree(resource, target)
        yield target


def _copy_tree(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir():
            _copy_tree(entry, target / entry.name)
        else:
            (target / entry.name).write_bytes(entry.read_bytes())


def sample_queries(domain: Domain | str) -> list[dict[str, str]]:
    """The sample queries of ``domain``: ``{"query", "expected"}`` (expected: a path under
    ``corpus/`` that must be among the top hits)."""
    text = (files("retrieval_samples") / Domain(domain).value / "queries.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
