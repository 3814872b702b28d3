"""Every check type on hand-computed cases, plus grade_item and robustness to odd input."""

from __future__ import annotations

import random

import pytest

from benchmarks.suite import Item
from graders.checks import (
    CHECKS,
    AnswerContext,
    CheckParamError,
    CheckSpec,
    collapse_threshold,
    grade_item,
    range_score,
)
from graders.reference import sentence_bleu, sentence_chrf
from graders.robustness import repeated_ngram_ratio
from graders.text import fold, list_items, strip_list_markers, visible_text, words


def make_item(
    prompt: str = "What is the capital of France?",
    *,
    input: str | None = None,
    references: list[str] | None = None,
    messages: list[dict[str, str]] | None = None,
    checks: list[CheckSpec] | None = None,
) -> Item:
    return Item(
        id="t-001",
        category="test",
        prompt=None if messages else prompt,
        messages=messages,
        input=input,
        references=references or [],
        choices=None,
        answer=None,
        tags=[],
        max_new_tokens=None,
        checks=checks or [],
    )


def run(check: str, output: str, item: Item | None = None, **params):
    return CHECKS[check].run(output, item or make_item(), params)


def score(check: str, output: str, item: Item | None = None, **params) -> float:
    return run(check, output, item, **params).score


# ---------------------------------------------------------------- word matching


def test_contains_any_whole_words_case_accents_punctuation():
    assert score("contains_any", "The capital is PARIS!!!", values=["Paris"]) == 1.0
    assert score("contains_any", "Parisian cuisine is rich.", values=["Paris"]) == 0.0
    assert score("contains_any", "the elysee palace", values=["Élysée"]) == 1.0
    assert score("contains_any", "Il était une fois à l'Élysée", values=["elysee"]) == 1.0
    assert score("contains_any", "I love new-york in spring", values=["New York"]) == 1.0
    assert score("contains_any", "It ended in 1945.", values=["1944", "1945"]) == 1.0
    assert score("contains_any", "首都是北京。", values=["北京"]) == 1.0
    result = run("contains_any", "Paris, of course.", values=["Lutèce", "Paris"])
    assert result.explanation == "found 'Paris'"
    assert run("contains_any", "Lyon", values=["Paris"]).explanation == "none of 'Paris' found"


def test_contains_all_fraction():
    result = run("contains_all", "Red and blue.", values=["red", "green", "blue"])
    assert result.score == pytest.approx(2 / 3, abs=1e-4)
    assert "2/3 found" in result.explanation and "'green'" in result.explanation


def test_key_ideas_aliases():
    ideas = [["sun", "sunlight"], ["water"], ["carbon dioxide", "CO2"]]
    result = run("key_ideas", "Plants use sunlight and CO2.", ideas=ideas)
    assert result.score == pytest.approx(2 / 3, abs=1e-4)
    assert "missing 'water'" in result.explanation
    assert score("key_ideas", "sun, water and carbon dioxide", ideas=ideas) == 1.0


def test_not_contains():
    assert score("not_contains", "Paris.", values=["Lyon"]) == 1.0
    assert score("not_contains", "Maybe LYON?", values=["Lyon"]) == 0.0
    assert score("not_contains", "Lyonnaise potatoes", values=["Lyon"]) == 1.0
    assert "forbidden 'Lyon'" in run("not_contains", "lyon", values=["Lyon"]).explanation


def test_regex():
    assert score("regex", "It ended in 1945.", pattern=r"\b19\d\d\b") == 1.0
    assert score("regex", "it ended", pattern="ENDED") == 0.0
    assert score("regex", "it ended", pattern="ENDED", flags="i") == 1.0
    assert run("regex", "in 1945", pattern=r"\d+").explanation == "matched '1945'"


def test_regex_gives_up_on_slow_patterns():
    # Quadratic on a long run of letters: the search is stopped, not left to hang the run.
    result = run("regex", "a" * 50_000, pattern=r"\w+\s+\w+")
    assert result.score == 0.0 and "gave up" in result.explanation


