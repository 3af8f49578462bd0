"""CLI conventions: options and `key=value` overrides in any order, "did you mean …?" for every name a
user can misspell (naming the override when the override is wrong), list items in overrides, peft's
field names, the spec's JSON Schema, pinned hub revisions, and `--help` examples.

Nothing here starts Ray or trains; the revision tests load the cached tiny llama through a real
(local, offline) hub cache.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from alignsweep.errors import InputError
from alignsweep.spec.config import load_spec

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "sweeps" / "demo.yaml"

SPEC = """\
name: t
models: [tiny:llama]
methods: {lora: {r: [2, 4]}}
training: {max_steps: 2, learning_rates: [1.0e-3, 2.0e-3]}
scheduler: {name: none}
"""


@pytest.fixture()
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SPEC)
    return path


def _one_line_error(run: Any, pattern: str) -> str:
    assert run.code == 2, (run.code, run.out, run.err)
    assert len(run.err_lines) == 1 and run.err.startswith("alignsweep: error: "), run.err
    assert re.search(pattern, run.err), run.err
    return run.err


def _trials(run: Any) -> int:
    assert run.code == 0, run.err
    return int(re.search(r"sweep 't': (\d+) trials", " ".join(run.out.split())).group(1))


# ---------------------------------------------------------------- options and overrides in any order


def test_options_and_overrides_in_any_order(cli, spec_path: Path, tmp_path: Path) -> None:
    results = tmp_path / "r"
    orders = [
        ("run", spec_path, "--dry-run", "methods.lora.r=[2,4,8]", "--results", results),
        ("run", spec_path, "methods.lora.r=[2,4,8]", "--dry-run", "--results", results),
        ("run", "--dry-run", spec_path, "--results", results, "methods.lora.r=[2,4,8]"),
        ("run", "--dry-run", "methods.lora.r=[2,4,8]", spec_path, "--results", results),  # overrides first
        ("run", "--results", results, "methods.lora.r=[2,4,8]", "--dry-run", spec_path),
    ]
    outs = {cli(*argv).out for argv in orders}
    assert len(outs) == 1
    assert "sweep 't': 6 trials" in " ".join(outs.pop().split())  # 3 ranks × 2 rates
    assert not results.exists()


def test_a_sweep_file_with_an_equals_sign_in_its_name_is_the_file(cli, tmp_path: Path) -> None:
    path = tmp_path / "lr=1e-3.yaml"
    path.write_text(SPEC)
    assert _trials(cli("run", path, "--dry-run")) == 4
    assert _trials(cli("run", "training.learning_rates=[0.1]", path, "--dry-run")) == 2
    # A name with '=' that is no file is an override; with no file left the first token is read as one.
    _one_line_error(cli("run", tmp_path / "no=such.yaml", "--dry-run"), r"no=such.yaml: cannot read sweep file")


def test_a_second_plain_argument_and_unknown_options_are_one_line_errors(cli, spec_path: Path) -> None:
    _one_line_error(cli("run", spec_path, "--dry-run", "training.batch_size"),
                    r"unexpected argument 'training.batch_size': overrides are key=value")
    _one_line_error(cli("run", spec_path, "--dryrun"), r"unrecognized arguments: --dryrun \(did you mean '--dry-run'\?\)")
    _one_line_error(cli("run", spec_path, "training.max_steps=3", "--nope=1"), r"unrecognized arguments: --nope=1$")
    _one_line_error(cli("pareto", "x", "--fromat", "csv"),
                    r"unrecognized arguments: --fromat csv \(did you mean '--format'\?\)")


# hypothesis: any mixture of the run command's options, overrides and stray words, in any order
flag_tokens = st.sampled_from([["--dry-run"], ["--results", "RESULTS"], ["--num-cpus", "1"], ["--num-cpus", "x"],
                               ["--dry-run"], ["--nope"], ["--results"], ["-x"], ["--dry-run=1"]])
override_tokens = st.builds(
    lambda key, value: [f"{key}={value}"],
    st.sampled_from(["training.max_steps", "training.learning_rates.0", "training.learning_rates.7", "models.0.dtype",
                     "models.0.revision", "trainng.max_steps", "methods.lora.lora_alpha", "methods.lorx.r",
                     "scheduler.name", "seed", "name", "methods.lora.r.0", "models.0.ref.x", ".x", "a..b"]),
    st.sampled_from(["3", "bfloat16", "[1, 2]", "x", "", "{a: 1}", "[unclosed", "-1", "asha", "1e-3", "null"]))
stray_tokens = st.sampled_from([["stray"], ["SPEC"], ["=x"], ["a=b=c"]])


@given(chunks=st.lists(flag_tokens | override_tokens | stray_tokens, max_size=6), spec_at=st.integers(0, 6))
@example(chunks=[["training.max_steps=3"], ["--dry-run"]], spec_at=2)
@example(chunks=[["--results"]], spec_at=1)
@example(chunks=[["methods.lora.lora_alpha=8"], ["--dry-run"]], spec_at=0)
@example(chunks=[["models.²=x"], ["training.learning_rates.²=1"]], spec_at=0)  # a digit to str.isdigit, no index
def test_any_order_of_options_and_overrides_is_a_run_or_one_line_of_bad_input(cli, tmp_path: Path,
                                                                              chunks: list[list[str]],
                                                                              spec_at: int) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    tokens = [t.replace("RESULTS", str(results)) for chunk in chunks for t in chunk]
    tokens = [str(spec) if t == "SPEC" else t for t in tokens]
    tokens.insert(min(spec_at, len(tokens)), str(spec))
    if "--dry-run" not in tokens:
        tokens.append("--dry-run")  # never a real sweep here
    run = cli("run", *tokens)
    assert run.code in (0, 2), (tokens, run.code, run.err)
    if run.code == 2:
        assert len(run.err_lines) == 1 and run.err.startswith("alignsweep: error: "), (tokens, run.err)
        assert "Traceback" not in run.err
    assert not results.exists()


# ---------------------------------------------------------------- did you mean


@pytest.mark.parametrize("override, expected", [
    ("trainng.max_steps=60", r"override 'trainng.max_steps=60': trainng: unknown field \(did you mean 'training'\?\)$"),
    ("training.max_step=60", r"override 'training.max_step=60': training.max_step: unknown field \(did you mean 'max_steps'\?\)"),
    ("training.learning_rate=[0.1]", r"training.learning_rate: unknown field \(did you mean 'learning_rates'\?\)"),
    ("shceduler.name=asha", r"shceduler: unknown field \(did you mean 'scheduler'\?\)"),
    ("scheduler.name=ahsa", r"scheduler.name: unknown scheduler 'ahsa' \(did you mean 'asha'\? known: alignment, asha"),
    ("methods.lorra.r=4", r"methods.lorra: unknown method 'lorra' \(did you mean 'lora'\? known: dora, ia3, lora"),
    ("methods.lora.lora_alph=8", r"methods.lora.lora_alph: unknown field \(did you mean 'lora_alpha'\?\)"),
    ("models.0.dtpye=bfloat16", r"models.0.dtpye: unknown field \(did you mean 'dtype'\?\)"),
    ("evaluation.safety.judges=[{name: refsual}]",
     r"evaluation.safety.judges\[0\].name: unknown judge 'refsual' \(did you mean 'refusal'\? known: hf_classifier"),
    ("evaluation.saftey.limit=3", r"evaluation.saftey: unknown field \(did you mean 'safety'\?\)"),
    ("xyzzy=1", r"xyzzy: unknown field \(fields here: name, seed, models, methods, training, scheduler"),
    ("scheduler.grace=2", r"scheduler.grace: unknown field \(did you mean 'grace_period'\?\)"),  # cut short
    ("training.lr=[0.1]", r"training.lr: unknown field \(did you mean 'learning_rates'\?\)"),  # initials
    ("models.0.dtype=bfloat", r"models\[0\].dtype: Input should be 'float32', 'bfloat16' or 'float16' "
                              r"\(got 'bfloat'; did you mean 'bfloat16'\?\)$"),  # a misspelt choice
    ("scheduler.mode=mni", r"scheduler.mode: Input should be 'min' or 'max' \(got 'mni'; did you mean 'min'\?\)"),
])
def test_a_wrong_override_is_named_with_the_closest_name_and_the_file_is_not_blamed(cli, spec_path: Path,
                                                                                  override: str, expected: str) -> None:
    err = _one_line_error(cli("run", spec_path, override, "--dry-run"), expected)
    assert f"override {override!r}" in err
    assert str(spec_path) not in err and "sweep.yaml" not in err


@pytest.mark.parametrize("old, new, expected", [
    ("training:", "trainng:", r"sweep.yaml:4: trainng: unknown field \(did you mean 'training'\?\)"),
    ("max_steps: 2", "max_step: 2", r"sweep.yaml:4: training.max_step: unknown field \(did you mean 'max_steps'\?\)"),
    ("{r: [2, 4]}", "{r: [2, 4], lora_alhpa: 8}", r"sweep.yaml:3: methods.lora.lora_alhpa: unknown field \(did you mean 'lora_alpha'\?\)"),
    ("lora:", "lroa:", r"sweep.yaml:3: methods.lroa: unknown method 'lroa' \(did you mean 'lora'\?"),
    ("name: none", "name: mediam", r"sweep.yaml:5: scheduler.name: unknown scheduler 'mediam' \(did you mean 'median'\?"),
    ("tiny:llama", "{ref: tiny:llama, dtyp: bfloat16}", r"sweep.yaml:2: models\[0\].dtyp: unknown field \(did you mean 'dtype'\?\)"),
])
def test_a_misspelling_in_the_file_names_file_line_and_the_closest_name(cli, tmp_path: Path, old: str, new: str,
                                                                       expected: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SPEC.replace(old, new, 1))
    _one_line_error(cli("run", path, "--dry-run"), expected)


def test_misspelt_subcommands_choices_judges_and_tiny_models_get_a_suggestion(cli, tmp_path: Path) -> None:
    _one_line_error(cli("rn", "x"), r"invalid choice: 'rn' \(did you mean 'run'\? choose from 'run', 'resume'")
    _one_line_error(cli("reprot", "x"), r"did you mean 'report'\?")
    _one_line_error(cli("pareto", "x", "--format", "jsn"), r"invalid choice: 'jsn' \(did you mean 'json'\? choose from")
    _one_line_error(cli("audit", "--base", "tiny:llama", "--judge", "refsual", "--results", tmp_path / "a"),
                    r"unknown judge 'refsual' \(did you mean 'refusal'\? known: hf_classifier, llama_guard, refusal\)")
    _one_line_error(cli("audit", "--base", "tiny:lama", "--results", tmp_path / "a"),
                    r"unknown tiny model 'tiny:lama' \(did you mean 'tiny:llama'\? known: tiny:llama, tiny:qwen2")
    from alignsweep.analysis.gate import parse_rules

    with pytest.raises(InputError, match=r"unknown metric 'safe_rat' \(did you mean 'safe_rate'\? known: "):
        parse_rules("safe_rat.overall<-0.05")
    _one_line_error(cli("models", "build", "lama"), r"unknown tiny family 'lama' \(did you mean 'llama'\? known: llama, qwen2")
    _one_line_error(cli("models", "build", "falcon"), r"unknown tiny family 'falcon' \(known: llama, qwen2, mistral, gemma\)")
    assert not (tmp_path / "a").exists()


def test_the_suggestion_helper() -> None:
    from alignsweep.suggest import did_you_mean, unknown_name

    assert did_you_mean("trainng", ["name", "training", "seed"]) == "did you mean 'training'?"
    assert did_you_mean("LoRA", ["dora", "lora"]) == "did you mean 'lora'?"  # a case slip
    assert did_you_mean("qqq", ["name", "training"]) == ""
    assert did_you_mean("grace", ["grace_period", "mode"]) == "did you mean 'grace_period'?"
    assert did_you_mean("lr", ["learning_rates", "seeds"]) == "did you mean 'learning_rates'?"
    assert did_you_mean("x", ["xylophone_y"]) == ""  # one letter is no evidence
    assert unknown_name("method", "x", ["b", "a"]) == "unknown method 'x' (known: b, a)"


# ---------------------------------------------------------------- list items and shorthands in overrides


def test_overrides_reach_list_items(spec_path: Path) -> None:
    spec = load_spec(spec_path, ["models.0.dtype=bfloat16", "training.learning_rates.1=3e-3"])
    assert spec.models[0].ref == "tiny:llama" and spec.models[0].dtype == "bfloat16"  # a string model became a mapping
    assert spec.training.learning_rates == [1e-3, 3e-3]
    spec = load_spec(spec_path, ["models=[tiny:llama, tiny:qwen2]", "models.1.dtype=float16"])
    assert [(m.ref, m.dtype) for m in spec.models] == [("tiny:llama", "float32"), ("tiny:qwen2", "float16")]
    spec = load_spec(DEMO, ["methods.prompt_tuning.learning_rates.0=5e-2", "methods.lora.target_modules.3=down_proj"])
    assert spec.method_grids()["prompt_tuning"].learning_rates == [5e-2, 3e-2, 1e-1]
    assert spec.method_grids()["lora"].target_modules == ["q_proj", "k_proj", "v_proj", "down_proj"]
    with pytest.raises(InputError, match=r"override 'models.1.dtype=bfloat16': models has 1 item\(s\); index 1 is out of range"):
        load_spec(spec_path, ["models.1.dtype=bfloat16"])
    with pytest.raises(InputError, match=r"training.learning_rates is a list; address an item by its index"):
        load_spec(spec_path, ["training.learning_rates.first=1"])
    with pytest.raises(InputError, match=r"evaluation.safety.judges has 0 item\(s\); index 0 is out of range"):
        load_spec(spec_path, ["evaluation.safety.judges.0.name=refusal"])
    with pytest.raises(InputError, match=r"override 'models.0.dtype=int8': models\[0\].dtype: Input should be"):
        load_spec(spec_path, ["models.0.dtype=int8"])  # a bad value at a list item still names the override


def test_an_item_override_is_validated_like_the_file(spec_path: Path) -> None:
    with pytest.raises(InputError, match=r"^override 'scheduler.group_by.*: scheduler.group_by: group key listed twice"):
        load_spec(spec_path, ["scheduler.group_by=[model, method]", "scheduler.group_by.1=model"])
    spec = load_spec(spec_path, ["scheduler.group_by=[model, method]", "scheduler.group_by.1=model",
                                 "scheduler.group_by.0=method"])
    assert spec.scheduler.group_by == ["method", "model"]  # later overrides apply on top of earlier ones


def test_methods_given_as_a_list_take_field_overrides(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SPEC.replace("methods: {lora: {r: [2, 4]}}", "methods: [lora, ia3]"))
    spec = load_spec(path, ["methods.lora.r=[16]"])
    assert spec.method_grids()["lora"].r == [16] and "ia3" in spec.methods


# ---------------------------------------------------------------- peft's names


def test_peft_field_names_are_accepted_for_the_grids(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SPEC.replace("methods: {lora: {r: [2, 4]}}", """methods:
  lora: {r: 4, lora_alpha: [8, 16], lora_dropout: 0.1}
  dora: {lora_alpha: 32}
  prompt_tuning: {prompt_tuning_init: TEXT, prompt_tuning_init_text: Be safe., num_virtual_tokens: 4}
  p_tuning: {encoder_hidden_size: 16, encoder_reparameterization_type: LSTM}"""))
    grids = load_spec(path).method_grids()
    assert grids["lora"].alpha == [8.0, 16.0] and grids["lora"].dropout == [0.1]
    assert grids["dora"].alpha == [32.0]
    assert grids["prompt_tuning"].init == ["text"] and grids["prompt_tuning"].init_text == "Be safe."
    assert grids["p_tuning"].encoder_reparameterization_type == "LSTM"
    config = type(grids["lora"]).build({**grids["lora"].fixed(), "r": 4, "alpha": 8.0, "dropout": 0.1}, "")
    assert (config.lora_alpha, config.lora_dropout) == (8.0, 0.1)  # peft gets its own fields back
    # an override in peft's spelling replaces the file's own spelling of that field, and the other way round
    spec = load_spec(DEMO, ["methods.lora.lora_alpha=[32]"])
    assert spec.method_grids()["lora"].alpha == [32.0]
    spec = load_spec(path, ["methods.lora.alpha=4"])
    assert spec.method_grids()["lora"].alpha == [4.0]
    path.write_text(SPEC.replace("{r: [2, 4]}", "{r: 2, alpha: 8, lora_alpha: 16}"))
    with pytest.raises(InputError, match=r"sweep.yaml:3: methods.lora: give alpha or lora_alpha \(peft's name for it\), not both"):
        load_spec(path)


# ---------------------------------------------------------------- JSON Schema


def _schema(cli) -> dict[str, Any]:
    run = cli("schema")
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_schema_is_valid_json_schema_that_every_bundled_sweep_validates_against(cli) -> None:
    import jsonschema

    schema = _schema(cli)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    sweeps = sorted((REPO / "sweeps").glob("*.yaml"))
    assert len(sweeps) >= 3
    for path in sweeps:
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert errors == [], path
    for text in (SPEC, SPEC.replace("{lora: {r: [2, 4]}}", "[lora, ia3]"),
                 SPEC.replace("[tiny:llama]", "[{ref: org/model, revision: v1.0, dtype: bfloat16}]")):
        assert list(validator.iter_errors(yaml.safe_load(text))) == []
    assert schema["properties"]["training"]["$ref"].endswith("TrainingSpec")
    eval_interval = schema["$defs"]["TrainingSpec"]["properties"]["eval_interval"]
    assert "checkpoints" in eval_interval["description"]  # fields' descriptions reach the editor


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d.update(trainng=d.pop("training")), "trainng"),
    (lambda d: d["training"].update(max_step=3), "max_step"),
    (lambda d: d["methods"].update(lorax={}), "lorax"),
    (lambda d: d["methods"]["lora"].update(lora_alph=8), "lora_alph"),
    (lambda d: d["scheduler"].update(name="hyperband"), "hyperband"),
    (lambda d: d.update(models=[{"ref": "tiny:llama", "dtype": "int8"}]), "int8"),
    (lambda d: d.update(evaluation={"safety": {"judges": [{"name": "oracle"}]}}), "oracle"),
    (lambda d: d.update(name="a b"), "a b"),
])
def test_schema_refuses_what_validation_refuses(cli, mutate: Any, where: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema(cli))
    doc = yaml.safe_load(SPEC)
    mutate(doc)
    errors = list(validator.iter_errors(doc))
    assert errors and any(where in str(e.message) or where in str(e.instance) for e in errors), errors
    with pytest.raises(InputError):  # and validation agrees
        from alignsweep.spec.config import validate_spec

        validate_spec(doc)


def test_schema_names_registered_methods_schedulers_and_judges(cli) -> None:
    from alignsweep.evaluators.judges import JUDGES
    from alignsweep.scheduling import SCHEDULERS
    from alignsweep.trainables.methods import METHODS

    schema = _schema(cli)
    assert schema["$defs"]["SchedulerSpec"]["properties"]["name"]["enum"] == SCHEDULERS.names()
    assert schema["$defs"]["JudgeSpec"]["properties"]["name"]["enum"] == JUDGES.names()
    sections = schema["properties"]["methods"]["anyOf"][0]["properties"]
    assert sorted(sections) == METHODS.names()
    assert "lora_alpha" in schema["$defs"]["method.lora"]["properties"]


# ---------------------------------------------------------------- revision


@pytest.fixture()
def hub_cache(tiny_paths: Mapping[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real (offline) hub cache holding `org/tiny` at two revisions — `main` and the tag `v2` — each the
    tiny llama with its revision written into config.json; returns the repo id."""
    from huggingface_hub import constants

    root = tmp_path / "hub"
    repo = root / "models--org--tiny"
    for name, commit in (("main", "a" * 40), ("v2", "b" * 40)):
        snapshot = repo / "snapshots" / commit
        shutil.copytree(tiny_paths["llama"], snapshot)
        cfg = json.loads((snapshot / "config.json").read_text())
        (snapshot / "config.json").write_text(json.dumps({**cfg, "alignsweep_snapshot": name}))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / name).write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return "org/tiny"


