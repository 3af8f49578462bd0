"""Batched greedy generation: left padding, KV cache, the model's chat template.

Every response that a judge sees comes from here, for base models and adapters alike, so that a
change in safe rate is a change in the model, never in how it was prompted or decoded.
"""

from __future__ import annotations

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
