"""Per-choice log-likelihoods exactly as lm-evaluation-harness computes them.

Encode context + continuation together and the context alone, both with the tokenizer's default
special tokens; the continuation's tokens are the tail past the context's length (tokenizers that
merge across the boundary are handled); the score is the sum of their log-softmax. Over-long inputs
keep the last max_length + 1 tokens (drop from the left, never the continuation) and are flagged as
truncated. Faster paths (prefix sharing, packing) must reproduce exactly this number.

Two implementations of that one number (`method=`):
- `reference`: one row per (context, continuation), right-padded batches. Simple enough to trust;
  benchmarks and tests compare the fast path against it.
- `shared_prefix` (default): a BBQ item offers 3–13 answers after one long context, so the reference
  re-encodes the same context once per answer. Here each item's common input prefix runs once (KV
  cache, items batched with left padding and explicit positions), the cache is repeated per choice,
  and only the short answer tails run again — a batch of B items costs ~B·(context + choices·tail)
  tokens instead of B·choices·(context + tail).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from alignsweep.inference.generation import virtual_positions
from alignsweep.inference.progress_hook import batch_done

METHODS = ("shared_prefix", "reference")


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


def encode_pair(tokenizer: Any, context: str, continuation: str,
                context_lengths: dict[str, int] | None = None) -> tuple[list[int], int]:
    """Whole-sequence ids and how many trailing ids belong to the continuation.

    `context_lengths` memoises the context's length: every choice of an item shares its context.
    """
    whole = tokenizer(context + continuation)["input_ids"]
    if context_lengths is None:
        n_ctx = len(tokenizer(context)["input_ids"])
    elif context in context_lengths:
        n_ctx = context_lengths[context]
    else:
        n_ctx = context_lengths[context] = len(tokenizer(context)["input_ids"])
    n_cont = len(whole) - n_ctx
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
    method: str = "shared_prefix",
) -> list[ChoiceScore]:
    """Summed log-probability of each (context, continuation) pair's continuation tokens.

    `batch_size` bounds the rows of one forward pass (choices, for `shared_prefix`). Requests with the
    same context should be adjacent (as `score_bbq` makes them): that is what `shared_prefix` shares.
    """
    if method not in METHODS:
        raise ValueError(f"unknown log-likelihood method {method!r} (known: {', '.join(METHODS)})")
    encoded = _encode_requests(model, tokenizer, requests, max_length, share_contexts=method != "reference")
    if method == "reference":
        return _score_reference(model, tokenizer, encoded, batch_size)
    return _score_shared_prefix(model, tokenizer, encoded, batch_size)


#: One request, encoded: (whole ids kept, continuation length, truncated).
Encoded = tuple[list[int], int, bool]


def _encode_requests(model: Any, tokenizer: Any, requests: Sequence[tuple[str, str]],
                     max_length: int | None, share_contexts: bool = False) -> list[Encoded]:
    # Prompt-learning virtual tokens occupy the first positions of the model's window.
    limit = (max_length or _model_max_length(model, tokenizer)) - virtual_positions(model)
    encoded = []
    context_lengths: dict[str, int] | None = {} if share_contexts else None
    for context, continuation in requests:
        whole, n_cont = encode_pair(tokenizer, context, continuation, context_lengths)
        truncated = len(whole) > limit + 1
        whole = whole[-(limit + 1):]
        encoded.append((whole, min(n_cont, len(whole) - 1), truncated))
    return encoded


def _score_reference(model: Any, tokenizer: Any, encoded: list[Encoded], batch_size: int,
                     report: bool = True) -> list[ChoiceScore]:
    import torch

    device = next(model.parameters()).device
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
        if report:
            batch_done(start + len(idx), len(order))
    return scores


def _common_prefix(rows: Sequence[list[int]]) -> int:
    n = min(len(r) for r in rows)
    for i in range(n):
        first = rows[0][i]
        if any(r[i] != first for r in rows[1:]):
            return i
    return n


_MAX_GROUP = 64  # requests sharing one prefix pass; bounds the quadratic prefix check


def _groups(encoded: list[Encoded]) -> list[tuple[list[int], int]]:
    """Runs of adjacent requests sharing a non-empty input prefix: (request indices, prefix length).

    The prefix stops one token short of the shortest input, so every choice keeps a tail to run.
    """
    groups: list[tuple[list[int], int]] = []
    i = 0
    while i < len(encoded):
        members, p = [i], len(encoded[i][0]) - 2
        j = i + 1
        while j < len(encoded) and len(members) < _MAX_GROUP:
            inputs = [encoded[k][0][:-1] for k in members + [j]]
            q = min(_common_prefix(inputs), min(len(x) for x in inputs) - 1)
            if q < max(1, p // 2):  # another context (or a truncated variant): start a new group
                break
            members.append(j)
            p = q
            j += 1
        groups.append((members, max(p, 0)))
        i = j
    return groups


def _score_shared_prefix(model: Any, tokenizer: Any, encoded: list[Encoded], batch_size: int) -> list[ChoiceScore]:
    """Each group's prefix once (KV cache), then every choice's tail from a copy of that cache."""
    groups = _groups(encoded)
    scores: list[ChoiceScore] = [ChoiceScore(0.0, 0, False)] * len(encoded)
    lone = [g for g in groups if g[1] < 1]  # nothing shared (a single short request): reference path
    done = 0
    for members, _ in lone:
        for i, s in zip(members, _score_reference(model, tokenizer, [encoded[k] for k in members], batch_size, False)):
            scores[i] = s
        done += len(members)
    if lone:
        batch_done(done, len(encoded))
    shared = sorted((g for g in groups if g[1] >= 1), key=lambda g: -g[1])
    batch: list[tuple[list[int], int]] = []
    rows = 0
    for group in shared:
        if batch and rows + len(group[0]) > max(batch_size, len(group[0])):
            _run_shared_batch(model, tokenizer, encoded, batch, scores)
            done += rows
            batch_done(done, len(encoded))
            batch, rows = [], 0
        batch.append(group)
        rows += len(group[0])
    if batch:
        _run_shared_batch(model, tokenizer, encoded, batch, scores)
        batch_done(done + rows, len(encoded))
    return scores


def _run_shared_batch(model: Any, tokenizer: Any, encoded: list[Encoded], groups: list[tuple[list[int], int]],
                      scores: list[ChoiceScore]) -> None:
    """One prefix pass (left-padded, explicit positions) and one tail pass (right-padded) for `groups`."""
    import torch

    from alignsweep.inference.generation import _cache_arg

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    n_virtual = virtual_positions(model)
    prefixes = [encoded[m[0]][0][:p] for m, p in groups]
    width = max(len(x) for x in prefixes)
    ids = torch.full((len(groups), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(groups), width), dtype=torch.long)
    for row, x in enumerate(prefixes):
        ids[row, width - len(x):] = torch.tensor(x)
        mask[row, width - len(x):] = 1
    ids, mask = ids.to(device), mask.to(device)
    # How many trailing prefix positions any continuation target needs (usually 1: the context's last).
    keep = max(p - (len(encoded[i][0]) - 1 - encoded[i][1]) for m, p in groups for i in m)
    keep = max(keep, 1)
    with torch.no_grad():
        if n_virtual:  # virtual tokens first, then [left padding][prefix], as when decoded alone
            base = model.get_base_model()
            prompts = model.get_prompt(batch_size=len(groups)).to(base.dtype)
            mask = torch.cat((torch.ones(len(groups), n_virtual, dtype=mask.dtype, device=device), mask), dim=1)
            embeds = torch.cat((prompts, model.word_embeddings(ids)), dim=1)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = base(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True,
                       logits_to_keep=keep)
            runner = base
        else:
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                        logits_to_keep=keep)
            runner = model
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        owner = [g for g, (m, _) in enumerate(groups) for _ in m]
        cache.batch_select_indices(torch.tensor(owner, device=device))
        tails = [encoded[i][0][p:-1] for m, p in groups for i in m]
        starts = [p + n_virtual for m, p in groups for _ in m]
        t_width = max(len(t) for t in tails)
        t_ids = torch.full((len(tails), t_width), pad_id, dtype=torch.long)
        t_mask = torch.zeros((len(tails), t_width), dtype=torch.long)
        for row, t in enumerate(tails):
            t_ids[row, : len(t)] = torch.tensor(t)
            t_mask[row, : len(t)] = 1
        t_positions = torch.tensor(starts)[:, None] + torch.arange(t_width)[None, :]
        full_mask = torch.cat((mask[owner], t_mask.to(device)), dim=1)
        tail_out = runner(input_ids=t_ids.to(device), attention_mask=full_mask, position_ids=t_positions.to(device),
                          use_cache=True, **{_cache_arg(): cache})
    # Every target token's logits row: (from the prefix pass?, batch row, column), then one log-softmax.
    picks: list[tuple[bool, int, int, int]] = []
    owners: list[int] = []
    row = 0
    for g, (members, p) in enumerate(groups):
        for i in members:
            whole, n_cont, _ = encoded[i]
            n_in = len(whole) - 1
            for q in range(n_in - n_cont, n_in):  # input position q predicts token q + 1
                picks.append((q < p, g if q < p else row, keep - p + q if q < p else q - p, whole[q + 1]))
                owners.append(i)
            row += 1
    flat_prefix = out.logits.reshape(-1, out.logits.shape[-1])
    flat_tail = tail_out.logits.reshape(-1, tail_out.logits.shape[-1])
    from_prefix = torch.tensor([pk[0] for pk in picks], device=device)
    prefix_index = torch.tensor([pk[1] * keep + pk[2] if pk[0] else 0 for pk in picks], device=device)
    tail_index = torch.tensor([0 if pk[0] else pk[1] * t_width + pk[2] for pk in picks], device=device)
    logits = torch.where(from_prefix[:, None], flat_prefix[prefix_index], flat_tail[tail_index])
    targets = torch.tensor([pk[3] for pk in picks], device=device)
    token_lp = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[:, None])[:, 0]
    totals = torch.zeros(len(encoded), dtype=torch.float32, device=device)
    totals.index_add_(0, torch.tensor(owners, device=device), token_lp)
    for members, _ in groups:
        for i in members:
            _, n_cont, truncated = encoded[i]
            scores[i] = ChoiceScore(loglik=float(totals[i]), n_tokens=n_cont, truncated=truncated)
