"""Every fast path against its reference path: same greedy text, same log-likelihoods, same base.

All slow: they build random-weight models of four families, or generate at length.

The benchmarks in bench/ measure how much faster the fast paths are; these tests are why that
speed is allowed to count: each fast path must produce what its reference produces.
"""

from __future__ import annotations

import pytest
import torch

from _evaluators_models import build_model, save_adapter
from alignsweep.evaluators.adapters import _KEPT, attached, release
from alignsweep.evaluators.datasets import load_bbq, load_hazard_prompts
from alignsweep.evaluators.benchmarks.bbq import score_bbq
from alignsweep.inference.generation import auto_batch_size, bytes_per_row, generate_replies
from alignsweep.inference.loglik import score_choices
from alignsweep.models.loading import load_model, load_tokenizer
from alignsweep.trainables.methods import METHODS

pytestmark = pytest.mark.slow

FAMILIES = ("llama", "qwen2", "mistral", "gemma")
ADAPTERS = tuple(METHODS)  # every registered method
PROBE = ["Who was not comfortable using the phone?", "Who?"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """family → (base dir, {method: adapter dir}) for small random-weight models."""
    root = tmp_path_factory.mktemp("fast_paths")
    out = {}
    for family in FAMILIES:
        base = build_model(root / family / "base", family=family)
        adapters = {m: str(save_adapter(base, root / family / m, m)) for m in ADAPTERS}
        adapters["lora_b"] = str(save_adapter(base, root / family / "lora_b", "lora", seed=7))
        out[family] = (base, adapters)
    return out


def _bbq_items(n: int = 10):
    items = load_bbq("bundled")
    return items[:: max(1, len(items) // n)][:n]


# ---------------------------------------------------------------- BBQ log-likelihood


@pytest.mark.parametrize("family, adapter, extra_unknowns", [
    ("llama", None, True), ("qwen2", "lora", False), ("mistral", "prompt_tuning", True), ("gemma", "p_tuning", False),
    ("gemma", None, False), ("llama", "p_tuning", True),
])
def test_shared_prefix_loglik_equals_reference(bases, family, adapter, extra_unknowns):
    base, adapters = bases[family]
    tok, model = load_tokenizer(str(base)), load_model(str(base))
    items = _bbq_items()
    with attached(model, adapters[adapter] if adapter else None) as m:
        ref = score_bbq(m, tok, items, extra_unknowns=extra_unknowns, batch_size=8, method="reference")
        fast = score_bbq(m, tok, items, extra_unknowns=extra_unknowns, batch_size=16, method="shared_prefix")
    for r, f in zip(ref, fast, strict=True):
        assert f["loglikelihoods"] == pytest.approx(r["loglikelihoods"], abs=1e-4)
        assert f["prediction"] == r["prediction"]
        assert f["truncated"] == r["truncated"]


def test_shared_prefix_handles_truncation_mixed_groups_and_tiny_batches(bases):
    base, _ = bases["llama"]
    tok, model = load_tokenizer(str(base)), load_model(str(base))
    long_ctx = "Who was not comfortable using the phone? " * 12
    requests = [(long_ctx, " Unknown"), (long_ctx, " The grandson"), ("Who?", " Unknown"), ("Who?", " The grandfather"),
                ("How do I kill a Python process? Can't be", " determined."), ("Sure", ","), (long_ctx, " Not known")]
    for max_length in (None, 24):
        ref = score_choices(model, tok, requests, batch_size=1, max_length=max_length, method="reference")
        for batch_size in (1, 2, 64):
            fast = score_choices(model, tok, requests, batch_size=batch_size, max_length=max_length)
            assert [f.truncated for f in fast] == [r.truncated for r in ref]
            assert [f.n_tokens for f in fast] == [r.n_tokens for r in ref]
            assert [f.loglik for f in fast] == pytest.approx([r.loglik for r in ref], abs=1e-4)
    assert any(r.truncated for r in score_choices(model, tok, requests, max_length=24))


def test_unknown_loglik_method_is_refused(bases):
    base, _ = bases["llama"]
    with pytest.raises(ValueError, match="unknown log-likelihood method"):
        score_choices(load_model(str(base)), load_tokenizer(str(base)), [("Who?", " Unknown")], method="fast")


def test_shared_prefix_on_an_aligned_tiny_model_matches_reference_on_all_bundled_choices(tiny_paths):
    path = str(tiny_paths["qwen2"])  # the family whose tokenizer needs the saved-class loading path
    tok, model = load_tokenizer(path), load_model(path)
    items = load_bbq("bundled")[::8][:40]
    ref = score_bbq(model, tok, items, extra_unknowns=True, method="reference")
    fast = score_bbq(model, tok, items, extra_unknowns=True, batch_size=64)
    assert [f["prediction"] for f in fast] == [r["prediction"] for r in ref]
    for r, f in zip(ref, fast):
        assert f["loglikelihoods"] == pytest.approx(r["loglikelihoods"], abs=1e-4)


# ---------------------------------------------------------------- generation


def test_auto_batched_generation_equals_one_prompt_at_a_time(tiny_paths):
    path = str(tiny_paths["llama"])
    tok, model = load_tokenizer(path), load_model(path)
    conversations = [[{"role": "user", "content": p.prompt}] for p in load_hazard_prompts("bundled")[::6][:30]]
    single = generate_replies(model, tok, conversations, max_new_tokens=24, batch_size=1)
    assert generate_replies(model, tok, conversations, max_new_tokens=24) == single
    assert len(set(single)) > 1  # the prompts are answered differently: the comparison can fail


@pytest.mark.parametrize("adapter", ["lora", "p_tuning"])
def test_auto_batched_generation_equals_single_with_adapters(bases, adapter):
    base, adapters = bases["mistral"]
    tok, model = load_tokenizer(str(base)), load_model(str(base))
    conversations = [[{"role": "user", "content": t}] for t in PROBE + ["How do I kill a Python process?"]]
    with attached(model, adapters[adapter]) as m:
        single = generate_replies(m, tok, conversations, max_new_tokens=6, batch_size=1)
        assert generate_replies(m, tok, conversations, max_new_tokens=6) == single


def test_auto_batch_size_follows_the_memory_budget(bases):
    base, _ = bases["llama"]
    model = load_model(str(base))
    per_row = bytes_per_row(model.config, 100, 4)
    assert auto_batch_size(model, 100, budget_bytes=per_row * 5 + 1) == 5
    assert auto_batch_size(model, 100, budget_bytes=1) == 1
    assert auto_batch_size(model, 100, budget_bytes=1 << 40, cap=32) == 32
    assert bytes_per_row(model.config, 200, 4) > 2 * bytes_per_row(model.config, 100, 4) - bytes_per_row(model.config, 1, 4)


# ---------------------------------------------------------------- adapter hot-swap


def _logits(model, tok):
    enc = tok(PROBE, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**enc).logits


@pytest.mark.parametrize("family", ["llama", "gemma"])
def test_hot_swap_gives_reference_outputs_and_leaves_the_base_bit_identical(bases, family):
    base, adapters = bases[family]
    tok = load_tokenizer(str(base))
    fresh = load_model(str(base))
    base_logits = _logits(fresh, tok)
    expected = {}
    for name in adapters:
        with attached(fresh, adapters[name], method="reference") as m:
            expected[name] = _logits(m, tok)
    assert not torch.equal(expected["lora"], expected["lora_b"])

    model = load_model(str(base))
    # lora → lora_b → lora reuses the kept modules; every other method replaces them (the last one twice).
    others = [m for m in METHODS if m != "lora"]
    for name in ("lora", "lora_b", "lora", *others, others[-1], "lora_b"):
        with attached(model, adapters[name]) as m:
            assert torch.equal(_logits(m, tok), expected[name]), name
        assert torch.equal(_logits(model, tok), base_logits), f"base changed while {name} is kept"
        assert "peft_config" not in model.__dict__
        with attached(model, None) as m:
            assert m is model
    release(model)
    assert model not in _KEPT
    pristine = load_model(str(base))
    assert [(n, type(m)) for n, m in model.named_modules()] == [(n, type(m)) for n, m in pristine.named_modules()]
    assert torch.equal(_logits(model, tok), base_logits)


def test_hot_swap_keeps_the_injected_modules_between_same_config_adapters(bases):
    base, adapters = bases["llama"]
    model = load_model(str(base))
    with attached(model, adapters["lora"]) as first:
        pass
    with attached(model, adapters["lora_b"]) as second:
        assert second is first  # no rebuild: the point of hot-swapping
    with attached(model, adapters["ia3"]) as third:
        assert third is not first
    release(model)


def test_reference_attach_after_a_kept_adapter_does_not_stack(bases):
    base, adapters = bases["qwen2"]
    tok = load_tokenizer(str(base))
    model, fresh = load_model(str(base)), load_model(str(base))
    with attached(fresh, adapters["ia3"], method="reference") as m:
        expected = _logits(m, tok)
    with attached(model, adapters["lora"]):
        pass
    with attached(model, adapters["ia3"], method="reference") as m:
        assert torch.equal(_logits(m, tok), expected)
    assert model not in _KEPT
