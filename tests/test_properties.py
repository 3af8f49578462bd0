"""Classes of bad input, generated: whatever a user writes in a spec file, an override or a `--fail-on`
rule, `alignsweep` answers with exit 0 or with exit 2 and one line naming the problem — never a
traceback, never a file written. Inputs that once broke that are pinned below. Past the syntax (every
section through every pre-run check, data rows, task YAMLs, adapters): tests/test_properties_inputs.py.
"""

from __future__ import annotations

import math
import operator
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st

from alignsweep.analysis.gate import Rule, evaluate_rules, gate_metrics, parse_rules
from alignsweep.analysis.significance import TESTED_METRICS
from alignsweep.errors import InputError
from alignsweep.spec.config import SchedulerSpec, SweepSpec, TrainingSpec

VALID = {"name": "t", "models": ["tiny:llama"], "methods": {"lora": {"r": [2]}},
         "training": {"max_steps": 2, "learning_rates": [1e-3]}, "scheduler": {"name": "none"}}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=4), max_leaves=12)
field_names = st.sampled_from(["name", "seed", "models", "methods", "training", "scheduler", "resources", "failure",
                               "evaluation", "results", "lora", "r", "max_steps", "learning_rates", "batch_size",
                               "tracking", "mlflow", "wandb"])


def _is_bad_input(run: Any) -> bool:
    return run.code == 2 and len(run.err_lines) == 1 and run.err.startswith("alignsweep: error: ")


def _dry_run(cli, tmp_path: Path, text: str | bytes, *overrides: str) -> Any:
    spec, results = tmp_path / "sweep.yaml", tmp_path / "results"
    spec.write_bytes(text if isinstance(text, bytes) else text.encode())
    run = cli("run", spec, *overrides, "--dry-run", "--results", results)
    assert not results.exists()  # a dry run, good input or bad, writes nothing
    return run


# ---------------------------------------------------------------- spec files


@given(text=st.text(max_size=200))
@example(text="name: [unclosed\n")
@example(text="- a\n- list\n")
@example(text="name: t\n\t- tab")
def test_any_text_as_a_spec_file_is_one_line_of_bad_input(cli, tmp_path: Path, text: str) -> None:
    run = _dry_run(cli, tmp_path, text)
    assert _is_bad_input(run), (run.code, run.err)


@given(doc=st.dictionaries(field_names, values, max_size=6) | values)
@example(doc={"name": "t", "models": ["tiny:llama"], "methods": {"lora": None}})
@example(doc={"name": "t", "models": [{}], "methods": ["lora"]})
def test_any_yaml_document_is_a_spec_or_one_line_of_bad_input(cli, tmp_path: Path, doc: Any) -> None:
    run = _dry_run(cli, tmp_path, yaml.safe_dump(doc))
    assert run.code == 0 or _is_bad_input(run), (run.code, run.err)


# (field path, values that are wrong for it): each must be refused, naming the field.
WRONG = {
    ("name",): ["a b", "", "x/y", "-lead", 5, [1], {"a": 1}, None],
    ("models",): [[], 5, [""], [{}], [5], ["tiny:llama", "tiny:llama"], [{"ref": "tiny:llama", "dtype": "int8"}]],
    ("methods",): [{}, 5, "lora", {"nope": {}}, {"lora": {"r": "x"}}, {"lora": {"dropout": 1.5}}, {"lora": 5}],
    ("training", "max_steps"): [0, -1, "x", []],
    ("training", "batch_size"): [0, -2, "x", 1.5],
    ("training", "learning_rates"): [[], [0], [-1e-3], ["x"]],
    ("training", "max_seq_length"): [7, 0],
    ("training", "eval_interval"): [0],
    ("training", "seeds"): [[], ["a"]],
    ("scheduler", "name"): ["nope", 3],
    ("scheduler", "mode"): ["sideways"],
    ("scheduler", "reduction_factor"): [1, 0.5],
    ("scheduler", "screen_fraction"): [0, 1.5],
    ("scheduler", "screen_warmup"): [1.0, -0.1],
    ("scheduler", "then"): ["alignment", "nope"],
    ("resources", "cpu"): [-1, float("nan")],
    ("resources", "max_concurrent"): [0],
    ("failure", "max_retries"): [-1],
    ("evaluation",): [5, [1]],
    ("evaluation", "safety", "limit"): [0, float("nan")],
    ("tracking",): [5, {}, [1], "mlflow", {"neptune": {}}],
    ("tracking", "mlflow"): [5, "x", {"uri": "y"}],
    ("tracking", "mlflow", "experiment"): ["", 5, [1]],
    ("tracking", "wandb", "mode"): ["cloud", True],
}
mutations = st.sampled_from([(path, value) for path, bad in WRONG.items() for value in bad])
_FIELDS = {(): set(SweepSpec.model_fields), ("training",): set(TrainingSpec.model_fields),
           ("scheduler",): set(SchedulerSpec.model_fields)}


