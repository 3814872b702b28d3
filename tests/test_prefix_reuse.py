"""The chat template's shared prefix: its keys are copied into each new prompt's slot, never changing a bit."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_generate_helpers import tiny_loaded

from hessgpt.chat import ChatTemplate
from hessgpt.generate import Engine, GenerationSettings

pytestmark = pytest.mark.usefixtures("one_thread")

# Like SmolLM2's: every conversation opens with the same system turn unless one is given.
SYSTEM_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<sys>You are a helpful little model, kind and brief.</sys>\n"
    "{% endif %}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
QUESTIONS = ["hi", "What is a cat?", "Bonjour !", "2+2?", "Tell me more about the sea.", "z", "émoji 🙂"]


@pytest.fixture(scope="module")
def loaded():
    base = tiny_loaded("llama", scale=4.0, seed=0, block_size=256)
    return dataclasses.replace(base, chat_template=ChatTemplate(SYSTEM_TEMPLATE, base.tokenizer))


def chat_requests(engine: Engine, n_new: int = 16) -> list:
    settings = GenerationSettings(max_new_tokens=n_new, ignore_eos=True)
    return [engine.chat_request([{"role": "user", "content": q}], settings, request_id=str(i))
            for i, q in enumerate(QUESTIONS)]


def test_the_shared_prefix_is_the_templates_default_opening(loaded):
    engine = Engine(loaded)
    text = bytes(engine.shared_prefix).decode()
    assert text.startswith("<sys>You are a helpful little model") and text.endswith("<user>")
    prompt = chat_requests(engine)[0].prompt_ids
    assert engine.split_at(prompt) == len(engine.shared_prefix)
    own_system = engine.chat_request([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}])
    assert engine.split_at(own_system.prompt_ids) == 0  # no shared prefix: computed whole


def test_copied_prefix_gives_the_same_bits_as_computing_it(loaded):
    from hessgpt.inference import Segment

    reuse, recompute = Engine(loaded, reuse_prefix=True), Engine(loaded, reuse_prefix=False)
    prompts = [r.prompt_ids for r in chat_requests(reuse)]
    for prompt in prompts:
        logits, keys = [], []
        for engine in (reuse, recompute):
            cache = engine.model.new_cache(1, len(prompt))
            fed, segments = engine._prompt_segments(cache, 0, prompt, engine.split_at(prompt))
            assert segments[-1] == Segment(0, len(engine.shared_prefix), len(prompt) - len(engine.shared_prefix))
            logits.append(engine.model.forward(torch.tensor(fed), segments, cache, torch.tensor([len(fed) - 1])))
            keys.append([k[0, :, : len(prompt)].clone() for k in cache.k])
        assert torch.equal(logits[0], logits[1])
        assert all(torch.equal(a, b) for a, b in zip(keys[0], keys[1], strict=True))


def test_greedy_answers_equal_with_and_without_reuse_at_any_batch_size(loaded):
    outputs = {}
    for reuse in (True, False):
        for batch in (1, 3, 16):
            engine = Engine(loaded, batch_size=batch, reuse_prefix=reuse)
            outputs[(reuse, batch)] = [r.token_ids for r in engine.generate(chat_requests(engine))]
    first = outputs[(True, 1)]
    assert all(o == first for o in outputs.values())
    assert len({tuple(o) for o in first}) > 1


def test_loglikelihood_equal_with_and_without_reuse(loaded):
    results = []
    for reuse in (True, False):
        engine = Engine(loaded, batch_size=4, reuse_prefix=reuse)
        pairs = [(r.prompt_ids, list(b" yes, " + q.encode())) for r, q in zip(chat_requests(engine), QUESTIONS,
                                                                               strict=True)]
        results.append([(x.logprob, x.n_correct) for x in engine.loglikelihood(pairs)])
    assert results[0] == results[1]


def test_a_model_without_a_long_shared_opening_computes_prompts_whole():
    engine = Engine(tiny_loaded("llama"))
    assert engine.shared_prefix == [] or len(engine.shared_prefix) >= 8
    if not engine.shared_prefix:
        assert engine.split_at(list(range(40))) == 0
