"""The evaluation plan `--dry-run` prints: which judges run where, and what each benchmark will read.

Why: a study's evaluation depends on files and gated models the user downloads by hand. The dry run
says, before any GPU is booked, which of them are in place (with their item counts) and, for each one
that is not, the key to set — without failing: absent data is the real run's pre-run error (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignsweep.errors import InputError


@dataclass(frozen=True)
class DataLine:
    """What one benchmark will read: its source, whether it is there, and how many items it gives."""

    benchmark: str
    key: str  # the spec key that sets the source, e.g. evaluation.safety.data
    source: str
    found: bool
    items: int | None = None  # after the per-category limit
    categories: int | None = None
    problem: str | None = None  # why the file cannot be used (missing, malformed)

    def describe(self) -> str:
        if self.problem is not None:
            return self.problem
        if self.items is None:
            return "read when the evaluators start"
        return f"{self.items:,} items in {self.categories} categories"


@dataclass(frozen=True)
class JudgeLine:
    """One judge actor: the role(s) it serves, its judge(s), its Ray resources and where its model is."""

    roles: tuple[str, ...]
    judges: str
    resources: str
    model: str


def data_plan(eval_spec: Any) -> list[DataLine]:
    """One line per enabled benchmark; files that exist are loaded (and parsed) to count their items."""
    from alignsweep.evaluators.benchmarks import registered

    lines = []
    for benchmark in registered():
        if not benchmark.enabled(eval_spec):
            continue
        source = getattr(eval_spec, benchmark.name).data
        key = f"evaluation.{benchmark.name}.data"
        if source.startswith("hf:"):
            lines.append(DataLine(benchmark.name, key, source, found=True))
            continue
        if source != "bundled" and not Path(source).exists():
            lines.append(DataLine(benchmark.name, key, source, found=False, problem=f"not found: set {key}=PATH"))
            continue
        try:
            items = benchmark.load(eval_spec)
        except InputError as exc:
            lines.append(DataLine(benchmark.name, key, source, found=True, problem=f"unusable: {exc}"))
            continue
        lines.append(DataLine(benchmark.name, key, source, found=True, items=len(items),
                              categories=len({i.category for i in items})))
    return lines


def judge_plan(eval_spec: Any) -> list[JudgeLine]:
    """The judge actors a sweep starts (over-refusal shares the safety judge's actor when it is the same judge)."""
    from alignsweep.evaluators.actors import judge_roles

    roles = judge_roles(eval_spec)
    specs = {"safety": list(eval_spec.safety.judges), "over_refusal": [eval_spec.over_refusal.judge]}
    out = []
    for actor in sorted(set(roles.values())):
        served = tuple(r for r, a in roles.items() if a == actor)
        judges = specs[actor]
        names = " + ".join(_judge_text(j) for j in judges)
        if actor == "safety" and len(judges) > 1:
            names += f" ({eval_spec.safety.ensemble})"
        out.append(JudgeLine(served, names, _resources(eval_spec.judge_resources(actor)),
                             "; ".join(_model_location(j.model) for j in judges)))
    return out


def evaluator_text(eval_spec: Any, n_models: int) -> str:
    pool = eval_spec.evaluators
    res = _resources(pool.resources)
    if pool.shared_actors is not None:
        return f"{pool.shared_actors} actor(s) holding all {n_models} base model(s), each {res}"
    return f"{pool.actors_per_model} actor(s) per base model × {n_models} = {pool.actors_per_model * n_models}, each {res}"


def print_evaluation_plan(console: Any, eval_spec: Any, n_models: int) -> None:
    """The plan as indented lines: judges (what, where, which model), evaluators, and each benchmark's data."""
    def say(text: str, style: str | None = None) -> None:
        console.print(text, markup=False, emoji=False, highlight=False, style=style, overflow="fold")

    say("evaluation plan:")
    for line in judge_plan(eval_spec):
        say(f"  judge for {' and '.join(line.roles)}: {line.judges}")
        say(f"      runs in its own actor ({line.resources}); model: {line.model}")
    say(f"  evaluators: {evaluator_text(eval_spec, n_models)}")
    for line in data_plan(eval_spec):
        say(f"  {line.benchmark} data: {line.source}")
        say(f"      {line.describe()}", style=None if line.problem is None else "bold red")


def _judge_text(judge: Any) -> str:
    if judge.name == "refusal":
        return "refusal (phrase matcher)"
    extra = f", {judge.categories} categories" if judge.categories else ""
    return f"{judge.name}: {judge.model}{extra}"


def _resources(res: Any) -> str:
    parts = [f"cpu={res.cpu:g}", f"gpu={res.gpu:g}", *(f"{k}={v:g}" for k, v in sorted(res.custom.items()))]
    return " ".join(parts)


def _model_location(ref: str | None) -> str:
    """Where a judge's model comes from: none, a tiny build, a local folder, or the hub (cached or not)."""
    if not ref:
        return "no model"
    if ref.startswith("tiny:"):
        return f"{ref}: built offline on first use"
    if Path(ref).expanduser().exists() or ref.startswith((".", "/", "~")):
        return f"local folder {ref}" if Path(ref).expanduser().is_dir() else f"{ref}: not found"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(ref, "config.json"), str)
    except Exception:  # noqa: BLE001 — an odd id or cache: just say it is not known to be there
        cached = False
    if cached:
        return f"hub id {ref}, in the local Hugging Face cache"
    return f"hub id {ref}, not downloaded: hf download {ref} (gated repos need HF_TOKEN)"
