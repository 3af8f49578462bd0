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

from functools import lru_cache
from typing import Any, Sequence

from alignsweep.chat import Message, render_prompt


def generate_replies(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[Message]],
    *,
    max_new_tokens: int = 48,
    batch_size: int = 16,
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
    batch_size: int = 16,
) -> list[str]:
    """Greedy continuations of already-rendered prompts (batched, left-padded, KV cache on)."""
    import torch

    if tokenizer.padding_side != "left":
        tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    # Longest first: batches of similar length waste less padding; results are put back in order.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    replies: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(device) for k, v in enc.items()}
        if _is_prompt_learning(model):
            new_tokens = _greedy_prompt_learning(model, enc, max_new_tokens, tokenizer.eos_token_id, pad_id)
            for row, i in enumerate(idx):
                replies[i] = tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
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
    return replies


@lru_cache(maxsize=1)
def _cache_arg() -> str:
    """transformers 5.x renamed the forward argument `past_key_values` to `cache`."""
    import inspect

    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"



def _is_prompt_learning(model: Any) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


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
