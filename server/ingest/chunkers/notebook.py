"""Jupyter notebooks (``.ipynb``; nbformat 4, and 3's worksheets) read as the text they hold.

A notebook is JSON: its text is in the cells' sources; outputs (images as base64, tables,
logs) are results, not text anyone wrote, and are left out. Two renderings, one per domain:

* code: one script of the kernel's language, cells in order with a blank line between:
  code cells as code, Markdown and raw cells as comments of the language, and in a Python
  cell that does not parse as it is, IPython's own syntax commented out (``%matplotlib``,
  ``!pip``, ``files = !ls``, ``df?``; a cell that still does not parse is commented whole),
  as jupytext's percent format escapes magics, so each cell that is Python is chunked by
  symbol and a cell that parses is kept exactly as written. Each chunk records the cells its
  text comes from (``cell_start``, ``cell_end``, 1-based); its ``start_line``/``end_line``
  are lines of this script (``get_chunk`` shows it).
* docs: Markdown: Markdown cells as written, code cells as fenced blocks in the kernel's
  language, raw cells as text, so headings in the notebook section it.

Raises :class:`~server.ingest.chunkers.base.SkipFile` (the reason) for JSON that is not a
notebook.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from server.ingest.chunkers.base import SkipFile, valid_unicode_in

KERNEL_LANGUAGES = {
    "python": "python",
    "python3": "python",
    "ipython": "python",
    "r": "r",
    "ir": "r",
    "julia": "julia",
    "javascript": "javascript",
    "typescript": "typescript",
    "bash": "shell",
    "sh": "shell",
    "shell": "shell",
    "zsh": "shell",
    "scala": "scala",
    "ruby": "ruby",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "kotlin": "kotlin",
    "c++": "cpp",
    "cpp": "cpp",
    "c": "c",
    "c#": "csharp",
    "csharp": "csharp",
    "sql": "sql",
    "lua": "lua",
}
"""Kernel language names (``language_info.name``, ``kernelspec.language``) as the code domain
names languages (walker.CODE_LANGUAGES); another name is kept as written (line windows)."""

_LINE_COMMENT = {
    **dict.fromkeys(
        ("javascript", "typescript", "go", "rust", "java", "kotlin", "cpp", "c", "csharp",
         "scala", "swift", "php"),
        "//",
    ),
    **dict.fromkeys(("sql", "lua"), "--"),
}  # fmt: skip
"""Line-comment markers other than ``#`` (Markdown and raw cells are commented with them)."""

_IPYTHON_LINE = re.compile(r"^\s*[%!?]|^[^#'\"]*=\s*[%!]|\?\s*$")
"""A line of IPython's own syntax: a magic (``%timeit``, ``%%time``), a shell escape (``!pip
install``), one assigned (``files = !ls``, ``t = %timeit f()``) or help (``df?``, ``?df``)."""


@dataclass(frozen=True)
class Cell:
    kind: str
    """``code``, ``markdown`` or ``raw``."""
    source: str


@dataclass(frozen=True)
class Notebook:
    language: str
    """The kernel's language, named as the code domain names it (``python`` when unstated)."""
    cells: list[Cell]


