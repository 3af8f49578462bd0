"""What every benchmark shares: offline env, timing (median of repeats), tables, the last line.

Ratios are taken inside one process, baseline and fast path back to back, so the noise of a shared
machine hits both; each benchmark prints its table and ends with `<name>: ratio=<x> (goal <y>)`.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def setup_torch(threads: int = 1) -> None:
    """One thread, as a Ray worker runs (Ray sets OMP_NUM_THREADS=1), and no warnings in the tables."""
    import warnings

    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    from alignsweep.logs import quiet_libraries

    quiet_libraries()


def seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_pair(baseline: Callable[[], Any], fast: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, float]:
    """Median seconds of each, run alternately (baseline, fast, baseline, …) after one warm-up each."""
    baseline(), fast()
    b, f = [], []
    for _ in range(repeats):
        b.append(seconds(baseline))
        f.append(seconds(fast))
    return statistics.median(b), statistics.median(f)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def verdict(name: str, ratio: float, goal: str) -> None:
    print(f"{name}: ratio={ratio:.2f} (goal {goal})", flush=True)


def tiny(family: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, path) of an aligned tiny base (built once into $ALIGNSWEEP_CACHE)."""
    from alignsweep.models.loading import load_model, load_tokenizer
    from alignsweep.models.refs import resolve_model

    path = resolve_model(f"tiny:{family}").path
    return load_model(path), load_tokenizer(path), path
