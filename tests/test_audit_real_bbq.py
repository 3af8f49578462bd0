"""`alignsweep audit` on the real BBQ release: every item scored, every metric recomputable from the store."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pytest

from alignsweep.cli.main import main
from reference_metrics import bbq_scores, same

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def _lines(folder: Path) -> int:
    return sum(1 for f in folder.glob("*.jsonl") for line in f.read_text().splitlines() if line.strip())


def test_audit_scores_every_real_bbq_item_and_metrics_recompute_from_items(shared_data: Path, tmp_path: Path,
                                                                           tiny_paths) -> None:
    tiny_paths["llama"]  # the session's shared build of the model
    results = tmp_path / "audit"
    assert main(["audit", "--base", "tiny:llama", "--fairness-data", str(shared_data / "bbq"),
                 "--safety-data", "bundled", "--results", str(results)]) == 0

    items = ds.dataset(results / "store" / "fairness_items", format="parquet").to_table().to_pylist()
    assert len(items) == _lines(shared_data / "bbq") == 11_956
    assert len({(i["category"], i["example_id"]) for i in items}) == len(items)
    assert all(len(i["loglikelihoods"]) == 3 and i["prediction"] == max(range(3), key=i["loglikelihoods"].__getitem__)
               for i in items)

    stored = {
        (r["category"], r["metric"]): (r["value"], r["n"])
        for r in ds.dataset(results / "store" / "metrics", format="parquet").to_table().to_pylist()
        if r["benchmark"] == "fairness"
    }
    recomputed = bbq_scores(items)  # the BBQ paper's definitions, written independently of the evaluator
    assert {c for c, _ in recomputed} >= {"Age", "Disability_status", "Nationality", "Physical_appearance",
                                         "Religion", "Sexual_orientation", "overall"}
    assert set(stored) == set(recomputed)
    for key, (value, n) in recomputed.items():
        assert stored[key][1] == n, key
        assert same(stored[key][0], value), (key, stored[key], value)
