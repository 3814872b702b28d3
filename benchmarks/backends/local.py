"""The local HessGPT engine as a bench backend: ``hessgpt.load_model`` + ``hessgpt.generate.Engine``.

All token-level work lives here: rendering conversations with the checkpoint's chat template,
finding the continuation's tokens with the template's assistant mask, counting their bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.backends.answer_tokens import continuation_ids
from benchmarks.backends.base import (
    Backend,
    Capabilities,
    Generation,
    GenerationRequest,
    Likelihood,
    LikelihoodRequest,
    OnGeneration,
    SamplingSettings,
)
from hessgpt.machine import describe_machine

_DEFAULT_KERNELS = {"precision": "fp32", "device": "cpu", "linear": "fma"}


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, checkpoint: str, batch_size: int = 16, int8: bool = False, precision: str = "fp32",
                 device: str = "cpu") -> None:
        from hessgpt.generate import Engine
        from hessgpt.loading import load_model

        self.checkpoint = checkpoint
        self.int8 = int8
        self.loaded = load_model(checkpoint)  # fails before any work starts
        self.engine = Engine(self.loaded, batch_size=batch_size, int8=int8, precision=precision, device=device)
        self.capabilities = Capabilities(likelihood=True, seeds=True, logprobs=True,
                                         context_length=self.loaded.config.block_size)

    # -- generation -------------------------------------------------------------------------------
    @staticmethod
    def engine_settings(settings: SamplingSettings) -> Any:
        """The engine's settings for one answer (the code tool's router drives the engine with them)."""
        from hessgpt.generate import GenerationSettings

        return GenerationSettings(
            max_new_tokens=settings.max_new_tokens, temperature=settings.temperature, top_k=settings.top_k,
            top_p=settings.top_p, repetition_penalty=settings.repetition_penalty,
            no_repeat_ngram_size=settings.no_repeat_ngram_size, seed=settings.seed,
        )

    def generate(self, requests: Sequence[GenerationRequest], on_result: OnGeneration) -> None:
        """All requests in one continuous batch (no slot idles at a chunk's tail)."""
        engine_requests = [self.engine.chat_request(r.messages, self.engine_settings(r.settings),
                                                    request_id=r.request_id) for r in requests]

        def finished(index: int, result: Any) -> None:
            on_result(index, Generation(result.text, result.finish_reason, len(result.token_ids),
                                        result.prompt_tokens, result.prompt_truncated))

        self.engine.generate(engine_requests, on_result=finished)

    # -- likelihood -------------------------------------------------------------------------------
    def expect_likelihood(self, requests: Sequence[LikelihoodRequest]) -> None:
        # Scoring renders the same prompt as generating: the scores then copy the generation's work.
        template = self.loaded.chat_template
        self.engine.keep_prompts([template.render(r.messages, add_generation_prompt=True).ids for r in requests])

    def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[list[Likelihood | None]]:
        pairs: list[tuple[list[int], list[int]]] = []
        slots: list[list[tuple[int, int] | None]] = []  # per request, per continuation: (pair index, bytes)
        for request in requests:
            prompt_ids = self.loaded.chat_template.render(request.messages, add_generation_prompt=True).ids
            row: list[tuple[int, int] | None] = []
            for text in request.continuations:
                found = continuation_ids(self.loaded.chat_template, request.messages, prompt_ids, text)
                if found is None:
                    row.append(None)
                    continue
                row.append((len(pairs), found[1]))
                pairs.append((prompt_ids, found[0]))
            slots.append(row)
        scores = self.engine.loglikelihood(pairs) if pairs else []
        return [[None if slot is None else Likelihood(scores[slot[0]].logprob, scores[slot[0]].n_tokens, slot[1],
                                                      scores[slot[0]].is_greedy, scores[slot[0]].n_correct)
                 for slot in row] for row in slots]

    # -- what it is -------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        from hessgpt.generate import ENGINE_VERSION

        # What changes the answers' bits beyond the model. Keys are added only away from the defaults
        # (fp32, CPU, the fma kernel), so answers stored before these options existed are still found.
        kernels = {"precision": self.engine.precision, "device": self.engine.device,
                   "linear": self.engine.model.linear_path}
        return {"backend": self.kind, "engine_version": ENGINE_VERSION,
                "model": self.loaded.sha256 or str(self.loaded.meta.get("source")), "int8": self.int8,
                **{k: v for k, v in kernels.items() if v != _DEFAULT_KERNELS[k]}}

    def training_metadata(self) -> dict[str, Any] | None:
        return dict(self.loaded.meta)

    def describe(self) -> dict[str, Any]:
        from hessgpt.generate import ENGINE_VERSION

        loaded = self.loaded
        m = loaded.meta
        training = {k: m.get(k) for k in ("epoch", "step", "val_loss", "data_hash") if m.get(k) is not None}
        return {
            "machine": describe_machine(),  # the kernels that produced the answers
            "backend": {"kind": self.kind, "engine_version": ENGINE_VERSION, "int8": self.int8,
                        "precision": self.engine.precision, "device": self.engine.device,
                        "linear": self.engine.model.linear_path},
            "checkpoint": self.checkpoint, "checkpoint_sha256": loaded.sha256,
            "model": {"name": loaded.config.name, "params": loaded.model.num_parameters(),
                      "arch": loaded.config.arch, "config": loaded.config.to_dict(),
                      "tokenizer": getattr(loaded.tokenizer, "name", None)},
            "training": training or None,
        }

