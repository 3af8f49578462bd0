"""Classes of bad input, generated, past the spec's syntax: an arbitrary YAML tree in any section of the
spec (run through every pre-run check, not only validation), arbitrary rows in every data loader, arbitrary
lm-eval task YAMLs and arbitrary `adapter_config.json` files. Each is accepted, or refused with exit 2 /
`InputError` and one line naming the file or field — never a traceback, never a file written.

Runs in the fast tier: Ray is replaced by a start that stops the run when every check has passed
(`Accepted`), so a good input costs the checks only. Examples per test: the `alignsweep` hypothesis
profile in tests/conftest.py (60; HYPOTHESIS_PROFILE=thorough: 2,000), from the derandomized profile's
fixed seed.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from alignsweep.errors import InputError
from alignsweep.evaluators.config import EvaluationSpec
from alignsweep.spec.config import SweepSpec

VALID = {"name": "t", "models": ["tiny:llama"], "methods": {"lora": {"r": [2]}},
         "training": {"max_steps": 2, "max_examples": 4, "batch_size": 2}, "scheduler": {"name": "none"}}


class Accepted(Exception):
    """Every pre-run check passed: the run would now wait for Ray and claim its directory."""


@contextmanager
def _ray_that_accepts(address: str | None = None, *, num_cpus: int | None = None,
                      num_gpus: int | None = None) -> Iterator[Any]:
    def ready() -> None:
        raise Accepted

    yield ready


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    import alignsweep.engine.runtime as runtime

    monkeypatch.setattr(runtime, "ray_starting", _ray_that_accepts)
    monkeypatch.setattr(ray, "init", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ray.init reached")))


# ---------------------------------------------------------------- what users write

HUGE = [10**400, -(10**400), 2**63, -(2**63) - 1, 2**32]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["", " ", "tiny:llama", "lora", "none", "bundled", "ü∂ƒ©", "0", "1e-3",
                                            "/nonexistent/x.jsonl", "\x00", "\u202e", "~"]),
    st.dates().map(lambda d: d if d.year > 1900 else datetime.date(2000, 1, 1)),
)
trees = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8) | st.sampled_from(["r", "name", "data", "ref", "gpu"]),
                                       inner, max_size=3), max_leaves=10)


def _paths(model: type[BaseModel], prefix: tuple = ()) -> list[tuple]:
    """Every field path of a spec model, nested sections included: where a tree may be planted."""
    out = []
    for name, field in model.model_fields.items():
        out.append((*prefix, name))
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                out.extend(_paths(candidate, (*prefix, name)))
    return out


SECTIONS = sorted(set(_paths(SweepSpec) + [("evaluation", *p) for p in _paths(EvaluationSpec)]
                      + [("methods", m) for m in ("lora", "ia3", "dora", "prompt_tuning", "p_tuning")]
                      + [("methods", "lora", f) for f in ("r", "alpha", "dropout", "target_modules", "use_dora")]
                      + [("methods", "prompt_tuning", "num_virtual_tokens"), ("models", 0),
                         ("models", 0, "dtype"), ("evaluation", "safety", "judges", 0)]), key=str)


def _plant(doc: dict, path: tuple, value: Any) -> None:
    """`value` at `path` in `doc`, making (or replacing by) the mapping or list each step needs on the way; a
    model given as a string becomes `{ref: string}`, so `models[0].dtype` keeps its model."""
    node: Any = doc
    for key, nxt in zip(path, path[1:]):
        kind = list if isinstance(nxt, int) else dict
        child = (node[0] if node else None) if isinstance(key, int) else node.get(key)
        if not isinstance(child, kind):
            child = [{}] if kind is list else ({"ref": child} if isinstance(child, str) else {})
            if not isinstance(key, int):
                node[key] = child
            elif node:
                node[0] = child
            else:
                node.append(child)
        node = child
    if not isinstance(path[-1], int):
        node[path[-1]] = value
    elif node:
        node[0] = value
    else:
        node.append(value)


def tree(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in path.rglob("*")} if path.exists() else {}


def run_checked(cli, argv: list[Any], watch: Path) -> Any:
    """The CLI in process: accepted (every check passed), or exit 2 with one `alignsweep: error:` line and
    `watch` unchanged. Anything else (a traceback, exit 1, two lines) fails the property."""
    before = tree(watch)
    try:
        run = cli(*argv)
    except Accepted:
        assert tree(watch) == before  # checks write nothing, even for good input
        return None
    assert run.code == 2, (run.code, run.err[-2000:])
    assert len(run.err_lines) == 1 and run.err.startswith("alignsweep: error: "), run.err
    assert tree(watch) == before
    return run


@given(path=st.sampled_from(SECTIONS), value=trees)
@example(path=("training", "max_steps"), value=10**400)
@example(path=("methods", "lora", "r"), value=[True])
@example(path=("evaluation", "fairness", "prompt"), value="{context.x}")
@example(path=("training", "dataset"), value="")
@example(path=("seed",), value=-1)
@example(path=("evaluation", "evaluators"), value={"\r": None})  # found by the thorough profile: two lines
def test_any_tree_in_any_section_passes_every_check_or_is_one_line(cli, tmp_path_factory, path: tuple,
                                                                   value: Any) -> None:
    folder = tmp_path_factory.mktemp("spec")
    doc = json.loads(json.dumps(VALID))
    _plant(doc, path, value)
    spec = folder / "sweep.yaml"
    spec.write_text(yaml.safe_dump(doc, allow_unicode=True))
    results = folder / "results"
    run_checked(cli, ["run", spec, "--results", results, "--num-cpus", "1"], folder)


@given(text=st.sampled_from(["name: t\nname: u\n", "a: 1\nb:\n  c: 1\n  c: 2\n"]),
       rest=st.just("models: [tiny:llama]\nmethods: [lora]\n"))
def test_a_key_given_twice_is_refused_naming_both_lines(cli, tmp_path_factory, text: str, rest: str) -> None:
    folder = tmp_path_factory.mktemp("dup")
    (folder / "sweep.yaml").write_text(text + rest)
    run = run_checked(cli, ["run", folder / "sweep.yaml", "--results", folder / "r", "--dry-run"], folder)
    assert run is not None and "key given twice (first on line" in run.err


# ---------------------------------------------------------------- data files, row by row

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.sampled_from(HUGE[:2])
                           | st.floats(allow_nan=False) | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                         max_size=3), max_leaves=8)


def _rows(columns: list[str]) -> st.SearchStrategy[list[str]]:
    """JSONL lines: mostly objects over the loader's own columns (values of any JSON type), some anything."""
    obj = st.dictionaries(st.sampled_from(columns) | st.text(max_size=5), json_values, max_size=len(columns) + 1)
    line = obj.map(json.dumps) | json_values.map(json.dumps) | st.text(max_size=20).filter(lambda s: "\n" not in s
                                                                                         and "\r" not in s)
    return st.lists(line, max_size=4)


