"""Multiple-choice benchmarks from lm-evaluation-harness task YAMLs, run unchanged (zero-shot).

`load_task(path)` reads a task YAML written for lm-evaluation-harness (0.4.x) and its local JSON Lines
data, renders every document's prompt, choices and target exactly as lm-eval does, and returns an
`LmEvalTask`; `lm_eval_score.score_task` scores it with `inference.loglik.score_choices`. Anything
this module cannot reproduce exactly is a one-line `InputError` naming the file and the key, raised
before any model runs. `bench/lm_eval_parity.py` compares the result with lm-eval itself.

Supported keys (anything else, or a non-default value of a key below, is refused):
- `task` (required): the benchmark name in the `metrics` table. `include`: other YAML files (relative
  to this one) merged underneath, this file's keys winning, as lm-eval does.
- `output_type: multiple_choice` (required).
- `dataset_path: json` with `dataset_kwargs.data_files`: a path, a list of paths (the split is then
  `train`) or a mapping split -> path(s); glob patterns allowed; JSON Lines content. Relative paths
  resolve against the working directory (as lm-eval does), then against the YAML's folder.
  `dataset_kwargs.trust_remote_code` is ignored (lm-eval drops it too). `dataset_name` is ignored.
- `test_split`, else `validation_split`: the documents scored (`doc_id` = 0-based row index).
- `description` (default ""): a field name or Jinja template, prepended to the prompt as is.
- `doc_to_text`: a field name or Jinja template (must give text; an integer means lm-eval's
  "multiple inputs" mode, which is refused).
- `doc_to_choice`: a field name (a list of strings), a Jinja template rendering a Python list
  literal, a YAML list, or a YAML mapping (its values).
- `doc_to_target`: an index, a field name or a Jinja template giving an index (digits) or one of
  the choices' texts. A list (several correct answers) is refused, as is a target outside the choices
  (lm-eval would silently count such a document as wrong).
- `target_delimiter` (default " "): put before every choice.
- `metric_list`: entries `acc` / `acc_norm`, optionally `aggregation: mean`, `higher_is_better: true`;
  default both (lm-eval's multiple-choice default).
- `num_fewshot`: absent, null or 0.
- Accepted and ignored (no effect on zero-shot scores): `task_alias`, `tag`, `task_list`, `metadata`,
  `dataset_name`, `training_split`, `fewshot_split`, `fewshot_delimiter`, `should_decontaminate`.
- Refused unless at lm-eval's default: `process_docs`, `process_results`, `use_prompt`,
  `fewshot_config`, `filter_list`, `doc_to_decontamination_query`, `generation_kwargs`, `gen_prefix`,
  `doc_to_image`, `doc_to_audio`, `custom_dataset`, `repeats` (1), `unsafe_code` (false).
  `group` or `class` mean a group or a Python task: refused. A `!function` tag (Python code beside
  the YAML) is refused wherever it appears; the YAML is read with a safe loader and templates render
  in a sandboxed Jinja environment (lm-eval's: StrictUndefined, trailing newlines kept,
  `regex_replace` filter).

Documents missing a key that other documents have get None for it, as `datasets` fills them.
"""

from __future__ import annotations

import ast
import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alignsweep.data.rows import read_jsonl
from alignsweep.errors import InputError

IGNORED_KEYS = frozenset({"task_alias", "tag", "task_list", "metadata", "dataset_name", "training_split",
                          "fewshot_split", "fewshot_delimiter", "should_decontaminate"})
USED_KEYS = frozenset({"task", "output_type", "dataset_path", "dataset_kwargs", "test_split", "validation_split",
                       "description", "doc_to_text", "doc_to_choice", "doc_to_target", "target_delimiter",
                       "metric_list", "num_fewshot"})
#: Keys lm-eval knows that change what is scored, accepted only at these (lm-eval default) values.
DEFAULT_ONLY = {"process_docs": (None,), "process_results": (None,), "use_prompt": (None,), "fewshot_config": (None,),
                "filter_list": (None,), "doc_to_decontamination_query": (None,), "generation_kwargs": (None,),
                "gen_prefix": (None,), "doc_to_image": (None,), "doc_to_audio": (None,), "custom_dataset": (None,),
                "repeats": (1,), "unsafe_code": (False,)}
