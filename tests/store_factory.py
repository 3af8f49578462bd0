"""A factory for realistic sweep results stores, written through the real `write_records`.

Why synthetic stores: the query and report tests need several families, methods, categories and
edge cases (failed, early-stopped and still-running trials) without training anything. The effect
sizes loosely follow what the tiny models showed (stack-notes): IA3 keeps refusal, LoRA erases much
of it, prompt methods move it noisily.

Like a real sweep, every trial ends with a full evaluation of its last checkpoint at its last step,
stopped or not, and its `trials` row says how it ended (`ended`: finished | stopped_loss |
stopped_alignment | failed) and where (`stop_step`). With `screen=True` the steps before that carry
only what the alignment scheduler's interval checks store: the screen (benchmarks `screen_*`) and the
held-out loss; without it every step is a full evaluation. Task accuracy is 1.0 everywhere, as on the
tiny demo models (a flat utility axis); the held-out loss varies per trial and falls with the step.
Everything written is also returned in `Sweep`, so tests compute their expectations by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alignsweep.store import write_manifest, mark_finished, write_records

HAZARDS = [f"S{i}" for i in range(1, 12)]
BBQ = [
    "Age", "Disability_status", "Gender_identity", "Nationality", "Physical_appearance",
    "Race_ethnicity", "Religion", "SES", "Sexual_orientation",
]
FAMILIES = {"tiny:llama": "llama", "tiny:qwen2": "qwen2", "tiny:gemma": "gemma"}
FAMILIES_4 = {**FAMILIES, "tiny:mistral": "mistral"}  # the demo's four
METHODS = ("lora", "ia3", "prompt_tuning", "p_tuning")
# mean change in safe rate per method, and how much it varies between configurations
_SAFETY_EFFECT = {"lora": (-0.45, 0.15), "ia3": (-0.03, 0.02), "prompt_tuning": (-0.2, 0.15), "p_tuning": (-0.5, 0.2)}
_FAMILY_SCALE = {"llama": 1.0, "qwen2": 0.6, "gemma": 1.4, "mistral": 0.8}
STOP_REASONS = {"stopped_loss": "asha: loss behind its rung",
                "stopped_alignment": "alignment: screen safe rate fell more than 0.2 below base"}
SCREENED = (("safety", "safe_rate"), ("over_refusal", "over_refusal_rate"), ("fairness", "accuracy"),
            ("fairness", "bias_ambig"))
FAIRNESS_METRICS = ("accuracy", "accuracy_ambig", "accuracy_disambig", "bias_ambig", "bias_disambig")


@dataclass
class Sweep:
    """What the factory wrote, for tests to compare against."""

    path: str
    trial_ids: list[str] = field(default_factory=list)
    base_ids: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    base_model: dict[str, str] = field(default_factory=dict)  # trial id → base model (fine-tuned trials, failed too)
    family: dict[str, str] = field(default_factory=dict)
    method: dict[str, str] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)  # trial id → finished | stopped_loss | stopped_alignment | failed
    stop_step: dict[str, int] = field(default_factory=dict)  # the step it ended at (its last step)
    full_step: dict[str, int] = field(default_factory=dict)  # its last full evaluation after step 0 (= stop_step unless legacy)
    base: dict[str, dict] = field(default_factory=dict)  # base model → {(benchmark, category, metric): value}
    full: dict[tuple[str, int], dict] = field(default_factory=dict)  # (trial, step) → full-evaluation values
    screen: dict[tuple[str, int], dict] = field(default_factory=dict)  # (trial, step) → screen values, benchmark `screen_*`
    heldout: dict[tuple[str, int], float] = field(default_factory=dict)  # (trial, step) → held-out loss

    def change(self, trial_id: str, step: int, benchmark: str, metric: str, category: str = "overall") -> float:
        """Full-evaluation value minus its base's, in points (×100)."""
        base = self.base[self.base_model[trial_id]]
        return 100 * (self.full[(trial_id, step)][(benchmark, category, metric)] - base[(benchmark, category, metric)])


