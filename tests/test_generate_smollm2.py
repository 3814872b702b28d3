"""The engine on the reference model SmolLM2-135M-Instruct (skipped when its GGUF is absent; about 25 s)."""

from __future__ import annotations

import pytest
import torch

from hessgpt.generate import Engine, GenerationRequest, GenerationSettings

QUESTIONS = [
    "What is the capital of France?",
    "Hi",
    "Write a haiku about the sea.",
    "What is 12 times 12?",
    "Explain in two sentences why the sky is blue.",
    "Name three fruits.",
    "Translate 'good morning' into French.",
    "Who wrote Romeo and Juliet?",
    "Give me a synonym for happy.",
    "What is the boiling point of water in Celsius?",
    "List the first five prime numbers, separated by commas, and nothing else.",
    "Is a tomato a fruit?",
    "Tell me a fun fact about octopuses, in one short sentence please.",
    "2+2=?",
    "Describe a cat to someone who has never seen one, using simple words.",
    "Say hello in Spanish.",
]


@pytest.fixture(scope="module")
def engine16(smollm2):
    return Engine(smollm2, batch_size=16)


def chat_requests(engine: Engine, settings: GenerationSettings) -> list[GenerationRequest]:
    return [
        engine.chat_request([{"role": "user", "content": q}], settings, request_id=f"q{i}")
        for i, q in enumerate(QUESTIONS)
    ]


def test_cached_generation_equals_naive_recompute(smollm2, engine16):
    settings = GenerationSettings(max_new_tokens=24)
    requests = chat_requests(engine16, settings)[:3]
    results = engine16.generate(requests)
    stops = set(requests[0].stop_token_ids) | {smollm2.tokenizer.eos_id}
    for request, result in zip(requests, results, strict=True):
        ids = list(request.prompt_ids)
        with torch.no_grad():
            for _ in range(24):
                token = int(smollm2.model(torch.tensor([ids]))[0][0, -1].argmax())
                if token in stops:
                    break
                ids.append(token)
        assert result.token_ids == ids[len(request.prompt_ids) :]
    assert "Paris" in results[0].text


@pytest.mark.slow  # over a minute on 2 cores: make test-slow
def test_greedy_outputs_identical_at_batch_sizes_1_3_16(smollm2, engine16):
    settings = GenerationSettings(max_new_tokens=32)
    outputs = {16: [r.token_ids for r in engine16.generate(chat_requests(engine16, settings))]}
    for batch_size in (1, 3):
        engine = Engine(smollm2, batch_size=batch_size)
        outputs[batch_size] = [r.token_ids for r in engine.generate(chat_requests(engine, settings))]
    assert outputs[1] == outputs[3] == outputs[16]


def test_sampled_outputs_reproduce_across_batch_sizes(smollm2, engine16):
    settings = GenerationSettings(max_new_tokens=16, temperature=0.8, top_p=0.9, seed=11)
    many = [r.token_ids for r in engine16.generate(chat_requests(engine16, settings)[:6])]
    engine = Engine(smollm2, batch_size=2)
    few = [r.token_ids for r in engine.generate(chat_requests(engine, settings)[:6][::-1])][::-1]
    assert many == few


def test_loglikelihood_matches_full_logits(smollm2, engine16):
    tok = smollm2.tokenizer
    pairs = [
        (tok.encode("The capital of France is"), tok.encode(" Paris")),
        (tok.encode("One, two, three,"), tok.encode(" four, five")),
    ]
    results = engine16.loglikelihood(pairs)
    for (ctx, cont), res in zip(pairs, results, strict=True):
        with torch.no_grad():
            logits = smollm2.model(torch.tensor([ctx + cont]))[0][0].double()
        lp = torch.log_softmax(logits, dim=-1)
        hand = sum(float(lp[len(ctx) + i - 1, t]) for i, t in enumerate(cont))
        greedy = [int(lp[len(ctx) + i - 1].argmax()) == t for i, t in enumerate(cont)]
        assert res.logprob == pytest.approx(hand, abs=1e-3)
        assert (res.n_correct, res.is_greedy) == (sum(greedy), all(greedy))
    assert results[0].is_greedy  # " Paris" is what the model predicts
