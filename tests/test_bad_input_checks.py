"""The bad-input catalogue, continued (docs/bad-input.md entries 83 on): values of the wrong type or size
in any field, specs that only the base model can judge, data rows of the wrong shape, adapters made for
another base, CLI values and the environment. Each is one `alignsweep: error:` line, exit 2, and
nothing written; the real CLI runs in process with Ray's start replaced as in tests/test_bad_input.py.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from test_bad_input import _no_ray, expect_bad_input, run_argv, spec_file  # noqa: F401  (_no_ray: autouse)

# ---------------------------------------------------------------- spec values: type and size


@pytest.mark.parametrize(("extra", "pattern"), [
    ("seed: true", r"sweep.yaml:\d+: seed: expected a number, not a boolean \(got True\)$"),
    ("seed: -1", r"sweep.yaml:\d+: seed: Input should be greater than or equal to 0 \(got -1\)$"),
    ("seed: " + "9" * 400, r"sweep.yaml:\d+: seed: number too large: at most 9223372036854775807 \(got 9+…\(400 characters\)\)$"),
    ("resources: {cpu: true}", r"sweep.yaml:\d+: resources.cpu: expected a number, not a boolean"),
    ("evaluation: {fairness: {prompt: '{context.x}'}}", r"evaluation.fairness.prompt: prompt may use only \{context\}"),
    ("evaluation: {safety: {limit: " + "9" * 30 + "}}", r"evaluation.safety.limit: number too large"),
])
def test_a_value_of_the_wrong_type_or_size_names_its_field(extra: str, pattern: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, extra=extra + "\n"), results), pattern, results, capsys)


@pytest.mark.parametrize(("training", "pattern"), [
    ("max_steps: 2, seeds: [4294967296]", r"sweep.yaml:4: training.seeds\[0\]: Input should be less than or equal to "
                                          r"4294967295 \(got 4294967296\)$"),
    ("max_steps: 2, max_steps: 3", r"sweep.yaml:4: training.max_steps: key given twice \(first on line 4\)"),
])
def test_training_values_out_of_range_or_twice(training: str, pattern: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    expect_bad_input(run_argv(_spec_text(tmp_path, "[lora]", training), results), pattern, results, capsys)


def test_a_method_grid_of_booleans_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text("name: t\nmodels: [tiny:llama]\nmethods: {lora: {r: [true, 4]}}\n")
    expect_bad_input(run_argv(spec, tmp_path / "r"), r"sweep.yaml:3: methods.lora.r: expected a number, not a boolean",
                     tmp_path / "r", capsys)


def test_an_empty_training_dataset_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, dataset=""), results),
                     r"sweep.yaml:\d+: training.dataset: String should have at least 1 character", results, capsys)


# ---------------------------------------------------------------- what only the base model can judge


def _spec_text(tmp_path: Path, methods: str, training: str = "max_steps: 2", extra: str = "") -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: t\nmodels: [tiny:llama]\nmethods: {methods}\ntraining: {{{training}}}\n"
                    f"scheduler: {{name: none}}\n{extra}")
    return path


@pytest.mark.parametrize(("methods", "training", "extra", "pattern"), [
    ("{lora: {target_modules: [q_proj, qkv_proj]}}", "max_steps: 2", "",
     r"^alignsweep: error: methods.lora.target_modules on model 'tiny:llama': the base has no module 'qkv_proj' "
     r"\(its modules with a weight matrix: .*q_proj.*\)$"),
    ("{lora: {target_modules: [input_layernorm]}}", "max_steps: 2", "",
     r"module 'input_layernorm' of the base is not a linear layer \(weight shape \(64,\)\)$"),
    ("{ia3: {target_modules: [k_proj, down_proj], feedforward_modules: [ffn]}}", "max_steps: 2", "",
     r"methods.ia3.feedforward_modules on model 'tiny:llama': the base has no module 'ffn'"),
    ("{prompt_tuning: {num_virtual_tokens: [16]}}", "max_steps: 2, max_seq_length: 250", "",
     r"training.max_seq_length: 250 \+ 16 virtual tokens is past the 256 positions of model 'tiny:llama'"),
    ("[lora]", "max_steps: 2, max_seq_length: 300", "",
     r"training.max_seq_length: 300 is past the 256 positions of model 'tiny:llama'"),
    ("[lora]", "max_steps: 2, precision: fp16", "",
     r"training.precision: fp16 needs a GPU and resources.gpu is 0"),
])
def test_spec_values_only_the_base_can_judge(methods: str, training: str, extra: str, pattern: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    expect_bad_input(run_argv(_spec_text(tmp_path, methods, training, extra), results), pattern, results, capsys)


def test_a_gpu_asked_where_torch_sees_none(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: asking for one is good input here")
    results = tmp_path / "results"
    expect_bad_input(run_argv(_spec_text(tmp_path, "[lora]", extra="resources: {gpu: 1}\n"), results),
                     r"resources.gpu: 1 GPU asked, but this machine shows torch no GPU", results, capsys)


# ---------------------------------------------------------------- data rows


BBQ = {"example_id": 1, "category": "Age", "context": "c", "question": "q", "ans0": "a", "ans1": "b", "ans2": "Unknown",
       "answer_info": {"ans0": ["a", "old"], "ans1": ["b", "young"], "ans2": ["u", "unknown"]}, "label": 2,
       "question_polarity": "neg", "context_condition": "ambig", "additional_metadata": {"stereotyped_groups": ["old"]}}


def _eval_only(section: str, path: Path) -> str:
    off = ", ".join(f"{k}: {{enabled: false}}" for k in ("safety", "fairness", "over_refusal", "utility") if k != section)
    return f"evaluation: {{{section}: {{data: {json.dumps(str(path))}}}, {off}}}\n"


@pytest.mark.parametrize(("section", "content", "pattern"), [
    ("fairness", {**BBQ, "label": 7}, r"data.jsonl:1: not a BBQ item \(label must be 0, 1 or 2, got 7\)$"),
    ("fairness", {**BBQ, "label": 1.5}, r"data.jsonl:1: not a BBQ item \(label must be 0, 1 or 2, got 1.5\)$"),
    ("fairness", {**BBQ, "answer_info": {"ans0": "a", "ans1": "b", "ans2": "u"}},
     r"data.jsonl:1: not a BBQ item \(answer_info must map ans0, ans1, ans2 to \[answer text, group\] pairs\)$"),
    ("fairness", {**BBQ, "target_loc": "abc"}, r"data.jsonl:1: target_loc must be an answer index \(0, 1, 2\) or empty"),
    ("fairness", {**BBQ, "additional_metadata": {"stereotyped_groups": 5}},
     r"data.jsonl:1: not a BBQ item \(additional_metadata.stereotyped_groups must be a list of group names\)$"),
    ("fairness", "", r"data.jsonl: no BBQ items$"),
    ("safety", {"category": ["S1"], "prompt": "x"}, r"data.jsonl:1: column 'category' must be text, not a JSON list$"),
    ("over_refusal", {"label": "safe", "type": "x", "prompt": {"a": 1}},
     r"data.jsonl:1: column 'prompt' must be text, not a JSON dict$"),
    ("utility", {"question": "q", "choices": "ab", "label": 0}, r"data.jsonl:1: needs question, choices \(a list\)"),
    ("safety", '{"prompt": "x", "category": "S1", "n": ' + "9" * 5000 + "}",
     r"data.jsonl:1: not valid JSON \(Exceeds the limit \(4300 digits\) for integer string conversion"),
    ("safety", "[" * 100_000, r"data.jsonl:1: not valid JSON \(maximum recursion depth exceeded"),
])
def test_evaluation_rows_of_the_wrong_shape(section: str, content: Any, pattern: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(content if isinstance(content, str) else json.dumps(content) + "\n")
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, extra=_eval_only(section, data)), results), pattern, results, capsys)


@pytest.mark.parametrize(("changes", "pattern"), [
    ({"test_split": ["test"]}, r"task.yaml: key 'test_split': must be a split name, not \['test'\]$"),
    ({"include": 5}, r"task.yaml: key 'include': must be a file name or a list of them, not 5$"),
    ({"include": "base.yaml"}, r"task.yaml: key 'include': .*base.yaml: cannot read \(No such file or directory\)$"),
    ({"doc_to_target": True}, r"task.yaml: key 'doc_to_target': must be a field name or a template, not True$"),
])
def test_lm_eval_task_yaml_of_the_wrong_shape(changes: dict, pattern: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    import yaml

    (tmp_path / "docs.jsonl").write_text('{"q": "a?", "choices": ["x", "y"], "label": 1}\n')
    task = {"task": "t", "output_type": "multiple_choice", "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(tmp_path / "docs.jsonl")}}, "test_split": "test",
            "doc_to_text": "{{q}}", "doc_to_choice": "{{choices}}", "doc_to_target": "{{label}}", **changes}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task))
    extra = f"evaluation: {{tasks: [{json.dumps(str(tmp_path / 'task.yaml'))}]}}\n"
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, extra=extra), results), pattern, results, capsys)


# ---------------------------------------------------------------- adapters (alignsweep audit)


@pytest.fixture(scope="module")
def narrow_lora(tmp_path_factory: pytest.TempPathFactory, tiny_paths: Any) -> Path:
    """A real LoRA saved by peft on a llama of hidden size 32 (tiny:llama has 64), whose adapter_config names a
    hub base: no local config to compare, so only the tensors' shapes can tell."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(tiny_paths["llama"])
    cfg.hidden_size, cfg.intermediate_size, cfg.head_dim = 32, 64, 32 // cfg.num_attention_heads
    out = tmp_path_factory.mktemp("narrow") / "lora"
    get_peft_model(AutoModelForCausalLM.from_config(cfg), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])) \
        .save_pretrained(out)
    adapter_cfg = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**adapter_cfg, "base_model_name_or_path": "org/llama-32"}))
    return out


