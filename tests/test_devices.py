"""Where models go: the device rule with CUDA faked, and Ray's real GPU assignment read by it.

This machine has no GPU, so CUDA availability is the one fact faked; Ray's GPU ids and the
CUDA_VISIBLE_DEVICES it sets come from a real Ray instance declaring logical GPUs.
"""

from __future__ import annotations

import dataclasses

import pytest

from alignsweep.errors import InputError
from alignsweep.models.devices import DeviceFacts, choose_device, describe


def facts(cuda: bool = True, ray: bool = True, ids: tuple[str, ...] = (), visible: tuple[str, ...] | None = None):
    return DeviceFacts(cuda_available=cuda, in_ray_worker=ray, ray_gpu_ids=ids, visible_devices=visible)


@pytest.mark.parametrize(("f", "expected"), [
    (facts(cuda=False, ids=("0",), visible=("0",)), "cpu"),  # no CUDA: CPU whatever Ray says
    (facts(ids=("3",), visible=("3",)), "cuda:0"),  # Ray set CUDA_VISIBLE_DEVICES=3: torch's cuda:0
    (facts(ids=("5",), visible=("4", "5")), "cuda:1"),  # position in the visible list
    (facts(ids=("2",), visible=None), "cuda:2"),  # Ray told not to set CUDA_VISIBLE_DEVICES
    (facts(ids=(), visible=("0", "1")), "cpu"),  # a worker Ray gave no GPU never takes one
    (facts(ray=False, visible=None), "cuda:0"),  # outside Ray (audit): the first visible GPU
])
def test_auto_rule(f: DeviceFacts, expected: str) -> None:
    assert choose_device("auto", f) == expected


def test_explicit_choices() -> None:
    assert choose_device("cpu", facts()) == "cpu"
    assert choose_device("cuda", facts()) == "cuda:0"
    assert choose_device("cuda:3", facts()) == "cuda:3"
    with pytest.raises(InputError, match="CUDA is not available"):
        choose_device("cuda", facts(cuda=False))
    with pytest.raises(InputError, match="expected auto, cpu, cuda"):
        choose_device("tpu", facts())


def test_describe_cpu_and_unnamed_gpu() -> None:
    assert describe("cpu") == "cpu"
    assert describe("cuda:7").startswith("cuda:7")  # no GPU here: the index is still recorded


@pytest.mark.slow
def test_ray_assignment_reaches_the_choice() -> None:
    """Real Ray, 2 logical GPUs: whole-GPU actors get distinct GPUs, two 0.5-GPU actors share one,
    a 0-GPU actor stays on the CPU — each as torch would number it in that process."""
    import ray

    from alignsweep.engine.runtime import local_init_kwargs
    from alignsweep.models.devices import current_facts

    @ray.remote
    class Probe:
        def where(self) -> tuple[str, tuple[str, ...], tuple[str, ...] | None]:
            f = dataclasses.replace(current_facts(), cuda_available=True)  # the one faked fact
            return choose_device("auto", f), f.ray_gpu_ids, f.visible_devices

    ray.init(**{**local_init_kwargs(num_cpus=2), "num_gpus": 2}, log_to_driver=False)
    try:
        whole = [Probe.options(num_cpus=0, num_gpus=1).remote() for _ in range(2)]
        half = [Probe.options(num_cpus=0, num_gpus=0.5).remote() for _ in range(2)]
        none = Probe.options(num_cpus=0, num_gpus=0).remote()
        w = ray.get([a.where.remote() for a in whole])
        h = ray.get([a.where.remote() for a in half])
        n = ray.get(none.where.remote())
    finally:
        ray.shutdown()
    assert [d for d, _, _ in w] == ["cuda:0", "cuda:0"]  # each sees only its own GPU …
    assert {ids for _, ids, _ in w} == {("0",), ("1",)}  # … and they are different GPUs
    assert h[0][1] == h[1][1] and len(h[0][1]) == 1 and [d for d, _, _ in h] == ["cuda:0", "cuda:0"]
    assert n[0] == "cpu" and n[1] == ()


# ---------------------------------------------------------------- settings reach every load


def test_evaluator_and_judge_load_in_their_specs_dtype_on_the_chosen_device(tiny_paths) -> None:
    """A base declared bfloat16 is evaluated in bfloat16, a guard judge keeps its checkpoint's dtype unless
    its spec says otherwise, and both land on the device the rule chose (the CPU here)."""
    import torch

    from alignsweep.evaluators.config import EvaluationSpec
    from alignsweep.evaluators.evaluate import Evaluator
    from alignsweep.evaluators.judges import JudgeSpec, build_judge
    from alignsweep.models.loading import LoadOptions

    spec = EvaluationSpec.model_validate({"safety": {"limit": 1}, "fairness": {"limit": 1},
                                          "over_refusal": {"enabled": False}, "utility": {"enabled": False}})
    ev = Evaluator(spec, str(tiny_paths["llama"]), judge=lambda pairs: [], judge_name="none",
                   options=LoadOptions(dtype="bfloat16"))
    assert ev.model.dtype == torch.bfloat16 and ev.model.device.type == "cpu" and ev.device == "cpu"
    guard = build_judge(JudgeSpec(name="llama_guard", model=str(tiny_paths["llama"]), dtype="float16"))
    assert guard.model.dtype == torch.float16 and guard.device == "cpu"
    native = build_judge(JudgeSpec(name="llama_guard", model=str(tiny_paths["llama"])))
    assert native.model.dtype == torch.float32  # `auto`: the tiny checkpoint was saved in float32


@pytest.mark.slow
def test_trainer_records_its_device_and_honours_precision_and_accumulation(tiny_paths) -> None:
    """The trainer trains on choose_device()'s device and says so; two micro-batches of 4 make one
    optimizer step whose loss is their mean; bf16 autocast changes the loss (it really ran)."""
    from alignsweep.spec.config import validate_spec
    from alignsweep.spec.plan import expand_trials
    from alignsweep.trainables.plan import TrialPlan
    from alignsweep.trainables.trainer import PeftTrainer

    def plan(**training) -> TrialPlan:
        spec = validate_spec({"name": "t", "models": ["tiny:llama"], "methods": {"lora": {"r": [4]}},
                              "training": {"max_steps": 2, "learning_rates": [1e-3], "batch_size": 4,
                                           "max_examples": 64, "max_seq_length": 64, "heldout_examples": 0,
                                           **training}})
        (one,) = expand_trials(spec)
        return one

    plain = PeftTrainer(plan()).setup()
    assert plain.device == "cpu" and plain.device_name == "cpu"
    micro = [plain.batch_for_step(i) for i in range(2)]
    accumulated = PeftTrainer(plan(gradient_accumulation_steps=2)).setup()
    first = [accumulated.model(**b).loss.item() for b in micro]  # before any step: the two micro-losses
    loss = accumulated.train_step()
    assert loss == pytest.approx(sum(first) / 2, rel=1e-5) and accumulated.state.step == 1
    assert accumulated.state.steps_per_epoch == -(-len(accumulated.examples) // 8)
    fp32, bf16 = PeftTrainer(plan()).setup(), PeftTrainer(plan(precision="bf16")).setup()
    assert fp32.train_step() != bf16.train_step()
    with pytest.raises(InputError, match="fp16 needs a GPU"):
        PeftTrainer(plan(precision="fp16")).setup()
