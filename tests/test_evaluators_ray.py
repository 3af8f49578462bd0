"""Judge batching and caching, and the evaluator actors end to end through the store (real Ray, 2 CPUs)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
import ray
import pytest

from _evaluators_models import build_model, save_adapter
from alignsweep.evaluators.actors import JudgeService, judge_actor_class, score_checkpoint, start_evaluators
from alignsweep.evaluators.config import EvaluationSpec
from alignsweep.evaluators.judges import JudgeSpec
from alignsweep.models.loading import LoadOptions


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
    handles = start_evaluators(spec, {str(base): LoadOptions()}, "t-sweep", str(tmp_path / "results"))
    sweep_dir = str(tmp_path / "results" / "t-sweep")
    flat = score_checkpoint(str(base), str(adapter), "trial-1", 2, "t-sweep", sweep_dir, method="lora")
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


@pytest.mark.slow
def test_shared_evaluator_actor_holds_every_base_and_scores_like_a_pool_per_base(ray_local, tmp_path):
    """`evaluators.shared_actors: 1`: one process holds both bases, one judge actor serves both roles,
    and each checkpoint scores exactly as on its base's own pool; rows name the right base."""
    bases = [build_model(tmp_path / "llama", "llama"), build_model(tmp_path / "qwen2", "qwen2", seed=1)]
    adapters = {str(b): save_adapter(b, tmp_path / f"{b.name}-lora", "lora") for b in bases}
    common = {"safety": {"limit": 1, "max_new_tokens": 4}, "fairness": {"limit": 2}, "over_refusal": {"limit": 1}}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for layout, pool in (("per-base", {}), ("shared", {"shared_actors": 1})):
        spec = EvaluationSpec.model_validate({**common, "evaluators": pool})
        sweep, sweep_dir = f"t-{layout}", str(tmp_path / layout / f"t-{layout}")
        handles = start_evaluators(spec, {str(b): LoadOptions() for b in bases}, sweep, sweep_dir)
        try:
            scores[layout] = {base: score_checkpoint(base, adapter, f"{Path(base).name}-trial", 1, sweep, sweep_dir,
                                                     method="lora")
                              for base, adapter in adapters.items()}
            where = {base: ray.get(actors[0].where.remote()) for base, actors in handles.pools.items()}
            judges = dict(handles.judges)
        finally:
            for actor in {a for actors in handles.pools.values() for a in actors} | set(handles.judges.values()):
                ray.kill(actor)
        stored = pq.read_table(f"{sweep_dir}/store/metrics").to_pylist()
        assert {(r["trial_id"], r["base_model"]) for r in stored} == {
            (f"{Path(b).name}-trial", b) for b in adapters}
        pids = {w["pid"] for w in where.values()}
        if layout == "shared":
            assert len(pids) == 1 and all(w["base_models"] == sorted(adapters) for w in where.values())
        else:
            assert len(pids) == 2 and all(w["base_models"] == [b] for b, w in where.items())
        assert judges["safety"] == judges["over_refusal"]  # the same single `refusal` judge: one actor
    nan_safe = {layout: {b: {k: ("nan" if v != v else v) for k, v in flat.items()} for b, flat in per_base.items()}
                for layout, per_base in scores.items()}  # NaN (an empty denominator) never equals itself
    assert nan_safe["shared"] == nan_safe["per-base"]


def test_evaluator_layouts_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        EvaluationSpec.model_validate({"evaluators": {"actors_per_model": 2, "shared_actors": 2}})
