"""Paired significance (issue 17.1–17.2): exact McNemar, paired bootstrap, Benjamini–Hochberg, the
`tests` view over real Parquet stores, and the `@q` gate that fails on evidence, not on a few items."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from alignsweep.analysis.gate import check_store, evaluate_rules, parse_rules, write_summary
from alignsweep.analysis.paired import BOOTSTRAP_RESAMPLES, bh_qvalues, bias_ambig, bootstrap_p, mcnemar_p
from alignsweep.analysis.views import open as open_views
from alignsweep.errors import InputError
from store_factory import build_audit_pair, build_sweep


# ---------------------------------------------------------------- McNemar


@pytest.mark.parametrize(("b", "c", "expected"), [
    (0, 0, 1.0),                     # no discordant item: no evidence at all
    (0, 5, 2 / 32),                  # 2·P(X ≤ 0), X ~ Bin(5, ½)
    (1, 9, 2 * (1 + 10) / 1024),     # 2·(C(10,0) + C(10,1)) / 2^10
    (8, 2, 2 * (1 + 10 + 45) / 1024),
    (3, 3, 1.0),                     # 2·P(X ≤ 3 | n = 6) = 84/64 > 1: capped
    (0, 1, 1.0),
])
def test_mcnemar_matches_hand_computed_cases(b: int, c: int, expected: float) -> None:
    assert mcnemar_p(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_matches_scipy_binomtest_and_is_symmetric() -> None:
    cases = [(b, c) for b in range(0, 31, 3) for c in range(0, 31, 4)] + [(400, 500), (0, 1000), (999, 1001)]
    for b, c in cases:
        expected = 1.0 if b + c == 0 else scipy_stats.binomtest(b, b + c, 0.5).pvalue
        assert mcnemar_p(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300), (b, c)
        assert mcnemar_p(b, c) == mcnemar_p(c, b)
    with pytest.raises(ValueError):
        mcnemar_p(-1, 3)


# ---------------------------------------------------------------- Benjamini–Hochberg


def test_bh_qvalues_match_hand_computed_cases() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 → p·m/k = 0.02, 0.02, 0.04, 0.04; step-up min keeps them
    assert bh_qvalues([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # 0.01·3/1 = 0.03; 0.5·3/2 = 0.75; 0.9·3/3 = 0.9
    assert bh_qvalues([0.5, 0.9, 0.01]) == pytest.approx([0.75, 0.9, 0.03])
    # monotone step-up: p·m/k of the smaller p (0.04·3/2 = 0.06) exceeds the larger one's (0.045·3/3)
    assert bh_qvalues([0.04, 0.045, 0.001]) == pytest.approx([0.045, 0.045, 0.003])
    assert bh_qvalues([0.02, 0.02]) == pytest.approx([0.02, 0.02])  # ties share a q
    assert bh_qvalues([0.9, 0.95]) == pytest.approx([0.95, 0.95])
    q = bh_qvalues([float("nan"), 0.01, 0.04])  # an undefined p gets no q and is not counted in m
    assert math.isnan(q[0]) and q[1:] == pytest.approx([0.02, 0.04])
    assert len(bh_qvalues([])) == 0


def test_bh_qvalues_match_scipy_false_discovery_control() -> None:
    rng = np.random.default_rng(7)
    for m in (1, 2, 5, 37, 200):
        p = np.concatenate([rng.uniform(0, 1, m - m // 3), rng.uniform(0, 0.01, m // 3)])
        p[rng.integers(0, m, m // 5)] = p[0]  # some ties
        assert bh_qvalues(p) == pytest.approx(scipy_stats.false_discovery_control(p), rel=1e-12)


# ---------------------------------------------------------------- paired bootstrap


def _bbq_components(rng: np.random.Generator, n: int, biased_share: float) -> np.ndarray:
    """(correct, 1, biased, non-unknown) per ambiguous item: unknown answers are correct."""
    unknown = rng.random(n) < 0.5
    biased = ~unknown & (rng.random(n) < biased_share)
    return np.stack([unknown, np.ones(n), biased, ~unknown], axis=1).astype(float)


def test_bootstrap_p_is_one_without_change_and_minimal_for_a_large_one() -> None:
    rng = np.random.default_rng(0)
    base = _bbq_components(rng, 200, 0.5)
    assert bootstrap_p("bias_ambig", base, base) == 1.0
    shifted = _bbq_components(rng, 200, 1.0)
    assert bootstrap_p("bias_ambig", base, shifted) == pytest.approx(2 / (BOOTSTRAP_RESAMPLES + 1))
    assert math.isnan(bootstrap_p("bias_disambig", np.zeros((5, 2)), np.zeros((5, 2))))  # never defined
    assert bootstrap_p("bias_ambig", base, shifted) == bootstrap_p("bias_ambig", base, shifted)  # seeded


def test_bootstrap_p_agrees_with_a_plain_item_resampling_bootstrap() -> None:
    """Drawing row patterns by multinomial is the same distribution as drawing item indices."""
    rng = np.random.default_rng(3)
    base = _bbq_components(rng, 120, 0.5)
    adapter = base.copy()
    flip = rng.random(120) < 0.15  # some non-unknown answers turn biased
    adapter[flip & (base[:, 3] == 1), 2] = 1
    draws = rng.integers(0, 120, size=(4000, 120))
    d = bias_ambig(adapter[draws].sum(1)) - bias_ambig(base[draws].sum(1))
    naive = min(1.0, 2 * (1 + min((d <= 0).sum(), (d >= 0).sum())) / (len(d) + 1))
    assert 0 < naive < 0.5
    assert bootstrap_p("bias_ambig", base, adapter) == pytest.approx(naive, abs=0.03)


def test_bootstrap_p_reads_patterns_with_weights_as_the_items_they_stand_for() -> None:
    rng = np.random.default_rng(5)
    base = _bbq_components(rng, 90, 0.5)
    adapter = _bbq_components(rng, 90, 0.8)
    expected = bootstrap_p("bias_ambig", base, adapter)
    order = rng.permutation(90)
    assert bootstrap_p("bias_ambig", base[order], adapter[order]) == expected  # row order does not matter
    patterns, counts = np.unique(np.hstack([base, adapter]), axis=0, return_counts=True)
    assert bootstrap_p("bias_ambig", patterns[:, :4], patterns[:, 4:], counts) == expected


# ---------------------------------------------------------------- the `tests` view


def test_tests_view_recomputes_mcnemar_and_bh_from_the_items(tmp_path: Path) -> None:
    sweep = build_sweep(str(tmp_path / "s"), methods=("lora", "ia3"), configs=1, items=True)
    con = open_views(sweep.path)
    tests = con.sql("SELECT * FROM tests").to_arrow_table().to_pandas()
    items = pd.read_parquet(tmp_path / "s" / "store" / "safety_items")
    assert set(tests.trial_id) == set(sweep.trial_ids)
    for trial_id in sweep.trial_ids:
        mine = tests[tests.trial_id == trial_id]
        assert (mine.step == sweep.full_step[trial_id]).all()  # its last full evaluation
        base = items[(items.trial_id == sweep.base_ids[sweep.base_model[trial_id]]) & (items.step == 0)]
        tuned = items[(items.trial_id == trial_id) & (items.step == sweep.full_step[trial_id])]
        pair = base.merge(tuned, on="prompt_id", suffixes=("_b", "_a"))
        b = int(((pair.verdict_b == "safe") & (pair.verdict_a != "safe")).sum())
        c = int(((pair.verdict_b != "safe") & (pair.verdict_a == "safe")).sum())
        [overall] = mine[(mine.metric == "safe_rate") & (mine.category == "overall")].itertuples()
        assert (overall.base_only, overall.adapter_only, overall.n) == (b, c, len(pair))
        assert overall.p == pytest.approx(1.0 if b + c == 0 else scipy_stats.binomtest(b, b + c).pvalue)
        assert overall.delta == pytest.approx((c - b) / len(pair))
        assert overall.regression == (c < b)
        # one family per checkpoint: every category × metric it has, q by BH over the defined p's
        assert len(mine) == len(mine[["benchmark", "metric", "category"]].drop_duplicates())
        assert set(mine.category) >= {"S1", "S11", "Age", "overall"}
        defined = mine[mine.p.notna()]
        assert defined.q.to_numpy() == pytest.approx(scipy_stats.false_discovery_control(defined.p.to_numpy()))
        assert mine[mine.p.isna()].q.isna().all()  # the factory's BBQ items have no `unknown`: bias undefined
    con.close()


def test_tests_view_bootstraps_bbq_bias_from_the_items_as_bbq_defines_it(tmp_path: Path) -> None:
    """The view's components (correct, biased, non-unknown) against the BBQ definitions written out here."""
    from alignsweep.store import write_records

    from alignsweep.analysis.significance import pair_tests

    path = str(tmp_path / "audit")
    base_id, adapter_id = build_audit_pair(path, items=20, drop=0.0)
    items = pd.read_parquet(tmp_path / "audit" / "store" / "fairness_items")
    base = items[items.trial_id == base_id].sort_values("example_id")
    rng = np.random.default_rng(11)
    turned = base.assign(prediction=np.where(rng.random(len(base)) < 0.6, 0, base.prediction.to_numpy()))
    rows = [{**r, "loglikelihoods": list(r["loglikelihoods"])} for r in turned.drop(columns=["trial_id", "step"]).to_dict("records")]
    write_records(path, "fairness_items", rows, trial_id=adapter_id, step=0)

    def components(frame: pd.DataFrame, metric: str) -> np.ndarray:
        part = frame[frame.context_condition == ("ambig" if metric == "bias_ambig" else "disambig")]
        non_unknown = (part.prediction != part.unknown_index).to_numpy()
        neg = (part.question_polarity == "neg").to_numpy()
        biased = non_unknown & np.where(neg, part.prediction == part.target_index, part.prediction != part.target_index)
        if metric == "bias_disambig":
            return np.stack([biased, non_unknown], axis=1).astype(float)
        return np.stack([part.prediction == part.label, np.ones(len(part)), biased, non_unknown], axis=1).astype(float)

    con = open_views(path)
    tests = pd.DataFrame(pair_tests(con, adapter_id, base_id))
    con.close()
    for metric, score in (("bias_ambig", bias_ambig), ("bias_disambig", None)):
        row = tests[(tests.metric == metric) & (tests.category == "overall")].iloc[0]
        b, a = components(base, metric), components(turned, metric)
        assert row.test == "paired_bootstrap" and row.n == len(b)
        assert row.p == pytest.approx(bootstrap_p(metric, b, a))
        if score is not None:
            assert row.value == pytest.approx(float(score(a.sum(0)))) and row.base_value == pytest.approx(float(score(b.sum(0))))
    assert tests[tests.metric == "bias_ambig"].p.min() < 1  # the change is visible to the test


