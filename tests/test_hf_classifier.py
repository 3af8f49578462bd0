"""`hf_classifier` as a judge, end to end: a real (tiny, random) sequence classifier built offline, the
pre-run checks that accept it (and refuse a causal LM or a label map that names no label of it), and
`alignsweep audit --judge hf_classifier --judge-model DIR --judge-arg label_map=…`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pytest

from alignsweep.cli.main import main

LABEL_MAP = '{"LABEL_0": "safe", "LABEL_1": "unsafe"}'


@pytest.fixture(scope="module")
def classifier(tiny_paths: Mapping[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-label LlamaForSequenceClassification (random weights, seed 0) with tiny:llama's tokenizer, safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from alignsweep.models.loading import load_tokenizer

    folder = tmp_path_factory.mktemp("classifier")
    tokenizer = load_tokenizer(str(tiny_paths["llama"]))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, num_labels=2,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    # transformers 5 leaves default labels out of config.json; they are LABEL_0 / LABEL_1 when loaded
    assert json.loads((folder / "config.json").read_text()).get("id2label", {"0": "LABEL_0", "1": "LABEL_1"}) == \
        {"0": "LABEL_0", "1": "LABEL_1"}
    return folder


def audit_argv(results: Path, model: Path | str, *judge_args: str) -> list[str]:
    args = ["audit", "--base", "tiny:llama", "--judge", "hf_classifier", "--judge-model", str(model),
            "--limit", "1", "--results", str(results)]
    for item in judge_args:
        args += ["--judge-arg", item]
    return args


@pytest.mark.slow
def test_audit_with_a_local_classifier_judge_end_to_end(classifier: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    from alignsweep.evaluators.judges import HFClassifierJudge

    results = tmp_path / "audit"
    assert main(audit_argv(results, classifier, f"label_map={LABEL_MAP}", "batch_size=4")) == 0, \
        capsys.readouterr().err
    con = duckdb.connect()
    items = con.execute(f"SELECT benchmark, prompt, response, verdict, judge FROM read_parquet('{results}/store/"
                        "safety_items/*.parquet') ORDER BY benchmark, prompt_id").fetchall()
    safety = [r for r in items if r[0] == "safety"]
    assert len(safety) >= 11 and {r[4] for r in safety} == {f"hf_classifier:{classifier}"}
    assert {r[4] for r in items if r[0] == "over_refusal"} == {"refusal"}  # over-refusal keeps its own judge
    # every stored verdict is the classifier's own decision on the stored reply
    judge = HFClassifierJudge(str(classifier), json.loads(LABEL_MAP), batch_size=4)
    fresh = judge.judge([(p, r) for _, p, r, _, _ in safety])
    assert [v.verdict for v in fresh] == [r[3] for r in safety]
    assert {r[3] for r in safety} <= {"safe", "unsafe"}
    rate = con.execute(f"SELECT value, n FROM read_parquet('{results}/store/metrics/*.parquet') WHERE "
                       "benchmark = 'safety' AND category = 'overall' AND metric = 'safe_rate'").fetchall()
    assert rate == [(sum(r[3] == "safe" for r in safety) / len(safety), len(safety))]


def _expect_bad(argv: list[str], pattern: str, results: Path, capsys: pytest.CaptureFixture) -> None:
    import re

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("alignsweep: error: "), err
    assert re.search(pattern, err), err
    assert not results.exists()


@pytest.mark.parametrize(("judge_args", "pattern"), [
    (['label_map={"toxic": "unsafe"}'], r"label_map key 'toxic' is not one of its labels \(LABEL_0, LABEL_1\)"),
    ([], r"--judge hf_classifier: judge hf_classifier needs `label_map`"),
    (['label_map={"LABEL_0": "maybe"}'], r"--judge-arg label_map.LABEL_0: Input should be 'safe' or 'unsafe'"),
    (["label_map={LABEL_0: [safe"], r"--judge-arg label_map: value .* is not valid YAML/JSON"),
    (["colour=red"], r"--judge-arg colour: unknown field$"),
    (["lable_map=red"], r"--judge-arg lable_map: unknown field \(did you mean 'label_map'\?\)"),
    (["label_map"], r"--judge-arg 'label_map': expected key=value"),
])
def test_bad_classifier_judge_arguments(classifier: Path, judge_args: list[str], pattern: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "audit"
    _expect_bad(audit_argv(results, classifier, *judge_args), pattern, results, capsys)


def test_preflight_refuses_a_causal_lm_or_pickled_classifier(classifier: Path, tiny_paths: Mapping[str, Path],
                                                             tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "audit"
    _expect_bad(audit_argv(results, tiny_paths["llama"], f"label_map={LABEL_MAP}"),
                r"'LlamaForCausalLM' is not a sequence-classification model", results, capsys)
    pickled = tmp_path / "pickled"
    shutil.copytree(classifier, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    _expect_bad(audit_argv(results, pickled, f"label_map={LABEL_MAP}"), r"only pickled weights", results, capsys)


def test_sweep_preflight_accepts_a_classifier_judge(classifier: Path, tiny_paths: Mapping[str, Path],
                                                   tmp_path: Path) -> None:
    from alignsweep.errors import InputError
    from alignsweep.evaluators.config import EvaluationSpec
    from alignsweep.spec.preflight import check_evaluation_data

    def spec(model: Path, label_map: dict) -> EvaluationSpec:
        judge = {"name": "hf_classifier", "model": str(model), "label_map": label_map}
        return EvaluationSpec.model_validate({"safety": {"judges": [judge], "limit": 1}, "fairness": {"limit": 1}})

    check_evaluation_data(spec(classifier, {"LABEL_1": "unsafe", "0": "safe"}))  # label names or ids
    with pytest.raises(InputError, match=r"label_map key 'unsafe' is not one of its labels"):
        check_evaluation_data(spec(classifier, {"unsafe": "unsafe"}))
    with pytest.raises(InputError, match="is not a sequence-classification model"):
        check_evaluation_data(spec(tiny_paths["llama"], {"LABEL_0": "safe"}))
    named = tmp_path / "named"  # a classifier with its own label names, as real ones have
    shutil.copytree(classifier, named)
    config = json.loads((named / "config.json").read_text())
    (named / "config.json").write_text(json.dumps({**config, "id2label": {"0": "benign", "1": "toxic"},
                                                   "label2id": {"benign": 0, "toxic": 1}}))
    check_evaluation_data(spec(named, {"benign": "safe", "toxic": "unsafe"}))
    with pytest.raises(InputError, match=r"label_map key 'LABEL_1' is not one of its labels \(benign, toxic\)"):
        check_evaluation_data(spec(named, {"LABEL_1": "unsafe"}))
