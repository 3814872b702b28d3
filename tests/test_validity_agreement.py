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


def test_the_recorded_agreement_is_what_the_graders_measure(heldout_report: dict) -> None:
    # Every run's scorecard states validity/agreement.json: it must describe the graders as they are.
    recorded = validity.load_agreement()
    assert recorded is not None, "benchmarks/validity/agreement.json missing: run `bench.py validity --record`"
    measured = validity.agreement_summary(heldout_report, "heldout")
    stale = [key for key in ("spearman", "mae") if abs(recorded[key]["value"] - measured[key]["value"]) > 0.005]
    stale += [name for name, value in measured["categories"].items()
              if abs(recorded["categories"].get(name, -1) - value) > 0.005]
    assert recorded["split"] == "heldout" and not stale, (
        f"agreement.json is stale for {', '.join(stale) or 'split'}: run `python bench.py validity --split heldout --record`")
