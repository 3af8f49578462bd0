"""Checks that run before Ray starts and before anything is written: bad input fails in seconds.

Why: a sweep discovers a bad model path, a pickled checkpoint, a tokenizer with no chat template or a
malformed data row only inside a trial, minutes (on a cluster: a node start-up) later, as a trial
error — and after the results directory was claimed. Here each becomes one `InputError` line
(exit 2) naming the file, with nothing written. Only local files are inspected; hub ids are
checked where they are loaded (offline machines cannot look them up).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from alignsweep.errors import InputError
from alignsweep.spec.weights import check_safetensors, check_weights
from alignsweep.spec.results_path import check_results_dir
from alignsweep.spec.machine import check_machine, check_precision
from alignsweep.spec.model_fit import adapter_fits, check_sweep_fits, wrong_typed_field


# ---------------------------------------------------------------- models


def check_model(ref: str, *, trust_remote_code: bool = False, allow_unsafe_weights: bool = False,
                revision: str | None = None, hub: bool = True) -> None:
    """A local model directory is a causal LM with safe weights and a tokenizer that has a chat template
    (and no `revision`, which only a hub model has); a hub id, offline, is in the cache (`hub=False`: the
    caller checks that later)."""
    from alignsweep.models.refs import resolve_model

    check_revision(ref, revision)
    model = resolve_model(ref)
    if not model.is_local:
        if hub:
            check_hub_cached(ref, revision)
        return
    folder = Path(model.path)
    cfg = _read_json(folder / "config.json", f"model path {ref!r}")
    if cfg.get("auto_map") and not trust_remote_code:
        raise InputError(f"model {ref!r}: its config needs custom code (auto_map); alignsweep runs no remote code "
                         "unless the model sets trust_remote_code: true")
    _require_causal_lm(ref, cfg)
    check_weights(folder, what="model", allow_unsafe_weights=allow_unsafe_weights)
    _require_chat_template(ref, model.path, trust_remote_code)


def check_hub_cached(ref: str, revision: str | None = None) -> None:
    """Offline (`HF_HUB_OFFLINE=1`), a hub id loads only from the local Hugging Face cache: it must be there."""
    from alignsweep.models.refs import hub_offline

    if not hub_offline():
        return  # online, the download is where a missing or private repo is told
    from huggingface_hub import constants, try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(ref, "config.json", revision=revision), str):
        raise InputError(f"model {ref!r}: not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE "
                         "is set; download it first, point HF_HOME at the cache that has it, or unset HF_HUB_OFFLINE")


def check_revision(ref: str, revision: str | None) -> None:
    """Only a hub model has revisions: one given for a local directory or a `tiny:` model is bad input."""
    from alignsweep.models.loading import revision_kwargs
    from alignsweep.models.refs import resolve_model

    if revision is not None:
        revision_kwargs(resolve_model(ref).path, revision, ref=ref)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{what}: unreadable {path.name} ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{what}: {path.name} is not a JSON object")
    return data


@functools.cache
def causal_lm_names() -> dict[str, Any]:
    """transformers' model type → causal-LM class name(s) (`MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`)."""
    return _auto_names("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES")


@functools.cache
def sequence_classification_names() -> dict[str, Any]:
    """transformers' model type → sequence-classification class name(s) (for `hf_classifier` judges)."""
    return _auto_names("MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES")


def _auto_names(table: str) -> dict[str, Any]:
    """One of transformers' auto-class name tables, e.g. `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`.

    Why not just import it: `transformers.models.auto.modeling_auto` imports torch, ~3 s of the
    driver's CPU at start-up while Ray is starting beside it, for a table of names. The table is a
    literal in that module's source, so it is read from there; anything unexpected falls back to the
    import (a test checks both agree on the installed transformers).
    """
    import ast
    import importlib.util

    try:
        spec = importlib.util.find_spec("transformers.models.auto.modeling_auto")
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))  # type: ignore[union-attr, arg-type]
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and getattr(node.targets[0], "id", None) == table
                    and isinstance(node.value, ast.Call) and len(node.value.args) == 1):
                return dict(ast.literal_eval(node.value.args[0]))
    except (OSError, SyntaxError, ValueError, TypeError, AttributeError):
        pass
    from transformers.models.auto import modeling_auto

    return dict(getattr(modeling_auto, table))


