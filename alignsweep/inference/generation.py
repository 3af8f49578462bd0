"""Batched greedy generation: left padding, KV cache, the model's chat template.

Every response that a judge sees comes from here, for base models and adapters alike, so that a
change in safe rate is a change in the model, never in how it was prompted or decoded.

Prompt-Tuning / P-Tuning models are decoded by `_greedy_prompt_learning`, not `model.generate`: with
peft 0.21 + transformers 5, cached decoding after the first token places the virtual tokens at the
wrong positions (measured: step-2 logits off by ~1e-2 against a cache-free forward pass, and batched
output differs from unbatched). The own loop passes explicit position ids, so every row sees exactly
the positions it has when run alone and without a cache.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Sequence, Union

from alignsweep.chat import Message, render_prompt
from alignsweep.inference.progress_hook import batch_done

#: `batch_size="auto"`: as many rows as the memory budget holds (see `auto_batch_size`).
BatchSize = Union[int, str]
AUTO = "auto"
#: Rows per batch never exceed this: beyond it a tiny model gains nothing and padding waste grows.
MAX_AUTO_BATCH = 128
#: Share of free accelerator memory (or of available RAM on CPU) that one generation batch may use.
MEMORY_FRACTION = 0.25


def generate_replies(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[Message]],
    *,
    max_new_tokens: int = 48,
    batch_size: BatchSize = AUTO,
) -> list[str]:
    """Greedy replies, one per conversation, in input order."""
    prompts = [render_prompt(tokenizer, conv) for conv in conversations]
    return generate_from_prompts(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)


def generate_from_prompts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 48,
    batch_size: BatchSize = AUTO,
) -> list[str]:
    """Greedy continuations of already-rendered prompts (batched, left-padded, KV cache on).

    `batch_size=1` is the reference path the benchmark and tests compare against (one `generate` per
    prompt); batching never changes a greedy output (tests check it against cache-free decoding).
    """
    import torch

    if tokenizer.padding_side != "left":
        tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    # Longest first: batches of similar length waste less padding; results are put back in order.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    replies: list[str] = [""] * len(prompts)
    if batch_size == AUTO:
        longest = max((len(tokenizer(prompts[i], add_special_tokens=False)["input_ids"]) for i in order[:1]), default=1)
        batch_size = auto_batch_size(model, longest + max_new_tokens)
    batch_size = int(batch_size)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(device) for k, v in enc.items()}
        if virtual_positions(model):
            new_tokens = _greedy_prompt_learning(model, enc, max_new_tokens, tokenizer.eos_token_id, pad_id)
            for row, i in enumerate(idx):
                replies[i] = tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
            batch_done(start + len(idx), len(order))
            continue
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        new_tokens = out[:, enc["input_ids"].shape[1]:]
        for row, i in enumerate(idx):
            replies[i] = tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
        batch_done(start + len(idx), len(order))
    return replies


def memory_budget_bytes(device: Any) -> int:
    """What one batch may use: a share of free accelerator memory, or of available RAM on CPU.

    Why a budget and not a fixed batch: the same sweep runs a 230k-parameter model on a laptop (where
    bigger batches only remove per-step overhead) and an 8B model on a GPU (where the KV cache bounds
    the batch); `ALIGNSWEEP_GEN_MEMORY_BYTES` overrides the estimate.
    """
    override = os.environ.get("ALIGNSWEEP_GEN_MEMORY_BYTES")
    if override:
        return int(override)
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free * MEMORY_FRACTION)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 4 << 30
    return int(available * MEMORY_FRACTION)


def bytes_per_row(config: Any, seq_len: int, dtype_bytes: int) -> int:
    """Peak bytes one sequence adds: its KV cache over all layers, activations, one logits row."""
    text = getattr(config, "text_config", None) or config
    hidden = int(text.hidden_size)
    heads = int(text.num_attention_heads)
    head_dim = int(getattr(text, "head_dim", None) or hidden // heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    layers = int(text.num_hidden_layers)
    inter = int(getattr(text, "intermediate_size", None) or 4 * hidden)
    kv = 2 * layers * kv_heads * head_dim * seq_len * dtype_bytes
    # prefill activations of one layer (hidden + MLP + attention scores), plus float32 logits of the last position
    prefill = seq_len * (4 * hidden + 2 * inter + heads * seq_len) * dtype_bytes
    return kv + prefill + 4 * int(text.vocab_size)


def auto_batch_size(model: Any, seq_len: int, *, budget_bytes: int | None = None, cap: int = MAX_AUTO_BATCH) -> int:
    """Largest batch whose rows of `seq_len` (prompt + new tokens) fit the memory budget, within [1, cap]."""
    param = next(model.parameters())
    budget = memory_budget_bytes(param.device) if budget_bytes is None else budget_bytes
    per_row = bytes_per_row(model.config, max(seq_len, 1), param.element_size())
    return max(1, min(cap, budget // max(per_row, 1)))


@lru_cache(maxsize=1)
def _cache_arg() -> str:
    """transformers 5.x renamed the forward argument `past_key_values` to `cache`."""
    import inspect

    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


def virtual_positions(model: Any) -> int:
    """How many leading positions of `model`'s logits belong to prompt-learning virtual tokens (else 0).

    Read from the peft config the model carries (`is_prompt_learning`, `num_virtual_tokens`), never from a
    method name: inference sits below the method registry, and a plain model or injected adapter has none.
    """
    config = getattr(model, "active_peft_config", None)
    return int(config.num_virtual_tokens) if getattr(config, "is_prompt_learning", False) else 0


def _greedy_prompt_learning(model: Any, enc: dict[str, Any], max_new_tokens: int, eos_id: int | None,
                            pad_id: int) -> Any:
    """Greedy decoding with virtual tokens prepended, explicit positions, KV cache; returns new ids.

    Layout per row: [virtual tokens][left padding][prompt]; position ids count only attended tokens,
    so a padded row's prompt starts at position n_virtual exactly as when decoded alone.
    """
    import torch

    base = model.get_base_model()
    ids, mask = enc["input_ids"], enc["attention_mask"]
    batch = ids.shape[0]
    prompts = model.get_prompt(batch_size=batch)
    embeds = torch.cat((prompts.to(base.dtype), model.word_embeddings(ids)), dim=1)
    mask = torch.cat((torch.ones(batch, prompts.shape[1], dtype=mask.dtype, device=mask.device), mask), dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    finished = torch.zeros(batch, dtype=torch.bool, device=ids.device)
    generated = []
    past = None
    next_ids = ids[:, -1]  # replaced by the first step's argmax before it is ever fed back
    with torch.no_grad():
        for _ in range(max_new_tokens):
            if past is None:
                out = base(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True)
            else:
                out = base(input_ids=next_ids[:, None], attention_mask=mask, position_ids=positions[:, -1:],
                           use_cache=True, **{_cache_arg(): past})
            past = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            next_ids = out.logits[:, -1, :].argmax(-1)
            next_ids = torch.where(finished, torch.full_like(next_ids, pad_id), next_ids)
            generated.append(next_ids)
            if eos_id is not None:
                finished |= next_ids == eos_id
            if bool(finished.all()):
                break
            mask = torch.cat((mask, torch.ones(batch, 1, dtype=mask.dtype, device=mask.device)), dim=1)
            positions = torch.cat((positions, positions[:, -1:] + 1), dim=1)
    return torch.stack(generated, dim=1) if generated else ids[:, :0]