def _hyperparameters(method: str, k: int, rng: np.random.Generator, max_steps: int = 20) -> dict:
    lr = [1e-4, 1e-3, 3e-3, 1e-2][k % 4]
    common = {"learning_rate": lr, "max_steps": max_steps, "seed": int(k), "batch_size": 8}
    if method == "lora":
        return {**common, "r": [4, 8, 16][k % 3], "alpha": 16.0, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
    if method == "ia3":
        return {**common, "target_modules": ["k_proj", "v_proj", "down_proj"]}
    if method == "prompt_tuning":
        return {**common, "num_virtual_tokens": [8, 16][k % 2], "prompt_init": ["random", "text"][k % 2]}
    return {**common, "num_virtual_tokens": 8, "encoder_hidden_size": [32, 64][k % 2]}


def _metrics(base_model: str, method: str, values: dict[tuple[str, str, str], float], n: int) -> list[dict]:
    return [
        {"base_model": base_model, "method": method, "benchmark": b, "category": c, "metric": m, "value": v, "n": n}
        for (b, c, m), v in values.items()
    ]


def _base_values(rng: np.random.Generator) -> dict[tuple[str, str, str], float]:
    values = {("safety", c, "safe_rate"): float(np.clip(rng.normal(0.93, 0.04), 0, 1)) for c in HAZARDS}
    values[("safety", "overall", "safe_rate")] = float(np.mean([values[("safety", c, "safe_rate")] for c in HAZARDS]))
    for c in [*BBQ, "overall"]:
        amb, dis = float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.45, 0.6))
        values[("fairness", c, "accuracy_ambig")] = amb
        values[("fairness", c, "accuracy_disambig")] = dis
        values[("fairness", c, "accuracy")] = (amb + dis) / 2
        values[("fairness", c, "bias_ambig")] = float(rng.uniform(0.0, 0.15))
        values[("fairness", c, "bias_disambig")] = float(rng.uniform(-0.05, 0.1))
    values[("over_refusal", "overall", "over_refusal_rate")] = float(rng.uniform(0.05, 0.3))
    return values


def _tuned_values(base: dict, method: str, family: str, progress: float, rng: np.random.Generator) -> dict:
    mean, spread = _SAFETY_EFFECT[method]
    shift = (mean + rng.normal(0, spread)) * _FAMILY_SCALE[family] * progress
    out = {}
    for (b, c, m), v in base.items():
        if b == "safety":
            delta = shift + rng.normal(0, 0.03)
        elif m.startswith("accuracy"):
            delta = -0.3 * shift * rng.uniform(-0.5, 1.0) + rng.normal(0, 0.02)
        elif m.startswith("bias"):
            delta = -0.25 * shift + rng.normal(0, 0.03)
        else:  # over-refusal falls as refusal is erased
            delta = 0.5 * shift + rng.normal(0, 0.02)
        out[(b, c, m)] = float(np.clip(v + delta, -1 if m.startswith("bias") else 0, 1))
    overall = [out[("safety", c, "safe_rate")] for c in HAZARDS]
    out[("safety", "overall", "safe_rate")] = float(np.mean(overall))
    return out


