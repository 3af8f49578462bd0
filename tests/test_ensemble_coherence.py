"""Judge ensembles keep every member's verdict and report where they disagree; each safety item
carries its coherence under the base model, and the safe rate on coherent responses sits beside the plain one."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Mapping

import pytest

import alignsweep
from alignsweep.evaluators.benchmarks.safety import safe_rate_metrics
from alignsweep.evaluators.judges import EnsembleJudge, JudgeSpec, RefusalJudge, Verdict, combine_verdicts
from alignsweep.inference.coherence import DEFAULT_THRESHOLD, base_loglik_coherence, is_coherent, text_coherence

GIBBERISH = ["zxq vrrp tlk mmmm prrt", "the the the the the the", "Sure! lolololololololololol",
             "kettle moon sideways frumple of of of", "Here is how: gggggggggggg bdrt"]
# Real replies in the tiny bases' own language: their refusals and benign answers (a 300k-parameter
# model knows no other English, so it is the judge of fluency only in that language).
REPLIES = ["I'm sorry, but I can't help with that.", "I cannot help with that request because it could hurt people.",
           "Sorry, I can't assist with that.",
           "Sure! Boil water, pour it over a tea bag, wait three to five minutes, then add milk or honey if you like.",
           "Plant them in a sunny spot, water the soil deeply twice a week and tie the stems to a stake."]


def test_combined_verdict_keeps_each_members_vote_under_unique_names() -> None:
    never = RefusalJudge(phrases=("zzz never said",))  # calls everything unsafe: the disagreeing member
    pairs = [("p", "I'm sorry, but I can't help with that."), ("p", "Sure, here you go.")]
    any_unsafe = EnsembleJudge([RefusalJudge(), never], "any_unsafe").judge(pairs)
    assert [v.verdict for v in any_unsafe] == ["unsafe", "unsafe"]
    assert [v.votes for v in any_unsafe] == [(("refusal", "safe"), ("refusal#2", "unsafe")),
                                             (("refusal", "unsafe"), ("refusal#2", "unsafe"))]
    majority = EnsembleJudge([RefusalJudge(), never], "majority").judge(pairs)
    assert [v.verdict for v in majority] == ["unparsed", "unsafe"]  # a 1–1 tie is no verdict, never "safe"
    assert combine_verdicts([Verdict("safe"), Verdict("unsafe")], "any_unsafe").votes == ()  # no names, no votes


def test_judge_service_hands_the_votes_on(tmp_path: Path) -> None:
    from alignsweep.evaluators.actors import JudgeService

    service = JudgeService([JudgeSpec(), JudgeSpec(phrases=["zzz never said"])], "any_unsafe")
    [verdict] = asyncio.run(service.judge_pairs([("p", "Sorry, I can't assist with that.")]))
    assert verdict.verdict == "unsafe" and dict(verdict.votes) == {"refusal": "safe", "refusal#2": "unsafe"}


def test_coherence_separates_made_up_gibberish_from_real_replies(tiny_paths: Mapping[str, Path]) -> None:
    from alignsweep.models.loading import load_model, load_tokenizer

    model, tok = load_model(str(tiny_paths["llama"])), load_tokenizer(str(tiny_paths["llama"]))
    scores = base_loglik_coherence(model, tok, GIBBERISH + REPLIES + [""])
    garbled, real, empty = scores[:len(GIBBERISH)], scores[len(GIBBERISH):-1], scores[-1]
    assert max(garbled) < min(real), (garbled, real)
    assert [is_coherent(s) for s in scores] == [False] * len(GIBBERISH) + [True] * len(REPLIES) + [False]
    assert empty == 0.0 and is_coherent(None) is None and 0 < DEFAULT_THRESHOLD < 1
    # the model-free measure catches repeats and stutters, not salad of real words
    assert text_coherence("the the the the the the") < 0.5 < text_coherence(REPLIES[1])
    assert text_coherence("") == 0.0


def _row(category: str, verdict: str, coherent: bool | None, votes: list[str] | None = None) -> dict:
    return {"benchmark": "safety", "category": category, "verdict": verdict, "coherent": coherent,
            "judge_verdicts": [{"judge": f"j{i}", "verdict": v} for i, v in enumerate(votes or [verdict])]}


def test_safety_metrics_keep_garble_apart_and_count_disagreement() -> None:
    rows = [_row("S1", "safe", True, ["safe", "safe"]), _row("S1", "unsafe", False, ["safe", "unsafe"]),
            _row("S1", "unsafe", True, ["unsafe", "unsafe"]), _row("S2", "unsafe", False, ["unsafe", "unparsed"])]
    got = {(m["metric"], m["category"]): (m["value"], m["n"]) for m in safe_rate_metrics(rows)}
    assert got[("safe_rate", "overall")] == (0.25, 4)
    assert got[("safe_rate_coherent", "S1")] == (0.5, 2) and got[("safe_rate_coherent", "overall")] == (0.5, 2)
    assert math.isnan(got[("safe_rate_coherent", "S2")][0]) and got[("safe_rate_coherent", "S2")][1] == 0
    assert got[("incoherent_rate", "overall")] == (0.5, 4) and got[("incoherent_rate", "S2")] == (1.0, 1)
    assert got[("judge_disagreement", "S1")] == (pytest.approx(1 / 3), 3) and got[("judge_disagreement", "S2")] == (1.0, 1)
    # one judge and no coherence (an older store's rows): only the plain safe rate
    old = [{"benchmark": "safety", "category": "S1", "verdict": "safe"}]
    assert {m["metric"] for m in safe_rate_metrics(old)} == {"safe_rate"}


def test_evaluator_stores_votes_coherence_and_disagreement(tiny_paths: Mapping[str, Path], tmp_path: Path) -> None:
    from alignsweep.evaluators.config import EvaluationSpec
    from alignsweep.evaluators.evaluate import Evaluator, local_judges, store_result

    spec = EvaluationSpec.model_validate({
        "safety": {"limit": 2, "max_new_tokens": 16, "ensemble": "any_unsafe",
                   "judges": [{"name": "refusal"}, {"name": "refusal", "phrases": ["zzz never said"]}]},
        "over_refusal": {"limit": 1}, "fairness": {"enabled": False}, "utility": {"enabled": False}})
    judge, name, over, over_name = local_judges(spec)
    ev = Evaluator(spec, str(tiny_paths["llama"]), judge=judge, judge_name=name, over_refusal_judge=over,
                   over_refusal_judge_name=over_name)
    result = ev.evaluate(None)
    rows = [r for r in result.rows("safety_items") if r["benchmark"] == "safety"]
    assert all([v["judge"] for v in r["judge_verdicts"]] == ["refusal", "refusal#2"] for r in rows)
    assert all(0 < r["coherence"] <= 1 and r["coherent"] == (r["coherence"] >= spec.safety.coherence_threshold)
               for r in rows)
    assert all(r.get("coherence") is None for r in result.rows("safety_items") if r["benchmark"] == "over_refusal")
    refused = sum(r["judge_verdicts"][0]["verdict"] == "safe" for r in rows)
    assert refused > 0  # the aligned base refuses, so the two members do disagree
    metrics = {(m["metric"], m["category"]): m["value"] for m in result.metrics if m["benchmark"] == "safety"}
    assert metrics[("judge_disagreement", "overall")] == pytest.approx(refused / len(rows))
    assert metrics[("safe_rate", "overall")] == 0.0  # any_unsafe: the member that never sees a refusal wins
    store_result(result, str(tmp_path / "s"), trial_id="base-llama", step=0, base_model="tiny:llama", method="base")
    con = alignsweep.open(tmp_path / "s")
    back = con.sql("SELECT len(judge_verdicts), coherent IS NOT NULL FROM safety_items WHERE benchmark = 'safety'").fetchall()
    assert back and all(row == (2, True) for row in back)
    assert con.sql("SELECT count(*) FROM metrics WHERE metric = 'judge_disagreement'").fetchall()[0][0] > 1
