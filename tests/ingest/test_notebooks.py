"""Jupyter notebooks are ingested by the text their cells hold (chunkers/notebook.py).

Invariants (property-tested on generated notebooks of every cell kind, source shape and kernel
language): in the code domain the chunks hold every non-whitespace character of every cell
in order (the notebook's script, chunked as that kernel's code), and each chunk's
``cell_start``..``cell_end`` are the cells its text comes from, so a cell's text is found in
the chunks that cite it and a chunk cites no cell it holds nothing of; in the docs domain the
chunks hold every cell's text in order. Outputs are never text. JSON that is not a notebook
is a skip with its reason, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chunk_inputs import texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_chunking_invariant import CHECKS, LIMITS, check, make_budget, missing_from

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import SkipFile
from server.ingest.chunkers.notebook import notebook_script, read_notebook
from server.ingest.chunking import chunk_file
from server.ingest.walker import SourceFile, discover
from server.retrieval.chunk_record import citation
from server.retrieval.embedder import DenseEmbedder
from server.settings import Domain

KERNELS = {  # kernelspec language -> the code domain's language, written out
    "python": "python",
    "R": "r",
    "javascript": "javascript",
    "bash": "shell",
    "julia": "julia",
}
PYTHON_LINES = [
    "import numpy as np",
    "%matplotlib inline",
    "!pip install lifelines",
    "def load(path):\n    return open(path).read()",
    "class Model:\n    def fit(self, x):\n        return self",
    "x = load('data.csv')  # comment",
    "%%time",
    "files = !ls data/",
    "df?",
    "t = %timeit load('x')",
    "def broken(:\n    pass",
    "%%bash\necho hi",
]


@st.composite
def notebooks(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A notebook (nbformat 4) and its kernel's language as the code domain names it."""
    kernel = draw(st.sampled_from(sorted(KERNELS)))
    cells = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["code", "markdown", "raw"]))
        if kind == "code" and kernel == "python" and draw(st.booleans()):
            text = "\n".join(draw(st.lists(st.sampled_from(PYTHON_LINES), max_size=5)))
        else:
            text = draw(texts(big=False))
        lines = text.splitlines(keepends=True)
        source: str | list[str] = lines if draw(st.booleans()) else text
        cell: dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": source}
        if kind == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["OUTPUT\n"]}]
            cell["execution_count"] = None
        cells.append(cell)
    metadata = {"kernelspec": {"language": kernel, "name": kernel.lower(), "display_name": kernel}}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}, KERNELS[
        kernel
    ]


def cell_texts(notebook: dict[str, Any]) -> list[str]:
    return ["".join(c["source"]) for c in notebook["cells"]]


def nb_file(tmp: Path) -> SourceFile:
    return SourceFile(tmp / "eda.ipynb", tmp, "eda.ipynb", "notebook")


@pytest.mark.slow
def test_code_chunks_hold_every_cell_and_cite_its_cells(
    embedder: DenseEmbedder, tmp_path: Path
) -> None:
    @settings(CHECKS, max_examples=40)
    @given(case=notebooks(), limit=LIMITS, offsets=st.booleans())
    def run(case: tuple[dict[str, Any], str], limit: int, offsets: bool) -> None:
        notebook, language = case
        budget = make_budget(embedder, limit, offsets)
        data = json.dumps(notebook).encode()
        pieces = chunk_file(nb_file(tmp_path), data, Domain.CODE, budget, 2)
        sources = cell_texts(notebook)
        if not any(s.strip() for s in sources):
            assert pieces == []
            return
        script, cell_of_line = notebook_script(read_notebook(data.decode()))
        check(script, pieces, budget, embedder)
        lines = script.split("\n")
        for piece in pieces:
            meta = piece.metadata
            assert meta["language"] == language
            assert "OUTPUT" not in piece.text or any("OUTPUT" in s for s in sources)
            start, end = meta["start_line"], meta["end_line"]
            assert 1 <= meta["cell_start"] <= meta["cell_end"] <= len(sources)
            assert "\n".join(lines[start - 1 : end]).find(piece.text.split("\n")[0]) >= 0
            # the first and last lines with text come from the first and last cells cited
            cited = [cell_of_line[i] for i in range(start - 1, end) if lines[i].strip()]
            if cited and meta.get("parts") is None:
                assert (cited[0], cited[-1]) == (meta["cell_start"], meta["cell_end"])
        for number, text in enumerate(sources, start=1):
            if not text.strip():
                continue
            holding = [
                p.text
                for p in pieces
                if p.metadata["cell_start"] <= number <= p.metadata["cell_end"]
            ]
            assert missing_from(text, holding) is None, (number, text[:200])

    run()


