"""Trend across checkpoints: the best checkpoint, significant steps, the page."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fixtures_results import make_results

from graders.paired import reaggregate
from reports.compare import build_trend, format_trend_table, line_chart, write_trend


def checkpoint_run(base: dict[str, Any], epoch: int, shift: float) -> dict[str, Any]:
    """The base model's answers with every item score moved by ``shift``, saved as epoch N."""
    run = copy.deepcopy(base)
    for item in run["items"]:
        item["score"] = min(1.0, max(0.0, item["score"] + shift))
    grade, scores = reaggregate(run)
    run["grade"] = round(grade, 2)
    for name, score in scores.items():
        run["categories"][name]["score"] = round(score, 2)
    run["meta"]["checkpoint"] = f"checkpoints/epoch{epoch}.pt"
    run["meta"]["training"]["epoch"] = epoch
    return run


def write_series(root: Path, base: dict[str, Any], shifts: list[float]) -> list[Path]:
    dirs = []
    for epoch, shift in enumerate(shifts, start=1):
        directory = root / f"epoch{epoch}"
        directory.mkdir(parents=True)
        (directory / "results.json").write_text(
            json.dumps(checkpoint_run(base, epoch, shift)), encoding="utf-8"
        )
        dirs.append(directory)
    return dirs


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    # Mid-range scores so shifts up and down are not swallowed by clipping at 0 and 1.
    return make_results(seed=3, n_per_category=20)


def test_trend_page_marks_the_best_checkpoint(tmp_path, base):
    # Rises to epoch 3, then overfits.
    dirs = write_series(tmp_path / "runs", base, [-0.20, -0.05, 0.0, -0.12])
    page_path = write_trend(dirs, tmp_path / "trend")
    assert page_path == tmp_path / "trend" / "trend.html"
    page = page_path.read_text(encoding="utf-8")
    assert 'data-best="epoch3"' in page
    best_rows = re.findall(r'<tr class="best">\s*<td><strong>([^<]+)</strong>', page)
    assert best_rows == ["epoch3"]
    assert page.count("★ best") == 2  # the chart label and the table tag
    summary = json.loads((tmp_path / "trend" / "trend.json").read_text(encoding="utf-8"))
    assert summary["best"]["label"] == "epoch3"
    assert [p["label"] for p in summary["points"]] == ["epoch1", "epoch2", "epoch3", "epoch4"]
    # Inline SVG charts, no script.
    assert page.count('<svg class="chart"') == 2
    assert "<script" not in page


def test_steps_are_tested_pairwise(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [-0.20, -0.05, -0.05, 0.0])
    trend = build_trend(dirs)
    big, none, small = trend.steps
    assert big.significant and big.grade is not None and big.grade.diff > 2
    # Identical answers: no change at all.
    assert none.grade is not None and none.grade.diff == 0 and not none.significant
    assert small.grade is not None and small.grade.diff > 0
    table = format_trend_table(trend)
    assert "epoch4" in table.splitlines()[-1] and table.splitlines()[-1].endswith("<- best")
    assert "+0.00 (p=1.000, not significant)" in table
    # The category changes of the big step are all significant (every item moved).
    assert {c["key"] for c in big.category_changes} == set(base["categories"])


def test_ties_go_to_the_earliest_checkpoint(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [0.0, 0.0, -0.1])
    trend = build_trend(dirs)
    assert trend.best == 0
    assert trend.runner_up == 1
    assert trend.best_vs_runner_up is not None and trend.best_vs_runner_up.p_value == 1.0


def test_changed_suites_do_not_break_the_trend(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [0.0, 0.05])
    results = json.loads((dirs[1] / "results.json").read_text(encoding="utf-8"))
    results["meta"]["suites"]["factual"]["sha256"] = "a" * 64
    (dirs[1] / "results.json").write_text(json.dumps(results), encoding="utf-8")
    trend = build_trend(dirs)
    assert trend.steps[0].grade is None
    assert "suites differ: factual" in trend.steps[0].problem
    page = write_trend(dirs, tmp_path / "trend").read_text(encoding="utf-8")
    assert "not compared: suites differ: factual" in page


def test_single_checkpoint(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [0.0])
    page = write_trend(dirs, tmp_path / "trend").read_text(encoding="utf-8")
    assert 'data-best="epoch1"' in page
    assert "A single checkpoint: nothing to compare." in page


def test_line_chart_geometry():
    chart = line_chart(
        ["a", "b", "c"],
        [{"name": "g", "color": "#000", "values": [10.0, 15.0, None], "cis": [[9.0, 11.0], None, None]}],
        (5.0, 15.0),
        best=1,
    )
    dots = chart["series"][0]["dots"]
    assert len(dots) == 2  # None values are not drawn
    assert dots[1]["y"] == chart["top"]  # the top of the range sits on the top edge
    assert dots[0]["y"] == pytest.approx((chart["top"] + chart["bottom"]) / 2, abs=0.1)
    assert dots[0]["y_low"] > dots[0]["y"] > dots[0]["y_high"]  # SVG y grows downwards
    assert chart["best"]["x"] == dots[1]["x"] and chart["best"]["label"] == "b"
    assert chart["series"][0]["path"].startswith("M") and chart["series"][0]["path"].count("L") == 1
