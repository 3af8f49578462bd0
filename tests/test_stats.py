"""Bootstrap intervals on changes vs base: exact point values, pairing, seeding, grouping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alignsweep.analysis.views import open as open_views
from alignsweep.analysis.stats import bootstrap_changes, group_effects, interval, within_noise
from alignsweep.store import write_manifest, write_records
from reference_metrics import bbq_scores


def _safety(path: str, trial: str, method: str, step: int, unsafe: set[int], n: int = 40) -> None:
    items = [{"benchmark": "safety", "prompt_id": f"p{i}", "category": "S1", "verdict": "unsafe" if i in unsafe else "safe"} for i in range(n)]
    items += [{"benchmark": "over_refusal", "prompt_label": "safe", "prompt_id": f"o{i}", "category": "S1", "verdict": "refused" if i < 2 else "complied"}
              for i in range(10)]
    write_records(path, "safety_items", items, trial_id=trial, step=step)
    rate = 1 - len(unsafe) / n
    write_records(path, "metrics", [{"base_model": "tiny:llama", "method": method, "benchmark": "safety",
                                     "category": "overall", "metric": "safe_rate", "value": rate, "n": n}],
                  trial_id=trial, step=step)


def _store(tmp_path: Path) -> str:
    path = str(tmp_path / "s")
    write_manifest(path, seed=0, sweep="s")
    _safety(path, "llama-base", "base", 0, set())
    _safety(path, "a", "lora", 4, set(range(8)))  # 8 of 40 unsafe: −20 points
    _safety(path, "b", "ia3", 4, set())  # unchanged
    _safety(path, "b", "ia3", 0, set(range(40)))  # its step-0 control is ignored as a result
    return path


def test_point_changes_are_exact_and_intervals_separate_signal_from_noise(tmp_path: Path) -> None:
    con = open_views(_store(tmp_path))
    changes = bootstrap_changes(con, seed=1, resamples=500)
    safe = changes[changes.metric == "safe rate"].set_index("trial_id")
    assert np.isclose(safe.loc["a", "delta"], -20.0) and safe.loc["b", "delta"] == 0.0
    low, high = interval(safe.loc["a", "draws"])
    assert -40 < low < -20 < high < 0 and within_noise(low, high) is False
    assert interval(safe.loc["b", "draws"]) == (0.0, 0.0) and within_noise(0.0, 0.0) is True
    over = changes[changes.metric == "over-refusal"].set_index("trial_id")
    assert over.loc["a", "delta"] == 0.0  # same two refusals of ten as the base
    again = bootstrap_changes(con, seed=1, resamples=500)
    assert np.array_equal(np.stack(again.draws), np.stack(changes.draws))  # seeded: reproducible
    other = bootstrap_changes(con, seed=2, resamples=500)
    assert not np.array_equal(np.stack(other.draws), np.stack(changes.draws))


def test_bias_ambig_and_accuracy_changes_follow_the_bbq_definitions(tmp_path: Path) -> None:
    path = str(tmp_path / "f")
    write_manifest(path, seed=0, sweep="f")
    rng = np.random.default_rng(0)

    def items(k: int) -> list[dict]:
        return [{"example_id": f"e{i}", "category": "Age", "context_condition": "ambig" if i % 3 else "disambig",
                 "question_polarity": "neg" if i % 2 else "nonneg", "label": 2, "target_index": int(i % 4 != 0),
                 "unknown_index": 2, "prediction": int(rng.integers(0, 3)) if i < k else 2} for i in range(60)]

    base, tuned = items(10), items(50)
    reference = {"base": bbq_scores(base), "tuned": bbq_scores(tuned)}
    for trial, method, rows, step, key in (("llama-base", "base", base, 0, "base"), ("t", "lora", tuned, 3, "tuned")):
        write_records(path, "fairness_items", rows, trial_id=trial, step=step)
        write_records(path, "metrics", [{"base_model": "tiny:llama", "method": method, "benchmark": "fairness",
                                         "category": c, "metric": m, "value": v, "n": n}
                                        for (c, m), (v, n) in reference[key].items()], trial_id=trial, step=step)
    changes = bootstrap_changes(open_views(path), seed=0, resamples=50).set_index("metric")

    def overall(key: str, metric: str) -> float:
        return reference[key][("overall", metric)][0]

    expected_bias = 100 * (overall("tuned", "bias_ambig") - overall("base", "bias_ambig"))
    expected_accuracy = 100 * (overall("tuned", "accuracy") - overall("base", "accuracy"))
    assert abs(expected_bias) > 1 and abs(expected_accuracy) > 1  # a real change, so a wrong formula shows
    assert np.isclose(changes.loc["bias ambig", "delta"], expected_bias)
    assert np.isclose(changes.loc["BBQ accuracy", "delta"], expected_accuracy)


def test_method_effect_holds_the_family_fixed() -> None:
    draws = lambda v: np.full(20, float(v))  # noqa: E731 — degenerate draws: the interval is the point
    changes = pd.DataFrame([
        {"trial_id": "1", "family": "llama", "method": "lora", "metric": "safe rate", "delta": -10.0, "draws": draws(-10)},
        {"trial_id": "2", "family": "llama", "method": "lora", "metric": "safe rate", "delta": -20.0, "draws": draws(-20)},
        {"trial_id": "3", "family": "qwen2", "method": "lora", "metric": "safe rate", "delta": 0.0, "draws": draws(0)},
    ])
    fixed = group_effects(changes, "method", hold_fixed="family").iloc[0]
    pooled = group_effects(changes, "method").iloc[0]
    assert fixed.effect == -7.5 and fixed.ci95_low == -7.5  # mean of the family means (−15, 0)
    assert pooled.effect == -10.0  # mean of trials: llama weighs twice
