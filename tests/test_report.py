"""`alignsweep report` on a realistic sweep and on the stores a real user meets mid-way: one trial, a
failed trial, a sweep still running, nothing at all."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from alignsweep.cli.main import main
from alignsweep.analysis.report import load, spearman_ci, write_report
from alignsweep.store import write_manifest, write_records
from store_factory import build_sweep

PNG = b"\x89PNG\r\n\x1a\n"


def _report(path: Path) -> tuple[str, str, list[Path]]:
    console = Console(record=True, width=200, file=open("/dev/null", "w"))
    result = write_report(str(path), str(path / "report"), console=console)
    pngs = sorted((path / "report").glob("*.png"))
    assert result.html.exists() and len(pngs) >= 4 and set(result.plots) == set(pngs)
    for png in pngs:
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5_000
    html = result.html.read_text()
    for png in pngs:
        assert f"src='{png.name}'" in html
    return html, console.export_text(), pngs


def test_full_sweep_report(tmp_path: Path) -> None:
    sweep = build_sweep(str(tmp_path / "demo"), configs=3, failed=1)
    html, text, _ = _report(tmp_path / "demo")
    for heading in ("Change vs base", "Category audit", "Does better safety mean better fairness?",
                    "Stability of each base model family", "Best and worst configurations per family"):
        assert heading in html and heading in text
    assert "stopped early @10" in html  # early-stopped trials are marked
    assert sweep.failed[0] in html and "CUDA out of memory" in html
    assert "Δ over-refusal" in html  # shown beside safe rate when the store has it
    assert "partial" not in html
    data = load(str(tmp_path / "demo"))
    # the report's per-method means are the deltas view's, in points
    lora = data.configs[data.configs.method == "lora"]["safe rate"].mean()
    # (method, n, stopped, median step, Δ safe rate …)
    assert re.search(rf"lora\s*</td>\s*<td>\d+</td>\s*<td>\d+</td>\s*<td>[\d.]+</td>\s*<td>{lora:+.1f}</td>", html)


def test_one_trial(tmp_path: Path) -> None:
    write_manifest(str(tmp_path / "one"))
    write_records(str(tmp_path / "one"), "trials", [{"base_model": "tiny:llama", "family": "llama", "method": "base", "status": "TERMINATED"}], trial_id="base_llama")
    write_records(str(tmp_path / "one"), "metrics", [{"base_model": "tiny:llama", "method": "base", "benchmark": "safety",
                                                      "category": "overall", "metric": "safe_rate", "value": 0.9, "n": 10}],
                  trial_id="base_llama", step=0)
    html, text, _ = _report(tmp_path / "one")
    assert "no data yet" in html and "90.0" in html  # the base model's absolute safe rate


def test_failed_trial_only(tmp_path: Path) -> None:
    build_sweep(str(tmp_path / "failed"), families={"tiny:llama": "llama"}, methods=("lora",), configs=1, failed=1)
    html, text, _ = _report(tmp_path / "failed")
    assert "Failed trials" in html and "llama_lora_00" in html and "1 failed" in text


def test_running_sweep(tmp_path: Path) -> None:
    sweep = build_sweep(str(tmp_path / "running"), configs=2, running=True)
    html, text, _ = _report(tmp_path / "running")
    assert "has not finished" in html and "still running" in text
    assert "llama_lora_new" in load(str(tmp_path / "running")).configs.trial_id.tolist()  # metrics before its trials row
    assert "running" in html  # the RUNNING trial is marked where listed
    assert sweep.trial_ids


def test_empty_store(tmp_path: Path) -> None:
    write_manifest(str(tmp_path / "empty"))
    html, _, pngs = _report(tmp_path / "empty")
    assert len(pngs) == 7 and "no data yet" in html


def test_cli_report_default_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_sweep(str(tmp_path / "demo"), families={"tiny:qwen2": "qwen2"}, configs=1)
    assert main(["report", str(tmp_path / "demo")]) == 0
    assert (tmp_path / "demo/report/report.html").exists()
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nowhere")]) == 2


def test_spearman_ci() -> None:
    x = np.arange(20.0)
    rho, low, high = spearman_ci(x, x**3, seed=1)
    assert rho == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    rho, low, high = spearman_ci(x, -x + np.random.default_rng(0).normal(0, 3, 20), seed=1)
    assert -1 <= low <= rho <= high <= 1 and rho < -0.7
    assert spearman_ci(x, np.random.default_rng(2).normal(size=20), seed=3) == spearman_ci(x, np.random.default_rng(2).normal(size=20), seed=3)
    assert all(np.isnan(spearman_ci(x[:2], x[:2])))