def _set(doc: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    doc[path[-1]] = value


@given(mutation=mutations, extra=st.none() | st.tuples(st.sampled_from([(), ("training",), ("scheduler",)]),
                                                       st.text(string.ascii_lowercase, min_size=3, max_size=8)))
def test_a_wrong_value_anywhere_is_refused_naming_its_field(cli, tmp_path: Path, mutation: tuple, extra: Any) -> None:
    (path, value) = mutation
    doc = yaml.safe_load(yaml.safe_dump(VALID))
    _set(doc, path, value)
    named = {".".join(path)}
    if extra is not None:  # and perhaps a field nobody knows, as well
        where, key = extra
        assume(key not in _FIELDS[where])
        assume(not where or isinstance(doc.get(where[0]), dict))
        _set(doc, (*where, key), 1)
        named.add(".".join((*where, key)))
    run = _dry_run(cli, tmp_path, yaml.safe_dump(doc))
    assert _is_bad_input(run), (path, value, run.code, run.err)
    assert any(f" {n}" in run.err or f":{n}" in run.err or f" {n}." in run.err for n in named), (named, run.err)


# ---------------------------------------------------------------- overrides


override_keys = st.lists(st.sampled_from(["name", "seed", "models", "methods", "training", "scheduler", "lora", "r",
                                          "max_steps", "learning_rates", "batch_size", "mode", "cpu", ""])
                         | st.text(string.ascii_letters + "_", min_size=1, max_size=6), min_size=1, max_size=4)
override_values = values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()) \
    | st.text(max_size=15)


@given(key=override_keys, value=override_values)
@example(key=["training", "batch_size"], value="x")
@example(key=["name", "x"], value="1")
@example(key=["", "x"], value="1")
@example(key=["models"], value="[unclosed")
def test_any_override_is_applied_or_one_line_of_bad_input(cli, tmp_path: Path, key: list[str], value: str) -> None:
    item = ".".join(key) + "=" + value
    assume(not item.startswith("-"))  # an option to argparse, not an override
    run = _dry_run(cli, tmp_path, yaml.safe_dump(VALID), item)
    assert run.code == 0 or _is_bad_input(run), (item, run.code, run.err)


@given(item=st.text(max_size=20).filter(lambda s: "=" not in s and not s.startswith("-") and s != ""))
def test_an_override_without_equals_is_one_line_of_bad_input(cli, tmp_path: Path, item: str) -> None:
    run = _dry_run(cli, tmp_path, yaml.safe_dump(VALID), item)
    assert _is_bad_input(run), (item, run.err)
    assert "overrides are key=value" in run.err


# ---------------------------------------------------------------- --fail-on rules


@given(text=st.text(max_size=60))
@example(text="safe_rate.overall<<1")
@example(text="safe_rate.overall<1e999")
@example(text=" , ")
@example(text="safe_rate.overall<-0.05 @q .05")
@example(text="accuracy.age<0@q2")
@example(text="task_accuracy.overall<0@q0.5")
def test_any_fail_on_text_parses_or_is_one_input_error(text: str) -> None:
    try:
        rules = parse_rules(text)
    except InputError as exc:
        assert "\n" not in str(exc)  # one line: the user's text is quoted with its newlines escaped
        return
    assert rules and all(isinstance(r, Rule) and r.metric in gate_metrics() for r in rules)


