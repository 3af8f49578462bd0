"""The product on a GPU, checked from its own store, and the study's wall-time projection.

`python -m bench.gpu_product check RESULTS_DIR` reads a finished `sweeps/gpu-tiny.yaml` sweep and
fails unless every trial trained on `cuda` and every evaluation was computed on `cuda` (trials.device,
metrics.device). `python -m bench.gpu_product project gpu.json` turns the 8B-shape figures of
`bench.gpu_8b` into the wall time of `sweeps/paper.yaml` on 8 GPUs. Both print one line per figure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# sweeps/paper.yaml: 288 trials; 10,000 examples, batch 8, 1/2/3 epochs → 1,250/2,500/3,750 steps (mean
# 2,500); an evaluation every 250 steps; AILuminate demo 1,200 prompts, BBQ 58,492 items, XSTest 450.
PAPER = {"trials": 288, "mean_steps": 2500, "eval_interval": 250, "hazard_prompts": 1200, "bbq_items": 58492,
         "xstest_prompts": 450, "gpus": 8, "train_tokens_per_step": 8 * 512}


def check(sweep_dir: str) -> int:
    import alignsweep

    con = alignsweep.open(sweep_dir)
    trials = con.sql("SELECT trial_id, method, device FROM trials").fetchall()
    evals = con.sql("SELECT DISTINCT device FROM metrics WHERE device IS NOT NULL").fetchall()
    trained = [t for t in trials if t[1] != "base"]
    on_gpu = [t for t in trained if (t[2] or "").startswith("cuda")]
    print(f"product: {len(on_gpu)}/{len(trained)} trials trained on cuda; evaluator devices: "
          f"{sorted(d for (d,) in evals)}")
    ok = trained and len(on_gpu) == len(trained) and evals and all(d.startswith("cuda") for (d,) in evals)
    print("product on GPU:", "yes" if ok else "NO")
    return 0 if ok else 1


def project(gpu_json: str) -> int:
    """Trials run one per GPU; evaluations run beside them on GPU shares (counted as extra GPU time)."""
    figures = json.loads(Path(gpu_json).read_text())
    train, judge, hot = figures.get("train", {}), figures.get("judge", {}), figures.get("hotpaths", {})
    if not (train.get("step_s") and judge.get("batched_per_s") and hot.get("responses_per_s")
            and hot.get("bbq_items_per_s")):
        print("projection: needs the train, judge and hotpaths figures in", gpu_json)
        return 1
    p = PAPER
    step_s = train["step_s"] * p["train_tokens_per_step"] / (train["batch"] * train["seq"])
    evals = p["mean_steps"] // p["eval_interval"] + 1  # + the step-0 control
    prompts = p["hazard_prompts"] + p["xstest_prompts"]
    eval_s = prompts / hot["responses_per_s"] + prompts / judge["batched_per_s"] + p["bbq_items"] / hot["bbq_items_per_s"]
    gpu_hours = p["trials"] * (p["mean_steps"] * step_s + evals * eval_s) / 3600
    print(f"LoRA step at 8B shape: {train['step_s']:.3f} s ({train['batch']}x{train['seq']}), MFU "
          f"{(train.get('mfu') or float('nan')):.1%}; guard {judge['batched_per_s']:.1f} responses/s; "
          f"generation {hot['responses_per_s']:.1f} responses/s; BBQ {hot['bbq_items_per_s']:.1f} items/s")
    print(f"paper.yaml: {p['trials']} trials x ~{p['mean_steps']} steps ({step_s:.2f} s/step) + {evals} full "
          f"evaluations of {eval_s / 60:.0f} min each = {gpu_hours:.0f} GPU-hours; on {p['gpus']} GPUs "
          f"~{gpu_hours / p['gpus']:.0f} h wall")
    return 0


if __name__ == "__main__":
    command, arg = sys.argv[1], sys.argv[2]
    sys.exit({"check": check, "project": project}[command](arg))
