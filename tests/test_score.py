"""Scoring config and aggregation to /20 on a tiny hand-computed run."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

from graders.score import aggregate, load_scoring
from hessgpt.errors import HessError


def row(item_id: str, category: str, score: float | None, sample: int = 0, missing: bool = False) -> dict:
    return {"id": item_id, "category": category, "sample": sample, "score": score, "missing": missing}


# Category scores by hand: factual 75, explanations 50 (one missing item counts 0),
# conversation 75 (c1 samples 1 and 0 average to 0.5), instructions 25, input_tasks 75,
# creativity 90, robustness 100.
FULL_RUN = [
    row("f1", "factual", 1.0),
    row("f2", "factual", 0.5),
    row("e1", "explanations", None, missing=True),
    row("e2", "explanations", 1.0),
    row("c1", "conversation", 1.0, sample=0),
    row("c1", "conversation", 0.0, sample=1),
    row("c2", "conversation", 1.0),
    row("i1", "instructions", 0.25),
    row("t1", "input_tasks", 0.75),
    row("k1", "creativity", 0.9),
    row("r1", "robustness", 1.0),
]


@pytest.fixture(scope="module")
def scoring():
    return load_scoring()


def test_shipped_scoring_config(scoring):
    assert scoring.scale == 20
    assert [(c.key, c.points) for c in scoring.criteria] == [
        ("factual_precision", 8),
        ("conversational_quality", 5),
        ("instruction_following", 4),
        ("creativity", 2),
        ("robustness", 1),
    ]
    assert scoring.criteria[0].label == "Factual precision"
    assert scoring.criteria[2].categories == ("instructions", "input_tasks")


@pytest.mark.parametrize(
    ("grade", "mention"),
    [
        (0, "Insuffisant"),
        (9.99, "Insuffisant"),
        (10, "Passable"),
        (11.99, "Passable"),
        (12, "Assez bien"),
        (13.99, "Assez bien"),
        (14, "Bien"),
        (15.99, "Bien"),
        (16, "Très bien"),
        (20, "Très bien"),
    ],
)
def test_mention_boundaries(scoring, grade, mention):
    assert scoring.mention_for(grade) == mention


def test_full_run_hand_computed(scoring):
    result = aggregate(FULL_RUN, scoring, seed=0, n_boot=500)
    categories = result["categories"]
    assert {c: v["score"] for c, v in categories.items()} == {
        "factual": 75.0,
        "explanations": 50.0,
        "conversation": 75.0,
        "instructions": 25.0,
        "input_tasks": 75.0,
        "creativity": 90.0,
        "robustness": 100.0,
    }
    assert categories["explanations"]["n_items"] == 2 and categories["explanations"]["n_missing"] == 1
    assert categories["conversation"]["n_items"] == 2 and categories["conversation"]["n_missing"] == 0
    points = {c["key"]: c["points"] for c in result["criteria"]}
    # 8 x 62.5% = 5, 5 x 75% = 3.75, 4 x 50% = 2, 2 x 90% = 1.8, 1 x 100% = 1.
    assert points == {
        "factual_precision": 5.0,
        "conversational_quality": 3.75,
        "instruction_following": 2.0,
        "creativity": 1.8,
        "robustness": 1.0,
    }
    assert result["grade"] == 13.55
    assert result["mention"] == "Assez bien"
    assert result["partial"] is False
    assert result["criteria"][0] == {
        "key": "factual_precision",
        "label": "Factual precision",
        "points": 5.0,
        "max": 8,
        "ci": result["criteria"][0]["ci"],
        "categories": ["factual", "explanations"],
    }
    low, high = result["grade_ci"]
    assert low <= 13.55 <= high
    for entry in result["criteria"]:
        assert entry["ci"][0] <= entry["points"] <= entry["ci"][1]


def test_partial_run_rescales_over_present_criteria(scoring):
    rows = [r for r in FULL_RUN if r["category"] in ("factual", "creativity")]
    result = aggregate(rows, scoring, n_boot=200)
    by_key = {c["key"]: c for c in result["criteria"]}
    # factual_precision uses the factual category alone: 8 x 75% = 6; creativity 1.8.
    assert by_key["factual_precision"]["points"] == 6.0
    assert by_key["creativity"]["points"] == 1.8
    assert by_key["robustness"]["points"] is None and by_key["robustness"]["ci"] is None
    # 7.8 points out of the 10 that ran, rescaled to 20.
    assert result["grade"] == 15.6
    assert result["mention"] == "Bien"
    assert result["partial"] is True
    assert set(result["categories"]) == {"factual", "creativity"}


def test_missing_category_inside_a_present_criterion_is_partial(scoring):
    rows = [r for r in FULL_RUN if r["category"] != "explanations"]
    result = aggregate(rows, scoring, n_boot=0)
    assert result["partial"] is True
    # factual alone carries factual_precision: 8 x 75% = 6 -> 6 + 3.75 + 2 + 1.8 + 1.
    assert result["grade"] == 14.55
    assert result["grade_ci"] is None and result["criteria"][0]["ci"] is None


def test_suites_add_hashes_and_unanswered_items(scoring):
    suite = SimpleNamespace(
        name="factual",
        version=3,
        sha256="abc123",
        items=[
            SimpleNamespace(id="f1"),
            SimpleNamespace(id="f2"),
            SimpleNamespace(id="f3"),
            SimpleNamespace(id="f4"),
        ],
    )
    result = aggregate(
        [row("f1", "factual", 1.0), row("f2", "factual", 0.5)], scoring, n_boot=0, suites=[suite]
    )
    factual = result["categories"]["factual"]
    assert factual == {
        "score": 37.5,
        "ci": None,
        "n_items": 4,
        "n_missing": 2,
        "suite_hash": "abc123",
        "suite_version": 3,
    }


def test_seeded_and_deterministic(scoring):
    assert aggregate(FULL_RUN, scoring, seed=5, n_boot=300) == aggregate(
        FULL_RUN, scoring, seed=5, n_boot=300
    )


def test_unknown_category_is_reported_but_not_graded(scoring):
    rows = FULL_RUN + [row("x1", "custom", 0.0)]
    result = aggregate(rows, scoring, n_boot=0)
    assert result["categories"]["custom"]["score"] == 0.0
    assert result["grade"] == 13.55
    only_custom = aggregate([row("x1", "custom", 1.0)], scoring, n_boot=0)
    assert only_custom["grade"] is None and only_custom["mention"] is None


def test_no_rows_is_an_error(scoring):
    with pytest.raises(HessError, match="no items to score"):
        aggregate([], scoring)


def test_answered_row_without_score_is_a_bug(scoring):
    with pytest.raises(ValueError, match="item f1: answered but has no score"):
        aggregate([row("f1", "factual", None)], scoring)


# ---------------------------------------------------------------- bad scoring files


GOOD_SCORING = """\
version: 1
scale: 20
criteria:
  - {key: a, label: A, points: 12, categories: [factual]}
  - {key: b, label: B, points: 8, categories: [conversation]}