def test_regex_params_validated():
    with pytest.raises(CheckParamError) as bad:
        CHECKS["regex"].validate({"pattern": "(unclosed"})
    assert bad.value.field == "pattern"
    with pytest.raises(CheckParamError, match="nested quantifier"):
        CHECKS["regex"].validate({"pattern": "(a+)+b"})
    with pytest.raises(CheckParamError) as bad_flag:
        CHECKS["regex"].validate({"pattern": "a", "flags": "iq"})
    assert bad_flag.value.field == "flags"


def test_starts_with_and_ends_with():
    assert score("starts_with", "yes, it is.", value="Yes") == 1.0
    assert score("starts_with", "**Yes** — it is", value="yes") == 1.0
    assert score("starts_with", "Yesterday it was", value="Yes") == 0.0
    assert score("starts_with", "OUI, bien sûr", value="oui bien") == 1.0
    assert score("starts_with", "Élan vital", value="elan") == 1.0
    assert score("ends_with", "Really?   \n", value="?") == 1.0
    assert score("ends_with", "Really.", value="?") == 0.0


# ---------------------------------------------------------------- format and length


def test_numbered_list_partial_credit():
    five = "1. a\n2. b\n3. c\n4. d\n5. e"
    assert score("numbered_list", five, n=5) == 1.0
    assert score("numbered_list", "1. a\n2. b\n3. c\n4. d", n=5) == pytest.approx(0.8)
    seven = five + "\n6. f\n7) g"
    assert score("numbered_list", seven, n=5) == pytest.approx(0.6)
    eleven = "\n".join(f"{i}. x" for i in range(1, 12))
    assert score("numbered_list", eleven, n=5) == 0.0
    assert run("numbered_list", "1. a\n2. b\n3. c\n4. d", n=5).explanation == "4 numbered items, expected 5"


def test_numbered_list_formats():
    assert score("numbered_list", "**1.** Run\n**2.** Swim\n**3.** Bike", n=3) == 1.0
    assert score("numbered_list", "Do this: 1. run 2. swim 3. bike", n=3) == 1.0
    # A year followed by a full stop is not a list item.
    assert run("numbered_list", "It ended in 1945. Then peace came.", n=3).explanation.startswith(
        "0 numbered"
    )


def test_bulleted_list():
    assert score("bulleted_list", "- a\n- b\n* c", n=3) == 1.0
    assert score("bulleted_list", "• a\n• b", n=3) == pytest.approx(2 / 3, abs=1e-4)
    assert score("bulleted_list", "**bold** text\n- one", n=1) == 1.0


def test_word_count_range():
    thirty = " ".join(["word"] * 30)
    assert score("word_count", thirty, min=1, max=20) == pytest.approx(0.5)
    assert score("word_count", "one two three four five", min=1, max=20) == 1.0
    assert score("word_count", "one two three four five", min=10) == pytest.approx(0.5)
    assert score("word_count", " ".join(["w"] * 45), max=20) == 0.0
    assert run("word_count", "Don't stop — now!", max=20).explanation == "3 words, expected at most 20"


def test_sentence_count():
    assert score("sentence_count", "Paris is nice.", min=1, max=1) == 1.0
    assert score("sentence_count", "One. Two! Three?", max=2) == pytest.approx(0.5)
    assert run(
        "sentence_count", "Dr. Smith arrived at 3.15 p.m. today. He sat.", max=5
    ).explanation.startswith("2 sentences")
    assert run("sentence_count", "First line\nSecond line", max=5).explanation.startswith("2 sentences")


def test_char_count():
    assert score("char_count", "  hello  ", min=5, max=10) == 1.0
    assert score("char_count", "hello world!!", min=5, max=10) == pytest.approx(0.7)
    assert score("char_count", "hi", min=4) == pytest.approx(0.5)


def test_range_score_helper():
    assert range_score(5, 1, 10) == 1.0
    assert range_score(15, 1, 10) == pytest.approx(0.5)
    assert range_score(2, 4, None) == pytest.approx(0.5)
    assert range_score(0, 0, None) == 1.0


def test_uppercase_and_lowercase():
    assert score("uppercase", "HELLO WORLD!") == 1.0
    assert score("uppercase", "HELLO world") == pytest.approx(0.5)
    assert score("uppercase", "HELLO WORLd") == pytest.approx(0.9)
    # 19 of 20 letters: at the 95% threshold, full credit.
    assert score("uppercase", "ABCDEFGHIJKLMNOPQRSt") == 1.0
    assert score("lowercase", "ÉCOLE école") == pytest.approx(0.5)
    assert score("lowercase", "all quiet here") == 1.0
    assert run("uppercase", "42 !!").explanation == "no letters"


