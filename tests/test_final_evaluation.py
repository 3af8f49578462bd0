"""Every trial ends with a full evaluation of its last checkpoint, stopped or not, and `trials` says
how and when each ended. Unit tests of the driver-side pieces, then a real grouped-ASHA sweep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from alignsweep.engine.final_eval import has_full_evaluation, needs_final, score_final
from alignsweep.store import write_records

PLAN = {"variant_id": "llama-lora-x", "sweep": "s", "base_model": "tiny:llama", "method": "lora"}
SCREEN_ROWS = [
    {"benchmark": "screen_safety", "category": "overall", "metric": "safe_rate", "value": 0.75, "n": 4},
    {"benchmark": "utility", "category": "overall", "metric": "heldout_loss", "value": 2.5, "n": 8},
]
FULL_ROW = {"benchmark": "safety", "category": "overall", "metric": "safe_rate", "value": 0.8, "n": 22}


def _store(sweep_dir: Path, rows: list[dict[str, Any]], step: int = 2) -> None:
    write_records(str(sweep_dir), "metrics", [{**r, "base_model": "tiny:llama", "method": "lora"} for r in rows],
                  trial_id=PLAN["variant_id"], step=step)


class _Checkpoint:
    """A Tune checkpoint as the driver sees it: a directory holding the trainer's `trial.json`."""

    def __init__(self, directory: Path, step: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "trial.json").write_text(json.dumps({"step": step}))
        self.path = str(directory)

    @contextmanager
    def as_directory(self) -> Iterator[str]:
        yield self.path


def test_a_screen_is_not_a_full_evaluation(tmp_path: Path) -> None:
    assert not has_full_evaluation(str(tmp_path), PLAN["variant_id"], 2)  # nothing stored
    _store(tmp_path, SCREEN_ROWS)
    assert not has_full_evaluation(str(tmp_path), PLAN["variant_id"], 2)
    _store(tmp_path, SCREEN_ROWS + [FULL_ROW])
    assert has_full_evaluation(str(tmp_path), PLAN["variant_id"], 2)


def test_only_a_trial_whose_last_evaluation_was_a_screen_needs_one() -> None:
    ckpt = object()
    assert needs_final(PLAN, {"step": 2, "full_evaluation": False}, ckpt)
    assert not needs_final(PLAN, {"step": 4, "full_evaluation": True}, ckpt)  # finished: scored in the trial
    assert not needs_final(PLAN, {"step": 2, "full_evaluation": False}, None)  # no checkpoint to score
    assert not needs_final(PLAN, {}, ckpt)  # never reported
    assert not needs_final(None, {"step": 2, "full_evaluation": False}, ckpt)


def test_final_scores_the_checkpoint_step_keeps_the_stored_rows_and_never_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alignsweep.evaluators import actors

    calls: list[dict[str, Any]] = []

    def fake_score(**kwargs: Any) -> dict[str, float]:
        calls.append(kwargs)
        write_records(kwargs["results_dir"], "metrics",
                      [{**r, "base_model": kwargs["base_model"], "method": kwargs["method"]}
                       for r in [FULL_ROW, *kwargs["extra_rows"]]], trial_id=kwargs["trial_id"], step=kwargs["step"])
        return {}

    monkeypatch.setattr(actors, "score_checkpoint", fake_score)
    sweep_dir = tmp_path / "sweep"
    _store(sweep_dir, SCREEN_ROWS)
    # The checkpoint's own step decides (a last result that says otherwise is not the adapter scored).
    ckpt = _Checkpoint(tmp_path / "checkpoint_000000", step=2)
    assert score_final(str(sweep_dir), PLAN, {"step": 99, "full_evaluation": False}, ckpt) == 2
    (call,) = calls
    assert (call["step"], call["full"], call["adapter_dir"], call["trial_id"]) == (2, True, ckpt.path, PLAN["variant_id"])
    assert call["extra_rows"] == SCREEN_ROWS  # what the stopper saw at that step, kept as it was
    assert has_full_evaluation(str(sweep_dir), PLAN["variant_id"], 2)
    # Again (a resume, the after-fit safety net): the store already has it, nothing is scored.
    assert score_final(str(sweep_dir), PLAN, {"step": 2, "full_evaluation": False}, ckpt) is None
    assert len(calls) == 1


# ---------------------------------------------------------------- a real sweep


