"""The sweep end to end on a tiny set: real store, bundled MiniLM, real pipeline comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_eval.eval_sets import TuningSet
from retrieval_eval.metrics import ndcg_at_k
from retrieval_eval.runner import EVAL_TENANT
from retrieval_eval.splits import split_of
from retrieval_eval.sweep import Grid, rank_sweep, score_sets
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble, open_store
from server.retrieval.types import SearchRequest
from server.settings import Domain, Settings

DOCS = {
    "d1": ("Apache License 2.0", "2. Each Contributor grants You a copyright license."),
    "d2": ("Apache License 2.0", "3. Each Contributor grants You a patent license."),
    "d3": ("Apache License 2.0", "4. You may redistribute copies of the Work in any medium."),
    "d4": ("GNU GPL v3.0", "5. You may convey a work based on the Program in source form."),
    "d5": ("GNU GPL v3.0", "8. You may not propagate or modify a covered work except as provided."),
    "d6": ("GNU GPL v3.0", "11. A contributor grants you a patent license under its claims."),
}
QUERIES = {
    "q1": ("Grant of Patent License", ["d2", "d6"]),
    "q2": ("Apache-2.0 § 4", ["d3"]),
    "q3": ("how do I convey a modified program", ["d4"]),
    "q4": ("termination when you propagate a covered work", ["d5"]),
    "q5": ("copyright license grant", ["d1"]),
    "q6": ("redistribution in any medium", ["d3"]),
}


@pytest.fixture
def tiny_set(tmp_path: Path) -> TuningSet:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in DOCS.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items())
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t1\n" for q, (_, docs) in QUERIES.items() for d in docs)
    )
    return TuningSet("tiny", Domain.LEGAL, root, "test queries")


def test_sweep_scores_match_the_pipeline(
    tiny_set: TuningSet, tmp_path: Path, embedder: DenseEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("retrieval_eval.sweep.load_embedder", lambda settings: embedder)
    settings = Settings(reranker_model="none")
    default = settings.domains[Domain.LEGAL]
    assert default.keyword_fusion is not None  # legal routes citation queries
    fusions = (default.fusion, default.keyword_fusion)
    grid = Grid(fusions, (default.candidates,), ((1.2, 0.75), (0.6, 0.4)), (False,))
    runs, reports = score_sets([tiny_set], grid, settings, tmp_path / "stores")
    [run], [report] = runs, reports
    assert run.splits == [split_of(q) for q in QUERIES]
    assert len(run.ndcg) == grid.size() == 4
    # every query was checked once per (BM25 variant, depth) against the store's own fusion
    assert report.fusion_check.queries == len(QUERIES) * 2
    assert report.fusion_check.ndcg_abs_diff == pytest.approx(0.0, abs=1e-9)

    # today's default (citation queries to keyword_fusion, the rest to fusion), as scored by
    # the sweep, equals the real pipeline's hybrid search query by query
    store_dir = tmp_path / "stores" / "legal" / "tiny"
    run_settings = settings.model_copy(update={"store_path": store_dir})
    retrieval = assemble(run_settings, open_store(run_settings), embedder, None)
    k1, b = default.bm25.k1, default.bm25.b
    natural = f"dbsf_zero_fill c{default.candidates} k1={k1:g} b={b:g}"
    keyword = f"rrf(k=1,1:10) c{default.candidates} k1={k1:g} b={b:g}"
    label = f"adaptive[citation: {keyword} | else {natural}]"
    try:
        for i, (text, relevant) in enumerate(QUERIES.values()):
            result = retrieval.searcher.rank(
                SearchRequest(text, domain="legal", tenant=EVAL_TENANT, top_k=6, mode="hybrid")
            )
            ranked = list(dict.fromkeys(h.doc_id for h in result.hits))
            expected = ndcg_at_k(ranked, dict.fromkeys(relevant, 1), 10)
            served = keyword if "§" in text else natural
            assert ("keyword query: citation" in result.fusion) == ("§" in text)
            assert run.ndcg[served][i] == pytest.approx(expected)
    finally:
        retrieval.store.close()

    result = rank_sweep(Domain.LEGAL, grid, settings, runs, reports)
    assert result.today_label == label and result.today.label == natural
    routed = result.row(label)
    for set_name, scores in routed.scores.items():
        assert set_name == "tiny"
        route = ["§" in text for text, _ in QUERIES.values()]
        per_query = [run.ndcg[keyword if r else natural][i] for i, r in enumerate(route)]
        assert scores["all"].ndcg == pytest.approx(sum(per_query) / len(per_query))
    assert {r.label for r in result.ranked if not r.config.get("adaptive")} == set(run.ndcg)
    assert result.ranked[0].worst_tune >= result.row(label).worst_tune
    report_json = result.as_json()
    assert report_json["selection"]["today's default"]["label"] == label
    assert "Selected rows" in result.markdown()
    recommended = result.recommendation()
    assert recommended["label"] in (result.ranked[0].label, label)
    gain = recommended["winner_tune_gain_there"]
    assert recommended["changes_default"] == (
        result.ranked[0].label != label and gain["mean"] > 2 * gain["se"] > 0
    )
