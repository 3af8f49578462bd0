"""Where this process's models go: the GPU Ray assigned to it when CUDA is there, else the CPU.

Why one function: a trial that asks `resources.gpu: 1` gets a GPU from Ray, and evaluator and judge
actors get theirs (fractions included: two evaluators at 0.5 GPU share one); every model load —
trainer, evaluators, judges, `audit`, the tiny-model builder — must land on that device, or the GPU
sits idle while an 8B model crawls on the CPU. Ray exposes the assignment as `ray.get_gpu_ids()` and
sets `CUDA_VISIBLE_DEVICES` to those ids, so torch numbers them from 0; a process outside Ray (the
`audit` command, a notebook) uses the first visible GPU. A process that Ray gave no GPU stays on the
CPU even when the machine has GPUs: taking one would collide with the trials that were given it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from alignsweep.errors import InputError

AUTO = "auto"


@dataclass(frozen=True)
class DeviceFacts:
    """What the choice depends on, read from the process (`current_facts`) or given by a test."""

    cuda_available: bool
    in_ray_worker: bool
    ray_gpu_ids: tuple[str, ...]  # Ray's assignment to this worker (empty outside Ray or without GPUs)
    visible_devices: tuple[str, ...] | None  # CUDA_VISIBLE_DEVICES as a list, None when unset
    cuda_build: bool = False  # torch was built with CUDA (a CPU-only wheel can never see a GPU)


def current_facts() -> DeviceFacts:
    import torch

    in_ray, gpu_ids = False, ()
    try:
        import ray

        if ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
            in_ray, gpu_ids = True, tuple(str(g) for g in ray.get_gpu_ids())
    except ImportError:  # ray is a dependency, but a bare `audit` does not need it
        pass
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return DeviceFacts(cuda_available=torch.cuda.is_available(), in_ray_worker=in_ray, ray_gpu_ids=gpu_ids,
                       visible_devices=tuple(v.strip() for v in visible.split(",") if v.strip())
                       if visible is not None else None, cuda_build=torch.version.cuda is not None)


def choose_device(requested: str = AUTO, facts: DeviceFacts | None = None) -> str:
    """`cpu`, or `cuda:<index>` in torch's numbering. `requested`: `auto` (the rule above), `cpu`,
    `cuda` or `cuda:<n>` (an explicit choice; `cuda` without CUDA is an `InputError`)."""
    facts = facts or current_facts()
    if requested == "cpu":
        return "cpu"
    _check_visible_devices(facts)
    if requested.startswith("cuda"):
        if not facts.cuda_available:
            raise InputError(f"device {requested!r}: CUDA is not available to this process (torch sees no GPU)")
        return requested if ":" in requested else "cuda:0"
    if requested != AUTO:
        raise InputError(f"device {requested!r}: expected auto, cpu, cuda or cuda:<n>")
    if not facts.cuda_available:
        return "cpu"
    if not facts.in_ray_worker:
        return "cuda:0"
    if not facts.ray_gpu_ids:
        return "cpu"
    return f"cuda:{_torch_index(facts.ray_gpu_ids[0], facts.visible_devices)}"


def _check_visible_devices(facts: DeviceFacts) -> None:
    """Outside Ray, a CUDA_VISIBLE_DEVICES that names GPUs where torch (a CUDA build) sees none is a typo in
    the environment (`7` on a 4-GPU machine): one line, rather than a silent run on the CPU. An empty value
    or `-1` hides the GPUs on purpose."""
    wanted = [v for v in facts.visible_devices or () if not v.startswith("-")]
    if wanted and facts.cuda_build and not facts.cuda_available and not facts.in_ray_worker:
        raise InputError(f"CUDA_VISIBLE_DEVICES={','.join(facts.visible_devices or ())!r} names no device torch can "
                         "use; fix or unset it (or choose the CPU: --device cpu)")


def check_gpus_available(asked: float, field: str, facts: DeviceFacts | None = None) -> None:
    """A local Ray instance offers the GPUs torch sees; asking for one where there are none leaves every trial
    PENDING with no word from Ray, so that is bad input here."""
    if asked <= 0:
        return
    facts = facts or current_facts()
    _check_visible_devices(facts)
    if not facts.cuda_available:
        shown = f" (CUDA_VISIBLE_DEVICES={','.join(facts.visible_devices)!r})" if facts.visible_devices is not None else ""
        raise InputError(f"{field}: {asked:g} GPU asked, but this machine shows torch no GPU{shown}; set it to 0, or "
                         "run on a cluster with --address")


def check_bf16_supported(field: str) -> None:
    """bfloat16 asked for work on this machine's GPU: a pre-Ampere GPU has no bf16 (torch would emulate or fail)."""
    import torch

    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise InputError(f"{field}: bfloat16 asked, but {torch.cuda.get_device_name(0)} does not support it; use "
                         "float32 (or fp16 mixed precision)")


def _torch_index(gpu_id: str, visible: Sequence[str] | None) -> int:
    """Ray's GPU id as torch's index: its position in CUDA_VISIBLE_DEVICES when Ray set that (the
    default), else the id itself (`RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES`)."""
    if visible is not None and gpu_id in visible:
        return list(visible).index(gpu_id)
    return int(gpu_id)


def describe(device: str) -> str:
    """`cpu`, or `cuda:0 NVIDIA H200`: what the store records as where work ran."""
    if not device.startswith("cuda"):
        return device
    import torch

    try:
        return f"{device} {torch.cuda.get_device_name(torch.device(device))}"
    except (RuntimeError, AssertionError):  # a faked or vanished GPU still records its index
        return device
