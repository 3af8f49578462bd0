"""The README's results recipes run as written: every `alignsweep query` line and the "Reading results"
Python block, on a sweep laid out where the README puts it (`results/demo`). A recipe that drifts from
the views (a renamed column, a view that no longer exists) fails here, not in a user's terminal."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from store_factory import build_sweep

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def demo_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    build_sweep(str(root / "results" / "demo"), configs=2)
    return root


def _query_lines() -> list[list[str]]:
    """Each README line running `alignsweep query results/demo …`, as argv (a trailing # comment dropped)."""
    return [shlex.split(line, comments=True)[1:] for line in map(str.strip, README.read_text().splitlines())
            if line.startswith("alignsweep query results/demo ")]


def test_readme_query_lines_run(demo_cwd: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo_cwd)
    queries = _query_lines()
    assert len(queries) >= 2  # the "Using it" example and the "Reading results" one
    for args in queries:
        run = cli(*args)
        assert run.code == 0, (args, run.err)
        assert any(m in run.out for m in ("lora", "ia3")), run.out  # a row per method, not an empty result


def test_readme_reading_results_python_block_runs(demo_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = README.read_text().split("## Reading results", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    monkeypatch.chdir(demo_cwd)
    # Each expression statement's value is kept, so the recipes are checked for content, not only for running.
    values: list[object] = []
    namespace: dict[str, object] = {"_keep": values.append}
    lines = [f"_keep({line})" if line.startswith("con.sql(") else line for line in block.splitlines()]
    exec(compile("\n".join(lines), str(README), "exec"), namespace)
    pivot, worst = values
    assert isinstance(pivot, pd.DataFrame) and {"lora", "ia3"} <= set(pivot.columns) and len(pivot) == 3  # 3 families
    assert pivot.notna().all().all()
    # polars: one row per fine-tuned trial, its worst hazard category
    assert worst.height == worst["trial_id"].n_unique() > 0 and (worst["category"] != "overall").all()
