"""Per-choice log-likelihoods exactly as lm-evaluation-harness computes them.

Encode context + continuation together and the context alone, both with the tokenizer's default
special tokens; the continuation's tokens are the tail past the context's length (tokenizers that
merge across the boundary are handled); the score is the sum of their log-softmax. Over-long inputs
keep the last max_length + 1 tokens (drop from the left, never the continuation) and are flagged as
truncated. Faster paths (prefix sharing, packing) must reproduce exactly this number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class ChoiceScore:
    loglik: float
    n_tokens: int
    truncated: bool


def _model_max_length(model: Any, tokenizer: Any) -> int:
    for attr in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10**9 else 2048


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], int]:
    """Whole-sequence ids and how many trailing ids belong to the continuation."""
    whole = tokenizer(context + continuation)["input_ids"]
    ctx = tokenizer(context)["input_ids"]
    n_cont = len(whole) - len(ctx)
    if n_cont <= 0:
        raise ValueError(f"continuation {continuation!r} adds no tokens after its context")
    return whole, n_cont


def score_choices(
    model: Any,
    tokenizer: Any,
    requests: Sequence[tuple[str, str]],
    *,
    batch_size: int = 16,
    max_length: int | None = None,
) -> list[ChoiceScore]:
    """Summed log-probability of each (context, continuation) pair's continuation tokens."""
    import torch

    limit = max_length or _model_max_length(model, tokenizer)
    # Prompt-Tuning / P-Tuning virtual tokens occupy the first positions of the model's window.
    peft_config = getattr(model, "active_peft_config", None)
    if getattr(peft_config, "is_prompt_learning", False):
        limit -= int(peft_config.num_virtual_tokens)
    device = next(model.parameters()).device
    encoded = []
    for context, continuation in requests:
        whole, n_cont = encode_pair(tokenizer, context, continuation)
        truncated = len(whole) > limit + 1
        whole = whole[-(limit + 1):]
        encoded.append((whole, min(n_cont, len(whole) - 1), truncated))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores: list[ChoiceScore] = [ChoiceScore(0.0, 0, False)] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        inputs = [encoded[i][0][:-1] for i in idx]  # the last token is only ever a target
        width = max(len(x) for x in inputs)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, x in enumerate(inputs):  # right padding keeps positions identical to unbatched
            ids[row, : len(x)] = torch.tensor(x)
            mask[row, : len(x)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        # Prompt-Tuning / P-Tuning prepend virtual tokens: their positions come first; drop them.
        logits = logits[:, logits.shape[1] - width :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for row, i in enumerate(idx):
            whole, n_cont, truncated = encoded[i]
            n_in = len(whole) - 1
            targets = torch.tensor(whole[-n_cont:], device=logprobs.device)
            # logits at input position p predict token p + 1; the continuation's targets sit at the tail.
            lp = logprobs[row, n_in - n_cont : n_in].gather(-1, targets[:, None]).sum().item()
            scores[i] = ChoiceScore(loglik=float(lp), n_tokens=n_cont, truncated=truncated)
    return scores
