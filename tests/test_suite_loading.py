"""Suite files: loading, the conversation sent to the model, and one error per kind of mistake."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from benchmarks.suite import SUITES_DIR, load_suite, load_suites
from graders.checks import CHECKS
from hessgpt.errors import HessError

GOOD = """\
suite: factual
version: 2
description: Short questions of fact.
items:
  - id: factual-geo-001
    prompt: "What is the capital of France?"
    references: ["Paris is the capital of France."]
    tags: [geography]
    max_new_tokens: 32
    checks:
      - {type: contains_any, values: ["Paris"], weight: 3}
      - {type: word_count, max: 40}
  - id: factual-chat-002
    messages:
      - {role: system, content: "You are helpful."}
      - {role: user, content: "Hi, my name is Ana."}
      - {role: assistant, content: "Hello Ana!"}
      - {role: user, content: "Translate this for me."}
    input: "Bonjour"
    choices: ["Hello", "Goodbye"]
    answer: 0
    checks:
      - {type: contains_any, values: ["hello"]}
"""


def write(tmp_path: Path, text: str, name: str = "factual") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def item_suite(item_yaml: str, name: str = "factual") -> str:
    """A one-item suite around the given item text (indented as a list entry)."""
    body = textwrap.indent(textwrap.dedent(item_yaml).strip(), "    ")
    return f"suite: {name}\nversion: 1\ndescription: test\nitems:\n  - {body.lstrip()}\n"


def error_for(tmp_path: Path, text: str, name: str = "factual") -> str:
    path = write(tmp_path, text, name)
    with pytest.raises(HessError) as exc:
        load_suite(path)
    message = str(exc.value)
    assert "\n" not in message, "errors are one line"
    assert str(path) in message
    return message


# ---------------------------------------------------------------- good files


def test_loads_items_and_metadata(tmp_path):
    path = write(tmp_path, GOOD)
    suite = load_suite(path)
    assert (suite.name, suite.version, suite.description) == ("factual", 2, "Short questions of fact.")
    assert suite.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    first, second = suite.items
    assert first.id == "factual-geo-001" and first.category == "factual"
    assert first.references == ["Paris is the capital of France."]
    assert first.tags == ["geography"] and first.max_new_tokens == 32
    assert [(c.type, c.weight) for c in first.checks] == [("contains_any", 3.0), ("word_count", 1.0)]
    assert first.checks[1].params == {"min": None, "max": 40}
    assert second.choices == ["Hello", "Goodbye"] and second.answer == 0


def test_conversation_single_prompt_and_multi_turn(tmp_path):
    first, second = load_suite(write(tmp_path, GOOD)).items
    assert first.conversation() == [{"role": "user", "content": "What is the capital of France?"}]
    assert first.user_prompt == "What is the capital of France?"
    turns = second.conversation()
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert turns[-1]["content"] == "Translate this for me.\n\nBonjour"
    assert second.user_prompt == "Translate this for me."
    assert second.shown_prompt == "Translate this for me.\n\nBonjour"
    # The conversation is a copy: changing it does not change the item.
    turns[-1]["content"] = "changed"
    assert second.conversation()[-1]["content"] == "Translate this for me.\n\nBonjour"


def test_blank_prompt_is_allowed_for_robustness_items(tmp_path):
    item = load_suite(
        write(tmp_path, item_suite('id: f-001\nprompt: "   "\nchecks: [{type: non_empty}]'))
    ).items[0]
    assert item.conversation() == [{"role": "user", "content": "   "}]


def test_load_suites_filters_by_name_and_sorts(tmp_path):
    write(tmp_path, GOOD)
    write(
        tmp_path,
        item_suite("id: conv-001\nprompt: Hi\nchecks: [{type: non_empty}]", "conversation"),
        "conversation",
    )
    assert [s.name for s in load_suites(tmp_path)] == ["conversation", "factual"]
    assert [s.name for s in load_suites(tmp_path, names=["factual"])] == ["factual"]
    with pytest.raises(
        HessError, match=r"--suite: unknown suite 'nope' \(available: conversation, factual\)"
    ):
        load_suites(tmp_path, names=["nope"])


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(HessError, match="no suite files"):
        load_suites(tmp_path)


def test_check_roles_from_the_type_the_suite_header_and_the_check(tmp_path):
    body = item_suite(
        """
        id: f-001
        prompt: Name a city.
        checks:
          - {type: contains_any, values: [Paris]}
          - {type: word_count, max: 5}
          - {type: sentence_count, max: 1}
          - {type: not_contains, values: [Lyon], role: content}
        """
    ).replace("items:\n", "roles: {sentence_count: content}\nitems:\n", 1)
    checks = load_suite(write(tmp_path, body)).items[0].checks
    assert [c.role for c in checks] == ["content", "guard", "content", "content"]


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("roles: {word_count: essential}", "roles.word_count: must be one of content, guard, got str 'essential'"),
        ("roles: {word_cont: content}", "roles.word_cont: unknown check 'word_cont'"),
        ("roles: [word_count]", "roles: expected a mapping like {word_count: content}"),
    ],
)
def test_bad_roles_header_is_named(tmp_path, header, needle):
    body = item_suite("id: f-001\nprompt: a\nchecks: [{type: non_empty}]").replace("items:\n", header + "\nitems:\n", 1)
    assert needle in error_for(tmp_path, body)


def test_bad_check_role_is_named(tmp_path):
    message = error_for(tmp_path, item_suite("id: f-001\nprompt: a\nchecks: [{type: non_empty, role: gate}]"))
    assert "item f-001: checks[0].role: must be one of content, guard, got str 'gate'" in message


# ---------------------------------------------------------------- bad files


def test_yaml_syntax_error_names_line(tmp_path):
    message = error_for(tmp_path, "suite: factual\nversion: 1\nitems:\n  - id: x\n    prompt: [unclosed\n")
    assert "YAML syntax error" in message and "line " in message


def test_duplicate_yaml_key(tmp_path):
    text = item_suite("id: f-001\nprompt: a\nprompt: b\nchecks: [{type: non_empty}]")
    assert "duplicate key 'prompt'" in error_for(tmp_path, text)


def test_missing_checks(tmp_path):
    message = error_for(tmp_path, item_suite("id: f-001\nprompt: Hello"))
    assert "item f-001: checks: missing" in message


def test_missing_top_level_field(tmp_path):
    assert "version: missing" in error_for(tmp_path, "suite: factual\nitems: []\n")


def test_unknown_item_field_suggests(tmp_path):
    message = error_for(tmp_path, item_suite("id: f-001\npromt: Hello\nchecks: [{type: non_empty}]"))
    assert "item f-001: promt: unknown field; did you mean 'prompt'?" in message


def test_wrong_types(tmp_path):
    message = error_for(tmp_path, item_suite("id: f-001\nprompt: 5\nchecks: [{type: non_empty}]"))
    assert "item f-001: prompt: expected a string, got int 5" in message
    message = error_for(
        tmp_path, item_suite("id: f-001\nprompt: hi\nmax_new_tokens: ten\nchecks: [{type: non_empty}]")
    )
    assert "item f-001: max_new_tokens: expected an integer" in message
    message = error_for(
        tmp_path, item_suite("id: f-001\nprompt: hi\nchecks: [{type: contains_any, values: [yes]}]")
    )
    assert (
        "item f-001: checks[0].values[0]: expected a string, got boolean true (quote it in YAML)" in message
    )


def test_bad_id(tmp_path):
    message = error_for(tmp_path, item_suite("id: Factual_001\nprompt: hi\nchecks: [{type: non_empty}]"))
    assert "item #1: id: must match [a-z0-9-]+" in message


def test_duplicate_id_in_suite(tmp_path):
    text = GOOD.replace("factual-chat-002", "factual-geo-001")
    assert "item factual-geo-001: id: duplicate id" in error_for(tmp_path, text)


def test_duplicate_id_across_suites(tmp_path):
    write(tmp_path, GOOD)
    write(
        tmp_path,
        item_suite("id: factual-geo-001\nprompt: Hi\nchecks: [{type: non_empty}]", "conversation"),
        "conversation",
    )
    with pytest.raises(HessError) as exc:
        load_suites(tmp_path)
    message = str(exc.value)
    assert "factual.yaml: item factual-geo-001: id: duplicate id, also used in" in message
    assert "conversation.yaml" in message


def test_unknown_check_type_suggests(tmp_path):
    message = error_for(
        tmp_path, item_suite("id: f-001\nprompt: hi\nchecks: [{type: contain_any, values: [a]}]")
    )
    assert "item f-001: checks[0].type: unknown check 'contain_any'; did you mean 'contains_any'?" in message


@pytest.mark.parametrize(
    ("check", "field", "words"),
    [
        ("{type: numbered_list, n: 0}", "checks[0].n", "must be > 0"),
        ("{type: numbered_list, n: five}", "checks[0].n", "expected an integer"),
        ("{type: numbered_list}", "checks[0].n", "required by numbered_list"),
        ("{type: regex, pattern: '(unclosed'}", "checks[0].pattern", "invalid regular expression"),
        ("{type: word_count, min: 9, max: 3}", "checks[0].min", "greater than max"),
        ("{type: word_count, max: 3, maxi: 4}", "checks[0].maxi", "unknown parameter"),
        ("{type: language, lang: de}", "checks[0].lang", "expected one of en, fr"),
        ("{type: non_empty, weight: -1}", "checks[0].weight", "expected a number >= 0"),
        ("{type: rouge_l}", "checks[0].type", "rouge_l needs the item to have references"),
        ("{type: faithful}", "checks[0].type", "faithful needs the item to have input"),
    ],
)
def test_bad_check_params(tmp_path, check, field, words):
    message = error_for(tmp_path, item_suite(f"id: f-001\nprompt: hi\nchecks: [{check}]"))
    assert f"item f-001: {field}: " in message and words in message


def test_answer_out_of_range_and_orphans(tmp_path):
    base = "id: f-001\nprompt: hi\nchecks: [{type: non_empty}]\n"
    message = error_for(tmp_path, item_suite(base + "choices: [a, b]\nanswer: 2"))
    assert "item f-001: answer: must be between 0 and 1, got 2" in message
    assert "item f-001: answer: required with choices" in error_for(
        tmp_path, item_suite(base + "choices: [a, b]")
    )
    assert "item f-001: answer: only allowed with choices" in error_for(
        tmp_path, item_suite(base + "answer: 0")
    )


def test_suite_name_must_match_file(tmp_path):
    message = error_for(tmp_path, GOOD, name="facts")
    assert "suite: 'factual' must equal the file name 'facts'" in message


def test_messages_rules(tmp_path):
    ends_with_assistant = """\
        id: f-001
        messages:
          - {role: user, content: Hi}
          - {role: assistant, content: Hello}
        checks: [{type: non_empty}]
    """
    message = error_for(tmp_path, item_suite(ends_with_assistant))
    assert "item f-001: messages[1].role: the last message must be a user turn" in message
    bad_role = "id: f-001\nmessages: [{role: bot, content: Hi}]\nchecks: [{type: non_empty}]"
    assert "item f-001: messages[0].role: must be one of system, user, assistant" in error_for(
        tmp_path, item_suite(bad_role)
    )
    late_system = "id: f-001\nmessages: [{role: user, content: a}, {role: system, content: b}, {role: user, content: c}]\nchecks: [{type: non_empty}]"
    assert "messages[1].role: a system message may only come first" in error_for(
        tmp_path, item_suite(late_system)
    )
    both = "id: f-001\nprompt: hi\nmessages: [{role: user, content: Hi}]\nchecks: [{type: non_empty}]"
    assert "item f-001: prompt: give exactly one of prompt or messages" in error_for(
        tmp_path, item_suite(both)
    )


def test_file_size_cap(tmp_path, monkeypatch):
    import benchmarks.suite as suite_module

    monkeypatch.setattr(suite_module, "MAX_SUITE_BYTES", 100)
    assert "over the 100 byte limit" in error_for(tmp_path, GOOD)


def test_not_a_mapping(tmp_path):
    assert "expected a mapping" in error_for(tmp_path, "- just\n- a list\n")


# ---------------------------------------------------------------- the shipped suites


def test_readme_check_examples_validate(tmp_path):
    """Every `- {type: ...}` example in the suite authors' guide is a valid check."""
    readme = (SUITES_DIR / "README.md").read_text(encoding="utf-8")
    examples = [line.strip() for line in readme.splitlines() if line.strip().startswith("- {type:")]
    documented = {line.split("type:")[1].split(",")[0].strip(" }") for line in examples}
    assert documented == set(CHECKS), "every check is documented with an example"
    checks = "\n".join(f"  {line}" for line in examples)
    text = (
        "suite: factual\nversion: 1\nitems:\n  - id: f-001\n    prompt: hi\n    input: some text\n"
        f"    references: [a reference]\n    checks:\n  {checks.replace(chr(10), chr(10) + '  ')}\n"
    )
    suite = load_suite(write(tmp_path, text))
    assert len(suite.items[0].checks) == len(examples)


def test_shipped_suites_valid():
    if not any(SUITES_DIR.glob("*.yaml")):
        pytest.skip("no suite files shipped yet")
    suites = load_suites()  # validates every file and id uniqueness across suites
    for suite in suites:
        assert len(suite.items) >= 40, f"{suite.path}: {len(suite.items)} items, expected at least 40"
