"""The sweep spec: every bad input is one line naming file:line, field and value, with exit code 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from alignsweep.cli.main import main
from alignsweep.spec.config import load_spec
from alignsweep.spec.plan import expand_trials
from alignsweep.errors import InputError

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
name: t
models: [tiny:llama, tiny:gemma]
methods:
  lora: {r: [4, 8], alpha: 16}
  ia3: {}
  prompt_tuning: {num_virtual_tokens: 4, init: [random, text]}
  p_tuning: {encoder_hidden_size: [16]}
training:
  max_steps: 10
  learning_rates: [1.0e-3, 1.0e-2]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_spec_expands_each_method_grid(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    plans = expand_trials(spec)
    # per model: lora 2 ranks + ia3 1 + prompt tuning 2 inits + p-tuning 1 = 6 configs, × 2 learning rates
    assert len(plans) == 2 * 6 * 2
    assert len({p.variant_id for p in plans}) == len(plans)
    lora = [p for p in plans if p.method == "lora"]
    assert {p.hyperparameters["r"] for p in lora} == {4, 8}
    assert all(p.hyperparameters["alpha"] == 16.0 for p in lora)


def test_variant_ids_are_stable_and_content_addressed(tmp_path: Path) -> None:
    a = [p.variant_id for p in expand_trials(load_spec(write(tmp_path, GOOD)))]
    b = [p.variant_id for p in expand_trials(load_spec(write(tmp_path, GOOD)))]
    c = [p.variant_id for p in expand_trials(load_spec(write(tmp_path, GOOD), ["training.batch_size=4"]))]
    assert a == b
    assert set(a).isdisjoint(c)  # different training settings never share a trial's store files


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("r: [4, 8]", "r: [4, eight]"), r"sweep.yaml:4: methods.lora.r\[1\]: .*valid integer.*'eight'"),
        (GOOD.replace("lora:", "lorax:"), r"sweep.yaml:4: methods.lorax: unknown method 'lorax' \(did you mean 'lora'\? known: dora, ia3, lora, "),
        (GOOD.replace("models: [tiny:llama, tiny:gemma]", "models: []"), r"sweep.yaml:2: models: list at least one"),
        (GOOD.replace("learning_rates: [1.0e-3, 1.0e-2]", "learning_rates: []"), r":10: training.learning_rates: empty grid"),
        (GOOD.replace("learning_rates: [1.0e-3, 1.0e-2]", "learning_rates: [-1]"), r"training.learning_rates: every value must be > 0"),
        (GOOD + "scheduler: {name: hyperband}\n", r":11: scheduler.name: unknown scheduler 'hyperband' \(known: alignment, asha, median, none\)"),
        (GOOD + "scheduler: {mode: maximize}\n", r"scheduler.mode: .*'min' or 'max'.*'maximize'"),
        (GOOD + "colour: blue\n", r":11: colour: unknown field \(fields here: name, seed, models, methods, training, "),
        (GOOD.replace("name: t", "name: 'a b/c'"), r"name: sweep name must be"),
        (GOOD.replace("name: t\n", ""), r"name: required field is missing"),
        (GOOD.replace("max_steps: 10", "max_steps: 10\n  epochs: 2"), r"training: give one of training.epochs or training.max_steps"),
        (GOOD.replace("ia3: {}", "ia3: {target_modules: q_proj, rank: 3}"), r":5: methods.ia3.rank: unknown field \(fields here: learning_rates, target_modules, feedforward_modules\)"),
        (GOOD.replace("p_tuning: {encoder_hidden_size: [16]}", "p_tuning: {encoder_hidden_size: []}"), r"methods.p_tuning.encoder_hidden_size: .*at least one"),
        (GOOD.replace("init: [random, text]", "init: [vocab]"), r"methods.prompt_tuning.init\[0\]: .*'random' or 'text'"),
        (GOOD.replace("models: [tiny:llama, tiny:gemma]", "models: [tiny:llama, tiny:llama]"), r"models: model listed twice: tiny:llama"),
        (GOOD + "resources: {gpu: -1}\n", r"resources.gpu: .*greater than or equal to 0"),
        ("name: [unclosed\n", r"sweep.yaml:2: invalid YAML"),
        ("- just\n- a list\n", r"sweep.yaml: a sweep file must be a mapping"),
        (GOOD + "evaluation: {safety: {judges: [{name: oracle}]}}\n", r":11: evaluation.safety.judges\[0\].name: .*unknown judge .oracle."),
    ],
)
def test_bad_specs_name_line_field_and_value(tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=expected):
        load_spec(path)
    assert main(["run", str(path), "--results", str(tmp_path / "results"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("alignsweep: error: ")
    assert not (tmp_path / "results").exists()


def test_override_errors_name_the_override(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(InputError, match=r"override 'training.batch_size=x': training.batch_size: .*'x'"):
        load_spec(path, ["training.batch_size=x"])
    with pytest.raises(InputError, match=r"expected key=value"):
        load_spec(path, ["training.batch_size"])
    spec = load_spec(path, ["training.learning_rates=[0.5]", "methods.lora.r=2"])
    assert spec.training.learning_rates == [0.5]
    assert spec.method_grids()["lora"].r == [2]


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope.yaml: cannot read sweep file"):
        load_spec(tmp_path / "nope.yaml")


def test_paper_dry_run_counts_at_least_235_trials_offline(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("dry-run touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert main(["run", str(REPO / "sweeps" / "paper.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    spec = load_spec(REPO / "sweeps" / "paper.yaml")
    count = len(expand_trials(spec))
    assert count >= 235
    assert f"{count} trials" in out
    assert {p.method for p in expand_trials(spec)} == {"lora", "ia3", "prompt_tuning", "p_tuning"}


def test_demo_spec_is_four_families_by_four_methods_by_two_rates() -> None:
    plans = expand_trials(load_spec(REPO / "sweeps" / "demo.yaml"))
    assert {p.base_model for p in plans} == {"tiny:llama", "tiny:qwen2", "tiny:mistral", "tiny:gemma"}
    assert {p.method for p in plans} == {"lora", "ia3", "prompt_tuning", "p_tuning"}
    assert len({p.learning_rate for p in plans}) >= 2
    scheduler = load_spec(REPO / "sweeps" / "demo.yaml").scheduler
    # ASHA, alone or under the alignment rule (`then` defaults to asha, so it counts only under `alignment`)
    assert scheduler.name == "asha" or (scheduler.name == "alignment" and scheduler.then == "asha")


def test_cluster_yaml_is_accepted_by_the_ray_cluster_launcher() -> None:
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((REPO / "cluster.yaml").read_text()))
    validate_config(config)
    assert config["available_node_types"]["judge_gpu"]["resources"]["judge"] == 1