def _class_names(table: dict[str, Any]) -> set[str]:
    return {c for v in table.values() for c in ((v,) if isinstance(v, str) else v)}


#: config.json keys preflight and loading read, with the JSON type each must have when present.
_CONFIG_TYPES = {"model_type": str, "architectures": list, "max_position_embeddings": int, "hidden_size": int,
                 "num_hidden_layers": int, "vocab_size": int, "num_labels": int, "id2label": dict}


def check_config_types(what: str, cfg: dict[str, Any]) -> None:
    """A model's config.json holds the keys alignsweep reads in the types transformers writes them."""
    for key, kind in _CONFIG_TYPES.items():
        value = cfg.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind) or (kind is list and not all(isinstance(v, str)
                                                                                                 for v in value)):
            raise InputError(f"{what}: config.json {key} must be a JSON {'list of names' if kind is list else kind.__name__}"
                             f" (got {value!r:.40})")


def _require_causal_lm(ref: str, cfg: dict[str, Any]) -> None:
    check_config_types(f"model {ref!r}", cfg)
    CAUSAL = causal_lm_names()
    model_type = cfg.get("model_type")
    causal_classes = _class_names(CAUSAL)
    archs = cfg.get("architectures") or []
    if model_type not in CAUSAL or (archs and not any(a in causal_classes for a in archs)):
        shown = archs[0] if archs else model_type
        raise InputError(f"model {ref!r}: {shown!r} is not a causal language model (alignsweep fine-tunes causal LMs)")


def _require_chat_template(ref: str, path: str, trust_remote_code: bool) -> None:
    from alignsweep.models.loading import load_tokenizer

    try:
        tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 — any failure to load is the user's file
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"model {ref!r}: cannot load its tokenizer ({first})") from None
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"model {ref!r}: its tokenizer has no chat template (training and evaluation format chats "
                         "with it); use an instruction-tuned model or add chat_template.jinja")


# ---------------------------------------------------------------- adapters


def check_adapter(adapter_dir: str, base_ref: str, *, allow_unsafe_weights: bool = False) -> None:
    """An adapter directory with safe weights, trained on a base of the same architecture as `base_ref`."""
    from alignsweep.models.refs import resolve_model

    folder = Path(adapter_dir)
    if not folder.is_dir():
        raise InputError(f"adapter {adapter_dir!r}: no such directory")
    cfg = _read_json(folder / "adapter_config.json", f"adapter {adapter_dir!r}")
    weights = [p for p in folder.iterdir() if p.name.startswith("adapter_model")]
    if not any(p.suffix == ".safetensors" for p in weights):
        if weights and not allow_unsafe_weights:
            raise InputError(f"adapter {adapter_dir!r}: only pickled weights ({weights[0].name}); "
                             "alignsweep loads safetensors adapters only")
        if not weights:
            raise InputError(f"adapter {adapter_dir!r}: no adapter_model.safetensors there")
    for p in weights:
        if p.suffix == ".safetensors":
            check_safetensors(p)
    _check_adapter_config(adapter_dir, cfg)
    base = resolve_model(base_ref)
    if not base.is_local:
        return  # nothing local to compare with; peft reports shape mismatches at load
    mine = _read_json(Path(base.path) / "config.json", f"model {base_ref!r}")
    trained_on = cfg.get("base_model_name_or_path")
    if not isinstance(trained_on, str) or not trained_on or not (Path(trained_on) / "config.json").is_file():
        adapter_fits(folder, cfg, base.path, base_ref)  # no local base config to compare: the tensors' shapes
        return
    theirs = _read_json(Path(trained_on) / "config.json", f"adapter {adapter_dir!r} base")
    keys = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")
    diff = [k for k in keys if mine.get(k) != theirs.get(k)]
    if diff:
        k = diff[0]
        raise InputError(f"adapter {adapter_dir!r} was trained on a different base ({k} {theirs.get(k)!r}, "
                         f"base {base_ref!r} has {mine.get(k)!r})")
    adapter_fits(folder, cfg, base.path, base_ref)