def test_revision_reaches_from_pretrained_for_hub_models(hub_cache: str) -> None:
    from alignsweep.models.loading import LoadOptions, load_model, load_tokenizer, load_with

    assert load_model(hub_cache, device="cpu").config.alignsweep_snapshot == "main"
    assert load_with(hub_cache, LoadOptions(revision="v2"), device="cpu").config.alignsweep_snapshot == "v2"
    assert load_model(hub_cache, revision="b" * 40, device="cpu").config.alignsweep_snapshot == "v2"
    assert load_tokenizer(hub_cache, revision="v2") is not None
    with pytest.raises(OSError):  # a revision the cache does not hold is not quietly the default branch
        load_model(hub_cache, revision="v3", device="cpu")


def test_revision_of_a_local_model_is_bad_input(tiny_paths: Mapping[str, Path], tmp_path: Path, cli) -> None:
    from alignsweep.models.loading import load_model, load_tokenizer, revision_kwargs

    local = str(tiny_paths["llama"])
    assert revision_kwargs("org/model", "v1") == {"revision": "v1"}
    assert revision_kwargs(local, None) == {}
    with pytest.raises(InputError, match=r"revision 'v1' pins a hub model's files; a local directory is loaded as it is"):
        load_model(local, revision="v1", device="cpu")
    with pytest.raises(InputError, match=r"revision 'v1'"):
        load_tokenizer(local, revision="v1")
    path = tmp_path / "sweep.yaml"
    path.write_text(SPEC.replace("[tiny:llama]", f"[{{ref: {local}, revision: v1}}]"))
    assert load_spec(path).models[0].revision == "v1"  # a spec is validated without the filesystem …
    from alignsweep.spec.preflight import check_model

    with pytest.raises(InputError, match=rf"model '{re.escape(local)}': revision 'v1' pins"):
        check_model(local, revision="v1")  # … and the pre-run checks refuse it before Ray starts
    from alignsweep.evaluators.judges import JudgeSpec
    from alignsweep.spec.preflight import check_judge

    for name in ("llama_guard", "hf_classifier"):  # a judge's model likewise
        with pytest.raises(InputError, match=r"revision 'v1' pins a hub model's files"):
            check_judge(JudgeSpec(name=name, model=local, revision="v1", label_map={"LABEL_0": "safe"}))
    _one_line_error(cli("run", tmp_path / "sweep.yaml", "models.0.ref=tiny:llama", "--dry-run"),
                    r"models\[0\].revision: a revision pins a hub model's files; tiny:llama is built here")


