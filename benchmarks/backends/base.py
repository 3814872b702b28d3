"""The one interface between the bench runner and a model.

The runner sends conversations (lists of ``{"role", "content"}`` messages) and continuation texts;
a backend turns them into whatever its model needs (token ids and a chat template for the local
engine, JSON for an HTTP endpoint, a lookup for a responses file) and hands back text and numbers.
Nothing above this module knows about token ids, chat templates or engine versions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the runner plans the run from it.

    likelihood: it can score continuations (perplexity, bits per byte, multiple choice);
    likelihood_note: why not, when it cannot (shown in results.json, the terminal and the scorecard);
    seeds: a per-request seed reproduces a sampled answer; logprobs: it returns token log-probs;
    context_length: the model's window in tokens, when known (answers are capped at half of it);
    generates: it produces the answers (so sampling settings apply and answers are worth keeping in
    the run's work store); False for answers produced elsewhere.
    """

    likelihood: bool
    seeds: bool
    logprobs: bool
    context_length: int | None
    likelihood_note: str | None = None
    generates: bool = True


@dataclass(frozen=True)
class SamplingSettings:
    """How one answer is produced. ``seed`` is the run's seed: a backend derives each request's
    own randomness from (seed, request id), so an answer depends neither on batching nor on order."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict]
    settings: SamplingSettings
    item_id: str
    sample: int = 0

    @property
    def request_id(self) -> str:
        return f"{self.item_id}#{self.sample}"


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str | None  # "stop" | "length" | "stop_string" (local), or what the endpoint said
    new_tokens: int | None = None
    prompt_tokens: int | None = None
    prompt_truncated: bool = False


@dataclass(frozen=True)
class LikelihoodRequest:
    """Score each continuation as the assistant's answer to ``messages``."""

    messages: list[dict]
    continuations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Likelihood:
    """log p(continuation | conversation) in nats, over the tokens that carry the continuation.

    is_greedy and n_correct (tokens that were the model's top choice) are None when the backend
    cannot tell (an endpoint that returns no top log-probs)."""

    logprob: float
    n_tokens: int
    n_bytes: int
    is_greedy: bool | None
    n_correct: int | None


class LikelihoodUnavailable(Exception):
    """The backend found out mid-run that it cannot score continuations (the reason is the message)."""


OnGeneration = Callable[[int, Generation], None]


class Backend(ABC):
    """A model the bench can grade. Implementations: local engine, HTTP endpoint, responses file."""

    kind: str
    capabilities: Capabilities

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest], on_result: OnGeneration) -> None:
        """Answer every request; call ``on_result(index, generation)`` as each one finishes (in any
        order, always on the calling thread) so the runner can store it at once. A request the
        backend has no answer for (a responses file) gets no call."""

    def expect_likelihood(self, requests: Sequence[LikelihoodRequest]) -> None:
        """Told before ``generate`` which requests ``loglikelihood`` will get next, so that a backend
        may keep what generating their prompts computes (the local engine does); ``[]`` forgets them.
        Does nothing by default."""
        return

    def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[list[Likelihood | None]]:
        """One list per request, one entry per continuation (None: nothing to score, e.g. a
        continuation that tokenises to nothing). Raises LikelihoodUnavailable when it cannot."""
        raise LikelihoodUnavailable(self.capabilities.likelihood_note or f"the {self.kind} backend gives no likelihoods")

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What determines this backend's answers (model, engine version, endpoint): part of every
        work-store key, so a resumed run never mixes answers from two models."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """results.json ``meta`` fields about the model: always ``backend`` (a dict with ``kind``),
        plus ``checkpoint``, ``checkpoint_sha256``, ``model``, ``training`` or ``responses_file``
        when the backend knows them."""

    def training_metadata(self) -> dict[str, Any] | None:
        """The checkpoint's training metadata (with the training data's check against the suites),
        when the backend has a checkpoint; None otherwise."""
        return None

    def samples_for(self, item_id: str, requested: int) -> list[int]:
        """The sample numbers to ask for an item (a file backend has the samples its file holds)."""
        return list(range(requested))

    def close(self) -> None:
        """Release what the backend holds (connections, log files); nothing by default."""
        return None