def _loaded_or_one_line(load, path: Path) -> None:
    try:
        load(str(path))
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message
        assert str(path) in message or path.name in message, message  # names the file


def _write_lines(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return path


TRAINING_COLUMNS = ["messages", "instruction", "prompt", "question", "output", "response", "completion", "answer",
                    "input"]
HAZARD_COLUMNS = ["prompt", "category", "prompt_id", "hazard", "release_prompt_id", "prompt_text", "label", "type"]
BBQ_COLUMNS = ["example_id", "category", "context", "question", "ans0", "ans1", "ans2", "answer_info", "label",
               "question_polarity", "context_condition", "additional_metadata", "target_loc"]
UTILITY_COLUMNS = ["question", "choices", "label", "category", "question_id"]


def _loaders() -> dict[str, Any]:
    from alignsweep.evaluators.benchmarks.utility import load_utility_questions
    from alignsweep.evaluators.datasets import load_bbq, load_hazard_prompts, load_overrefusal_prompts
    from alignsweep.trainables.data import load_conversations

    return {"training": (load_conversations, TRAINING_COLUMNS), "hazard": (load_hazard_prompts, HAZARD_COLUMNS),
            "over_refusal": (load_overrefusal_prompts, HAZARD_COLUMNS), "bbq": (load_bbq, BBQ_COLUMNS),
            "utility": (load_utility_questions, UTILITY_COLUMNS)}


LOADERS = ["training", "hazard", "over_refusal", "bbq", "utility"]


@pytest.mark.parametrize("loader", LOADERS)
@given(data=st.data())
def test_any_jsonl_rows_load_or_are_one_line_naming_the_file(tmp_path_factory, loader: str, data: Any) -> None:
    load, columns = _loaders()[loader]
    lines = data.draw(_rows(columns))
    _loaded_or_one_line(load, _write_lines(tmp_path_factory.mktemp(loader), "data.jsonl", lines))


BBQ_ROW = {"example_id": 1, "category": "Age", "context": "c", "question": "q", "ans0": "a", "ans1": "b",
           "ans2": "Unknown", "answer_info": {"ans0": ["a", "old"], "ans1": ["b", "young"], "ans2": ["u", "unknown"]},
           "label": 2, "question_polarity": "neg", "context_condition": "ambig",
           "additional_metadata": {"stereotyped_groups": ["old"]}}


@given(key=st.sampled_from(BBQ_COLUMNS), value=json_values)
@example(key="answer_info", value={"ans0": "a", "ans1": "b", "ans2": "u"})
@example(key="target_loc", value="abc")
@example(key="label", value=7)
@example(key="additional_metadata", value={"stereotyped_groups": 5})
def test_a_bbq_item_with_any_field_replaced_loads_or_is_one_line(tmp_path_factory, key: str, value: Any) -> None:
    """A real-shaped item with one field of any JSON value: the near misses a release file actually has."""
    from alignsweep.evaluators.datasets import load_bbq

    row = {**BBQ_ROW, key: value}
    _loaded_or_one_line(load_bbq, _write_lines(tmp_path_factory.mktemp("bbq"), "Age.jsonl", [json.dumps(row)]))


@pytest.mark.parametrize("loader", ["training", "hazard", "over_refusal", "utility"])
@given(data=st.data())
def test_any_csv_loads_or_is_one_line_naming_the_file(tmp_path_factory, loader: str, data: Any) -> None:
    load, columns = _loaders()[loader]
    header = data.draw(st.lists(st.sampled_from(columns) | st.text(max_size=5), max_size=4))
    cells = st.text(max_size=8) | st.sampled_from(["safe", "unsafe", "S1", "", "NA"])
    body = data.draw(st.lists(st.lists(cells, max_size=5), max_size=3))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in ([header] if header else []) + body:
        writer.writerow(row)
    path = tmp_path_factory.mktemp(loader) / "data.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    _loaded_or_one_line(load, path)


@pytest.mark.parametrize("loader", LOADERS)
@given(raw=st.binary(max_size=64))
@example(raw=b"\xef\xbb\xbf{}")
@example(raw=b"[" * 5000)
@example(raw=b'{"a": ' + b"9" * 5000 + b"}")
def test_any_bytes_as_a_data_file_load_or_are_one_line(tmp_path_factory, loader: str, raw: bytes) -> None:
    load, _ = _loaders()[loader]
    path = tmp_path_factory.mktemp(loader) / "data.jsonl"
    path.write_bytes(raw)
    _loaded_or_one_line(load, path)


# ---------------------------------------------------------------- lm-eval task YAMLs

TASK_KEYS = ["task", "output_type", "dataset_path", "dataset_kwargs", "test_split", "validation_split", "description",
             "doc_to_text", "doc_to_choice", "doc_to_target", "target_delimiter", "metric_list", "num_fewshot",
             "include", "group", "repeats", "tag"]
GOOD_TASK = {"task": "t", "output_type": "multiple_choice", "dataset_path": "json",
             "dataset_kwargs": {"data_files": {"test": "docs.jsonl"}}, "test_split": "test",
             "doc_to_text": "{{q}}", "doc_to_choice": "{{choices}}", "doc_to_target": "{{label}}"}


@given(changes=st.dictionaries(st.sampled_from(TASK_KEYS), trees | st.sampled_from(["{{q}", "{{ x.y }}", "q", "[1]",
                                                                                     "{{choices[9]}}"]), max_size=3),
       docs=_rows(["q", "choices", "label", "category"]))
@example(changes={}, docs=['{"q": "a?", "choices": ["x", "y"], "label": 1}'])
@example(changes={"doc_to_target": "{{label}}"}, docs=['{"q": "a?", "choices": ["x", "y"], "label": 7}'])
def test_any_task_yaml_loads_or_is_one_line_naming_the_file(tmp_path_factory, changes: dict, docs: list[str]) -> None:
    from alignsweep.evaluators.benchmarks.lm_eval_task import load_task

    folder = tmp_path_factory.mktemp("task")
    _write_lines(folder, "docs.jsonl", docs)
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump({**GOOD_TASK, **changes}, allow_unicode=True))
    try:
        load_task(path, cwd=folder)
    except InputError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc) or "docs.jsonl" in str(exc), str(exc)


