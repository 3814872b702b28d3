"""The engine on tiny random models: cache correctness, batch invariance, seeds, scoring, streaming."""

from __future__ import annotations

import random

import pytest
import torch
from test_generate_helpers import EOS, naive_greedy, tiny_loaded

from hessgpt.errors import HessError
from hessgpt.generate import Engine, GenerationRequest, GenerationSettings

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

TEXTS = [
    "hello",
    "a",
    "The quick brown fox jumps over the lazy dog",
    "zz",
    "Bonjour, ça va ?",
    "42",
    "one two three four five six seven",
    "x" * 37,
    "Qu'est-ce que c'est ?",
    "émoji 🙂 ok",
    "ab cd",
    "What is the capital of France?",
    "tiny",
    "A much longer prompt that goes on for a while, and then more.",
    "z",
    "!?",
]


def byte_prompts() -> list[list[int]]:
    return [list(t.encode("utf-8")) for t in TEXTS]


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def decisive(request):
    """Large weights: clear-cut choices, so a full recompute (different float rounding) agrees."""
    return tiny_loaded(request.param, scale=4.0)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def near_uniform(request):
    """Default init: logits almost tied, the hardest case for bit-for-bit batch invariance."""
    return tiny_loaded(request.param, scale=1.0, seed=1)


def greedy_requests(n_new: int = 24) -> list[GenerationRequest]:
    settings = GenerationSettings(max_new_tokens=n_new, ignore_eos=True)
    return [GenerationRequest(p, settings, request_id=str(i)) for i, p in enumerate(byte_prompts())]


def test_cached_generation_equals_naive_full_recompute(decisive):
    engine = Engine(decisive, batch_size=16)
    results = engine.generate(greedy_requests())
    for prompt, result in zip(byte_prompts(), results, strict=True):
        assert result.token_ids == naive_greedy(decisive, prompt, 24)


def test_greedy_outputs_identical_at_batch_sizes_1_3_16(near_uniform):
    outputs = {}
    for batch_size in (1, 3, 16):
        results = Engine(near_uniform, batch_size=batch_size).generate(greedy_requests(32))
        outputs[batch_size] = [r.token_ids for r in results]
    assert outputs[1] == outputs[3] == outputs[16]
    assert len({tuple(o) for o in outputs[1]}) > 1  # the prompts do lead to different outputs


def test_batch_invariance_holds_for_the_logits_themselves(near_uniform):
    """Stronger than equal tokens: each row's logits are bit-for-bit those it gets alone."""
    from hessgpt.inference import InferenceModel, Segment

    im = InferenceModel(near_uniform.model)
    prompts = byte_prompts()
    alone = []
    for p in prompts:
        cache = im.new_cache(1, len(p))
        alone.append(
            im.forward(torch.tensor(p), [Segment(0, 0, len(p))], cache, torch.tensor([len(p) - 1]))[0]
        )
    cache = im.new_cache(len(prompts), 200)  # other slot count and capacity than alone
    order = list(reversed(range(len(prompts))))
    tokens = torch.tensor([t for i in order for t in prompts[i]])
    segments, last, offset = [], [], 0
    for slot, i in enumerate(order):
        segments.append(Segment(slot, 0, len(prompts[i])))
        offset += len(prompts[i])
        last.append(offset - 1)
    batched = im.forward(tokens, segments, cache, torch.tensor(last))
    for row, i in enumerate(order):
        assert torch.equal(batched[row], alone[i])


def test_results_come_back_in_input_order_whatever_the_order(near_uniform):
    requests = greedy_requests(12)
    engine = Engine(near_uniform, batch_size=5)
    straight = engine.generate(requests)
    shuffled = list(range(len(requests)))
    random.Random(0).shuffle(shuffled)
    results = engine.generate([requests[i] for i in shuffled])
    for position, i in enumerate(shuffled):
        assert results[position].token_ids == straight[i].token_ids


