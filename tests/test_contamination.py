"""The contamination check: n-gram overlap and exact prompts, and the shipped dataset is clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_data import write_jsonl

from hessgpt.cli import main
from hessgpt.contamination import (
    ContaminationIndex,
    check_examples,
    load_suite_items,
    normalise,
    shipped_suites_dir,
)
from hessgpt.data import Example, load_dataset
from hessgpt.errors import HessError

ROOT = Path(__file__).resolve().parent.parent
SUITE = """\
suite: explanations
version: 1
items:
  - id: explanations-001
    prompt: "Explain photosynthesis."
    references: ["Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide to make sugar and release oxygen."]
    checks: [{type: non_empty}]
  - id: explanations-002
    messages:
      - {role: user, content: "Hi, I am Ana."}
      - {role: assistant, content: "Hello Ana!"}
      - {role: user, content: "What is my name?"}
    checks: [{type: non_empty}]
  - id: explanations-003
    prompt: "Summarise this."
    input: "The river rose after three days of rain."
    checks: [{type: non_empty}]
"""


@pytest.fixture
def suites(tmp_path) -> Path:
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "explanations.yaml").write_text(SUITE, encoding="utf-8")
    return folder


def chat(user: str, answer: str = "ok", source: str = "f:1") -> Example:
    return Example(
        messages=[{"role": "user", "content": user}, {"role": "assistant", "content": answer}], source=source
    )


def test_normalise_drops_case_accents_and_punctuation():
    assert normalise("  Éléphant, CAFÉ!  it's ") == "elephant cafe it s"


def test_exact_prompt_match_after_normalisation(suites):
    report = check_examples([chat("explain   PHOTOSYNTHESIS"), chat("Explain gravity.")], suites)
    assert [(f.example, f.item, f.kind) for f in report.findings] == [(0, "explanations-001", "exact_prompt")]


def test_prompt_with_input_and_last_user_turn_match(suites):
    report = check_examples(
        [
            chat("Summarise this.\n\nThe river rose after three days of rain."),
            chat("what is my name"),
            chat("Summarise this"),
        ],
        suites,
    )
    assert sorted((f.example, f.item) for f in report.findings) == [
        (0, "explanations-003"),
        (1, "explanations-002"),
        (2, "explanations-003"),
    ]


def test_thirteen_word_overlap_with_a_reference(suites):
    answer = (
        "As we know, photosynthesis is the process by which green plants use sunlight, water and carbon too."
    )
    twelve = "Photosynthesis is the process by which green plants use sunlight, water and"  # 12 words
    report = check_examples(
        [chat("Tell me about plants.", answer), chat("Plants?", twelve + " air.")], suites
    )
    assert [(f.example, f.kind) for f in report.findings] == [(0, "ngram")]
    assert (
        report.findings[0].evidence
        == "photosynthesis is the process by which green plants use sunlight water and carbon"
    )
    assert report.summary().startswith("1 of 2 examples overlap 1 suite item(s): explanations-001")


def test_plain_text_is_checked_too(suites):
    text = Example(
        text="Notes. Photosynthesis is the process by which green plants use sunlight, water and "
        "carbon dioxide to make sugar."
    )
    assert ContaminationIndex.from_folder(suites, n=13).check([text]).flagged_items == ["explanations-001"]


def test_bad_suite_folder_says_so(tmp_path):
    with pytest.raises(HessError, match="not a folder of suite files"):
        load_suite_items(tmp_path / "missing")
    (tmp_path / "broken.yaml").write_text("items: [unclosed", encoding="utf-8")
    with pytest.raises(HessError, match=r"broken.yaml: line \d+: YAML syntax error"):
        load_suite_items(tmp_path)


def test_data_check_command_exit_codes(tmp_path, suites, capsys):
    dirty = write_jsonl(
        tmp_path / "dirty.jsonl",
        [
            {"instruction": "Explain photosynthesis", "output": "..."},
            {"instruction": "Explain tides", "output": "The moon."},
        ],
    )
    clean = write_jsonl(tmp_path / "clean.jsonl", [{"instruction": "Explain tides", "output": "The moon."}])
    assert main(["data", "check", dirty, "--against", str(suites)]) == 1
    out = capsys.readouterr().out
    assert "dirty.jsonl:1: overlaps explanations-001 (exact_prompt" in out
    assert main(["data", "check", clean, "--against", str(suites)]) == 0
    assert "no overlap: 1 examples against 3 items" in capsys.readouterr().out


def test_shipped_tiny_dataset_does_not_overlap_the_suites():
    data = ROOT / "hessgpt" / "data" / "tiny_chat.jsonl"
    suites = ROOT / "benchmarks" / "suites"
    if not list(suites.glob("*.yaml")):
        pytest.skip("no suites in benchmarks/suites")
    examples, _ = load_dataset([data])
    report = check_examples(examples, suites)
    assert not report.findings, "\n".join(f.line() for f in report.findings[:10])


def test_data_check_defaults_to_the_shipped_suites_from_any_directory(tmp_path, suites, monkeypatch, capsys):
    shipped = shipped_suites_dir()
    assert shipped == ROOT / "benchmarks" / "suites"
    items, names = load_suite_items(shipped)
    item = next(i for i in items if i.prompts)
    dirty = write_jsonl(tmp_path / "dirty.jsonl", [{"instruction": item.prompts[0], "output": "..."}])
    clean = write_jsonl(tmp_path / "clean.jsonl", [{"instruction": "Explain tides", "output": "The moon."}])
    monkeypatch.chdir(tmp_path)  # no benchmarks/suites here
    assert main(["data", "check", clean]) == 0
    assert (
        f"no overlap: 1 examples against {len(items)} items of {len(names)} suite(s)"
        in capsys.readouterr().out
    )
    assert main(["data", "check", dirty]) == 1
    assert f"dirty.jsonl:1: overlaps {item.id} (exact_prompt" in capsys.readouterr().out
    assert main(["data", "check", dirty, "--against", str(suites)]) == 0  # --against still decides
    assert "against 3 items of 1 suite(s)" in capsys.readouterr().out