def test_valid_json():
    assert score("valid_json", '{"name": "Ana", "age": 3}', keys=["name", "age"]) == 1.0
    embedded = run("valid_json", 'Here you go: {"name": "Ana"} done.', keys=["name", "age"])
    assert embedded.score == pytest.approx(0.5)
    assert "embedded" in embedded.explanation and "missing 'age'" in embedded.explanation
    assert score("valid_json", "```json\n[1, 2, 3]\n```") == 1.0
    assert score("valid_json", '[{"name": "x"}]', keys=["name"]) == 1.0
    assert score("valid_json", "[1, 2]", keys=["name"]) == 0.0
    assert score("valid_json", "not json at all") == 0.0
    assert score("valid_json", "{'single': 'quotes'}") == 0.0
    assert score("valid_json", "[" * 100_000) == 0.0


# ---------------------------------------------------------------- hygiene


def test_not_truncated():
    assert score("not_truncated", "It works.") == 1.0
    assert score("not_truncated", "It works and then the") == 0.0
    assert score("not_truncated", "It works,") == 0.0
    assert score("not_truncated", "Done! 🎉") == 1.0
    assert score("not_truncated", "(see above)") == 1.0
    assert score("not_truncated", "**Done.**") == 1.0
    assert score("not_truncated", "Il a dit « oui »") == 1.0


def test_not_echo():
    item = make_item("What is the capital of France?")
    assert score("not_echo", "What is the capital of France?", item) == 0.0
    # 3-grams: 'the capital of' and 'capital of france' copied, 2 of 4 -> under 0.7.
    assert score("not_echo", "The capital of France is Paris.", item) == 1.0
    # 4 of 5 3-grams copied: (1 - 0.8) / (1 - 0.7).
    assert score("not_echo", "What is the capital of France? Paris.", item) == pytest.approx(2 / 3, abs=1e-4)
    # Input text counts as part of the prompt.
    with_input = make_item("Summarise:", input="The river flooded the small village.")
    assert score("not_echo", "The river flooded the small village.", with_input) == 0.0


def test_not_echo_ignores_special_tokens_and_role_names():
    item = make_item("Good night, I'm going to sleep.")
    leak = "<|im_end|>\n<|im_start|>user\nGood night, I'm going to sleep.<|im_end|>\n<|im_start|>assistant\n"
    result = run("not_echo", leak, item)
    assert result.score == 0.0 and result.explanation == "echoes the prompt: 100% of word 3-grams copied"
    assert (
        score("not_echo", "<|start_header_id|>User<|end_header_id|>Good night, I'm going to sleep.", item)
        == 0.0
    )
    # Role names written as plain words are words: 'the user' is not a template header.
    assert score("not_echo", "Good night to the user, I'm going to sleep.", item) == 1.0


def test_non_empty():
    assert score("non_empty", "ok") == 1.0
    assert score("non_empty", "   \n") == 0.0
    assert score("non_empty", "<|endoftext|>") == 0.0
    assert score("non_empty", "\u200b\u200b") == 0.0
    assert score("non_empty", "...") == 0.0


def test_no_repetition():
    assert score("no_repetition", "The cat sat on the mat.") == 1.0
    # 9 words, 7 3-grams, 3 distinct: ratio 4/7, between max 0.3 and 0 at 0.6 -> (0.6 - 4/7) / 0.3.
    assert score("no_repetition", "a b c a b c a b c") == pytest.approx((0.6 - 4 / 7) / 0.3, abs=1e-4)
    assert score("no_repetition", "a b c a b c a b c", max_ratio=0.6) == 1.0
    # 12 words, 10 3-grams, 1 repeat ('a b c'): ratio 0.1, under the default 0.3.
    assert score("no_repetition", "a b c d e f g h i a b c") == 1.0
    # 10 3-grams, 4 repeat: ratio 0.4 -> (0.6 - 0.4) / 0.3.
    assert score("no_repetition", "a b c d e f a b c d e f") == pytest.approx(2 / 3, abs=1e-4)
    # At twice max_ratio and beyond: 0, and the explanation names the loop.
    result = run("no_repetition", "a b c d e f a b c d e f", max_ratio=0.2)
    assert (
        result.score == 0.0
        and result.explanation == "repeated 3-gram ratio 0.40 (max 0.2): a loop, 0 from 0.4"
    )
    assert score("no_repetition", "a b c a b c", max_ratio=0) == 0.0


