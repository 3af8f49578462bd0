"""Adapters travel by content: `AdapterPayload` is read and hashed once where the adapter was saved;
keys, routing and attaching work from the payload alone, with the saved directory gone."""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from alignsweep.errors import InputError
from alignsweep.evaluators import payload as payload_module
from alignsweep.evaluators.evaluate import adapter_key
from alignsweep.evaluators.payload import AdapterPayload


def _saved(directory: Path, config: dict, weights: bytes) -> Path:
    directory.mkdir(parents=True)
    (directory / "adapter_config.json").write_text(json.dumps(config))
    (directory / "adapter_model.safetensors").write_bytes(weights)
    return directory


def test_payload_holds_the_saved_bytes_and_digests_their_content(tmp_path: Path) -> None:
    a = AdapterPayload.read(_saved(tmp_path / "a", {"peft_type": "LORA", "r": 2}, b"w1"))
    assert a.config == (tmp_path / "a" / "adapter_config.json").read_bytes() and a.weights == b"w1"
    assert a.source == str(tmp_path / "a") and a.config_dict() == {"peft_type": "LORA", "r": 2}
    same = AdapterPayload.read(_saved(tmp_path / "same", {"peft_type": "LORA", "r": 2}, b"w1"))
    other_weights = AdapterPayload.read(_saved(tmp_path / "w", {"peft_type": "LORA", "r": 2}, b"w2"))
    other_config = AdapterPayload.read(_saved(tmp_path / "c", {"peft_type": "LORA", "r": 4}, b"w1"))
    assert a.digest == same.digest  # the content names it, not where it was read
    assert len({a.digest, other_weights.digest, other_config.digest}) == 3
    # the two parts are hashed apart: moving bytes between them changes the digest
    assert AdapterPayload(b"ab", b"c").digest != AdapterPayload(b"a", b"bc").digest


def test_cache_and_routing_key_come_from_the_payload_alone(tmp_path: Path) -> None:
    a = AdapterPayload.read(_saved(tmp_path / "a", {"peft_type": "LORA"}, b"w1"))
    b = AdapterPayload.read(_saved(tmp_path / "b", {"peft_type": "LORA"}, b"w1"))
    shutil.rmtree(tmp_path / "a")  # nothing is read again
    assert adapter_key(a, None, True) == adapter_key(b, None, True)
    keys = {adapter_key(a, None, True), adapter_key(a, 0.5, True), adapter_key(a, 0.5, False)}
    assert len(keys) == 3 and adapter_key(None, None, True) is None
    assert adapter_key(AdapterPayload(b"{}", b"w2"), None, True) != adapter_key(a, None, True)


def test_payload_is_hashed_once_and_travels_with_its_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = AdapterPayload.read(_saved(tmp_path / "a", {"peft_type": "LORA"}, b"weights"))

    def no_rehash(*_: object) -> str:
        raise AssertionError("the digest was computed again")

    monkeypatch.setattr(payload_module, "_digest", no_rehash)
    copy = pickle.loads(pickle.dumps(a))  # how Ray's object store hands it over
    assert copy == a and copy.digest == a.digest and copy.weights == b"weights"
    with pytest.raises(TypeError):
        AdapterPayload(b"{}", b"w", digest="forged")  # type: ignore[call-arg]


def test_missing_or_pickled_adapters_are_refused_where_they_are_read(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no adapter_config.json"):
        AdapterPayload.read(tmp_path)
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(InputError, match="pickled adapters are refused"):
        AdapterPayload.read(tmp_path)
    with pytest.raises(InputError, match="not a JSON object"):
        AdapterPayload(b"[]", b"w").config_dict()


def test_paths_are_no_longer_accepted_for_scoring() -> None:
    from alignsweep.evaluators.actors import score_checkpoint
    from alignsweep.evaluators.adapters import attached

    with pytest.raises(TypeError, match="AdapterPayload"):
        with attached(torch.nn.Linear(1, 1), "/a/trial/scratch/dir"):  # type: ignore[arg-type]
            pass
    with pytest.raises(TypeError, match="AdapterPayload"):
        score_checkpoint("tiny:llama", "/a/trial/scratch/dir", "t", 1, "s", "/r",  # type: ignore[arg-type]
                         method="lora")


@pytest.mark.parametrize("attach", ["hot_swap", "reference"])
def test_attach_from_a_payload_whose_directory_is_gone(tmp_path: Path, attach: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluator's side: the adapter's logits exactly as peft loads it from its directory, with that
    directory deleted before attaching; peft's loader only sees this process's own scratch copy, which
    is removed again; the base is bit-identical afterwards."""
    from peft import PeftModel

    from _evaluators_models import build_model, save_adapter
    from alignsweep.evaluators.adapters import attached, release
    from alignsweep.models.loading import load_model, load_tokenizer

    base_dir = build_model(tmp_path / "base")
    adapter_dir = save_adapter(base_dir, tmp_path / "trial-scratch" / "lora", "lora")
    tok = load_tokenizer(str(base_dir))
    enc = tok(["Who was not comfortable using the phone?", "Who?"], return_tensors="pt", padding=True)
    with torch.no_grad():
        plain = load_model(str(base_dir))(**enc).logits
        expected = PeftModel.from_pretrained(load_model(str(base_dir)), str(adapter_dir)).eval()(**enc).logits
    adapter = AdapterPayload.read(adapter_dir)
    shutil.rmtree(tmp_path / "trial-scratch")

    own_tmp = tmp_path / "evaluator-tmp"
    own_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(own_tmp))
    model = load_model(str(base_dir))
    for _ in range(2):  # hot_swap: built once, then only its weights swapped in
        with attached(model, adapter, method=attach) as m, torch.no_grad():
            assert torch.equal(m(**enc).logits, expected)
        with torch.no_grad():
            assert torch.equal(model(**enc).logits, plain)
    assert not torch.equal(expected, plain)
    assert list(own_tmp.iterdir()) == []  # the local copy peft read is gone again
    release(model)
