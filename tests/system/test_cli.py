"""The command line: index, search, eval; errors are one readable line with exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.shared_store import SharedStore
from server.retrieval.types import Chunk
from server.settings import Settings

CORPUS = [
    {
        "_id": "d1",
        "title": "Photosynthesis",
        "text": "Plants turn light, water and CO2 into sugar.",
    },
    {
        "_id": "d2",
        "title": "Volcanoes",
        "text": "Magma rises through the crust and erupts as lava.",
    },
    {"_id": "d3", "title": "Glaciers", "text": "Compacted snow becomes ice that flows downhill."},
    {"_id": "d4", "title": "Tides", "text": "The moon's gravity raises bulges in the oceans."},
]
QUERIES = [
    {"_id": "q1", "text": "how do plants make sugar from light"},
    {"_id": "q2", "text": "lava eruption from magma"},
    {"_id": "q3", "text": "what makes ocean tides"},
    {"_id": "q9", "text": "a query without judgements"},
]


def _write_beir(root: Path) -> Path:
    root.mkdir()
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in CORPUS) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in QUERIES) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\n"
    )
    return root


@pytest.fixture(autouse=True)
def _no_reranker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", "none")


def test_eval_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_beir(tmp_path / "tiny")
    out = tmp_path / "report.json"
    store = tmp_path / "store"
    args = [str(data), "--store", str(store), "--json", str(out)]
    assert main(["eval", *args, "--modes", "bm25-baseline,bm25,dense,hybrid,hybrid+rerank"]) == 0
    report = json.loads(out.read_text())
    assert report["dataset"] == "tiny" and report["queries"] == 3
    assert set(report["modes"]) == {"bm25-baseline", "bm25", "dense", "hybrid", "hybrid+rerank"}
    for scores in report["modes"].values():
        assert {"ndcg@10", "recall@100", "mrr@10", "p50_ms"} <= set(scores)
        assert 0.0 <= scores["ndcg@10"] <= 1.0
    assert report["modes"]["hybrid"]["ndcg@10"] == pytest.approx(1.0)
    assert report["index"]["reused"] is False
    assert "hybrid" in capsys.readouterr().out
    # a second run on the same store reuses the index
    assert main(["eval", *args, "--modes", "bm25"]) == 0
    assert json.loads(out.read_text())["index"]["reused"] is True


def test_index_then_search_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_beir(tmp_path / "tiny")
    store = str(tmp_path / "store")
    assert main(["index", str(data / "corpus.jsonl"), "--tenant", "t1", "--store", store]) == 0
    capsys.readouterr()
    assert main(["search", "glacier ice", "--tenant", "t1", "--store", store, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # a corpus record's id is its source too; the JSON states it once ("doc_id" repeats only
    # where it differs)
    assert result["hits"][0]["source"] == "d3" and "doc_id" not in result["hits"][0]
    assert result["rerank_applied"] is False
    assert main(["search", "glacier ice", "--tenant", "other", "--store", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "", "--tenant", "t"], "the query is empty"),
        (["search", "q", "--tenant", "t", "--top-k", "99"], "top_k must be between 1 and 50"),
        (["eval", "/nonexistent/dir"], "/nonexistent/dir/corpus.jsonl not found"),
        (
            ["search", "q", "--tenant", "t", "--domain", "code", "--filter", "doc_type=rst"],
            "unknown filter 'doc_type' for code; expected one of: language,",
        ),
        (
            [
                "search",
                "q",
                "--tenant",
                "t",
                "--filter",
                "path_glob=a/*",
                "--filter",
                "path_glob=b",
            ],
            "filter 'path_glob' takes one value (a string), not ['a/*', 'b']",
        ),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    EdgeStore(tmp_path / "s").close()  # an empty store
    assert main([*argv, "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["search", "ingest"])
@pytest.mark.parametrize("below", ["", "sub/store"])
def test_a_store_path_at_or_through_a_file_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, below: str
) -> None:
    """search said "no store at ...: ingest creates it" for a path through a file, and the
    ingest it advised then failed; both commands name the file in the way."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = blocker / below if below else blocker
    args = {"search": ["q"], "ingest": [str(tmp_path), "--domain", "docs"]}[command]
    assert main([command, *args, "--tenant", "t", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert f"error: store path {store} is not a folder: {blocker} is a file" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_delete_that_deletes_nothing_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fresh user: ``delete --tenant alicee --all`` (a typo) printed "deleted 0 chunks" and
    exited 0, and a mistyped --store was created, empty, and reported done. A user purging a
    tenant's data must not believe it gone: both are one-line errors (exit 2), and nothing is
    left at the mistyped path."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nNotes about the vpn client.\n")
    store = ["--store", str(tmp_path / "store")]
    assert main(["ingest", str(docs), "--domain", "docs", "--tenant", "alice", *store]) == 0
    capsys.readouterr()
    assert main(["delete", "--tenant", "alicee", "--all", *store]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: nothing stored for tenant 'alicee' in any domain"
    missing = tmp_path / "typo" / "store"
    assert main(["delete", "--tenant", "alice", "--all", "--store", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: no store at {missing} (no such folder): nothing to delete")
    assert not (tmp_path / "typo").exists()
    assert main(["delete", "--tenant", "alice", "--all", *store]) == 0  # the real one
    assert "deleted 1 chunks" in capsys.readouterr().out


def test_search_never_creates_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped --store is an error naming the path, and nothing is left behind there."""
    missing = tmp_path / "typo" / "store"
    assert main(["search", "q", "--tenant", "t", "--store", str(missing)]) == 2
    err = capsys.readouterr().err
    expected = (
        f"error: no store at {missing} (no such folder): ingest creates it (or check --store)"
    )
    assert err.strip() == expected
    assert not (tmp_path / "typo").exists()
    # an existing folder that holds no store (a mistyped --store naming a notes folder): the
    # same error, and no lock file or socket folder is left in it
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A note\n")
    assert main(["search", "q", "--tenant", "t", "--mode", "bm25", "--store", str(notes)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"error: no store at {notes} (the folder holds no store): ingest creates it "
        "(or check --store)"
    )
    assert sorted(p.name for p in notes.iterdir()) == ["a.md"]


def _run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "RETRIEVAL_RERANKER_MODEL": "none",
        },
    )


def test_locked_store_over_the_real_console_script(tmp_path: Path) -> None:
    """A holder that does not share the store (no owner socket): a clear one-line error."""
    store = EdgeStore(tmp_path / "s")
    try:
        proc = _run_cli("search", "x", "--tenant", "t", "--store", str(tmp_path / "s"))
    finally:
        store.close()
    assert proc.returncode == 2
    assert f"is in use by pid {os.getpid()}" in proc.stderr
    assert "does not share it" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.slow
def test_search_through_the_store_owner_over_the_real_console_script(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    """The store is held by a serving owner: the CLI forwards to it and finds its data."""
    owner = SharedStore(tmp_path / "s")
    try:
        retrieval = assemble(Settings(reranker_model="none"), owner, embedder)
        chunks = [
            Chunk(
                tenant="t1",
                doc_id=doc["_id"],
                source=doc["_id"],
                title=doc["title"],
                text=doc["text"],
            )
            for doc in CORPUS
        ]
        retrieval.indexer.index("docs", chunks)
        proc = _run_cli(
            "search", "lava eruption", "--tenant", "t1", "--store", str(tmp_path / "s"), "--json"
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["hits"][0]["source"] == "d2"
        assert owner.is_owner  # the CLI process forwarded; it never opened the store
    finally:
        owner.close()


def test_unknown_domain_is_rejected_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "q", "--tenant", "t", "--domain", "finance"])
    assert exc.value.code == 2
    assert "invalid choice: 'finance'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "q", "--tenant", "t", "--top-k", "0"],
        ["search", "q", "--tenant", "t", "--filter", "=x"],
        ["search", "q"],
        ["ingest"],
        ["doctor", "--no-such-flag"],
        ["no-such-command"],
        [],
    ],
)
def test_a_usage_fault_is_one_error_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """As every other bad input: one ``error:`` line and exit 2 (argparse printed its usage
    block first)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "--help)" in err


def test_search_filters_as_the_mcp_tools_take_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI had no filters (path_glob and the rest were MCP only): ``--filter NAME=VALUE``
    narrows a search as the tools' filters do, a name repeated matching any of its values."""
    root = tmp_path / "src"
    for folder, language, body in [
        ("a", "py", "def rotate_keys(): pass"),
        ("b", "rs", "fn rotate_keys() {}"),
    ]:
        (root / folder).mkdir(parents=True)
        (root / folder / f"keys.{language}").write_text(f"// rotate every api key\n{body}\n")
    store = ["--store", str(tmp_path / "store")]
    assert main(["ingest", str(root), "--domain", "code", "--tenant", "t", *store]) == 0
    capsys.readouterr()

    def sources(*filters: str) -> list[str]:
        argv = ["search", "rotate keys", "--domain", "code", "--tenant", "t", "--json", *store]
        assert main([*argv, *(arg for f in filters for arg in ("--filter", f))]) == 0
        result = json.loads(capsys.readouterr().out)
        return sorted({Path(hit["source"]).relative_to(root).as_posix() for hit in result["hits"]})

    assert sources() == ["a/keys.py", "b/keys.rs"]
    # the text view cites a code hit as the MCP text does: file, lines, symbol
    assert main(["search", "rotate keys", "--domain", "code", "--tenant", "t", *store]) == 0
    view = capsys.readouterr().out
    assert re.search(r"b/keys\.rs:1-2 \(rotate_keys\)  \(/\S+/b/keys\.rs#0\)", view), view
    assert sources("path_glob=a/**") == ["a/keys.py"]
    assert sources("path_prefix=b") == ["b/keys.rs"]
    assert sources("language=rust") == ["b/keys.rs"]
    assert sources("language=rust", "language=python") == ["a/keys.py", "b/keys.rs"]
    assert sources("path_glob=zz/*") == []
    with pytest.raises(SystemExit) as exited:
        main(["search", "q", "--tenant", "t", "--filter", "doc_type", *store])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err  # one line, no usage block before it
    assert "argument --filter: 'doc_type' is not NAME=VALUE" in err and err.startswith("error: ")


@pytest.fixture
def indexed_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A store holding one Markdown file for tenant t (docs), through the CLI."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "vpn.md").write_text("# VPN\n\nConnect to the VPN with the client.\n")
    store = tmp_path / "store"
    assert (
        main(["ingest", str(folder), "--domain", "docs", "--tenant", "t", "--store", str(store)])
        == 0
    )
    capsys.readouterr()
    return store


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--filter", "nope=1"], "unknown filter 'nope' for docs"),
        (["--domain", "legal", "--filter", "doc_type=bogus"], "filter 'doc_type' has no value"),
        (["--domain", "code", "--filter", "symbol_kind=func"], "expected one of: function,"),
        (["--filter", "path_prefix=a", "--filter", "path_prefix=b"], "path_prefix"),
        (["--tenant", "bad tenant"], "tenant"),
        (["--top-k", "1000"], "top_k"),
    ],
)
def test_a_bad_search_fails_before_any_model_loads(
    indexed_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    """The request's own one-line error, even where no model could load: the CLI used to load
    the bi-encoder and cross-encoder (seconds, log lines) before reading the request."""
    monkeypatch.setenv("RETRIEVAL_EMBEDDING_MODEL", str(indexed_store / "no-such-model"))
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", str(indexed_store / "no-such-reranker"))
    argv = ["search", "vpn", "--tenant", "t", "--store", str(indexed_store), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "no-such" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_bm25_search_loads_no_model(
    indexed_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """BM25 needs neither model: it answers where neither could load, and says nothing of a
    cross-encoder it would never use."""
    monkeypatch.setenv("RETRIEVAL_EMBEDDING_MODEL", str(indexed_store / "no-such-model"))
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", str(indexed_store / "no-such-reranker"))
    argv = ["search", "vpn client", "--tenant", "t", "--store", str(indexed_store), "--json"]
    assert main([*argv, "--mode", "bm25"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert [Path(hit["source"]).name for hit in result["hits"]] == ["vpn.md"]
    assert result["rerank_model"] is None and "no-such" not in captured.err


BAD_SETTINGS = [
    ({"RETRIEVAL_TORCH_THREADS": "abc"}, "invalid setting RETRIEVAL_TORCH_THREADS"),
    ({"RETRIEVAL_INFERENCE_BACKEND": "bogus"}, "invalid setting RETRIEVAL_INFERENCE_BACKEND"),
    ({"RETRIEVAL_MCP__PORT": "x"}, "invalid setting RETRIEVAL_MCP__PORT"),
    (  # a list written as the README shows it, without its JSON brackets
        {"RETRIEVAL_QDRANT_CLUSTER__TENANT_SHARDS": "bigco"},
        "invalid setting RETRIEVAL_QDRANT_CLUSTER__TENANT_SHARDS='bigco': a list or mapping",
    ),
    ({"RETRIEVAL_DOMAINS": "{"}, "invalid setting RETRIEVAL_DOMAINS='{'"),
    ({"RETRIEVAL_CONFIG_FILE": "BAD_TOML"}, "is not valid TOML"),
    ({"RETRIEVAL_CONFIG_FILE": "BAD_VALUE"}, "invalid setting RETRIEVAL_TORCH_THREADS"),
    ({"RETRIEVAL_CONFIG_FILE": "MISSING"}, "no such file"),
]
COMMANDS = [
    ["doctor"],
    ["search", "q", "--tenant", "t", "--mode", "bm25"],
    ["ingest", ".", "--domain", "docs", "--tenant", "t", "--dry-run"],
    ["serve", "--tenant", "t"],
    ["delete", "--tenant", "t", "--domain", "docs", "--source", "x.md"],
    ["watch", ".", "--domain", "docs", "--tenant", "t"],
]


@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS)
def test_a_bad_setting_is_one_line_in_every_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    message: str,
) -> None:
    """A bad environment variable or config file printed a pydantic or TOML traceback from
    every command, doctor included: one line naming the setting and the value, exit 2."""
    files = {
        "BAD_TOML": "torch_threads = \n",
        "BAD_VALUE": "torch_threads = 'many'\n",
    }
    for name, value in env.items():
        if value in files:
            path = tmp_path / "config.toml"
            path.write_text(files[value])
            value = str(path)
        elif value == "MISSING":
            value = str(tmp_path / "missing.toml")
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    for command in COMMANDS:
        assert main([*command, "--store", str(tmp_path / "store")]) == 2, command
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, (command, err)


def test_a_section_filter_finds_a_sub_clause_packed_into_its_parent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``section=2.1`` found nothing where section 2 with its sub-clauses fit one chunk (the
    chunk's section was 2): it finds that chunk, through ingest, store and search."""
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "msa.txt").write_text(
        "Master Services Agreement\n\n1. Fees\n\nThe Customer pays each invoice in 30 days.\n\n"
        "2. Term\n\n2.1 This Agreement runs for two years.\n\n"
        "2.2 Either party may terminate it on thirty days written notice.\n"
    )
    store = ["--store", str(tmp_path / "store"), "--tenant", "t"]
    assert main(["ingest", str(folder), "--domain", "legal", *store]) == 0
    capsys.readouterr()
    argv = ["search", "terminate on notice", "--domain", "legal", "--json", *store]
    for section in ("2.1", "2 > 2.2", "2", "Section 2.1", "clause 2", "§2"):
        assert main([*argv, "--filter", f"section={section}"]) == 0
        hits = json.loads(capsys.readouterr().out)["hits"]
        assert [hit["metadata"]["section_path"] for hit in hits] == ["2"], section
        assert "thirty days" in hits[0]["text"]


def test_a_citation_ranks_the_cited_clause_above_clauses_that_mention_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Field report: "Section 3.3" ranked MPL's 2.7 ("Sections 3.1, 3.2, 3.3, and 3.4 are
    conditions ...") first and 3.3 itself fifth: both held the reference ``3.3``. A chunk's
    own citation is a BM25 term a citation query also gets, so the clause that *is* 3.3 comes
    first, whatever the other clauses say about it."""
    folder = tmp_path / "contracts"
    folder.mkdir()
    mention = "The obligations in Sections 3.1, 3.2, 3.3 and 3.4 survive any termination."
    (folder / "licence.txt").write_text(
        "Software Licence\n\n2. Grants\n\n2.1 The Licensor grants the licence.\n\n"
        f"2.2 {mention} {mention}\n\n3. Distribution\n\n3.1 Source code goes with copies.\n\n"
        "3.2 Binaries name their source.\n\n3.3 Modifications are described in a notice "
        "file.\n\n3.4 Notices stay intact.\n\n4. Termination\n\n4.1 " + mention + "\n"
    )
    store = ["--store", str(tmp_path / "store"), "--tenant", "t"]
    monkeypatch.setenv("RETRIEVAL_INGEST__CHUNK_TOKENS", "24")  # one clause a chunk
    assert main(["ingest", str(folder), "--domain", "legal", *store]) == 0
    capsys.readouterr()
    for query in ("Section 3.3", "clause 3.3", "§ 3.3"):
        assert main(["search", query, "--domain", "legal", "--json", *store]) == 0
        hits = json.loads(capsys.readouterr().out)["hits"]
        assert hits[0]["metadata"]["section_path"] == "3 > 3.3", (query, hits[0])


def test_a_deleted_folder_leaves_the_freshness_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field report: after ``delete --source FOLDER`` removed every chunk of an ingested
    folder, every search still named it in its freshness notes. A root left without chunks by
    a delete is forgotten; another root, and a root the delete did not touch, stay."""
    roots = {}
    for name in ("kept", "gone", "partly"):
        roots[name] = tmp_path / name
        roots[name].mkdir()
        (roots[name] / "a.md").write_text(f"# {name}\n\nNotes about the vpn client.\n")
        (roots[name] / "b.md").write_text(f"# {name} b\n\nMore notes about the vpn.\n")
    store = ["--store", str(tmp_path / "store"), "--tenant", "t"]
    for root in roots.values():
        assert main(["ingest", str(root), "--domain", "docs", *store]) == 0
    capsys.readouterr()

    def noted() -> list[str]:
        assert main(["search", "vpn", "--json", *store]) == 0
        result = json.loads(capsys.readouterr().out)
        return sorted(Path(f["root"]).name for f in result["freshness"])

    assert noted() == ["gone", "kept", "partly"]
    assert main(["delete", "--source", str(roots["gone"]), "--domain", "docs", *store]) == 0
    assert main(["delete", "--source", str(roots["partly"] / "a.md"), *store]) == 0
    capsys.readouterr()
    assert noted() == ["kept", "partly"]
    assert main(["delete", "--all", *store]) == 0
    capsys.readouterr()
    assert noted() == []