@given(text=st.text(max_size=60))
def test_any_fail_on_without_an_adapter_exits_2_and_writes_nothing(cli, tmp_path: Path, text: str) -> None:
    """Rules are checked before any model loads: a malformed one is bad input, a good one needs --adapter."""
    results = tmp_path / "audit"
    run = cli("audit", "--base", "tiny:llama", "--results", results, f"--fail-on={text}")
    assert _is_bad_input(run), run.err
    assert not results.exists()


thresholds = st.integers(-10_000, 10_000).map(lambda i: i / 1000)
alphas = st.integers(1, 1000).map(lambda i: i / 1000)  # an `@q` level in (0, 1]


@st.composite
def rules(draw) -> Rule:
    """Any rule; metrics with an item-level test may carry `@q<alpha>`."""
    metric = draw(st.sampled_from(gate_metrics()))
    return Rule(metric, draw(st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)),
                draw(st.sampled_from(["<", "<=", ">", ">="])), draw(thresholds),
                draw(st.none() | alphas) if metric in TESTED_METRICS else None)


@given(given_rules=st.lists(rules(), min_size=1, max_size=4), spaces=st.sampled_from(["", " "]))
def test_rules_round_trip_through_their_text(given_rules: list[Rule], spaces: str) -> None:
    def text(r: Rule) -> str:
        suffix = "" if r.q is None else f"{spaces}@{spaces}q{r.q!r}"
        return f"{spaces}{r.metric}.{r.category}{spaces}{r.op}{spaces}{r.threshold!r}{suffix}"

    assert parse_rules(("," + spaces).join(map(text, given_rules))) == given_rules
    assert parse_rules(",".join(map(str, given_rules))) == given_rules  # and through the summary's own spelling


OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
rates = st.floats(0, 1) | st.just(float("nan"))


@given(rule=rules(), base=rates, adapter=rates, q=st.none() | st.floats(0, 1))
def test_a_rule_fails_exactly_when_its_comparison_holds_or_the_change_is_undefined(rule: Rule, base: float,
                                                                                   adapter: float, q: float | None) -> None:
    """… and an `@q` rule only when its q is also at most its level, or undefined (fails closed)."""
    row = {"benchmark": "x", "category": rule.category.upper(), "metric": rule.metric}
    tests = [{**row, "test": "mcnemar_exact", "p": q, "q": q}]
    [check] = evaluate_rules([rule], [{**row, "value": base}], [{**row, "value": adapter}], tests)
    change = adapter - base
    holds = OPS[rule.op](change, rule.threshold)
    evidence = rule.q is None or q is None or q <= rule.q
    assert check.failed == (math.isnan(change) or (holds and evidence))
    assert check.change == change or (math.isnan(check.change) and math.isnan(change))


# ---------------------------------------------------------------- inputs that once broke through


def test_spec_file_that_is_not_utf8_is_bad_input(cli, tmp_path: Path) -> None:
    assert _is_bad_input(_dry_run(cli, tmp_path, b"name: t\n\xff\xfe\n"))


def test_recursive_yaml_alias_is_bad_input(cli, tmp_path: Path) -> None:
    assert _is_bad_input(_dry_run(cli, tmp_path, "name: t\nmodels: &a [*a]\nmethods: [lora]\n"))


def test_methods_list_of_lists_is_bad_input(cli, tmp_path: Path) -> None:
    assert _is_bad_input(_dry_run(cli, tmp_path, "name: t\nmodels: [tiny:llama]\nmethods: [[lora]]\n"))


@pytest.mark.parametrize("field, value", [
    ("training.learning_rates", "[.nan]"), ("training.learning_rates", "[.inf]"), ("methods.lora.alpha", ".nan"),
    ("resources.cpu", ".inf"), ("scheduler.reduction_factor", ".inf"),
])
def test_non_finite_numbers_are_refused(cli, tmp_path: Path, field: str, value: str) -> None:
    run = _dry_run(cli, tmp_path, yaml.safe_dump(VALID), f"{field}={value}")
    assert _is_bad_input(run) and field in run.err, (run.code, run.err)