def _audit(adapter: Path, results: Path, *extra: str) -> list[str]:
    return ["audit", "--base", "tiny:llama", "--adapter", str(adapter), "--limit", "1", "--results", str(results),
            *extra]


def test_adapter_made_for_another_base_shape(narrow_lora: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "audit"
    expect_bad_input(_audit(narrow_lora, results),
                     r"adapter '.*' was made for another base shape: base_model.model.model.layers.0.self_attn.q_proj"
                     r".lora_A.weight is \[2, 32\], base 'tiny:llama' has model.layers.0.self_attn.q_proj of 64 → 64$",
                     results, capsys)


def _edit(key: str, value: Any):
    def edit(adapter: Path) -> None:
        cfg = json.loads((adapter / "adapter_config.json").read_text())
        if value is None:
            cfg.pop(key)
        else:
            cfg[key] = value
        (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    return edit


def _header(text: bytes):
    return lambda a: (a / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text)


@pytest.mark.parametrize(("breaker", "pattern"), [
    (_edit("peft_type", None), r"adapter_config.json: peft_type None is not one alignsweep scores \(known: .*LORA.*\)$"),
    (_edit("peft_type", "MAGIC"), r"adapter_config.json: peft_type 'MAGIC' is not one alignsweep scores"),
    (_edit("r", "x"), r"adapter_config.json: r must be a number \(got 'x'\)$"),
    (_edit("target_modules", ["nothing"]), r"adapter_config.json target_modules on 'tiny:llama': the base has no module "
                                           r"'nothing'"),
    (_edit("r", 8), r"adapter_config.json says r 8, but base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight "
                    r"has rank 4$"),
    (lambda a: (a / "adapter_config.json").write_text("[1]"), r"adapter_config.json is not a JSON object$"),
    (lambda a: (a / "adapter_model.safetensors").write_bytes(b""),
     r"adapter_model.safetensors: truncated or corrupt safetensors file \(shorter than its 8-byte header length\)$"),
    (_header(b"[1, 2]"), r"adapter_model.safetensors: truncated or corrupt safetensors file \(its header is not a JSON "
                         r"object\)$"),
    (_header(b'{"a": {"data_offsets": "xx"}}'), r"truncated or corrupt safetensors file \(tensor 'a' has no valid "
                                                r"data_offsets\)$"),
])
def test_adapter_files_of_the_wrong_shape(breaker: Any, pattern: str, untrained_lora: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    adapter = Path(shutil.copytree(untrained_lora, tmp_path / "adapter"))
    breaker(adapter)
    results = tmp_path / "audit"
    expect_bad_input(_audit(adapter, results), pattern, results, capsys)


def test_an_empty_adapter_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "adapter").mkdir()
    expect_bad_input(_audit(tmp_path / "adapter", tmp_path / "audit"), r"unreadable adapter_config.json",
                     tmp_path / "audit", capsys)


# ---------------------------------------------------------------- CLI values and the environment


@pytest.mark.parametrize(("extra", "pattern"), [
    (["--limit", "-1"], r"^alignsweep: error: --limit: Input should be greater than or equal to 1 \(got -1\)$"),
    (["--limit", "9" * 40], r"^alignsweep: error: --limit: number too large"),
    (["--tasks", "/nonexistent/task.yaml"], r"^alignsweep: error: --tasks: task file '/nonexistent/task.yaml': no such file"),
    (["--device", "tpu"], r"device 'tpu': expected auto, cpu, cuda or cuda:<n>$"),
])
def test_audit_option_values(extra: list[str], pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "audit"
    expect_bad_input(["audit", "--base", "tiny:llama", "--results", str(results), *extra], pattern, results, capsys)


def test_audit_summary_dir_that_is_a_file(untrained_lora: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "summary"
    blocker.write_text("mine")
    expect_bad_input(_audit(Path(untrained_lora), tmp_path / "audit", "--summary-dir", str(blocker),
                            "--fail-on", "safe_rate.overall<-1"),
                     r"results path '.*summary': .*summary is a file, not a directory$", tmp_path, capsys)


@pytest.mark.parametrize("value", ["0", "-2"])
def test_run_with_no_cpus(value: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = run_argv(spec_file(tmp_path), tmp_path / "results")
    argv[argv.index("--num-cpus") + 1] = value
    expect_bad_input(argv, rf"^alignsweep: error: --num-cpus: at least 1 \(got {value}\)$", tmp_path / "results", capsys)


def test_results_path_with_a_nul_character(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    expect_bad_input(run_argv(spec_file(tmp_path), Path(f"{tmp_path}/a\x00b")), r"contains a NUL character$", tmp_path,
                     capsys)


@pytest.mark.parametrize(("content", "pattern"), [
    ("name: [unclosed\n", r"sweep.yaml:2: invalid YAML"),
    (b"\xff\xfe", r"sweep.yaml: not UTF-8 text \(byte 0: invalid start byte\)$"),
    (None, r"sweep.yaml: cannot read it \(.*is a directory\)$"),
    ("name: t\nname: u\nmodels: [tiny:llama]\nmethods: [lora]\n", r"sweep.yaml:2: name: key given twice"),
])
def test_resume_of_a_sweep_whose_spec_is_broken(content: Any, pattern: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "results" / "t"
    folder.mkdir(parents=True)
    if content is None:
        (folder / "sweep.yaml").mkdir()
    elif isinstance(content, bytes):
        (folder / "sweep.yaml").write_bytes(content)
    else:
        (folder / "sweep.yaml").write_text(content)
    expect_bad_input(["resume", str(folder)], pattern, folder, capsys)


def test_tiny_model_cache_that_cannot_be_created(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc refuses new directories even to root: a HOME (or ALIGNSWEEP_CACHE) nobody can write
    monkeypatch.setenv("ALIGNSWEEP_CACHE", "/proc/alignsweep-cache")
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path), results),
                     r"tiny-model cache '/proc/alignsweep-cache': cannot create it \(.*\); set ALIGNSWEEP_CACHE \(or "
                     r"HOME\) to a writable directory$", tmp_path, capsys)


def test_cuda_visible_devices_naming_no_device() -> None:
    """torch (a CUDA build) sees no GPU although CUDA_VISIBLE_DEVICES names one: refused outside Ray; an empty
    value or -1 hides GPUs on purpose, and a Ray worker's value is Ray's own."""
    from alignsweep.errors import InputError
    from alignsweep.models.devices import DeviceFacts, check_gpus_available, choose_device

    def facts(visible: tuple[str, ...] | None, *, ray: bool = False) -> DeviceFacts:
        return DeviceFacts(cuda_available=False, in_ray_worker=ray, ray_gpu_ids=(), visible_devices=visible,
                           cuda_build=True)

    with pytest.raises(InputError, match=r"^CUDA_VISIBLE_DEVICES='7' names no device torch can use"):
        choose_device("auto", facts(("7",)))
    with pytest.raises(InputError, match=r"^CUDA_VISIBLE_DEVICES='7' names no device"):
        check_gpus_available(1, "resources.gpu", facts(("7",)))
    assert choose_device("auto", facts(())) == "cpu"
    assert choose_device("auto", facts(("-1",))) == "cpu"
    assert choose_device("auto", facts(("7",), ray=True)) == "cpu"
    assert choose_device("cpu", facts(("7",))) == "cpu"


# ---------------------------------------------------------------- model directories, report and query outputs


@pytest.fixture()
def model_dir(tiny_paths: Any, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_paths["llama"], tmp_path / "model"))


def _config(model: Path, **changes: Any) -> None:
    cfg = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**cfg, **changes}))


@pytest.mark.parametrize(("changes", "pattern"), [
    ({"architectures": 5}, r"config.json architectures must be a JSON list of names \(got 5\)$"),
    ({"model_type": ["llama"]}, r"config.json model_type must be a JSON str \(got \['llama'\]\)$"),
    ({"max_position_embeddings": "x"}, r"config.json max_position_embeddings must be a JSON int \(got 'x'\)$"),
])
def test_model_config_values_of_the_wrong_type(changes: dict, pattern: str, model_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    _config(model_dir, **changes)
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, str(model_dir)), results), pattern, results, capsys)


