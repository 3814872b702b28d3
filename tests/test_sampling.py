"""Sampling controls, each checked by hand on fixed logits (functions, then through the engine)."""

from __future__ import annotations

import math

import pytest
import torch
from test_generate_helpers import EOS, table_engine

from hessgpt.errors import HessError
from hessgpt.generate import GenerationRequest, GenerationSettings
from hessgpt.sampling import (
    NgramIndex,
    apply_repetition_penalty,
    banned_ngram_tokens,
    choose,
    draw,
    make_generator,
    request_seed,
    top_k_filter,
    top_p_filter,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

A, B, C, D = (ord(c) for c in "abcd")


def logits_of(probs: list[float]) -> torch.Tensor:
    return torch.log(torch.tensor(probs, dtype=torch.float64))


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    out = apply_repetition_penalty(logits, torch.tensor([0, 1]), 2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, 3.0]
    assert logits.tolist() == [2.0, -1.0, 0.5, 3.0]  # the input is not modified
    # Below 1 the penalty favours seen tokens instead.
    assert apply_repetition_penalty(logits, torch.tensor([0, 1]), 0.5).tolist() == [4.0, -0.5, 0.5, 3.0]


def test_top_k_keeps_exactly_k():
    out = top_k_filter(torch.tensor([1.0, 4.0, 3.0, 2.0]), 2)
    assert torch.isinf(out[[0, 3]]).all() and out[[1, 2]].tolist() == [4.0, 3.0]
    assert top_k_filter(torch.tensor([1.0, 2.0]), None).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("p", "kept"),
    [
        (0.5, {0}),
        (0.8, {0, 1}),
        (0.81, {0, 1, 2}),
        (0.95, {0, 1, 2}),
        (0.96, {0, 1, 2, 3}),
        (1.0, {0, 1, 2, 3}),
    ],
)
def test_top_p_keeps_the_smallest_prefix_with_mass_at_least_p(p, kept):
    logits = logits_of([0.5, 0.3, 0.15, 0.05])
    out = top_p_filter(logits, p)
    assert {i for i in range(4) if math.isfinite(out[i])} == kept


def test_top_p_orders_by_probability_not_by_id():
    logits = logits_of([0.05, 0.15, 0.3, 0.5])
    out = top_p_filter(logits, 0.8)
    assert {i for i in range(4) if math.isfinite(out[i])} == {2, 3}


def test_draw_follows_the_distribution_and_the_seed():
    logits = logits_of([0.7, 0.2, 0.1])
    gen = make_generator(1, "x")
    counts = [0, 0, 0]
    for _ in range(4000):
        counts[draw(logits, gen)] += 1
    assert abs(counts[0] / 4000 - 0.7) < 0.03 and abs(counts[2] / 4000 - 0.1) < 0.02
    first = [draw(logits, make_generator(5, "a")) for _ in range(3)]
    assert len(set(first)) == 1  # a fresh generator with the same seed gives the same first draw


def test_request_seed_depends_on_seed_and_id_only():
    assert request_seed(0, "item-1") == request_seed(0, "item-1")
    assert len({request_seed(0, "item-1"), request_seed(1, "item-1"), request_seed(0, "item-2")}) == 3


def test_greedy_is_argmax_and_temperature_flattens():
    logits = logits_of([0.2, 0.5, 0.3])
    assert choose(logits, temperature=0.0, top_k=None, top_p=1.0, generator=None) == 1
    gen = make_generator(0, "")
    hot = [choose(logits, temperature=100.0, top_k=None, top_p=1.0, generator=gen) for _ in range(3000)]
    assert all(abs(hot.count(i) / 3000 - 1 / 3) < 0.04 for i in range(3))


def test_ngram_index_matches_the_direct_definition():
    seq = [1, 2, 3, 1, 2, 4, 1, 2]
    for n in (1, 2, 3):
        index = NgramIndex(n, seq)
        assert sorted(index.banned()) == sorted(set(banned_ngram_tokens(seq, n)))
    assert sorted(NgramIndex(3, seq).banned()) == [3, 4]  # "1 2" was followed by 3 and by 4


# -- through the engine, with hand-made next-token tables -------------------------------------------


def run(engine, prompt: bytes, **settings):
    request = GenerationRequest(list(prompt), GenerationSettings(**settings), request_id="r")
    return engine.generate([request])[0]


def first_tokens(engine, temperature: float, n: int) -> list[int]:
    """The first token of ``n`` requests that differ only by their id (each its own seeded draw)."""
    settings = GenerationSettings(max_new_tokens=1, temperature=temperature, seed=0)
    requests = [GenerationRequest([ord("x")], settings, request_id=f"draw-{i}") for i in range(n)]
    return [r.token_ids[0] for r in engine.generate(requests)]