def test_no_repetition_ignores_list_markers():
    # The numbers make every 3-gram distinct; without them 'dragon dragon dragon' repeats:
    # 5 words, 3 3-grams, 1 distinct -> ratio 2/3, past 0.6.
    assert score("no_repetition", "1. Dragon\n2. Dragon\n3. Dragon\n4. Dragon\n5. Dragon") == 0.0
    assert score("no_repetition", "1. Dragon 2. Dragon 3. Dragon 4. Dragon 5. Dragon") == 0.0
    assert score("no_repetition", "- Dragon\n- Dragon\n- Dragon\n- Dragon\n- Dragon") == 0.0
    assert score("no_repetition", "1. Ember\n2. Ash\n3. Pip\n4. Smoulder\n5. Glim") == 1.0
    # A year ending a sentence is not a list number: with '1945' kept, 2 of 6 3-grams repeat
    # (without it, 1 of 4 would).
    assert run("no_repetition", "It ended in 1945. It ended in 1945.").explanation.startswith(
        "repeated 3-gram ratio 0.33"
    )


def test_list_markers_are_stripped_but_not_numbers_in_prose():
    assert strip_list_markers("1. Run\n2) Swim\n**3.** Bike\n- Walk\n• Row") == "Run\nSwim\nBike\nWalk\nRow"
    assert words(strip_list_markers("Do this: 1. run 2. swim 3. bike")) == [
        "do",
        "this",
        "run",
        "swim",
        "bike",
    ]
    # A decimal, a time and a year are content, not markers.
    assert words(strip_list_markers("3.5 kg of flour\n10:30 start\nIn 1945. Then")) == (
        ["3", "5", "kg", "of", "flour", "10", "30", "start", "in", "1945", "then"]
    )
    assert list_items("Intro:\n1. a\n2. b") == ["a", "b"]
    assert list_items("1. a 2. b 3. c") == ["a", "b", "c"]
    assert list_items("first line\n\nsecond line") == ["first line", "second line"]


def test_run_level_loop_measure_agrees_with_the_check():
    collapsed = "1. Dragon\n2. Dragon\n3. Dragon\n4. Dragon\n5. Dragon"
    assert repeated_ngram_ratio(collapsed) == pytest.approx(2 / 3)
    assert run("no_repetition", collapsed).explanation.startswith("repeated 3-gram ratio 0.67")


def test_distinct_items():
    result = run("distinct_items", "1. Dragon\n2. **dragon!**\n3. Ember\n4. Ash")
    assert (
        result.score == pytest.approx(3 / 4)
        and result.explanation == "3 distinct of 4 items; repeated 'dragon'"
    )
    # An introduction line is not an item; bullets count like numbers.
    assert score("distinct_items", "Here are three:\n- Red\n- Red\n- Blue") == pytest.approx(2 / 3, abs=1e-4)
    # Inline list numbered in order.
    assert score("distinct_items", "Names: 1. Pip 2. Pip 3. Pip 4. Pip 5. Pip") == pytest.approx(1 / 5)
    # No list: the lines are the items (a poem that repeats one line).
    assert score("distinct_items", "The moon is bright\nthe moon is bright\n\nThe moon is bright.") == (
        pytest.approx(1 / 3, abs=1e-4)
    )
    # Not a list at all: nothing distinct to reward, as for the format check it goes with.
    result = run("distinct_items", "France, Germany and Spain are in Europe.")
    assert result.score == 0.0 and result.explanation == "not a list: a single item"
    # Special tokens are not items, nor part of one.
    assert score("distinct_items", "- Pip<|im_end|>\n- Pip\n<|endoftext|>") == pytest.approx(1 / 2)