def test_model_weights_with_a_malformed_shape(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    weights = model_dir / "model.safetensors"
    raw = weights.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = "ab"
    text = json.dumps(header).encode()
    weights.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, str(model_dir)), results),
                     rf"model.safetensors: truncated or corrupt safetensors file \(tensor '{name}' has no valid shape "
                     r"and dtype\)$", results, capsys)


def test_report_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Checked before the sweep is read: the directory given need not even be a sweep for this to be the error."""
    blocker = tmp_path / "report.html"
    blocker.write_text("mine")
    expect_bad_input(["report", str(tmp_path), "--out", str(blocker)], r"report.html is a file, not a directory$",
                     tmp_path, capsys)


def test_query_output_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "out").mkdir()
    expect_bad_input(["query", str(tmp_path), "SELECT 1", "--output", str(tmp_path / "out")],
                     r"--output '.*out': is a directory; give a file name$", tmp_path, capsys)


@pytest.mark.parametrize(("scheduler", "pattern"), [
    ("{name: asha, metric: accuracyy}", r"^alignsweep: error: scheduler.metric: 'accuracyy' is not a metric trials "
                                        r"report \(known: epoch, heldout_loss, loss, step, train_wall_s; evaluation is off\)$"),
    ("{name: median, metric: safe_rate, mode: max}", r"scheduler.metric: 'safe_rate' is not a metric trials report"),
])
def test_scheduler_metric_that_no_trial_reports(scheduler: str, pattern: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: t\nmodels: [tiny:llama]\nmethods: [lora]\ntraining: {{max_steps: 2}}\nscheduler: {scheduler}\n")
    expect_bad_input(run_argv(path, tmp_path / "results"), pattern, tmp_path / "results", capsys)


def test_method_learning_rates_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _spec_text(tmp_path, "{lora: {learning_rates: [0]}}")
    expect_bad_input(run_argv(path, tmp_path / "results"),
                     r"sweep.yaml:3: methods.lora.learning_rates: list at least one value, every value > 0 \(got \[0.0\]\)$",
                     tmp_path / "results", capsys)


def test_query_with_empty_sql_or_an_output_folder_that_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    expect_bad_input(["query", str(tmp_path), "  "], r"^alignsweep: error: the SQL is empty \(the last argument\)",
                     tmp_path, capsys)
    expect_bad_input(["query", str(tmp_path), "SELECT 1", "--output", str(tmp_path / "no" / "x.csv")],
                     r"--output '.*x.csv': folder '.*no' does not exist$", tmp_path, capsys)


def test_report_of_a_sweep_whose_manifest_is_corrupt(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from alignsweep.store import write_manifest

    sweep = tmp_path / "s"
    write_manifest(str(sweep))
    (sweep / "manifest.json").write_text("{not json")
    expect_bad_input(["report", str(sweep), "--out", str(tmp_path / "report")],
                     r"s/manifest.json: not valid JSON \(.*\); this sweep directory is damaged$", tmp_path, capsys)


def test_hub_model_not_in_the_cache_while_offline(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, a hub id loads from the local Hugging Face cache only (an empty HF_HOME here)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path, "someorg/some-model-7b"), results),
                     r"model 'someorg/some-model-7b': not in the Hugging Face cache \(.*hf/hub\) and HF_HUB_OFFLINE is "
                     r"set; download it first", results, capsys)


@pytest.mark.parametrize("key", ["a\nb", "a\rb", "a\u2028b", "a\x85b"])
def test_a_key_with_a_line_break_is_still_one_line(key: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Whatever the user's text quoted in an error holds, the error stays one line (the break is escaped)."""
    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "models": ["tiny:llama"], "methods": ["lora"],
                                    "evaluation": {"evaluators": {key: None}}}))
    expect_bad_input(run_argv(path, tmp_path / "results"),
                     r"evaluation.evaluators.a\\.*b: unknown field \(fields here: actors_per_model, ", tmp_path / "results",
                     capsys)


