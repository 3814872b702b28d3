"""Prompts a generation keeps for a later scoring of the same context: the same scores, less work."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_generate_helpers import tiny_loaded
from test_prefix_reuse import QUESTIONS, SYSTEM_TEMPLATE

from hessgpt.chat import ChatTemplate
from hessgpt.generate import Engine, GenerationSettings
from hessgpt.kept_prompts import KeptPrompts

pytestmark = pytest.mark.usefixtures("one_thread")

CONTINUATIONS = [" yes", " no, not at all", " 42"]


@pytest.fixture(scope="module")
def loaded():
    base = tiny_loaded("llama", scale=4.0, seed=0, block_size=256)
    return dataclasses.replace(base, chat_template=ChatTemplate(SYSTEM_TEMPLATE, base.tokenizer))


def requests(engine: Engine) -> list:
    # Answers of different lengths: at a small batch size, prompts join steps where others are decoding.
    return [engine.chat_request([{"role": "user", "content": q}],
                                GenerationSettings(max_new_tokens=2 + 3 * i, ignore_eos=True), request_id=str(i))
            for i, q in enumerate(QUESTIONS)]


def pairs_of(engine: Engine) -> list[tuple[list[int], list[int]]]:
    return [(r.prompt_ids, list(c.encode())) for r in requests(engine) for c in CONTINUATIONS]


def fed_tokens(engine: Engine) -> list[int]:
    """Counts the tokens of every forward pass the engine's model runs from now on."""
    counts: list[int] = []
    forward = engine.model.forward

    def counting(tokens, *args, **kwargs):
        counts.append(len(tokens))
        return forward(tokens, *args, **kwargs)

    engine.model.forward = counting
    return counts


@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_scores_after_a_generation_equal_scores_computed_afresh(loaded, batch_size):
    fresh = Engine(loaded, batch_size=batch_size)
    expected = fresh.loglikelihood(pairs_of(fresh))
    fresh_fed = fed_tokens(fresh)
    fresh.loglikelihood(pairs_of(fresh))

    engine = Engine(loaded, batch_size=batch_size)
    engine.keep_prompts([r.prompt_ids for r in requests(engine)])
    engine.generate(requests(engine))
    assert len(engine.kept_prompts) == len(QUESTIONS)
    fed = fed_tokens(engine)
    got = engine.loglikelihood(pairs_of(engine))
    assert got == expected  # every field, log-probabilities bit for bit
    # Only the continuations were fed, each but its last token: every context came from the generation.
    continuation_tokens = sum(len(c.encode()) - 1 for c in CONTINUATIONS) * len(QUESTIONS)
    assert sum(fed) == continuation_tokens < sum(fresh_fed)
    assert len(engine.kept_prompts) == 0  # scored prompts are let go


def test_only_the_named_prompts_are_kept_and_an_empty_list_frees_them(loaded):
    engine = Engine(loaded, batch_size=4)
    wanted = [r.prompt_ids for r in requests(engine)[:2]]
    engine.keep_prompts(wanted)
    engine.generate(requests(engine))
    assert len(engine.kept_prompts) == 2
    assert all(engine.kept_prompts.get(p) is not None for p in wanted)
    engine.keep_prompts([])
    assert len(engine.kept_prompts) == 0 and engine.kept_prompts.get(wanted[0]) is None


def test_a_kept_prompt_holds_the_keys_values_and_logits_the_generation_computed(loaded):
    engine = Engine(loaded, batch_size=4)
    prompt = requests(engine)[1].prompt_ids
    engine.keep_prompts([prompt])
    engine.generate(requests(engine))
    kept = engine.kept_prompts.get(prompt)
    alone = Engine(loaded)
    cache = alone.model.new_cache(1, len(prompt))
    fed, segments = alone._prompt_segments(cache, 0, prompt, alone.split_at(prompt))
    logits = alone.model.forward(torch.tensor(fed), segments, cache, torch.tensor([len(fed) - 1]))
    assert torch.equal(kept.logits, logits[0])
    assert all(torch.equal(k, c[0, :, : len(prompt)]) for k, c in zip(kept.keys, cache.k, strict=True))
    assert all(torch.equal(v, c[0, :, : len(prompt)]) for v, c in zip(kept.values, cache.v, strict=True))


def test_the_budget_bounds_what_is_kept():
    store = KeptPrompts(max_bytes=1000)
    keys = [torch.zeros(2, 3, 4)]  # 24 floats: 96 bytes per tensor
    logits = torch.zeros(50)  # 200 bytes
    store.want([[1, 2, 3], [4, 5, 6], [7]])
    store.keep([1, 2, 3], keys, keys, logits)  # 96 + 96 + 200 = 392 bytes
    store.keep([4, 5, 6], keys, keys, logits)  # 784
    store.keep([7], keys, keys, logits)  # 1176: over the budget, not kept
    assert len(store) == 2 and store.get([7]) is None
    store.drop([1, 2, 3])
    store.keep([7], keys, keys, logits)  # fits again
    assert len(store) == 2 and store.get([7]) is not None


def test_a_prompt_not_wanted_is_not_kept():
    store = KeptPrompts()
    store.want([[1, 2]])
    assert store.wants([1, 2]) and not store.wants([1, 2, 3])
    store.keep([1, 2], [torch.ones(1, 2, 2)], [torch.ones(1, 2, 2)], torch.ones(3))
    assert not store.wants([1, 2])  # kept once


def test_a_bench_run_names_the_prompts_it_will_score_before_generating_and_frees_them(tiny_checkpoint, tmp_path):
    from benchmarks.backends.base import SamplingSettings
    from benchmarks.backends.local import LocalBackend
    from benchmarks.runner import BenchRun, BenchSettings

    class Recording(LocalBackend):
        def __init__(self, *args, keep: bool, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.keep, self.calls = keep, []

        def expect_likelihood(self, requests):
            self.calls.append(("expect", len(requests)))
            if self.keep:
                super().expect_likelihood(requests)
            self.calls.append(("kept", len(self.engine.kept_prompts)))

        def generate(self, requests, on_result):
            self.calls.append(("generate", len(requests)))
            super().generate(requests, on_result)
            self.calls.append(("kept", len(self.engine.kept_prompts)))

    results = []
    for keep in (True, False):
        backend = Recording(str(tiny_checkpoint), batch_size=3, keep=keep)
        settings = BenchSettings(limit=2, batch_size=3, sampling=SamplingSettings(max_new_tokens=8))
        data = BenchRun(tmp_path / str(keep), settings, backend, progress=False).run()
        results.append((data["likelihood"], [(row["id"], row["output"]) for row in data["items"]]))
        if keep:
            scored, generated = backend.calls[0][1], backend.calls[2][1]
            assert scored > 0 and generated >= scored
            # Named before generating, each kept as it was generated, freed after scoring.
            assert backend.calls == [("expect", scored), ("kept", 0), ("generate", generated), ("kept", scored),
                                     ("expect", 0), ("kept", 0)]
    assert results[0] == results[1]