def test_audit_revisions_apply_to_hub_ids_only(cli, tmp_path: Path, untrained_lora: str) -> None:
    results = tmp_path / "audit"
    _one_line_error(cli("audit", "--base", "tiny:llama", "--revision", "v1", "--results", results),
                    r"model 'tiny:llama': revision 'v1' pins a hub model's files")
    _one_line_error(cli("audit", "--base", "tiny:llama", "--adapter", untrained_lora, "--adapter-revision", "v1",
                        "--results", results), r"--adapter-revision 'v1': pins a hub adapter; .* is read as it is")
    _one_line_error(cli("audit", "--base", "tiny:llama", "--adapter-revision", "v1", "--results", results),
                    r"--adapter-revision needs --adapter")
    _one_line_error(cli("audit", "--base", "tiny:llama", "--adapter", "org/not-cached", "--adapter-revision", "v1",
                        "--results", results), r"adapter 'org/not-cached': not a local directory, and the hub download failed")
    assert not results.exists()


def test_revisions_are_recorded_in_the_manifest_and_a_pinned_model_is_a_different_trial(tmp_path: Path) -> None:
    from alignsweep.engine.sweep import prepare_sweep_dir
    from alignsweep.spec.plan import expand_trials
    from alignsweep.store import read_manifest

    path = tmp_path / "sweep.yaml"
    path.write_text(SPEC.replace("[tiny:llama]", "[{ref: org/tiny, revision: v2}, tiny:qwen2]"))
    spec = load_spec(path, ["training.dataset=org/chats", "training.dataset_revision=abc123"])
    prepare_sweep_dir(spec, str(tmp_path / "out"))
    manifest = read_manifest(str(tmp_path / "out"))
    assert manifest["models"] == [{"ref": "org/tiny", "revision": "v2", "dtype": "float32"},
                                  {"ref": "tiny:qwen2", "revision": None, "dtype": "float32"}]
    assert manifest["training_data"] == {"dataset": "org/chats", "split": "train", "revision": "abc123"}
    unpinned = load_spec(path, ["models.0.revision=null"])
    pinned_ids = {p.variant_id for p in expand_trials(spec) if p.base_model == "org/tiny"}
    unpinned_ids = {p.variant_id for p in expand_trials(unpinned) if p.base_model == "org/tiny"}
    assert pinned_ids and pinned_ids.isdisjoint(unpinned_ids)
    assert [p.model["revision"] for p in expand_trials(spec)][:1] == ["v2"]  # what the trainer loads


