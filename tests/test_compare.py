"""bench.py compare: the table, compare.html, and refusing runs of different suites."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fixtures_results import make_results
from markupsafe import escape

from graders.gates import compare_runs, format_p
from graders.paired import reaggregate
from reports.compare import compare_context, compare_main, format_compare_table

INJECTED = "<script>alert('x')</script> Lyon"


def write_run(directory: Path, results: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return directory


def regressed(results: dict[str, Any]) -> dict[str, Any]:
    """Every factual answer replaced by a wrong one (score 0)."""
    new = copy.deepcopy(results)
    for item in new["items"]:
        if item["category"] == "factual":
            item["score"] = 0.0
            item["output"] = INJECTED
    grade, scores = reaggregate(new)
    new["grade"] = round(grade, 2)
    for name, score in scores.items():
        new["categories"][name]["score"] = round(score, 2)
    new["meta"]["checkpoint"] = "checkpoints/epoch7.pt"
    return new


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("runs")
    old = make_results(seed=0, n_per_category=20)
    new = regressed(old)
    return write_run(root / "epoch6", old), write_run(root / "epoch7", new), old, new


def test_compare_prints_table_and_writes_page(runs, tmp_path, capsys):
    dir_a, dir_b, old, new = runs
    assert compare_main([str(dir_a), str(dir_b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    grade_line = next(line for line in out.splitlines() if line.startswith("grade /20"))
    cells = grade_line.split()
    assert cells[2:5] == [f"{old['grade']:.2f}", f"{new['grade']:.2f}", f"{new['grade'] - old['grade']:+.2f}"]
    assert grade_line.endswith("significant") and "< 0.001" in grade_line
    factual_line = next(line for line in out.splitlines() if line.startswith("factual /100"))
    assert factual_line.split()[2:5] == [
        f"{old['categories']['factual']['score']:.1f}",
        "0.0",
        f"{-old['categories']['factual']['score']:+.1f}",
    ]
    conversation_line = next(line for line in out.splitlines() if line.startswith("conversation /100"))
    assert "+0.0" in conversation_line and conversation_line.endswith("within noise")
    assert "Most regressed (A -> B):" in out and "Most improved (A -> B):\n  (none)" in out

    page = (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")
    assert str(tmp_path / "cmp" / "compare.html") in out
    # Model output is escaped, never injected.
    assert "<script>alert" not in page
    assert str(escape(INJECTED)) in page
    # The worst item shows both answers side by side.
    worst = max(
        (it for it in old["items"] if it["category"] == "factual"), key=lambda it: (it["score"], it["id"])
    )
    block = page.split(f'id="item-{worst["id"]}"')[1].split('class="card pair"')[0]
    assert str(escape(worst["output"])) in block
    assert str(escape(INJECTED)) in block
    # Grade and factual rows are marked significant; conversation is not.
    assert '<tr class="significant" id="row-grade">' in page
    assert '<tr class="significant" id="row-factual">' in page
    assert '<tr class="" id="row-conversation">' in page


def test_compare_refuses_different_suites(runs, tmp_path, capsys):
    dir_a, _, old, _ = runs
    other = copy.deepcopy(old)
    other["meta"]["suites"]["factual"]["sha256"] = "0" * 64
    del other["meta"]["suites"]["robustness"]
    dir_c = write_run(tmp_path / "other", other)
    out_dir = tmp_path / "cmp"
    assert compare_main([str(dir_a), str(dir_c), "--out", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "the runs graded different suites: factual (sha256" in err
    assert "robustness (only in" in err
    assert "conversation" not in err
    assert "--shared-items-only" in err
    assert not out_dir.exists()

    assert compare_main([str(dir_a), str(dir_c), "--out", str(out_dir), "--shared-items-only"]) == 0
    page = (out_dir / "compare.html").read_text(encoding="utf-8")
    assert "The runs graded different suites" in page


def test_compare_with_unreadable_run(tmp_path, capsys):
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "a: no such run" in capsys.readouterr().err


def test_items_missing_from_one_run_are_left_out_and_reported(runs):
    dir_a, _, old, _ = runs
    limited = copy.deepcopy(old)
    limited["items"] = [it for it in limited["items"] if it["id"] not in {"factual-019", "factual-020"}]
    a, b, comparison = compare_runs(dir_a, limited)
    assert comparison.only_a == ["factual-019", "factual-020"]
    table = format_compare_table(a, b, comparison)
    assert "left out: 2 items only in A, 0 only in B" in table
    assert compare_context(a, b, comparison)["left_out"].startswith("left out: 2 items")


def test_identical_runs_show_no_change(runs):
    dir_a, _, _, _ = runs
    a, b, comparison = compare_runs(dir_a, dir_a)
    context = compare_context(a, b, comparison)
    assert all(row["d"].diff == 0 and row["d"].p_value == 1.0 for row in context["rows"])
    assert not any(row["significant"] for row in context["rows"])
    assert context["regressed"] == [] and context["improved"] == []


def test_p_values_show_enough_digits_to_be_on_the_right_side_of_alpha():
    assert format_p(0.04999, 0.05) == "0.04999"
    assert format_p(0.0500, 0.05) == "0.0500"
    assert format_p(0.209) == "0.209"
    assert format_p(0.125) == "0.125"
    assert format_p(0.00099) == "< 0.001"
    assert format_p(1.0) == "1.00"
    assert format_p(None) == "n/a"


def test_three_items_per_category_give_no_interval_and_say_so(tmp_path, capsys):
    # 2 / 2**3 = 0.25: no difference on 3 items can be significant, so no finite interval either.
    old = make_results(seed=0, n_per_category=3)
    new = regressed(old)
    a, b, comparison = compare_runs(write_run(tmp_path / "a", old), write_run(tmp_path / "b", new))
    factual = comparison.categories["factual"]
    assert factual.diff < -10 and factual.ci is None and factual.p_value == pytest.approx(0.25)
    table = format_compare_table(a, b, comparison)
    line = next(line for line in table.splitlines() if line.startswith("factual /100"))
    assert "(none)" in line and line.endswith("too few items to say")
    rows = {row["key"]: row for row in compare_context(a, b, comparison)["rows"]}
    assert rows["factual"]["verdict"] == "too few items to say" and not rows["factual"]["significant"]
    # Every row: an interval that excludes 0 goes with "significant", and only with it.
    for row in rows.values():
        d = row["d"]
        if d.ci is not None:
            assert (d.ci[0] > 0 or d.ci[1] < 0) == (row["verdict"] == "significant")
