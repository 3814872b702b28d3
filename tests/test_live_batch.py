"""LiveBatch (requests joining a running batch) and per-token log-probabilities on tiny models."""

from __future__ import annotations

import math

import pytest
from test_generate_helpers import tiny_loaded

from hessgpt.errors import HessError
from hessgpt.generate import Engine, GenerationRequest, GenerationSettings, LiveBatch

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = ["hello", "The quick brown fox", "émoji 🙂", "a", "What is 2 + 2?", "zzz zzz", "Bonjour", "x" * 40]


@pytest.fixture(scope="module")
def engine():
    return Engine(tiny_loaded("llama", scale=1.0, seed=1), batch_size=4)


def requests(sampled: bool) -> list[GenerationRequest]:
    out = []
    for i, text in enumerate(PROMPTS):
        settings = GenerationSettings(
            max_new_tokens=6 + 3 * i, temperature=0.9 if sampled else 0.0, top_p=0.95, seed=i, ignore_eos=True
        )
        out.append(GenerationRequest(list(text.encode()), settings))
    return out


def run_live(engine: Engine, reqs: list[GenerationRequest], join_every: int, cancel: int | None = None):
    """Requests join one every ``join_every`` steps; returns each key's (streamed text, result)."""
    live = LiveBatch(engine, slots=3)
    texts: dict[int, str] = {}
    results = {}
    waiting = list(enumerate(reqs))
    steps = 0
    while waiting or len(live):
        if waiting and steps % join_every == 0:
            key, req = waiting.pop(0)
            live.add(key, req)
        for update in live.step():
            texts[update.key] = texts.get(update.key, "") + update.text
            if update.result is not None:
                results[update.key] = update.result
        steps += 1
        if cancel is not None and steps == 3:
            assert live.cancel(cancel)
    return texts, results


@pytest.mark.parametrize("sampled", [False, True])
def test_rows_joining_a_running_batch_get_their_solo_answers(engine, sampled):
    reqs = requests(sampled)
    solo = [engine.generate([r])[0] for r in reqs]
    for join_every in (1, 2, 5):
        texts, results = run_live(engine, reqs, join_every)
        for key, want in enumerate(solo):
            assert results[key].token_ids == want.token_ids
            assert texts[key] == want.text == results[key].text


def test_a_cancelled_row_frees_its_slot_and_changes_no_other_answer(engine):
    reqs = requests(False)
    solo = [engine.generate([r])[0] for r in reqs]
    texts, results = run_live(engine, reqs, 1, cancel=1)
    assert 1 not in results
    for key, want in enumerate(solo):
        if key != 1:
            assert results[key].token_ids == want.token_ids


def test_live_batch_refuses_what_it_cannot_run_and_keeps_going(engine):
    live = LiveBatch(engine)
    too_long = GenerationRequest([65] * 120, GenerationSettings(max_new_tokens=20))
    with pytest.raises(HessError, match="context"):
        live.add("long", too_long)
    with pytest.raises(HessError, match="num_beams"):
        live.add("beam", GenerationRequest([65], GenerationSettings(num_beams=2)))
    assert len(live) == 0 and live.step() == []
    live.add("ok", requests(False)[0])
    while len(live):
        live.step()
    assert live.batch is None  # the cache is released once idle


def test_chosen_token_logprobs_match_the_prompt_scores_of_the_answer(engine):
    prompt = list(b"The quick brown fox")
    settings = GenerationSettings(max_new_tokens=8, temperature=0.8, seed=3, ignore_eos=True)
    result = engine.generate([GenerationRequest(prompt, settings, logprobs=3)])[0]
    assert [t.token_id for t in result.logprobs] == result.token_ids
    scored = engine.prompt_logprobs(prompt + result.token_ids, top=3)
    assert scored[0] is None and len(scored) == len(prompt) + len(result.token_ids)
    for got, want in zip(result.logprobs, scored[len(prompt) :], strict=True):
        assert got.token_id == want.token_id
        assert math.isclose(got.logprob, want.logprob, abs_tol=1e-4)
        assert [t for t, _ in got.top] == [t for t, _ in want.top]
        assert len(got.top) == 3 and got.top[0][1] >= got.top[1][1] >= got.top[2][1]
    # The sum over a continuation is the engine's log-likelihood of it.
    ll = engine.loglikelihood([(prompt, result.token_ids)])[0]
    assert math.isclose(sum(t.logprob for t in scored[len(prompt) :]), ll.logprob, abs_tol=1e-6)


def test_prompt_logprobs_are_computed_in_chunks_for_long_prompts(monkeypatch, engine):
    import hessgpt.generate as generate

    prompt = list(("Long prompt, " * 9).encode())[:100]
    whole = engine.prompt_logprobs(prompt, top=2)
    monkeypatch.setattr(generate, "_SCORED_TOKENS_PER_FORWARD", 16)
    chunked = engine.prompt_logprobs(prompt, top=2)
    assert len(chunked) == len(whole) == 100
    for a, b in zip(whole[1:], chunked[1:], strict=True):
        assert a.token_id == b.token_id and math.isclose(a.logprob, b.logprob, abs_tol=1e-4)