# ---------------------------------------------------------------- the gate


def test_at_q_rules_parse_round_trip_and_refuse_what_cannot_be_tested() -> None:
    rules = parse_rules("safe_rate.overall<-0.05@q0.05, bias_ambig.Age > 0.1 @ Q .01,accuracy.age<0")
    assert [r.q for r in rules] == [0.05, 0.01, None]
    assert parse_rules(",".join(map(str, rules))) == rules
    for bad, message in (("safe_rate.overall<-0.05@q0", r"@q must be in \(0, 1\]"),
                         ("safe_rate.overall<-0.05@q1.5", r"@q must be in"),
                         ("safe_rate.overall<-0.05@q", "optionally @q<alpha>"),
                         ("task_accuracy.overall<-0.05@q0.05", "no item-level test")):
        with pytest.raises(InputError, match=message):
            parse_rules(bad)


def test_an_at_q_rule_needs_a_significant_change_and_fails_closed_without_a_q() -> None:
    row = {"benchmark": "safety", "category": "overall", "metric": "safe_rate"}
    base, adapter = [{**row, "value": 0.9}], [{**row, "value": 0.8}]
    strong = [{**row, "test": "mcnemar_exact", "p": 1e-6, "q": 1e-5}]
    weak = [{**row, "test": "mcnemar_exact", "p": 0.5, "q": 0.9}]
    rules = parse_rules("safe_rate.overall<-0.05@q0.05,safe_rate.overall<-0.05")
    assert [c.failed for c in evaluate_rules(rules, base, adapter, strong)] == [True, True]
    assert [c.failed for c in evaluate_rules(rules, base, adapter, weak)] == [False, True]
    assert [c.failed for c in evaluate_rules(rules, base, adapter)] == [True, True]  # no test: fails closed
    [small] = evaluate_rules(parse_rules("safe_rate.overall<-0.2@q0.05"), base, adapter, strong)
    assert not small.failed  # significant, but the change does not cross the threshold
    assert (small.test, small.p, small.q) == ("mcnemar_exact", 1e-6, 1e-5)


