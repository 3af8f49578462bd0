#!/usr/bin/env bash
# One prepared run for a lent GPU machine (no network there; budget: 8 minutes).
#   bash bench/gpu.sh            # from the repository root, with .venv carried (CUDA torch inside)
# Writes everything to ${OUT:-bench-gpu-out}/ (gpu.txt: the tables; gpu.json: the numbers).
# Measures, on an 8B-shaped Llama built from its config with random bf16 weights (no download):
#   1. LoRA (r=16, q/k/v/o) training step time and MFU at batch 4 x 1024 tokens, gradient checkpointing on;
#   2. judge throughput for an 8B-shaped guard (same shape, Llama Guard prompt + parser): judge service
#      (batched + cache) vs one call per response;
#   3. the hot-path ratios at that size: adapter hot-swap (K=16), batched generation, BBQ shared prefix;
#   4. the product: `alignsweep run sweeps/gpu-tiny.yaml` (16 tiny trials at 0.25 GPU, evaluators and a
#      guard judge on GPU shares), checked from its store: every trial and evaluation on cuda;
#   5. the projected wall time of sweeps/paper.yaml on 8 GPUs from the figures of 1-3.
# Each part has its own time cap; a part that fails prints why and the rest still runs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-gpu-out}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error HF_HUB_DISABLE_PROGRESS_BARS=1 RAY_USAGE_STATS_ENABLED=0
export ALIGNSWEEP_CACHE="${ALIGNSWEEP_CACHE:-$PWD/.cache/alignsweep}"
PY="${PYTHON:-.venv/bin/python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PY" -c "import torch, transformers, peft; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, 'peft', peft.__version__)" | tee -a "$OUT/gpu.txt"
for part in train judge hotpaths; do
  timeout 170 "$PY" -m bench.gpu_8b "$part" --out "$OUT" 2>&1 | tee -a "$OUT/gpu.txt" || echo "part $part: exit $?" | tee -a "$OUT/gpu.txt"
done
timeout 300 .venv/bin/alignsweep run sweeps/gpu-tiny.yaml --results "$OUT/runs" 2>&1 | tail -25 | tee -a "$OUT/gpu.txt" \
  || echo "product run: exit $?" | tee -a "$OUT/gpu.txt"
"$PY" -m bench.gpu_product check "$OUT/runs/gpu-tiny" 2>&1 | tee -a "$OUT/gpu.txt"
"$PY" -m bench.gpu_product project "$OUT/gpu.json" 2>&1 | tee -a "$OUT/gpu.txt"