def test_no_special_tokens():
    assert score("no_special_tokens", "Hello there.") == 1.0
    result = run("no_special_tokens", "Hello<|im_end|> again <|im_end|>")
    assert result.score == 0.0 and result.explanation == "leaked '<|im_end|>' (2 times)"
    assert score("no_special_tokens", "a </s> b") == 0.0
    assert score("no_special_tokens", "a <s> b") == 0.0
    assert score("no_special_tokens", "x <|endoftext|>") == 0.0


def test_language():
    english = "The cat is on the mat and it is very happy."
    french = "Le chat est sur le tapis et il est très content."
    assert score("language", english, lang="en") == 1.0
    assert score("language", english, lang="fr") == 0.0
    assert score("language", french, lang="fr") == 1.0
    assert score("language", "Paris.", lang="en") == 0.5
    # 'de' is French but one stop word among four English ones leaves English at 80%.
    assert score("language", "the Arc de Triomphe is in the city", lang="en") == 1.0


# ---------------------------------------------------------------- references and input


def test_rouge_l_rescaled_to_target():
    item = make_item(references=["Something else entirely", "the cat sat on the mat"])
    # P = 3/3, R = 3/6 -> F1 = 2/3 against reference 2.
    result = run("rouge_l", "The cat sat.", item)
    assert result.score == 1.0
    assert result.explanation == "ROUGE-L F1 0.67 vs reference 2"
    assert score("rouge_l", "The cat sat.", item, target=0.8) == pytest.approx((2 / 3) / 0.8, abs=1e-4)
    assert score("rouge_l", "The cat sat.", item, min=0.7) == 0.0


def test_chrf_and_bleu_against_sacrebleu():
    refs = ["The cat is sitting on the mat.", "A cat sits on the mat."]
    output = "The cat sits on the mat."
    item = make_item(references=refs)
    chrf = sentence_chrf(output, refs)
    bleu = sentence_bleu(output, refs)
    assert 0 < chrf < 100 and 0 < bleu < 100
    assert score("chrf", output, item, target=100) == pytest.approx(chrf / 100, abs=1e-4)
    assert score("bleu", output, item, target=100) == pytest.approx(bleu / 100, abs=1e-4)
    assert score("bleu", output, item, target=bleu / 2) == 1.0


def test_novelty():
    item = make_item("Write a story about a brave dragon.")
    # 3-grams: 'a brave dragon' copied, 4 of 5 new.
    assert score("novelty", "A brave dragon flew over the hills", item) == pytest.approx(0.8)
    # A loop: 7 3-grams but only 3 distinct new ones.
    assert score("novelty", "the dragon flew the dragon flew the dragon flew", item) == pytest.approx(
        3 / 7, abs=1e-4
    )
    # List numbers are not new wording: 'dragon' x5 has 3 3-grams, 1 distinct.
    assert score("novelty", "1. Dragon\n2. Dragon\n3. Dragon\n4. Dragon\n5. Dragon", item) == pytest.approx(
        1 / 3, abs=1e-4
    )
    # Nor are special tokens: 'a brave dragon flew' has 2 3-grams, 1 new.
    assert score("novelty", "<|im_start|>assistant A brave dragon flew<|im_end|>", item) == pytest.approx(0.5)


def test_answer_length_ratio():
    item = make_item("Summarise:", input=" ".join(f"w{i}" for i in range(20)))
    assert score("answer_length_ratio", "one two three four five", item, min=0.1, max=0.5) == 1.0
    fifteen = " ".join(["x"] * 15)
    assert score("answer_length_ratio", fifteen, item, min=0.1, max=0.5) == pytest.approx(0.5)
    assert score("answer_length_ratio", "one", item, min=0.1, max=0.5) == pytest.approx(0.5)


def test_faithful():
    item = make_item("Summarise:", input="The river flooded the village after three days of heavy rain.")
    assert score("faithful", "Heavy rains flooded the village.", item) == 1.0
    result = run("faithful", "Dragons flooded the village.", item)
    assert result.score == pytest.approx(2 / 3, abs=1e-4)
    assert "'dragons'" in result.explanation
    assert score("faithful", "Yes it is.", item) == 0.0


# ---------------------------------------------------------------- grading and robustness