def _check_adapter_config(adapter_dir: str, cfg: dict[str, Any]) -> None:
    """An adapter_config.json of a method alignsweep scores, whose values peft's own config class accepts."""
    from alignsweep.trainables.methods import METHODS

    what = f"adapter {adapter_dir!r}: adapter_config.json"
    if not any(METHODS.get(name).matches(cfg) for name in METHODS):
        known = sorted({METHODS.get(name).peft_type for name in METHODS})
        raise InputError(f"{what}: peft_type {cfg.get('peft_type')!r} is not one alignsweep scores "
                         f"(known: {', '.join(known)})")
    from peft import PeftConfig

    try:
        config = PeftConfig.from_peft_type(**cfg)
    except Exception as exc:  # noqa: BLE001 — peft's checks raise TypeError/ValueError/…; all mean this file
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{what}: peft cannot read it ({type(exc).__name__}: {first[:160]})") from None
    wrong = wrong_typed_field(type(config), cfg)  # peft's dataclasses take `r: "x"` and fail at load
    if wrong:
        raise InputError(f"{what}: {wrong}")


# ---------------------------------------------------------------- data


def check_training_data(dataset: str, split: str, limit: int | None, revision: str | None = None) -> None:
    """Every training row (up to `limit`) parses into a conversation; errors name file:line."""
    from alignsweep.trainables.data import load_conversations

    load_conversations(dataset, split=split, limit=limit, revision=revision)


def data_keys(prefix: str = "evaluation") -> dict[str, str]:
    """Benchmark → the spec key that names its data (`evaluation.safety.data`), for error messages."""
    from alignsweep.evaluators.benchmarks import registered

    return {b.name: f"{prefix}.{b.name}.data" for b in registered()}


def check_data_source(source: str, key: str) -> None:
    """A local data path exists; the error names the key that sets it."""
    if source == "bundled" or source.startswith("hf:") or Path(source).exists():
        return
    raise InputError(f"{key}: {source}: no such file or directory (download it, see README 'Reproduce the study', "
                     f"or set {key}=PATH)")


def check_evaluation_data(eval_spec: Any, keys: dict[str, str] | None = None) -> None:
    """The evaluation sets (every row parsed) and judge models the evaluators will load.

    `keys` names the setting behind each benchmark's data in errors (default `evaluation.<name>.data`;
    `audit` passes its options).
    """
    from alignsweep.evaluators.benchmarks import registered
    from alignsweep.evaluators.benchmarks.lm_eval_score import TaskBenchmark

    keys = {**data_keys(), **(keys or {})}
    for benchmark in registered():
        if not benchmark.enabled(eval_spec):
            continue
        check_data_source(getattr(eval_spec, benchmark.name).data, keys.get(benchmark.name, benchmark.name))
        benchmark.load(eval_spec)
    judges = list(eval_spec.safety.judges) if eval_spec.safety.enabled else []
    if eval_spec.safety.enabled and eval_spec.safety.labels is not None:  # the judge check at sweep start
        from alignsweep.data.labels import load_labels

        check_data_source(eval_spec.safety.labels, "evaluation.safety.labels")
        load_labels(eval_spec.safety.labels)
    if eval_spec.over_refusal.enabled:
        judges.append(eval_spec.over_refusal.judge)
    for task in eval_spec.tasks:  # loaded as evaluators load them; their metrics join the catalog (gate names)
        TaskBenchmark(task, eval_spec.tasks_cwd)
    for judge in judges:
        check_judge(judge)


def check_judge(judge: Any) -> None:
    """A judge's local model: a causal LM with a chat template (guards), or a classifier (`hf_classifier`)."""
    if not judge.model:
        return
    if judge.name == "hf_classifier":
        check_revision(judge.model, judge.revision)
        check_classifier(judge.model, judge.label_map or {})
    else:
        check_model(judge.model, revision=judge.revision)