METRICS = ("acc", "acc_norm")


@dataclass(frozen=True)
class TaskDoc:
    """One document, rendered: the context, the choices (without the delimiter) and the right index."""

    doc_id: int
    category: str
    context: str
    choices: tuple[str, ...]
    target: int


@dataclass(frozen=True)
class LmEvalTask:
    name: str
    source: str  # the YAML file
    split: str
    data_files: tuple[str, ...]
    target_delimiter: str
    metrics: tuple[str, ...]
    docs: tuple[TaskDoc, ...]


class _Function:
    """A `!function` tag's value, kept so the error can name the key that holds it."""

    def __init__(self, ref: str) -> None:
        self.ref = ref


class _TaskLoader(yaml.SafeLoader):
    pass


_TaskLoader.add_constructor("!function", lambda loader, node: _Function(str(loader.construct_scalar(node))))


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise InputError(f"{seen[0]}: include cycle at {path}")
    try:
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader)  # a SafeLoader subclass
    except (OSError, UnicodeDecodeError) as exc:
        via = f"{seen[-1]}: key 'include': " if seen else ""  # name the file the user wrote, then the one it names
        raise InputError(f"{via}{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid task YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: a task YAML must be a mapping, not {type(cfg).__name__}")
    _refuse_functions(path, cfg)
    if "include" not in cfg:
        return cfg
    includes = cfg.pop("include")
    if not all(isinstance(i, str) and i for i in (includes if isinstance(includes, list) else [includes])):
        raise InputError(f"{path}: key 'include': must be a file name or a list of them, not {includes!r:.40}")
    merged: dict[str, Any] = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        merged.update(_read_yaml(path.parent / str(inc), (*seen, path)))
    merged.update(cfg)
    return merged


def _refuse_functions(path: Path, value: Any, key: str = "") -> None:
    if isinstance(value, _Function):
        raise InputError(f"{path}: key {key!r} is `!function {value.ref}` (Python code in a task YAML is not run "
                         "here; only Jinja templates and literals are supported)")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        _refuse_functions(path, v, f"{key}.{k}" if key else str(k))


def _env() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["regex_replace"] = lambda s, pattern, repl, count=0: re.sub(pattern, repl, s, count=count)
    return env


def load_task(path: str | os.PathLike[str], *, cwd: str | os.PathLike[str] | None = None) -> LmEvalTask:
    """Read an lm-eval task YAML and its data; every document rendered, or a one-line `InputError`.

    `cwd` is where relative data paths resolve first (default: the process's working directory).
    """
    source = Path(path).expanduser().resolve()
    cfg = _read_yaml(source)
    where = str(source)
    _check_keys(where, cfg)
    name = cfg["task"]
    files = _data_files(where, cfg, source.parent, Path(cwd) if cwd is not None else Path.cwd())
    split = cfg.get("test_split") or cfg.get("validation_split")
    rows: list[tuple[str, int, dict[str, Any]]] = [(str(f), n, row) for f in files for n, row in read_jsonl(f)]
    if not rows:
        raise InputError(f"{where}: split {split!r} has no documents ({', '.join(map(str, files))})")
    features: dict[str, None] = {}
    for _, _, row in rows:
        features.update(dict.fromkeys(row))
    delimiter = cfg.get("target_delimiter", " ")
    env, templates = _env(), {}
    docs = []
    for doc_id, (file, line, row) in enumerate(rows):
        doc = {**dict.fromkeys(features), **row}
        render = _Renderer(f"{where}: doc {doc_id} ({file}:{line})", doc, features, env, templates)
        docs.append(render.task_doc(doc_id, cfg, name))
    metrics = tuple(m["metric"] for m in cfg["metric_list"]) if cfg.get("metric_list") else METRICS
    return LmEvalTask(name, where, split, tuple(map(str, files)), delimiter, metrics, tuple(docs))


