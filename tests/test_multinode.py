"""A real multi-node Ray cluster on this machine (`ray.cluster_utils.Cluster`, logical GPUs): trials
spread over the trainer nodes, judges sit alone on their own GPUs, evaluators share a GPU at 0.5, and
the driver joins the running cluster by address. Nodes share one IP, so custom resources pin them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from alignsweep.spec.config import validate_spec
from alignsweep.models.loading import LoadOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes = {
        "trainer-a": c.add_node(num_cpus=1, num_gpus=1, resources={"trainer": 1}),
        "trainer-b": c.add_node(num_cpus=1, num_gpus=1, resources={"trainer": 1}),
        "judges": c.add_node(num_cpus=1, num_gpus=2, resources={"judge": 2}),
        "evaluators": c.add_node(num_cpus=1, num_gpus=1, resources={"evaluator": 1}),
    }
    c.wait_for_nodes()
    c.node_ids = {name: n.node_id for name, n in nodes.items()}  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        c.shutdown()


EVALUATION = {
    "safety": {"limit": 1, "max_new_tokens": 8, "judge_resources": {"gpu": 1, "custom": {"judge": 1}}},
    "fairness": {"limit": 2},
    # a judge of its own for over-refusal (the same judge as safety's would share its actor)
    "over_refusal": {"limit": 1, "judge": {"name": "refusal", "phrases": ["I can't", "I cannot"]}},
    "evaluators": {"actors_per_model": 2, "resources": {"gpu": 0.5, "custom": {"evaluator": 0.5}}},
}


def test_judges_alone_on_their_gpus_and_evaluators_share_one_at_half(cluster: object) -> None:
    import ray

    from alignsweep.evaluators.actors import start_evaluators
    from alignsweep.evaluators.config import EvaluationSpec

    ray.init(address=cluster.address, namespace="alignsweep", log_to_driver=False)  # type: ignore[attr-defined]
    try:
        handles = start_evaluators(EvaluationSpec.model_validate(EVALUATION), {"tiny:llama": LoadOptions()}, "place", "unused")
        assert handles.judges["safety"] != handles.judges["over_refusal"]
        judges = ray.get([j.where.remote() for j in handles.judges.values()])
        evaluators = ray.get([a.where.remote() for a in handles.pools["tiny:llama"]])
        ids = cluster.node_ids  # type: ignore[attr-defined]
        assert {j["node_id"] for j in judges} == {ids["judges"]}
        assert all(len(j["gpu_ids"]) == 1 and j["resources"]["GPU"] == 1 for j in judges)
        assert judges[0]["gpu_ids"] != judges[1]["gpu_ids"]  # each judge alone on its GPU
        assert {e["node_id"] for e in evaluators} == {ids["evaluators"]}
        assert all(e["resources"]["GPU"] == 0.5 for e in evaluators)
        assert evaluators[0]["gpu_ids"] == evaluators[1]["gpu_ids"]  # two halves of one GPU
        for actor in [*handles.judges.values(), *handles.pools["tiny:llama"]]:
            ray.kill(actor)
    finally:
        ray.shutdown()


def test_sweep_joins_the_cluster_by_address_and_spreads_trials(cluster: object, tmp_path: Path) -> None:
    import ray

    from alignsweep.engine.sweep import run_sweep

    assert not ray.is_initialized()
    spec = validate_spec({
        "name": "multi", "seed": 0, "models": ["tiny:llama"],
        "methods": {"lora": {"r": [2]}},
        "training": {"max_steps": 2, "eval_interval": 2, "batch_size": 2, "max_examples": 8,
                     "max_seq_length": 48, "learning_rates": [1e-2, 5e-3]},
        "scheduler": {"name": "none"},
        "resources": {"cpu": 1, "gpu": 1, "custom": {"trainer": 1}},
    })
    outcome = run_sweep(spec, results=str(tmp_path), address=cluster.address)  # type: ignore[attr-defined]
    assert outcome.errors == 0 and len(outcome.rows) == 2
    ids = cluster.node_ids  # type: ignore[attr-defined]
    assert {r["node_id"] for r in outcome.rows} == {ids["trainer-a"], ids["trainer-b"]}
    # checkpoints landed in the shared results directory, whichever node wrote them
    assert len(list(Path(outcome.sweep_dir, "tune").glob("*/checkpoint_*/adapter_model.safetensors"))) == 2
    assert not ray.is_initialized()  # disconnected, and the cluster is still up for others
    assert len([n for n in cluster.list_all_nodes() if n.remaining_processes_alive()]) == 5  # type: ignore[attr-defined]
