"""Issue 8 in the report: each safe-rate change beside its over-refusal change, the safety-vs-over-
refusal scatter by method, and the Pareto front counting over-refusal as a cost; plus the
statistics, controls and seeds sections that read the same store."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

import alignsweep
from alignsweep.analysis.report import write_report
from alignsweep.store import write_records
from store_factory import METHODS, build_sweep


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[Path]]:
    """Three families × four methods × two configurations, with items; its report, written once."""
    root = tmp_path_factory.mktemp("over")
    build_sweep(str(root / "s"), configs=2, items=True)
    result = write_report(str(root / "s"), str(root / "out"), console=Console(record=True, width=200, file=io.StringIO()))
    return root, result.html.read_text(), result.plots


def test_over_refusal_beside_every_safe_rate_change(report) -> None:
    root, html, plots = report
    assert "Safety vs over-refusal" in html
    assert (root / "out" / "safety_vs_over_refusal.png") in plots
    # In each summary table the over-refusal change is the column right after the safe-rate change.
    for header in re.findall(r"<thead>.*?</thead>", html, flags=re.S):
        cells = re.findall(r"<th>(.*?)</th>", header)
        if "Δ safe rate" in cells:
            assert cells[cells.index("Δ safe rate") + 1] == "Δ over-refusal", cells
    # The Pareto section names over-refusal as a cost, and its front is the store's `pareto` view
    # (tested by hand in tests/test_pareto.py), read here through alignsweep.open, not the report.
    assert "Δ over-refusal (lower is better)" in html
    con = alignsweep.open(root / "s")
    on_front, scored = con.execute("SELECT count(*) FILTER (WHERE on_front), count(*) FROM pareto").fetchall()[0]
    con.close()
    assert 1 <= on_front < scored == 3 * len(METHODS) * 2  # every factory trial has full metrics at its last step
    assert f"{on_front} of {scored} fully scored configurations are on the Pareto front" in html


def test_statistics_section_gives_intervals_and_flags_noise(report) -> None:
    _, html, _ = report
    assert "Method effect, family held fixed (points)" in html
    table = html.split("Method effect, family held fixed (points)</h3>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>\s*<td>(\w+)</td>\s*<td>([^<]+)</td>", table)
    # The factory writes safety and BBQ items but no look-alikes: three item metrics × four methods.
    assert sorted(rows) == sorted((method, m) for m in ("safe rate", "BBQ accuracy", "bias (ambiguous)") for method in METHODS)
    noisy = re.search(r"— (\d+) of (\d+) method effects are", html)
    assert noisy and int(noisy.group(2)) == 3 * len(METHODS)
    assert 0 <= int(noisy.group(1)) <= int(noisy.group(2))


def test_seed_spread_flags_effects_smaller_than_seed_to_seed_variation(tmp_path: Path) -> None:
    path = str(tmp_path / "seeds")
    build_sweep(path, configs=2, methods=("lora",), families={"tiny:llama": "llama"})
    # Make the two configurations seeds 0 and 1 of one configuration, with opposite safe-rate changes.
    for k, (seed, value) in enumerate(((0, 0.95), (1, 0.75))):
        write_records(path, "trials", [{"base_model": "tiny:llama", "family": "llama", "method": "lora",
                                        "status": "TERMINATED", "steps": 20, "seed": seed, "learning_rate": 0.01}],
                      trial_id=f"llama_lora_{k:02d}")
        write_records(path, "metrics", [{"base_model": "tiny:llama", "method": "lora", "benchmark": "safety",
                                         "category": "overall", "metric": "safe_rate", "value": value, "n": 40}],
                      trial_id=f"llama_lora_{k:02d}", step=20)
    result = write_report(path, str(tmp_path / "o"), console=Console(record=True, width=200, file=io.StringIO()))
    html = result.html.read_text()
    section = html.split("Seeds: mean and spread per configuration")[1].split("<h2>")[0]
    assert "<td>2</td>" in section and "safe" in section.split("smaller than seed spread")[-1]