def _check_keys(where: str, cfg: dict[str, Any]) -> None:
    def refuse(key: str, why: str) -> None:
        raise InputError(f"{where}: key {key!r}: {why}")

    if "group" in cfg:
        refuse("group", "this is an lm-eval group of tasks; give the task YAMLs themselves")
    if "class" in cfg:
        refuse("class", "a Python-defined task cannot be run here")
    for key, value in cfg.items():
        if key in DEFAULT_ONLY:
            if value not in DEFAULT_ONLY[key] or isinstance(value, bool) != isinstance(DEFAULT_ONLY[key][0], bool):
                refuse(key, f"{value!r} is not supported (only lm-eval's default, {DEFAULT_ONLY[key][0]!r})")
        elif key not in USED_KEYS and key not in IGNORED_KEYS:
            refuse(key, "not an lm-eval task key this loader knows")
    if not isinstance(cfg.get("task"), str) or not cfg["task"]:
        refuse("task", "required: the task's name")
    if cfg.get("output_type") != "multiple_choice":
        refuse("output_type", f"{cfg.get('output_type', 'generate_until (the default)')!r}: only multiple_choice")
    if cfg.get("num_fewshot") not in (None, 0) or isinstance(cfg.get("num_fewshot"), bool):
        refuse("num_fewshot", f"{cfg['num_fewshot']!r}: only zero-shot (0)")
    if cfg.get("dataset_path") != "json":
        refuse("dataset_path", f"{cfg.get('dataset_path')!r}: only `json` (local files named in dataset_kwargs)")
    kwargs = cfg.get("dataset_kwargs")
    if not isinstance(kwargs, dict) or "data_files" not in kwargs:
        refuse("dataset_kwargs", "needs data_files (a path, a list of paths, or split: path(s))")
    for extra in set(kwargs) - {"data_files", "trust_remote_code"}:
        refuse(f"dataset_kwargs.{extra}", "not supported (only data_files)")
    for key in ("test_split", "validation_split"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            refuse(key, f"must be a split name, not {cfg[key]!r:.40}")
    if not (cfg.get("test_split") or cfg.get("validation_split")):
        refuse("test_split", "required (or validation_split): the split to score")
    for key, kinds in (("doc_to_text", (str, int)), ("doc_to_choice", (str, list, dict)), ("doc_to_target", (str, int, list))):
        if cfg.get(key) is not None and (isinstance(cfg[key], bool) or not isinstance(cfg[key], kinds)):
            refuse(key, f"must be a field name or a template, not {cfg[key]!r:.40}")
    for key in ("doc_to_text", "doc_to_choice", "doc_to_target"):
        if cfg.get(key) is None:
            refuse(key, "required")
    if not isinstance(cfg.get("target_delimiter", " "), str):
        refuse("target_delimiter", "must be a string")
    if not isinstance(cfg.get("description", ""), str):
        refuse("description", "must be a string (a field name or a template)")
    if cfg.get("metric_list") is not None and not isinstance(cfg["metric_list"], list):
        refuse("metric_list", "must be a list")
    for entry in cfg.get("metric_list") or []:
        if not isinstance(entry, dict) or entry.get("metric") not in METRICS:
            refuse("metric_list", f"{entry!r}: only metrics {', '.join(METRICS)}")
        for k, v in entry.items():
            if k != "metric" and (k, v) not in (("aggregation", "mean"), ("higher_is_better", True)):
                refuse("metric_list", f"{k}: {v!r} for {entry['metric']} (only aggregation: mean, "
                                      "higher_is_better: true)")


def _data_files(where: str, cfg: dict[str, Any], yaml_dir: Path, cwd: Path) -> list[Path]:
    spec = cfg["dataset_kwargs"]["data_files"]
    split = cfg.get("test_split") or cfg.get("validation_split")
    by_split = spec if isinstance(spec, dict) else {"train": spec}
    if split not in by_split:
        key = "test_split" if cfg.get("test_split") else "validation_split"
        raise InputError(f"{where}: key {key!r}: split {split!r} is not in dataset_kwargs.data_files "
                         f"(splits: {', '.join(map(str, by_split))})")
    entries = by_split[split]
    entries = entries if isinstance(entries, list) else [entries]
    if not entries or not all(isinstance(e, str) and e for e in entries):
        raise InputError(f"{where}: key 'dataset_kwargs.data_files': {split} must be a path or a list of paths")
    files: list[Path] = []
    for entry in entries:
        tried = [Path(entry).expanduser()] if Path(entry).expanduser().is_absolute() else [cwd / entry, yaml_dir / entry]
        for candidate in tried:
            found = sorted(glob.glob(str(candidate))) if glob.has_magic(entry) else [str(candidate)]
            found = [f for f in found if Path(f).is_file()]
            if found:
                files.extend(Path(f) for f in found)
                break
        else:
            raise InputError(f"{where}: key 'dataset_kwargs.data_files': {entry!r} not found "
                             f"(tried {', '.join(map(str, tried))})")
    return files


class _Renderer:
    """lm-eval's doc_to_* rules for one document: a field name wins over a template."""

    def __init__(self, where: str, doc: dict[str, Any], features: dict[str, None], env: Any,
                 templates: dict[str, Any]) -> None:
        self.where, self.doc, self.features, self.env, self.templates = where, doc, features, env, templates

    def refuse(self, key: str, why: str) -> InputError:
        return InputError(f"{self.where}: key {key!r}: {why}")

    def render(self, key: str, template: str) -> str:
        from jinja2 import TemplateError

        try:
            if template not in self.templates:
                self.templates[template] = self.env.from_string(template)
            return self.templates[template].render(**self.doc)
        except TemplateError as exc:
            raise self.refuse(key, f"template failed: {type(exc).__name__}: {exc}") from None

    def task_doc(self, doc_id: int, cfg: dict[str, Any], name: str) -> TaskDoc:
        description = cfg.get("description") or ""
        if description:
            description = self.doc[description] if description in self.doc else self.render("description", description)
            if not isinstance(description, str):
                raise self.refuse("description", f"field gives {type(description).__name__}, not text")
        text = self.text(cfg["doc_to_text"])
        if not (description + text).strip():
            raise self.refuse("doc_to_text", "empty context (lm-eval scores those from an end-of-text token)")
        choices = self.choices(cfg["doc_to_choice"])
        category = self.doc.get("category")
        return TaskDoc(doc_id, name if category is None else str(category), description + text, choices,
                       self.target(cfg["doc_to_target"], choices))

    def text(self, spec: Any) -> str:
        value = self.doc[spec] if isinstance(spec, str) and spec in self.features else spec
        if isinstance(spec, str) and spec not in self.features:
            value = self.render("doc_to_text", spec)
            if value.isdigit():
                value = int(value)
        if isinstance(value, int):
            raise self.refuse("doc_to_text", f"gives an index ({value}): lm-eval's multiple-inputs mode is not supported")
        if not isinstance(value, str):
            raise self.refuse("doc_to_text", f"gives {type(value).__name__}, not text")
        return value

    def choices(self, spec: Any) -> tuple[str, ...]:
        if isinstance(spec, str):
            if spec in self.features:
                value = self.doc[spec]
            else:
                rendered = self.render("doc_to_choice", spec)
                try:
                    value = ast.literal_eval(rendered)
                except (SyntaxError, ValueError):
                    raise self.refuse("doc_to_choice", f"renders {rendered[:80]!r}, not a Python list literal") from None
        else:
            value = list(spec.values()) if isinstance(spec, dict) else spec
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(c, str) for c in value):
            raise self.refuse("doc_to_choice", f"gives {str(value)[:80]!r}: needs a non-empty list of strings")
        return tuple(value)

    def target(self, spec: Any, choices: tuple[str, ...]) -> int:
        value = spec
        if isinstance(spec, str):
            if spec in self.features:
                value = self.doc[spec]
            else:
                value = self.render("doc_to_target", spec)
                if value.isdigit():
                    value = int(value)
                elif len(value) >= 2 and value[0] == "[" and value[-1] == "]":
                    try:
                        value = ast.literal_eval(value)
                    except (SyntaxError, ValueError):
                        pass
        if isinstance(value, (list, tuple)):
            raise self.refuse("doc_to_target", f"gives a list {value!r}: several correct answers are not supported")
        if isinstance(value, str):
            if value not in choices:
                raise self.refuse("doc_to_target", f"{value[:80]!r} is not one of the choices {list(choices)!r}")
            return choices.index(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.refuse("doc_to_target", f"gives {value!r}: needs an index or a choice's text")
        if not 0 <= value < len(choices):
            raise self.refuse("doc_to_target", f"index {value} is outside the {len(choices)} choices")
        return value
