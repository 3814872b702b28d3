"""The graders agree with careful human scores on answers they were not tuned on (the held-out split).

The labelled validity set (benchmarks/validity) holds model and written answers to real bench items,
each scored 0-10 by two blind human passes. Grader changes are measured on its dev split; this test
measures the held-out split, so a change that hurts agreement fails here. The thresholds are the
goals in graders.validity.GOALS (see README, "How far to trust the grade").
"""

from __future__ import annotations

import pytest

from graders import validity


@pytest.fixture(scope="module")
def heldout_report() -> dict:
    directory = validity.VALIDITY_DIR
    if not any((directory / name).exists() for name in validity.LABEL_FILES):
        pytest.skip(f"{directory}: no human labels yet")
    answers = validity.load_answers(directory)
    human = validity.load_human_scores(directory)
    graded = validity.select_split(validity.with_human(validity.grade_answers(answers), human), "heldout")
    return validity.measure(graded, n_boot=200, seed=0)


def _failed(report: dict) -> list[str]:
    return [f"{g['name']}: {g['value']} (goal {g['op']} {g['target']})" for g in report["goals"] if g["met"] is False]


def test_heldout_agreement_meets_the_goals(heldout_report: dict) -> None:
    assert heldout_report["overall"]["n_answers"] >= 100, "too few labelled held-out answers to measure"
    failed = _failed(heldout_report)
    assert not failed, "\n".join(failed) + "\n\n" + validity.format_report(heldout_report, "heldout")
