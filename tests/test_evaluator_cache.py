"""The evaluator's result cache: a byte-identical adapter is scored once, changed weights (or a
different screen) are scored again, and a cached result can never be changed through a copy."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from alignsweep.evaluators.evaluate import adapter_key

SPEC = {"safety": {"limit": 1, "max_new_tokens": 4}, "fairness": {"limit": 1},
        "over_refusal": {"limit": 1}, "utility": {"enabled": False}}


class CountingEvaluator:
    """An `Evaluator` on the cached tiny llama whose judges count the pairs they are asked about."""

    def __init__(self, base: str) -> None:
        from alignsweep.evaluators.config import EvaluationSpec
        from alignsweep.evaluators.evaluate import Evaluator, local_judges

        spec = EvaluationSpec.model_validate(SPEC)
        judge, name, over, over_name = local_judges(spec)
        self.safety_calls: list[int] = []
        self.over_calls: list[int] = []

        def counted(fn, calls):
            def judge_fn(pairs):
                calls.append(len(pairs))
                return fn(pairs)
            return judge_fn

        self.evaluator = Evaluator(spec, base, judge=counted(judge, self.safety_calls), judge_name=name,
                                   over_refusal_judge=counted(over, self.over_calls), over_refusal_judge_name=over_name)

    def scored(self) -> int:
        """How many evaluations reached the judges so far."""
        return len(self.safety_calls)

    def evaluate(self, adapter, **kwargs):
        return self.evaluator.evaluate(None if adapter is None else str(adapter), **kwargs)


@pytest.fixture(scope="module")
def counting(tiny_paths: Mapping[str, Path]) -> CountingEvaluator:
    return CountingEvaluator(str(tiny_paths["llama"]))


def _changed_copy(adapter: str, out: Path, delta: float = 0.5) -> Path:
    """`adapter` with every LoRA B matrix moved by `delta`: the same config, different weights."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(adapter, out)
    weights = load_file(str(out / "adapter_model.safetensors"))
    changed = {k: (v + delta if "lora_B" in k else v) for k, v in weights.items()}
    assert any(not torch.equal(changed[k], weights[k]) for k in weights)
    save_file(changed, str(out / "adapter_model.safetensors"))
    return out


def _rows(result) -> tuple:
    metrics = sorted((r["benchmark"], r["category"], r["metric"], r["n"],
                      None if r["value"] != r["value"] else round(r["value"], 12)) for r in result.metrics)
    return metrics, len(result.rows("safety_items")), len(result.rows("fairness_items"))


def test_adapter_key_covers_config_weights_and_what_is_scored(untrained_lora: str, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(untrained_lora, tmp_path / "copy"))
    key = adapter_key(untrained_lora, None, True)
    assert key is not None and len(key) == 64
    assert adapter_key(str(copy), None, True) == key  # content, not path
    assert adapter_key(str(_changed_copy(untrained_lora, tmp_path / "changed")), None, True) != key
    config = copy / "adapter_config.json"
    config.write_text(config.read_text() + "\n")
    assert adapter_key(str(copy), None, True) != key  # the config is part of the key too
    assert len({adapter_key(untrained_lora, s, f) for s, f in ((None, True), (0.5, True), (0.5, False), (0.25, False))}) == 4
    assert adapter_key(None, None, True) is None
    assert adapter_key(str(tmp_path / "missing"), None, True) is None  # unreadable: never cached


def test_byte_identical_adapter_is_a_hit_and_changed_weights_a_miss(counting: CountingEvaluator,
                                                                    untrained_lora: str, tmp_path: Path) -> None:
    adapter = _changed_copy(untrained_lora, tmp_path / "adapter", delta=0.1)  # weights no other test scores
    before = counting.scored()
    first = counting.evaluate(adapter)
    assert counting.scored() == before + 1 and counting.safety_calls[-1] == 11  # one hazard per category

    twin = shutil.copytree(adapter, tmp_path / "twin")
    again = counting.evaluate(twin)
    assert counting.scored() == before + 1  # a hit: no generation, no judge
    assert _rows(again) == _rows(first)

    changed = counting.evaluate(_changed_copy(str(adapter), tmp_path / "changed", delta=0.5))
    assert counting.scored() == before + 2  # a miss: scored again
    assert _rows(changed)[1:] == _rows(first)[1:]

    counting.evaluate(adapter, screen=0.5)
    assert counting.scored() == before + 3  # same weights, another screen: another result


def test_cached_result_cannot_be_changed_through_what_evaluate_returns(counting: CountingEvaluator,
                                                                       untrained_lora: str) -> None:
    first = counting.evaluate(untrained_lora)
    truth = _rows(first)
    first.metrics[0]["value"] = 123.0
    first.metrics.clear()
    first.rows("safety_items").clear()
    second = counting.evaluate(untrained_lora)
    assert _rows(second) == truth
    second.rows("fairness_items")[0]["prediction"] = -1
    assert counting.evaluate(untrained_lora).rows("fairness_items")[0]["prediction"] != -1


def test_the_base_is_never_cached(counting: CountingEvaluator) -> None:
    before = counting.scored()
    counting.evaluate(None)
    counting.evaluate(None)
    assert counting.scored() == before + 2


def test_cache_is_bounded_oldest_first(counting: CountingEvaluator, untrained_lora: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import alignsweep.evaluators.evaluate as evaluate

    monkeypatch.setattr(evaluate, "_CACHE_SIZE", 1)
    other = _changed_copy(untrained_lora, tmp_path / "other", delta=0.25)  # weights no other test scores
    counting.evaluate(untrained_lora)
    before = counting.scored()
    counting.evaluate(other)  # fills the one slot, evicting the first adapter's result
    counting.evaluate(other)
    assert counting.scored() == before + 1
    counting.evaluate(untrained_lora)
    assert counting.scored() == before + 2
