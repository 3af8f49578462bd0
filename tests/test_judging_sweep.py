"""End to end: a tiny sweep checks its judge against the bundled labels at start, stores votes and
coherence with every hazard item, and its report shows the judge's agreement and coherent-only safe rates."""

from __future__ import annotations

from pathlib import Path

import pytest

import alignsweep
from alignsweep.engine.sweep import run_sweep
from alignsweep.spec.config import validate_spec


@pytest.mark.slow
def test_sweep_stores_judge_check_votes_coherence_and_reports_them(ray_local: None, tmp_path: Path) -> None:
    from alignsweep.analysis.report import write_report

    spec = validate_spec({
        "name": "judging", "seed": 0, "models": ["tiny:llama"], "methods": {"lora": {"r": [4]}},
        "training": {"max_steps": 6, "eval_interval": 6, "batch_size": 4, "max_examples": 32,
                     "max_seq_length": 64, "learning_rates": [3e-2]},
        "scheduler": {"name": "none"},
        "evaluation": {"safety": {"limit": 2, "max_new_tokens": 16,
                                  "judges": [{"name": "refusal"}, {"name": "refusal", "phrases": ["sorry"]}]},
                       "over_refusal": {"limit": 1}, "fairness": {"limit": 2}, "utility": {"limit": 2}},
    })
    outcome = run_sweep(spec, results=str(tmp_path))
    assert outcome.errors == 0
    con = alignsweep.open(outcome.sweep_dir)
    judges = {r[0] for r in con.sql("SELECT DISTINCT judge FROM judge_checks WHERE trial_id = 'judge-check/safety'").fetchall()}
    assert judges == {"ensemble[any_unsafe](refusal+refusal#2)", "refusal", "refusal#2"}
    items = con.sql("""SELECT trial_id, len(judge_verdicts) AS votes, coherence, coherent FROM safety_items
                       WHERE benchmark = 'safety'""").df()
    assert set(items.votes) == {2} and items.coherence.between(0, 1).all() and items.coherent.notna().all()
    metrics = {r[0] for r in con.sql("SELECT DISTINCT metric FROM metrics WHERE benchmark = 'safety'").fetchall()}
    assert {"safe_rate", "safe_rate_coherent", "incoherent_rate", "judge_disagreement"} <= metrics
    incoherent = con.sql("""SELECT trial_id, step, avg((NOT coherent)::DOUBLE) FROM safety_items
                            WHERE benchmark = 'safety' GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
    stored = con.sql("""SELECT trial_id, step, value FROM metrics WHERE metric = 'incoherent_rate'
                        AND category = 'overall' AND benchmark = 'safety' ORDER BY 1, 2""").fetchall()
    assert [r[:2] for r in stored] == [r[:2] for r in incoherent] and len(stored) >= 3  # base, control, step 6
    assert [r[2] for r in stored] == pytest.approx([r[2] for r in incoherent])

    write_report(outcome.sweep_dir)
    html = (Path(outcome.sweep_dir) / "report" / "report.html").read_text()
    assert "Judge and coherence" in html and "on 77 labelled responses (bundled)" in html
    assert "safe, coherent only %" in html and "incoherent %" in html and "judges disagree %" in html
    assert html.index("<h2>Overview") < html.index("<h2>Judge and coherence") < html.index("<h2>Change vs base")
    # every section with a safe-rate column carries the judge's agreement beside it
    change = html.split("<h2>Change vs base</h2>", 1)[1].split("<h2>", 1)[0]
    assert "Safe rates here are judge verdicts (" in change and "labelled responses (bundled)" in change
    from alignsweep.analysis.report.data import load
    from alignsweep.analysis.report.markdown import markdown_summary

    md = markdown_summary(load(outcome.sweep_dir))
    assert "**Judge vs human labels**: ensemble[any_unsafe](refusal+refusal#2): κ " in md
    assert "| method | trials | incoherent % | safe % | safe, coherent only % | judges disagree % |" in md
