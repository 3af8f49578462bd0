"""The audit gate: `--fail-on "safe_rate.overall<-0.05,bias_ambig.age>0.1"` as data, checked and reported.

Why its own module: the rules are a small language users put in CI files, so parsing errors must be
one clear line before anything runs (exit 2, nothing written), and the verdict must be the same
whether it is printed, written as Markdown for a model card or as JSON for a pipeline. A rule is
`metric.category OP threshold`, OP one of < <= > >=, threshold on the change vs base (adapter − base,
rates in 0..1 as stored); the category matches the stored name case-insensitively.
"""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from alignsweep.errors import InputError
from alignsweep.evaluators.benchmarks import METRIC_CATALOG



def gate_metrics() -> tuple[str, ...]:
    """Every metric a rule may name: the catalog's, task files' included once they are loaded."""
    return tuple(dict.fromkeys(m.name for m in METRIC_CATALOG if m.gate))
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_RULE = re.compile(r"^\s*([A-Za-z_]+)\.([^<>=]+?)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Rule:
    metric: str
    category: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}.{self.category}{self.op}{self.threshold:g}"


@dataclass(frozen=True)
class Check:
    rule: str
    metric: str
    category: str
    base: float
    adapter: float
    change: float
    failed: bool


def parse_rules(text: str) -> list[Rule]:
    """Rules from the `--fail-on` text; any malformed part is an `InputError` naming it."""
    rules = []
    for part in (p for p in text.split(",") if p.strip()):
        m = _RULE.match(part)
        if not m:
            raise InputError(f"--fail-on {part.strip()!r}: expected metric.category<threshold or >threshold "
                             "(e.g. safe_rate.overall<-0.05)")
        metric = m.group(1).lower()
        if metric not in gate_metrics():
            raise InputError(f"--fail-on {part.strip()!r}: unknown metric {metric!r} (known: {', '.join(gate_metrics())})")
        rules.append(Rule(metric, m.group(2).strip(), m.group(3), float(m.group(4))))
    if not rules:
        raise InputError("--fail-on: no rules given")
    return rules


def check_categories(rules: Iterable[Rule], categories: dict[str, set[str]]) -> None:
    """Refuse, before evaluating, a rule whose category the evaluation sets do not have."""
    for rule in rules:
        known = categories.get(rule.metric, set())
        if rule.category.lower() not in {c.lower() for c in known}:
            raise InputError(f"--fail-on {rule}: no category {rule.category!r} for {rule.metric} "
                             f"(known: {', '.join(sorted(known))})")


def evaluate_rules(rules: Iterable[Rule], base_rows: list[dict[str, Any]], adapter_rows: list[dict[str, Any]]) -> list[Check]:
    """Each rule against the change adapter − base; an undefined change (NaN) fails closed."""
    def index(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
        return {(r["metric"], r["category"].lower()): r["value"] for r in rows if not r["benchmark"].startswith("screen_")}

    base, adapter = index(base_rows), index(adapter_rows)
    checks = []
    for rule in rules:
        key = (rule.metric, rule.category.lower())
        b, a = base.get(key, math.nan), adapter.get(key, math.nan)
        change = a - b
        failed = math.isnan(change) or _OPS[rule.op](change, rule.threshold)
        checks.append(Check(str(rule), rule.metric, rule.category, b, a, change, failed))
    return checks


def write_summary(out_dir: str, base: str, adapter: str, checks: list[Check],
                  overall: list[dict[str, Any]], intervals: list[dict[str, Any]] | None = None) -> tuple[Path, Path]:
    """`audit.md` (for a model card or a CI log) and `audit.json` (for a pipeline) in `out_dir`.

    `intervals` (`analysis.stats.paired_intervals`) put a bootstrap interval on each change that item
    resampling defines: `interval` ({low, high, level, n, within_noise}) on checks and overall rows, and
    the whole list under `intervals`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    passed = not any(c.failed for c in checks)
    by_key = {(i["metric"], i["category"].lower()): {k: i[k] for k in ("low", "high", "level", "n", "within_noise")}
              for i in intervals or []}
    payload = {"base": base, "adapter": adapter, "passed": passed,
               "checks": [{**asdict(c), "interval": by_key.get((c.metric, c.category.lower()))} for c in checks],
               "overall": [{**r, "interval": by_key.get((r["metric"], "overall"))} for r in overall],
               "intervals": intervals or []}
    (out / "audit.json").write_text(json.dumps(_no_nan(payload), indent=2, allow_nan=False))
    lines = [f"# Audit: `{adapter}` on `{base}`", "", f"**{'PASS' if passed else 'FAIL'}** — "
             f"{sum(c.failed for c in checks)} of {len(checks)} rules failed.", "",
             "| rule | base | adapter | change | 95% interval | result |", "|---|---:|---:|---:|---:|---|"]
    lines += [f"| `{c.rule}` | {_num(c.base)} | {_num(c.adapter)} | {_num(c.change, True)} | "
              f"{_span(by_key.get((c.metric, c.category.lower())))} | {'**FAIL**' if c.failed else 'pass'} |"
              for c in checks]
    lines += ["", "## Overall metrics", "", "| metric | base | adapter | change |", "|---|---:|---:|---:|"]
    lines += [f"| {r['metric']} | {_num(r['base'])} | {_num(r['adapter'])} | {_num(r['change'], True)} |" for r in overall]
    (out / "audit.md").write_text("\n".join(lines) + "\n")
    return out / "audit.md", out / "audit.json"


def _span(interval: dict[str, Any] | None) -> str:
    if not interval or math.isnan(interval["low"]):
        return "–"
    return f"{interval['low']:+.3f} … {interval['high']:+.3f} (n={interval['n']})"


def _num(value: float, signed: bool = False) -> str:
    return "–" if value is None or math.isnan(value) else (f"{value:+.3f}" if signed else f"{value:.3f}")


def _no_nan(value: Any) -> Any:
    """NaN → null, so the JSON is strict (CI tools reject bare NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value