def _source(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    raise SkipFile("not a Jupyter notebook: a cell's source is not text")


def _language(metadata: Any) -> str:
    if not isinstance(metadata, dict):
        return "python"
    names = []
    info, spec = metadata.get("language_info"), metadata.get("kernelspec")
    if isinstance(info, dict):
        names.append(info.get("name"))
    if isinstance(spec, dict):
        names += [spec.get("language"), spec.get("name")]
    names.append(metadata.get("language"))  # nbformat 3
    for name in names:
        if isinstance(name, str) and name.strip():
            key = name.strip().lower()
            if key in KERNEL_LANGUAGES:
                return KERNEL_LANGUAGES[key]
            if key.startswith("python"):  # kernelspec names such as python3.11, python-venv
                return "python"
            return re.sub(r"[^a-z0-9+#_-]", "", key) or "python"
    return "python"


def read_notebook(text: str) -> Notebook:
    """The cells and the kernel language of a notebook's JSON text.

    Raises SkipFile when the text is not JSON or not a notebook (no ``cells`` list, nor
    nbformat 3 ``worksheets``), or a cell's source is not text.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        detail = str(exc).split(":", 1)[0] if isinstance(exc, ValueError) else "nested too deep"
        raise SkipFile(f"not a Jupyter notebook: invalid JSON ({detail})") from None
    if not isinstance(document, dict):
        raise SkipFile("not a Jupyter notebook: no cells")
    document = valid_unicode_in(document)  # JSON keeps an unpaired "\ud83d" as it is
    raw_cells = document.get("cells")
    if raw_cells is None and isinstance(document.get("worksheets"), list):  # nbformat 3
        raw_cells = [
            cell
            for sheet in document["worksheets"]
            if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list)
            for cell in sheet["cells"]
        ]
    if not isinstance(raw_cells, list):
        raise SkipFile("not a Jupyter notebook: no cells")
    cells = []
    for raw in raw_cells:
        if not isinstance(raw, dict):
            raise SkipFile("not a Jupyter notebook: a cell is not an object")
        kind = raw.get("cell_type")
        if kind == "code":
            source = _source(raw.get("source", raw.get("input", "")))  # 3 calls it input
        elif kind == "heading":  # nbformat 3
            level = raw.get("level")
            depth = max(1, min(6, level)) if isinstance(level, int) else 1
            kind, source = "markdown", "#" * depth + " " + _source(raw.get("source", ""))
        elif kind in ("markdown", "raw"):
            source = _source(raw.get("source", ""))
        else:
            kind, source = "raw", _source(raw.get("source", ""))
        cells.append(Cell(kind, source))
    return Notebook(_language(document.get("metadata")), cells)


def _parses(lines: list[str]) -> bool:
    try:
        ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # a NUL byte; deep nesting
        return False
    return True


def _python_cell(source: str) -> list[str]:
    """A Python cell's lines as code Python parses: as written when they parse; else with
    IPython's own syntax commented out (magics, shell escapes, ``x = !ls``, ``obj?``); else,
    when they still do not parse (a ``%%bash`` cell, a syntax error), all commented, so one
    cell never costs the others their symbols. A cell that parses is never touched: a
    docstring line ending in ``?`` or a ``% (a, b)`` continuation is Python, not IPython."""
    lines = source.split("\n")
    if _parses(lines):
        return lines
    escaped = [f"# {line}" if _IPYTHON_LINE.search(line) else line for line in lines]
    if _parses(escaped):
        return escaped
    return [f"# {line}".rstrip() for line in lines]


def notebook_script(notebook: Notebook) -> tuple[str, list[int]]:
    """The notebook as one script of its kernel's language and, per line of it, the 1-based
    number of its cell (0: the blank line between two cells).

    Code cells are the code (Python cells as :func:`_python_cell` makes them); Markdown and
    raw cells are comments of the language. No cell markers: a marker line belongs to no
    code, and the chunker would have put it at the end of the previous cell's chunk.
    """
    comment = _LINE_COMMENT.get(notebook.language, "#")
    lines: list[str] = []
    cell_of_line: list[int] = []
    for number, cell in enumerate(notebook.cells, start=1):
        if not cell.source.strip():
            continue
        source = cell.source.strip("\n")
        if cell.kind != "code":
            body = [f"{comment} {line}".rstrip() for line in source.split("\n")]
        elif notebook.language == "python":
            body = _python_cell(source)
        else:
            body = source.split("\n")
        if lines:
            lines.append("")
            cell_of_line.append(0)
        lines += body
        cell_of_line += [number] * len(body)
    return "\n".join(lines), cell_of_line


def notebook_markdown(notebook: Notebook) -> str:
    """The notebook as Markdown: Markdown cells as written, code cells fenced, raw cells as
    text, blank lines between cells."""
    blocks = []
    for cell in notebook.cells:
        source = cell.source.strip("\n")
        if not source.strip():
            continue
        if cell.kind == "code":
            longest = max((len(run) for run in re.findall(r"`+", source)), default=0)
            fence = "`" * max(3, longest + 1)
            blocks.append(f"{fence}{notebook.language}\n{source}\n{fence}")
        else:
            blocks.append(source)
    return "\n\n".join(blocks)