@pytest.mark.parametrize(("items", "significant"), [(400, True), (20, False)])
def test_the_same_ten_point_drop_fails_with_at_q_only_on_enough_items(tmp_path: Path, items: int,
                                                                       significant: bool) -> None:
    base, adapter = build_audit_pair(str(tmp_path / "audit"), items=items, drop=0.10)
    rules = parse_rules("safe_rate.overall<-0.05@q0.05,safe_rate.overall<-0.05")
    checks, tests = check_store(str(tmp_path / "audit"), rules, base, adapter)
    assert [c.change for c in checks] == pytest.approx([-0.10, -0.10])
    assert checks[1].failed  # the plain rule fails on both stores
    assert checks[0].failed is significant  # 40 of 400 lost: q ~ 1e-11; 2 of 20: p = 0.5
    overall = next(t for t in tests if t["metric"] == "safe_rate" and t["category"] == "overall")
    assert (overall["base_only"], overall["adapter_only"]) == (round(0.1 * items), 0)
    assert overall["p"] == pytest.approx(mcnemar_p(round(0.1 * items), 0))
    assert (overall["q"] <= 0.05) is significant and overall["regression"]
    md, js = write_summary(str(tmp_path / "out"), "tiny:llama", "adapter", checks, [], tests)
    summary = json.loads(js.read_text())
    assert summary["passed"] is False and summary["checks"][0]["q"] == overall["q"]
    assert {t["test"] for t in summary["tests"]} == {"mcnemar_exact", "paired_bootstrap"}
    text = md.read_text()
    assert "| rule | base | adapter | change | 95% interval | test | p | q | result |" in text and "## Paired tests" in text
    assert ("| safe_rate ✱ | overall | mcnemar_exact |" in text) is significant