def test_grade_item_content_times_what_the_guards_keep():
    checks = [
        CheckSpec("contains_any", 3.0, CHECKS["contains_any"].validate({"values": ["Paris"]})),
        CheckSpec("word_count", 1.0, CHECKS["word_count"].validate({"max": 2})),
    ]
    item = make_item(checks=checks)
    grade = grade_item(item, "Paris is the capital")  # content 1; word_count 4 words, max 2 -> 0
    assert grade.score == pytest.approx(1 * (1 - 1 * (1 - 0) / 4))
    grade = grade_item(item, "It is Paris")  # 3 words -> 1 - 1/2 = 0.5: the guard loses 0.5 of 1/4
    assert grade.score == pytest.approx(1 - 0.5 / 4)
    assert grade.content == 1.0
    assert grade.checks[0] == {
        "type": "contains_any",
        "role": "content",
        "weight": 3.0,
        "score": 1.0,
        "explanation": "found 'Paris'",
    }
    assert grade.checks[1]["role"] == "guard"


def test_an_off_topic_answer_earns_nothing_from_passing_guards():
    checks = [
        CheckSpec("contains_any", 2.0, CHECKS["contains_any"].validate({"values": ["Paris"]})),
        CheckSpec("contains_any", 2.0, CHECKS["contains_any"].validate({"values": ["Seine"]})),
        CheckSpec("no_repetition", 1.0, CHECKS["no_repetition"].validate({})),
        CheckSpec("not_truncated", 1.0, CHECKS["not_truncated"].validate({})),
    ]
    item = make_item(checks=checks)
    assert grade_item(item, "I am happy to help you with that.").score == 0.0
    # Half the content, both guards passed: 0.5 x (1 - 0) = 0.5 (a weighted mean would give 4/6).
    half = grade_item(item, "Paris is lovely.")
    assert half.content == 0.5 and half.score == pytest.approx(0.5)
    # Half the content and a truncated answer: 0.5 x (1 - 1/6).
    assert grade_item(item, "Paris is lovely and").score == pytest.approx(0.5 * (1 - 1 / 6), abs=1e-4)


def test_a_wrong_but_relevant_attempt_ranks_above_unrelated_text():
    checks = [
        CheckSpec("contains_any", 3.0, CHECKS["contains_any"].validate({"values": ["1945"]})),
        CheckSpec("no_repetition", 1.0, CHECKS["no_repetition"].validate({})),
    ]
    item = make_item("When did World War II end?", references=["World War II ended in 1945."], checks=checks)
    # Shares 'ended' with the reference (one of FULL_RELEVANCE_WORDS = 2): content 0 raised to 0.1 x 1/2.
    vague = grade_item(item, "It ended in the mid-1940s.", calibration={})
    assert vague.content == 0.0 and vague.score == pytest.approx(0.05)
    assert vague.adjustments[0]["type"] == "relevant_attempt" and "'ended'" in vague.adjustments[0]["explanation"]
    # Two shared words ('world', 'ended'): the full credit, 0.1; nothing shared: 0.
    assert grade_item(item, "The world war ended in the forties.", calibration={}).score == pytest.approx(0.1)
    assert grade_item(item, "Vera went to the zoo on a rainy Saturday.", calibration={}).score == 0.0
    # An answer that meets the task is untouched, and the credit never exceeds a partial answer's content.
    right = grade_item(item, "It ended in 1945.", calibration={})
    assert right.score == 1.0 and right.adjustments == []


def test_the_relevance_credit_leaves_computed_items_and_blank_answers_alone():
    item = make_item(references=["Paris"], checks=[
        CheckSpec("contains_any", 1.0, CHECKS["contains_any"].validate({"values": ["Paris"]}))])
    assert grade_item(item, "   ", calibration={}).score == 0.0
    computed = make_item("What is the product of seven and six?", checks=[
        CheckSpec("numeric_answer", 1.0, CHECKS["numeric_answer"].validate({"value": "42"}))])
    assert grade_item(computed, "The product of seven and six is 41.", calibration={}).score == 0.0


def test_an_item_of_guards_only_scores_their_weighted_mean():
    checks = [
        CheckSpec("non_empty", 1.0, {}),
        CheckSpec("not_truncated", 3.0, {}),
    ]
    grade = grade_item(make_item(checks=checks), "it just stops and")
    assert grade.content is None and grade.score == pytest.approx(1 / 4)


