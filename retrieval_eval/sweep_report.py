"""Ranking and reporting a sweep: rows, key rows by role, the recommendation, JSON, markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from retrieval_eval.sweep_grid import (
    ROUTERS,
    Grid,
    IndexVariant,
    StaticConfig,
    _router,
    default_config,
    default_keyword_route,
    fusion_label,
)
from retrieval_eval.sweep_table import (
    AdaptiveChoice,
    Row,
    SetReport,
    SetRun,
    adaptive_row,
    best_adaptive,
    format_markdown,
    max_regret,
    paired_difference,
    rank_rows,
    static_rows,
)
from server.settings import Domain, FusionSettings, Settings

TOP_ROWS = 12


@dataclass
class SweepResult:
    """Everything the report needs."""

    domain: Domain
    grid: Grid
    today: StaticConfig
    reports: list[SetReport]
    ranked: list[Row]
    static_count: int
    adaptive: list[Row]
    runs: list[SetRun]
    configs: dict[str, dict[str, Any]]
    today_label: str = ""
    """The row of today's default: ``today.label``, or its adaptive row when the domain routes
    keyword-like queries to another fusion."""

    def __post_init__(self) -> None:
        self.today_label = self.today_label or self.today.label

    def row(self, label: str) -> Row:
        """The row of one label."""
        return next(r for r in self.ranked if r.label == label)

    def best(self, *, adaptive: bool | None = None) -> Row:
        """The winner (of only static or only adaptive rows when asked)."""
        return next(
            r for r in self.ranked if adaptive is None or bool(r.config.get("adaptive")) == adaptive
        )

    def fusion_key(self, row: Row) -> str:
        """The row's label without depth: rows differing only in candidates share it."""
        return " ".join(w for w in row.label.split() if not re.fullmatch(r"c\d+", w))

    def key_rows(self) -> dict[str, Row]:
        """The rows the README discusses, by role (a row may hold several roles; first wins).

        The runner-up is the best row whose setting differs from the winner's by more than the
        candidate depth (the next rows usually repeat the winner at another depth).
        """
        winner = self.ranked[0]
        runner_up = next(
            (r for r in self.ranked[1:] if self.fusion_key(r) != self.fusion_key(winner)), winner
        )
        roles: dict[str, Row] = {"winner": winner, "runner-up": runner_up}
        roles["best static"] = self.best(adaptive=False)
        if self.adaptive:
            roles["best adaptive"] = self.best(adaptive=True)
        roles["today's default"] = self.row(self.today_label)
        dbsf = StaticConfig(self.today.index, self.today.candidates, FusionSettings(method="dbsf"))
        filled = replace(dbsf, fusion=FusionSettings(method="dbsf_zero_fill"))
        labels = {r.label for r in self.ranked}
        # either may be absent: older kept scores predate zero-fill, small grids omit plain DBSF
        if dbsf.label in labels:
            roles["DBSF, today's depth and BM25"] = self.row(dbsf.label)
        if filled.label in labels:
            roles["DBSF zero-fill, today's depth and BM25"] = self.row(filled.label)
        static = [r for r in self.ranked if not r.config.get("adaptive")]
        regret = max_regret(static)
        roles["min-max regret (static)"] = min(static, key=lambda r: (regret[r.label], r.label))
        for run in self.runs:
            best = max(static, key=lambda r: (r.scores[run.name]["tune"].ndcg, r.label))
            roles[f"best static on {run.name} alone"] = best
        return roles

    def paired(
        self, label: str, against: str, part: str = "heldout"
    ) -> dict[str, dict[str, float]]:
        """nDCG@10 of ``label`` minus ``against`` per set on ``part``: mean and standard error."""
        out = {}
        for run in self.runs:
            a, b = self._per_query(run, label), self._per_query(run, against)
            mean, se = paired_difference(a, b, run.mask(part))
            out[run.name] = {"mean": round(mean, 4), "se": round(se, 4)}
        return out

    def recommendation(self) -> dict[str, Any]:
        """The winner, unless it is not clearly better than today's default on the tune parts.

        Guard against choosing on noise (the worst set can be flat across the grid, so its
        argmax is a coin toss): the winner replaces today's default only when, on the set where
        today's default scores worst, its paired tune-part gain exceeds two standard errors.
        Held-out parts play no part in this.
        """
        winner, today = self.ranked[0], self.row(self.today_label)
        worst_set = min(today.scores, key=lambda n: today.scores[n]["tune"].ndcg)
        gain = self.paired(winner.label, today.label, "tune")[worst_set]
        clear = winner.label != today.label and gain["mean"] > 2 * gain["se"] > 0
        return {
            "label": (winner if clear else today).label,
            "changes_default": clear,
            "worst_set_of_default": worst_set,
            "winner_tune_gain_there": gain,
        }

    def _per_query(self, run: SetRun, label: str) -> Any:
        if label in run.ndcg:
            return run.ndcg[label]
        row = self.row(label)
        keyword, natural = (
            StaticConfig(
                IndexVariant(c["part_vectors"], c["k1"], c["b"]),
                c["candidates"],
                FusionSettings(**c["fusion"]),
            ).label
            for c in (row.config["keyword"], row.config["natural"])
        )
        route = run.keyword[str(row.config["router"])]
        return np.where(route, run.ndcg[keyword], run.ndcg[natural])

    def as_json(self) -> dict[str, Any]:
        """The full report: sets, grid, the selection (key rows), every row ranked."""
        rank = {r.label: i + 1 for i, r in enumerate(self.ranked)}
        regret = max_regret([r for r in self.ranked if not r.config.get("adaptive")])
        selection = {}
        for role, row in self.key_rows().items():
            selection[role] = row.as_json() | {
                "rank": rank[row.label],
                "max_regret_tune": round(regret[row.label], 4) if row.label in regret else None,
                "tune_delta_vs_default": self.paired(row.label, self.today_label, "tune"),
                "heldout_delta_vs_default": self.paired(row.label, self.today_label),
            }
        return {
            "domain": self.domain.value,
            "rule": "best worst-set tune-part nDCG@10 (tie: mean tune); it replaces today's "
            "default only with a paired tune gain > 2 SE on the default's worst set; held-out "
            "only reported",
            "sets": [r.as_json() for r in self.reports],
            "grid": {
                "fusions": [fusion_label(f) for f in self.grid.fusions],
                "candidates": list(self.grid.candidates),
                "bm25": [list(v) for v in self.grid.bm25],
                "part_vectors": list(self.grid.parts),
                "static_configs": self.static_count,
                "adaptive_routers": [_router(t, w).name for t, w in ROUTERS],
                "adaptive_rows": len(self.adaptive),
            },
            "recommendation": self.recommendation(),
            "selection": selection,
            "rows": [r.as_json(brief=True) for r in self.ranked],
        }

    def markdown(self, top: int = TOP_ROWS) -> str:
        """Three tables: the key rows by role, the top static rows, the top adaptive rows."""
        names = [r.tuning_set.name for r in self.reports]
        rank = {r.label: i + 1 for i, r in enumerate(self.ranked)}
        key = self.key_rows()
        roles: dict[str, list[str]] = {}
        for role, row in key.items():
            roles.setdefault(row.label, []).append(role)
        marks = {label: f"#{rank[label]}, " + "; ".join(r) for label, r in roles.items()}
        unique = list({r.label: r for r in key.values()}.values())
        static = [r for r in self.ranked if not r.config.get("adaptive")][:top]
        adaptive = [r for r in self.ranked if r.config.get("adaptive")][: max(1, top // 2)]
        rank_marks = {r.label: marks.get(r.label, f"#{rank[r.label]}") for r in self.ranked}
        rec = self.recommendation()
        gain = rec["winner_tune_gain_there"]
        verdict = (
            f"Recommendation: `{rec['label']}` (the winner; its tune gain over today's default "
            f"on {rec['worst_set_of_default']}: {gain['mean']:+.3f} +- {gain['se']:.3f})"
            if rec["changes_default"]
            else f"Recommendation: keep today's default `{rec['label']}` (the winner's tune gain "
            f"on {rec['worst_set_of_default']}, {gain['mean']:+.3f} +- {gain['se']:.3f}, is "
            "within two standard errors)"
        )
        parts = [
            verdict,
            "",
            f"Selected rows ({self.domain.value}; nDCG@10 tune / held-out, Recall@100 in brackets)",
            "",
            format_markdown(unique, names, marks),
            "",
            f"Top {len(static)} static configurations of {self.static_count}",
            "",
            format_markdown(static, names, rank_marks),
        ]
        if adaptive:
            parts += [
                "",
                f"Top {len(adaptive)} query-adaptive configurations",
                "",
                format_markdown(adaptive, names, rank_marks),
            ]
        return "\n".join(parts)


def rank_sweep(
    domain: Domain,
    grid: Grid,
    settings: Settings,
    runs: list[SetRun],
    reports: list[SetReport],
) -> SweepResult:
    """Rows of every static and (per family) best adaptive configuration, ranked by the rule."""
    configs = {c.label: c.as_json() for c in grid.configs()}
    rows = static_rows(runs, configs)
    routers = [_router(triggers, short) for triggers, short in ROUTERS]
    for run, report in zip(runs, reports, strict=True):
        if not getattr(run, "texts", None):  # scores kept before the texts were
            queries = report.tuning_set.load().queries
            run.texts = [queries[q] for q in run.query_ids]
        report.keyword_share = {}
        for router in routers:
            route = [router.route(text) == "keyword" for text in run.texts]
            run.keyword[router.name] = np.array(route, dtype=bool)
            report.keyword_share[router.name] = float(np.mean(route))
    adaptive = []
    for parts in grid.parts:
        for k1, b in grid.bm25:
            for c in grid.candidates:
                labels = [
                    StaticConfig(IndexVariant(parts, k1, b), c, f).label for f in grid.fusions
                ]
                for router in routers:
                    choice = best_adaptive(runs, labels, router.name)
                    if choice is not None:
                        adaptive.append(adaptive_row(choice, runs, configs))
    today = default_config(settings, domain)
    today_label = today.label
    routed = default_keyword_route(settings, domain)
    if routed is not None:  # today's default routes: score exactly that pair
        keyword, router_name = routed
        if router_name not in runs[0].keyword:
            triggers = frozenset(settings.domains[domain].keyword_triggers)
            extra = _router(triggers, settings.domains[domain].keyword_max_words)
            for run in runs:
                run.keyword[router_name] = np.array(
                    [extra.route(t) == "keyword" for t in run.texts], dtype=bool
                )
        keyword_label = StaticConfig(today.index, today.candidates, keyword).label
        choice = AdaptiveChoice(keyword_label, today.label, router_name, 0.0, 0.0)
        row = adaptive_row(choice, runs, configs)
        today_label = row.label
        if all(r.label != row.label for r in adaptive):
            adaptive.append(row)
    ranked = rank_rows(rows + adaptive)
    return SweepResult(
        domain, grid, today, reports, ranked, len(rows), adaptive, runs, configs, today_label
    )
