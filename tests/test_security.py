"""Security defaults: a private local Ray (loopback, no dashboard, token auth), tokens never stored,
pickled weights only by per-model opt-in. Malicious YAML and remote code: tests/test_bad_input.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import psutil
import pytest

from alignsweep.spec.config import validate_spec

SECRET = "secret-xyz-4f1d"


@pytest.mark.slow
def test_local_ray_is_loopback_tokened_and_dashboardless_and_tokens_never_reach_results(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    from alignsweep.engine.runtime import ray_session
    from alignsweep.engine.sweep import run_sweep

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", SECRET)
    with ray_session(num_cpus=2):
        assert is_token_auth_enabled()
        # Ray 2.60 rewrites a loopback node IP to the machine's address (services.resolve_ip_for_localhost)
        # and its gRPC servers listen on all interfaces: the token is what guards them (docs/bad-input.md)
        assert len(ray.nodes()) == 1
        ours = psutil.Process().children(recursive=True)
        # Ray 2.60 always starts a dashboard head process; without the dashboard it is `--minimal`
        # (usage stats only) and serves no HTTP: no UI, no job-submission API, nothing on 8265.
        heads = [p for p in ours if any(a.endswith("dashboard/dashboard.py") for a in p.cmdline())]
        assert all("--minimal" in p.cmdline() for p in heads)
        assert all(not [c for c in p.net_connections("inet") if c.status == "LISTEN"] for p in heads)
        listening = {c.laddr.port for p in ours for c in p.net_connections("inet") if c.status == "LISTEN"}
        assert 8265 not in listening
        spec = validate_spec({
            "name": "secrets", "seed": 0, "models": ["tiny:llama"], "methods": {"lora": {"r": [2]}},
            "training": {"max_steps": 2, "eval_interval": 2, "batch_size": 2, "max_examples": 8,
                         "max_seq_length": 48},
            "scheduler": {"name": "none"},
            "evaluation": {"safety": {"limit": 1, "max_new_tokens": 8}, "fairness": {"limit": 2},
                           "over_refusal": {"limit": 1}},
        })
        outcome = run_sweep(spec, results=str(tmp_path / "results"))
    assert outcome.errors == 0
    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert len(files) > 20  # store, manifest, spec, Tune state, logs, checkpoints
    leaked = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert leaked == []


def test_pickled_weights_load_only_with_the_per_model_opt_in(tiny_paths: Mapping[str, Path], tmp_path: Path) -> None:
    from alignsweep.spec.preflight import check_model
    from alignsweep.errors import InputError
    from alignsweep.models.loading import load_model

    model = Path(shutil.copytree(tiny_paths["llama"], tmp_path / "m"))
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    with pytest.raises(InputError, match="only pickled weights"):
        check_model(str(model))
    with pytest.raises(OSError):
        load_model(str(model))  # the loader itself refuses too (use_safetensors=True)
    check_model(str(model), allow_unsafe_weights=True)
    assert load_model(str(model), allow_unsafe_weights=True) is not None


def test_remote_code_is_off_unless_opted_in(tiny_paths: Mapping[str, Path], tmp_path: Path) -> None:
    import json

    from alignsweep.spec.preflight import check_model
    from alignsweep.errors import InputError

    model = Path(shutil.copytree(tiny_paths["llama"], tmp_path / "m"))
    cfg = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoConfig": "x.Config"}}))
    with pytest.raises(InputError, match="trust_remote_code"):
        check_model(str(model))
    assert "trust_remote_code" not in os.environ


def test_the_pickled_weights_opt_in_reaches_the_evaluator_and_the_judge(tiny_paths: Mapping[str, Path],
                                                                         tmp_path: Path) -> None:
    """`models[].allow_unsafe_weights` reaches the evaluator's load and `judges[].allow_unsafe_weights`
    the judge's: each loads a pickled-only checkpoint with its own opt-in, and refuses it without."""
    import torch
    from safetensors.torch import load_file

    from alignsweep.evaluators.evaluate import Evaluator, local_judges
    from alignsweep.spec.config import validate_spec

    model = Path(shutil.copytree(tiny_paths["llama"], tmp_path / "m"))
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()

    def sweep(opt_in: bool):
        return validate_spec({
            "name": "pickled", "seed": 0, "models": [{"ref": str(model), "allow_unsafe_weights": opt_in}],
            "methods": {"lora": {"r": [2]}}, "training": {"max_steps": 1},
            "evaluation": {"safety": {"limit": 1, "max_new_tokens": 4, "judges": [
                {"name": "llama_guard", "model": str(model), "allow_unsafe_weights": opt_in, "max_new_tokens": 4}]},
                "fairness": {"limit": 1}, "over_refusal": {"limit": 1}},
        })

    spec = sweep(True)
    judge, judge_name, over, over_name = local_judges(spec.evaluation_spec())  # the guard loads the pickled file
    evaluator = Evaluator(spec.evaluation_spec(), str(model), judge=judge, judge_name=judge_name,
                          over_refusal_judge=over, over_refusal_judge_name=over_name,
                          options=spec.models[0].load_options())
    assert evaluator.evaluate(None).metrics  # scored with the pickled base

    refused = sweep(False)
    with pytest.raises(OSError):
        local_judges(refused.evaluation_spec())
    with pytest.raises(OSError):
        Evaluator(refused.evaluation_spec(), str(model), judge=judge, judge_name=judge_name,
                  options=refused.models[0].load_options())
