"""The method registry's facts about each registered PEFT method agree with what peft builds and saves.

Training, reloading, resuming and detaching every method are in `test_trainer.py`; inference with every
method's adapters in `test_evaluators_models.py` and `test_fast_paths.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from _evaluators_models import hyperparameters
from alignsweep.errors import InputError
from alignsweep.evaluators.evaluate import method_of
from alignsweep.trainables.methods import METHOD_ORDER, METHODS, method_of_adapter


@pytest.mark.parametrize("method", list(METHODS))
def test_entry_facts_match_the_peft_config_it_builds_and_saves(method: str, tmp_path: Path) -> None:
    entry = METHODS.get(method)
    hp = hyperparameters(method)
    config = entry.build(hp, str(tmp_path))
    assert str(config.peft_type.value) == entry.peft_type
    assert config.is_prompt_learning == entry.prompt_learning  # what evaluators and inference read instead
    expected_virtual = config.num_virtual_tokens if config.is_prompt_learning else 0
    assert entry.virtual_positions(hp) == expected_virtual
    config.save_pretrained(str(tmp_path))
    assert [m for m in METHODS if METHODS.get(m).matches(json.loads((tmp_path / "adapter_config.json").read_text()))] \
        == [method]
    assert method_of_adapter(str(tmp_path)) == method


def test_display_order_places_every_method_once() -> None:
    orders = [METHODS.get(m).display_order for m in METHODS]
    assert len(set(orders)) == len(orders), "two methods share a display_order"
    assert sorted(METHOD_ORDER) == sorted(METHODS.names())
    assert [METHODS.get(m).display_order for m in METHOD_ORDER] == sorted(orders)


def test_adapters_of_no_registered_method_and_no_adapter(tmp_path: Path) -> None:
    assert method_of_adapter(None) == "base"
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "ADALORA"}))
    assert method_of_adapter(str(tmp_path)) == "adalora"
    (tmp_path / "adapter_config.json").write_text("{}")
    assert method_of_adapter(str(tmp_path)) == "unknown"
    with pytest.raises(InputError, match="unreadable adapter_config.json"):
        method_of_adapter(str(tmp_path / "missing"))


def test_evaluator_records_need_the_callers_method_name() -> None:
    assert method_of(None, None) == "base"
    assert method_of("/some/adapter", "dora") == "dora"
    with pytest.raises(ValueError, match="need a method name"):
        method_of("/some/adapter", None)


def test_dora_cannot_be_switched_back_to_lora() -> None:
    with pytest.raises(ValidationError, match="use_dora"):
        METHODS.get("dora").model_validate({"use_dora": False})
