"""PEFT trials on every tiny family × every registered method: train, save, reload with plain peft, resume
exactly, attach for evaluation and detach leaving the base bit-identical.

The methods come from the registry: a newly registered method is trained by every test here with its
default grid unless `SMALL` gives it smaller settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from alignsweep.evaluators.adapters import ATTACH_METHODS, attached, release
from alignsweep.inference.generation import virtual_positions
from alignsweep.models.loading import load_model
from alignsweep.spec.config import validate_spec
from alignsweep.spec.plan import expand_trials
from alignsweep.trainables.methods import METHODS, method_of_adapter
from alignsweep.trainables.plan import TrialPlan
from alignsweep.trainables.trainer import PeftTrainer

FAMILIES = ["llama", "qwen2", "mistral", "gemma"]
#: Smaller-than-default settings that keep these tests fast (and Prompt-Tuning's text init covered).
SMALL = {
    "lora": {"r": [4], "target_modules": ["q_proj", "v_proj"]},
    "dora": {"r": [4], "target_modules": ["q_proj", "v_proj"]},
    "prompt_tuning": {"num_virtual_tokens": [4], "init": ["text"]},
    "p_tuning": {"num_virtual_tokens": [4], "encoder_hidden_size": [16]},
}
ALL_METHODS = list(METHODS)


def plan_for(family: str, method: str, lr: float = 1e-2, seed: int = 0) -> TrialPlan:
    spec = validate_spec(
        {
            "name": "t",
            "seed": seed,
            "models": [f"tiny:{family}"],
            "methods": {method: SMALL.get(method, {})},
            "training": {"max_steps": 6, "learning_rates": [lr], "batch_size": 4, "max_examples": 48,
                         "max_seq_length": 64, "seeds": [seed]},
        }
    )
    (plan,) = expand_trials(spec)
    return plan


def probe_batch(trainer: PeftTrainer) -> dict[str, torch.Tensor]:
    batch = trainer.batch_for_step(0)
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_trains_saves_and_reloads_with_plain_peft(family: str, method: str, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    trainer = PeftTrainer(plan_for(family, method)).setup()
    before = [p.detach().clone() for p in trainer.model.parameters() if p.requires_grad]
    losses = [trainer.train_step() for _ in range(3)]
    after = [p.detach() for p in trainer.model.parameters() if p.requires_grad]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "training changed no adapter weight"
    trainable, total = trainer.trainable_parameters()
    assert 0 < trainable < total

    ckpt = trainer.save_checkpoint(tmp_path / "ckpt")
    assert (ckpt / "adapter_model.safetensors").is_file()
    assert not list(ckpt.glob("*.bin"))
    base_path = json.loads((ckpt / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(base_path).is_dir()
    assert method_of_adapter(str(ckpt)) == method  # the registry recognises its own adapters

    trainer.model.eval()
    batch = probe_batch(trainer)
    with torch.no_grad():
        seen = trainer.model(**batch).logits
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), str(ckpt)).eval()
    with torch.no_grad():
        again = reloaded(**batch).logits
    assert seen.shape == again.shape
    assert torch.equal(again, seen), f"max difference {(again - seen).abs().max().item():.3g}"


@pytest.mark.parametrize("method", ALL_METHODS)
def test_logits_carry_the_methods_virtual_positions_and_the_loss_skips_them(method: str) -> None:
    """The registry's virtual positions agree with the peft config inference reads and with the logits'
    length, and peft's loss equals the loss computed by hand on logits with those positions sliced off."""
    trainer = PeftTrainer(plan_for("llama", method)).setup()
    trainer.model.eval()
    entry, hp = METHODS.get(method), trainer.plan.hyperparameters
    n_virtual = entry.virtual_positions(hp)
    assert n_virtual == (int(hp["num_virtual_tokens"]) if entry.prompt_learning else 0)
    assert virtual_positions(trainer.model) == n_virtual  # what generation / log-likelihood slice off
    batch = trainer.batch_for_step(0)
    with torch.no_grad():
        out = trainer.model(**batch)
    assert out.logits.shape[1] == batch["input_ids"].shape[1] + n_virtual
    logits = out.logits[:, n_virtual:]
    manual = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), batch["labels"][:, 1:].reshape(-1), ignore_index=-100
    )
    torch.testing.assert_close(out.loss, manual, rtol=1e-5, atol=1e-5)
    # and the labels cover only the assistant's reply: some positions are masked, some are learned
    assert (batch["labels"] == -100).any() and (batch["labels"] >= 0).any()


