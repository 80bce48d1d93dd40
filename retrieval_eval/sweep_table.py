"""Sweep arithmetic: per-query scores -> per set and part means -> the selection rule.

The rule: the recommended default of a domain is the configuration with the best *worst*
tune-part nDCG@10 over the domain's tuning sets (ties: the better mean over the sets' tune
parts). Held-out parts are reported, never used to choose. A query-adaptive configuration
(``AdaptiveFusion``: one fusion setting for keyword-like queries, another for the rest) is
scored from the same per-query numbers as the two static settings it routes between, and is
ranked under the same rule.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval_eval.eval_sets import REPO_ROOT, TuningSet
from retrieval_eval.fusion import FusionCheck
from retrieval_eval.splits import SPLITS, Split

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
PARTS: tuple[str, ...] = (*SPLITS, "all")


@dataclass
class SetRun:
    """One tuning set's queries and, per configuration label, each query's metrics."""

    name: str
    query_ids: list[str]
    splits: list[Split]
    ndcg: dict[str, FloatArray] = field(default_factory=dict)
    """Configuration label -> nDCG@10 of each query (in ``query_ids`` order)."""
    recall: dict[str, FloatArray] = field(default_factory=dict)
    """Configuration label -> Recall@100 of each query."""
    texts: list[str] = field(default_factory=list)
    """The query texts (in ``query_ids`` order): adaptive routing reads them."""
    keyword: dict[str, BoolArray] = field(default_factory=dict)
    """Router name -> whether each query routes to the keyword setting."""

    def mask(self, part: str) -> BoolArray:
        """Which queries belong to ``part`` (``tune``, ``heldout`` or ``all``)."""
        if part == "all":
            return np.ones(len(self.splits), dtype=bool)
        return np.array([s == part for s in self.splits], dtype=bool)


@dataclass(frozen=True)
class PartScore:
    """Mean metrics of one part of one set."""

    ndcg: float
    recall: float
    queries: int

    def as_json(self) -> dict[str, float | int]:
        """Rounded for the report."""
        return {
            "ndcg@10": round(self.ndcg, 4),
            "recall@100": round(self.recall, 4),
            "queries": self.queries,
        }


def mean_of(values: FloatArray, mask: BoolArray) -> float:
    """Mean over the masked entries (NaN when none is selected)."""
    selected = values[mask]
    return float(selected.mean()) if selected.size else math.nan


@dataclass
class Row:
    """One configuration's scores on every set and part, and its rank keys."""

    label: str
    config: dict[str, Any]
    scores: dict[str, dict[str, PartScore]]
    """Set name -> part -> scores."""

    @property
    def worst_tune(self) -> float:
        """The selection key: the lowest tune-part nDCG@10 over the sets."""
        return min(parts["tune"].ndcg for parts in self.scores.values())

    @property
    def mean_tune(self) -> float:
        """The tie-break: the mean tune-part nDCG@10 over the sets."""
        return sum(parts["tune"].ndcg for parts in self.scores.values()) / len(self.scores)

    @property
    def worst_heldout(self) -> float:
        """The lowest held-out nDCG@10 over the sets (reported, never used to choose)."""
        return min(parts["heldout"].ndcg for parts in self.scores.values())

    def as_json(self, *, brief: bool = False) -> dict[str, Any]:
        """The row for the report; ``brief``: without the config (the label names it) and the
        per-part query counts (the set entries have them), for the long list of ranked rows."""
        return {
            "label": self.label,
            **({} if brief else {"config": self.config}),
            "worst_tune_ndcg@10": round(self.worst_tune, 4),
            "mean_tune_ndcg@10": round(self.mean_tune, 4),
            "worst_heldout_ndcg@10": round(self.worst_heldout, 4),
            "sets": {
                name: {
                    part: {k: v for k, v in score.as_json().items() if not brief or k != "queries"}
                    for part, score in parts.items()
                }
                for name, parts in self.scores.items()
            },
        }


def row_for(
    label: str,
    config: dict[str, Any],
    runs: Sequence[SetRun],
    ndcg: Mapping[str, FloatArray],
    recall: Mapping[str, FloatArray],
) -> Row:
    """A row from per-query arrays keyed by set name."""
    scores: dict[str, dict[str, PartScore]] = {}
    for run in runs:
        scores[run.name] = {}
        for part in PARTS:
            mask = run.mask(part)
            scores[run.name][part] = PartScore(
                mean_of(ndcg[run.name], mask), mean_of(recall[run.name], mask), int(mask.sum())
            )
    return Row(label, config, scores)


def static_rows(runs: Sequence[SetRun], configs: Mapping[str, dict[str, Any]]) -> list[Row]:
    """One row per static configuration (each must have been scored on every set)."""
    return [
        row_for(
            label,
            config,
            runs,
            {run.name: run.ndcg[label] for run in runs},
            {run.name: run.recall[label] for run in runs},
        )
        for label, config in configs.items()
    ]


def rank_rows(rows: Sequence[Row]) -> list[Row]:
    """Best first under the selection rule (worst tune set, then mean tune, then label)."""
    return sorted(rows, key=lambda r: (-r.worst_tune, -r.mean_tune, r.label))


