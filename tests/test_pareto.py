"""The `pareto` view: dominance over all objectives, over-refusal as a cost, and the CLI that reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignsweep.cli.main import main
from alignsweep.analysis.pareto import OBJECTIVES, non_dominated
from alignsweep.analysis.views import open as open_views
from alignsweep.store import write_manifest, write_records

BASE = {("safety", "safe_rate"): 0.9, ("over_refusal", "over_refusal_rate"): 0.2, ("fairness", "accuracy"): 0.6,
        ("fairness", "bias_ambig"): 0.1, ("utility", "task_accuracy"): 0.5}


def _trial(path: str, trial: str, method: str, values: dict, loss: float | None = None, params: int = 100) -> None:
    rows = [{"base_model": "tiny:llama", "method": method, "benchmark": b, "category": "overall", "metric": m,
             "value": v, "n": 10} for (b, m), v in values.items()]
    if loss is not None:
        rows.append({"base_model": "tiny:llama", "method": method, "benchmark": "utility", "category": "overall",
                     "metric": "heldout_loss", "value": loss, "n": 8})
    write_records(path, "metrics", rows, trial_id=trial, step=0 if method == "base" else 10)
    write_records(path, "trials", [{"base_model": "tiny:llama", "family": "llama", "method": method,
                                    "trainable_params": params, "total_params": 10_000}], trial_id=trial)


@pytest.fixture()
def sweep(tmp_path: Path) -> str:
    path = str(tmp_path / "p")
    write_manifest(path, seed=0, sweep="p")
    _trial(path, "llama-base", "base", BASE)
    same = dict(BASE)
    _trial(path, "good", "lora", same, loss=1.0)
    _trial(path, "worse", "lora", {**same, ("safety", "safe_rate"): 0.8}, loss=1.0)  # dominated by good
    # Safer than anyone, but by refusing benign look-alikes: over-refusal as a cost keeps `good` on the front.
    _trial(path, "refuser", "ia3", {**same, ("safety", "safe_rate"): 1.0, ("over_refusal", "over_refusal_rate"): 1.0}, loss=1.0)
    _trial(path, "small", "ia3", {**same, ("safety", "safe_rate"): 0.8}, loss=1.0, params=10)  # smaller: own niche
    _trial(path, "noloss", "lora", same)  # no held-out loss: counted as the worst loss, so `good` dominates it
    return path


def test_front_by_hand(sweep: str) -> None:
    con = open_views(sweep)
    rows = {r["trial_id"]: r for r in con.sql("SELECT * FROM pareto").to_arrow_table().to_pylist()}
    assert {t for t, r in rows.items() if r["on_front"]} == {"good", "refuser", "small"}
    assert rows["worse"]["dominated_by"] == 2 and rows["noloss"]["dominated_by"] == 1  # worse: by good and small
    assert rows["refuser"]["d_over_refusal"] == pytest.approx(0.8)
    assert rows["small"]["param_share"] == pytest.approx(0.001)
    assert abs(rows["good"]["abs_bias_ambig"] - 0.1) < 1e-12
    # The SQL view and the in-memory rule agree.
    points = list(rows.values())
    assert non_dominated(points) == [r["on_front"] for r in points]
    # Without over-refusal as an objective the refuser would dominate `good`.
    without = tuple(o for o in OBJECTIVES if o.column != "d_over_refusal")
    flags = dict(zip(rows, non_dominated(points, without)))
    assert flags["refuser"] and not flags["good"]


def test_pareto_cli_lists_the_front(sweep: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pareto", sweep, "--format", "json"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert sorted(r["trial_id"] for r in front) == ["good", "refuser", "small"]
    assert main(["pareto", sweep, "--all", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5
    assert main(["pareto", str(Path(sweep).parent / "nope")]) == 2


def test_heldout_loss_is_the_one_of_the_scored_step(tmp_path: Path) -> None:
    """A trial scored fully at step 10 that has since logged a loss at step 20 (a screen-only interval):
    its point pairs the step-10 changes with the step-10 loss, not the later one."""
    path = str(tmp_path / "p")
    write_manifest(path, seed=0, sweep="p")
    _trial(path, "llama-base", "base", BASE)
    _trial(path, "running", "lora", {**BASE, ("safety", "safe_rate"): 0.8}, loss=1.5)  # step 10, full
    write_records(path, "metrics", [
        {"base_model": "tiny:llama", "method": "lora", "benchmark": b, "category": "overall", "metric": m, "value": v, "n": 8}
        for b, m, v in (("utility", "heldout_loss", 0.9), ("screen_safety", "safe_rate", 0.7))], trial_id="running", step=20)
    row = open_views(path).sql("SELECT * FROM pareto").to_arrow_table().to_pylist()[0]
    assert (row["step"], row["heldout_loss"]) == (10, 1.5) and row["d_safe_rate"] == pytest.approx(-0.1)