def test_a_role_given_by_the_suite_overrides_the_check_default():
    checks = [
        CheckSpec("contains_any", 1.0, CHECKS["contains_any"].validate({"values": ["Paris"]})),
        CheckSpec("word_count", 1.0, CHECKS["word_count"].validate({"max": 3}), role="content"),
    ]
    grade = grade_item(make_item(checks=checks), "Lyon, I think.")  # word count met, wrong city
    assert grade.checks[1]["role"] == "content" and grade.score == pytest.approx(0.5)


def _loop_item() -> Item:
    checks = [
        CheckSpec("contains_any", 3.0, CHECKS["contains_any"].validate({"values": ["Paris"]})),
        CheckSpec("not_truncated", 1.0, CHECKS["not_truncated"].validate({})),
    ]
    return make_item(checks=checks)


def test_clear_loop_multiplies_the_item_score():
    item = _loop_item()
    # 'paris is the capital' x5: 20 words, 18 3-grams, 4 distinct -> ratio 14/18, past LOOP_FULL: the floor.
    grade = grade_item(item, "Paris is the capital. " * 5)
    assert grade.score == pytest.approx(0.1)
    assert [c["type"] for c in grade.checks] == ["contains_any", "not_truncated"]
    (adjustment,) = grade.adjustments
    assert adjustment["type"] == "loop" and adjustment["factor"] == pytest.approx(0.1)
    assert adjustment["explanation"] == "loop: 78% of 3-grams repeat an earlier one; item score multiplied by 0.10"
    # Said three times, then a new sentence: 15 3-grams, 9 distinct, ratio 0.4.
    thrice = "Paris is the capital. " * 3 + "It lies on the Seine."
    factor = 1 - (6 / 15 - 0.3) / 0.45 * 0.9
    assert grade_item(item, thrice).score == pytest.approx(factor, abs=1e-3)


def test_a_character_loop_without_spaces_is_a_loop():
    item = _loop_item()
    grade = grade_item(item, "Paris. ::" + "iao" * 60)
    assert grade.score <= 0.1 and grade.adjustments[0]["type"] == "loop"


def test_no_loop_adjustment_below_a_loop():
    item = _loop_item()
    # Said twice: 8 words, 6 3-grams, too short to call a loop.
    assert grade_item(item, "Paris is the capital. " * 2).adjustments == []
    half = "Paris is the capital of France and it lies on the Seine river. Its museums are famous."
    assert grade_item(item, half).adjustments == [] and grade_item(item, half).score == 1.0


def test_mode_collapse_scales_an_answer_shared_by_many_prompts():
    item = _loop_item()
    answer = "Paris is the capital."
    alone = grade_item(item, answer, AnswerContext({}, shared_by=8, collapse_threshold=8))
    assert alone.score == 1.0 and alone.adjustments == []
    shared = grade_item(item, answer, AnswerContext({}, shared_by=40, collapse_threshold=8))
    assert shared.score == pytest.approx(8 / 40)
    assert shared.adjustments[0]["type"] == "mode_collapse"
    assert "40 different prompts" in shared.adjustments[0]["explanation"]
    assert collapse_threshold(402) == 21 and collapse_threshold(30) == 8


def test_novel_across_answers_compares_with_the_closest_other_answer():
    spec = CheckSpec("novel_across_answers", 1.0, CHECKS["novel_across_answers"].validate({}))
    item = make_item(checks=[spec])
    poem = "the moon sails over quiet silver water tonight"  # 8 words, 6 distinct 3-grams
    peers = {"other-1": "a cat sleeps by the fire", "other-2": "the moon sails over quiet hills"}
    grade = grade_item(item, poem, AnswerContext(peers))
    # 3 of its 6 3-grams ('the moon sails', 'moon sails over', 'sails over quiet') are in other-2:
    # overlap 0.5 over the 0.2 allowance -> (1 - 0.5) / (1 - 0.2).
    assert grade.score == pytest.approx(0.5 / 0.8, abs=1e-4)
    assert grade.checks[0]["explanation"] == "50% of word 3-grams also in the answer to other-2"
    assert grade_item(item, poem, AnswerContext({"x": "nothing alike at all here"})).score == 1.0
    assert grade_item(item, poem).checks[0]["explanation"] == "no other answers to compare with"