def test_each_result_is_handed_over_as_soon_as_it_is_finished(near_uniform):
    """on_result sees every request once, with its input index, before generate returns."""
    lengths = [3, 20, 7, 1, 12, 5]
    requests = [
        GenerationRequest(p, GenerationSettings(max_new_tokens=n, ignore_eos=True))
        for p, n in zip(byte_prompts(), lengths, strict=False)
    ]
    seen: list[tuple[int, list[int]]] = []
    results = Engine(near_uniform, batch_size=2).generate(
        requests, on_result=lambda i, r: seen.append((i, r.token_ids))
    )
    assert sorted(i for i, _ in seen) == list(range(len(requests)))
    assert all(results[i].token_ids == ids for i, ids in seen)
    assert lengths[seen[0][0]] < max(lengths)  # a short request comes out before the longest is done


def sampled_requests(seed: int) -> list[GenerationRequest]:
    settings = GenerationSettings(
        max_new_tokens=20,
        temperature=0.9,
        top_p=0.95,
        top_k=50,
        seed=seed,
        repetition_penalty=1.1,
        ignore_eos=True,
    )
    return [GenerationRequest(p, settings, request_id=f"item-{i}") for i, p in enumerate(byte_prompts())]


def test_same_seed_reproduces_samples_whatever_the_batch_or_order(near_uniform):
    reference = [r.token_ids for r in Engine(near_uniform, batch_size=16).generate(sampled_requests(7))]
    again = [r.token_ids for r in Engine(near_uniform, batch_size=3).generate(sampled_requests(7))]
    assert again == reference
    reversed_run = Engine(near_uniform, batch_size=1).generate(sampled_requests(7)[::-1])
    assert [r.token_ids for r in reversed_run][::-1] == reference
    # Alone, in the middle of a batch of other requests with other settings.
    mixed = greedy_requests(5)[:4] + [sampled_requests(7)[3]] + greedy_requests(5)[4:9]
    assert Engine(near_uniform, batch_size=4).generate(mixed)[4].token_ids == reference[3]


def test_different_seeds_and_ids_give_different_samples(near_uniform):
    a = [r.token_ids for r in Engine(near_uniform).generate(sampled_requests(1))]
    b = [r.token_ids for r in Engine(near_uniform).generate(sampled_requests(2))]
    assert sum(x != y for x, y in zip(a, b, strict=True)) >= 14
    # Same prompt, same seed, two request ids (two samples of one item): different draws.
    prompt = byte_prompts()[0]
    settings = GenerationSettings(max_new_tokens=20, temperature=1.0, seed=1, ignore_eos=True)
    one, two = Engine(near_uniform).generate(
        [
            GenerationRequest(prompt, settings, request_id="q#0"),
            GenerationRequest(prompt, settings, request_id="q#1"),
        ]
    )
    assert one.token_ids != two.token_ids


def test_continuous_batching_reuses_slots(decisive):
    # 16 requests with very different lengths through 2 slots: every result equals its solo run.
    requests = [
        GenerationRequest(p, GenerationSettings(max_new_tokens=1 + (i * 7) % 20, ignore_eos=True))
        for i, p in enumerate(byte_prompts())
    ]
    batched = Engine(decisive, batch_size=2).generate(requests)
    solo = Engine(decisive, batch_size=1)
    for request, result in zip(requests, batched, strict=True):
        assert result.token_ids == solo.generate([request])[0].token_ids
        assert len(result.token_ids) == request.settings.max_new_tokens and result.finish_reason == "length"


def test_long_prompt_keeps_its_end_and_says_so(decisive):
    engine = Engine(decisive)  # context 128
    prompt = list(("0123456789" * 20).encode())
    settings = GenerationSettings(max_new_tokens=8, ignore_eos=True)
    result = engine.generate([GenerationRequest(prompt, settings)])[0]
    assert result.prompt_truncated and result.prompt_tokens == 120
    tail = engine.generate([GenerationRequest(prompt[-120:], settings)])[0]
    assert not tail.prompt_truncated and tail.token_ids == result.token_ids
    with pytest.raises(HessError, match="^max_new_tokens: 128 leaves no room"):
        engine.generate([GenerationRequest(prompt, GenerationSettings(max_new_tokens=128))])


