"""The bad-input catalogue (docs/bad-input.md): each malformed input is one line, exit 2, nothing written.

These run the real CLI in-process with real files. Every check here (engine.preflight) runs before
anything is written; `run` starts Ray on a thread meanwhile and shuts it down when a check fails.
Here Ray's start is replaced by one that starts nothing, and `ray.init` by a tripwire that fails the
test if a check lets the run through, so the catalogue runs in the fast tier;
`test_with_ray_really_starting_*` (slow) keeps the real start. Spec-field errors live in
tests/test_config.py and are counted there.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from alignsweep.cli.main import main

SPEC = """\
name: bad
models: [{model}]
methods: {{lora: {{r: [2]}}}}
training: {{max_steps: 2, eval_interval: 2, batch_size: 2, max_examples: 4, dataset: {dataset}}}
scheduler: {{name: none}}
{extra}
"""


@contextmanager
def _ray_that_never_starts(address: str | None = None, *, num_cpus: int | None = None,
                           num_gpus: int | None = None) -> Iterator[Any]:
    yield lambda: None  # "ready" at once; the results directory checks after it still run


def _tripwire(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("every check passed: the sweep is starting Ray to run")


@pytest.fixture(autouse=True)
def _no_ray(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """`alignsweep run` without Ray: bad input must fail in a check, before anything would use Ray."""
    if request.node.get_closest_marker("slow") is None:
        import ray

        import alignsweep.engine.runtime as runtime

        monkeypatch.setattr(runtime, "ray_starting", _ray_that_never_starts)
        monkeypatch.setattr(ray, "init", _tripwire)  # also what Ray's auto-init on first use calls


def test_a_good_spec_passes_every_check_and_trips_the_wire(tmp_path: Path) -> None:
    """The tripwire fires for input that is fine: each exit 2 below is a check's doing, not the fake's."""
    with pytest.raises(AssertionError, match="the sweep is starting Ray"):
        main(run_argv(spec_file(tmp_path), tmp_path / "results"))


def tree(path: Path) -> dict[str, int]:
    """Every file under `path` with its size: the 'nothing written' witness."""
    return {str(p.relative_to(path)): p.stat().st_size for p in path.rglob("*")} if path.exists() else {}


def expect_bad_input(argv: list[str], pattern: str, watch: Path, capsys: pytest.CaptureFixture) -> str:
    """Run the CLI; assert exit 2, exactly one `alignsweep: error:` line matching, and `watch` unchanged."""
    before = tree(watch)
    existed = watch.exists()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("alignsweep: error: ")
    assert re.search(pattern, err), err
    assert watch.exists() == existed and tree(watch) == before
    return err


def spec_file(tmp_path: Path, model: str = "tiny:llama", dataset: str = "bundled", extra: str = "") -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SPEC.format(model=json.dumps(model), dataset=json.dumps(dataset), extra=textwrap.dedent(extra)))
    return path


def run_argv(spec: Path, results: Path) -> list[str]:
    return ["run", str(spec), "--results", str(results), "--num-cpus", "1"]


@pytest.fixture()
def model_copy(tiny_paths: Mapping[str, Path], tmp_path: Path) -> Path:
    """A private copy of the tiny llama directory to break."""
    return Path(shutil.copytree(tiny_paths["llama"], tmp_path / "model"))


# ---------------------------------------------------------------- models


def _edit_config(model: Path, **changes: Any) -> None:
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(changes)
    (model / "config.json").write_text(json.dumps(cfg))


def _no_chat_template(model: Path) -> None:
    (model / "chat_template.jinja").unlink()
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))


def _pickled_weights(model: Path) -> None:
    (model / "model.safetensors").rename(model / "pytorch_model.bin")


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


MODEL_CASES = {
    "not_causal_lm": (lambda m: _edit_config(m, model_type="bert", architectures=["BertForMaskedLM"]),
                      r"'BertForMaskedLM' is not a causal language model"),
    "no_chat_template": (_no_chat_template, r"tokenizer has no chat template"),
    "pickled_weights": (_pickled_weights, r"only pickled weights \(pytorch_model.bin\).*allow_unsafe_weights"),
    "truncated_safetensors": (lambda m: _truncate(m / "model.safetensors"), r"model.safetensors: truncated or corrupt"),
    "remote_code": (lambda m: _edit_config(m, auto_map={"AutoModelForCausalLM": "evil.Model"}),
                    r"needs custom code \(auto_map\).*trust_remote_code"),
    "unreadable_config": (lambda m: (m / "config.json").write_text("{not json"), r"unreadable config.json"),
    "no_weights": (lambda m: (m / "model.safetensors").unlink(), r"no weights \(\*.safetensors\)"),
    "no_tokenizer": (lambda m: [(m / f).unlink() for f in ("tokenizer.json", "tokenizer_config.json")],
                     r"cannot load its tokenizer"),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_broken_model_directory(case: str, model_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    breaker, pattern = MODEL_CASES[case]
    breaker(model_copy)
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, str(model_copy)), results), pattern, results, capsys)


@pytest.mark.parametrize(("model", "pattern"), [
    ("/nonexistent/alignsweep-model", r"no config.json there"),
    ("tiny:falcon", r"unknown tiny model 'tiny:falcon'"),
    ("not a model!", r"neither a local path, a hub id"),
])
def test_model_reference_that_resolves_to_nothing(model: str, pattern: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, model), results), pattern, results, capsys)


# ---------------------------------------------------------------- data


@pytest.mark.parametrize(("lines", "pattern"), [
    (['{"instruction": "hi", "output": "hello"}', '{"instruction": "broken'], r"data.jsonl:2: not valid JSON"),
    (['{"instruction": "hi", "output": "hello"}', '{"question_text": "x", "reply": "y"}'],
     r"data.jsonl:2: row needs 'messages', or one of instruction/prompt/question"),
    (['{"messages": [{"role": "user", "content": "hi"}]}'], r"data.jsonl:1: the last message must be the assistant's"),
    ([], r"training dataset has no rows"),
])
def test_training_dataset_rows(lines: list[str], pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(lines) + "\n")
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, dataset=str(data)), results), pattern, results, capsys)


def test_training_dataset_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, dataset=str(tmp_path / "nope.jsonl")), results),
                     r"nope.jsonl: no such file or directory", results, capsys)


def _bbq_two_unknowns(path: Path) -> str:
    from alignsweep.evaluators.datasets import bundled_path

    row = json.loads(bundled_path("bbq_items.jsonl").read_text().splitlines()[0])
    row["answer_info"]["ans0"] = ["Cannot be determined", "unknown"]
    good = bundled_path("bbq_items.jsonl").read_text().splitlines()[1]
    path.write_text(good + "\n" + json.dumps(row) + "\n")
    return f"fairness: {{data: {json.dumps(str(path))}}}"


def _hazard_no_prompt(path: Path) -> str:
    path.write_text('{"prompt_id": "a", "category": "S1", "prompt": "x"}\n{"prompt_id": "b", "category": "S2"}\n')
    return f"safety: {{data: {json.dumps(str(path))}}}"


def _overrefusal_bad_label(path: Path) -> str:
    path.write_text('{"prompt": "How do I kill a python process?", "category": "S1", "label": "maybe"}\n')
    return f"over_refusal: {{data: {json.dumps(str(path))}}}"


@pytest.mark.parametrize(("make", "pattern"), [
    (_bbq_two_unknowns, r"bbq.jsonl:2: expected exactly one 'unknown' answer in answer_info, found 2"),
    (_hazard_no_prompt, r"bbq.jsonl:2: no prompt column"),
    (_overrefusal_bad_label, r"bbq.jsonl:1: label must be 'safe' or 'unsafe', not 'maybe'"),
])
def test_evaluation_data_rows(make: Any, pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    section = make(tmp_path / "bbq.jsonl")
    spec = spec_file(tmp_path, extra=f"evaluation: {{{section}}}\n")
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec, results), pattern, results, capsys)


def test_custom_resource_named_like_a_builtin(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = spec_file(tmp_path, extra="evaluation: {safety: {judge_resources: {custom: {GPU: 1}}}}\n")
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec, results), r"evaluation.safety.judge_resources.custom: custom resource 'GPU'",
                     results, capsys)


def test_yaml_with_python_tags_is_refused_not_executed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\nmodels: [tiny:llama]\nmethods: [lora]\n")
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec, results), r"sweep.yaml:1: invalid YAML: could not determine a constructor", results,
                     capsys)
    assert not marker.exists()


# ---------------------------------------------------------------- results directory


def test_results_dir_of_another_sweep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    (results / "bad").mkdir(parents=True)
    (results / "bad" / "sweep.yaml").write_text("name: bad\nseed: 7\n")  # a different spec under the same name
    expect_bad_input(run_argv(spec_file(tmp_path), results), r"holds a different spec for sweep 'bad'.*alignsweep resume",
                     results, capsys)


def test_results_dir_that_is_not_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    (results / "bad").mkdir(parents=True)
    (results / "bad" / "notes.txt").write_text("mine")
    expect_bad_input(run_argv(spec_file(tmp_path), results), r"exists and is not an alignsweep sweep directory",
                     results, capsys)


def test_results_path_below_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    expect_bad_input(run_argv(spec_file(tmp_path), blocker / "results"), r"is a file, not a directory", blocker, capsys)


def test_results_path_unwritable(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # /proc refuses new files even to root (chmod would not stop root), so this is a real unwritable path
    results = Path("/proc/alignsweep-results")
    expect_bad_input(run_argv(spec_file(tmp_path), results), r"cannot write in /proc", results, capsys)


def test_results_path_without_free_space(tmp_path: Path, capsys: pytest.CaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil as sh

    free_mb = sh.disk_usage(tmp_path).free // 2**20
    monkeypatch.setenv("ALIGNSWEEP_MIN_FREE_MB", str(free_mb * 4 + 1))  # more than the disk holds
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path), results), r"MiB free on its file system, need at least", results,
                     capsys)


def test_resume_of_a_directory_that_is_not_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "results" / "x"
    folder.mkdir(parents=True)
    expect_bad_input(["resume", str(folder)], r"not a sweep directory \(no sweep.yaml\)", folder, capsys)


# ---------------------------------------------------------------- adapters (alignsweep audit)


@pytest.fixture()
def adapters(untrained_lora: str, tiny_paths: Mapping[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A real LoRA adapter on tiny:llama (safetensors, as peft saves it), and the same adapter claiming
    a qwen2 base: the check compares the bases' configs only, so a config of another architecture
    stands in for a whole qwen2 model (none is built)."""
    other_base = tmp_path / "qwen2-base"
    other_base.mkdir()
    cfg = json.loads((tiny_paths["llama"] / "config.json").read_text())
    (other_base / "config.json").write_text(json.dumps({**cfg, "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    qwen2 = Path(shutil.copytree(untrained_lora, tmp_path / "adapter-qwen2"))
    adapter_cfg = json.loads((qwen2 / "adapter_config.json").read_text())
    (qwen2 / "adapter_config.json").write_text(json.dumps({**adapter_cfg, "base_model_name_or_path": str(other_base)}))
    return {"llama": Path(untrained_lora), "qwen2": qwen2}


def _audit(adapter: Path, results: Path) -> list[str]:
    return ["audit", "--base", "tiny:llama", "--adapter", str(adapter), "--limit", "1", "--results", str(results)]


def test_adapter_of_another_base(adapters: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "audit"
    expect_bad_input(_audit(adapters["qwen2"], results),
                     r"was trained on a different base \(model_type 'qwen2', base 'tiny:llama' has 'llama'\)",
                     results, capsys)


@pytest.mark.parametrize(("breaker", "pattern"), [
    (lambda a: (a / "adapter_model.safetensors").rename(a / "adapter_model.bin"), r"only pickled weights \(adapter_model.bin\)"),
    (lambda a: _truncate(a / "adapter_model.safetensors"), r"adapter_model.safetensors: truncated or corrupt"),
    (lambda a: (a / "adapter_config.json").unlink(), r"unreadable adapter_config.json"),
    (lambda a: shutil.rmtree(a), r"no such directory"),
])
def test_broken_adapter(breaker: Any, pattern: str, adapters: dict[str, Path], tmp_path: Path,
                        capsys: pytest.CaptureFixture) -> None:
    adapter = Path(shutil.copytree(adapters["llama"], tmp_path / "adapter-broken"))
    breaker(adapter)
    results = tmp_path / "audit"
    expect_bad_input(_audit(adapter, results), pattern, results, capsys)


def test_causal_lm_table_read_from_source_equals_transformers_own() -> None:
    """Preflight reads the causal-LM table from transformers' source (no torch import in the driver);
    it must be exactly the table transformers exports, on the installed version."""
    import subprocess
    import sys

    code = ("import sys; from alignsweep.spec.preflight import causal_lm_names; t = causal_lm_names(); "
            "assert 'torch' not in sys.modules, 'read without importing torch'; "
            "from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as M; "
            "assert t == dict(M) and 'llama' in t, (len(t), len(M))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ---------------------------------------------------------------- with Ray really starting


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no_chat_template", "missing_dataset"])
def test_with_ray_really_starting_bad_input_is_still_one_line(case: str, model_copy: Path, tmp_path: Path,
                                                              capfd: pytest.CaptureFixture) -> None:
    """The same contract with the real `ray_starting`; stderr captured at the file descriptor, so Ray's
    own log lines count wherever its handlers write."""
    if case == "no_chat_template":
        _no_chat_template(model_copy)
        spec, pattern = spec_file(tmp_path, str(model_copy)), r"tokenizer has no chat template"
    else:
        spec, pattern = spec_file(tmp_path, dataset=str(tmp_path / "nope.jsonl")), r"nope.jsonl: no such file"
    results = tmp_path / "results"
    assert main(run_argv(spec, results)) == 2
    err = capfd.readouterr().err.strip()
    assert re.search(pattern, err.splitlines()[-1]), err  # the error itself is right …
    assert not results.exists()
    assert len(err.splitlines()) == 1 and err.startswith("alignsweep: error: "), err  # … and alone