def test_empty_answer_scores_zero_everywhere():
    checks = [
        CheckSpec("not_contains", 1.0, CHECKS["not_contains"].validate({"values": ["Lyon"]})),
        CheckSpec("no_repetition", 1.0, CHECKS["no_repetition"].validate({})),
    ]
    grade = grade_item(make_item(checks=checks), "  ")
    assert grade.score == 0.0
    assert all(c["explanation"] == "no visible text in the answer" for c in grade.checks)
    assert grade_item(make_item(checks=checks), None).score == 0.0


def test_params_validation_messages():
    with pytest.raises(CheckParamError) as exc:
        CHECKS["numbered_list"].validate({"n": 0})
    assert exc.value.field == "n" and "> 0" in exc.value.message
    with pytest.raises(CheckParamError) as exc:
        CHECKS["numbered_list"].validate({"n": True})
    assert "boolean" in exc.value.message
    with pytest.raises(CheckParamError) as exc:
        CHECKS["contains_any"].validate({"values": ["ok", "?"]})
    assert exc.value.field == "values[1]"
    with pytest.raises(CheckParamError) as exc:
        CHECKS["word_count"].validate({"min": 5, "max": 2})
    assert exc.value.field == "min"
    with pytest.raises(CheckParamError) as exc:
        CHECKS["word_count"].validate({})
    with pytest.raises(CheckParamError) as exc:
        CHECKS["contains_any"].validate({"value": ["x"]})
    assert "did you mean 'values'" in exc.value.message
    with pytest.raises(CheckParamError):
        CHECKS["language"].validate({"lang": "de"})


def _params_for(name: str) -> dict:
    examples = {
        "contains_any": {"values": ["paris", "北京"]},
        "contains_all": {"values": ["a", "b"]},
        "key_ideas": {"ideas": [["x", "y"], ["z"]]},
        "not_contains": {"values": ["lyon"]},
        "regex": {"pattern": r"[<{]\|?", "flags": "ims"},
        "numbered_list": {"n": 3},
        "bulleted_list": {"n": 3},
        "word_count": {"min": 1, "max": 5},
        "sentence_count": {"max": 2},
        "char_count": {"max": 50},
        "starts_with": {"value": "yes"},
        "ends_with": {"value": "?"},
        "language": {"lang": "fr"},
        "valid_json": {"keys": ["a"]},
        "answer_length_ratio": {"min": 0.1, "max": 0.5},
        "numeric_answer": {"value": "42", "abs_tol": 0.5},
        "final_answer_contains": {"values": ["sunday"]},
        "unit_tests": {"tests": "assert True"},
    }
    return examples.get(name, {})


def test_validation_is_idempotent():
    # Runners may re-validate params that already went through a suite file.
    for name, definition in CHECKS.items():
        once = definition.validate(_params_for(name))
        assert definition.validate(once) == once, name


def _nasty_strings() -> list[str]:
    rng = random.Random(1234)
    pool = "aé漢🎉\u0301\u200b\ud800\x00\n\t{}[]<|>\"'.,!?-*1 " + "".join(
        chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(200)
    )
    strings = ["", " ", "\x00", "\ud800", "🎉", "<|endoftext|>", "{" * 5000, "1. " * 3000, "a" * 200_000]
    strings += ["".join(rng.choice(pool) for _ in range(rng.randrange(1, 400))) for _ in range(40)]
    strings.append(("word " * 50_000) + "end")
    return strings


def test_every_check_survives_odd_input():
    item = make_item(
        "Write about 漢字 🎉", input="Some input text with words.", references=["A reference answer.", "漢字"]
    )
    for name, definition in CHECKS.items():
        params = definition.validate(_params_for(name))
        for text in _nasty_strings():
            result = definition.run(text, item, params)
            assert 0.0 <= result.score <= 1.0, (name, text[:20])
            assert isinstance(result.explanation, str) and result.explanation


def test_ascii_text_folds_and_shows_as_the_general_unicode_path_does():
    # An ASCII string takes a short path; "é" after it sends the same characters down the general one.
    for code in range(128):
        c = chr(code)
        assert fold(c) + "e" == fold(c + "é"), repr(c)
        assert visible_text(c) + "é" == visible_text(c + "é"), repr(c)
    assert visible_text("a\x00b\tc\nd\x7f\x1b") == "ab\tc\nd"