def test_dataset_revisions_apply_to_hub_datasets_only(tmp_path: Path) -> None:
    from alignsweep.data.rows import parse_hub_source, read_rows
    from alignsweep.trainables.data import load_conversations

    assert parse_hub_source("hf:org/set@v1.0:test") == ("org/set", "v1.0", "test")
    assert parse_hub_source("hf:org/set") == ("org/set", None, "train")
    with pytest.raises(InputError, match=r"hf:org/set@:test: empty revision after '@'"):
        list(read_rows("hf:org/set@:test")[1])
    with pytest.raises(InputError, match=r"training.dataset_revision: 'v1' pins a hub dataset; 'bundled' is read as it is"):
        load_conversations("bundled", revision="v1")
    assert load_conversations("bundled", limit=2)  # unpinned, as before


# ---------------------------------------------------------------- --help


def test_every_subcommand_help_ends_with_examples(cli) -> None:
    from alignsweep.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        run = cli(name, "--help")
        assert run.code == 0, run.err
        tail = run.out.rstrip().split("examples:\n")
        assert len(tail) == 2, (name, run.out)
        commands = [line for line in tail[1].splitlines() if line.strip().startswith("alignsweep ")]
        assert 2 <= len(commands) <= 4, (name, tail[1])
        assert all(line.strip().startswith(f"alignsweep {name}") for line in commands), (name, commands)
