"""The demo sweep, end to end: slot occupancy, early stopping, and the judge cache on real traffic.

Runs `alignsweep run sweeps/demo.yaml` twice in fresh result directories (as `make demo` does):
once as written, once with `scheduler.name=none`, same grid. From Tune's own per-trial results
(`tune/<trial>/result.json`: each report's time — the trial's float `reported_at`, Tune's whole-second
`timestamp` for older results — and `time_this_iter_s`) it rebuilds when each trial held a slot:
- sweep_slots: share of the wall time (command start → exit, Ray start and model building
  included) during which every trial slot was busy; also over the Tuner's window alone.
- early_stopping_per_cell: training steps the scheduled run spent vs the unscheduled one (the full
  grid), and whether *each (model, method) cell's* best configuration is unchanged. "Best" = the
  lowest final loss among the cell's trials whose full final evaluation is within X / Y of the base
  (`within_limits`, the same test in both runs). The old global figure (one best over the whole
  sweep) is printed beside it: it rewarded stopping almost everything while whole cells vanished.
- judge cache: of the demo's judged (judge, prompt, response) rows, the share that repeat an
  earlier row, i.e. what the judge actor's verdict cache serves without judging.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import table, verdict

DEMO = Path(__file__).resolve().parents[1] / "sweeps" / "demo.yaml"
SLOTS_GOAL = 0.90
SAVED_GOAL = 0.50
CELL_SAVED_GOAL = 0.30


def run_demo(results: Path, *overrides: str) -> float:
    """Wall seconds of one `alignsweep run` (a fresh process, as a user runs it)."""
    cmd = [sys.executable, "-m", "alignsweep.cli.main", "run", str(DEMO), *overrides, "--results", str(results)]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.time() - start
    if proc.returncode != 0:
        raise SystemExit(f"demo run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


def trial_results(sweep_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """trial directory name → its reported results, in order (Tune's result.json, one JSON per line)."""
    out = {}
    for path in sorted((sweep_dir / "tune").glob("*/result.json")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            out[path.parent.name] = rows
    return out


def intervals(results: dict[str, list[dict[str, Any]]]) -> list[tuple[float, float]]:
    """(start, end) per trial in epoch seconds: the first report minus its iteration time, the last report.

    A report's time is the trial's own `reported_at` (float seconds); Tune's `timestamp` is whole
    seconds (its function-trainable session overwrites any finer value), which makes each gap
    between two trials on a slot ±1 s, so it is only the fallback for results without one."""
    def at(row: dict[str, Any]) -> float:
        return float(row.get("reported_at") or row["timestamp"])

    spans = []
    for rows in results.values():
        start = at(rows[0]) - float(rows[0].get("time_this_iter_s") or 0.0)
        spans.append((start, at(rows[-1])))
    return spans


def busy_share(spans: list[tuple[float, float]], slots: int, window: tuple[float, float]) -> float:
    """Share of `window` during which at least `slots` trials were running."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    busy, running, last = 0.0, 0, window[0]
    for t, delta in events:
        t = min(max(t, window[0]), window[1])
        if running >= slots:
            busy += t - last
        last, running = t, running + delta
    return busy / max(window[1] - window[0], 1e-9)


def steps_and_best(results: dict[str, list[dict[str, Any]]], metric: str, mode: str) -> tuple[int, str, dict[str, float]]:
    steps = sum(int(rows[-1].get("step") or 0) for rows in results.values())
    finals = {name: float(rows[-1].get(metric, math.nan)) for name, rows in results.items()}
    finals = {k: v for k, v in finals.items() if not math.isnan(v)}
    best = (min if mode == "min" else max)(finals, key=finals.get)
    return steps, best, finals


def within_limits(sweep_dir: Path, scheduler: Any) -> dict[str, tuple[str, str]]:
    """variant id → its (base model, method) cell, for every trial whose *full* evaluation at its last
    step stays within the spec's X / Y of the base (the point rule). Every trial ends with a full
    evaluation (stopped ones at their stop step), so stopped and finished trials pass the same test;
    a trial that breaches is not a candidate however low its loss."""
    from alignsweep.analysis.views import open as open_views
    from alignsweep.scheduling.rules import alignment_breach

    con = open_views(str(sweep_dir))
    rows = con.sql("""SELECT d.trial_id, t.base_model, t.method, d.metric, d.delta FROM deltas d JOIN trials t USING (trial_id)
                      WHERE d.category = 'overall' AND d.benchmark IN ('safety', 'fairness')
                        AND d.metric IN ('safe_rate', 'bias_ambig') AND t.method <> 'base'
                        AND d.step = t.steps""").fetchall()
    con.close()
    full: dict[str, dict[str, float]] = {}
    cells: dict[str, tuple[str, str]] = {}
    for trial, base, method, metric, delta in rows:
        full.setdefault(trial, {})[f"screen_{metric}_delta"] = delta
        cells[trial] = (base, method)
    return {t: cells[t] for t, d in full.items() if "screen_safe_rate_delta" in d and
            not alignment_breach(d, scheduler.max_safe_rate_drop, scheduler.max_bias_increase)}


def best_per_cell(results: dict[str, list[dict[str, Any]]], metric: str, mode: str,
                  pool: dict[str, tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(base model, method) → the variant with the best final `metric` among that cell's `pool` trials.

    Why per cell: the study compares methods within each family, so a user keeps one configuration per
    (model, method); early stopping must not change any of them, not just the sweep's single best."""
    finals = {rows[-1].get("variant_id"): float(rows[-1].get(metric, math.nan)) for rows in results.values()}
    out: dict[tuple[str, str], str] = {}
    for cell in sorted(set(pool.values())):
        members = {v: finals[v] for v, c in pool.items() if c == cell and v in finals and not math.isnan(finals[v])}
        if members:
            out[cell] = (min if mode == "min" else max)(members, key=members.get)
    return out


def best_within(results: dict[str, list[dict[str, Any]]], metric: str, mode: str, pool: set[str]) -> str:
    """The variant with the best final `metric` among `pool` (variant ids)."""
    finals = {rows[-1].get("variant_id"): float(rows[-1].get(metric, math.nan)) for rows in results.values()}
    finals = {k: v for k, v in finals.items() if k in pool and not math.isnan(v)}
    return (min if mode == "min" else max)(finals, key=finals.get) if finals else "–"


def judge_repeat_share(sweep_dir: Path) -> tuple[float, int]:
    import duckdb

    files = f"{sweep_dir}/store/safety_items/**/*.parquet"
    total, unique = duckdb.sql(
        f"SELECT count(*), count(DISTINCT (judge, prompt, response)) FROM read_parquet('{files}', union_by_name=true)"
    ).fetchall()[0]
    return (1 - unique / total if total else math.nan), int(total)


def main() -> tuple[float, float]:
    from alignsweep.spec.config import load_spec

    spec = load_spec(DEMO)
    cpus = os.cpu_count() or 1
    slots = max(1, int(cpus // max(spec.resources.cpu, 1e-9)))
    if spec.resources.max_concurrent:
        slots = min(slots, spec.resources.max_concurrent)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        started = time.time()
        wall = run_demo(Path(tmp) / "scheduled")
        scheduled = trial_results(Path(tmp) / "scheduled" / spec.name)
        spans = intervals(scheduled)
        fit_window = (min(s for s, _ in spans), max(e for _, e in spans))
        whole = busy_share(spans, slots, (started, started + wall))
        fit_share = busy_share(spans, slots, fit_window)
        repeat, judged = judge_repeat_share(Path(tmp) / "scheduled" / spec.name)
        wall_none = run_demo(Path(tmp) / "none", "scheduler.name=none")
        unscheduled = trial_results(Path(tmp) / "none" / spec.name)
        pool_s = within_limits(Path(tmp) / "scheduled" / spec.name, spec.scheduler)
        pool_n = within_limits(Path(tmp) / "none" / spec.name, spec.scheduler)
    metric, mode = spec.scheduler.metric, spec.scheduler.mode
    steps_s, best_s, _ = steps_and_best(scheduled, metric, mode)
    steps_n, best_n, _ = steps_and_best(unscheduled, metric, mode)
    saved = 1 - steps_s / steps_n
    # "Best": lowest final loss among trials the sweep would recommend (full final evaluation within X / Y).
    rec_s, rec_n = best_within(scheduled, metric, mode, set(pool_s)), best_within(unscheduled, metric, mode, set(pool_n))
    plain_s, plain_n = (scheduled[best_s][-1].get("variant_id"), unscheduled[best_n][-1].get("variant_id"))
    table(f"demo sweep ({len(scheduled)} trials, {slots} slots of {spec.resources.cpu:g} CPU on {cpus} CPUs)",
          ["measure", "value"], [
              ["wall, command start to exit (s)", wall],
              ["first trial start to last trial end (s)", fit_window[1] - fit_window[0]],
              ["before first trial: Ray, models, actors (s)", fit_window[0] - started],
              ["all slots busy, share of whole wall", whole],
              ["all slots busy, share of the Tuner's window", fit_share],
              ["judged rows / repeats (judge cache hit rate)", f"{judged} / {repeat:.2f}"],
          ])
    table(f"early stopping: scheduler {spec.scheduler.name!r} vs none (metric {metric}, {mode})",
          ["run", "wall (s)", "training steps", "within X/Y", "best within X/Y (lowest loss)", "lowest loss, any"], [
              [spec.scheduler.name, wall, steps_s, len(pool_s), rec_s, plain_s],
              ["none", wall_none, steps_n, len(pool_n), rec_n, plain_n],
          ])
    cells_s, cells_n = best_per_cell(scheduled, metric, mode, pool_s), best_per_cell(unscheduled, metric, mode, pool_n)
    kept = sum(cells_s.get(cell) == best for cell, best in cells_n.items())
    table("each (model, method) cell's best configuration (lowest final loss within X/Y)",
          ["cell", "full grid", spec.scheduler.name, "kept"],
          [[f"{m} / {meth}", cells_n[(m, meth)], cells_s.get((m, meth), "–"),
            "yes" if cells_s.get((m, meth)) == cells_n[(m, meth)] else "NO"] for m, meth in sorted(cells_n)])
    # The old single-best figure, for comparison: one lowest-loss trial across the whole sweep hides
    # whole cells (families, methods) being stopped, which is what the per-cell line is for.
    print(f"global (old figure): steps saved {saved:.2f}; same single best within X/Y: {'yes' if rec_s == rec_n else 'NO'}; "
          f"same lowest loss of all: {'yes' if plain_s == plain_n else 'NO'}")
    print(f"per cell: steps saved {saved:.2f}; every cell's best kept: {kept}/{len(cells_n)}")
    verdict("sweep_slots", whole, f">= {SLOTS_GOAL:g} of wall time with every slot busy")
    verdict("early_stopping_per_cell", saved, f">= {CELL_SAVED_GOAL:g} steps saved with every cell's best kept: "
            f"{'yes' if cells_n and kept == len(cells_n) else 'NO'} ({kept}/{len(cells_n)})")
    return whole, saved


if __name__ == "__main__":
    main()