def _items(path: str, trial_id: str, step: int, rng: np.random.Generator) -> None:
    safety = [
        {"benchmark": "safety", "prompt_id": f"{c}-{i}", "category": c, "prompt_label": "unsafe",
         "prompt": f"hazardous request {c}/{i}",
         "response": "I can't help with that." if rng.random() < 0.8 else "Sure.",
         "verdict": "safe" if rng.random() < 0.8 else "unsafe", "hazard_codes": [] if rng.random() < 0.8 else [c],
         "judge": "refusal"}
        for c in HAZARDS for i in range(2)
    ]
    fairness = [
        {"example_id": f"{c}-{i}", "category": c, "context_condition": ["ambig", "disambig"][i % 2],
         "question_polarity": ["neg", "nonneg"][i // 2 % 2], "label": 2, "target_index": 0,
         "prediction": int(rng.integers(0, 3)), "loglikelihoods": [float(x) for x in rng.normal(-8, 2, 3)],
         "truncated": False}
        for c in BBQ for i in range(2)
    ]
    write_records(path, "safety_items", safety, trial_id=trial_id, step=step)
    write_records(path, "fairness_items", fairness, trial_id=trial_id, step=step)


def _screen(values: dict, rng: np.random.Generator) -> dict:
    """The screen: the watched overall metrics on a quarter of the items, so a little noisier."""
    return {("screen_" + b, "overall", m): float(np.clip(values[(b, "overall", m)] + rng.normal(0, 0.02), -1, 1))
            for b, m in SCREENED}



def build_sweep(
    path: str,
    *,
    families: dict[str, str] | None = None,
    methods: tuple[str, ...] = METHODS,
    configs: int = 3,
    steps: tuple[int, ...] = (10, 20),
    seed: int = 0,
    failed: int = 0,
    running: bool = False,
    items: bool = False,
    stop_at: int | None = None,
    screen: bool = False,
    legacy: bool = False,
) -> Sweep:
    """Write a sweep: one base trial per family (step 0), `configs` trials per family × method.

    Every fourth trial stops early at `stop_at` (default: the first step), alternately by loss and
    by alignment, with a full evaluation there; `failed` trials end in ERROR with no metrics;
    `running` leaves the manifest unfinished, the last trial RUNNING with its first step only, and one
    more trial with metrics but no `trials` row yet. `screen`: steps before a trial's last carry only
    the screen and the held-out loss. `legacy`: a store written before `ended`/`stop_step` existed.
    """
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng(seed + 1000)  # screens and losses: the main stream stays as it was
    families = families or FAMILIES
    stop_at = steps[0] if stop_at is None else stop_at
    sweep = Sweep(path)
    write_manifest(path, seed=seed)
    bases: dict[str, dict] = {}
    for base_model, family in families.items():
        trial_id = f"base_{family}"
        bases[base_model] = _base_values(rng)
        sweep.base[base_model] = {**bases[base_model], ("utility", "overall", "task_accuracy"): 1.0}
        if screen:
            sweep.base[base_model].update(_screen(bases[base_model], extra))
        ending = {} if legacy else {"ended": "finished", "stop_step": 0}
        write_records(path, "trials", [{"base_model": base_model, "family": family, "method": "base",
                                        "status": "TERMINATED", "stopped_early": False, "steps": 0, **ending}],
                      trial_id=trial_id)
        write_records(path, "metrics", _metrics(base_model, "base", sweep.base[base_model], 40), trial_id=trial_id, step=0)
        sweep.base_ids[base_model] = trial_id
        if items:
            _items(path, trial_id, 0, rng)
    plan = [(bm, fam, m, k) for bm, fam in families.items() for m in methods for k in range(configs)]
    n_stopped = 0
    for index, (base_model, family, method, k) in enumerate(plan):
        trial_id = f"{family}_{method}_{k:02d}"
        sweep.base_model[trial_id], sweep.family[trial_id], sweep.method[trial_id] = base_model, family, method
        is_last = index == len(plan) - 1
        if index < failed:
            ending = {} if legacy else {"ended": "failed"}
            write_records(path, "trials", [{"base_model": base_model, "family": family, "method": method,
                                            "status": "ERROR", "error": "RuntimeError: CUDA out of memory", "steps": 0,
                                            "hyperparameters": _hyperparameters(method, k, rng, steps[-1]), **ending}],
                          trial_id=trial_id)
            sweep.failed.append(trial_id)
            sweep.ended[trial_id] = "failed"
            continue
        stopped = index % 4 == 3 and len(steps) > 1 and not (running and is_last)
        if running and is_last:
            done, ended = steps[:1], None
        elif stopped:
            done = tuple(s for s in steps if s <= stop_at)
            ended = ("stopped_loss", "stopped_alignment")[n_stopped % 2]
            n_stopped += 1
        else:
            done, ended = steps, "finished"
        for step in done:
            values = _tuned_values(bases[base_model], method, family, step / steps[-1], rng)
            rows: dict = {}
            if (step == done[-1] and not (legacy and stopped)) or not screen:  # legacy: a stopped trial kept its screens only
                rows.update(values)
                rows[("utility", "overall", "task_accuracy")] = 1.0
                sweep.full[(trial_id, step)] = dict(rows)
            if screen:
                screened = _screen(values, extra)
                rows.update(screened)
                sweep.screen[(trial_id, step)] = screened
            loss = round(float(2.4 - 0.8 * step / steps[-1] * (1 + 0.2 * (index % 5)) + extra.normal(0, 0.05)), 4)
            rows[("utility", "overall", "heldout_loss")] = loss
            sweep.heldout[(trial_id, step)] = loss
            write_records(path, "metrics", _metrics(base_model, method, rows, 40), trial_id=trial_id, step=step)
            if items:
                _items(path, trial_id, step, rng)
        status = "RUNNING" if running and is_last else "TERMINATED"
        ending = {} if legacy or ended is None else {"ended": ended, "stop_step": done[-1]}
        reason = {"stop_reason": STOP_REASONS[ended]} if stopped else {}
        write_records(path, "trials", [{"base_model": base_model, "family": family, "method": method,
                                        "status": status, "stopped_early": stopped, "steps": done[-1],
                                        "train_loss": float(rng.uniform(0.5, 2.0)), "wall_s": float(rng.uniform(5, 15)),
                                        "checkpoint": f"{path}/tune/{trial_id}/checkpoint_{done[-1]:06d}",
                                        "hyperparameters": _hyperparameters(method, k, rng, steps[-1]), **ending, **reason}],
                      trial_id=trial_id)
        sweep.trial_ids.append(trial_id)
        if ended is not None:
            sweep.ended[trial_id] = ended
            sweep.stop_step[trial_id] = done[-1]
        full_steps = [s for s in done if (trial_id, s) in sweep.full]
        if full_steps:
            sweep.full_step[trial_id] = full_steps[-1]
    if running:
        base_model, family = next(iter(families.items()))
        values = _tuned_values(bases[base_model], "lora", family, 0.5, rng)
        write_records(path, "metrics", _metrics(base_model, "lora", values, 40), trial_id=f"{family}_lora_new", step=steps[0])
    else:
        mark_finished(path)
    return sweep


def build_audit_pair(path: str, *, items: int, drop: float, seed: int = 0) -> tuple[str, str]:
    """An audit-shaped store: base `audit:base` and adapter `audit:adapter` (both step 0, as `audit` writes
    them) on `items` hazard prompts, 9 in 10 answered safely by the base; the adapter turns `drop` of all
    prompts from safe to unsafe and changes nothing else (BBQ items answered alike). Metrics come from the
    benchmarks' own `summarise`, so metrics and items agree. Returns (base trial id, adapter trial id)."""
    from alignsweep.evaluators.benchmarks.bbq import fairness_metrics
    from alignsweep.evaluators.benchmarks.safety import safe_rate_metrics

    rng = np.random.default_rng(seed)
    write_manifest(path, seed=seed)
    order = rng.permutation(items)
    base_safe = set(order[: round(0.9 * items)].tolist())
    lost = set(order[: round(drop * items)].tolist())  # safe under the base, unsafe under the adapter
    fairness = [{"example_id": f"{c}-{i}", "category": c, "context_condition": ["ambig", "disambig"][i % 2],
                 "question_polarity": ["neg", "nonneg"][i // 2 % 2], "label": 2, "target_index": 0, "unknown_index": 2,
                 "prediction": int(rng.integers(0, 3)), "loglikelihoods": [-1.0, -2.0, -3.0], "truncated": False}
                for c in BBQ[:3] for i in range(8)]
    ids = ("audit:base", "audit:adapter")
    for trial_id, method in zip(ids, ("base", "lora")):
        safety = [{"benchmark": "safety", "prompt_id": f"p{i}", "category": HAZARDS[i % len(HAZARDS)],
                   "prompt_label": "unsafe", "prompt": f"hazardous request {i}", "response": "…",
                   "verdict": "safe" if i in base_safe and not (method != "base" and i in lost) else "unsafe",
                   "hazard_codes": [], "judge": "refusal"} for i in range(items)]
        write_records(path, "safety_items", safety, trial_id=trial_id, step=0)
        write_records(path, "fairness_items", fairness, trial_id=trial_id, step=0)
        rows = [{**r, "base_model": "tiny:llama", "method": method}
                for r in safe_rate_metrics(safety) + fairness_metrics(fairness)]
        write_records(path, "metrics", rows, trial_id=trial_id, step=0)
    mark_finished(path)
    return ids
