"""Speculative decoding from a row's own text: the guesses, and answers that never change."""

from __future__ import annotations

import pytest
import torch
from test_generate_helpers import tiny_loaded

from hessgpt.errors import HessError
from hessgpt.generate import Engine, GenerationRequest, GenerationSettings, LiveBatch
from hessgpt.lookup_drafts import LookupDrafts

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_guess_follows_the_latest_earlier_occurrence_of_the_longest_suffix():
    # (1, 2, 3) occurred at the start, followed by 7; the shorter (2, 3) last occurred before 8.
    assert LookupDrafts([1, 2, 3, 7, 9, 2, 3, 8, 1, 2, 3]).draft(4) == [7, 9, 2, 3]
    # Only (2, 3) occurred before: its latest occurrence wins over the first.
    assert LookupDrafts([2, 3, 5, 6, 2, 3, 8, 4, 2, 3]).draft(2) == [8, 4]
    # A guess stops at the end of the text, and at the limit.
    assert LookupDrafts([4, 5, 6, 4, 5]).draft(9) == [6, 4, 5]
    assert LookupDrafts([4, 5, 6, 4, 5]).draft(1) == [6]


def test_no_guess_without_an_earlier_occurrence_of_two_tokens():
    assert LookupDrafts([1, 2, 3, 4, 2]).draft(4) == []  # a single repeated token is not enough
    assert LookupDrafts([7, 7]).draft(4) == []
    assert LookupDrafts([]).draft(4) == []


def test_adding_tokens_one_by_one_indexes_like_all_at_once():
    tokens = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5]
    grown = LookupDrafts(tokens[:3])
    for t in tokens[3:]:
        grown.extend([t])
        whole = LookupDrafts(grown.tokens)
        assert grown.follows == whole.follows
        assert grown.draft(3) == whole.draft(3)


# -- the engine ------------------------------------------------------------------------------------

# Prompts that repeat themselves, so that guesses exist; a decisive tiny model then keeps some.
PROMPTS = [
    "abcabcabcabcab",
    "the cat, the cat, the cat, the",
    "1 2 3 1 2 3 1 2",
    "xyz",
    "hello hello hello hel",
]


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def loaded(request):
    return tiny_loaded(request.param, scale=4.0, block_size=128)


def requests(settings: GenerationSettings, logprobs: int | None = None) -> list[GenerationRequest]:
    return [GenerationRequest(list(p.encode()), settings, request_id=str(i), logprobs=logprobs)
            for i, p in enumerate(PROMPTS)]


SETTINGS = {
    "greedy": GenerationSettings(max_new_tokens=40, ignore_eos=True),
    "penalties": GenerationSettings(max_new_tokens=40, ignore_eos=True, repetition_penalty=1.3,
                                    no_repeat_ngram_size=4, min_new_tokens=5),
    "sampled": GenerationSettings(max_new_tokens=40, temperature=0.3, top_k=20, top_p=0.95, seed=11),
    "stop strings": GenerationSettings(max_new_tokens=40, ignore_eos=True, stop_strings=["ca", "3 1"]),
    "up to the context": GenerationSettings(max_new_tokens=120, ignore_eos=True),
}


@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_answers_with_guessed_tokens_are_the_answers_without(loaded, case):
    """Every result field, logprobs included, at batch 1 and 3: only the number of passes changes."""
    plain = Engine(loaded, batch_size=1, draft_tokens=0).generate(requests(SETTINGS[case], logprobs=2))
    for batch in (1, 3):
        engine = Engine(loaded, batch_size=batch, draft_tokens=4)
        assert engine.draft_tokens == 4  # the tiny models run on the fma stack, where guesses are used
        assert engine.generate(requests(SETTINGS[case], logprobs=2)) == plain
        assert 0 < engine.accepted <= engine.drafted  # guesses were fed and some were kept


def test_a_live_batch_and_a_stream_give_the_same_text_with_guesses(loaded):
    settings = SETTINGS["greedy"]
    plain = Engine(loaded, batch_size=1, draft_tokens=0).generate(requests(settings))
    engine = Engine(loaded, batch_size=2)
    live = LiveBatch(engine)
    for i, request in enumerate(requests(settings)):
        live.add(i, request)
    texts = {i: "" for i in range(len(PROMPTS))}
    while len(live):
        for update in live.step():
            texts[update.key] += update.text
    assert [texts[i] for i in range(len(PROMPTS))] == [r.text for r in plain]
    assert "".join(engine.stream(requests(settings)[0])) == plain[0].text
    assert engine.accepted > 0


def test_guesses_fill_only_a_small_step(loaded):
    """Past the row budget a step's arithmetic, not reading the weights, sets its time: no guesses."""
    engine = Engine(loaded, batch_size=len(PROMPTS))
    engine.draft_row_budget = len(PROMPTS)  # every decoding row already fills the budget
    engine.generate(requests(SETTINGS["greedy"]))
    assert engine.drafted == 0


def test_paths_whose_prompt_rows_round_differently_never_guess(loaded):
    engine = Engine(loaded, batch_size=1, linear="torch")
    assert not engine.model.rows_exact and engine.draft_tokens == 0


def test_a_bad_number_of_draft_tokens_is_refused(loaded):
    with pytest.raises(HessError, match=r"^draft_tokens: must be an integer >= 0, got -1$"):
        Engine(loaded, draft_tokens=-1)


def test_a_row_has_the_same_logits_fed_with_its_guesses_as_alone(loaded):
    """What makes the answers equal: the logits of tokens fed together in one row, bit for bit."""
    from hessgpt.inference import InferenceModel, Segment

    model = InferenceModel(loaded.model)
    assert model.rows_exact
    tokens = list(b"guess what comes next, guess what")
    cache = model.new_cache(1, 64)
    model.forward(torch.tensor(tokens[:20]), [Segment(0, 0, 20)], cache, torch.tensor([19]))
    together = model.forward(torch.tensor(tokens[20:]), [Segment(0, 20, len(tokens) - 20)], cache)
    cache = model.new_cache(1, 64)
    model.forward(torch.tensor(tokens[:20]), [Segment(0, 0, 20)], cache, torch.tensor([19]))
    alone = [model.forward(torch.tensor([t]), [Segment(0, 20 + i, 1)], cache)[0]
             for i, t in enumerate(tokens[20:])]
    assert torch.equal(together, torch.stack(alone))