@pytest.mark.slow
def test_text_init_uses_the_base_tokenizers_own_embeddings() -> None:
    trainer = PeftTrainer(plan_for("qwen2", "prompt_tuning")).setup()
    ids = trainer.tokenizer(trainer.plan.hyperparameters["init_text"], add_special_tokens=False)["input_ids"][:4]
    expected = trainer.model.get_base_model().get_input_embeddings().weight[ids]
    got = trainer.model.prompt_encoder["default"].embedding.weight[: len(ids)]
    torch.testing.assert_close(got, expected)


@pytest.mark.slow
@pytest.mark.parametrize("method", ALL_METHODS)
def test_same_plan_same_losses_and_exact_resume(method: str, tmp_path: Path) -> None:
    plan = plan_for("mistral", method)
    first = PeftTrainer(plan).setup()
    head = [first.train_step() for _ in range(3)]
    first.save_checkpoint(tmp_path / "ckpt")
    tail = [first.train_step() for _ in range(3)]

    second = PeftTrainer(plan).setup()
    assert [second.train_step() for _ in range(3)] == head  # seeded: identical

    resumed = PeftTrainer(plan).setup()
    resumed.restore(tmp_path / "ckpt")
    assert resumed.state.step == 3
    assert [resumed.train_step() for _ in range(3)] == tail  # restored: continues exactly
    assert resumed.done
    ended = dict(first.model.named_parameters())
    for name, p in resumed.model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, ended[name]), f"{name} differs from the uninterrupted run"


@pytest.mark.slow
@pytest.mark.parametrize("attach", ATTACH_METHODS)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_trained_adapter_attaches_for_evaluation_and_detaches_bit_exactly(method: str, attach: str,
                                                                          tmp_path: Path) -> None:
    """An evaluator's base gets the trained adapter's exact training-time logits, then its own back."""
    trainer = PeftTrainer(plan_for("llama", method)).setup()
    for _ in range(3):
        trainer.train_step()
    ckpt = str(trainer.save_checkpoint(tmp_path / "ckpt"))
    trainer.model.eval()
    batch = probe_batch(trainer)
    with torch.no_grad():
        trained = trainer.model(**batch).logits
        fresh = load_model(trainer.ref.path)
        reference = fresh(**batch).logits

    base = load_model(trainer.ref.path)
    with attached(base, ckpt, method=attach) as model, torch.no_grad():
        evaluated = model(**batch).logits
    assert torch.equal(evaluated, trained)
    assert not torch.equal(evaluated[:, -reference.shape[1]:], reference), "the adapter changed nothing"
    with torch.no_grad():
        assert torch.equal(base(**batch).logits, reference), "base changed after detaching"
        release(base)  # a kept hot-swap adapter taken off completely
        assert torch.equal(base(**batch).logits, reference), "base changed after release"
    assert [(n, type(m)) for n, m in base.named_modules()] == [(n, type(m)) for n, m in fresh.named_modules()]
    assert "peft_config" not in base.__dict__


@pytest.mark.slow
def test_different_seed_gives_different_losses() -> None:
    a = PeftTrainer(plan_for("llama", "lora", seed=0)).setup()
    b = PeftTrainer(plan_for("llama", "lora", seed=1)).setup()
    assert [a.train_step() for _ in range(2)] != [b.train_step() for _ in range(2)]


def test_restore_refuses_another_trials_checkpoint(tmp_path: Path) -> None:
    a = PeftTrainer(plan_for("llama", "lora", lr=1e-2)).setup()
    a.save_checkpoint(tmp_path / "a")
    b = PeftTrainer(plan_for("llama", "lora", lr=1e-3)).setup()
    with pytest.raises(ValueError, match="belongs to trial"):
        b.restore(tmp_path / "a")