def test_a_tied_lm_head_is_a_module_of_the_base(model_dir: Path) -> None:
    """Tied embeddings: the checkpoint stores no lm_head.weight, yet `target_modules: [lm_head]` is good input."""
    from safetensors.torch import load_file, save_file

    from alignsweep.spec.model_fit import check_targets, module_table

    weights = load_file(model_dir / "model.safetensors")
    weights.pop("lm_head.weight", None)
    save_file(weights, model_dir / "model.safetensors")
    table = module_table(str(model_dir))
    assert table["lm_head"] == table["model.embed_tokens"]
    check_targets(["lm_head", "q_proj"], table, "methods.lora.target_modules")  # no error


def test_min_free_space_setting_that_is_not_a_number(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIGNSWEEP_MIN_FREE_MB", "lots")
    results = tmp_path / "results"
    expect_bad_input(run_argv(spec_file(tmp_path), results), r"ALIGNSWEEP_MIN_FREE_MB='lots': not a whole number of MiB$",
                     results, capsys)


def _laughs() -> str:
    text, previous = "a: &a [" + ", ".join(["lol"] * 10) + "]\n", "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
        previous = name
    return text + "name: t\nmodels: [tiny:llama]\nmethods: {lora: {target_modules: *i}}\n"


@pytest.mark.parametrize(("text", "pattern"), [
    (_laughs(), r"sweep.yaml: its aliases expand to more than 100,000 values \(a YAML 'billion laughs'\)"),
    ("name: t\nx: " + "[" * 5000 + "]" * 5000 + "\n", r"sweep.yaml: invalid YAML: nested too deep$"),
    ("name: t\nseed: !!timestamp abc\n", r"sweep.yaml: invalid YAML: a tagged value cannot be built \("),
    ("name: t\nseed: !!int abc\n", r"sweep.yaml: invalid YAML: a tagged value cannot be built \(invalid literal"),
])
def test_yaml_that_cannot_be_read_as_data(text: str, pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    expect_bad_input(run_argv(path, tmp_path / "results"), pattern, tmp_path / "results", capsys)


def test_an_override_whose_tag_cannot_be_built(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = [*run_argv(spec_file(tmp_path), tmp_path / "results"), "seed=!!int abc"]
    expect_bad_input(argv, r"override 'seed=!!int abc': value '!!int abc' is not valid YAML$", tmp_path / "results",
                     capsys)
