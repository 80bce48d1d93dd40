"""Tune / held-out parts of a tuning set, assigned by SHA-256 of the query id.

Settings are picked on the ``tune`` part and reported on the ``heldout`` part, so a reported
score is not one the settings were fitted to. The assignment depends on the query id alone (no
``random``, no hash seed, no dependence on the other queries), so a query keeps its part when a
set grows, and the split of a BEIR set that is not in this repository (SciFact) is computed the
same way as the one recorded in ``datasets/eval/*/qrels/{tune,heldout}.tsv``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Literal, TypeVar

from server.errors import InvalidRequestError

Split = Literal["tune", "heldout"]
SPLITS: tuple[Split, ...] = ("tune", "heldout")
SPLIT_CHOICES = ("all", *SPLITS)

V = TypeVar("V")


def split_of(query_id: str) -> Split:
    """``tune`` when the first byte of SHA-256(query id, UTF-8) is even, else ``heldout``.

    About half of any set of distinct ids lands in each part (a fair coin per id).
    """
    return "tune" if hashlib.sha256(query_id.encode("utf-8")).digest()[0] % 2 == 0 else "heldout"


def select_split(items: Mapping[str, V], split: str) -> dict[str, V]:
    """The entries of ``items`` (keyed by query id) in ``split``: ``tune``, ``heldout`` or ``all``.

    Raises InvalidRequestError for another split name.
    """
    if split not in SPLIT_CHOICES:
        raise InvalidRequestError(
            f"unknown split {split!r}; choose from {', '.join(SPLIT_CHOICES)}"
        )
    if split == "all":
        return dict(items)
    return {qid: value for qid, value in items.items() if split_of(qid) == split}