mentions:
  - {min: 10, label: Passable}
  - {min: 0, label: Insuffisant}
"""


def scoring_error(tmp_path, text: str) -> str:
    path = tmp_path / "scoring.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(HessError) as exc:
        load_scoring(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_custom_scoring_loads(tmp_path):
    path = tmp_path / "scoring.yaml"
    path.write_text(GOOD_SCORING, encoding="utf-8")
    custom = load_scoring(path)
    assert custom.mention_for(9.5) == "Insuffisant" and custom.mention_for(10) == "Passable"
    result = aggregate([row("f1", "factual", 0.5), row("c1", "conversation", 1.0)], custom, n_boot=0)
    assert result["grade"] == 14.0  # 12 x 50% + 8 x 100%


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("points: 8", "points: 7"), "criteria: points add up to 19, expected the scale 20"),
        (("points: 8", "points: eight"), "criteria[1].points: expected a number"),
        (("label: B", "label: B, weight: 2"), "criteria[1].weight: unknown field"),
        (("[conversation]", "[factual]"), "criteria[1].categories[0]: 'factual' already counts for a"),
        (("key: b", "key: a"), "criteria[1].key: duplicate criterion 'a'"),
        (
            ("{min: 0, label: Insuffisant}", "{min: 5, label: Insuffisant}"),
            "mentions: one mention needs min 0",
        ),
        (("scale: 20", "scale: 20\nextra: 1"), "extra: unknown field"),
        (("criteria:", "criteria: [\n"), "YAML syntax error"),
    ],
)
def test_bad_scoring_files(tmp_path, change, expected):
    old, new = change
    assert expected in scoring_error(tmp_path, GOOD_SCORING.replace(old, new, 1))