@pytest.mark.slow
def test_docs_chunks_hold_every_cell_in_order(embedder: DenseEmbedder, tmp_path: Path) -> None:
    @settings(CHECKS, max_examples=30, suppress_health_check=list(HealthCheck))
    @given(case=notebooks(), limit=LIMITS)
    def run(case: tuple[dict[str, Any], str], limit: int) -> None:
        notebook, _ = case
        budget = TokenBudget(embedder.count_tokens, limit, overlap_tokens=limit // 4)
        pieces = chunk_file(
            nb_file(tmp_path), json.dumps(notebook).encode(), Domain.DOCS, budget, 0
        )
        check("\n".join(cell_texts(notebook)), pieces, budget, embedder)
        assert {p.metadata["doc_type"] for p in pieces} <= {"notebook"}

    run()


def test_a_notebook_is_cited_by_its_cells_and_magics_do_not_break_symbols(
    embedder: DenseEmbedder, tmp_path: Path
) -> None:
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Churn model\n", "Logistic regression."]},
            {"cell_type": "code", "source": ["%matplotlib inline\n", "import pandas as pd"]},
            {"cell_type": "code", "source": "def churn_probability(customer):\n    return 0.5\n"},
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    budget = TokenBudget(embedder.count_tokens, 254)
    data = json.dumps(notebook).encode()
    pieces = chunk_file(nb_file(tmp_path), data, Domain.CODE, budget, 2)
    by_symbol = {p.metadata["symbol"]: p for p in pieces}
    found = by_symbol["churn_probability"]
    assert (found.metadata["cell_start"], found.metadata["cell_end"]) == (3, 3)
    meta = {**found.metadata, "rel_path": "eda.ipynb"}
    assert citation(Domain.CODE, "/x/eda.ipynb", "", meta) == (
        "eda.ipynb, cell 3 (churn_probability)"
    )
    assert "# %matplotlib inline" in "\n".join(p.text for p in pieces)
    docs = chunk_file(nb_file(tmp_path), data, Domain.DOCS, budget, 0)
    assert docs[0].metadata["heading_path"] == ["Churn model"]
    assert "```python\ndef churn_probability" in docs[0].text


def test_a_cell_python_cannot_parse_costs_no_other_cell_its_symbols(
    embedder: DenseEmbedder, tmp_path: Path
) -> None:
    """Fresh-user report: one cell of IPython syntax (``files = !ls``, ``df?``, a ``%%bash``
    cell) or a syntax error turned the whole notebook into line windows, and the cell marker
    of each cell ended the previous cell's chunk (``cells 5-7`` held nothing of cell 7)."""
    cells = [
        "files = !ls data/\nt = %timeit sum(range(9))\ndf?\n?df",
        "%%bash\nfor f in *.csv; do wc -l $f; done",
        "def broken(:\n    pass",
        "import pandas as pd\n\nRATE = 0.2",
        "class RevenueModel:\n    def fit_seasonal_component(self, weeks):\n        return weeks",
        "def estimate_holiday_uplift(sales):\n    return sales * 1.1",
        "x = " + "-" * 100_000 + "1",  # the parser's stack overflows (MemoryError)
        "y = " + "+".join(["1"] * 200_000),  # RecursionError building the tree
    ]
    notebook = {
        "cells": [{"cell_type": "code", "source": c} for c in cells],
        "metadata": {"kernelspec": {"language": "python"}},
    }
    budget = TokenBudget(embedder.count_tokens, 254)
    pieces = chunk_file(nb_file(tmp_path), json.dumps(notebook).encode(), Domain.CODE, budget, 2)
    cited = {
        p.metadata["symbol"]: (p.metadata["cell_start"], p.metadata["cell_end"]) for p in pieces
    }
    assert cited["RevenueModel.fit_seasonal_component"] == (5, 5)
    assert cited["estimate_holiday_uplift"] == (6, 6)
    text = "\n".join(p.text for p in pieces)
    assert "# files = !ls data/" in text and "# def broken(:" in text and "# %%bash" in text
    assert all(p.text.strip() not in ("# %%", "") for p in pieces)


def test_a_cell_that_parses_is_kept_exactly_as_written(
    embedder: DenseEmbedder, tmp_path: Path
) -> None:
    """Second fresh-user report: lines that only look like IPython (a docstring line or a
    comment ending in '?', a '% (a, b)' continuation) were commented, and with them the whole
    cell: its symbols were lost and its code changed."""
    cells = [
        'def should_retry(status):\n    """Should we retry?\n\n    Yes on 503."""\n'
        "    return status == 503",
        'def format_progress(done, total):\n    return ("%d of %d"\n            % (done, total))',
        "def double_amount(x):\n    return x * 2  # should this round?",
        "%matplotlib inline\ndef plotted():\n    return 1",
    ]
    notebook = {"cells": [{"cell_type": "code", "source": c} for c in cells]}
    budget = TokenBudget(embedder.count_tokens, 254)
    pieces = chunk_file(nb_file(tmp_path), json.dumps(notebook).encode(), Domain.CODE, budget, 2)
    by_symbol = {p.metadata["symbol"]: p for p in pieces}
    for number, (name, cell) in enumerate(
        zip(("should_retry", "format_progress", "double_amount"), cells, strict=False), start=1
    ):
        assert by_symbol[name].text == cell, name  # kept as written
        assert by_symbol[name].metadata["cell_start"] == number
    assert "plotted" in by_symbol  # the magic line escaped, the rest of that cell kept as code
    assert "# %matplotlib inline" in "\n".join(p.text for p in pieces)


def test_kernels_name_the_language_and_comment_markdown_in_it(tmp_path: Path) -> None:
    def script(metadata: dict[str, Any], nbformat: int = 4) -> tuple[str, str]:
        cells = [{"cell_type": "markdown", "source": "Note"}, {"cell_type": "code", "source": "x"}]
        doc: dict[str, Any] = {"metadata": metadata, "nbformat": nbformat}
        if nbformat == 3:
            cells[1] = {"cell_type": "code", "input": "x"}
            doc["worksheets"] = [{"cells": [{"cell_type": "heading", "level": 2, "source": "T"}]}]
            doc["worksheets"].append({"cells": cells})
        else:
            doc["cells"] = cells
        notebook = read_notebook(json.dumps(doc))
        return notebook.language, notebook_script(notebook)[0]

    assert script({}) == ("python", "# Note\n\nx")
    assert script({"kernelspec": {"name": "python3.11"}})[0] == "python"
    assert script({"kernelspec": {"name": "ir", "language": "R"}})[0] == "r"
    assert script({"language_info": {"name": "typescript"}}) == ("typescript", "// Note\n\nx")
    assert script({"language": "python"}, nbformat=3) == ("python", "# ## T\n\n# Note\n\nx")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"cells": [', "not a Jupyter notebook: invalid JSON (Expecting value)"),
        (b"[1, 2]", "not a Jupyter notebook: no cells"),
        (b'{"metadata": {}}', "not a Jupyter notebook: no cells"),
        (b'{"cells": [3]}', "not a Jupyter notebook: a cell is not an object"),
        (b'{"cells": [{"cell_type": "code", "source": 7}]}',
         "not a Jupyter notebook: a cell's source is not text"),
        (b"[" * 100_000, "not a Jupyter notebook: invalid JSON (nested too deep)"),
    ],
)  # fmt: skip
def test_json_that_is_not_a_notebook_is_a_skip_with_its_reason(
    embedder: DenseEmbedder, tmp_path: Path, content: bytes, reason: str
) -> None:
    budget = TokenBudget(embedder.count_tokens, 254)
    for domain in (Domain.CODE, Domain.DOCS):
        with pytest.raises(SkipFile) as raised:
            chunk_file(nb_file(tmp_path), content, domain, budget, 0)
        assert str(raised.value) == reason


def test_the_walk_takes_notebooks_for_code_and_docs_not_legal(tmp_path: Path) -> None:
    (tmp_path / "eda.ipynb").write_text('{"cells": []}')
    for domain, taken in ((Domain.CODE, True), (Domain.DOCS, True), (Domain.LEGAL, False)):
        found = discover([tmp_path], domain, 1_000_000)
        assert [f.format for f in found.files] == (["notebook"] if taken else [])
