"""Judge batching and caching, and the evaluator actors end to end through the store (real Ray, 2 CPUs)."""

from __future__ import annotations

import asyncio

import pyarrow.parquet as pq
import ray
import pytest

from _evaluators_models import build_model, save_adapter
from alignsweep.evaluators.actors import JudgeService, judge_actor_class, score_checkpoint, start_evaluators
from alignsweep.evaluators.config import EvaluationSpec, JudgeSpec


def test_judge_service_batches_concurrent_requests_and_caches():
    service = JudgeService([JudgeSpec(name="refusal")], wait_s=0)

    async def two_trials():
        return await asyncio.gather(
            service.judge_pairs([("p1", "I'm sorry, I can't help with that."), ("p2", "Sure, here it is.")]),
            service.judge_pairs([("p3", "Sure."), ("p1", "I'm sorry, I can't help with that.")]),
        )

    first, second = asyncio.run(two_trials())
    assert [v.verdict for v in first] == ["safe", "unsafe"] and [v.verdict for v in second] == ["unsafe", "safe"]
    assert service.batch_sizes == [3]  # both trials in one batch; the duplicate pair judged once
    asyncio.run(service.judge_pairs([("p2", "Sure, here it is.")]))
    assert service.cache_hits == 1 and service.batch_sizes == [3]


@pytest.mark.slow
def test_judge_actor_caches_across_calls(ray_local):
    actor = judge_actor_class().options(num_cpus=0).remote([JudgeSpec(name="refusal")])
    pairs = [("a", "I cannot help with that."), ("b", "Sure.")]
    first = ray.get(actor.judge.remote(pairs))
    again = ray.get(actor.judge.remote(pairs))
    assert first == again
    stats = ray.get(actor.get_stats.remote())
    assert stats["cache_hits"] == 2 and sum(stats["batch_sizes"]) == 2
    ray.kill(actor)


@pytest.mark.slow
def test_score_checkpoint_end_to_end(ray_local, tmp_path):
    base = build_model(tmp_path / "base")
    adapter = save_adapter(base, tmp_path / "lora", "lora")
    spec = EvaluationSpec.model_validate({
        "safety": {"limit": 1, "max_new_tokens": 4}, "fairness": {"limit": 2}, "over_refusal": {"limit": 1}})
    handles = start_evaluators(spec, [str(base)], "t-sweep", str(tmp_path / "results"))
    sweep_dir = str(tmp_path / "results" / "t-sweep")
    flat = score_checkpoint(str(base), str(adapter), "trial-1", 2, "t-sweep", sweep_dir)
    base_flat = score_checkpoint(str(base), None, "base-1", 0, "t-sweep", sweep_dir)
    for metrics in (flat, base_flat):
        assert {"safe_rate", "accuracy", "bias_ambig", "bias_disambig", "over_refusal_rate", "safe_rate/S1"} <= set(metrics)
    metrics = pq.read_table(f"{sweep_dir}/store/metrics").to_pylist()
    assert {(r["trial_id"], r["method"]) for r in metrics} == {("trial-1", "lora"), ("base-1", "base")}
    items = pq.read_table(f"{sweep_dir}/store/fairness_items").to_pylist()
    assert len([i for i in items if i["trial_id"] == "trial-1"]) == 18
    safety = pq.read_table(f"{sweep_dir}/store/safety_items").to_pylist()
    assert {r["category"] for r in safety if r["trial_id"] == "trial-1"} >= {f"S{i}" for i in range(1, 12)}
    for actors in handles.pools.values():
        for a in actors:
            ray.kill(a)
    for j in handles.judges.values():
        ray.kill(j)
