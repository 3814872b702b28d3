"""Regression gates: real regressions fail with a useful message, noise passes."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from fixtures_results import make_results

from graders.gates import (
    assert_category_at_least,
    assert_grade_at_least,
    assert_no_regression,
    evaluate_regression,
    load_run,
)
from graders.paired import holm_adjust, reaggregate
from hessgpt.errors import HessError
from reports.compare import gate_main

WRONG = "Lyon is the capital of Germany."


def rescored(results: dict[str, Any], change) -> dict[str, Any]:
    """A copy where change(item) edits items in place; grade and category scores follow."""
    new = copy.deepcopy(results)
    for item in new["items"]:
        change(item)
    grade, scores = reaggregate(new)
    new["grade"] = round(grade, 2)
    for name, score in scores.items():
        new["categories"][name]["score"] = round(score, 2)
    return new


def wrong_factual(item: dict[str, Any]) -> None:
    if item["category"] == "factual":
        item["score"] = 0.0
        item["output"] = WRONG


def noisy_run(model: dict[str, Any], seed: int, noise: float = 0.15) -> dict[str, Any]:
    """Score noise: every item score moves by random noise around its true quality."""
    rnd = random.Random(seed)

    def resample(item: dict[str, Any]) -> None:
        item["score"] = min(1.0, max(0.0, item["score"] + rnd.gauss(0.0, noise)))

    run = rescored(model, resample)
    run["meta"]["seed"] = seed
    return run


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    return make_results(seed=0, n_per_category=20)


def test_constructed_regression_fails_naming_the_category(baseline):
    run = rescored(baseline, wrong_factual)
    with pytest.raises(AssertionError) as failure:
        assert_no_regression(run, baseline, max_drop=0.5, alpha=0.05)
    message = str(failure.value)
    first, *rest = message.splitlines()
    assert first.startswith("regression in grade, factual:")
    factual_line = next(line for line in rest if line.strip().startswith("factual:"))
    drop = 100 * sum(it["score"] for it in baseline["items"] if it["category"] == "factual") / 20
    assert f"drop {drop:.1f} > 5" in factual_line
    # The interval is at the level the check was tested at, so it excludes 0 as "significant" says.
    assert re.search(r"\d+(\.\d+)?% CI \d+\.\d to \d+\.\d of the drop", factual_line)
    assert "p < 0.001 vs its share of alpha" in factual_line and ": significant" in factual_line
    assert "20 of 20 items worse" in factual_line
    # No other category is named as failing.
    failing = [line.split(":")[0].strip() for line in rest if re.match(r"\s+\w+: .* drop ", line)]
    assert failing == ["grade", "factual"]
    # The five items that regressed most: the five best factual answers of the baseline.
    best_five = sorted(
        (it for it in baseline["items"] if it["category"] == "factual"),
        key=lambda it: (-it["score"], it["id"]),
    )[:5]
    listed = [line.split()[0] for line in message.split("items that regressed most")[1].splitlines()[1:]]
    assert listed == [it["id"] for it in best_five]
    assert json.dumps(WRONG) in message


@pytest.mark.parametrize("seeds", [(1, 2), (3, 4), (5, 6), (7, 8)])
def test_score_noise_passes(baseline, seeds):
    first, second = (noisy_run(baseline, s) for s in seeds)
    report = assert_no_regression(second, first, max_drop=0.5, alpha=0.05)
    assert report.passed
    assert report.message().startswith("no regression:")
    # The runs really differ item by item: the gate had something to look at.
    assert sum(1 for p in report.comparison.items if p.diff != 0) > 100


# ---------------------------------------------------------------- one model, two seeds, through bench.py

NOISE_SUITES = ["conversation", "explanations", "factual", "input_tasks"]  # the suites with references
NOT_SURE = "I am not sure."


@pytest.fixture(scope="module")
def sampled_model():
    """A stand-in for a model sampled at temperature > 0: for each item a fixed distribution over
    answers (the reference, half of it, or a shrug), drawn once; a run samples from it with its seed."""
    from benchmarks.suite import load_suites

    items = [item for suite in load_suites(names=NOISE_SUITES) for item in suite.items]
    quality = random.Random(0)
    model = {}
    for item in items:
        words = item.references[0].split()
        good = quality.uniform(0.5, 0.95)
        answers = [item.references[0], " ".join(words[: max(1, len(words) // 2)]), NOT_SURE]
        model[item.id] = (answers, [good, (1 - good) / 2, (1 - good) / 2])
    return model


def bench_responses(model, seed: int, folder: Path, broken: str | None = None) -> Path:
    """``bench.py --responses`` on answers sampled with ``seed``; ``broken``: that category answers NOT_SURE."""
    from benchmarks.cli import main

    answers = folder / f"answers-{seed}-{broken}.jsonl"
    with answers.open("w", encoding="utf-8") as fh:
        for item_id, (choices, weights) in model.items():
            output = random.Random(f"{seed}:{item_id}").choices(choices, weights)[0]  # seeded per item
            if broken and item_id.startswith(broken):
                output = NOT_SURE
            fh.write(json.dumps({"id": item_id, "output": output}) + "\n")
    out = folder / f"run-{seed}-{broken}"
    argv = ["--responses", str(answers), "--suite", ",".join(NOISE_SUITES), "--seed", str(seed), "--out", str(out)]
    assert main([*argv, "--quiet", "--no-progress"]) == 0
    return out


def test_two_seeds_of_the_same_model_pass_and_a_real_regression_fails(sampled_model, tmp_path, capsys):
    first = bench_responses(sampled_model, 1, tmp_path)
    second = bench_responses(sampled_model, 2, tmp_path)
    report = assert_no_regression(second, first, max_drop=0.5, alpha=0.05)
    # The seeds really changed answers, and scores moved both ways: noise, not a copy.
    assert report.comparison.grade is not None
    assert sum(1 for p in report.comparison.items if p.diff < 0) > 20
    assert sum(1 for p in report.comparison.items if p.diff > 0) > 20
    capsys.readouterr()
    assert gate_main(["--run", str(second), "--baseline", str(first)]) == 0
    assert capsys.readouterr().out.startswith("no regression:")

    broken = bench_responses(sampled_model, 2, tmp_path, broken="factual")
    with pytest.raises(AssertionError) as failure:
        assert_no_regression(broken, first, max_drop=0.5, alpha=0.05)
    first_line = str(failure.value).splitlines()[0]
    assert first_line.startswith("regression in grade, factual:")
    assert f'-> "{NOT_SURE}"' in str(failure.value)
    assert gate_main(["--run", str(broken), "--baseline", str(first)]) == 1


def test_large_drop_on_too_few_items_is_not_significant():
    # Five items can never give p < 0.05 with a sign-flip test (smallest p = 2/32).
    small = make_results(seed=0, n_per_category=5, suites=["factual", "conversation"])
    run = rescored(small, wrong_factual)
    report = assert_no_regression(run, small, max_drop=0.5, alpha=0.05)
    assert report.passed
    message = report.message()
    assert "large but not significant: factual:" in message
    assert "(too few changed items to say)" in message and "cannot go below 0.0625 with 5 changed items" in message
    # The user is told why, and how many changed items it would take.
    assert (
        "note: grade (5 of 10 items changed), factual (5 of 5 items changed): went down, but too few changed "
        "items for p to ever reach their share of alpha=0.05, so these checks could not fail; "
        "a check needs at least 6 changed items"
    ) in message


def test_small_categories_of_a_full_gate_are_flagged():
    # Seven items per category: p can reach 2/128 = 0.016, but not a category's share 0.05/14.
    base = make_results(seed=0, n_per_category=7)
    run = noisy_run(base, 1)
    report = evaluate_regression(run, base)
    notes = [n for n in report.notes if "too few changed items" in n]
    assert len(notes) == 1
    went_down = [c.difference.key for c in report.checks[1:] if c.difference.drop > 0]
    assert went_down and all(re.search(rf"\b{c} \(\d of 7 items changed\)", notes[0]) for c in went_down)
    # The grade is then tested at all of alpha, not at half of it.
    assert report.checks[0].difference.key == "grade" and report.checks[0].level == pytest.approx(0.05)
    assert evaluate_regression(noisy_run(baseline_of(20), 1), baseline_of(20)).notes == []


def baseline_of(n: int) -> dict[str, Any]:
    return make_results(seed=0, n_per_category=n)


def test_significant_but_small_drop_passes_then_fails_with_a_tighter_limit(baseline):
    def lose_two_points(item: dict[str, Any]) -> None:
        item["score"] = max(0.0, item["score"] - 0.02)

    run = rescored(baseline, lose_two_points)
    report = evaluate_regression(run, baseline, max_drop=0.5, alpha=0.05)
    grade_check = report.checks[0]
    assert grade_check.difference.key == "grade"
    assert grade_check.significant and not grade_check.too_large
    assert grade_check.difference.drop == pytest.approx(0.4, abs=0.01)
    assert report.passed
    with pytest.raises(AssertionError, match=r"^regression in grade:.*\n  grade: .* drop 0\.40 > 0\.3"):
        assert_no_regression(run, baseline, max_drop=0.3, alpha=0.05)


def test_category_limit_is_in_points_out_of_100(baseline):
    def factual_loses_eight(item: dict[str, Any]) -> None:
        if item["category"] == "factual":
            item["score"] = max(0.0, item["score"] - 0.08)

    run = rescored(baseline, factual_loses_eight)
    assert_no_regression(run, baseline, max_category_drop=10)
    with pytest.raises(AssertionError, match=r"regression in factual:"):
        assert_no_regression(run, baseline, max_category_drop=5)


def test_categories_argument_limits_the_checks(baseline):
    run = rescored(baseline, wrong_factual)
    # Listing categories limits the category checks; the grade is still gated.
    with pytest.raises(AssertionError, match=r"^regression in grade:"):
        assert_no_regression(run, baseline, categories=["conversation"])
    report = evaluate_regression(run, baseline, categories=["conversation"])
    assert [c.difference.key for c in report.checks] == ["grade", "conversation"]
    assert "or one of conversation drops by more than 5/100" in report.message()
    assert "alpha=0.05 shared by 2 checks (Holm-Tarone)" in report.message()
    report = assert_no_regression(run, baseline, max_drop=None, categories=[])
    assert report.checks == []
    with pytest.raises(HessError, match=r"categories: factul not in both runs"):
        assert_no_regression(run, baseline, categories=["factul"])


def test_without_holm_correction_more_checks_can_fail(baseline):
    report = evaluate_regression(rescored(baseline, wrong_factual), baseline, correction="none")
    # Each check that changed enough to ever reach alpha is tested at all of it.
    assert all(c.level == 0.05 for c in report.checks if c.difference.n_changed >= 6)
    assert [c.difference.key for c in report.failed] == ["grade", "factual"]
    with pytest.raises(HessError, match="correction"):
        evaluate_regression(baseline, baseline, correction="bonferroni")


def test_floor_assertions():
    results = make_results(seed=0, category_scores={"factual": 64.0})
    assert_grade_at_least(results, results["grade"])
    with pytest.raises(
        AssertionError, match=rf"grade {results['grade']:.2f}/20 \(95% CI .*\) is below the required 19/20"
    ):
        assert_grade_at_least(results, 19)
    assert_category_at_least(results, "factual", 64)
    with pytest.raises(AssertionError, match=r"factual: score 64\.0/100 .* below the required 70/100"):
        assert_category_at_least(results, "factual", 70)
    with pytest.raises(HessError, match=r"category 'factal' is not in this run"):
        assert_category_at_least(results, "factal", 70)


def test_mismatched_suites_are_refused_unless_shared_items_only(baseline):
    run = copy.deepcopy(baseline)
    run["meta"]["suites"]["factual"]["sha256"] = "f" * 64
    with pytest.raises(
        HessError, match=r"different suites: factual \(sha256 [0-9a-f]{12} vs f{12}\).*shared_items_only=True"
    ):
        assert_no_regression(run, baseline)
    assert assert_no_regression(run, baseline, shared_items_only=True).passed


def write_run(directory: Path, results: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return directory


def test_load_run_errors_name_the_file(tmp_path):
    with pytest.raises(HessError, match=r"nowhere: no such run"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HessError, match=r"empty: no results.json in this directory"):
        load_run(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(HessError, match=r"bad/results.json: not valid JSON \(line 1"):
        load_run(bad)
    old = write_run(tmp_path / "old", {"schema_version": 2, "items": []})
    with pytest.raises(HessError, match=r"old/results.json: schema_version 2 is not supported"):
        load_run(old)
    odd = write_run(tmp_path / "odd", {"schema_version": 1, "items": [{"id": "x"}]})
    with pytest.raises(HessError, match=r"items\[0\] needs an 'id' and a 'category'"):
        load_run(odd)


def test_gate_command_exit_codes(tmp_path, baseline, capsys):
    base_dir = write_run(tmp_path / "epoch6", baseline)
    bad_dir = write_run(tmp_path / "epoch7", rescored(baseline, wrong_factual))
    assert gate_main(["--run", str(bad_dir), "--baseline", str(base_dir)]) == 1
    out = capsys.readouterr().out
    assert "FAIL regression in grade, factual:" in out
    assert json.dumps(WRONG) in out

    assert gate_main(["--run", str(base_dir), "--baseline", str(base_dir), "--min-grade", "10"]) == 0
    assert "no regression" in capsys.readouterr().out

    assert gate_main(["--run", str(base_dir), "--min-grade", "19.5"]) == 1
    assert "is below the required 19.5/20" in capsys.readouterr().out

    assert gate_main(["--run", str(tmp_path / "missing"), "--baseline", str(base_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing: no such run" in err and len(err.strip().splitlines()) == 1

    assert gate_main(["--run", str(base_dir)]) == 2
    assert "--baseline" in capsys.readouterr().err


# ---------------------------------------------------------------- a clear grade drop with tiny categories


def drop_concentrated(results: dict[str, Any], seed: int = 32) -> dict[str, Any]:
    """About 4 grade points lost, mostly in conversation, factual and explanations, with item noise."""
    rnd = random.Random(seed)
    losses = {"conversation": -0.5, "factual": -0.35, "explanations": -0.3}

    def change(item: dict[str, Any]) -> None:
        item["score"] = min(1.0, max(0.0, item["score"] + losses.get(item["category"], 0.0) + rnd.gauss(0, 0.15)))

    return rescored(results, change)


@pytest.fixture(scope="module")
def three_per_category() -> tuple[dict[str, Any], dict[str, Any]]:
    """Seven categories of 3 items (a --limit 3 run): none can ever be significant on its own."""
    base = make_results(seed=3, n_per_category=3)
    return base, drop_concentrated(base)


def test_clear_grade_drop_fails_even_when_the_categories_are_tiny(three_per_category, tmp_path, capsys):
    base, run = three_per_category
    report = evaluate_regression(run, base)
    grade = report.checks[0]
    assert grade.difference.drop == pytest.approx(3.99, abs=0.01)
    assert grade.difference.p_value == pytest.approx(0.016, abs=0.002)
    # Plain Holm over the grade and seven categories of 3 items let this through (0.126 > 0.05):
    assert holm_adjust([c.difference.p_value for c in report.checks])[0] > 0.05
    # Categories of 3 items can never reach p < 0.05 (2/2**3 = 0.25), so they spend no alpha.
    assert not any(c.decision.testable for c in report.checks[1:])
    assert grade.level == pytest.approx(0.05) and grade.failed
    with pytest.raises(AssertionError, match=r"^regression in grade: .*\n  grade: .* drop 3\.99 > 0\.5 \(95% CI "):
        assert_no_regression(run, base)

    base_dir, run_dir = write_run(tmp_path / "e10", base), write_run(tmp_path / "e2", run)
    assert gate_main(["--run", str(run_dir), "--baseline", str(base_dir)]) == 1
    assert "FAIL regression in grade:" in capsys.readouterr().out
    # The grade alone, from the command line.
    assert gate_main(["--run", str(run_dir), "--baseline", str(base_dir), "--grade-only"]) == 1
    out = capsys.readouterr().out
    assert "FAIL regression in grade:" in out and "conversation" not in out.split("items that regressed")[0]
    assert gate_main(["--run", str(run_dir), "--baseline", str(base_dir), "--category", ""]) == 1
    assert "fails when the grade drops by more than 0.5/20 with p < 0.05" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="2"):  # argparse: --grade-only and --category exclude each other
        gate_main(["--run", str(run_dir), "--baseline", str(base_dir), "--grade-only", "--category", "x"])


def test_the_same_drop_with_a_grade_within_noise_passes(three_per_category):
    base, _ = three_per_category
    # The same item noise without the loss: the grade moves, but not significantly.
    rnd = random.Random(32)

    def noise(item: dict[str, Any]) -> None:
        item["score"] = min(1.0, max(0.0, item["score"] + rnd.gauss(0, 0.15)))

    report = evaluate_regression(rescored(base, noise), base)
    assert report.passed
    assert report.checks[0].difference.p_value > 0.05


def test_gate_interval_excludes_zero_exactly_when_the_check_is_significant(three_per_category, baseline):
    for base, run in (three_per_category, (baseline, noisy_run(baseline, 4)), (baseline, rescored(baseline, wrong_factual))):
        for check in evaluate_regression(run, base).checks:
            interval = check.interval()
            if interval is None:
                assert not check.significant
            else:
                assert (interval[0] > 0 or interval[1] < 0) == check.significant


def test_runs_of_different_item_samples_are_refused_unless_shared_items_only(baseline):
    limited = copy.deepcopy(baseline)
    limited["meta"]["settings"]["limit"] = 10
    limited["meta"]["selection"] = {"limit": 10, "seed": 0}
    limited["items"] = [it for it in limited["items"] if int(it["id"].rsplit("-", 1)[1]) <= 10]
    with pytest.raises(HessError, match=r"graded different items \(<in-memory results> graded all items, "
                                        r"<in-memory results> --limit 10 --seed 0\).*same --limit and --seed"):
        evaluate_regression(limited, baseline)
    report = evaluate_regression(limited, baseline, shared_items_only=True)
    assert len(report.comparison.items) == 70
    # Same --limit, another seed: another sample, refused as well.
    other = copy.deepcopy(limited)
    other["meta"]["selection"]["seed"] = 1
    with pytest.raises(HessError, match=r"--limit 10 --seed 1"):
        evaluate_regression(other, limited)
    # A run from before limited runs were sampled (its first 10 items) against a sampled one.
    old_style = copy.deepcopy(limited)
    del old_style["meta"]["selection"]
    old_style["meta"]["seed"] = 0
    with pytest.raises(HessError, match=r"--limit 10 --seed 0 \(its first items\)"):
        evaluate_regression(limited, old_style)
