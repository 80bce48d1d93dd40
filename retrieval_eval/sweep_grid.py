"""The sweep's grid: index variants, query-time configurations, routing rules, today's default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retrieval_eval.adaptive_fusion import ALL_TRIGGERS, AdaptiveFusion, Trigger
from server.settings import Domain, FusionSettings, Settings

RRF_KS = (1, 2, 5, 10, 60)
WEIGHTS = ((3.0, 1.0), (2.0, 1.0), (1.0, 1.0), (1.0, 2.0), (1.0, 3.0), (1.0, 5.0), (1.0, 10.0))
CANDIDATES = (50, 100, 200)
K1S = (0.6, 0.9, 1.2, 1.5)
BS = (0.4, 0.75)
ROUTERS: tuple[tuple[frozenset[Trigger], int], ...] = (
    (ALL_TRIGGERS, 0),
    (ALL_TRIGGERS, 3),
    (frozenset({"citation"}), 0),
    (frozenset({"identifier"}), 0),
    (frozenset({"quoted"}), 0),
)
"""Adaptive routing rules tried: (features that make a query keyword-like, short_words)."""


def fusion_label(fusion: FusionSettings) -> str:
    """``dbsf``, ``dbsf_zero_fill`` or ``rrf(k=1,1:5)`` (dense:sparse weights)."""
    if fusion.method != "rrf":
        return fusion.method
    return f"rrf(k={fusion.rrf_k},{fusion.dense_weight:g}:{fusion.sparse_weight:g})"


@dataclass(frozen=True)
class IndexVariant:
    """What the stored vectors carry: part vectors or not, and the BM25 k1 / b."""

    parts: bool
    k1: float
    b: float


@dataclass(frozen=True)
class StaticConfig:
    """One query-time configuration on one index variant."""

    index: IndexVariant
    candidates: int
    fusion: FusionSettings

    @property
    def label(self) -> str:
        """Stable, readable key: ``dbsf c100 k1=0.9 b=0.4 parts``."""
        parts = " parts" if self.index.parts else ""
        return (
            f"{fusion_label(self.fusion)} c{self.candidates} "
            f"k1={self.index.k1:g} b={self.index.b:g}{parts}"
        )

    def as_json(self) -> dict[str, Any]:
        """The configuration for the report."""
        return {
            "fusion": self.fusion.model_dump(),
            "candidates": self.candidates,
            "k1": self.index.k1,
            "b": self.index.b,
            "part_vectors": self.index.parts,
        }


@dataclass(frozen=True)
class Grid:
    """The configurations one sweep scores."""

    fusions: tuple[FusionSettings, ...]
    candidates: tuple[int, ...]
    bm25: tuple[tuple[float, float], ...]
    parts: tuple[bool, ...]

    def configs(self) -> list[StaticConfig]:
        """Every combination, index variants outermost."""
        return [
            StaticConfig(IndexVariant(parts, k1, b), c, fusion)
            for parts in self.parts
            for k1, b in self.bm25
            for c in self.candidates
            for fusion in self.fusions
        ]

    def size(self) -> int:
        """Number of static configurations."""
        return len(self.fusions) * len(self.candidates) * len(self.bm25) * len(self.parts)


def _unique(values: Sequence[Any]) -> tuple[Any, ...]:
    unique: list[Any] = []
    for value in values:  # FusionSettings are comparable but not hashable
        if value not in unique:
            unique.append(value)
    return tuple(unique)


def default_config(settings: Settings, domain: Domain) -> StaticConfig:
    """Today's default of the domain as a grid point (from the effective settings)."""
    ds = settings.domains[domain]
    fusion = ds.fusion
    if fusion.method != "rrf":  # DBSF ignores the RRF fields: normalise them for the key
        fusion = FusionSettings(method=fusion.method)
    return StaticConfig(
        IndexVariant(ds.part_sentences > 0, ds.bm25.k1, ds.bm25.b), ds.candidates, fusion
    )


def default_keyword_route(settings: Settings, domain: Domain) -> tuple[FusionSettings, str] | None:
    """Today's fusion for keyword-like queries and its router's name, when the domain routes."""
    ds = settings.domains[domain]
    if ds.keyword_fusion is None:
        return None
    keyword = ds.keyword_fusion
    if keyword.method != "rrf":
        keyword = FusionSettings(method=keyword.method)
    return keyword, _router(frozenset(ds.keyword_triggers), ds.keyword_max_words).name


def default_grid(settings: Settings, domain: Domain, *, quick: bool = False) -> Grid:
    """The standard grid, always containing the domain's current default.

    ``quick``: one BM25 variant (the default) and one depth, for a first look.
    """
    today = default_config(settings, domain)
    fusions = [FusionSettings(method="dbsf"), FusionSettings(method="dbsf_zero_fill")] + [
        FusionSettings(method="rrf", rrf_k=k, dense_weight=w[0], sparse_weight=w[1])
        for k in RRF_KS
        for w in WEIGHTS
    ]
    candidates: list[int] = [today.candidates] if quick else [*CANDIDATES, today.candidates]
    bm25 = [(today.index.k1, today.index.b)]
    if not quick:
        bm25 += [(k1, b) for k1 in K1S for b in BS]
    parts = (True, False) if today.index.parts else (False,)
    routed = default_keyword_route(settings, domain)
    extra = [today.fusion] + ([routed[0]] if routed else [])
    return Grid(_unique([*fusions, *extra]), _unique(sorted(candidates)), _unique(bm25), parts)


def _router(triggers: frozenset[Trigger], short_words: int) -> AdaptiveFusion:
    """A routing rule (its two fusion settings are chosen by the sweep, not here)."""
    return AdaptiveFusion(FusionSettings(), FusionSettings(), short_words, triggers)
