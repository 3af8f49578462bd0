"""Issue 13: the report answers the study's question for every (family, method) cell.

Stores from the factory look like the demo after the scheduler fix: 4 families × 4 methods, every
fourth trial stopped (alternately by loss and by alignment) and fully evaluated where it stopped,
screens and held-out loss at every interval. Expected numbers are computed here from what the factory
says it wrote (`Sweep.full`, `.screen`, `.heldout`, `.base`), never from the report's own helpers.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from rich.console import Console
from store_factory import FAMILIES_4, METHODS, build_sweep

from alignsweep.analysis.report import load, write_report
from alignsweep.analysis.report.sections import build_sections
from alignsweep.analysis.report.vocab import category_label
from alignsweep.store import write_manifest, write_records

DEMO = {"families": FAMILIES_4, "configs": 2, "steps": (10, 20, 30), "stop_at": 20, "failed": 1}


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory):
    """Demo-like: screens in between, a full evaluation where each trial ended; its report.html."""
    path = tmp_path_factory.mktemp("cells") / "screened"
    sweep = build_sweep(str(path), screen=True, **DEMO)
    result = write_report(str(path), str(path / "report"), console=Console(width=200, quiet=True))
    return sweep, {s.title: s for s in build_sections(load(str(path)), 0)}, result.html.read_text()


def _sections(path: Path) -> dict:
    return {s.title: s for s in build_sections(load(str(path)), 0)}


def _table(section, prefix: str):
    return next(t for caption, t in section.tables if caption.startswith(prefix))


def _mean_change(sweep, trials, step_of, key) -> float:
    """Hand-computed mean change in points of `key` = (benchmark, category, metric)."""
    values = sweep.screen if key[0].startswith("screen_") else sweep.full
    return statistics.mean(100 * (values[(t, step_of(t))][key] - sweep.base[sweep.base_model[t]][key]) for t in trials)


SAFE = ("safety", "overall", "safe_rate")
OVER = ("over_refusal", "overall", "over_refusal_rate")
BIAS = ("fairness", "overall", "bias_ambig")


def test_status_table_counts_each_way_a_trial_ended(screened, tmp_path: Path) -> None:
    sweep, sections, html = screened
    # By the factory's plan: per family lora_00 lora_01 ia3_00 ia3_01* prompt_tuning×2 p_tuning_00 p_tuning_01*,
    # * = every fourth trial stopped, alternately by loss (ia3) and alignment (p_tuning); the first trial failed.
    expected = {"lora": [8, 7, 0, 0, 1], "ia3": [8, 4, 4, 0, 0], "prompt_tuning": [8, 8, 0, 0, 0],
                "p_tuning": [8, 4, 0, 4, 0], "all": [32, 23, 4, 4, 1]}
    columns = ["trials", "finished", "stopped (loss)", "stopped (alignment)", "failed"]
    table = _table(sections["Overview"], "Trials by method and how they ended")
    assert list(table.columns) == ["method", *columns]
    assert {row[0]: list(row[1:]) for row in table.itertuples(index=False)} == expected
    assert sum(1 for e in sweep.ended.values() if e == "stopped_alignment") == 4  # the factory agrees
    status = html.split("Trials by method and how they ended")[1].split("</table>")[0]
    assert "TERMINATED" not in status and "<th></th>" not in status and "<th>method</th>" in status
    # An older store (no `ended` / `stop_step`): the same counts, derived from status, stopped_early, stop_reason.
    build_sweep(str(tmp_path / "old"), screen=True, legacy=True, **DEMO)
    old = _table(_sections(tmp_path / "old")["Overview"], "Trials by method and how they ended")
    assert old.equals(table)


def test_change_vs_base_uses_every_trials_last_full_evaluation(screened) -> None:
    sweep, sections, _ = screened
    table = _table(sections["Change vs base"], "By method").set_index("method")
    for method in METHODS:
        trials = [t for t in sweep.trial_ids if sweep.method[t] == method]  # failed ones are not in trial_ids
        row = table.loc[method]
        assert row["n"] == len(trials) and row["stopped"] == sum(sweep.ended[t].startswith("stopped") for t in trials)
        assert row["median step"] == f"{statistics.median(sweep.full_step[t] for t in trials):g}"
        assert row["Δ safe rate"] == pytest.approx(_mean_change(sweep, trials, sweep.full_step.get, SAFE))
        changes = {t: _mean_change(sweep, [t], sweep.full_step.get, SAFE) for t in trials}
        assert row["worst Δ safe"] == pytest.approx(min(changes.values()))  # safe rate: higher is better
        over = [_mean_change(sweep, [t], sweep.full_step.get, OVER) for t in trials]
        assert row["worst Δ over-ref"] == pytest.approx(max(over))  # over-refusal: lower is better
        # bias: closer to 0 is better, so the worst moved furthest from 0
        far = max(trials, key=lambda t: abs(sweep.full[(t, sweep.full_step[t])][BIAS]) - abs(sweep.base[sweep.base_model[t]][BIAS]))
        assert row["worst Δ bias amb"] == pytest.approx(_mean_change(sweep, [far], sweep.full_step.get, BIAS))
    assert table.loc["ia3", "median step"] == "25" and table.loc["ia3", "stopped"] == 4  # 4 stopped at 20, 4 finished at 30
    family = _table(sections["Change vs base"], "By family").set_index("family")
    assert set(family.index) == {"llama", "qwen2", "gemma", "mistral"} and (family["n"] > 0).all()


def test_like_for_like_picks_the_last_common_step_and_keeps_stopped_trials(screened, tmp_path: Path) -> None:
    sweep, sections, html = screened
    section = sections["Like for like: every trial at one common step"]
    # Stopped trials end at 20, finished ones at 30: 20 is the last step every trial reached. Only the 8
    # stopped trials were fully evaluated there, so the screen is compared, and labelled as such.
    assert "Step 20 is the last step all 31 trials reached" in section.text
    assert "only 8 of 31 trials" in section.text and "SCREEN" in section.text
    table = _table(section, "By method, at step 20 (screen)").set_index("method")
    for method in METHODS:
        trials = [t for t in sweep.trial_ids if sweep.method[t] == method]
        row = table.loc[method]
        assert row["n"] == len(trials) and row["stopped"] == sum(sweep.ended[t].startswith("stopped") for t in trials)
        expected = _mean_change(sweep, trials, lambda t: 20, ("screen_safety", "overall", "safe_rate"))
        assert row["Δ safe rate (screen)"] == pytest.approx(expected)
        assert row["held-out loss"] == pytest.approx(statistics.mean(sweep.heldout[(t, 20)] for t in trials))
    assert table.loc["p_tuning", "stopped"] == 4
    assert "By method, at step 20 (screen)" in html and "Δ safe rate (screen)" in html
    # Full evaluations at every interval: the same step, compared on full evaluations.
    full = build_sweep(str(tmp_path / "full"), **DEMO)
    section = _sections(tmp_path / "full")["Like for like: every trial at one common step"]
    assert "Every trial was fully evaluated at step 20" in section.text
    table = _table(section, "By method, at step 20").set_index("method")
    for method in METHODS:
        trials = [t for t in full.trial_ids if full.method[t] == method]
        assert table.loc[method, "Δ safe rate"] == pytest.approx(_mean_change(full, trials, lambda t: 20, SAFE))


def test_every_family_method_cell_is_listed_empty_ones_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "gaps"
    sweep = build_sweep(str(path), families=FAMILIES_4, configs=1, failed=1)  # llama_lora_00 fails
    for table in ("trials", "metrics"):  # gemma × ia3 never ran
        for f in (path / "store" / table).glob("gemma_ia3_00*"):
            f.unlink()
    section = _sections(path)["Every family × method cell"]
    table = _table(section, "Family × method")
    assert len(table) == 16 and set(zip(table.family, table.method)) == {(f, m) for f in FAMILIES_4.values() for m in METHODS}
    cell = table.set_index(["family", "method"])
    assert cell.loc[("gemma", "ia3"), "note"] == "no trials" and cell.loc[("gemma", "ia3"), "trials"] == 0
    assert cell.loc[("llama", "lora"), "note"] == "none evaluated (1 failed)" and cell.loc[("llama", "lora"), "n"] == 0
    assert "2 cells have no result" in section.text
    for family in ("qwen2", "mistral"):
        t = f"{family}_lora_00"
        assert cell.loc[(family, "lora"), "Δ safe rate"] == pytest.approx(sweep.change(t, 20, "safety", "safe_rate"))
        assert cell.loc[(family, "lora"), "Δ bias (ambiguous)"] == pytest.approx(sweep.change(t, 20, "fairness", "bias_ambig"))
        # p_tuning is every fourth trial here: stopped at step 10 and fully evaluated there
        p = cell.loc[(family, "p_tuning")]
        assert (p["n"], p["stopped"], p["median step"]) == (1, 1, "10")
        assert p["Δ over-refusal"] == pytest.approx(sweep.change(f"{family}_p_tuning_00", 10, "over_refusal", "over_refusal_rate"))
    # Issue 13's store: stopped trials without a final full evaluation leave their cells "none evaluated",
    # and the like-for-like view still compares them, on their screens.
    build_sweep(str(tmp_path / "old"), families=FAMILIES_4, configs=1, steps=(10, 20, 30), stop_at=20, screen=True, legacy=True)
    old = _sections(tmp_path / "old")
    cell = _table(old["Every family × method cell"], "Family × method").set_index(["family", "method"])
    assert cell.loc[("llama", "p_tuning"), "note"] == "none evaluated (1 stopped (loss))"
    assert cell.loc[("qwen2", "p_tuning"), "note"] == "none evaluated (1 stopped (alignment))"
    like = _table(old["Like for like: every trial at one common step"], "By method, at step 20 (screen)").set_index("method")
    assert (like.loc["p_tuning", "n"], like.loc["p_tuning", "stopped"]) == (4, 4)


def test_hazard_categories_carry_their_names(screened) -> None:
    _, sections, html = screened
    safety = _table(sections["Category audit"], "Δ safe rate by category")
    assert safety.category.tolist()[:2] == ["S1 Violent Crimes", "S2 Non-Violent Crimes"]
    assert safety.category.tolist()[-2:] == ["S10 Suicide & Self-Harm", "S11 Sexual Content"]
    assert "S1 Violent Crimes" in html and "S10 Suicide &amp; Self-Harm" in html
    # Llama Guard 3's codes are stored as taxonomy ids: its two extra hazards are named too.
    assert category_label("dfm") == "dfm Defamation" and category_label("cia") == "cia Code Interpreter Abuse"
    assert category_label("S5") == "S5 Specialized Advice" and category_label("Race_ethnicity") == "Race ethnicity"


def test_a_flat_pareto_axis_is_replaced(screened, tmp_path: Path) -> None:
    _, sections, _ = screened
    section = sections["Pareto front"]
    # task accuracy is 1.0 for every model and base: Δ 0 everywhere, so held-out loss is the utility axis
    ((_, draw),) = section.plots
    assert draw.keywords["pairs"] == [("d_safe_rate", "d_over_refusal"), ("d_safe_rate", "heldout_loss")]
    assert "Δ task accuracy is +0.0 for every trial, so the plot shows held-out loss in its place" in section.text
    assert "Δ task accuracy" not in _table(section, "On the front").columns
    # Where task accuracy does vary, it stays the utility axis.
    path = str(tmp_path / "varies")
    write_manifest(path, sweep="varies")
    for trial, method, safe, acc in (("base", "base", 0.9, 0.5), ("a", "lora", 0.8, 0.6), ("b", "ia3", 0.7, 0.4), ("c", "lora", 0.6, 0.7)):
        rows = [{"base_model": "tiny:llama", "method": method, "benchmark": b, "category": "overall", "metric": m, "value": v, "n": 10}
                for b, m, v in (("safety", "safe_rate", safe), ("utility", "task_accuracy", acc),
                                ("over_refusal", "over_refusal_rate", 0.0))]  # no model ever refuses a benign prompt
        write_records(path, "metrics", rows, trial_id=trial, step=0 if method == "base" else 10)
        write_records(path, "trials", [{"base_model": "tiny:llama", "family": "llama", "method": method}], trial_id=trial)
    sections = _sections(Path(path))
    ((_, draw),) = sections["Pareto front"].plots
    assert draw.keywords["pairs"][1] == ("d_safe_rate", "d_task_accuracy")
    # A flat over-refusal change: no scatter against it, and the caption says why.
    assert sections["Safety vs over-refusal"].plots == []
    assert "Δ over-refusal is +0.0 for every trial" in sections["Safety vs over-refusal"].text