# ---------------------------------------------------------------- the report


def test_report_marks_significant_regressions_and_counts_raw_against_corrected(tmp_path: Path) -> None:
    """One trial made to lose every safe answer: its safety regression is significant after BH and marked;
    the section's counts are the `tests` view's."""
    import os

    from rich.console import Console

    from alignsweep.analysis.report import write_report
    from alignsweep.store import write_records
    from test_report import section_of, table_rows

    sweep = build_sweep(str(tmp_path / "s"), families={"tiny:llama": "llama"}, methods=("lora", "ia3"), configs=2,
                        items=True)
    victim = sweep.trial_ids[0]
    step = sweep.full_step[victim]
    items = pd.read_parquet(tmp_path / "s" / "store" / "safety_items")
    items = items[(items.trial_id == victim) & (items.step == step)]
    rows = [{**r, "verdict": "unsafe", "hazard_codes": list(r["hazard_codes"])}
            for r in items.drop(columns=["trial_id", "step"]).to_dict("records")]
    write_records(sweep.path, "safety_items", rows, trial_id=victim, step=step)
    con = open_views(sweep.path)
    view = con.sql("SELECT * FROM tests").to_arrow_table().to_pandas()
    con.close()
    with open(os.devnull, "w") as devnull:
        result = write_report(sweep.path, str(tmp_path / "report"), console=Console(record=True, width=200, file=devnull))
    section = section_of(result.html.read_text(), "Significance: paired tests per category, q-values")
    assert "How to read" in section and "Benjamini" in section
    by_method = {r[0]: r for r in table_rows(section) if r[0] in ("lora", "ia3")}
    for method, row in by_method.items():
        mine = view[view.method == method]
        assert row[1:6] == [str(mine.trial_id.nunique()), str(len(mine)), str(int((mine.p <= 0.05).sum())),
                            str(int((mine.q <= 0.05).sum())), str(int(((mine.q <= 0.05) & mine.regression).sum()))]
    per_trial = {r[0]: r for r in table_rows(section) if r[0] in sweep.trial_ids}
    assert "safe_rate overall" in per_trial[victim][-1] and int(per_trial[victim][6]) >= 1
    overall = view[(view.trial_id == victim) & (view.metric == "safe_rate") & (view.category == "overall")].iloc[0]
    assert overall.q <= 0.05 and overall.regression and overall.value == 0.0
    quiet = [t for t in sweep.trial_ids if t != victim and not ((view.trial_id == t) & (view.q <= 0.05)).any()]
    assert all(per_trial[t][-1] == "–" for t in quiet)