def chi_square(tokens: list[int], expected: dict[int, float]) -> float:
    n = len(tokens)
    return sum((tokens.count(t) - n * p) ** 2 / (n * p) for t, p in expected.items())


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_samples_follow_softmax_of_logits_over_t(temperature):
    probs = {A: 0.5, B: 0.3, C: 0.15, D: 0.05}
    engine = table_engine({t: probs for t in range(256)}, batch_size=64)
    logits = torch.log(torch.tensor(list(probs.values()), dtype=torch.float64))
    target = dict(zip(probs, torch.softmax(logits / temperature, dim=0).tolist(), strict=True))
    tokens = first_tokens(engine, temperature, 4000)
    assert set(tokens) <= set(probs)
    # 3 degrees of freedom: chi-square exceeds 16.27 with probability 0.001 (the draws are seeded).
    assert chi_square(tokens, target) < 16.27
    if temperature != 1.0:  # the check can fail: the untempered distribution is far off
        assert chi_square(tokens, probs) > 100


def test_temperature_zero_is_greedy_whatever_the_seed_and_filters():
    engine = table_engine({t: {A: 0.3, B: 0.45, C: 0.25} for t in range(256)}, batch_size=64)
    assert set(first_tokens(engine, 0.0, 50)) == {B}
    out = run(engine, b"x", max_new_tokens=20, temperature=0.0, top_k=3, top_p=0.5, seed=9)
    assert out.token_ids == [B] * 20


def test_top_k_2_never_emits_the_third_token():
    table = {t: {A: 0.4, B: 0.35, C: 0.25} for t in range(256)}
    engine = table_engine(table)
    seen = set(run(engine, b"x", max_new_tokens=300, temperature=1.0, top_k=2, seed=3).token_ids)
    assert seen == {A, B}
    # Without the filter the third token does come out (so the assertion above can fail).
    assert C in run(engine, b"x", max_new_tokens=300, temperature=1.0, seed=3).token_ids


def test_top_p_sampling_only_draws_from_the_nucleus():
    table = {t: {A: 0.5, B: 0.3, C: 0.15, D: 0.05} for t in range(256)}
    engine = table_engine(table)
    assert set(run(engine, b"x", max_new_tokens=300, temperature=1.0, top_p=0.8).token_ids) == {A, B}
    assert set(run(engine, b"x", max_new_tokens=300, temperature=1.0, top_p=0.85).token_ids) == {A, B, C}


def test_repetition_penalty_in_greedy_decoding():
    # After any token: 'a' 0.5, 'b' 0.3, eos 0.2. Greedy repeats 'a'; with the penalty the seen 'a'
    # (log 0.5 < 0, multiplied by 2 -> log 0.25) falls below 'b' (log 0.3), then 'b' is seen too.
    table = {t: {A: 0.5, B: 0.3, EOS: 0.2} for t in range(256)}
    engine = table_engine(table)
    assert bytes(run(engine, b"x", max_new_tokens=4).token_ids) == b"aaaa"
    out = run(engine, b"x", max_new_tokens=4, repetition_penalty=2.0)
    # a; then a=log.25*... : 'a' seen -> 2*log(.5)=-1.386 < log(.3)=-1.204 -> b; then both seen:
    # a -1.386, b 2*log(.3)=-2.408, eos log(.2)=-1.609 -> a; and so on.
    assert bytes(out.token_ids) == b"abaa"


def test_prompt_tokens_count_as_seen_for_the_penalty():
    table = {t: {A: 0.5, B: 0.3, EOS: 0.2} for t in range(256)}
    out = run(table_engine(table), b"a", max_new_tokens=1, repetition_penalty=2.0)
    assert out.token_ids == [B]


def test_no_repeat_ngram_size_blocks_repeated_bigrams():
    # a -> b -> a -> b ... unless forbidden; c is the fallback; after c, a and b tie (a wins: lower id).
    table = {A: {B: 0.6, C: 0.4}, B: {A: 0.6, C: 0.4}, C: {A: 0.5, B: 0.5}}
    engine = table_engine(table, default={A: 0.5, B: 0.5})
    assert bytes(run(engine, b"a", max_new_tokens=4).token_ids) == b"baba"
    # With n=2: b (a b is new), a (b a is new), then "a b" exists so c, then a.
    out = run(engine, b"a", max_new_tokens=4, no_repeat_ngram_size=2)
    assert bytes(out.token_ids) == b"baca"
    seq = [A] + out.token_ids
    bigrams = list(zip(seq, seq[1:], strict=False))
    assert len(bigrams) == len(set(bigrams))


