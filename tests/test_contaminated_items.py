"""Items that overlap the training data: flagged in results.json and on the scorecard, grade without them."""

from __future__ import annotations

import json

import pytest
from fixtures_results import make_results

from graders.contaminated import flagged_items, mark_contaminated
from graders.paired import reaggregate


def test_flagged_items_come_from_the_checkpoint_and_not_when_dropped():
    record = {"checked": True, "flagged_items": ["factual-002", "factual-001"], "flagged_examples": 3}
    assert flagged_items({"contamination": record}) == ["factual-001", "factual-002"]
    assert flagged_items({"contamination": dict(record, dropped=3)}) == []  # removed before training
    assert flagged_items({"contamination": {"checked": False}}) == []
    assert flagged_items({}) == [] and flagged_items(None) == []


def test_contaminated_items_are_flagged_and_the_grade_is_given_without_them():
    results = make_results(seed=1, n_per_category=4)
    mark_contaminated(results, ["factual-001", "factual-003", "not-in-this-run"], "ck.pt: training data check")
    flagged = [it["id"] for it in results["items"] if it["contaminated"]]
    assert flagged == ["factual-001", "factual-003"]
    block = results["contamination"]
    assert block["items"] == ["factual-001", "factual-003"]
    clean = dict(results, items=[it for it in results["items"] if it["id"] not in flagged])
    grade, scores = reaggregate(clean)
    assert block["grade_without"] == pytest.approx(grade, abs=0.005)
    assert block["categories_without"]["factual"] == pytest.approx(scores["factual"], abs=0.005)
    # The grade itself is unchanged: the items are graded as usual.
    assert results["grade"] == make_results(seed=1, n_per_category=4)["grade"]


def test_a_bench_run_of_a_contaminated_checkpoint_says_so(tmp_path):
    from benchmarks.cli import main
    from benchmarks.runner import select_items
    from benchmarks.suite import load_suites
    from hessgpt.loading import load_model

    chosen = [item.id for _, item in select_items(load_suites(names=["factual"]), 4, 0)]
    checkpoint = tmp_path / "epoch1.pt"
    contamination = {"checked": True, "flagged_items": chosen[:2], "flagged_examples": 2, "ngram": 13}
    load_model("preset:tiny-gpt2", seed=0).save(checkpoint, meta={"epoch": 1, "contamination": contamination})
    out = tmp_path / "run"
    assert main(["--checkpoint", str(checkpoint), "--suite", "factual", "--limit", "4", "--no-likelihood",
                 "--max-new-tokens", "4", "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["contamination"]["items"] == sorted(chosen[:2])
    assert sorted(it["id"] for it in results["items"] if it["contaminated"]) == sorted(chosen[:2])
    assert isinstance(results["contamination"]["grade_without"], float)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Contaminated: 2 graded item(s) overlap the training data" in page
    assert page.count(">contaminated</span>") == 2
