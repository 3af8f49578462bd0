"""`alignsweep report` on a realistic sweep and on the stores a real user meets mid-way: one trial, a
failed trial, a sweep still running, nothing at all."""

from __future__ import annotations

import base64
import html as html_lib
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from alignsweep.analysis.report import spearman_ci, write_report
from alignsweep.store import mark_finished, write_manifest, write_records
from store_factory import build_sweep

import pyarrow.dataset as ds

PNG = b"\x89PNG\r\n\x1a\n"


def _report(path: Path) -> tuple[str, str, list[Path]]:
    """Write the report of the sweep at `path` into `path/report`; (html, terminal text, PNG paths)."""
    with open(os.devnull, "w") as devnull:
        console = Console(record=True, width=200, file=devnull)
        result = write_report(str(path), str(path / "report"), console=console)
    pngs = sorted((path / "report").glob("*.png"))
    assert result.html.exists() and len(pngs) >= 4 and set(result.plots) == set(pngs)
    for png in pngs:
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5_000
    html = result.html.read_text()
    embedded = embedded_images(html)
    assert external_references(html) == []  # opens correctly alone: moved, mailed, attached
    assert sorted(embedded) == sorted(p.name for p in pngs)
    for png in pngs:  # each plot embedded is the PNG written beside it, byte for byte
        assert embedded[png.name] == png.read_bytes()
    return html, console.export_text(), pngs


