"""Agreement measures on hand-computed cases, and the validity command on a small hand-made set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.cli import main as bench_main
from graders.agreement import (
    ItemBootstrap,
    agreement,
    kendall,
    level_of,
    mean_absolute_error,
    pair_counts,
    pairwise_accuracy,
    spearman,
)
from graders.validity import Answer, grade_answers, load_human_scores, measure, with_human
from hessgpt.errors import HessError


def test_spearman_and_kendall_on_hand_computed_ties() -> None:
    # ranks of x: 1, 2.5, 2.5, 4; y: 1, 2, 3, 4 -> rho = 4.5 / sqrt(4.5 * 5)
    x, y = [0.1, 0.5, 0.5, 0.9], [0.0, 0.2, 0.4, 1.0]
    assert spearman(x, y) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    # 5 concordant pairs, none discordant, one pair tied in x only: tau-b = 5 / sqrt(5 * 6)
    assert kendall(x, y) == pytest.approx(5 / math.sqrt(30))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))  # a constant bench tells nothing


def test_pairwise_accuracy_counts_same_item_pairs_and_half_for_bench_ties() -> None:
    bench = [0.9, 0.5, 0.5, 0.1, 0.8, 0.3, 0.7, 0.7]
    human = [1.0, 0.2, 0.6, 0.9, 0.3, 0.5, 0.4, 0.4]
    items = ["a", "a", "a", "b", "b", "c", "d", "d"]
    # a: (0,1) right, (0,2) right, (1,2) bench tie -> 0.5; b: reversed -> 0; c alone; d: humans tie, left out
    assert pair_counts(bench[:3], human[:3]) == (2.5, 3)
    assert pairwise_accuracy(bench, human, items) == pytest.approx(2.5 / 4)


def test_mean_absolute_error_and_levels() -> None:
    assert mean_absolute_error([1.0, 0.5, 0.0], [0.8, 0.5, 0.3]) == pytest.approx(0.5 / 3)
    assert [level_of(h) for h in (0.0, 0.149, 0.15, 0.35, 0.6, 0.849, 0.85, 1.0)] == [
        "bad", "bad", "poor", "partial", "good", "good", "excellent", "excellent"]


def test_bootstrap_resamples_whole_items_and_is_seeded() -> None:
    boot = ItemBootstrap(["a", "a", "b", "c"], n_boot=50, seed=3)
    for draw in range(50):
        picked = boot.indices(draw)
        assert len(picked) == sum(2 if code == 0 else 1 for code in boot.picks[draw])
        # both answers of item a come together or not at all
        assert list(picked).count(0) == list(picked).count(1)
    bench, human, items = [0.9, 0.2, 0.7, 0.4, 0.1, 0.6], [1.0, 0.1, 0.8, 0.2, 0.0, 0.9], list("aabbcc")
    first, second = agreement(bench, human, items, n_boot=200, seed=1), agreement(bench, human, items, n_boot=200, seed=1)
    assert first == second
    low, high = first["mae"]["ci"]
    assert low <= first["mae"]["value"] <= high
    bands = {b["level"]: b for b in first["bands"]}
    assert bands["bad"]["n"] == 2 and bands["bad"]["bench"]["value"] == pytest.approx((0.2 + 0.1) / 2)
    assert bands["poor"]["n"] == 1 and bands["poor"]["human"] == pytest.approx(0.2)
    assert bands["partial"]["n"] == 0 and bands["partial"]["bench"]["value"] is None


def _write_set(folder: Path, rows: list[tuple[str, str, str, str, float, float]]) -> None:
    with open(folder / "answers.jsonl", "w") as answers, open(folder / "labels_pass1.jsonl", "w") as p1, \
            open(folder / "labels_pass2.jsonl", "w") as p2:
        for i, (item, suite, source, output, s1, s2) in enumerate(rows):
            split = "dev" if i % 2 else "heldout"
            answers.write(json.dumps({"id": f"v{i:03d}", "item": item, "suite": suite, "source": source,
                                      "level": None, "class": None, "split": split, "output": output}) + "\n")
            p1.write(json.dumps({"id": f"v{i:03d}", "score": s1, "note": ""}) + "\n")
            p2.write(json.dumps({"id": f"v{i:03d}", "score": s2, "note": ""}) + "\n")


def test_human_score_is_adjudicated_else_mean_of_passes(tmp_path: Path) -> None:
    _write_set(tmp_path, [("factual-geo-001", "factual", "written", "Paris.", 9, 10),
                          ("factual-geo-001", "factual", "written", "Lyon.", 1, 7)])
    (tmp_path / "adjudicated.jsonl").write_text(json.dumps({"id": "v001", "pass1": 1, "pass2": 7, "score": 2,
                                                            "reason": "wrong city"}) + "\n")
    assert load_human_scores(tmp_path) == {"v000": pytest.approx(0.95), "v001": pytest.approx(0.2)}
    (tmp_path / "labels_pass2.jsonl").write_text(json.dumps({"id": "v000", "score": 11, "note": ""}) + "\n")
    with pytest.raises(HessError, match=r"labels_pass2.jsonl:1: field 'score' must be a number from 0 to 10"):
        load_human_scores(tmp_path)


def test_each_source_is_graded_as_one_run() -> None:
    # The same reply to nine greetings is mode collapse within one model's run, not across models.
    items = ["conversation-greeting-001", "conversation-greeting-002", "conversation-greeting-003",
             "conversation-greeting-004", "conversation-greeting-005", "conversation-greeting-006",
             "conversation-howareyou-001", "conversation-thanks-001", "conversation-farewell-003"]
    reply = "Hello! I am fine, thank you for asking. How can I help you?"
    collapsed = [Answer(f"a{i}", item, "conversation", "tiny", "dev", reply) for i, item in enumerate(items)]
    spread = [Answer(f"b{i}", item, "conversation", f"model{i}", "dev", reply) for i, item in enumerate(items)]
    graded = grade_answers(collapsed + spread)
    assert all(any(a["type"] == "mode_collapse" for a in g.adjustments) for g in graded[:9])
    assert not any(a["type"] == "mode_collapse" for g in graded[9:] for a in g.adjustments)


def test_measure_reports_goals_and_leaves_out_unlabelled_answers() -> None:
    answers = [Answer("a", "factual-geo-001", "factual", "m", "dev", "Paris is the capital of France."),
               Answer("b", "factual-geo-001", "factual", "m", "dev", ""),
               Answer("c", "factual-geo-002", "factual", "m", "dev", "Tokyo.")]
    graded = with_human(grade_answers(answers), {"a": 1.0, "b": 0.0})
    report = measure(graded, n_boot=100)
    assert report["n_unlabelled"] == 1 and report["overall"]["n_answers"] == 2
    goals = {g["name"]: g for g in report["goals"]}
    assert goals["mean absolute error"]["met"] is (report["overall"]["mae"]["value"] <= 0.15)


def test_validity_command_prints_table_and_writes_an_escaped_page(tmp_path: Path, capsys) -> None:
    _write_set(tmp_path, [
        ("factual-geo-001", "factual", "m", "Paris is the capital of France.", 10, 10),
        ("factual-geo-001", "factual", "m", "<script>alert(1)</script> Lyon", 0, 1),
        ("factual-geo-003", "factual", "m", "Canberra.", 10, 9),
        ("factual-geo-003", "factual", "m", "It is Sydney.", 0, 0),
    ])
    out = tmp_path / "out"
    assert bench_main(["validity", "--dir", str(tmp_path), "--split", "all", "--out", str(out),
                       "--n-boot", "100"]) == 0
    printed = capsys.readouterr().out
    assert "Spearman" in printed and "factual" in printed and "Goals:" in printed
    page = (out / "validity.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert page.count("<svg") == 1  # one scatter plot: one category
    saved = json.loads((out / "validity.json").read_text())
    assert saved["split"] == "all" and saved["overall"]["n_answers"] == 4
    assert bench_main(["validity", "--dir", str(tmp_path / "none"), "--out", str(out)]) == 2
