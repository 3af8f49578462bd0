"""What a sweep asks of the machine it runs on (a local Ray instance: no --address), checked last in preflight.

Why: a local Ray offers the GPUs torch sees; a trial or actor that asks for one where there is none stays
PENDING with no word from Ray, and fp16 mixed precision or bfloat16 fail only inside the trial.
"""

from __future__ import annotations

from typing import Any

from alignsweep.errors import InputError
from alignsweep.models.devices import check_bf16_supported, check_gpus_available


def check_precision(spec: Any) -> None:
    """A precision the trials' device can train in: fp16 mixed precision needs a GPU."""
    if spec.training.precision == "fp16" and spec.resources.gpu == 0:
        raise InputError("training.precision: fp16 needs a GPU and resources.gpu is 0 (trials run on the CPU); "
                         "use bf16 or fp32, or ask for a GPU")


def check_machine(spec: Any, eval_spec: Any) -> None:
    """Every GPU ask of the spec (trials, evaluator and judge actors) is one this machine has; bf16 where asked."""
    asks = [("resources.gpu", spec.resources.gpu)]
    if eval_spec is not None:
        asks += [("evaluation.evaluators.resources.gpu", eval_spec.evaluators.resources.gpu),
                 ("evaluation.safety.judge_resources.gpu", eval_spec.judge_resources("safety").gpu),
                 ("evaluation.over_refusal.judge_resources.gpu", eval_spec.judge_resources("over_refusal").gpu)]
    for field, gpus in asks:
        check_gpus_available(gpus, field)
    if spec.resources.gpu > 0:  # trials train on this machine's GPU: can it do bfloat16?
        bf16 = [f"models[{i}].dtype" for i, m in enumerate(spec.models) if m.dtype == "bfloat16"]
        for field in bf16 + (["training.precision"] if spec.training.precision == "bf16" else []):
            check_bf16_supported(field)
