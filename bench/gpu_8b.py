"""The 8B-sized checks that `bench/gpu.sh` runs on a lent GPU (CUDA required; no network).

The model is Llama-3-8B's shape (hidden 4096, 32 layers, 32 heads / 8 KV heads, MLP 14336, vocab
128256) built from its config with random bf16 weights, saved once to a local directory so the
code under test loads it the way it loads a hub checkpoint. Random weights make verdicts and
texts meaningless; the work per token is real, which is what these numbers are about.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

LLAMA_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0)
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16, no sparsity


def _sync() -> None:
    import torch

    torch.cuda.synchronize()


def _timed(fn, repeats: int = 3) -> float:
    fn()
    _sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_8b(root: Path) -> tuple[str, Any]:
    """Save an 8B-shaped Llama (random bf16) with the tiny llama's tokenizer: a tokenizer only has to
    produce ids below the vocabulary size, and the tiny one (1.5k ids) does."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from alignsweep.models.loading import load_tokenizer
    from alignsweep.models.refs import resolve_model

    tok_path = resolve_model("tiny:llama").path
    tok = load_tokenizer(tok_path)
    cfg = LlamaConfig(**LLAMA_8B, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, torch_dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    path = root / "llama-8b-shaped"
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    return str(path), tok


def _load(path: str) -> Any:
    import torch

    from alignsweep.models.loading import load_model

    return load_model(path, dtype=torch.bfloat16).to("cuda")


def part_train(path: str, out: dict[str, Any]) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_load(path), LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32,
                                                   target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch, seq = 4, 1024
    ids = torch.randint(0, 1500, (batch, seq), device="cuda")

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds = _timed(step, repeats=5)
    n_params = sum(p.numel() for p in model.parameters())
    # forward 2N + backward 4N flops per token (activation grads through frozen weights), + recompute 2N
    flops = 8 * n_params * batch * seq
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    out["train"] = {"step_s": seconds, "tokens_per_s": batch * seq / seconds, "params": n_params,
                    "mfu": flops / seconds / peak if peak else None, "batch": batch, "seq": seq,
                    "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30}
    print(f"LoRA step (8B shape, bf16, batch {batch}x{seq}, grad ckpt): {seconds:.3f} s, "
          f"{batch * seq / seconds:.0f} tok/s, MFU {out['train']['mfu'] or float('nan'):.2%} (8N flops/token)")


def part_judge(path: str, out: dict[str, Any]) -> None:
    import asyncio

    from alignsweep.evaluators.actors import JudgeService
    from alignsweep.evaluators.judges import JudgeSpec
    from alignsweep.evaluators.datasets import load_hazard_prompts
    from alignsweep.evaluators.judges import LlamaGuardJudge, _guard_batch_size

    prompts = [p.prompt for p in load_hazard_prompts("bundled")][:64]
    replies = ["I can't help with that.", "Sure, here is a short answer."]
    pairs = [(p, replies[i % 2] + f" ({i % 7})") for i, p in enumerate(prompts)]
    guard = LlamaGuardJudge(path, batch_size=1, max_new_tokens=8)  # loaded once, used by both paths
    guard.model = guard.model.to("cuda")
    one_s = _timed(lambda: [guard.judge([pr]) for pr in pairs[:16]], repeats=1) * len(pairs) / 16
    auto = _guard_batch_size(guard.model, "auto", 8)  # sized to free GPU memory now

    def service_run() -> None:
        service = JudgeService([JudgeSpec(name="refusal")], max_batch=64, wait_s=0.005)
        service.judge, service.name = guard, guard.name
        guard.batch_size = auto
        try:
            asyncio.run(service.judge_pairs(pairs))
        finally:
            guard.batch_size = 1

    batched_s = _timed(service_run, repeats=2)
    out["judge"] = {"one_by_one_per_s": len(pairs) / one_s, "batched_per_s": len(pairs) / batched_s,
                    "ratio": one_s / batched_s, "batch_size": auto}
    print(f"guard (8B shape): one-by-one {len(pairs) / one_s:.1f}/s, service batched {len(pairs) / batched_s:.1f}/s, "
          f"ratio {one_s / batched_s:.1f}x (auto batch {auto})")


def part_hotpaths(path: str, out: dict[str, Any]) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from alignsweep.evaluators.adapters import attached, release
    from alignsweep.evaluators.datasets import load_bbq, load_hazard_prompts
    from alignsweep.evaluators.benchmarks.bbq import score_bbq
    from alignsweep.inference.generation import generate_replies
    from alignsweep.models.loading import load_tokenizer

    tok = load_tokenizer(path)
    base = _load(path)
    res: dict[str, Any] = {}
    # batched generation vs one-by-one (16 prompts, 32 new tokens)
    convs = [[{"role": "user", "content": p.prompt}] for p in load_hazard_prompts("bundled")[:16]]
    one = _timed(lambda: generate_replies(base, tok, convs, max_new_tokens=32, batch_size=1), repeats=1)
    many = _timed(lambda: generate_replies(base, tok, convs, max_new_tokens=32), repeats=2)
    res["generation_ratio"] = one / many
    res["responses_per_s"] = len(convs) / many  # 32 new tokens each, batched (the evaluator's path)
    same = generate_replies(base, tok, convs[:4], max_new_tokens=16, batch_size=1) == \
        generate_replies(base, tok, convs[:4], max_new_tokens=16)
    res["generation_identical"] = same
    # BBQ shared prefix vs one forward per (context, choice)
    items = load_bbq("bundled")[:24]
    ref = _timed(lambda: score_bbq(base, tok, items, batch_size=1, method="reference"), repeats=1)
    fast = _timed(lambda: score_bbq(base, tok, items, batch_size=64), repeats=2)
    res["bbq_ratio"] = ref / fast
    res["bbq_items_per_s"] = len(items) / fast
    a = score_bbq(base, tok, items, batch_size=1, method="reference")
    b = score_bbq(base, tok, items, batch_size=64)
    res["bbq_same_predictions"] = [x["prediction"] for x in a] == [x["prediction"] for x in b]
    res["bbq_max_abs_diff"] = max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x["loglikelihoods"], y["loglikelihoods"]))
    # adapter hot-swap, K=16 LoRA r=16 adapters, vs reloading the base (from local disk) per adapter
    with tempfile.TemporaryDirectory(dir=Path(path).parent) as tmp:
        dirs = []
        for i in range(4):  # 4 distinct adapters, cycled to K=16
            torch.manual_seed(i)
            m = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, init_lora_weights=False,
                                                target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
            m.save_pretrained(f"{tmp}/a{i}")
            base = m.unload()
            dirs.append(f"{tmp}/a{i}")
        adapters = (dirs * 4)[:16]
        probe = tok(["Who was not comfortable using the phone?"], return_tensors="pt").to("cuda")

        def swap() -> None:
            for d in adapters:
                with attached(base, d) as mm, torch.no_grad():
                    mm(**probe)
            release(base)

        def reload_two() -> None:  # 2 reloads measured, scaled to 16 (a reload is ~16 GB from disk)
            for d in adapters[:2]:
                b = _load(path)
                with attached(b, d, method="reference") as mm, torch.no_grad():
                    mm(**probe)
                del b
                torch.cuda.empty_cache()

        swap_s = _timed(swap, repeats=2)
        reload_s = _timed(reload_two, repeats=1) * 8
    res["adapter_swap_ratio"] = reload_s / swap_s
    out["hotpaths"] = res
    print("hot paths (8B shape):", json.dumps(res))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["train", "judge", "hotpaths"])
    parser.add_argument("--out", default="bench-gpu-out")
    args = parser.parse_args()
    import torch

    from alignsweep.logs import quiet_libraries

    quiet_libraries()
    assert torch.cuda.is_available(), "bench/gpu.sh needs a CUDA GPU"
    out_dir = Path(args.out)
    model_dir = Path(tempfile.gettempdir()) / "alignsweep-gpu-8b"  # 16 GB: kept out of $OUT
    path = str(model_dir / "llama-8b-shaped")
    if not (Path(path) / "config.json").is_file():
        model_dir.mkdir(parents=True, exist_ok=True)
        path, _ = build_8b(model_dir)
    out: dict[str, Any] = {}
    {"train": part_train, "judge": part_judge, "hotpaths": part_hotpaths}[args.part](path, out)
    results = out_dir / "gpu.json"
    merged = json.loads(results.read_text()) if results.is_file() else {}
    merged.update(out)
    results.write_text(json.dumps(merged, indent=2, default=str))


if __name__ == "__main__":
    main()
