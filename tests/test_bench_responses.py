"""bench.py on answers produced elsewhere (no model): outputs, missing items, bad files, validity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.runner import default_suite_names
from benchmarks.suite import load_suites

ROOT = Path(__file__).resolve().parents[1]


def _bench(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bench.py", *argv, "--no-progress"], capture_output=True, text=True,
                          cwd=ROOT)


def _good_answers(limit: int) -> dict[str, str]:
    """A plausible answer per item a ``--limit`` run selects (seed 0): its first reference when it has one."""
    from benchmarks.runner import select_items

    suites = load_suites(names=default_suite_names())
    return {item.id: item.references[0] for _, item in select_items(suites, limit, 0) if item.references}


def _write(path: Path, answers: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in answers.items()), encoding="utf-8")
    return path


def _run(tmp_path: Path, name: str, answers: dict[str, str], limit: int) -> dict:
    out = tmp_path / name
    run = _bench("--responses", str(_write(tmp_path / f"{name}.jsonl", answers)), "--limit", str(limit),
                 "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def test_responses_run_writes_the_three_outputs(tmp_path):
    answers = _good_answers(4)
    results = _run(tmp_path, "run", answers, 4)
    out = tmp_path / "run"
    assert (out / "items.csv").exists() and (out / "index.html").exists()
    assert results["schema_version"] == 1 and 0 <= results["grade"] <= 20
    assert results["likelihood"] is None and results["meta"]["responses_file"].endswith("run.jsonl")
    n_selected = sum(min(4, len(s.items)) for s in load_suites(names=default_suite_names()))
    assert len(results["items"]) == n_selected
    missing = [row for row in results["items"] if row["missing"]]
    assert len(missing) == n_selected - len(answers)
    assert all(row["score"] == 0 for row in missing)
    assert sum(c["n_missing"] for c in results["categories"].values()) == len(missing)


def _pair_answers() -> dict[str, str]:
    """The good answers of tests/validity_pairs.yaml: written for their item, in every category."""
    pairs = yaml.safe_load((Path(__file__).with_name("validity_pairs.yaml")).read_text(encoding="utf-8"))["pairs"]
    return {p["id"]: p["good"] for p in pairs}


def test_answers_shuffled_across_items_score_far_lower(tmp_path):
    answers = _pair_answers()
    ids = sorted(answers)
    assert len({i.split("-")[0] for i in ids}) >= 7, "good answers in every category"
    shuffled = {ids[i]: answers[ids[(i + 7) % len(ids)]] for i in range(len(ids))}
    own = _run(tmp_path, "own", answers, 1000)
    other = _run(tmp_path, "shuffled", shuffled, 1000)
    own_scores = {r["id"]: r["score"] for r in own["items"] if not r["missing"]}
    other_scores = {r["id"]: r["score"] for r in other["items"] if not r["missing"]}
    mean_own = sum(own_scores.values()) / len(own_scores)
    mean_other = sum(other_scores.values()) / len(other_scores)
    # The same texts, on the wrong items, keep under a third of their marks.
    assert mean_other < mean_own / 3, (mean_own, mean_other)


def test_one_answer_to_every_prompt_scores_near_zero(tmp_path):
    """A polite reply that passes every guard, given to all 402 prompts: mode collapse."""
    answer = "I am not sure, but I would be happy to help you with that."
    ids = [item.id for suite in load_suites(names=default_suite_names()) for item in suite.items]
    results = _run(tmp_path, "constant", dict.fromkeys(ids, answer), 1000)
    assert results["grade"] < 1.0, results["grade"]
    assert all(c["score"] < 10 for c in results["categories"].values()), results["categories"]
    adjustments = [a["type"] for r in results["items"] for a in r["adjustments"]]
    assert adjustments.count("mode_collapse") == len(ids)
    assert any("mode collapse" in f for f in results["robustness"]["findings"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "bad.jsonl:2: not valid JSON"),
        ('{"id": "x"}', "bad.jsonl:2: field 'output' must be a string"),
        ('{"output": "y"}', "bad.jsonl:2: field 'id' must be a non-empty string"),
        ('["a"]', "bad.jsonl:2: expected an object"),
    ],
)
def test_bad_responses_line_is_named(tmp_path, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "conversation-greeting-001", "output": "Hello!"}\n' + line + "\n", encoding="utf-8")
    run = _bench("--responses", str(bad), "--out", str(tmp_path / "o"))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_bad_flags_are_one_line_errors(tmp_path):
    answers = _write(tmp_path / "a.jsonl", {"conversation-greeting-001": "Hello!"})
    for argv, needle in ((["--limit", "0"], "--limit"), (["--suite", "nope"], "nope"),
                         (["--samples", "3"], "--samples")):
        run = _bench("--responses", str(answers), "--out", str(tmp_path / "o"), *argv)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0]


def test_missing_checkpoint_fails_before_any_work(tmp_path):
    run = _bench("--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and "nope.pt" in run.stderr
    assert not (tmp_path / "o" / "results.json").exists()


def test_answers_for_unknown_items_are_reported_not_graded(tmp_path):
    answers = _good_answers(2)
    answers["no-such-item-001"] = "hello"
    path = _write(tmp_path / "extra.jsonl", answers)
    run = _bench("--responses", str(path), "--limit", "2", "--out", str(tmp_path / "o"), "--quiet")
    assert run.returncode == 0, run.stderr
    assert "1 answer(s) in" in run.stderr and "no-such-item-001" in run.stderr
    results = json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))
    assert results["meta"]["unmatched_responses"] == 1
    assert "no-such-item-001" not in {row["id"] for row in results["items"]}


def test_exported_prompts_answered_elsewhere_come_back_through_responses(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    run = subprocess.run([sys.executable, "bench.py", "export-prompts", "--out", str(prompts), "--limit", "3",
                          "--seed", "1"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in prompts.read_text(encoding="utf-8").splitlines()]
    from benchmarks.runner import select_items

    selected = select_items(load_suites(names=default_suite_names()), 3, 1)
    assert [r["id"] for r in records] == [item.id for _, item in selected]
    assert all(r["messages"] == item.conversation() and r["messages"][-1]["role"] == "user"
               for r, (_, item) in zip(records, selected, strict=True))
    # "Elsewhere": answer from the exported record alone (the first reference when the item has one).
    references = {item.id: (item.references or ["I do not know."])[0] for _, item in selected}
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": r["id"], "output": references[r["id"]]}) + "\n" for r in records),
                       encoding="utf-8")
    out = tmp_path / "graded"
    run = _bench("--responses", str(answers), "--limit", "3", "--seed", "1", "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert sorted(row["id"] for row in results["items"]) == sorted(r["id"] for r in records)
    assert not any(row["missing"] for row in results["items"]) and results["meta"]["unmatched_responses"] == 0