def test_bad_requests_give_one_line_errors(decisive):
    engine = Engine(decisive)
    with pytest.raises(HessError, match=r"^request 'q1': the prompt is empty"):
        engine.generate([GenerationRequest([], request_id="q1")])
    with pytest.raises(HessError, match="outside the model's vocabulary"):
        engine.generate([GenerationRequest([5, 100000])])
    with pytest.raises(HessError, match="^top_p:"):
        engine.generate([GenerationRequest([5], GenerationSettings(top_p=2.0))])
    with pytest.raises(HessError, match="^batch_size:"):
        Engine(decisive, batch_size=0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ud800 lone surrogate",
        "🙂🙃" * 30,
        "\x00\x01\x7f",
        "مرحبا بالعالم",
        "e\u0301\u0301\u0301",
        "\u202eRTL override",
        "a\r\nb\tc",
        "\uffff\ufffe",
    ],
)
def test_any_unicode_prompt_generates_valid_text(decisive, text):
    engine = Engine(decisive, batch_size=4)
    request = engine.text_request("x" + text, GenerationSettings(max_new_tokens=16, temperature=1.0, seed=3))
    result = engine.generate([request])[0]
    assert isinstance(result.text, str)
    result.text.encode("utf-8")  # always valid UTF-8 (bad byte sequences become U+FFFD)
    chat = engine.chat_request(
        [{"role": "user", "content": text or "?"}], GenerationSettings(max_new_tokens=8)
    )
    assert isinstance(engine.generate([chat])[0].text, str)


def test_stream_yields_the_same_text_in_utf8_safe_pieces(decisive):
    engine = Engine(decisive)
    for i, prompt in enumerate(byte_prompts()[:6]):
        settings = GenerationSettings(max_new_tokens=30, temperature=1.0, seed=i, ignore_eos=True)
        request = GenerationRequest(prompt, settings, request_id=str(i))
        pieces = list(engine.stream(request))
        full = engine.generate([request])[0]
        assert "".join(pieces) == full.text
        assert engine.last_stream_result.token_ids == full.token_ids


def test_stream_holds_back_a_possible_stop_string():
    from test_generate_helpers import table_engine

    text = ">é€ stop!".encode()  # multi-byte characters arrive one byte per token
    chain = {text[i]: {text[i + 1]: 1.0} for i in range(len(text) - 1)}
    engine = table_engine(chain)
    request = GenerationRequest([ord(">")], GenerationSettings(max_new_tokens=30, stop_strings=(" st",)))
    pieces = list(engine.stream(request))
    assert "".join(pieces) == "é€"
    assert all("\ufffd" not in p for p in pieces)  # never half a character
    assert engine.last_stream_result.finish_reason == "stop_string"


def test_chat_request_uses_the_template_and_its_stops(decisive):
    engine = Engine(decisive)
    settings = GenerationSettings(max_new_tokens=4, stop_strings=("zz",))
    request = engine.chat_request([{"role": "user", "content": "Hi"}], settings, request_id="c1")
    assert bytes(request.prompt_ids).decode() == "User: Hi\nAssistant:"
    assert EOS in request.stop_token_ids
    assert set(request.settings.stop_strings) == {"zz", "\nUser:", "\nSystem:"}
    assert request.request_id == "c1" and settings.stop_strings == ("zz",)


# -- loglikelihood ----------------------------------------------------------------------------------


def hand_loglikelihood(loaded, context: list[int], continuation: list[int]) -> tuple[float, int, bool]:
    ids = context + continuation
    with torch.no_grad():
        logits, _ = loaded.model(torch.tensor([ids]))
    logprobs = torch.log_softmax(logits[0].double(), dim=-1)
    total, correct = 0.0, 0
    for pos in range(len(context), len(ids)):
        total += float(logprobs[pos - 1, ids[pos]])
        correct += int(logprobs[pos - 1].argmax()) == ids[pos]
    return total, correct, correct == len(continuation)


def test_loglikelihood_matches_a_hand_computation_from_full_logits(decisive):
    engine = Engine(decisive, batch_size=3)
    pairs = [
        (list(b"The capital of France is"), list(b" Paris.")),
        (list(b"x"), list("ça".encode())),
        (list(b"abc"), list(b"d")),
    ]
    greedy = naive_greedy(decisive, list(b"hello"), 6)
    pairs.append((list(b"hello"), greedy))
    results = engine.loglikelihood(pairs)
    for (ctx, cont), res in zip(pairs, results, strict=True):
        logprob, correct, is_greedy = hand_loglikelihood(decisive, ctx, cont)
        assert res.logprob == pytest.approx(logprob, rel=1e-5, abs=1e-5)
        assert (res.n_tokens, res.n_correct, res.is_greedy) == (len(cont), correct, is_greedy)
        assert res.n_bytes == len(bytes(cont))
    assert results[3].is_greedy and results[3].n_correct == 6
    assert results[1].n_bytes == 3  # "ça" is 3 UTF-8 bytes


