"""The labelled validity set (benchmarks/validity/): item choice, split, and a blind labelling view."""

import importlib.util
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from benchmarks.runner import default_suite_names
from benchmarks.suite import load_suites

ROOT = Path(__file__).resolve().parent.parent
SET_DIR = ROOT / "benchmarks" / "validity"


def _builder():
    spec = importlib.util.spec_from_file_location("validity_build", ROOT / "scripts" / "validity_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_items_cover_every_suite_and_every_subtask():
    vb = _builder()
    chosen = vb.select_items()
    assert [i.id for i in chosen] == [i.id for i in vb.select_items()]
    per_suite = Counter(i.category for i in chosen)
    assert set(per_suite.values()) == {vb.PER_SUITE} and len(per_suite) == 7
    for suite in load_suites(names=default_suite_names()):
        families = {vb.family(i) for i in suite.items}
        assert families <= {vb.family(i) for i in chosen if i.category == suite.name}, suite.name


def test_split_is_by_item_and_keeps_a_third_heldout_in_every_suite():
    vb = _builder()
    chosen = vb.select_items()
    split = vb.split_items(chosen)
    assert set(split) == {i.id for i in chosen}
    for suite in {i.category for i in chosen}:
        ids = [i.id for i in chosen if i.category == suite]
        assert sum(split[i] == "heldout" for i in ids) >= 0.3 * len(ids)


answers_committed = pytest.mark.skipif(not (SET_DIR / "answers.jsonl").exists(), reason="set not built")


@answers_committed
def test_committed_set_is_what_the_script_builds(tmp_path):
    _builder().build(tmp_path)
    for name in ("answers.jsonl", "to_label.jsonl"):
        assert (tmp_path / name).read_bytes() == (SET_DIR / name).read_bytes(), name


@answers_committed
def test_labelling_view_hides_source_level_and_split():
    answers = {a["id"]: a for a in _jsonl(SET_DIR / "answers.jsonl")}
    view = _jsonl(SET_DIR / "to_label.jsonl")
    assert {v["id"] for v in view} == set(answers) and len(view) == len(answers)
    assert sum(a["source"] == "written" for a in answers.values()) >= 250
    for row in view:
        assert set(row) == {"id", "suite", "task", "guide", "answer"}
        assert row["answer"] == answers[row["id"]]["output"]
    splits = defaultdict(set)
    for a in answers.values():
        splits[a["item"]].add(a["split"])
    assert all(len(s) == 1 for s in splits.values())
    # The view's order mixes sources and suites from its first lines on.
    first = [answers[v["id"]] for v in view[:60]]
    assert len({a["source"] for a in first}) >= 3 and len({a["suite"] for a in first}) == 7
