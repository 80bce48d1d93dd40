"""The product package stands alone: ``server`` imports nothing dev-only, evaluation reaches the
product only through ``retrieval_eval/product.py``, and the wheel carries the demo's samples.

Invariants:
- no module of ``server`` imports pytest, hypothesis, rank_bm25 or tests, and none imports
  retrieval_eval at module level (the CLI's ``index``/``eval``/``bench`` import it when run);
- no module of ``retrieval_eval`` imports an underscored name of ``server``, and only
  ``retrieval_eval/product.py`` imports ``server`` beyond its settings, errors and result types;
- a built wheel holds every sample file (corpus, queries, README, licences) and its ``server``
  imports, module by module, with retrieval_eval and the dev-only packages unimportable.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from server.cli import main

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = ("pytest", "hypothesis", "rank_bm25", "tests")
EVAL_PACKAGE = "retrieval_eval"
OPEN_SEAMS = ("server.settings", "server.errors", "server.retrieval.types")
ADAPTER = REPO / "retrieval_eval" / "product.py"


def _imports(tree: ast.Module) -> list[tuple[str, list[str], bool]]:
    """(module, imported names, at module level) for every import statement in ``tree``."""
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, [], id(node) not in nested))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [alias.name for alias in node.names]
            found.append((node.module, names, id(node) not in nested))
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def product_violations(source: str) -> list[str]:
    """What a module of ``server`` must not import, as readable lines (empty when clean)."""
    bad = []
    for module, _, module_level in _imports(ast.parse(source)):
        if _top(module) in DEV_ONLY:
            bad.append(f"imports {module} (dev-only)")
        elif _top(module) == EVAL_PACKAGE and module_level:
            bad.append(f"imports {module} at module level")
    return bad


def seam_violations(source: str, *, adapter: bool) -> list[str]:
    """What a module of ``retrieval_eval`` must not import from the product."""
    bad = []
    for module, names, _ in _imports(ast.parse(source)):
        if _top(module) != "server":
            continue
        private = [n for n in [*module.split("."), *names] if n.startswith("_")]
        if private:
            bad.append(f"{module}: underscored name(s) {', '.join(private)}")
        elif not adapter and module not in OPEN_SEAMS:
            bad.append(f"{module}: only retrieval_eval/product.py imports it")
    return bad


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_the_checks_catch_what_they_forbid() -> None:
    source = (
        "import pytest\nfrom hypothesis import given\nimport rank_bm25\nfrom tests import x\n"
        "from retrieval_eval.runner import run_eval\n"
        "def f():\n    from retrieval_eval.bench import run_bench\n"
    )
    assert product_violations(source) == [
        "imports pytest (dev-only)",
        "imports hypothesis (dev-only)",
        "imports rank_bm25 (dev-only)",
        "imports tests (dev-only)",
        "imports retrieval_eval.runner at module level",
    ]
    reaching = "from server.retrieval.pipeline import _hits\nfrom server.settings import Settings\n"
    assert seam_violations(reaching, adapter=True) == [
        "server.retrieval.pipeline: underscored name(s) _hits"
    ]
    assert seam_violations(reaching, adapter=False) == [
        "server.retrieval.pipeline: underscored name(s) _hits"
    ]
    assert seam_violations("from server.ingest.walker import discover\n", adapter=False) == [
        "server.ingest.walker: only retrieval_eval/product.py imports it"
    ]


def test_server_imports_nothing_dev_only() -> None:
    modules = _modules("server")
    assert len(modules) > 20
    bad = {
        str(p.relative_to(REPO)): v
        for p in modules
        if (v := product_violations(p.read_text(encoding="utf-8")))
    }
    assert not bad, bad


def test_evaluation_reaches_the_product_through_its_adapter() -> None:
    modules = _modules(EVAL_PACKAGE)
    assert ADAPTER in modules
    bad = {
        str(p.relative_to(REPO)): v
        for p in modules
        if (v := seam_violations(p.read_text(encoding="utf-8"), adapter=p == ADAPTER))
    }
    assert not bad, bad


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "/nonexistent"],
        ["index", "/nonexistent/corpus.jsonl", "--tenant", "t"],
        ["bench", "--sections", "environment"],
    ],
)
def test_evaluation_commands_without_the_package_are_one_line_errors(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if _top(m) == EVAL_PACKAGE]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, EVAL_PACKAGE, None)  # None: import raises ImportError
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: this command needs the evaluation package retrieval_eval")
    assert "retrieval-mcp[eval]" in err[0]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this checkout's sources, as ``pip install .`` builds it.

    Built from a copy: an in-tree build keeps ``build/lib``, whose stale files (a module
    deleted since) would end up in the next wheel.
    """
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    for package in ("server", EVAL_PACKAGE, "retrieval_samples"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("*.pyc"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(source)],
        check=True, capture_output=True, cwd=out,
    )  # fmt: skip
    (built,) = out.glob("retrieval_mcp-*.whl")
    return built


def test_the_wheel_carries_every_sample_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    samples = REPO / "retrieval_samples"
    expected = {
        p.relative_to(REPO).as_posix()
        for p in samples.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert len(expected) > 25
    assert expected <= names, sorted(expected - names)
    for licence in ("docs/httpx-LICENSE.md", "code/tiny-invariant-LICENSE", "legal/README.md"):
        assert f"retrieval_samples/{licence}" in names
    assert not [n for n in names if n.startswith(("tests/", "datasets/", "scripts/"))]


def test_the_wheels_server_imports_without_evaluation_or_dev_packages(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site, [n for n in archive.namelist() if n.startswith("server/")])
    blocked = (EVAL_PACKAGE, "pytest", "hypothesis", "rank_bm25", "tests")
    script = (
        "import importlib, pkgutil, sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import server\n"
        "names = [m.name for m in pkgutil.walk_packages(server.__path__, 'server.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "assert server.__file__.startswith(sys.argv[1]), server.__file__\n"
        "from server.demo import sample_folder, sample_queries\n"
        "with sample_folder('legal') as folder:\n"
        "    assert (folder / 'corpus' / 'MIT.txt').is_file()\n"
        "print(len(names), len(sample_queries('code')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        capture_output=True, text=True, cwd=tmp_path,
        env={"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    modules, queries = map(int, done.stdout.split())
    assert modules > 20
    assert queries >= 5
