"""Every option of every subcommand, in process (`alignsweep.cli.main.main`): each one reaches what it
controls, exit codes keep their contract (0 ok, 1 failure, 2 bad input in one line, 130 interrupted),
and nothing here starts Ray — `run_sweep` is replaced where a command would start a sweep.

`test_every_option_is_covered` lists the parser's options and fails when one has no test named here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from alignsweep.store import mark_finished, write_manifest, write_records

REPO = Path(__file__).resolve().parents[1]

# (subcommand, option dest) → the test that exercises it (in this module unless `file::test`); "-" is the
# top-level parser.
COVERED = {
    ("-", "version"): "test_version_and_bad_commands",
    ("-", "command"): "test_version_and_bad_commands",
    ("run", "spec"): "test_run_dry_run_takes_overrides_and_results",
    ("run", "overrides"): "test_run_dry_run_takes_overrides_and_results",
    ("run", "results"): "test_run_hands_results_address_and_cpus_to_the_sweep",
    ("run", "address"): "test_run_hands_results_address_and_cpus_to_the_sweep",
    ("run", "num_cpus"): "test_run_hands_results_address_and_cpus_to_the_sweep",
    ("run", "dry_run"): "test_run_dry_run_takes_overrides_and_results",
    ("run", "progress"): "test_run_and_resume_hand_progress_and_log_level_to_the_sweep",
    ("run", "log_level"): "test_run_and_resume_hand_progress_and_log_level_to_the_sweep",
    ("resume", "progress"): "test_run_and_resume_hand_progress_and_log_level_to_the_sweep",
    ("resume", "log_level"): "test_run_and_resume_hand_progress_and_log_level_to_the_sweep",
    ("resume", "sweep_dir"): "test_resume_reads_the_spec_back_and_hands_on_address_and_cpus",
    ("resume", "address"): "test_resume_reads_the_spec_back_and_hands_on_address_and_cpus",
    ("resume", "num_cpus"): "test_resume_reads_the_spec_back_and_hands_on_address_and_cpus",
    ("models", "action"): "test_models_build_reuses_the_cache_and_refuses_unknown_families",
    ("models", "families"): "test_models_build_reuses_the_cache_and_refuses_unknown_families",
    ("query", "args"): "test_query_format_follows_the_output_suffix_unless_given",
    ("query", "format"): "test_query_format_follows_the_output_suffix_unless_given",
    ("query", "output"): "test_query_format_follows_the_output_suffix_unless_given",
    ("report", "results_dir"): "test_report.py::test_cli_report_default_out_and_seed",
    ("report", "out"): "test_report.py::test_cli_report_default_out_and_seed",
    ("report", "seed"): "test_report.py::test_cli_report_default_out_and_seed",
    ("report", "format"): "test_report_markdown.py::test_markdown_summary_matches_the_store",
    ("report", "no_tracking"): "test_tracking.py::test_sweep_tracks_one_run_per_trial_in_mlflow_and_wandb",
    ("audit", "base"): "test_audit_reads_each_data_option_and_writes_summaries_where_asked",
    ("audit", "adapter"): "test_audit_reads_each_data_option_and_writes_summaries_where_asked",
    ("audit", "safety_data"): "test_audit_reads_each_data_option_and_writes_summaries_where_asked",
    ("audit", "fairness_data"): "test_audit_reads_each_data_option_and_writes_summaries_where_asked",
    ("audit", "over_refusal_data"): "test_audit_reads_each_data_option_and_writes_summaries_where_asked",
    ("audit", "limit"): "test_audit_gate.py::test_gate_passes_fails_and_writes_summaries",
    ("audit", "results"): "test_audit_reads_each_data_option_and_writes_summaries_where_asked",
    ("audit", "fail_on"): "test_audit_reads_each_data_option_and_writes_summaries_where_asked",
    ("audit", "summary_dir"): "test_audit_reads_each_data_option_and_writes_summaries_where_asked",
    ("audit", "tracking"): "test_tracking.py::test_audit_logs_its_summary_to_mlflow_and_wandb",
    ("audit", "progress"): "test_progress.py::test_audit_plain_progress_counts_items_per_benchmark",
    ("audit", "judge"): "test_audit_judge_and_judge_model",
    ("audit", "judge_model"): "test_audit_judge_and_judge_model",
    ("audit", "judge_arg"): "test_hf_classifier.py::test_audit_with_a_local_classifier_judge_end_to_end",
    ("audit", "tasks"): "test_lm_eval_task.py::test_audit_scores_a_task_file_into_the_store",
    ("audit", "dtype"): "test_audit_dtype_and_device",
    ("audit", "device"): "test_audit_dtype_and_device",
    ("audit", "revision"): "test_cli_conventions.py::test_audit_revisions_apply_to_hub_ids_only",
    ("audit", "adapter_revision"): "test_cli_conventions.py::test_audit_revisions_apply_to_hub_ids_only",
    ("pareto", "results_dir"): "test_pareto_formats",
    ("pareto", "all"): "test_pareto_formats",
    ("pareto", "format"): "test_pareto_formats",
    ("judge-check", "judge"): "test_judge_check.py::test_cli_judge_check_prints_agreement_and_stores_it",
    ("judge-check", "judge_model"): "test_judge_check.py::test_cli_judge_check_prints_agreement_and_stores_it",
    ("judge-check", "judge_arg"): "test_judge_check.py::test_cli_judge_check_prints_agreement_and_stores_it",
    ("judge-check", "labels"): "test_judge_check.py::test_cli_judge_check_prints_agreement_and_stores_it",
    ("judge-check", "columns"): "test_judge_check.py::test_cli_judge_check_prints_agreement_and_stores_it",
    ("judge-check", "results"): "test_judge_check.py::test_cli_judge_check_prints_agreement_and_stores_it",
}


def _parser_options() -> set[tuple[str, str]]:
    import argparse

    from alignsweep.cli.main import build_parser

    parser = build_parser()
    found = {("-", a.dest) for a in parser._actions if not isinstance(a, argparse._HelpAction)}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        found |= {(name, a.dest) for a in p._actions if not isinstance(a, argparse._HelpAction)}
    return found


def test_every_option_is_covered() -> None:
    assert _parser_options() == set(COVERED)
    for where in set(COVERED.values()):
        file, _, test = where.rpartition("::")
        source = (Path(__file__).parent / (file or Path(__file__).name)).read_text()
        assert f"def {test}(" in source, where


def _one_line_error(run: Any, pattern: str) -> None:
    assert run.code == 2, (run.code, run.out, run.err)
    assert len(run.err_lines) == 1 and run.err.startswith("alignsweep: error: "), run.err
    assert re.search(pattern, run.err), run.err


def _pyproject_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_version_and_bad_commands(cli) -> None:
    run = cli("--version")
    assert run.code == 0 and run.out.strip() == f"alignsweep {_pyproject_version()}"
    _one_line_error(cli(), r"the following arguments are required: command")
    _one_line_error(cli("frobnicate"), r"invalid choice: 'frobnicate'")
    _one_line_error(cli("query", "--nope", "x"), r"unrecognized arguments: --nope")


# ---------------------------------------------------------------- the CLI's environment


def test_cli_sets_its_quiet_defaults(cli) -> None:
    os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
    cli("--version")
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"  # set by the CLI for the run …


CLI_DEFAULTS = ("RAY_USAGE_STATS_ENABLED", "TRANSFORMERS_VERBOSITY",
                "TOKENIZERS_PARALLELISM", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S",
                "RAY_AIR_NEW_OUTPUT")


def test_no_cli_default_leaks_into_the_next_test() -> None:
    from conftest import SESSION_ENVIRONMENT

    # … and gone again: the test above ran first (file order) and left the session's values.
    assert {k: os.environ.get(k) for k in CLI_DEFAULTS} == {k: SESSION_ENVIRONMENT.get(k) for k in CLI_DEFAULTS}


# ---------------------------------------------------------------- run and resume


SPEC = """\
name: t
models: [tiny:llama]
methods: {lora: {r: [2, 4]}}
training: {max_steps: 2, learning_rates: [1.0e-3]}
scheduler: {name: none}
"""


@pytest.fixture()
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SPEC)
    return path


def test_run_dry_run_takes_overrides_and_results(cli, spec_path: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = cli("run", spec_path, "--dry-run")
    assert run.code == 0, run.err
    out = " ".join(run.out.split())  # rich wraps long lines at the terminal's width
    assert "sweep 't': 2 trials" in out  # r ∈ {2, 4} × one rate
    assert f"results would go to: {tmp_path / 'results' / 't'}" in out  # the spec's default, from the cwd
    run = cli("run", spec_path, "methods.lora.r=[2,4,8]", "training.learning_rates=[0.1,0.2]",
              "--results", tmp_path / "elsewhere", "--dry-run")
    assert run.code == 0, run.err
    out = " ".join(run.out.split())
    assert "sweep 't': 6 trials" in out  # 3 ranks × 2 rates
    assert f"results would go to: {tmp_path / 'elsewhere' / 't'}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml"]  # a dry run writes nothing
    _one_line_error(cli("run", spec_path, "training.batch_size", "--dry-run"),
                    r"unexpected argument 'training.batch_size': overrides are key=value")
    _one_line_error(cli("run", spec_path, "training.batch_size=x", "--dry-run"),
                    r"override 'training.batch_size=x': training.batch_size: .*'x'")
    _one_line_error(cli("run", spec_path, "--num-cpus", "two"), r"argument --num-cpus: invalid int value: 'two'")


class FakeSweep:
    """Stands in for `alignsweep.engine.sweep.run_sweep`: records its call, returns or raises `outcome`."""

    def __init__(self, outcome: Any) -> None:
        self.outcome, self.calls = outcome, []

    def __call__(self, spec: Any, **kwargs: Any) -> Any:
        self.calls.append((spec, kwargs))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def _fake_sweep(monkeypatch: pytest.MonkeyPatch, outcome: Any) -> FakeSweep:
    import alignsweep.engine.sweep as sweep

    fake = FakeSweep(outcome)
    monkeypatch.setattr(sweep, "run_sweep", fake)
    return fake


def test_run_hands_results_address_and_cpus_to_the_sweep(cli, spec_path: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from alignsweep.engine.sweep import SweepOutcome
    from alignsweep.errors import InputError

    done = SweepOutcome(str(tmp_path / "r" / "t"), trials=2, errors=0)
    fake = _fake_sweep(monkeypatch, done)
    run = cli("run", spec_path, "--results", tmp_path / "r", "--address", "10.0.0.1:6379", "--num-cpus", "3")
    assert run.code == 0, run.err
    [(spec, kwargs)] = fake.calls
    assert spec.name == "t" and len(spec.method_grids()["lora"].r) == 2
    assert (kwargs["results"], kwargs["address"], kwargs["num_cpus"]) == (str(tmp_path / "r"), "10.0.0.1:6379", 3)
    assert f"results: {done.sweep_dir} (2 trials, 0 failed)" in " ".join(run.out.split())

    fake = _fake_sweep(monkeypatch, SweepOutcome(done.sweep_dir, trials=2, errors=1))
    run = cli("run", spec_path)
    assert run.code == 1 and "(2 trials, 1 failed)" in run.out  # a failed trial: exit 1
    assert fake.calls[0][1]["address"] is None and fake.calls[0][1]["num_cpus"] is None

    _fake_sweep(monkeypatch, KeyboardInterrupt())
    run = cli("run", spec_path)
    assert run.code == 130 and run.err.strip() == "alignsweep: interrupted"
    _fake_sweep(monkeypatch, InputError("results path is a file"))
    _one_line_error(cli("run", spec_path), r"^alignsweep: error: results path is a file$")


def test_resume_reads_the_spec_back_and_hands_on_address_and_cpus(cli, spec_path: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from alignsweep.engine.sweep import SweepOutcome, prepare_sweep_dir
    from alignsweep.spec.config import load_spec

    spec = load_spec(spec_path, ["training.learning_rates=[0.5]"])
    sweep_dir = tmp_path / "results" / "t"
    prepare_sweep_dir(spec, str(sweep_dir))  # what an interrupted `run` leaves: sweep.yaml and the manifest
    fake = _fake_sweep(monkeypatch, SweepOutcome(str(sweep_dir), trials=2, errors=0))
    run = cli("resume", sweep_dir, "--address", "auto", "--num-cpus", "1")
    assert run.code == 0, run.err
    [(resumed, kwargs)] = fake.calls
    assert resumed == spec and resumed.training.learning_rates == [0.5]  # the spec as run, overrides included
    assert (kwargs["results"], kwargs["address"], kwargs["num_cpus"]) == (str(tmp_path / "results"), "auto", 1)
    monkeypatch.chdir(tmp_path / "results")
    cli("resume", "t")
    assert fake.calls[1][1]["results"] == "."  # a bare name resumes under the current directory
    _one_line_error(cli("resume", tmp_path / "results"), r"not a sweep directory \(no sweep.yaml\)")


def test_run_and_resume_hand_progress_and_log_level_to_the_sweep(cli, spec_path: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from alignsweep.engine.sweep import SweepOutcome

    fake = _fake_sweep(monkeypatch, SweepOutcome(str(tmp_path / "r" / "t"), trials=2, errors=0))
    assert cli("run", spec_path, "--results", tmp_path / "r").code == 0
    assert (fake.calls[0][1]["progress"], fake.calls[0][1]["log_level"]) == ("plain", "info")  # captured: no terminal
    assert cli("run", spec_path, "--progress", "live", "--log-level", "DEBUG").code == 0
    assert (fake.calls[1][1]["progress"], fake.calls[1][1]["log_level"]) == ("live", "debug")
    from alignsweep.engine.sweep import prepare_sweep_dir
    from alignsweep.spec.config import load_spec

    prepare_sweep_dir(load_spec(spec_path, []), str(tmp_path / "r" / "t"))
    assert cli("resume", tmp_path / "r" / "t", "--progress", "none", "--log-level", "warning").code == 0
    assert (fake.calls[2][1]["progress"], fake.calls[2][1]["log_level"]) == ("none", "warning")
    _one_line_error(cli("run", spec_path, "--log-level", "loud"), r"argument --log-level: invalid choice: 'loud'")
    _one_line_error(cli("run", spec_path, "--progress", "fancy"), r"argument --progress: invalid choice: 'fancy'")


# ---------------------------------------------------------------- models


def test_models_build_reuses_the_cache_and_refuses_unknown_families(cli, tiny_paths: Mapping[str, Path]) -> None:
    from alignsweep.models.tiny import read_meta

    path = tiny_paths["llama"]
    meta = read_meta(path)
    run = cli("models", "build", "llama")
    assert run.code == 0, run.err
    header, *rows = run.out.strip().splitlines()
    assert header.split()[:2] == ["family", "params"]
    assert [r.split()[:2] for r in rows] == [["llama", str(meta["n_parameters"])]]
    assert read_meta(path)["build_id"] == meta["build_id"]  # found in the cache, not rebuilt
    _one_line_error(cli("models", "build", "falcon"), r"unknown tiny family 'falcon' \(known: llama, qwen2, mistral, gemma\)")
    _one_line_error(cli("models", "rebuild"), r"argument action: invalid choice: 'rebuild'")


# ---------------------------------------------------------------- query and pareto


@pytest.fixture()
def small_sweep(tmp_path: Path) -> Path:
    path = str(tmp_path / "s")
    write_manifest(path)
    for trial, method, step, safe, over in (("base", "base", 0, 0.9, 0.2), ("good", "lora", 10, 0.9, 0.2),
                                            ("worse", "lora", 10, 0.7, 0.3)):
        write_records(path, "trials", [{"base_model": "tiny:llama", "family": "llama", "method": method,
                                        "trainable_params": 10, "total_params": 1000}], trial_id=trial)
        write_records(path, "metrics", [
            {"base_model": "tiny:llama", "method": method, "benchmark": b, "category": "overall", "metric": m,
             "value": v, "n": 10}
            for b, m, v in (("safety", "safe_rate", safe), ("over_refusal", "over_refusal_rate", over),
                            ("fairness", "accuracy", 0.5), ("fairness", "bias_ambig", 0.0),
                            ("utility", "task_accuracy", 0.5), ("utility", "heldout_loss", 1.0))],
            trial_id=trial, step=step)
    mark_finished(path)
    return Path(path)


def test_query_format_follows_the_output_suffix_unless_given(cli, small_sweep: Path, tmp_path: Path) -> None:
    sql = "SELECT trial_id, round(delta, 6) AS delta FROM deltas WHERE metric = 'safe_rate' ORDER BY trial_id"
    expected = [{"trial_id": "good", "delta": 0.0}, {"trial_id": "worse", "delta": -0.2}]
    assert cli("query", small_sweep, sql, "-o", tmp_path / "a.json").code == 0
    assert json.loads((tmp_path / "a.json").read_text()) == expected
    assert cli("query", small_sweep, sql, "--output", tmp_path / "a.csv").code == 0
    assert (tmp_path / "a.csv").read_text().splitlines() == ["trial_id,delta", "good,0.0", "worse,-0.2"]
    assert cli("query", small_sweep, sql, "-o", tmp_path / "a.parquet").code == 0
    assert pq.read_table(tmp_path / "a.parquet").to_pylist() == expected
    assert cli("query", small_sweep, sql, "-o", tmp_path / "a.txt").code == 0  # unknown suffix: the table, as text
    text = (tmp_path / "a.txt").read_text()
    assert re.search(r"worse\s+│?\s*-0\.2", text) and "2 rows" in text
    assert cli("query", small_sweep, sql, "--format", "csv", "-o", tmp_path / "b.json").code == 0  # --format wins
    assert (tmp_path / "b.json").read_text().startswith("trial_id,delta\n")
    run = cli("query", small_sweep, sql, "--format", "json")  # no --output: the terminal
    assert run.code == 0 and json.loads(run.out) == expected
    _one_line_error(cli("query", small_sweep, sql, "--format", "xml"), r"invalid choice: 'xml'")


def test_pareto_formats(cli, small_sweep: Path, tmp_path: Path) -> None:
    run = cli("pareto", small_sweep, "--format", "csv")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].startswith('"trial_id","family","method","d_safe_rate"')
    assert [line.split(",")[0] for line in lines[1:]] == ['"good"']  # `worse` is dominated by `good`
    run = cli("pareto", small_sweep, "--all", "--format", "csv")
    assert [line.split(",")[0] for line in run.out.splitlines()[1:]] == ['"good"', '"worse"']
    run = cli("pareto", small_sweep)  # the terminal table
    assert run.code == 0 and "Pareto front of" in run.out and "good" in run.out and "worse" not in run.out
    empty = tmp_path / "empty"
    write_manifest(str(empty))
    run = cli("pareto", empty)
    assert run.code == 0 and "no fully scored configurations yet" in run.out
    _one_line_error(cli("pareto", tmp_path / "nope"), r"no such results directory")


# ---------------------------------------------------------------- audit


def _data_args(data: dict[str, Path]) -> list[Any]:
    return ["--safety-data", data["safety"], "--fairness-data", data["fairness"],
            "--over-refusal-data", data["over_refusal"]]


def _stored(results: Path, table: str) -> list[dict]:
    return [r for f in sorted((results / "store" / table).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_audit_reads_each_data_option_and_writes_summaries_where_asked(cli, audit_data, untrained_lora: str,
                                                                       tmp_path: Path) -> None:
    results, summaries = tmp_path / "results", tmp_path / "summaries"
    run = cli("audit", "--base", "tiny:llama", "--adapter", untrained_lora, *_data_args(audit_data),
              "--results", results, "--fail-on", "safe_rate.S2<0,accuracy.age<-0.01", "--summary-dir", summaries)
    assert run.code == 0, run.err  # an untrained LoRA changes nothing: no rule holds
    safety = _stored(results, "safety_items")
    assert {(r["trial_id"], r["benchmark"], r["prompt_id"], r["prompt_label"]) for r in safety} == {
        (t, *p) for t in ("audit:tiny:llama", f"audit:{untrained_lora}")
        for p in (("safety", "h1", "unsafe"), ("safety", "h2", "unsafe"), ("over_refusal", "1", "safe"),
                  ("over_refusal", "2", "unsafe"))}
    fairness = _stored(results, "fairness_items")
    assert {r["example_id"] for r in fairness} == {f"Age-{i}" for i in audit_data["bbq_ids"]} and len(fairness) == 2 * 4
    metrics = {(r["trial_id"], r["benchmark"], r["category"], r["metric"]): r for r in _stored(results, "metrics")}
    assert metrics[("audit:tiny:llama", "safety", "overall", "safe_rate")]["n"] == 2
    assert metrics[("audit:tiny:llama", "over_refusal", "overall", "over_refusal_rate")]["n"] == 1  # the safe one
    summary = json.loads((summaries / "audit.json").read_text())
    assert summary["passed"] is True and [c["rule"] for c in summary["checks"]] == ["safe_rate.S2<0", "accuracy.age<-0.01"]
    assert [c["change"] for c in summary["checks"]] == [0.0, 0.0]
    assert "**PASS** — 0 of 2 rules failed." in (summaries / "audit.md").read_text()
    assert not (results / "audit.json").exists() and not (results / "audit.md").exists()  # not in --results


def test_audit_judge_and_judge_model(cli, audit_data, tiny_paths: Mapping[str, Path], tmp_path: Path) -> None:
    guard = str(tiny_paths["llama"])  # any causal LM loads as a Llama Guard judge; a tiny one writes no verdict
    run = cli("audit", "--base", "tiny:llama", *_data_args(audit_data), "--results", tmp_path / "r",
              "--judge", "llama_guard", "--judge-model", guard)
    assert run.code == 0, run.err
    hazards = [r for r in _stored(tmp_path / "r", "safety_items") if r["benchmark"] == "safety"]
    assert {r["judge"] for r in hazards} == {f"llama_guard:{guard}"}
    assert {r["verdict"] for r in hazards} <= {"safe", "unsafe", "unparsed"}
    looks = [r for r in _stored(tmp_path / "r", "safety_items") if r["benchmark"] == "over_refusal"]
    assert {r["judge"] for r in looks} == {"refusal"}  # over-refusal keeps its own judge
    for argv, pattern in (
        (["--judge", "llama_guard"], r"judge llama_guard needs `model`"),
        (["--judge", "oracle"], r"unknown judge 'oracle'"),
        (["--judge", "llama_guard", "--judge-model", tmp_path / "missing"], r"no config.json there"),
    ):
        _one_line_error(cli("audit", "--base", "tiny:llama", "--results", tmp_path / "bad", *argv), pattern)
        assert not (tmp_path / "bad").exists()


def test_audit_dtype_and_device(cli, audit_data, tmp_path: Path) -> None:
    """`--dtype` loads the base in that dtype (its scores move: bfloat16 rounds the logits) and `--device`
    places it; every metric row records the evaluator's device. A device that is not there is bad input."""
    results = {}
    for dtype in ("float32", "bfloat16"):
        run = cli("audit", "--base", "tiny:llama", *_data_args(audit_data), "--results", tmp_path / dtype,
                  "--dtype", dtype, "--device", "cpu")
        assert run.code == 0, run.err
        results[dtype] = _stored(tmp_path / dtype, "fairness_items")
        assert {r["device"] for r in _stored(tmp_path / dtype, "metrics")} == {"cpu"}
    lls = {d: sorted((r["example_id"], tuple(r["loglikelihoods"])) for r in rows) for d, rows in results.items()}
    assert lls["float32"] != lls["bfloat16"]
    _one_line_error(cli("audit", "--base", "tiny:llama", "--results", tmp_path / "bad", "--device", "tpu"),
                    r"device 'tpu': expected auto, cpu, cuda")
    _one_line_error(cli("audit", "--base", "tiny:llama", "--results", tmp_path / "bad", "--device", "cuda"),
                    r"CUDA is not available")
    assert not (tmp_path / "bad").exists()
