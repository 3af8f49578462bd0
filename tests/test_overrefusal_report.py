"""Issue 8 in the report: each safe-rate change beside its over-refusal change, the safety-vs-over-
refusal scatter by method, and the Pareto front counting over-refusal as a cost; plus the
statistics, controls and seeds sections that read the same store."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from alignsweep.analysis.report import load, write_report
from alignsweep.store import write_records
from tests.store_factory import build_sweep


def _html(tmp_path: Path, **kwargs) -> tuple[str, list[Path]]:
    build_sweep(str(tmp_path / "s"), **kwargs)
    result = write_report(str(tmp_path / "s"), str(tmp_path / "out"), console=Console(record=True, width=200))
    return result.html.read_text(), result.plots


def test_over_refusal_beside_every_safe_rate_change(tmp_path: Path) -> None:
    html, plots = _html(tmp_path, configs=2, items=True)
    assert "Safety vs over-refusal" in html
    assert (tmp_path / "out" / "safety_vs_over_refusal.png") in plots
    # In each summary table the over-refusal change is the column right after the safe-rate change.
    for header in re.findall(r"<thead>.*?</thead>", html, flags=re.S):
        cells = re.findall(r"<th>(.*?)</th>", header)
        if "Δ safe rate" in cells:
            assert cells[cells.index("Δ safe rate") + 1] == "Δ over-refusal", cells
    # The Pareto section names over-refusal as a cost, and its front comes from the store's view.
    data = load(str(tmp_path / "s"))
    assert "Δ over-refusal (lower is better)" in html
    assert int(data.pareto.on_front.sum()) >= 1 and f"{int(data.pareto.on_front.sum())} of {len(data.pareto)}" in html


def test_statistics_section_gives_intervals_and_flags_noise(tmp_path: Path) -> None:
    html, _ = _html(tmp_path, configs=2, items=True)
    assert "Method effect, family held fixed (points)" in html
    data = load(str(tmp_path / "s"))
    assert {"safe rate", "BBQ accuracy", "bias ambig"} <= set(data.changes.metric)  # the factory has no look-alike items
    noisy = re.search(r"— (\d+) of (\d+) method effects are", html)
    assert noisy and int(noisy.group(2)) == data.changes.metric.nunique() * data.changes.method.nunique()
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
    result = write_report(path, str(tmp_path / "o"), console=Console(record=True, width=200))
    html = result.html.read_text()
    section = html.split("Seeds: mean and spread per configuration")[1].split("<h2>")[0]
    assert "<td>2</td>" in section and "safe" in section.split("smaller than seed spread")[-1]