def check_classifier(ref: str, label_map: dict[str, str]) -> None:
    """A local `hf_classifier` model: a sequence classifier (no custom code, safetensors, a tokenizer) whose
    labels include every `label_map` key (a label name or a label id)."""
    from alignsweep.models.loading import load_tokenizer
    from alignsweep.models.refs import resolve_model

    model = resolve_model(ref)
    if not model.is_local:
        return
    what = f"judge hf_classifier model {ref!r}"
    folder = Path(model.path)
    cfg = _read_json(folder / "config.json", what)
    check_config_types(what, cfg)
    if cfg.get("auto_map"):
        raise InputError(f"{what}: its config needs custom code (auto_map); alignsweep runs no remote code")
    table = sequence_classification_names()
    archs = cfg.get("architectures") or []
    if (archs and not any(a in _class_names(table) for a in archs)) or (not archs and cfg.get("model_type") not in table):
        shown = archs[0] if archs else cfg.get("model_type")
        raise InputError(f"{what}: {shown!r} is not a sequence-classification model (hf_classifier needs "
                         "…ForSequenceClassification)")
    id2label = cfg.get("id2label") or {str(i): f"LABEL_{i}" for i in range(int(cfg.get("num_labels", 2)))}
    labels = [str(v) for v in id2label.values()]
    unknown = [k for k in label_map if str(k) not in labels and str(k) not in {str(i) for i in id2label}]
    if unknown:
        raise InputError(f"{what}: label_map key {unknown[0]!r} is not one of its labels ({', '.join(labels)})")
    check_weights(folder, what="judge hf_classifier model")
    try:
        load_tokenizer(model.path)
    except Exception as exc:  # noqa: BLE001 — any failure to load is the user's file
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{what}: cannot load its tokenizer ({first})") from None


def check_sweep_inputs(spec: Any, sweep_dir: str, *, local: bool = True) -> None:
    """Everything a sweep reads or writes, before Ray starts; the first problem raises `InputError`.
    `local`: Ray runs on this machine (no --address), so its GPUs are the ones this process sees."""
    from alignsweep.models.refs import resolve_model

    check_results_dir(sweep_dir)
    check_precision(spec)
    for model in spec.models:
        check_model(model.ref, trust_remote_code=model.trust_remote_code,
                    allow_unsafe_weights=model.allow_unsafe_weights, revision=model.revision, hub=False)
        base = resolve_model(model.ref)
        if base.is_local:
            check_sweep_fits(spec, base.path, _read_json(Path(base.path) / "config.json", f"model {model.ref!r}"),
                             model.ref)
    check_training_data(spec.training.dataset, spec.training.dataset_split, spec.training.max_examples,
                        spec.training.dataset_revision)
    eval_spec = spec.evaluation_spec()
    if eval_spec is not None:
        check_evaluation_data(eval_spec)
    check_scheduler_metric(spec, eval_spec)
    if local:  # the machine last: a spec written for a GPU cluster still gets its file errors first
        check_machine(spec, eval_spec)
    for model in spec.models:
        if not resolve_model(model.ref).is_local:
            check_hub_cached(model.ref, model.revision)


#: What every trial reports to Tune besides the evaluators' metrics (`trainables.peft_trial`).
TRIAL_METRICS = ("loss", "heldout_loss", "step", "epoch", "train_wall_s")


def check_scheduler_metric(spec: Any, eval_spec: Any) -> None:
    """A scheduler ranks trials on a metric they report; Tune would otherwise fail the sweep at the first result.
    Run after the evaluation data is loaded: task files add their metrics to the catalog."""
    if spec.scheduler.name == "none":
        return
    from alignsweep.evaluators.benchmarks import METRIC_CATALOG

    known = set(TRIAL_METRICS) | ({m.name for m in METRIC_CATALOG} if eval_spec is not None else set())
    if spec.scheduler.metric.split("/", 1)[0] not in known:
        raise InputError(f"scheduler.metric: {spec.scheduler.metric!r} is not a metric trials report (known: "
                         f"{', '.join(sorted(known))}{'' if eval_spec is not None else '; evaluation is off'})")
