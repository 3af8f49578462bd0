"""Adapter hot-swap: K checkpoints scored on one loaded base vs loading the base for each one.

Baseline (what a per-checkpoint evaluation job does): load tokenizer + base, attach the adapter
(`PeftModel.from_pretrained`), score, drop it all. Fast path (an evaluator actor): the base stays
loaded; `attached(..., method="hot_swap")` swaps only the adapter weights. Both sides run the same
probe per checkpoint. The goal row uses a one-prompt probe (one forward: the model is live and
adapted), i.e. it measures what the issue asks about — the per-checkpoint cost of getting a base
with the adapter and back; the second row adds a heavier probe (a forward over 8 BBQ prompts) to
show how the gain shrinks as real scoring work dominates. A full evaluation (seconds of generation)
is the same on both paths; there the saving is the ~30 ms/checkpoint in absolute terms.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench._common import median_pair, setup_torch, table, tiny, verdict

K = 16
GOAL = 8.0


def _adapters(path: str, root: Path, k: int) -> list[str]:
    import torch
    from peft import LoraConfig, get_peft_model

    from alignsweep.models.loading import load_model

    out = []
    for i in range(k):
        torch.manual_seed(i)
        cfg = LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                         init_lora_weights=False)
        model = get_peft_model(load_model(path), cfg)
        model.save_pretrained(root / f"a{i}", safe_serialization=True)
        out.append(str(root / f"a{i}"))
    return out


def _measure(adapters: list[str], path: str, prompts: list[str]) -> tuple[float, float, float, float]:
    import torch

    from alignsweep.evaluators.adapters import attached, release
    from alignsweep.evaluators.payload import AdapterPayload
    from alignsweep.models.loading import load_model, load_tokenizer

    def score(model, tokenizer) -> None:
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            model(**enc)

    def reload_each() -> None:
        for a in adapters:
            tokenizer, base = load_tokenizer(path), load_model(path)
            with attached(base, AdapterPayload.read(a), method="reference") as m:
                score(m, tokenizer)

    loaded = (load_tokenizer(path), load_model(path))

    def hot_swap() -> None:  # the evaluator actor: the base is already loaded ("one loaded base")
        tokenizer, base = loaded
        for a in adapters:
            with attached(base, AdapterPayload.read(a)) as m:
                score(m, tokenizer)
        release(base)

    def load_then_hot_swap() -> None:  # the same, paying the one base load inside the K checkpoints
        tokenizer, base = load_tokenizer(path), load_model(path)
        for a in adapters:
            with attached(base, AdapterPayload.read(a)) as m:
                score(m, tokenizer)
        release(base)

    def reattach_each() -> None:  # one base, but the adapter rebuilt per checkpoint (the old actor path)
        tokenizer, base = load_tokenizer(path), load_model(path)
        for a in adapters:
            with attached(base, AdapterPayload.read(a), method="reference") as m:
                score(m, tokenizer)

    base_s, fast_s = median_pair(reload_each, hot_swap)
    reattach_s, with_load_s = median_pair(reattach_each, load_then_hot_swap)
    return base_s, fast_s, reattach_s, with_load_s


def main() -> float:
    from alignsweep.evaluators.datasets import load_bbq

    setup_torch()
    _, _, path = tiny("llama")
    probe = [f"{b.context} {b.question}" for b in load_bbq("bundled")[:8]]
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        adapters = _adapters(path, Path(tmp), K)
        rows, goal_ratio = [], 0.0
        for label, prompts in (("1 prompt", probe[:1]), ("8 BBQ prompts", probe)):
            base_s, fast_s, reattach_s, with_load_s = _measure(adapters, path, prompts)
            ratio = base_s / fast_s
            goal_ratio = goal_ratio or ratio
            rows += [
                [label, "load base per checkpoint (baseline)", base_s, 1000 * base_s / K, 1.0],
                [label, "one base, re-attach per checkpoint", reattach_s, 1000 * reattach_s / K, base_s / reattach_s],
                [label, "load once + hot-swap (load counted)", with_load_s, 1000 * with_load_s / K, base_s / with_load_s],
                [label, "loaded base, hot-swap weights (fast)", fast_s, 1000 * fast_s / K, ratio],
            ]
    table(f"adapter hot-swap, K={K} LoRA checkpoints (r=8, q/k/v/o), tiny:llama, 1 thread, median of repeats",
          ["probe", "path", "seconds", "ms/checkpoint", "baseline/row"], rows)
    ratio = goal_ratio
    verdict("adapter_swap", ratio, f">= {GOAL:g}")
    return ratio


if __name__ == "__main__":
    main()