def test_loglikelihood_is_batch_and_order_invariant(near_uniform):
    prompts = byte_prompts()
    pairs = [(p[: max(1, len(p) // 2)], p[max(1, len(p) // 2) :] or [ord(".")]) for p in prompts]
    one = Engine(near_uniform, batch_size=1).loglikelihood(pairs)
    many = Engine(near_uniform, batch_size=16).loglikelihood(pairs[::-1])[::-1]
    assert [r.logprob for r in one] == [r.logprob for r in many]  # exactly equal, not approximately


@pytest.mark.parametrize("path", ["fma", "onednn"])
def test_choices_of_one_question_share_their_context_and_keep_their_bits(near_uniform, path, monkeypatch):
    """Pairs with the same context compute it once; each pair's scores equal those it gets alone."""
    contexts = [list(b"Question: which is right?"), list(b"Q2"), list(b"A third, longer context here")]
    choices = [list(b" yes"), list(b" no"), list(b"!"), []]
    pairs = [(ctx, cont) for ctx in contexts for cont in choices]
    engine = Engine(near_uniform, batch_size=16, linear=path)
    fed: list[int] = []
    forward = engine.model.forward
    monkeypatch.setattr(engine.model, "forward",
                        lambda tokens, *a, **k: fed.append(len(tokens)) or forward(tokens, *a, **k))
    shared = engine.loglikelihood(pairs)
    # Each context once, then every continuation without its last token: (4 - 1) + (3 - 1) + 0 + 0 rows.
    assert sum(fed) == sum(len(c) for c in contexts) + 3 * 5
    alone = [engine.loglikelihood([pair])[0] for pair in pairs]
    def scores(results):
        return [(r.logprob, r.n_correct, r.n_tokens) for r in results]

    assert scores(shared) == scores(alone)
    for (ctx, cont), res in zip(pairs, shared, strict=True):
        assert res.logprob == pytest.approx(hand_loglikelihood(near_uniform, ctx, cont)[0], rel=1e-5, abs=1e-5)


def test_loglikelihood_empty_context_and_overlong_pairs(decisive):
    engine = Engine(decisive)
    res = engine.loglikelihood([([], list(b"hi"))])[0]
    logprob, _, _ = hand_loglikelihood(decisive, [EOS], list(b"hi"))
    assert res.logprob == pytest.approx(logprob, rel=1e-5)
    long_ctx = list(b"y" * 300)
    res = engine.loglikelihood([(long_ctx, list(b"ok"))])[0]
    assert res.truncated and res.n_tokens == 2
    logprob, _, _ = hand_loglikelihood(decisive, long_ctx[-126:], list(b"ok"))
    assert res.logprob == pytest.approx(logprob, rel=1e-5)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_decode_logits_bit_identical_across_key_blocks_and_mixed_steps(arch):
    """Rows whose keys span one, two or three decode blocks (128 positions each), decoded alone and
    together, in another slot order, with a prompt being prefilled in the same forward pass."""
    from hessgpt.inference import DECODE_BLOCK, InferenceModel, Segment

    loaded = tiny_loaded(arch, seed=3, block_size=512)
    im = InferenceModel(loaded.model)
    gen = torch.Generator().manual_seed(0)
    lengths = [5, DECODE_BLOCK - 1, DECODE_BLOCK, DECODE_BLOCK + 1, 2 * DECODE_BLOCK + 40]
    prompts = [torch.randint(0, 256, (n,), generator=gen).tolist() for n in lengths]
    steps = torch.randint(0, 256, (len(prompts), 3), generator=gen).tolist()

    def run_alone(i):
        cache = im.new_cache(1, 400)
        p = prompts[i]
        out = [im.forward(torch.tensor(p), [Segment(0, 0, len(p))], cache, torch.tensor([len(p) - 1]))[0]]
        for j, tok in enumerate(steps[i]):
            out.append(im.forward(torch.tensor([tok]), [Segment(0, len(p) + j, 1)], cache)[0])
        return out

    alone = [run_alone(i) for i in range(len(prompts))]
    # Together: slots in reverse order; the last row joins (prefill) while the others decode.
    cache = im.new_cache(len(prompts) + 2, 520)
    slot = {i: len(prompts) + 1 - i for i in range(len(prompts))}
    late = len(prompts) - 1
    early = list(range(late))
    tokens = [t for i in early for t in prompts[i]]
    segments = [Segment(slot[i], 0, len(prompts[i])) for i in early]
    last = list(torch.cumsum(torch.tensor([len(prompts[i]) for i in early]), 0) - 1)
    got = {
        i: [row]
        for i, row in zip(
            early, im.forward(torch.tensor(tokens), segments, cache, torch.tensor(last)), strict=True
        )
    }
    for j in range(3):
        rows = early[::-1] if j % 2 else early
        tokens = [steps[i][j] for i in rows]
        segments = [Segment(slot[i], len(prompts[i]) + j, 1) for i in rows]
        picks = list(range(len(rows)))
        if j == 0:  # the late row's prompt rides along with this decoding step
            tokens += prompts[late]
            segments.append(Segment(slot[late], 0, len(prompts[late])))
            picks.append(len(tokens) - 1)
        logits = im.forward(torch.tensor(tokens), segments, cache, torch.tensor(picks))
        for i, row in zip(rows, logits, strict=False):
            got[i].append(row)
        if j == 0:
            got[late] = [logits[-1]]
    for j in range(3):  # the late row decodes alone in the shared cache
        p = prompts[late]
        got[late].append(
            im.forward(torch.tensor([steps[late][j]]), [Segment(slot[late], len(p) + j, 1)], cache)[0]
        )
    for i in range(len(prompts)):
        for step, (a, b) in enumerate(zip(alone[i], got[i], strict=True)):
            assert torch.equal(a, b), f"row {i} (length {lengths[i]}), step {step}"


def test_greedy_invariance_with_long_rows_and_continuous_batching():
    loaded = tiny_loaded("llama", seed=2, block_size=512)
    gen = torch.Generator().manual_seed(1)
    prompts = [
        torch.randint(0, 256, (n,), generator=gen).tolist() for n in (3, 90, 120, 127, 140, 200, 260, 17)
    ]
    requests = [
        GenerationRequest(p, GenerationSettings(max_new_tokens=12 + 5 * i, ignore_eos=True))
        for i, p in enumerate(prompts)
    ]
    outputs = [[r.token_ids for r in Engine(loaded, batch_size=b).generate(requests)] for b in (1, 3, 8)]
    assert outputs[0] == outputs[1] == outputs[2]


def test_int8_engine_is_batch_invariant_and_close_to_fp32(near_uniform):
    from hessgpt.inference import int8_available

    if not int8_available():
        pytest.skip("this torch build has no fbgemm/x86 quantised kernels")
    outputs = [
        [r.token_ids for r in Engine(near_uniform, batch_size=b, int8=True).generate(greedy_requests(16))]
        for b in (1, 3, 16)
    ]
    assert outputs[0] == outputs[1] == outputs[2]
    pairs = [(p[:3], p[3:]) for p in byte_prompts() if len(p) > 4]
    exact = Engine(near_uniform).loglikelihood(pairs)
    approx = Engine(near_uniform, int8=True).loglikelihood(pairs)
    for a, b in zip(exact, approx, strict=True):
        assert b.logprob == pytest.approx(a.logprob, rel=0.02)
        assert b.logprob != a.logprob  # it really is another computation


# -- beam search, batched ---------------------------------------------------------------------------


def beam_requests() -> list[GenerationRequest]:
    requests = []
    for i, p in enumerate(byte_prompts()[:8]):
        settings = GenerationSettings(
            max_new_tokens=6 + i % 4, num_beams=2 + i % 3, length_penalty=0.5 * (i % 3), ignore_eos=i % 2 == 0
        )
        requests.append(GenerationRequest(p, settings, request_id=f"b{i}"))
    return requests


def test_beam_search_requests_share_forward_passes_and_results_do_not_change(near_uniform):
    requests = beam_requests()
    alone = [Engine(near_uniform, batch_size=1).generate([r])[0] for r in requests]
    engine = Engine(near_uniform, batch_size=16)
    calls = []
    forward = engine.model.forward
    engine.model.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    batched = engine.generate(requests)
    assert [r.token_ids for r in batched] == [r.token_ids for r in alone]
    assert [r.finish_reason for r in batched] == [r.finish_reason for r in alone]
    assert len(calls) < sum(r.settings.max_new_tokens for r in requests) // 2  # searches ran together
    # Fewer slots than beams in total (continuous), in reverse order, mixed with sampled rows.
    mixed = sampled_requests(3)[:3] + requests[::-1]
    again = Engine(near_uniform, batch_size=5).generate(mixed)[3:][::-1]
    assert [r.token_ids for r in again] == [r.token_ids for r in alone]


def test_a_beam_request_streams_its_result_and_speed(near_uniform):
    engine = Engine(near_uniform, batch_size=4)
    request = beam_requests()[1]
    text = "".join(engine.stream(request))
    expected = engine.generate([request])[0]
    assert text == expected.text and engine.last_stream_result.token_ids == expected.token_ids
    assert engine.last_stats.generated_tokens == len(expected.token_ids)


# -- an embedding padded above the tokenizer's ids --------------------------------------------------


@pytest.fixture(scope="module")
def padded():
    """257 tokenizer ids, 320 model rows; the padding rows' logits are made the largest."""
    loaded = tiny_loaded("gpt2", scale=4.0, vocab_size=320)
    with torch.no_grad():
        head = loaded.model.lm_head.weight
        head[257:] = 0.0
        logits, _ = loaded.model(torch.tensor([list(b"hello")]))
        top = int(logits[0, -1, :257].argmax())
        head[257:] = 3.0 * head[top]  # every padding row beats the best real token after "hello"
    return loaded


def test_padding_ids_are_never_emitted_and_never_crash_penalties_or_bans(padded):
    with torch.no_grad():
        logits, _ = padded.model(torch.tensor([list(b"hello")]))
    assert int(logits[0, -1].argmax()) >= 257  # an argmax over every row would pick padding
    engine = Engine(padded, batch_size=4)
    prompt = list(b"hello") + [300, 301, ord("o"), 300, 301]  # padding ids in the prompt
    variants = [
        dict(),
        dict(temperature=1.0, top_k=5, seed=1),
        dict(repetition_penalty=1.5),
        dict(no_repeat_ngram_size=2),
        dict(no_repeat_ngram_size=1, repetition_penalty=1.3, min_new_tokens=3),
        dict(num_beams=3, repetition_penalty=1.2, no_repeat_ngram_size=2),
    ]
    requests = [
        GenerationRequest(prompt, GenerationSettings(max_new_tokens=8, **v), request_id=str(i))
        for i, v in enumerate(variants)
    ]
    for result in engine.generate(requests):
        assert result.token_ids and max(result.token_ids) < 257
        assert isinstance(result.text, str)


def test_loglikelihood_normalises_over_the_tokenizer_ids_only(padded):
    engine = Engine(padded)
    ctx, cont = list(b"hello") + [300], list(b" world")
    res = engine.loglikelihood([(ctx, cont)])[0]
    with torch.no_grad():
        logits, _ = padded.model(torch.tensor([ctx + cont]))
    lp = torch.log_softmax(logits[0, :, :257].double(), dim=-1)  # the ids text can be made of
    hand = sum(float(lp[len(ctx) + i - 1, t]) for i, t in enumerate(cont))
    assert res.logprob == pytest.approx(hand, rel=1e-5, abs=1e-5)
    over_all_rows = torch.log_softmax(logits[0].double(), dim=-1)
    assert hand - sum(float(over_all_rows[len(ctx) + i - 1, t]) for i, t in enumerate(cont)) > 1.0
    with pytest.raises(HessError, match=r"^loglikelihood pair #1: continuation token id 300 is outside"):
        engine.loglikelihood([(ctx, cont), (list(b"hi"), [ord("a"), 300])])