def max_regret(rows: Sequence[Row]) -> dict[str, float]:
    """Label -> the largest gap, over the sets, between the best tune score any row reaches on
    that set and this row's (a rule that does not let the hardest set decide alone; reported
    beside the worst-set rule, not used to choose)."""
    names = list(rows[0].scores) if rows else []
    best = {n: max(r.scores[n]["tune"].ndcg for r in rows) for n in names}
    return {r.label: max(best[n] - r.scores[n]["tune"].ndcg for n in names) for r in rows}


def routed(keyword: FloatArray, natural: FloatArray, route: BoolArray) -> FloatArray:
    """Per-query metric of an adaptive configuration: keyword setting where ``route`` is true."""
    return np.where(route, keyword, natural)


@dataclass(frozen=True)
class AdaptiveChoice:
    """The best (keyword, natural) pair of static labels for one family of configurations."""

    keyword: str
    natural: str
    router: str
    worst_tune: float
    mean_tune: float


def best_adaptive(
    runs: Sequence[SetRun], labels: Sequence[str], router: str
) -> AdaptiveChoice | None:
    """The best pair of distinct labels to route between, under the selection rule.

    ``labels`` are static configurations that differ only in fusion (same index variant and
    candidate depth); every (keyword, natural) pair is scored at once from per-set sums over the
    tune parts. None when no query of any tune part routes differently from the rest (then an
    adaptive pair cannot differ from a static setting).
    """
    if len(labels) < 2:
        return None
    per_set = []
    for run in runs:
        tune = run.mask("tune")
        route = run.keyword[router]
        matrix = np.stack([run.ndcg[label] for label in labels])  # labels x queries
        keyword_sum = matrix[:, tune & route].sum(axis=1)
        natural_sum = matrix[:, tune & ~route].sum(axis=1)
        per_set.append((keyword_sum[:, None] + natural_sum[None, :]) / max(1, int(tune.sum())))
    stacked = np.stack(per_set)  # sets x keyword label x natural label
    worst, mean = stacked.min(axis=0), stacked.mean(axis=0)
    np.fill_diagonal(worst, -np.inf)  # a pair of equal settings is the static row
    if not np.isfinite(worst).any():
        return None
    best = max(
        ((i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j),
        key=lambda ij: (worst[ij], mean[ij], labels[ij[0]], labels[ij[1]]),
    )
    return AdaptiveChoice(
        labels[best[0]], labels[best[1]], router, float(worst[best]), float(mean[best])
    )


def adaptive_row(
    choice: AdaptiveChoice, runs: Sequence[SetRun], configs: Mapping[str, dict[str, Any]]
) -> Row:
    """The full row of an adaptive choice."""
    label = f"adaptive[{choice.router}: {choice.keyword} | else {choice.natural}]"
    config = {
        "adaptive": True,
        "keyword": configs[choice.keyword],
        "natural": configs[choice.natural],
        "router": choice.router,
    }
    ndcg, recall = {}, {}
    for run in runs:
        route = run.keyword[choice.router]
        ndcg[run.name] = routed(run.ndcg[choice.keyword], run.ndcg[choice.natural], route)
        recall[run.name] = routed(run.recall[choice.keyword], run.recall[choice.natural], route)
    return row_for(label, config, runs, ndcg, recall)


def paired_difference(a: FloatArray, b: FloatArray, mask: BoolArray) -> tuple[float, float]:
    """Mean of ``a - b`` over the masked queries and its standard error (paired by query)."""
    diff = (a - b)[mask]
    if diff.size < 2:
        return (float(diff.mean()) if diff.size else math.nan), math.nan
    return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(diff.size))


def format_markdown(rows: Sequence[Row], set_names: Sequence[str], marks: Mapping[str, str]) -> str:
    """A markdown table: per set tune / held-out nDCG@10 (Recall@100), worst tune and held-out.

    ``marks``: label -> a note shown after the label (e.g. "today's default").
    """
    header = [
        "config",
        *[f"{n} tune / held-out" for n in set_names],
        "worst tune",
        "worst held-out",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"`{row.label}`" + (f" ({marks[row.label]})" if row.label in marks else "")]
        for name in set_names:
            tune, held = row.scores[name]["tune"], row.scores[name]["heldout"]
            cells.append(
                f"{tune.ndcg:.3f} / {held.ndcg:.3f} (R {tune.recall:.2f} / {held.recall:.2f})"
            )
        cells += [f"**{row.worst_tune:.3f}**", f"{row.worst_heldout:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class SetReport:
    """What the report says about one set besides its scores."""

    tuning_set: TuningSet
    queries: int
    tune: int
    heldout: int
    corpus: int
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    fusion_check: FusionCheck = field(default_factory=FusionCheck)
    keyword_share: dict[str, float] = field(default_factory=dict)
    """Router name -> share of the set's queries it sends to the keyword setting."""

    def as_json(self) -> dict[str, Any]:
        """For the report."""
        return {
            "name": self.tuning_set.name,
            "style": self.tuning_set.style,
            "directory": _relative(self.tuning_set.directory),
            "queries": self.queries,
            "tune": self.tune,
            "heldout": self.heldout,
            "corpus": self.corpus,
            "index": {
                variant: {**info, "store": _relative(Path(str(info.get("store", ""))))}
                for variant, info in self.index.items()
            },
            "fusion_check": self.fusion_check.as_json(),
            "keyword_routed_share": {k: round(v, 3) for k, v in self.keyword_share.items()},
        }


def _relative(path: Path) -> str:
    """``path`` relative to the repository root (reports travel between checkouts)."""
    return os.path.relpath(path.resolve(), REPO_ROOT.resolve())
