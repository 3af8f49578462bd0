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
