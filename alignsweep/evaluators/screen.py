"""The cheap screen: a fixed, stratified subset of the safety, over-refusal and fairness items.

Why: an alignment-aware stopper must look at every eval interval, and a full evaluation at every
interval costs more than the training it would save. The subset is *fixed* (chosen by a hash of each
item's id, not by a seed or by position), so every interval, every trial and the base model are
scored on exactly the same items and a change is a change of the model, not of the sample; it is
*stratified* (a share of every category, at least one item each), so a collapse in one hazard
category cannot hide. Screen metrics are stored under their own benchmark names (`screen_safety`,
`screen_over_refusal`, `screen_fairness`), so they are never mistaken for, or averaged with, full-evaluation numbers.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Sequence, TypeVar

SCREEN_PREFIX = "screen_"
T = TypeVar("T")


def _rank(item_id: str) -> str:
    return hashlib.sha1(item_id.encode("utf-8")).hexdigest()


def screen_subset(items: Sequence[T], fraction: float, *, id_attr: str) -> list[T]:
    """`ceil(fraction · n)` items of each category (at least one), chosen by id hash, in input order."""
    if not 0 < fraction <= 1:
        raise ValueError(f"screen fraction must be in (0, 1], got {fraction}")
    by_category: dict[str, list[T]] = {}
    for item in items:
        by_category.setdefault(getattr(item, "category"), []).append(item)
    keep: set[str] = set()
    for group in by_category.values():
        k = max(1, math.ceil(fraction * len(group)))
        keep.update(sorted((getattr(i, id_attr) for i in group), key=_rank)[:k])
    return [i for i in items if getattr(i, id_attr) in keep]


def as_screen(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metric rows relabelled to their screen benchmark (`safety` → `screen_safety`)."""
    return [{**r, "benchmark": SCREEN_PREFIX + r["benchmark"]} for r in rows]
