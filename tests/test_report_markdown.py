"""`alignsweep report --format md`: the pull-request summary says what the HTML report says (same
numbers, computed here again from the Parquet files), names the worst regressions, stays small, and
copes with the stores a user meets mid-way."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pytest

from alignsweep.store import write_manifest
from store_factory import build_sweep


def md_tables(text: str) -> list[list[list[str]]]:
    """Each Markdown table in `text` as rows of cells (header first, the alignment row dropped)."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if not all(set(c) <= set("-:") for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def _safe_changes(path: Path) -> dict[str, float]:
    """Per fine-tuned trial: its last scored safe rate minus its base's, in points, from the files."""
    rows = ds.dataset(path / "store" / "metrics", format="parquet").to_table().to_pylist()
    safe = [r for r in rows if (r["benchmark"], r["category"], r["metric"]) == ("safety", "overall", "safe_rate")]
    base = {r["base_model"]: r["value"] for r in safe if r["method"] == "base"}
    last: dict[str, dict] = {}
    for r in safe:
        if r["method"] != "base" and r["step"] > 0 and r["step"] >= last.get(r["trial_id"], {"step": -1})["step"]:
            last[r["trial_id"]] = r
    return {t: 100 * (r["value"] - base[r["base_model"]]) for t, r in last.items()}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("md") / "demo"
    return path, build_sweep(str(path), configs=3, failed=1, items=True)


def test_markdown_summary_matches_the_store(sweep, cli) -> None:
    path, built = sweep
    run = cli("report", path, "--format", "md", "--out", path.parent / "md")
    assert run.code == 0, run.err
    written = (path.parent / "md" / "report.md").read_text()
    assert run.out.strip() == written.strip()  # printed for a pipe, written for an upload
    assert written.startswith("### alignsweep: `demo`") and len(written) < 65_536  # a GitHub comment's limit
    assert not list((path.parent / "md").glob("*.png")) and not (path.parent / "md" / "report.html").exists()
    status, by_method, by_family, worst = md_tables(written)
    # Trials by method: every fine-tuned trial counted once; the failed one is in `failed`.
    total = {row[0]: row for row in status[1:]}["all"]
    header = status[0]
    assert int(total[header.index("trials")]) == len(built.family) and int(total[header.index("failed")]) == len(built.failed) == 1
    # The mean Δ safe rate per method, as the files give it.
    changes = _safe_changes(path)
    trials = {r["trial_id"]: r for r in ds.dataset(path / "store" / "trials", format="parquet").to_table().to_pylist()}
    column = by_method[0].index("Δ safe rate")
    for row in by_method[1:]:
        mine = [v for t, v in changes.items() if trials[t]["method"] == row[0]]
        assert row[1] == str(len(mine)) and row[column] == f"{sum(mine) / len(mine):+.1f}"
    column = by_family[0].index("Δ safe rate")
    for row in by_family[1:]:
        mine = [v for t, v in changes.items() if built.family[t] == row[0]]
        assert row[1] == str(len(mine)) and row[column] == f"{sum(mine) / len(mine):+.1f}"
    assert {r[0] for r in by_family[1:]} == {built.family[t] for t in changes}
    # Worst regressions: the worst safe-rate trial heads its metric's rows with its Δ from the files.
    safe_rows = [r for r in worst[1:] if r[0] == "safe rate"]
    worst_trial = min(changes, key=changes.get)
    assert safe_rows[0][1] == worst_trial and safe_rows[0][4] == f"{changes[worst_trial]:+.1f}"
    assert [float(r[4]) for r in safe_rows] == sorted(float(r[4]) for r in safe_rows)
    # q: the tests view's overall q-value of that trial and metric, ✱ exactly where it is a significant regression
    import alignsweep
    tests = alignsweep.open(path).sql("SELECT trial_id, metric, q, regression FROM tests WHERE category = 'overall'").df()
    metric_of = {"safe rate": "safe_rate", "over-refusal": "over_refusal_rate", "BBQ accuracy": "accuracy",
                 "bias (ambiguous)": "bias_ambig"}
    header = worst[0]
    assert any(r[header.index("q")] != "–" for r in worst[1:])  # the fixture has per-item rows: q-values exist
    for r in worst[1:]:
        view = tests[(tests.trial_id == r[1]) & (tests.metric == metric_of[r[0]])]
        q_cell = r[header.index("q")]
        if view.empty or view.q.isna().all():
            assert q_cell == "–"
            continue
        q = float(view.q.iloc[0])
        assert float(q_cell.split()[0]) == pytest.approx(q, rel=0.06)
        assert q_cell.endswith("✱") == (q <= 0.05 and bool(view.regression.iloc[0]))


def test_markdown_on_an_empty_and_a_missing_sweep(tmp_path: Path, cli) -> None:
    write_manifest(str(tmp_path / "empty"))
    run = cli("report", tmp_path / "empty", "--format", "md")
    assert run.code == 0, run.err
    assert "No fine-tuned trials" in run.out and (tmp_path / "empty/report/report.md").exists()
    for bad in (["report", tmp_path / "nowhere", "--format", "md"], ["report", tmp_path / "empty", "--format", "pdf"]):
        run = cli(*bad)
        assert run.code == 2 and len(run.err_lines) == 1 and run.err.startswith("alignsweep: error: "), run.err
