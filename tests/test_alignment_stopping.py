"""Alignment-aware early stopping: the decision rule, the scheduler around ASHA, and a real sweep
in which every stop (and every non-stop) agrees with what the trial reported to Tune."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from alignsweep.spec.config import SchedulerSpec, validate_spec
from alignsweep.scheduling import SCHEDULERS, AlignmentRule, alignment_breach, screen_breach
from alignsweep.errors import InputError
from alignsweep.evaluators.datasets import load_bbq, load_hazard_prompts
from alignsweep.evaluators.screen import screen_subset


def test_breach_rule_reads_points_and_ignores_undefined_changes() -> None:
    assert alignment_breach({"screen_safe_rate_delta": -0.11}, 10, 10).startswith("alignment: screen safe rate -11.0")
    assert alignment_breach({"screen_safe_rate_delta": -0.09}, 10, 10) is None
    assert "bias" in alignment_breach({"screen_bias_ambig_delta": 0.2}, 10, 10)
    assert alignment_breach({"screen_bias_ambig_delta": -0.5, "screen_safe_rate_delta": 0.3}, 10, 10) is None
    assert alignment_breach({"screen_safe_rate_delta": math.nan, "screen_bias_ambig_delta": None}, 1, 1) is None


def test_screen_subset_is_fixed_stratified_and_sized_by_fraction() -> None:
    hazards = load_hazard_prompts()
    a = screen_subset(hazards, 0.25, id_attr="prompt_id")
    assert a == screen_subset(list(reversed(hazards)), 0.25, id_attr="prompt_id")[::-1]  # order-free choice
    per_cat = {c: sum(h.category == c for h in hazards) for c in {h.category for h in hazards}}
    for category, n in per_cat.items():
        assert sum(h.category == category for h in a) == math.ceil(0.25 * n)
    bbq = load_bbq()
    assert {b.category for b in screen_subset(bbq, 0.01, id_attr="example_id")} == {b.category for b in bbq}
    with pytest.raises(ValueError, match="fraction"):
        screen_subset(hazards, 0, id_attr="prompt_id")


# ---------------------------------------------------------------- the noise-aware rule


def _screen(drop: float, n: int = 44, **extra: Any) -> dict[str, Any]:
    """A screened safe-rate change of `drop` points from a base at 0.98, on `n` hazard items."""
    return {"screen_safe_rate_delta": -drop / 100, "screen_safe_rate": 0.98 - drop / 100, "screen_safe_rate_n": n,
            **extra}


def test_screen_breach_needs_the_drop_past_x_by_z_standard_errors() -> None:
    # -20 on 44 items (SE about 6.3 points at a rate of 0.78): past X=10 as a point, not by 2 SE.
    assert screen_breach(_screen(20), 10, 10, z=0, min_bias_answers=30) is not None
    assert screen_breach(_screen(20), 10, 10, z=2, min_bias_answers=30) is None
    # The same drop on 400 items is past X by 2 SE; the reason carries n and the bound.
    reason = screen_breach(_screen(20, n=400), 10, 10, z=2, min_bias_answers=30)
    assert reason.startswith("alignment: screen safe rate -20.0 points vs base (n=400, drop ≥ 15.8 at 2 SE")
    # No item count: no bound, so only the point rule acts.
    no_n = {"screen_safe_rate_delta": -0.5}
    assert screen_breach(no_n, 10, 10, z=2, min_bias_answers=30) is None
    assert screen_breach(no_n, 10, 10, z=0, min_bias_answers=30) is not None


def test_noisy_small_bias_screen_is_not_judged() -> None:
    # +19 bias on 5 non-unknown answers (the demo's llama p-tuning) is noise; the full evaluation said +2.8.
    few = {"screen_bias_ambig_delta": 0.19, "screen_bias_ambig_n": 5}
    assert screen_breach(few, 10, 10, z=0, min_bias_answers=30) is None
    assert screen_breach(few, 10, 10, z=0, min_bias_answers=1) is not None
    # +35 on 100 answers passes Y=10 by 2 × (1/√100) = 20 points.
    many = {"screen_bias_ambig_delta": 0.35, "screen_bias_ambig_n": 100}
    assert "n=100 non-unknown" in screen_breach(many, 10, 10, z=2, min_bias_answers=30)
    assert screen_breach({**many, "screen_bias_ambig_delta": 0.25}, 10, 10, z=2, min_bias_answers=30) is None


def _replay(rule: AlignmentRule, drops: list[float], n: int = 400, total: int = 200) -> int | None:
    """The step at which `rule` stops a trial whose screens (every 50 steps) show `drops`."""
    for i, drop in enumerate(drops):
        step = 50 * (i + 1)
        if rule.check("t", {**_screen(drop, n), "step": step, "total_steps": total}):
            return step
    return None


def test_transient_dip_is_not_stopped_and_a_persistent_breach_is() -> None:
    rule = lambda: AlignmentRule(10, 10, z=2, patience=2, warmup=0)  # noqa: E731
    assert _replay(rule(), [25, 3, 2, 1]) is None            # dips once, recovers
    assert _replay(rule(), [25, 30, 30, 30]) == 100          # two breaching screens in a row
    assert _replay(rule(), [25, 3, 25, 3]) is None           # never twice in a row
    # The last step never stops a trial: it gets its full evaluation instead.
    assert _replay(AlignmentRule(10, 10, z=2, patience=1, warmup=0), [0, 0, 0, 60]) is None


def test_warmup_ignores_early_screens() -> None:
    # The demo's prompt-learning shape: -25 at step 50, back to 0 by 150 — a warm-up of half the steps lets it run.
    assert _replay(AlignmentRule(10, 10, z=2, warmup=0.5), [25, 3, 0, 0]) is None
    assert _replay(AlignmentRule(10, 10, z=2, warmup=0.5), [25, 30, 30, 30]) == 100
    assert _replay(AlignmentRule(10, 10, z=2, warmup=0), [25, 3, 0, 0]) == 50


def test_noisy_small_screen_is_not_stopped() -> None:
    # -20 each time on 44 items never passes X=10 by 2 SE; on 400 items it does at the first counted screen.
    assert _replay(AlignmentRule(10, 10, z=2, warmup=0), [20, 20, 20, 20], n=44) is None
    assert _replay(AlignmentRule(10, 10, z=2, warmup=0), [20, 20, 20, 20], n=400) == 50


def test_spec_validates_the_rule_fields() -> None:
    spec = SchedulerSpec(name="alignment")
    assert (spec.screen_confidence_z, spec.screen_patience, spec.screen_warmup, spec.min_bias_answers) == (2.0, 1, 0.5, 30)
    for bad in ({"screen_patience": 0}, {"screen_warmup": 1.0}, {"screen_confidence_z": -1}, {"min_bias_answers": 0}):
        raw = {"name": "s", "models": ["tiny:llama"], "methods": ["lora"], "scheduler": {"name": "alignment", **bad}}
        with pytest.raises(InputError, match=f"scheduler.{next(iter(bad))}"):
            validate_spec(raw)


def _trial(variant: str) -> Any:
    # one base model and method (one group of the loss scheduler), each trial its own configuration
    plan = {"variant_id": variant, "base_model": "tiny:llama", "method": "lora", "hyperparameters": {"v": variant}}
    return SimpleNamespace(trial_id=variant, config={"plan": plan})


def test_stopper_stops_on_alignment_and_defers_to_asha_otherwise() -> None:
    spec = SchedulerSpec(name="alignment", then="asha", grace_period=1, reduction_factor=2, max_safe_rate_drop=5,
                         screen_warmup=0)
    stopper = SCHEDULERS.get("alignment")(spec, 4)
    stopper.set_search_properties(None, None)
    trials = [_trial(f"t{i}") for i in range(3)]
    for t in trials:
        stopper.on_trial_add(None, t)
    ok = {"training_iteration": 1, "loss": 1.0, "step": 2, "total_steps": 8, "screen_safe_rate_delta": -0.02,
          "screen_safe_rate": 0.98, "screen_safe_rate_n": 400}
    assert stopper.on_trial_result(None, trials[0], ok) == stopper.CONTINUE
    bad = {**ok, "screen_safe_rate_delta": -0.2, "screen_safe_rate": 0.8}
    assert stopper.on_trial_result(None, trials[1], bad) == stopper.STOP
    assert stopper.stop_reasons["t1"].startswith("alignment: screen safe rate -20.0")
    # ASHA still acts on loss: a much worse loss at the same rung is cut, and the reason says so.
    worse = {**ok, "loss": 9.0}
    assert stopper.on_trial_result(None, trials[2], worse) == stopper.STOP
    assert stopper.stop_reasons["t2"].startswith("asha: loss")
    # The last result never counts as an early stop.
    assert stopper.on_trial_result(None, trials[0], {**bad, "step": 8}) != stopper.STOP or "t0" not in stopper.stop_reasons


def test_shadow_stopper_records_but_never_stops() -> None:
    stopper = SCHEDULERS.get("alignment")(SchedulerSpec(name="alignment", then="none", enforce=False), 4)
    t = _trial("t")
    stopper.on_trial_add(None, t)
    result = {"training_iteration": 1, "loss": 1.0, "step": 4, "total_steps": 8, "screen_safe_rate_delta": -0.5,
              "screen_safe_rate": 0.5, "screen_safe_rate_n": 44}
    assert stopper.on_trial_result(None, t, result) == stopper.CONTINUE
    assert stopper.stop_reasons["t"].startswith("would stop at step 4: alignment")


def test_spec_rejects_a_stopper_wrapping_itself() -> None:
    raw = {"name": "s", "models": ["tiny:llama"], "methods": ["lora"], "scheduler": {"name": "alignment", "then": "alignment"}}
    with pytest.raises(InputError, match="scheduler.then: the alignment stopper cannot wrap itself"):
        validate_spec(raw)


# ---------------------------------------------------------------- a real sweep


@pytest.mark.slow
def test_sweep_with_stopper_marks_stops_and_keeps_partial_results(ray_local: None, tmp_path: Path) -> None:
    from alignsweep.analysis.views import open as open_views
    from alignsweep.engine.sweep import run_sweep

    spec = validate_spec({
        "name": "stop", "models": ["tiny:llama"],
        "methods": {"lora": {"r": [4]}, "p_tuning": {"num_virtual_tokens": [4], "encoder_hidden_size": [16]}},
        "training": {"max_steps": 4, "eval_interval": 2, "batch_size": 4, "max_examples": 48, "max_seq_length": 64,
                     "learning_rates": [1e-2], "heldout_examples": 8},
        "scheduler": {"name": "alignment", "then": "none", "max_safe_rate_drop": 5, "max_bias_increase": 5,
                      "screen_fraction": 0.5, "screen_confidence_z": 0, "screen_warmup": 0, "min_bias_answers": 1},
        "evaluation": {"safety": {"limit": 2, "max_new_tokens": 8}, "fairness": {"limit": 2},
                       "over_refusal": {"limit": 1}, "utility": {"limit": 3}},
    })
    outcome = run_sweep(spec, results=str(tmp_path))
    assert outcome.errors == 0
    con = open_views(outcome.sweep_dir)
    trials = con.sql("SELECT * FROM trials WHERE method <> 'base' ORDER BY trial_id").to_arrow_table().to_pylist()
    steps = con.sql("""SELECT trial_id, step, benchmark, metric, value, delta, n FROM deltas_by_step
                       WHERE category = 'overall' AND benchmark LIKE 'screen_%'
                         AND metric IN ('safe_rate', 'bias_ambig')""").to_arrow_table().to_pylist()
    for t in trials:
        mine = [s for s in steps if s["trial_id"] == t["trial_id"]]
        assert {s["step"] for s in mine} == ({0, 2} if t["stopped_early"] else {0, 2, 4}), t["trial_id"]
        at_2 = {f"screen_{s['metric']}{suffix}": s[key] for s in mine if s["step"] == 2
                for suffix, key in (("_delta", "delta"), ("", "value"), ("_n", "n"))}
        breach = screen_breach(at_2, 5, 5, z=0, min_bias_answers=1)
        # The store's screen change says "stop" exactly when the trial was stopped, with that reason.
        assert (breach is not None) == t["stopped_early"], (t, at_2)
        assert t["stop_reason"] == breach
        assert (t["ended"], t["stop_step"]) == (("stopped_alignment", 2) if breach else ("finished", 4))
        assert t["trainable_params"] > 0 and t["total_params"] > t["trainable_params"]
    # Every trial has its step-0 control fully scored and a full evaluation of its last checkpoint,
    # a stopped one too (`evaluation.final: all`, the default), at the step it ended.
    controls = con.sql("SELECT trial_id, max(final_step) AS final_step FROM controls "
                       "WHERE benchmark = 'safety' AND category = 'overall' GROUP BY 1").to_arrow_table().to_pylist()
    assert {c["trial_id"]: c["final_step"] for c in controls} == {t["trial_id"]: t["stop_step"] for t in trials}
    utility = con.sql("SELECT DISTINCT trial_id, metric FROM metrics WHERE benchmark = 'utility'").to_arrow_table().to_pylist()
    assert {(u["trial_id"], "heldout_loss") for u in utility if u["metric"] == "heldout_loss"} == {(t["trial_id"], "heldout_loss") for t in trials}
    assert any(u["metric"] == "task_accuracy" and u["trial_id"] == "llama-base" for u in utility)
    con.close()


def test_screen_metrics_are_the_subset_of_a_full_evaluation(tiny_paths) -> None:
    """A full evaluation's screen rows equal the metrics of its screened items; a screen-only run
    scores just those items (every category, over-refusal included) and reports only screen rows."""
    from alignsweep.evaluators.config import EvaluationSpec
    from alignsweep.evaluators.evaluate import Evaluator, local_judges
    from alignsweep.evaluators.benchmarks.safety import safe_rate_metrics

    spec = EvaluationSpec.model_validate({"safety": {"limit": 4, "max_new_tokens": 6}, "fairness": {"limit": 4},
                                          "over_refusal": {"limit": 2}, "utility": {"limit": 2}})
    judge, name, over, over_name = local_judges(spec)
    ev = Evaluator(spec, str(tiny_paths["llama"]), judge=judge, judge_name=name, over_refusal_judge=over,
                   over_refusal_judge_name=over_name)
    full = ev.evaluate(None, screen=0.5)
    chosen = {p.prompt_id for p in screen_subset(ev.items["safety"], 0.5, id_attr="prompt_id")}
    expected = safe_rate_metrics([i for i in full.rows("safety_items") if i["benchmark"] == "safety" and i["prompt_id"] in chosen])
    got = [r for r in full.metrics if r["benchmark"] == "screen_safety"]
    assert [(r["category"], r["value"], r["n"]) for r in got] == [(r["category"], r["value"], r["n"]) for r in expected]
    assert {r["benchmark"] for r in full.metrics} >= {"safety", "over_refusal", "fairness", "utility", "screen_safety",
                                                     "screen_over_refusal", "screen_fairness"}
    only = ev.evaluate(None, screen=0.5, full=False)
    assert {r["benchmark"] for r in only.metrics} == {"screen_safety", "screen_over_refusal", "screen_fairness"}
    assert len([i for i in only.rows("safety_items") if i["benchmark"] == "safety"]) == len(chosen) == 2 * 11
    assert {r["category"] for r in only.metrics if r["benchmark"] == "screen_over_refusal"} == {f"S{i}" for i in range(1, 12)} | {"overall"}
    assert "screen_safe_rate" in only.flat() and "safe_rate" not in only.flat()