# ---------------------------------------------------------------- adapters


LORA_KEYS = ["peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "base_model_name_or_path", "task_type",
             "use_dora", "bias", "fan_in_fan_out", "modules_to_save", "init_lora_weights", "layers_to_transform"]


@pytest.fixture(scope="module")
def lora_dir(untrained_lora: str) -> str:
    return untrained_lora


@given(changes=st.dictionaries(st.sampled_from(LORA_KEYS), trees, max_size=3),
       dropped=st.lists(st.sampled_from(LORA_KEYS), max_size=2))
@example(changes={"peft_type": "MAGIC"}, dropped=[])
@example(changes={"r": "x"}, dropped=[])
@example(changes={"target_modules": ["nothing"]}, dropped=[])
@example(changes={}, dropped=["peft_type"])
@example(changes={"target_modules": False}, dropped=[])  # found by the thorough profile: TypeError
def test_any_adapter_config_is_checked_before_loading_or_is_one_line(tmp_path_factory, lora_dir: str, changes: dict,
                                                                    dropped: list[str]) -> None:
    """An edited `adapter_config.json` of a real LoRA: either preflight refuses it in one line, or peft
    reads it as a config of the method alignsweep took it for."""
    from alignsweep.spec.preflight import check_adapter

    folder = Path(shutil.copytree(lora_dir, tmp_path_factory.mktemp("adapter") / "a"))
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg = {k: v for k, v in {**cfg, **changes}.items() if k not in dropped}
    (folder / "adapter_config.json").write_text(json.dumps(cfg, default=str))
    try:
        check_adapter(str(folder), "tiny:llama")
    except InputError as exc:
        assert "\n" not in str(exc) and str(folder) in str(exc), str(exc)
        return
    from peft import PeftConfig

    assert PeftConfig.from_peft_type(**cfg).peft_type == "LORA"