@pytest.mark.slow
def test_grouped_asha_sweep_ends_every_trial_with_a_full_evaluation(ray_local: None, tmp_path: Path) -> None:
    import duckdb

    from alignsweep.engine.sweep import run_sweep
    from alignsweep.spec.config import validate_spec

    # One group (llama × LoRA) of two learning rates, run one after the other: at the first rung the
    # second (1e-6: barely trains) is behind the first (1e-2) and ASHA stops it. IA3 has a single
    # configuration, as bad as LoRA 1e-6: ranked with LoRA (group_by: []) it would be cut; alone in
    # its group it finishes. Screens at step 2 (the alignment stopper, X/Y too wide to act), so only
    # the final evaluation can give the stopped trial full rows at its last step.
    spec = validate_spec({
        "name": "final", "models": ["tiny:llama"],
        "methods": {"lora": {"r": [4], "learning_rates": [1e-2, 1e-6]}, "ia3": {"learning_rates": [1e-6]}},
        "training": {"max_steps": 4, "eval_interval": 2, "batch_size": 4, "max_examples": 32, "max_seq_length": 64,
                     "heldout_examples": 8, "control_eval": False},
        "scheduler": {"name": "alignment", "then": "asha", "grace_period": 1, "reduction_factor": 2,
                      "max_safe_rate_drop": 100, "max_bias_increase": 100, "screen_fraction": 0.5},
        "resources": {"max_concurrent": 1},
        "evaluation": {"safety": {"limit": 2, "max_new_tokens": 8}, "fairness": {"limit": 2},
                       "over_refusal": {"limit": 1}, "utility": {"limit": 2}},
    })
    outcome = run_sweep(spec, results=str(tmp_path))
    assert outcome.errors == 0
    glob = f"{outcome.sweep_dir}/store"
    trials = duckdb.sql(f"SELECT * FROM read_parquet('{glob}/trials/*.parquet', union_by_name=true) "
                        "WHERE method <> 'base'").fetch_arrow_table().to_pylist()
    ended = {(t["method"], t["learning_rate"]): (t["ended"], t["stop_step"], t["steps"]) for t in trials}
    assert ended == {("lora", 1e-2): ("finished", 4, 4), ("lora", 1e-6): ("stopped_loss", 2, 2),
                     ("ia3", 1e-6): ("finished", 4, 4)}
    stopped = next(t for t in trials if t["ended"] == "stopped_loss")
    assert stopped["stopped_early"] and stopped["stop_reason"] == (
        "asha: loss behind its rung among model=tiny:llama, method=lora")

    rows = duckdb.sql(f"SELECT trial_id, step, benchmark, category, metric, n FROM read_parquet('{glob}/metrics/*.parquet')"
                      ).fetch_arrow_table().to_pylist()
    for t in trials:
        at_last = {(r["benchmark"], r["category"]) for r in rows if r["trial_id"] == t["trial_id"]
                   and r["step"] == t["stop_step"]}
        for benchmark in ("safety", "fairness", "over_refusal"):
            assert (benchmark, "overall") in at_last, (t["trial_id"], benchmark, sorted(at_last))
    # The stopped trial's last step also keeps what was stored there before: its screen and held-out loss.
    mine = [r for r in rows if r["trial_id"] == stopped["trial_id"] and r["step"] == 2]
    assert {r["benchmark"] for r in mine} >= {"screen_safety", "screen_fairness", "utility"}
    assert [r["n"] for r in mine if r["metric"] == "heldout_loss"] == [8]
    assert not [r for r in rows if r["trial_id"] == stopped["trial_id"] and r["step"] > 2]

    # Tune saved the grouped scheduler's state with the experiment (what `resume` hands back).
    from ray import cloudpickle

    from alignsweep.engine.scheduler_state import SchedulerStateCallback
    from alignsweep.scheduling import build_scheduler

    (saved,) = Path(outcome.sweep_dir, "tune").glob("callback-states-*.pkl")
    states = [v for v in cloudpickle.loads(saved.read_bytes()).values() if isinstance(v, dict) and "scheduler" in v]
    restored = build_scheduler(spec.scheduler, 2)
    SchedulerStateCallback(restored).set_state(states[0])
    assert set(restored.inner.groups) == {("tiny:llama", "lora"), ("tiny:llama", "ia3")}
    assert restored.stop_reasons == {stopped["trial_id"]: stopped["stop_reason"]}
