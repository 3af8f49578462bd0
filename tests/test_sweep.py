"""A real Ray Tune sweep on a local Ray instance, end to end: trials, checkpoints, store, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import torch

from alignsweep.spec.config import validate_spec
from alignsweep.engine.sweep import run_sweep



def small_spec(name: str, evaluation: dict[str, Any] | None = None) -> Any:
    return validate_spec(
        {
            "name": name,
            "seed": 0,
            "models": ["tiny:llama"],
            "methods": {"lora": {"r": [4]}, "prompt_tuning": {"num_virtual_tokens": [4]}},
            "training": {"max_steps": 4, "eval_interval": 2, "batch_size": 4, "max_examples": 32,
                         "max_seq_length": 64, "learning_rates": [1e-2]},
            "scheduler": {"name": "none"},
            "evaluation": evaluation,
        }
    )


def trials_table(sweep_dir: str) -> list[dict[str, Any]]:
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{sweep_dir}/store/trials/*.parquet', union_by_name=true) ORDER BY trial_id"
    ).fetch_arrow_table().to_pylist()


@pytest.mark.slow
def test_sweep_runs_end_to_end_and_adapters_load_with_plain_peft(ray_local: None, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from alignsweep.trainables.plan import TrialPlan
    from alignsweep.trainables.trainer import PeftTrainer

    outcome = run_sweep(small_spec("e2e"), results=str(tmp_path))
    assert outcome.trials == 2 and outcome.errors == 0
    rows = trials_table(outcome.sweep_dir)
    assert [r["method"] for r in rows] == ["lora", "prompt_tuning"]
    assert all(r["status"] == "TERMINATED" and r["steps"] == 4 and not r["stopped_early"] for r in rows)
    assert all(r["train_loss"] > 0 for r in rows)
    manifest = json.loads((Path(outcome.sweep_dir) / "manifest.json").read_text())
    assert manifest["finished"] and manifest["seed"] == 0

    for row in rows:
        ckpt = Path(row["checkpoint"])
        assert (ckpt / "adapter_model.safetensors").is_file(), ckpt
        meta = json.loads((ckpt / "trial.json").read_text())
        assert meta["step"] == 4
        base_path = json.loads((ckpt / "adapter_config.json").read_text())["base_model_name_or_path"]
        plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), str(ckpt)).eval()
        # the trial's own model, restored from the same checkpoint
        plan = TrialPlan.from_config(json.loads((ckpt.parent / "params.json").read_text())["plan"])
        trainer = PeftTrainer(plan).setup()
        trainer.restore(ckpt)
        trainer.model.eval()
        batch = trainer.batch_for_step(0)
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            torch.testing.assert_close(plain(**inputs).logits, trainer.model(**inputs).logits, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_two_seeded_runs_give_identical_losses_and_a_rerun_redoes_nothing(ray_local: None, tmp_path: Path) -> None:
    first = run_sweep(small_spec("det"), results=str(tmp_path / "a"))
    second = run_sweep(small_spec("det"), results=str(tmp_path / "b"))
    losses = lambda out: {r["trial_id"]: r["train_loss"] for r in trials_table(out.sweep_dir)}  # noqa: E731
    assert losses(first) == losses(second)

    checkpoints = sorted(p for p in Path(first.sweep_dir, "tune").rglob("checkpoint_*"))
    mtimes = {p: p.stat().st_mtime for p in checkpoints}
    again = run_sweep(small_spec("det"), results=str(tmp_path / "a"))
    assert again.errors == 0
    assert sorted(Path(first.sweep_dir, "tune").rglob("checkpoint_*")) == checkpoints
    assert {p: p.stat().st_mtime for p in checkpoints} == mtimes
    assert losses(again) == losses(first)


def test_results_dir_of_another_spec_is_refused_before_ray_starts(tmp_path: Path) -> None:
    from alignsweep.engine.sweep import prepare_sweep_dir, sweep_dir_for
    from alignsweep.errors import InputError

    spec = small_spec("owned")
    sweep_dir = sweep_dir_for(spec, str(tmp_path))
    assert prepare_sweep_dir(spec, sweep_dir) is False
    changed = validate_spec({**spec.model_dump(mode="json"), "seed": 1})
    with pytest.raises(InputError, match="holds a different spec"):
        prepare_sweep_dir(changed, sweep_dir)
    stranger = tmp_path / "other"
    (stranger / "owned").mkdir(parents=True)
    (stranger / "owned" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an alignsweep sweep directory"):
        prepare_sweep_dir(spec, sweep_dir_for(spec, str(stranger)))