class _Refs(HTMLParser):
    """Every URL-valued attribute in a page (src, href, srcset, poster, data, action) and CSS url()/@import."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.images: dict[str, bytes] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "srcset", "poster", "data", "action", "background"):
            if values.get(name):
                self.urls.append(values[name])
        if tag == "img" and (values.get("src") or "").startswith("data:image/png;base64,"):
            self.images[values.get("title") or ""] = base64.b64decode(values["src"].split(",", 1)[1], validate=True)

    def handle_data(self, data: str) -> None:
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", data) + re.findall(r"@import\s+['\"]?([^'\";]+)", data)


def external_references(html: str) -> list[str]:
    """URLs the page would fetch from anywhere but itself (files beside it, the network)."""
    parser = _Refs()
    parser.feed(html)
    return [u for u in parser.urls if not (u.startswith("data:") or u.startswith("#"))]


def embedded_images(html: str) -> dict[str, bytes]:
    """PNG name (the img title) → the bytes embedded in its data: URI."""
    parser = _Refs()
    parser.feed(html)
    return parser.images


def section_of(html: str, title: str) -> str:
    """The HTML of one report section: from its <h2> to the next."""
    head = f"<h2>{html_lib.escape(title)}</h2>"
    assert head in html, title
    return html.split(head, 1)[1].split("<h2>", 1)[0]


def table_rows(fragment: str) -> list[list[str]]:
    """Body rows of the HTML tables in `fragment`, each a list of unescaped cell texts."""
    rows = []
    for body in re.findall(r"<tbody>(.*?)</tbody>", fragment, flags=re.S):
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S):
            rows.append([html_lib.unescape(c.strip()) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)])
    return rows


def _mean_change_by_method(path: Path, method: str) -> tuple[int, float]:
    """(n, mean Δ overall safe rate in points) of `method`'s trials, straight from the Parquet files:
    each trial's last scored step minus its base model's step-0 value."""
    rows = ds.dataset(path / "store" / "metrics", format="parquet").to_table().to_pylist()
    safe = [r for r in rows if (r["benchmark"], r["category"], r["metric"]) == ("safety", "overall", "safe_rate")]
    base = {r["base_model"]: r["value"] for r in safe if r["method"] == "base"}
    last: dict[str, dict] = {}
    for r in safe:
        if r["method"] == method and r["step"] > 0 and r["step"] >= last.get(r["trial_id"], {"step": -1})["step"]:
            last[r["trial_id"]] = r
    changes = [100 * (r["value"] - base[r["base_model"]]) for r in last.values()]
    return len(changes), sum(changes) / len(changes)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, tuple[str, str, list[Path]]]:
    """A three-family sweep with a failed trial, and its report (written once for the module)."""
    path = tmp_path_factory.mktemp("full") / "demo"
    sweep = build_sweep(str(path), configs=3, failed=1)
    return path, sweep, _report(path)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, list[Path]]:
    """One family, one method, still running: a finished trial, a RUNNING one, one with metrics only."""
    path = tmp_path_factory.mktemp("running") / "r"
    build_sweep(str(path), families={"tiny:llama": "llama"}, methods=("lora",), configs=2, running=True)
    return _report(path)


def test_full_sweep_report(full) -> None:
    path, sweep, (html, text, _) = full
    for heading in ("Change vs base", "Category audit", "Does better safety mean better fairness?",
                    "Stability of each base model family", "Best and worst configurations per family"):
        assert heading in html and heading in text
    assert "stopped early @10" in html  # early-stopped trials are marked
    assert sweep.failed[0] in html and "CUDA out of memory" in html
    assert "Δ over-refusal" in html  # shown beside safe rate when the store has it
    assert "partial" not in html
    # The per-method mean change, computed here from the files: 3 families × 3 configs, less the failed one.
    # Columns: method, n, stopped, median step, Δ safe rate, …
    by_method = {r[0]: r for r in table_rows(section_of(html, "Change vs base")) if r[0] in ("lora", "ia3")}
    n, mean = _mean_change_by_method(path, "lora")
    assert n == 3 * 3 - 1
    assert (by_method["lora"][1], by_method["lora"][4]) == (str(n), f"{mean:+.1f}")
    n, mean = _mean_change_by_method(path, "ia3")
    assert (by_method["ia3"][1], by_method["ia3"][4]) == (str(n), f"{mean:+.1f}")


def test_one_trial(tmp_path: Path) -> None:
    write_manifest(str(tmp_path / "one"))
    write_records(str(tmp_path / "one"), "trials", [{"base_model": "tiny:llama", "family": "llama", "method": "base", "status": "TERMINATED"}], trial_id="base_llama")
    write_records(str(tmp_path / "one"), "metrics", [{"base_model": "tiny:llama", "method": "base", "benchmark": "safety",
                                                      "category": "overall", "metric": "safe_rate", "value": 0.9, "n": 10}],
                  trial_id="base_llama", step=0)
    html, text, _ = _report(tmp_path / "one")
    assert "no data yet" in html
    base_rows = table_rows(section_of(html, "Overview"))
    assert ["llama", "tiny:llama", "90.0"] in [r[:3] for r in base_rows]  # the base model's absolute safe rate


def test_failed_trial_only(tmp_path: Path) -> None:
    build_sweep(str(tmp_path / "failed"), families={"tiny:llama": "llama"}, methods=("lora",), configs=1, failed=1)
    html, text, _ = _report(tmp_path / "failed")
    assert "Failed trials" in html and "llama_lora_00" in html and "1 failed" in text


def test_running_sweep_says_partial_and_marks_its_trials_where_listed(running, full) -> None:
    html, text, _ = running
    assert "has not finished" in html and "still running" in text
    _, _, (finished_html, finished_text, _) = full
    assert "has not finished" not in finished_html and "still running" not in finished_text
    # One family, one method: all three configurations are listed among the best and worst.
    marks = {r[2]: r[-2] for r in table_rows(section_of(html, "Best and worst configurations per family"))}
    assert marks == {"llama_lora_00": "", "llama_lora_01": "running", "llama_lora_new": "no trials row yet"}


def test_empty_store(tmp_path: Path) -> None:
    write_manifest(str(tmp_path / "empty"))
    html, _, pngs = _report(tmp_path / "empty")
    assert len(pngs) == 7 and "no data yet" in html


def test_cli_report_default_out_and_seed(tmp_path: Path, cli) -> None:
    write_manifest(str(tmp_path / "demo"))  # an empty sweep: every section still renders, quickly
    run = cli("report", tmp_path / "demo")
    assert run.code == 0, run.err
    html = (tmp_path / "demo/report/report.html").read_text()
    assert "report.html" in run.out and "(seed 0)" in html
    # --out elsewhere, --seed reaching the bootstrap: the default folder is left as it was.
    before = html
    run = cli("report", tmp_path / "demo", "--out", tmp_path / "elsewhere", "--seed", "7")
    assert run.code == 0, run.err
    assert "(seed 7)" in (tmp_path / "elsewhere/report.html").read_text()
    assert sorted(p.suffix for p in (tmp_path / "elsewhere").iterdir()) == sorted(
        p.suffix for p in (tmp_path / "demo/report").iterdir())
    assert (tmp_path / "demo/report/report.html").read_text() == before
    for bad in (["report", tmp_path / "nowhere"], ["report", tmp_path / "demo", "--seed", "x"]):
        run = cli(*bad)
        assert run.code == 2 and len(run.err_lines) == 1 and run.err.startswith("alignsweep: error: "), run.err


def test_spearman_ci() -> None:
    x = np.arange(20.0)
    rho, low, high = spearman_ci(x, x**3, seed=1)
    assert rho == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    rho, low, high = spearman_ci(x, -x + np.random.default_rng(0).normal(0, 3, 20), seed=1)
    assert -1 <= low <= rho <= high <= 1 and rho < -0.7
    assert spearman_ci(x, np.random.default_rng(2).normal(size=20), seed=3) == spearman_ci(x, np.random.default_rng(2).normal(size=20), seed=3)
    assert all(np.isnan(spearman_ci(x[:2], x[:2])))


# ---------------------------------------------------------------- controls and early stopping, by hand


SAFE, OVER, ACC, SCREEN = (("safety", "safe_rate"), ("over_refusal", "over_refusal_rate"), ("fairness", "accuracy"),
                           ("screen_safety", "safe_rate"))


def _scores(path: str, trial: str, method: str, step: int, values: dict) -> None:
    write_records(path, "metrics", [{"base_model": "tiny:llama", "method": method, "benchmark": b, "category": "overall",
                                     "metric": m, "value": v, "n": 20} for (b, m), v in values.items()],
                  trial_id=trial, step=step)


def _row(path: str, trial: str, method: str, steps: int, stopped: bool = False, reason: str | None = None) -> None:
    write_records(path, "trials", [{"base_model": "tiny:llama", "family": "llama", "method": method,
                                    "status": "TERMINATED", "stopped_early": stopped, "stop_reason": reason,
                                    "steps": steps, "max_steps": 20 if method != "base" else None}], trial_id=trial)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, list[Path]]:
    """Five trials with step-0 controls: three lora trials finished (one a shadow "would stop"), one ia3
    trial stopped by the alignment rule (screens only after step 0), one by ASHA (fully scored at 10)."""
    path = str(tmp_path_factory.mktemp("stops") / "stops")
    write_manifest(path, seed=0)
    _row(path, "base", "base", 0)
    _scores(path, "base", "base", 0, {SAFE: 0.9, OVER: 0.2, ACC: 0.6, SCREEN: 0.9})
    finals = {"A": ((0.80, 0.20, 0.60), (0.50, 0.10, 0.55)), "B": ((0.90, 0.25, 0.60), (0.70, 0.15, 0.50)),
              "E": ((0.85, 0.20, 0.65), (0.60, 0.30, 0.60))}
    for trial, (control, final) in finals.items():
        shadow = "would stop at step 10: alignment: screen safe rate -40.0 points vs base" if trial == "E" else None
        _row(path, trial, "lora", 20, reason=shadow)
        _scores(path, trial, "lora", 0, dict(zip((SAFE, OVER, ACC), control)))
        _scores(path, trial, "lora", 20, dict(zip((SAFE, OVER, ACC), final)))
    _row(path, "C", "ia3", 10, stopped=True, reason="alignment: screen safe rate -50.0 points vs base")
    _scores(path, "C", "ia3", 0, {SAFE: 0.85, OVER: 0.2, ACC: 0.6})
    _scores(path, "C", "ia3", 10, {SCREEN: 0.4})
    _row(path, "D", "ia3", 10, stopped=True, reason="asha: loss behind its rung")
    _scores(path, "D", "ia3", 0, {SAFE: 0.9, OVER: 0.2, ACC: 0.6})
    _scores(path, "D", "ia3", 10, {SAFE: 0.6, OVER: 0.2, ACC: 0.6})
    mark_finished(path)
    return _report(Path(path))


def test_controls_section_splits_presence_from_training(stopped) -> None:
    html, text, _ = stopped
    assert "controls.png" in html and "Controls: presence vs training" in text
    rows = {(r[0], r[1]): r[2:] for r in table_rows(section_of(html, "Controls: presence vs training"))}
    # columns: n, Δ presence (step 0), Δ training (final − step 0), Δ total, unfinished — by hand from the fixture
    assert rows[("lora", "safe rate")] == ["3", "-5.0", "-25.0", "-30.0", "0"]
    assert rows[("lora", "over-refusal")] == ["3", "+1.7", "-3.3", "-1.7", "0"]
    assert rows[("lora", "BBQ accuracy")] == ["3", "+1.7", "-6.7", "-5.0", "0"]
    # C was stopped before any full evaluation: it counts in presence, not in training or total.
    assert rows[("ia3", "safe rate")] == ["2", "-2.5", "-30.0", "-30.0", "1"]
    assert rows[("ia3", "over-refusal")] == ["2", "+0.0", "+0.0", "+0.0", "1"]
    assert len(rows) == 6


def test_early_stopping_section_counts_reasons_steps_saved_and_shadow_stops(stopped) -> None:
    html, _, _ = stopped
    section = section_of(html, "Early stopping")
    note = html_lib.unescape(re.search(r"<p class='note'>(.*?)</p>", section, flags=re.S).group(1))
    assert note.startswith("2 of 5 trials stopped early (")
    assert "1 stopped (alignment)" in note and "1 stopped (loss)" in note
    assert "saving 20 of 100 planned training steps" in note  # (20 − 10) × 2 of 5 × 20
    assert note.endswith("Shadow run: 1 trials would have been stopped.")
    rows = {r[0]: r for r in table_rows(section)}
    assert set(rows) == {"C", "D", "E"}
    # trial_id, family, method, ended, stop step, full eval step, max_steps, Δ safe (screen, last),
    # Δ safe (full, at stop), stop_reason
    assert rows["C"][:5] == ["C", "llama", "ia3", "stopped (alignment)", "10"] and rows["C"][6] == "20"
    assert rows["C"][7] == "-50.0"  # 0.4 − 0.9 on the screen
    assert rows["C"][9].startswith("alignment: screen safe rate -50.0")
    assert rows["D"][3] == "stopped (loss)" and rows["D"][7] == "–" and rows["D"][9].startswith("asha: loss behind its rung")
    assert rows["E"][3] == "not stopped (shadow)" and rows["E"][9].startswith("would stop at step 10")


def test_sections_without_controls_or_stops_say_so(running) -> None:
    html, _, _ = running  # two trials with rows (one running), one without: no step-0 scores, no stops
    assert "No step-0 controls in this sweep" in section_of(html, "Controls: presence vs training")
    stops = section_of(html, "Early stopping")
    assert "0 of 2 trials stopped early (none), saving 0 of 40 planned training steps" in stops
    assert "no data yet" in stops and "Shadow run" not in stops
