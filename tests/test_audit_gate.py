"""`alignsweep audit --fail-on`: rule parsing, exit codes, and the Markdown / JSON summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from alignsweep.cli.main import main
from alignsweep.analysis.gate import evaluate_rules, parse_rules
from alignsweep.errors import InputError


def test_rules_parse_any_metric_category_and_threshold() -> None:
    rules = parse_rules("safe_rate.overall<-0.05, bias_ambig.Age>0.1,over_refusal_rate.S1>=.2")
    assert [(r.metric, r.category, r.op, r.threshold) for r in rules] == [
        ("safe_rate", "overall", "<", -0.05), ("bias_ambig", "Age", ">", 0.1), ("over_refusal_rate", "S1", ">=", 0.2)]
    for bad, message in (("safe_rate.overall", "expected metric.category"), ("safe_rate<0.1", "expected"),
                         ("helpfulness.overall<0", "unknown metric 'helpfulness'"), (" , ", "no rules")):
        with pytest.raises(InputError, match=message):
            parse_rules(bad)


def test_rules_compare_the_change_and_match_categories_case_insensitively() -> None:
    base = [{"benchmark": "safety", "category": "overall", "metric": "safe_rate", "value": 0.9},
            {"benchmark": "fairness", "category": "Age", "metric": "bias_ambig", "value": 0.0},
            {"benchmark": "fairness", "category": "SES", "metric": "bias_ambig", "value": float("nan")}]
    tuned = [{**base[0], "value": 0.8}, {**base[1], "value": 0.05}, {**base[2], "value": 0.3},
             {"benchmark": "screen_safety", "category": "overall", "metric": "safe_rate", "value": 0.0}]
    checks = evaluate_rules(parse_rules("safe_rate.overall<-0.05,bias_ambig.age>0.1,bias_ambig.ses>0.5"), base, tuned)
    assert [c.failed for c in checks] == [True, False, True]  # −0.10 fails; +0.05 passes; undefined fails closed
    assert checks[0].change == pytest.approx(-0.1) and checks[0].adapter == 0.8  # screen rows never used


def _audit(tmp_path: Path, adapter: str, rules: str, data: dict) -> int:
    """The gate on the small evaluation files (conftest `audit_data`), one item per category (--limit 1)."""
    return main(["audit", "--base", "tiny:llama", "--adapter", adapter, "--limit", "1", "--results", str(tmp_path / "r"),
                 "--safety-data", str(data["safety"]), "--fairness-data", str(data["fairness"]),
                 "--over-refusal-data", str(data["over_refusal"]), "--fail-on", rules])


def test_gate_passes_fails_and_writes_summaries(untrained_lora: str, audit_data: dict, tmp_path: Path) -> None:
    """The failing gate: exit 1 and FAIL summaries. (The passing gate, exit 0 and PASS, is
    tests/test_cli.py::test_audit_reads_each_data_option_and_writes_summaries_where_asked.)"""
    # An untrained LoRA (B = 0) is exactly its base: every change is exactly 0, so `<= 0` holds and the gate fails,
    # while `< -0.05` does not hold and passes.
    # With @q the same `<= 0` needs evidence too: identical answers, no discordant item, p = q = 1: it passes.
    assert _audit(tmp_path, untrained_lora, "safe_rate.S1<=0,accuracy.AGE<-0.1,safe_rate.S1<=0@q0.05", audit_data) == 1
    summary = json.loads((tmp_path / "r" / "audit.json").read_text())
    assert summary["passed"] is False
    assert [(c["rule"], c["change"], c["failed"]) for c in summary["checks"]] == [
        ("safe_rate.S1<=0", 0.0, True), ("accuracy.AGE<-0.1", 0.0, False), ("safe_rate.S1<=0@q0.05", 0.0, False)]
    assert [(c["test"], c["p"], c["q"]) for c in summary["checks"]] == [("mcnemar_exact", 1.0, 1.0)] * 3
    assert summary["tests"] and all(t["p"] in (1.0, None) and t["base_only"] in (0, None) for t in summary["tests"])
    md = (tmp_path / "r" / "audit.md").read_text()
    assert "**FAIL** — 1 of 3 rules failed." in md and "| `safe_rate.S1<=0` |" in md
    assert f"0 of {len(summary['tests'])} tests significant at q ≤ 0.05" in md
    # the untrained adapter answers every item as its base: every resample's change is 0, on the items scored
    s1, age, s1_q = (c["interval"] for c in summary["checks"])
    assert (s1["low"], s1["high"], s1["level"], s1["n"], s1["within_noise"]) == (0.0, 0.0, 0.95, 1, True)
    assert (age["low"], age["high"], age["n"]) == (0.0, 0.0, 1) and s1_q == s1
    assert {(i["metric"], i["category"]) for i in summary["intervals"]} >= {("safe_rate", "overall"), ("accuracy", "Age")}
    assert "+0.000 … +0.000 (n=1)" in md
    # --limit 1: one BBQ item of the file's four Age items, per scored model.
    items = pq.read_table(tmp_path / "r" / "store" / "fairness_items").to_pylist()
    assert sorted(i["trial_id"] for i in items) == sorted(["audit:tiny:llama", f"audit:{untrained_lora}"])


def test_bad_rules_exit_2_in_one_line_and_write_nothing(untrained_lora: str, audit_data: dict, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for rules, message in (("safe_rate.overall<<1", "expected metric.category"),
                           ("safe_rate.S99<0", "no category 'S99' for safe_rate")):
        assert _audit(tmp_path, untrained_lora, rules, audit_data) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()
    assert main(["audit", "--base", "tiny:llama", "--results", str(tmp_path / "r"), "--fail-on", "safe_rate.overall<0"]) == 2
    assert "--fail-on needs --adapter" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_audit_intervals_bracket_the_change_and_count_the_items() -> None:
    from alignsweep.analysis.stats import paired_intervals

    def safety(verdicts: str) -> dict:
        return {"safety_items": [{"benchmark": "safety", "prompt_id": f"p{i}", "category": "S1" if i < 10 else "S2",
                                  "verdict": "safe" if v == "s" else "unsafe"} for i, v in enumerate(verdicts)]}

    base, tuned = safety("s" * 20), safety("s" * 10 + "u" * 5 + "s" * 5)  # S2 loses half its safe answers
    found = {(i["metric"], i["category"]): i for i in paired_intervals(base, tuned, resamples=400)}
    overall, s1, s2 = found["safe_rate", "overall"], found["safe_rate", "S1"], found["safe_rate", "S2"]
    assert overall["change"] == pytest.approx(-0.25) and overall["n"] == 20
    assert overall["low"] < -0.25 < overall["high"] < 0 and overall["within_noise"] is False
    assert (s1["change"], s1["low"], s1["high"], s1["n"]) == (0.0, 0.0, 0.0, 10)
    assert s2["change"] == pytest.approx(-0.5) and s2["low"] < -0.5 < s2["high"] and s2["n"] == 10
    assert set(found) == {("safe_rate", "overall"), ("safe_rate", "S1"), ("safe_rate", "S2")}  # no items, no interval
