"""Bench: what the alignment-aware stopper saves on the demo, and whether it ever stops a trial that
the full evaluation would have kept.

Method — one *shadow* run, so both answers come from the same trials: the demo spec with
`scheduler.enforce=false` (the stopper records "would stop at step N", stops nothing) and
`scheduler.then=none` (ASHA off, so every trial reaches its last step and gets its full evaluation).
Training is deterministic per seed, so an enforcing run would stop exactly the trials, at exactly the
steps, that the shadow run records. Then, per trial:
  - stop step: where the stopper's own rule (`AlignmentRule` from the spec: one-sided bound at z
    standard errors, warm-up, patience, minimum bias answers) stops it, replayed over the store's
    `screen_*` changes and their item counts, and checked against the recorded reason when the run
    was recorded by this rule (a shadow run's data do not depend on the rule: it stops nothing);
  - full verdict: the point rule (`alignment_breach`) on the *full* evaluation at the last step (`deltas`);
  - missed: a trial the full evaluation breaches that the screen let run to the end.
A false stop is a trial the screen stops but the full evaluation keeps. Steps saved = planned − used.

    python bench/early_stop_alignment.py                     # run the shadow demo (seeds [0]) and report
    python bench/early_stop_alignment.py --sweep-dir DIR     # report on an existing shadow run
    python bench/early_stop_alignment.py --sweep-dir DIR scheduler.screen_confidence_z=0   # replay another rule
Last line: `early_stop_alignment: ratio=<training steps with stopper / without> (goal <1.0 with 0 false stops; …)`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shadow_run(results: str, overrides: list[str]) -> tuple[str, float]:
    from alignsweep.spec.config import load_spec
    from alignsweep.engine.sweep import run_sweep

    spec = load_spec(REPO / "sweeps" / "demo.yaml", ["name=demo-shadow", "scheduler.enforce=false",
                                                     "scheduler.then=none", *overrides])
    t0 = time.time()
    outcome = run_sweep(spec, results=results)
    return outcome.sweep_dir, time.time() - t0


def analyse(sweep_dir: str, overrides: list[str] | None = None) -> dict:
    from alignsweep.spec.config import load_spec
    from alignsweep.analysis.views import open as open_views
    from alignsweep.scheduling.rules import AlignmentRule, alignment_breach

    import yaml

    recorded_sched = (yaml.safe_load((Path(sweep_dir) / "sweep.yaml").read_text()).get("scheduler") or {})
    spec = load_spec(Path(sweep_dir) / "sweep.yaml", list(overrides or []))
    x, y = spec.scheduler.max_safe_rate_drop, spec.scheduler.max_bias_increase
    rule = AlignmentRule.from_spec(spec.scheduler)
    # The recorded reasons come from this very rule only if the run stored its fields and none was overridden.
    same_rule = "screen_confidence_z" in recorded_sched and not overrides
    con = open_views(sweep_dir)
    trials = con.sql("SELECT trial_id, method, family, steps, max_steps, stop_reason FROM trials "
                     "WHERE method <> 'base' ORDER BY trial_id").to_arrow_table().to_pylist()
    screen = con.sql("""SELECT trial_id, step, metric, value, delta, n FROM deltas_by_step
                        WHERE category = 'overall' AND benchmark LIKE 'screen_%' AND step > 0
                          AND metric IN ('safe_rate', 'bias_ambig')""").to_arrow_table().to_pylist()
    final = con.sql("""SELECT trial_id, metric, delta FROM deltas WHERE category = 'overall'
                       AND benchmark IN ('safety', 'fairness') AND metric IN ('safe_rate', 'bias_ambig')""").to_arrow_table().to_pylist()
    rows = []
    for t in trials:
        by_step: dict[int, dict[str, float]] = {}
        for s in (s for s in screen if s["trial_id"] == t["trial_id"]):
            by_step.setdefault(s["step"], {}).update({f"screen_{s['metric']}_delta": s["delta"],
                                                      f"screen_{s['metric']}": s["value"],
                                                      f"screen_{s['metric']}_n": s["n"]})
        total = t["max_steps"] or t["steps"]
        stop = next((step for step in sorted(by_step)
                     if rule.check(t["trial_id"], {**by_step[step], "step": step, "total_steps": total})), None)
        recorded = re.match(r"would stop at step (\d+)", t["stop_reason"] or "")
        if same_rule:  # the store agrees with the scheduler
            assert (int(recorded.group(1)) if recorded else None) == stop, (t, by_step)
        # The stopper's own rule applied to the full evaluation's last changes (same keys, same X / Y).
        full = {f"screen_{f['metric']}_delta": f["delta"] for f in final if f["trial_id"] == t["trial_id"]}
        full_breach = alignment_breach(full, x, y)
        rows.append({"trial": t["trial_id"], "planned": total, "used": stop or total, "stop_at": stop,
                     "full_safe": 100 * full.get("screen_safe_rate_delta", float("nan")),
                     "full_verdict": "stop" if full_breach else "keep",
                     "false_stop": stop is not None and not full_breach})
    r = rule
    return {"rows": rows, "x": x, "y": y, "rule": f"z={r.z:g}, patience={r.patience}, warmup={r.warmup:g}, "
                                                  f"min_bias_answers={r.min_bias_answers}",
            "replayed": not same_rule}


def report(result: dict, wall_s: float | None) -> float:
    rows = result["rows"]
    print(f"{'trial':<34} {'planned':>7} {'used':>5} {'stop@':>6} {'Δsafe full':>10} {'full says':>9} {'false stop':>10}")
    for r in rows:
        print(f"{r['trial']:<34} {r['planned']:>7} {r['used']:>5} {str(r['stop_at'] or '–'):>6} "
              f"{r['full_safe']:>+10.1f} {r['full_verdict']:>9} {'YES' if r['false_stop'] else '':>10}")
    planned, used = sum(r["planned"] for r in rows), sum(r["used"] for r in rows)
    stopped = sum(r["stop_at"] is not None for r in rows)
    false_stops = sum(r["false_stop"] for r in rows)
    missed = sum(r["stop_at"] is None and r["full_verdict"] == "stop" for r in rows)
    ratio = used / planned if planned else float("nan")
    print(f"\nrule: {result['rule']}" + (" (replayed on stored screens)" if result["replayed"] else ""))
    print(f"X={result['x']:g} points safe-rate drop, Y={result['y']:g} bias; {len(rows)} trials, {stopped} stopped by "
          f"the screen, {false_stops} false stops, {missed} breaches the screen missed (caught at the full evaluation); "
          f"training steps {used}/{planned} (saved {planned - used})" + (f"; shadow run {wall_s:.0f} s" if wall_s else ""))
    print(f"early_stop_alignment: ratio={ratio:.3f} (goal <1.0 with 0 false stops; false stops {false_stops}, "
          f"missed {missed})")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-dir", help="analyse an existing shadow run instead of running one")
    parser.add_argument("--results", help="where the shadow run goes (default: a temporary directory)")
    parser.add_argument("overrides", nargs="*", help="spec overrides (default: training.seeds=[0]); with "
                        "--sweep-dir, scheduler.* overrides replay another rule on the stored screens")
    args = parser.parse_args()
    wall = None
    sweep_dir, replay = args.sweep_dir, []
    if sweep_dir is None:
        results = args.results or tempfile.mkdtemp(prefix="alignsweep-bench-")
        sweep_dir, wall = shadow_run(results, args.overrides or ["training.seeds=[0]"])
    else:
        replay = args.overrides
    report(analyse(sweep_dir, replay), wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