def test_min_new_tokens_suppresses_the_stop_token():
    table = {t: {EOS: 0.6, A: 0.4} for t in range(256)}
    engine = table_engine(table)
    assert run(engine, b"x", max_new_tokens=10).token_ids == []
    out = run(engine, b"x", max_new_tokens=10, min_new_tokens=3)
    assert out.token_ids == [A, A, A] and out.finish_reason == "stop"


def test_ignore_eos_runs_to_max_new_tokens():
    table = {t: {EOS: 0.6, A: 0.4} for t in range(256)}
    out = run(table_engine(table), b"x", max_new_tokens=5, ignore_eos=True)
    assert out.finish_reason == "length" and len(out.token_ids) == 5


def test_request_stop_token_ids():
    table = {t: {A: 0.6, B: 0.4} for t in range(256)}
    table[A] = {B: 1.0}
    table[B] = {C: 1.0}
    engine = table_engine(table)
    req = GenerationRequest([ord("x")], GenerationSettings(max_new_tokens=10), stop_token_ids=[C])
    out = engine.generate([req])[0]
    assert out.token_ids == [A, B] and out.finish_reason == "stop"


def test_stop_strings_are_trimmed_even_across_tokens():
    text = b">the quick"  # every byte distinct: a chain the table can encode
    engine = table_engine({text[i]: {text[i + 1]: 1.0} for i in range(len(text) - 1)})
    out = run(engine, b">", max_new_tokens=40, stop_strings=("qui",))
    assert out.text == "the " and out.finish_reason == "stop_string"
    assert bytes(out.token_ids) == b"the "
    out = run(engine, b">", max_new_tokens=40, stop_strings=("xyz", "e q"))
    assert out.text == "th" and bytes(out.token_ids) == b"th"
    # The stop string is not complete within max_new_tokens: the untouched text.
    out = run(engine, b">", max_new_tokens=5, stop_strings=("quick",))
    assert out.text == "the q" and out.finish_reason == "length"
    assert run(engine, b">", max_new_tokens=40).text == "the quick"


def test_beam_search_finds_the_best_sequence_greedy_misses():
    # From '>': a 0.6, b 0.4. After a: c/d/e about a third each; after b: f 0.9. Then the end.
    # Greedy: a c (0.6 * 0.34 = 0.204). Best: b f (0.4 * 0.9 = 0.36).
    E, F, G = (ord(c) for c in "efg")
    table = {ord(">"): {A: 0.6, B: 0.4}, A: {C: 0.34, D: 0.33, E: 0.33}, B: {F: 0.9, G: 0.1}}
    engine = table_engine(table)
    greedy = run(engine, b">", max_new_tokens=5)
    assert greedy.text == "ac"
    beam = run(engine, b">", max_new_tokens=5, num_beams=2)
    assert beam.text == "bf" and beam.finish_reason == "stop"
    assert run(engine, b">", max_new_tokens=5, num_beams=3).text == "bf"


def test_beam_search_length_penalty_prefers_longer_or_shorter():
    # Short path: '>' -> a (0.5) -> end. Long path: '>' -> b (0.5) -> c (0.8) -> d (0.8) -> end.
    # Sum of log p: short log .5 = -0.69 over 2 tokens; long log(.5*.8*.8) = -1.14 over 4 tokens.
    table = {
        ord(">"): {A: 0.5, B: 0.5},
        A: {EOS: 1.0},
        B: {C: 0.8, EOS: 0.2},
        C: {D: 0.8, EOS: 0.2},
        D: {EOS: 1.0},
    }
    engine = table_engine(table)
    # length_penalty 1: -0.69/2 = -0.35 vs -1.14/4 = -0.29 -> long; 0: raw sums -> short.
    assert run(engine, b">", max_new_tokens=8, num_beams=2, length_penalty=1.0).text == "bcd"
    assert run(engine, b">", max_new_tokens=8, num_beams=2, length_penalty=0.0).text == "a"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.5),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("num_beams", 0),
        ("max_new_tokens", 0),
        ("repetition_penalty", 0.0),
        ("top_k", -1),
        ("min_new_tokens", 500),
        ("no_repeat_ngram_size", -2),
        ("temperature", float("nan")),
        ("stop_strings", ("",)),
    ],
)
def test_invalid_settings_name_the_setting(field, value):
    settings = GenerationSettings(**{field: value})
    with pytest.raises(HessError) as err:
        settings.validate()
    message = str(err.value)
    assert message.startswith(f"{field}:") and "\n" not in message


def test_beam_search_with_sampling_is_refused():
    with pytest.raises(HessError, match="^num_beams:"):
        GenerationSettings(num_beams=2, temperature=0.7).validate()
