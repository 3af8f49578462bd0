"""`alignsweep query` and `alignsweep.open`: views over the store, the deltas view, several sweeps, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import alignsweep
from alignsweep.cli.main import main
from alignsweep.errors import InputError
from alignsweep.store import SCHEMAS, mark_finished, write_manifest, write_records


def _metrics(path: str, trial: str, base_model: str, method: str, step: int, values: dict) -> None:
    rows = [{"base_model": base_model, "method": method, "benchmark": b, "category": c, "metric": m, "value": v, "n": 10}
            for (b, c, m), v in values.items()]
    write_records(path, "metrics", rows, trial_id=trial, step=step)


def _trial(path: str, trial: str, base_model: str, family: str | None, method: str, **extra) -> None:
    write_records(path, "trials", [{"base_model": base_model, "family": family, "method": method, **extra}], trial_id=trial)


SAFE, S1, ACC, OVER = ("safety", "overall", "safe_rate"), ("safety", "S1", "safe_rate"), ("fairness", "overall", "accuracy"), ("over_refusal", "overall", "over_refusal_rate")


@pytest.fixture()
def hand_store(tmp_path: Path) -> Path:
    """Two sweeps with numbers small enough to compute the deltas by hand."""
    demo = str(tmp_path / "demo")
    write_manifest(demo, seed=0)
    _trial(demo, "base_llama", "tiny:llama", "llama", "base", status="TERMINATED")
    _metrics(demo, "base_llama", "tiny:llama", "base", 0, {SAFE: 0.9, S1: 0.8, ACC: 0.6})
    _trial(demo, "lora_1", "tiny:llama", "llama", "lora", status="TERMINATED", learning_rate=1e-3, r=8)
    _metrics(demo, "lora_1", "tiny:llama", "lora", 10, {SAFE: 0.7, S1: 0.5, ACC: 0.65})
    _metrics(demo, "lora_1", "tiny:llama", "lora", 20, {SAFE: 0.6, S1: 0.4})  # fairness not rescored at 20
    _trial(demo, "base_qwen", "tiny:qwen2", "qwen2", "base")
    _metrics(demo, "base_qwen", "tiny:qwen2", "base", 0, {SAFE: 0.95})
    _metrics(demo, "ia3_1", "tiny:qwen2", "ia3", 5, {SAFE: 0.93, OVER: 0.2})  # no trials row yet; base lacks OVER
    mark_finished(demo)
    other = str(tmp_path / "other")
    write_manifest(other)
    _trial(other, "base_llama", "tiny:llama", "llama", "base")
    _metrics(other, "base_llama", "tiny:llama", "base", 0, {SAFE: 0.5})
    _trial(other, "lora_1", "tiny:llama", "llama", "lora")
    _metrics(other, "lora_1", "tiny:llama", "lora", 3, {SAFE: 0.6})
    return tmp_path


def _rows(con, sql: str) -> list[tuple]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in con.execute(sql).fetchall()]


def test_deltas_by_hand(hand_store: Path) -> None:
    con = alignsweep.open(hand_store / "demo", hand_store / "other")
    sql = "SELECT sweep, trial_id, family, step, category, metric, base_value, delta FROM {} ORDER BY ALL"
    assert _rows(con, sql.format("deltas")) == [
        ("demo", "ia3_1", "qwen2", 5, "overall", "safe_rate", 0.95, -0.02),
        ("demo", "lora_1", "llama", 10, "overall", "accuracy", 0.6, 0.05),  # its last fairness step
        ("demo", "lora_1", "llama", 20, "S1", "safe_rate", 0.8, -0.4),
        ("demo", "lora_1", "llama", 20, "overall", "safe_rate", 0.9, -0.3),
        ("other", "lora_1", "llama", 3, "overall", "safe_rate", 0.5, 0.1),  # against its own sweep's base
    ]
    by_step = _rows(con, "SELECT step, category, delta FROM deltas_by_step WHERE sweep = 'demo' AND trial_id = 'lora_1' ORDER BY ALL")
    assert by_step == [(10, "S1", -0.3), (10, "overall", -0.2), (10, "overall", 0.05), (20, "S1", -0.4), (20, "overall", -0.3)]


def test_views_union_sweeps_with_a_sweep_column(hand_store: Path) -> None:
    con = alignsweep.open(hand_store / "demo", hand_store / "other")
    assert _rows(con, "SELECT sweep, count(*) FROM trials GROUP BY 1 ORDER BY 1") == [("demo", 3), ("other", 2)]
    assert _rows(con, "SELECT sweep, count(*) FROM metrics GROUP BY 1 ORDER BY 1") == [("demo", 11), ("other", 2)]
    assert _rows(con, "SELECT r, learning_rate FROM trials WHERE sweep = 'demo' AND trial_id = 'lora_1'") == [(8, 0.001)]


def test_tables_without_files_are_empty_views_with_their_schema(tmp_path: Path) -> None:
    write_manifest(str(tmp_path / "fresh"))
    con = alignsweep.open(tmp_path / "fresh")
    for table, schema in SCHEMAS.items():
        described = con.execute(f"DESCRIBE {table}").fetchall()
        assert [row[0] for row in described] == ["sweep", *(n for n in schema.names if n != "sweep")]
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
    types = dict((r[0], r[1]) for r in con.execute("DESCRIBE fairness_items").fetchall())
    assert types["loglikelihoods"] == "DOUBLE[]" and types["truncated"] == "BOOLEAN"
    assert con.execute("SELECT count(*) FROM deltas").fetchall() == [(0,)]


def test_open_through_file_uri_and_a_pyarrow_filesystem(hand_store: Path) -> None:
    con = alignsweep.open((hand_store / "demo").as_uri())
    assert con.execute("SELECT count(*) FROM deltas").fetchall() == [(4,)]
    subtree = pafs.SubTreeFileSystem(str(hand_store), pafs.LocalFileSystem())  # the object-store path
    con = alignsweep.open("demo", filesystem=subtree)
    assert _rows(con, "SELECT round(sum(delta), 6) FROM deltas") == [(-0.67,)]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_cli_writes_each_format(hand_store: Path, fmt: str) -> None:
    out = hand_store / f"out.{fmt}"
    sql = "SELECT trial_id, delta FROM deltas WHERE metric = 'safe_rate' AND category = 'overall' ORDER BY trial_id"
    assert main(["query", str(hand_store / "demo"), sql, "--format", fmt, "--output", str(out)]) == 0
    if fmt == "csv":
        lines = out.read_text().splitlines()
        assert lines[0] == "trial_id,delta" and lines[1].startswith("ia3_1,")
        assert float(lines[1].split(",")[1]) == pytest.approx(-0.02)
    elif fmt == "json":
        rows = json.loads(out.read_text())
        assert [r["trial_id"] for r in rows] == ["ia3_1", "lora_1"] and rows[1]["delta"] == pytest.approx(-0.3)
    else:
        assert pq.read_table(out).column("trial_id").to_pylist() == ["ia3_1", "lora_1"]


def test_cli_prints_a_table(hand_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", str(hand_store / "demo"), "SELECT trial_id, method FROM trials ORDER BY 1"]) == 0
    out = capsys.readouterr().out
    assert "base_llama" in out and "lora_1" in out and "3 rows" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{demo}", "SELEC * FROM metrics"], r"SQL error: Parser Error: syntax error at or near \"SELEC\""),
        (["{demo}", "SELECT * FROM metric"], r"SQL error: Catalog Error: Table with name metric does not exist!.*metrics"),
        (["{demo}", "SELECT nope FROM trials"], r"SQL error: Binder Error"),
        (["{root}/missing", "SELECT 1"], "no such results directory"),
        (["{root}", "SELECT 1"], r"not a sweep results directory.*\(sweeps inside it: demo, other\)"),
        (["{demo}", "SELECT 1", "--format", "parquet"], "--format parquet needs --output"),
        (["SELECT 1"], "give one or more sweep directories and then the SQL"),
    ],
)
def test_cli_errors_exit_2_with_one_line(hand_store: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    out = hand_store / "never.csv"
    args = [a.format(demo=hand_store / "demo", root=hand_store) for a in argv]
    assert main(["query", *args, "--output", str(out)] if "parquet" not in argv else ["query", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("alignsweep: error: ")
    import re

    assert re.search(message, err), err
    assert not out.exists()


def test_run_query_raises_input_error() -> None:
    from alignsweep.analysis.views import run_query

    with pytest.raises(InputError, match="give at least one sweep results directory"):
        run_query([], "SELECT 1")
