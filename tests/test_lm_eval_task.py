"""lm-evaluation-harness task YAMLs (multiple_choice, zero-shot, local JSON): loading every supported key
form, a one-line InputError for every unsupported one, and scoring checked against plain torch.

Parity with lm-eval itself needs lm-eval installed: `bench/lm_eval_parity.py` (not run here).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from alignsweep.errors import InputError
from alignsweep.store import table_schema
from alignsweep.evaluators.benchmarks.lm_eval_score import (
    predictions,
    score_task,
    task_metrics,
    task_requests,
)
from alignsweep.evaluators.benchmarks.lm_eval_task import load_task

REPO = Path(__file__).resolve().parents[1]
DOCS = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green", "red"], "label": 0,
     "answer": "blue", "subject": "science", "category": "nature"},
    {"question": "How many legs does a cat have?", "choices": ["two", "four", "six"], "label": 1,
     "answer": "four", "subject": "animals", "category": "animals"},
    {"question": "Which one is a fruit?", "choices": ["apple", "chair"], "label": 0, "answer": "apple",
     "subject": "food"},
]
BASE = {
    "task": "demo_mc", "output_type": "multiple_choice", "dataset_path": "json",
    "dataset_kwargs": {"data_files": {"test": "data.jsonl"}}, "test_split": "test",
    "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_choice": "choices", "doc_to_target": "label",
}


def write(tmp_path: Path, cfg: dict[str, Any] | str, docs: list[dict[str, Any]] = DOCS, name: str = "task.yaml",
          data: str = "data.jsonl") -> Path:
    import yaml

    (tmp_path / data).write_text("".join(json.dumps(d) + "\n" for d in docs))
    path = tmp_path / name
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return path


def load(tmp_path: Path, **overrides: Any):
    cfg = {**BASE, **overrides}
    return load_task(write(tmp_path, {k: v for k, v in cfg.items() if v is not ...}), cwd=tmp_path)


# ---------------------------------------------------------------- supported key forms


def test_base_task_renders_like_lm_eval(tmp_path: Path) -> None:
    task = load(tmp_path)
    assert (task.name, task.split, task.target_delimiter, task.metrics) == ("demo_mc", "test", " ", ("acc", "acc_norm"))
    assert [d.doc_id for d in task.docs] == [0, 1, 2]
    assert task.docs[1].context == "Question: How many legs does a cat have?\nAnswer:"
    assert task.docs[1].choices == ("two", "four", "six") and task.docs[1].target == 1
    assert [d.category for d in task.docs] == ["nature", "animals", "demo_mc"]  # no category field: the task
    assert task_requests(task)[:2] == [(task.docs[0].context, " blue"), (task.docs[0].context, " green")]


@pytest.mark.parametrize("choice", ["{{choices}}", "{{[choices[0], choices[1]]}}", ["blue", "green"],
                                    {"A": "blue", "B": "green"}])
def test_doc_to_choice_forms(tmp_path: Path, choice: Any) -> None:
    assert load(tmp_path, doc_to_choice=choice).docs[0].choices[:2] == ("blue", "green")


@pytest.mark.parametrize("target, expected", [
    ("label", [0, 1, 0]), ("answer", [0, 1, 0]), ("{{label}}", [0, 1, 0]), ("{{answer}}", [0, 1, 0]),
    ("{{ 1 if subject == 'animals' else 0 }}", [0, 1, 0]), (1, [1, 1, 1]),
])
def test_doc_to_target_forms(tmp_path: Path, target: Any, expected: list[int]) -> None:
    assert [d.target for d in load(tmp_path, doc_to_target=target).docs] == expected


@pytest.mark.parametrize("description, context", [
    ("Answer the question.\n\n", "Answer the question.\n\nQ"),  # literal (no delimiter added, as lm-eval)
    ("About {{subject}}: ", "About science: Q"),  # template
    ("subject", "scienceQ"),  # a field name wins over a template
])
def test_description_forms(tmp_path: Path, description: str, context: str) -> None:
    assert load(tmp_path, description=description, doc_to_text="Q").docs[0].context == context


def test_text_field_delimiter_metrics_and_ignored_keys(tmp_path: Path) -> None:
    task = load(tmp_path, doc_to_text="question", target_delimiter="", metric_list=[{"metric": "acc"}],
                num_fewshot=0, tag=["x"], task_alias="Demo", metadata={"version": 2}, dataset_name="default",
                training_split="train", fewshot_split="test", fewshot_delimiter="\n", should_decontaminate=True,
                repeats=1, process_docs=None, unsafe_code=False)
    assert task.docs[0].context == DOCS[0]["question"] and task.metrics == ("acc",)
    assert task_requests(task)[0] == (DOCS[0]["question"], "blue")


def test_trailing_whitespace_moves_to_the_continuation(tmp_path: Path) -> None:
    task = load(tmp_path, doc_to_text="Q: {{question}} A: ", target_delimiter="")
    assert task.docs[0].context.endswith("A: ")
    assert task_requests(task)[0] == (task.docs[0].context[:-1], " blue")


@pytest.mark.parametrize("files, split_key, split", [
    ("data.jsonl", "test_split", "train"), (["data.jsonl"], "validation_split", "train"),
    ({"validation": "data.jsonl"}, "validation_split", "validation"), ({"test": ["d*.jsonl"]}, "test_split", "test"),
])
def test_data_files_forms(tmp_path: Path, files: Any, split_key: str, split: str) -> None:
    task = load(tmp_path, dataset_kwargs={"data_files": files}, **{"test_split": ..., split_key: split})
    assert task.split == split and len(task.docs) == 3 and task.data_files == (str(tmp_path / "data.jsonl"),)


def test_data_files_resolve_against_cwd_then_the_yaml_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "yaml").mkdir()
    (tmp_path / "cwd").mkdir()
    path = write(tmp_path / "yaml", {**BASE, "dataset_kwargs": {"data_files": {"test": "data.jsonl"}}})
    monkeypatch.chdir(tmp_path / "cwd")
    assert load_task(path).data_files == (str(tmp_path / "yaml" / "data.jsonl"),)  # fallback: beside the YAML
    (tmp_path / "cwd" / "data.jsonl").write_text(json.dumps(DOCS[0]) + "\n")
    assert load_task(path).data_files == (str(tmp_path / "cwd" / "data.jsonl"),)  # lm-eval's rule first
    assert len(load_task(path).docs) == 1
    path.write_text(path.read_text().replace("test: data.jsonl", "test: missing.jsonl"))
    with pytest.raises(InputError, match=r"'missing.jsonl' not found \(tried .*cwd/missing.jsonl, .*yaml/missing"):
        load_task(path)


def test_include_merges_underneath(tmp_path: Path) -> None:
    import yaml

    common = {k: v for k, v in BASE.items() if k != "task"}
    (tmp_path / "_common_yaml").write_text(yaml.safe_dump({**common, "description": "base "}))
    task = load_task(write(tmp_path, {"include": "_common_yaml", "task": "child", "description": "own "}),
                     cwd=tmp_path)
    assert task.name == "child" and task.docs[0].context.startswith("own Question:")
    (tmp_path / "_common_yaml").write_text("include: task.yaml\n")
    with pytest.raises(InputError, match="include cycle"):
        load_task(tmp_path / "task.yaml", cwd=tmp_path)


def test_missing_fields_are_none_as_datasets_fills_them(tmp_path: Path) -> None:
    task = load(tmp_path, doc_to_text="{{question}}{% if category %} [{{category}}]{% endif %}")
    assert task.docs[0].context.endswith("[nature]") and task.docs[2].context == DOCS[2]["question"]


# ---------------------------------------------------------------- refused: one line naming file and key

UNSUPPORTED = [
    ("output_type", "generate_until"), ("output_type", ...), ("num_fewshot", 5), ("num_fewshot", True),
    ("filter_list", [{"name": "f", "filter": [{"function": "take_first"}]}]), ("process_docs", "x"),
    ("process_results", "x"), ("doc_to_decontamination_query", "{{question}}"), ("use_prompt", "p:q"),
    ("fewshot_config", {"sampler": "first_n"}), ("generation_kwargs", {"until": ["\n"]}), ("gen_prefix", "A:"),
    ("doc_to_image", "img"), ("doc_to_audio", "aud"), ("custom_dataset", "x"), ("repeats", 2), ("repeats", True),
    ("unsafe_code", True), ("dataset_path", "hellaswag"), ("dataset_kwargs", {"name": "x"}),
    ("dataset_kwargs.field", {"data_files": "data.jsonl", "field": "rows"}), ("metric_list", [{"metric": "f1"}]),
    ("metric_list", [{"metric": "acc", "aggregation": "median"}]), ("metric_list", "acc"),
    ("target_delimiter", 3), ("doc_to_text", ...), ("doc_to_choice", ...), ("doc_to_target", ...), ("task", ...),
    ("test_split", ...), ("doc_to_tex", "typo"), ("group", "g"), ("class", "x"), ("description", ["a"]),
]


@pytest.mark.parametrize("key, value", UNSUPPORTED, ids=[f"{k}={v!r}"[:40] for k, v in UNSUPPORTED])
def test_unsupported_key_is_one_line_naming_file_and_key(tmp_path: Path, key: str, value: Any) -> None:
    top = key.split(".")[0]
    with pytest.raises(InputError) as err:
        load(tmp_path, **{top: value})
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "task.yaml") in message and f"'{key}'" in message, message


@pytest.mark.parametrize("key, line", [
    ("doc_to_text", "doc_to_text: !function utils.doc_to_text"),
    ("metric_list.0.aggregation", "metric_list:\n  - metric: acc\n    aggregation: !function utils.agg"),
])
def test_function_tags_are_refused_by_key(tmp_path: Path, key: str, line: str) -> None:
    import yaml

    text = yaml.safe_dump({k: v for k, v in BASE.items() if k != key.split(".")[0]}) + line + "\n"
    with pytest.raises(InputError, match=rf"key '{key}' is `!function utils\.\w+`"):
        load_task(write(tmp_path, text), cwd=tmp_path)


def test_python_tags_and_bad_yaml_are_input_errors(tmp_path: Path) -> None:
    text = "task: !!python/object/apply:os.system ['echo hi']\n"
    with pytest.raises(InputError, match="not valid task YAML"):
        load_task(write(tmp_path, text), cwd=tmp_path)
    with pytest.raises(InputError, match="must be a mapping"):
        load_task(write(tmp_path, "- a\n"), cwd=tmp_path)


@pytest.mark.parametrize("overrides, docs, pattern", [
    ({"doc_to_text": "{{nope}}"}, DOCS, r"doc 0 \(.*data.jsonl:1\): key 'doc_to_text': template failed: UndefinedError"),
    ({"doc_to_text": "{{ ''.__class__.__mro__ }}"}, DOCS, "key 'doc_to_text': template failed: SecurityError"),
    ({"doc_to_text": "{{label}}"}, DOCS, "key 'doc_to_text': gives an index .* multiple-inputs"),
    ({"doc_to_text": "label"}, DOCS, "key 'doc_to_text': gives an index"),
    ({"doc_to_text": "   "}, DOCS, "key 'doc_to_text': empty context"),
    ({"doc_to_choice": "question"}, DOCS, "key 'doc_to_choice': gives .* needs a non-empty list of strings"),
    ({"doc_to_choice": "{{question}}"}, DOCS, "key 'doc_to_choice': renders .* not a Python list literal"),
    ({"doc_to_target": "{{choices}}"}, DOCS, "key 'doc_to_target': gives a list"),
    ({"doc_to_target": [0, 1]}, DOCS, "key 'doc_to_target': gives a list"),
    ({"doc_to_target": "{{label + 5}}"}, DOCS, "key 'doc_to_target': index 5 is outside the 3 choices"),
    ({"doc_to_target": "maybe"}, DOCS, "key 'doc_to_target': 'maybe' is not one of the choices"),
    ({"doc_to_target": "subject"}, [{**DOCS[0], "subject": 1.5}], r"key 'doc_to_target': gives 1\.5"),
    ({"test_split": "validation"}, DOCS, r"key 'test_split': split 'validation' is not in .*\(splits: test\)"),
    ({}, [], "has no documents"),
])
def test_bad_documents_name_the_doc_and_key(tmp_path: Path, overrides: dict, docs: list, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern) as err:
        load_task(write(tmp_path, {**BASE, **overrides}, docs), cwd=tmp_path)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- metrics (pure)


def test_predictions_ties_and_char_length_normalisation() -> None:
    assert predictions([-1.0, -1.0, -3.0], ["a", "b", "c"]) == (0, 0)  # ties: the first, as numpy.argmax
    # acc_norm divides by characters, not bytes: "éé" is 2 characters (4 bytes): -6/2 < -7.5/3 (by bytes: -6/4 >)
    assert predictions([-6.0, -7.5], ["éé", "abc"]) == (0, 1)


def test_task_metrics_per_category_and_overall() -> None:
    items = [{"task": "t", "category": c, "target": 0, "prediction": p, "prediction_norm": q}
             for c, p, q in [("b", 0, 1), ("a", 0, 0), ("a", 1, 0), ("b", 1, 1)]]
    rows = task_metrics(items)
    assert [(r["category"], r["metric"], r["value"], r["n"]) for r in rows] == [
        ("a", "acc", 0.5, 2), ("a", "acc_norm", 1.0, 2), ("b", "acc", 0.5, 2), ("b", "acc_norm", 0.0, 2),
        ("overall", "acc", 0.5, 4), ("overall", "acc_norm", 0.5, 4)]
    assert {r["benchmark"] for r in rows} == {"t"} and task_metrics([]) == []
    assert [r["metric"] for r in task_metrics(items, benchmark="x", metrics=["acc"])][:1] == ["acc"]


# ---------------------------------------------------------------- scoring on a real tiny model


def reference_loglik(model: Any, tokenizer: Any, context: str, continuation: str) -> float:
    """design.md §4 with plain torch: encode context+continuation and context, sum the continuation's
    log-softmax. Trailing context whitespace goes to the continuation first, as lm-eval's _encode_pair."""
    import torch

    n_space = len(context) - len(context.rstrip())
    context, continuation = context[:len(context) - n_space], context[len(context) - n_space:] + continuation
    whole = tokenizer(context + continuation)["input_ids"]
    n_ctx = len(tokenizer(context)["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([whole[:-1]])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return float(sum(logprobs[i - 1, whole[i]] for i in range(n_ctx, len(whole))))


def test_scoring_matches_plain_torch_on_tiny_llama(tmp_path: Path, tiny_paths) -> None:
    import pyarrow as pa

    from alignsweep.models.loading import load_model, load_tokenizer

    model_dir = str(tiny_paths["llama"])
    model, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
    docs = DOCS + [{"question": "Which word is French?", "choices": ["café", "cat", "über"], "label": 0,
                    "answer": "café", "subject": "words", "category": "words"}]
    for overrides in ({}, {"doc_to_text": "Q: {{question}} A: ", "target_delimiter": ""}):
        task = load_task(write(tmp_path, {**BASE, **overrides, "description": "Quiz.\n"}, docs), cwd=tmp_path)
        items = score_task(model, tokenizer, task, batch_size=4)
        for doc, item in zip(task.docs, items, strict=True):
            ref = [reference_loglik(model, tokenizer, doc.context, task.target_delimiter + c) for c in doc.choices]
            assert item["loglikelihoods"] == pytest.approx(ref, abs=1e-4)
            assert item["prediction"] == max(range(len(ref)), key=lambda i: (ref[i], -i))
            norm = [ll / len(c) for ll, c in zip(ref, doc.choices)]
            assert item["prediction_norm"] == max(range(len(norm)), key=lambda i: (norm[i], -i))
            assert (item["task"], item["doc_id"], item["target"], item["truncated"]) == (
                "demo_mc", doc.doc_id, doc.target, False)
        reference = score_task(model, tokenizer, task, method="reference")
        assert [r["prediction"] for r in reference] == [r["prediction"] for r in items]
    table = pa.Table.from_pylist([{"trial_id": "t0", "step": 0, **r} for r in items], schema=table_schema("task_items"))
    assert table.num_rows == len(docs)


def test_parity_script_skips_without_lm_eval() -> None:
    pytest.importorskip("torch")
    try:
        import lm_eval  # noqa: F401
        pytest.skip("lm_eval is installed here; the script would run the comparison")
    except ImportError:
        pass
    proc = subprocess.run([sys.executable, "-m", "bench.lm_eval_parity"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0 and "skipped: lm_eval is not importable" in proc.stdout, proc.stdout + proc.stderr


def test_module_docstring_lists_the_supported_keys() -> None:
    from alignsweep.evaluators.benchmarks import lm_eval_task

    doc = textwrap.dedent(lm_eval_task.__doc__ or "")
    for key in (*lm_eval_task.USED_KEYS, *lm_eval_task.IGNORED_KEYS, *lm_eval_task.DEFAULT_ONLY, "include"):
        assert f"`{key}" in doc, key


# ---------------------------------------------------------------- wired into the product


@pytest.mark.slow
def test_audit_scores_a_task_file_into_the_store(tmp_path: Path, tiny_paths, monkeypatch) -> None:
    """`alignsweep audit --tasks` runs a task file as is: per-document rows land in `task_items`, the
    task's acc per category in `metrics`, both recomputable by hand from the stored log-likelihoods."""
    import pyarrow.dataset as ds

    from alignsweep.cli.main import main

    work = tmp_path / "work"
    work.mkdir()
    task_file = write(work, BASE)
    monkeypatch.chdir(work)  # lm-eval resolves `data.jsonl` against the working directory
    code = main(["audit", "--base", str(tiny_paths["llama"]), "--tasks", "task.yaml", "--limit", "1",
                 "--results", str(tmp_path / "r")])
    assert code == 0 and task_file.is_file()
    store = tmp_path / "r" / "store"
    items = ds.dataset(store / "task_items", format="parquet").to_table().to_pylist()
    assert sorted(r["doc_id"] for r in items) == [0, 1, 2]
    for r in items:  # the prediction is the argmax of the stored log-likelihoods (first on ties)
        lls = r["loglikelihoods"]
        assert r["prediction"] == lls.index(max(lls)) and len(lls) == len(DOCS[r["doc_id"]]["choices"])
    metrics = ds.dataset(store / "metrics", format="parquet").to_table().to_pylist()
    acc = {r["category"]: (r["value"], r["n"]) for r in metrics if r["benchmark"] == "demo_mc" and r["metric"] == "acc"}
    hits = [r["prediction"] == r["target"] for r in sorted(items, key=lambda r: r["doc_id"])]
    assert acc["overall"] == (sum(hits) / 3, 3)
    assert acc["nature"] == (float(hits[0]), 1) and acc["demo_mc"] == (float(hits[2]), 1)


def test_a_bad_task_file_fails_the_spec_before_anything_runs(tmp_path: Path, capsys) -> None:
    from alignsweep.cli.main import main

    bad = write(tmp_path, {**BASE, "output_type": "generate_until"})
    code = main(["audit", "--base", "tiny:llama", "--tasks", str(bad), "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "output_type" in err[0] and str(bad) in err[0]
    assert not (tmp_path / "r").exists()
    code = main(["audit", "--base", "tiny:llama", "--tasks", str(tmp_path / "missing.yaml"), "--results", str(tmp_path / "r")])
    assert code == 2 and "missing.yaml" in capsys.readouterr().err
