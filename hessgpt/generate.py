"""The inference engine: batched generation, beam search, streaming and log-likelihoods.

The engine sits beside the model code (``hessgpt.inference`` runs the forward pass) and gives the
harness two batched primitives, ``generate(requests)`` and ``loglikelihood(pairs)``, whose answers
do not depend on the batch size or on the order of the requests:

- batches are ragged (no padding) and continuous: a finished row's cache slot goes to the next
  waiting prompt at the following step;
- beam searches run side by side too, each in a block of ``num_beams`` slots, one forward per step;
- every row's logits are bit-for-bit those it would get alone (see ``hessgpt.inference``);
- the next token is chosen per row, and a sampled row draws from its own generator seeded from
  (settings.seed, request_id), one uniform number per token.
"""

from __future__ import annotations

import codecs
import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from hessgpt import exact_kernels
from hessgpt.errors import HessError
from hessgpt.flags import MAX_BATCH_SIZE, MAX_BEAMS, MAX_NEW_TOKENS
from hessgpt.inference import InferenceModel, Segment
from hessgpt.kept_prompts import KeptPrompts
from hessgpt.lookup_drafts import LookupDrafts
from hessgpt.sampling import NgramIndex, apply_repetition_penalty, ban, choose, make_generator

FINISH_REASONS = ("stop", "length", "stop_string")
# Bump when a change alters the tokens or scores the engine produces: the bench's work store keys
# on it, so a resumed run never mixes answers from two versions of the engine.
ENGINE_VERSION = 4  # 2: a prompt that starts with the chat template's shared prefix is computed in two parts;
# 3: the fma kernels (hessgpt/exact_kernels.py) run the forward pass on CPUs with AVX2 and FMA;
# 4: their own exponential (attention, SiLU) and scores summed eight keys at a time
# A shared template prefix shorter than this is not worth a separate pass.
_MIN_SHARED_PREFIX = 8
# Speculative decoding (hessgpt.lookup_drafts): a decoding row brings at most this many guessed
# tokens to a step, and guesses are added only while the step has at most DRAFT_ROW_BUDGET rows.
# Past that the rows' arithmetic, not reading the weights, sets the step's time (docs/performance.md).
DRAFT_TOKENS = 4
DRAFT_ROW_BUDGET = 12
# Continuation tokens scored per forward pass: bounds the (tokens, vocab) logits held at once.
_SCORED_TOKENS_PER_FORWARD = 512


@dataclass
class GenerationSettings:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_k: int | None = None  # None (or 0) = no top-k filter
    top_p: float = 1.0
    repetition_penalty: float = 1.0  # CTRL: > 1 discourages tokens already in the prompt or output
    no_repeat_ngram_size: int = 0
    min_new_tokens: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0  # beam search: score = sum log p / length ** length_penalty
    stop_strings: Sequence[str] = ()
    ignore_eos: bool = False  # never stop on a stop token (EOS, end of turn); stop strings still apply
    seed: int = 0

    def validate(self) -> None:
        """Raise a one-line HessError naming the first invalid setting."""

        def number(name: str) -> float:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise HessError(f"{name}: must be a finite number, got {value!r}")
            return float(value)

        def integer(name: str, minimum: int, maximum: int | None = None) -> int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise HessError(f"{name}: must be an integer >= {minimum}, got {value!r}")
            if maximum is not None and value > maximum:
                raise HessError(f"{name}: {value} is over the limit of {maximum}")
            return value

        integer("max_new_tokens", 1, MAX_NEW_TOKENS)
        if number("temperature") < 0:
            raise HessError(f"temperature: must be >= 0 (0 means greedy), got {self.temperature}")
        if self.top_k is not None:
            integer("top_k", 0)
        top_p = number("top_p")
        if not 0.0 < top_p <= 1.0:
            raise HessError(f"top_p: must be in (0, 1], got {self.top_p}")
        if number("repetition_penalty") <= 0:
            raise HessError(
                f"repetition_penalty: must be > 0 (1 = no penalty), got {self.repetition_penalty}"
            )
        integer("no_repeat_ngram_size", 0)
        integer("min_new_tokens", 0)
        if self.min_new_tokens > self.max_new_tokens:
            raise HessError(
                f"min_new_tokens: {self.min_new_tokens} is more than max_new_tokens ({self.max_new_tokens})"
            )
        integer("num_beams", 1, MAX_BEAMS)
        number("length_penalty")
        if self.num_beams > 1 and self.temperature > 0:
            raise HessError("num_beams: beam search is deterministic; use temperature 0 with num_beams > 1")
        if isinstance(self.stop_strings, str) or not all(isinstance(s, str) and s for s in self.stop_strings):
            raise HessError(f"stop_strings: must be a list of non-empty strings, got {self.stop_strings!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise HessError(f"seed: must be an integer, got {self.seed!r}")

    @property
    def greedy_plain(self) -> bool:
        """Greedy with no logit processor: the batched argmax fast path."""
        return (
            self.temperature == 0.0
            and self.repetition_penalty == 1.0
            and not self.no_repeat_ngram_size
            and not self.min_new_tokens
            and self.num_beams == 1
        )


@dataclass
class GenerationRequest:
    prompt_ids: list[int]
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    stop_token_ids: Sequence[int] = ()
    request_id: str = ""
    # Record each chosen token's log-probability under the model (before temperature and filters)
    # and this many most likely alternatives; None records nothing.
    logprobs: int | None = None


@dataclass
class TokenLogprob:
    token_id: int
    logprob: float  # natural log, under the model's own distribution
    top: list[tuple[int, float]]  # the most likely (token id, logprob), best first


@dataclass
class GenerationResult:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" | "length" | "stop_string"
    prompt_tokens: int
    prompt_truncated: bool
    logprobs: list[TokenLogprob] | None = None  # one per token of token_ids, when requested
    stop_token: int | None = None  # the stop token that ended the answer (finish_reason "stop")
    stop_string: str | None = None  # the stop string that ended it (finish_reason "stop_string")


@dataclass
class LoglikelihoodResult:
    logprob: float  # sum of log p(continuation token | everything before), natural log
    n_tokens: int  # continuation tokens scored
    is_greedy: bool  # greedy decoding would have produced the whole continuation
    n_correct: int  # continuation tokens that were the model's top choice (token accuracy)
    n_bytes: int = 0  # UTF-8 bytes of the scored continuation (bits per byte)
    truncated: bool = False  # the context had to be cut (from the left) to fit the model's window


@dataclass
class GenerationStats:
    requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0


class _StopText:
    """A row's output bytes, stop-string detection, and UTF-8 safe streaming of what is final."""

    def __init__(self, stop_strings: Sequence[str]) -> None:
        self.stops = [s.encode("utf-8", "surrogatepass") for s in stop_strings]
        self.longest = max((len(s) for s in self.stops), default=0)
        self.buf = bytearray()
        self.token_ends: list[int] = []  # byte offset after each token
        self.kept: int | None = None  # set when a stop string is found: bytes kept
        self.hit: str | None = None  # the stop string found
        self.emitted = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def push(self, data: bytes) -> bool:
        """Append one token's bytes; True when a stop string now appears (output is then trimmed)."""
        start = max(0, len(self.buf) - self.longest + 1)
        self.buf += data
        self.token_ends.append(len(self.buf))
        hits = [(i, k) for k, i in enumerate(self.buf.find(s, start) for s in self.stops) if i >= 0]
        if hits:
            self.kept, first = min(hits)
            self.hit = self.stops[first].decode("utf-8", "surrogatepass")
            return True
        return False

    def n_kept_tokens(self) -> int:
        """Tokens that lie wholly before the stop string."""
        if self.kept is None:
            return len(self.token_ends)
        return sum(1 for end in self.token_ends if end <= self.kept)

    def text(self) -> str:
        end = len(self.buf) if self.kept is None else self.kept
        return bytes(self.buf[:end]).decode("utf-8", "replace")

    def _safe_end(self) -> int:
        """Bytes that can no longer become part of a stop string."""
        if self.kept is not None:
            return self.kept
        n = len(self.buf)
        for size in range(min(self.longest - 1, n), 0, -1):
            tail = bytes(self.buf[n - size :])
            if any(s.startswith(tail) for s in self.stops):
                return n - size
        return n

    def delta(self, final: bool = False) -> str:
        end = len(self.buf) if final and self.kept is None else self._safe_end()
        if end <= self.emitted and not final:
            return ""
        piece = self.decoder.decode(bytes(self.buf[self.emitted : end]), final=final)
        self.emitted = max(self.emitted, end)
        return piece


class _Row:
    """One request being generated (one cache slot; beam search uses its own loop)."""

    def __init__(
        self,
        index: int,
        request: GenerationRequest,
        prompt: list[int],
        truncated: bool,
        stop_ids: set[int],
        vocab: int,
    ) -> None:
        self.index, self.request, self.settings = index, request, request.settings
        self.prompt, self.truncated = prompt, truncated
        self.stop_ids = stop_ids
        self.vocab = vocab  # ids the tokenizer can decode; larger (padding) ids are never chosen
        self.tokens: list[int] = []
        self.slot = -1
        self.cached = 0  # positions of this row already in the cache
        self.finish_reason: str | None = None
        self.stop_token: int | None = None
        s = self.settings
        self.generator = make_generator(s.seed, request.request_id) if s.temperature > 0 else None
        self.penalised = s.repetition_penalty != 1.0
        # Prompt ids above the tokenizer's range (padding rows) have no logit to penalise.
        self.seen: list[int] = sorted({t for t in prompt if t < vocab}) if self.penalised else []
        self.seen_set = set(self.seen)
        self.ngrams = NgramIndex(s.no_repeat_ngram_size, prompt) if s.no_repeat_ngram_size else None
        self.text = _StopText(s.stop_strings)
        self.logprobs: list[TokenLogprob] | None = [] if request.logprobs is not None else None
        self.key: Any = None  # the caller's handle on a row of a LiveBatch
        self.lookup: LookupDrafts | None = None  # built when the row is first asked for a draft

    def choose(self, logits: torch.Tensor) -> int:
        s = self.settings
        logits = logits[: self.vocab]
        if self.seen:
            logits = apply_repetition_penalty(logits, torch.tensor(self.seen), s.repetition_penalty)
        if self.ngrams is not None:
            logits = ban(logits, [t for t in self.ngrams.banned() if t < self.vocab])
        if len(self.tokens) < s.min_new_tokens and self.stop_ids:
            logits = ban(logits, [t for t in self.stop_ids if t < self.vocab])
        return choose(
            logits, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, generator=self.generator
        )

    def draft(self, limit: int) -> list[int]:
        """Up to ``limit`` guessed tokens to follow this row's last one (``hessgpt.lookup_drafts``)."""
        if self.lookup is None:
            self.lookup = LookupDrafts(self.prompt)
        self.lookup.extend(self.tokens[len(self.lookup.tokens) - len(self.prompt) :])
        return self.lookup.draft(limit)

    def push(self, token: int, token_bytes: bytes, context_left: int) -> bool:
        """Record the chosen token; True when the row is finished."""
        if token in self.stop_ids:
            self.finish_reason = "stop"
            self.stop_token = token
            return True
        self.tokens.append(token)
        if self.penalised and token not in self.seen_set:
            self.seen_set.add(token)
            self.seen.append(token)
        if self.ngrams is not None:
            self.ngrams.append(token)
        if self.text.push(token_bytes):
            self.finish_reason = "stop_string"
        elif len(self.tokens) >= self.settings.max_new_tokens or context_left <= 0:
            self.finish_reason = "length"
        return self.finish_reason is not None

    def record_logprob(self, logits: torch.Tensor, token: int) -> None:
        """Keep the chosen token's log-probability (and the top alternatives) if it was emitted."""
        if self.logprobs is None or token in self.stop_ids:
            return
        lp = torch.log_softmax(logits[: self.vocab].double(), dim=-1)
        top = torch.topk(lp, min(self.request.logprobs or 0, lp.numel()))
        pairs = list(zip(top.indices.tolist(), top.values.tolist(), strict=True))
        self.logprobs.append(TokenLogprob(token, float(lp[token]), pairs))

    @property
    def generated(self) -> int:
        """Tokens produced so far, a final stop token included."""
        return len(self.tokens) + (self.finish_reason == "stop")

    def result(self) -> GenerationResult:
        kept = self.text.n_kept_tokens()
        return GenerationResult(
            self.text.text(),
            self.tokens[:kept],
            self.finish_reason or "length",
            len(self.prompt),
            self.truncated,
            None if self.logprobs is None else self.logprobs[:kept],
            self.stop_token,
            self.text.hit,
        )


class Engine:
    """Generation and scoring over a loaded model. ``batch_size`` only changes speed, never results."""

    def __init__(
        self,
        loaded: Any,
        batch_size: int = 16,
        int8: bool = False,
        release_model_weights: bool = False,
        prefill_tokens: int = 2048,
        precision: str = "fp32",
        device: str = "cpu",
        linear: str | None = None,
        reuse_prefix: bool = True,
        draft_tokens: int | None = None,
    ) -> None:
        """``draft_tokens``: guessed tokens a decoding row may bring to a step (speculative decoding;
        default DRAFT_TOKENS, 0 = none); used only where a row's logits keep their bits when a pass
        computes several of its tokens, so answers never change. ``reuse_prefix`` copies the keys
        and values of the chat template's shared prefix into each new prompt's cache slot instead of
        computing them again (the same bits either way).
        ``precision`` "bf16" rounds the linears to bf16 (not lossless); ``device`` is "cpu", "cuda" or
        "auto"; ``linear`` forces a linear path (``hessgpt.kernels``; default: chosen for the CPU)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise HessError(f"batch_size: must be an integer >= 1, got {batch_size!r}")
        if batch_size > MAX_BATCH_SIZE:
            raise HessError(f"batch_size: {batch_size} is over the limit of {MAX_BATCH_SIZE}")
        if draft_tokens is None:
            draft_tokens = DRAFT_TOKENS
        if isinstance(draft_tokens, bool) or not isinstance(draft_tokens, int) or draft_tokens < 0:
            raise HessError(f"draft_tokens: must be an integer >= 0, got {draft_tokens!r}")
        from hessgpt.kernels import PRECISIONS, resolve_device

        if precision not in PRECISIONS:
            raise HessError(f"--precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        device = resolve_device(device)
        if int8 and (precision != "fp32" or device != "cpu"):
            raise HessError("--int8: runs on the CPU in fp32 only; drop --precision bf16 / --device cuda")
        if int8:
            from hessgpt.inference import int8_available

            if not int8_available():
                raise HessError(
                    "--int8: this torch build has no fbgemm/x86 quantised kernels; run without --int8"
                )
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.chat_template = loaded.chat_template
        self.config = loaded.config
        self.batch_size = batch_size
        self.int8 = int8
        self.prefill_tokens = prefill_tokens
        self.context = self.config.block_size
        # Ids the model can emit: those with both a logit and bytes. An embedding padded above the
        # tokenizer (e.g. 50304 rows for 50257 ids) has rows no text can produce, so choices and
        # log-softmaxes run over the first ``vocab`` logits only; padding ids may still appear in a
        # prompt or context (they have embeddings) but are skipped by penalties and bans.
        self.vocab = min(self.config.vocab_size, self.tokenizer.vocab_size)
        self.model = InferenceModel(
            loaded.model, int8=int8, release_model_weights=release_model_weights, precision=precision,
            device=device, linear=linear,
        )
        self.precision, self.device = precision, device
        # Decided once: kernel_problem() may retry a failed build on every call.
        self.library_argmax = exact_kernels.kernel_problem() is None
        self._token_bytes = [self.tokenizer.token_bytes(i) for i in range(self.vocab)]
        self.shared_prefix = self._template_prefix()
        self.reuse_prefix = reuse_prefix
        self.draft_tokens = draft_tokens if self.model.rows_exact else 0
        self.draft_row_budget = DRAFT_ROW_BUDGET
        self.drafted = self.accepted = 0  # guessed tokens fed, and kept, since the engine was made
        self._prefix_kv: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        self.kept_prompts = KeptPrompts()
        self.last_stats = GenerationStats()
        self.last_stream_result: GenerationResult | None = None

    # -- the shared prompt prefix ----------------------------------------------------------------
    def _template_prefix(self) -> list[int]:
        """The ids every chat prompt of this template starts with (its default system prompt and the
        opening of the user turn), or [] when that is shorter than _MIN_SHARED_PREFIX.

        A prompt that starts with them is always computed as two segments, the prefix from position
        0 and the rest after it, whether the prefix's keys are computed or copied: a prompt's bits
        depend only on the prompt, and copying saves the prefix's share of every prefill."""
        template = self.chat_template
        if template is None:
            return []
        try:
            a = template.render([{"role": "user", "content": "A"}], add_generation_prompt=True).ids
            b = template.render([{"role": "user", "content": "7"}], add_generation_prompt=True).ids
        except HessError:
            return []
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        prefix = [int(t) for t in a[:n]]
        return prefix if len(prefix) >= _MIN_SHARED_PREFIX and len(prefix) < self.context // 2 else []

    def split_at(self, prompt: Sequence[int], predicted_from: int | None = None) -> int:
        """Where ``prompt`` is cut into prefix and rest (0: not cut). ``predicted_from``: the first
        position whose logits are needed must lie in the rest."""
        n = len(self.shared_prefix)
        first = len(prompt) - 1 if predicted_from is None else predicted_from
        if n and first >= n and list(prompt[:n]) == self.shared_prefix:
            return n
        return 0

    def _prefix_cache(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The shared prefix's keys and values per layer, computed once (from position 0, alone)."""
        if self._prefix_kv is None:
            n = len(self.shared_prefix)
            cache = self.model.new_cache(1, n)
            self.model.forward(torch.tensor(self.shared_prefix), [Segment(0, 0, n)], cache, torch.tensor([n - 1]))
            self._prefix_kv = ([k[0, :, :n].clone() for k in cache.k], [v[0, :, :n].clone() for v in cache.v])
        return self._prefix_kv

    def _prompt_segments(self, cache: Any, slot: int, prompt: Sequence[int], cut: int) -> tuple[list[int], list[Segment]]:
        """The tokens and segments that put ``prompt`` into ``slot``: whole, or after its shared prefix
        (copied in, or computed as its own segment when prefix reuse is off)."""
        if not cut:
            return list(prompt), [Segment(slot, 0, len(prompt))]
        rest = list(prompt[cut:])
        if self.reuse_prefix:
            keys, values = self._prefix_cache()
            cache.write_prefix(slot, keys, values)
            return rest, [Segment(slot, cut, len(rest))]
        return list(prompt[:cut]) + rest, [Segment(slot, 0, cut), Segment(slot, cut, len(rest))]

    def keep_prompts(self, prompts: Iterable[Sequence[int]]) -> None:
        """Keep the keys, values and last logits of these prompts when a generation computes them, so
        that a later ``loglikelihood`` whose context is one of them copies them instead of computing
        them again (``hessgpt.kept_prompts``). Only where a row's bits do not depend on its batch, so
        the scores are the same either way. Replaces any earlier set; ``[]`` frees what was kept."""
        self.kept_prompts.want(prompts if self.model.rows_exact else [])

    def _keep_prompt(self, prompt: Sequence[int], cache: Any, slot: int, logits: torch.Tensor) -> None:
        if self.kept_prompts.wants(prompt):
            n = len(prompt)
            self.kept_prompts.keep(prompt, [k[slot, :, :n] for k in cache.k], [v[slot, :, :n] for v in cache.v],
                                   logits)

    # -- requests ----------------------------------------------------------------------------
    def chat_request(
        self, messages: list[dict], settings: GenerationSettings | None = None, request_id: str = ""
    ) -> GenerationRequest:
        """Render ``messages`` with the model's template; stop at its end-of-turn ids and stop strings."""
        settings = settings or GenerationSettings()
        rendered = self.chat_template.render(messages, add_generation_prompt=True)
        stops = tuple(dict.fromkeys([*settings.stop_strings, *self.chat_template.stop_strings]))
        return GenerationRequest(
            rendered.ids,
            dataclasses.replace(settings, stop_strings=stops),
            list(self.chat_template.end_of_turn_ids),
            request_id,
        )

    def text_request(
        self, prompt: str, settings: GenerationSettings | None = None, request_id: str = ""
    ) -> GenerationRequest:
        """A plain-text prompt (no template); stops at EOS unless settings.ignore_eos."""
        return GenerationRequest(
            self.tokenizer.encode(prompt), settings or GenerationSettings(), (), request_id
        )

    def check_settings(self, settings: GenerationSettings) -> None:
        """Validate ``settings`` and check that they leave room for a prompt in this model's context."""
        settings.validate()
        self._check_room(settings)

    def _check_room(self, settings: GenerationSettings) -> None:
        if settings.max_new_tokens >= self.context:
            raise HessError(
                f"max_new_tokens: {settings.max_new_tokens} leaves no room for a prompt in the "
                f"model's context of {self.context} tokens (at most {self.context - 1})"
            )

    def _prepare(self, index: int, request: GenerationRequest) -> _Row:
        settings = request.settings
        settings.validate()
        where = f"request {request.request_id!r}" if request.request_id else f"request #{index}"
        prompt = [int(t) for t in request.prompt_ids]
        if not prompt:
            raise HessError(f"{where}: the prompt is empty (it tokenizes to nothing)")
        bad = [t for t in prompt if not 0 <= t < self.config.vocab_size]
        if bad:
            raise HessError(
                f"{where}: token id {bad[0]} is outside the model's vocabulary (0..{self.config.vocab_size - 1})"
            )
        self._check_room(settings)
        room = self.context - settings.max_new_tokens
        truncated = len(prompt) > room
        if truncated:
            prompt = prompt[-room:]  # keep the end: the question and the generation prompt live there
        stop_ids: set[int] = set()
        if not settings.ignore_eos:
            stop_ids = {int(t) for t in request.stop_token_ids}
            if self.tokenizer.eos_id is not None:
                stop_ids.add(self.tokenizer.eos_id)
        return _Row(index, request, prompt, truncated, stop_ids, self.vocab)

    # -- generation --------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: Callable[[int], None] | None = None,
        on_result: Callable[[int, GenerationResult], None] | None = None,
    ) -> list[GenerationResult]:
        """Results in input order. Rows run largest answer cap first, then longest prompt: the last rows
        to start can finish soonest, so the batch stays full longer. The order never changes a result.

        ``on_result(index, result)`` is called as each request finishes, so a caller can store the
        work done so far while the rest of the batch runs."""
        rows = [self._prepare(i, r) for i, r in enumerate(requests)]
        results: list[GenerationResult | None] = [None] * len(rows)
        stats = GenerationStats(requests=len(rows))
        start = time.perf_counter()

        def deliver(row: _Row, result: GenerationResult, generated: int) -> None:
            results[row.index] = result
            stats.prompt_tokens += len(row.prompt)
            stats.generated_tokens += generated
            if on_result:
                on_result(row.index, result)
            if progress:
                progress(1)

        singles = [r for r in rows if r.settings.num_beams == 1]
        for finished in self._decode(sorted(singles, key=lambda r: (-r.settings.max_new_tokens, -len(r.prompt)))):
            for row in finished:
                deliver(row, row.result(), row.generated)
        beams = [r for r in rows if r.settings.num_beams > 1]
        for row, result in self._beam_decode(sorted(beams, key=lambda r: -len(r.prompt))):
            deliver(row, result, len(result.token_ids))
        stats.seconds = time.perf_counter() - start
        self.last_stats = stats
        return results  # type: ignore[return-value]

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Text deltas of one request as tokens arrive (UTF-8 safe; stop strings never shown).

        The full result is in ``last_stream_result`` once the iterator is exhausted."""
        row = self._prepare(0, request)
        self.last_stream_result = None
        start = time.perf_counter()
        if row.settings.num_beams > 1:  # the best hypothesis is known only at the end
            _, result = next(self._beam_decode([row]))
            self.last_stream_result = result
            self.last_stats = GenerationStats(
                1, len(row.prompt), len(result.token_ids), time.perf_counter() - start
            )
            yield result.text
            return
        for _ in self._decode([row], each_step=True):
            piece = row.text.delta(final=row.finish_reason is not None)
            if piece:
                yield piece
        self.last_stream_result = row.result()
        self.last_stats = GenerationStats(1, len(row.prompt), row.generated, time.perf_counter() - start)

    def _decode(self, queue: list[_Row], each_step: bool = False) -> Iterator[list[_Row]]:
        """Continuous batching over ``queue``; yields the rows finished at each step."""
        if not queue:
            return
        pending = deque(queue)
        max_len = min(self.context, max(len(r.prompt) + r.settings.max_new_tokens for r in queue))
        batch = _SlotBatch(self, min(self.batch_size, len(queue)), max_len)
        while pending or batch.active:
            while pending and batch.can_admit(pending[0]):
                batch.admit(pending.popleft())
            _, finished = batch.step()
            if finished or each_step:
                yield finished

    # -- prompt scoring ----------------------------------------------------------------------
    @torch.inference_mode()
    def prompt_logprobs(self, prompt_ids: Sequence[int], top: int = 0) -> list[TokenLogprob | None]:
        """Each prompt token's log-probability given the tokens before it (None for the first, which
        has no context), with the ``top`` most likely alternatives: an OpenAI ``echo`` + ``logprobs``.

        Logits are computed ``_SCORED_TOKENS_PER_FORWARD`` positions at a time through the cache, so
        memory stays bounded for a prompt as long as the context."""
        ids = [int(t) for t in prompt_ids]
        if not ids or len(ids) > self.context:
            raise HessError(f"prompt: {len(ids)} tokens; scoring needs 1..{self.context}")
        bad = [t for t in ids if not 0 <= t < self.config.vocab_size]
        if bad:
            raise HessError(f"prompt: token id {bad[0]} is outside the model's vocabulary")
        cache = self.model.new_cache(1, len(ids))
        out: list[TokenLogprob | None] = [None]
        chunk = _SCORED_TOKENS_PER_FORWARD
        for start in range(0, len(ids) - 1, chunk):
            piece = ids[start : start + chunk]
            logits = self.model.forward(torch.tensor(piece), [Segment(0, start, len(piece))], cache)
            lp = torch.log_softmax(logits[:, : self.vocab].double(), dim=-1)
            k = min(top, self.vocab)
            best = torch.topk(lp, k) if k else None
            for j in range(len(piece)):
                target = start + j + 1
                if target >= len(ids):
                    break
                token = ids[target]
                value = float(lp[j, token]) if token < self.vocab else -math.inf
                pairs = (
                    list(zip(best.indices[j].tolist(), best.values[j].tolist(), strict=True))
                    if best is not None
                    else []
                )
                out.append(TokenLogprob(token, value, pairs))
        return out

    # -- beam search -------------------------------------------------------------------------
    def _beam_decode(self, queue: list[_Row]) -> Iterator[tuple[_Row, GenerationResult]]:
        """Beam search for many requests at once; yields (row, result) as each search ends.

        Each search holds a block of ``num_beams`` cache slots and all running beams of all searches
        share one forward pass per step. Rows' logits are batch-invariant, so a result is the one
        the request gets alone."""
        if not queue:
            return
        pending = deque(queue)
        widest = max(r.settings.num_beams for r in queue)
        slots = max(widest, min(self.batch_size, sum(r.settings.num_beams for r in queue)))
        max_len = min(self.context, max(len(r.prompt) + r.settings.max_new_tokens for r in queue))
        cache = self.model.new_cache(slots, max_len)
        used = [False] * slots
        active: list[_BeamSearch] = []
        while pending or active:
            budget = self.prefill_tokens
            joined = False
            while pending and (not joined or len(pending[0].prompt) <= budget):
                base = _free_block(used, pending[0].settings.num_beams)
                if base is None:
                    break
                row = pending.popleft()
                used[base : base + row.settings.num_beams] = [True] * row.settings.num_beams
                budget -= len(row.prompt)
                joined = True
                active.append(_BeamSearch(row, base))
            tokens: list[int] = []
            segments: list[Segment] = []
            counts: list[int] = []
            for search in active:
                fed, segs = search.feed()
                tokens.extend(fed)
                segments.extend(segs)
                counts.append(len(segs))
            last = torch.tensor([s.length for s in segments]).cumsum(0) - 1
            logits = self.model.forward(torch.tensor(tokens), segments, cache, last)
            running: list[_BeamSearch] = []
            offset = 0
            for search, n in zip(active, counts, strict=True):
                if search.advance(logits[offset : offset + n], cache, self._token_bytes):
                    used[search.base : search.base + search.nb] = [False] * search.nb
                    yield search.row, search.result(self._token_bytes)
                else:
                    running.append(search)
                offset += n
            active = running

    # -- scoring -----------------------------------------------------------------------------
    @torch.inference_mode()
    def loglikelihood(
        self,
        pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
        progress: Callable[[int], None] | None = None,
    ) -> list[LoglikelihoodResult]:
        """Log p(continuation | context) for each (context ids, continuation ids) pair.

        An empty context is replaced by the BOS (else EOS) token, as lm-evaluation-harness does. A pair
        longer than the context window loses its oldest tokens; at least one context token remains.
        """
        prepared = [self._prepare_pair(i, ctx, cont) for i, (ctx, cont) in enumerate(pairs)]
        # Pairs with the same context (the choices of one question) share its computation: the context
        # runs once, and its keys and values are copied into each pair's cache slot.
        families: dict[tuple[int, ...], list[int]] = {}
        for i, (seq, n_cont, _) in enumerate(prepared):
            families.setdefault(tuple(seq[: len(seq) - n_cont]), []).append(i)
        chunks = [members[j : j + self.batch_size] for members in families.values()
                  for j in range(0, len(members), self.batch_size)]
        chunks.sort(key=lambda members: -len(prepared[members[0]][0]))
        results: list[LoglikelihoodResult | None] = [None] * len(prepared)
        group: list[list[int]] = []
        pairs_in_group = tokens_in_group = scored_in_group = 0
        kept = {key for key in families if self.kept_prompts.get(key) is not None}
        for members in chunks + [[]]:
            # Tokens fed: the context once (unless a generation kept it), then each other pair's continuation.
            size = 0
            if members:
                seq, n_cont, _ = prepared[members[0]]
                context_fed = 0 if tuple(seq[: len(seq) - n_cont]) in kept else len(seq) - n_cont
                size = context_fed + n_cont + sum(prepared[i][1] for i in members[1:])
            scored = sum(prepared[i][1] for i in members)
            full = (
                pairs_in_group + len(members) > self.batch_size
                or tokens_in_group + size > 2 * self.prefill_tokens
                or scored_in_group + scored > _SCORED_TOKENS_PER_FORWARD
            )
            if group and (not members or full):
                done = [i for chunk in group for i in chunk]
                for j, res in zip(done, self._score_group([[prepared[i] for i in chunk] for chunk in group]),
                                  strict=True):
                    results[j] = res
                if progress:
                    progress(len(done))
                group, pairs_in_group, tokens_in_group, scored_in_group = [], 0, 0, 0
            if members:
                group.append(members)
                pairs_in_group += len(members)
                tokens_in_group += size
                scored_in_group += scored
        for key in kept:
            self.kept_prompts.drop(key)
        return results  # type: ignore[return-value]

    def _prepare_pair(
        self, index: int, context: Sequence[int], continuation: Sequence[int]
    ) -> tuple[list[int], int, bool]:
        ctx = [int(t) for t in context]
        cont = [int(t) for t in continuation]
        if not ctx:
            start = self.tokenizer.bos_id if self.tokenizer.bos_id is not None else self.tokenizer.eos_id
            if start is None:
                raise HessError(
                    f"loglikelihood pair #{index}: empty context and the tokenizer has no BOS/EOS token"
                )
            ctx = [start]
        bad = [t for t in ctx + cont if not 0 <= t < self.config.vocab_size]
        if bad:
            raise HessError(
                f"loglikelihood pair #{index}: token id {bad[0]} is outside the model's vocabulary"
            )
        # A padding id (a model row above the tokenizer's ids) can never be generated: no log-prob.
        padding = [t for t in cont if t >= self.vocab]
        if padding:
            raise HessError(
                f"loglikelihood pair #{index}: continuation token id {padding[0]} is outside the ids "
                f"the model can emit (0..{self.vocab - 1})"
            )
        seq = ctx + cont
        truncated = len(seq) > self.context
        n_cont = min(len(cont), self.context - 1)
        if truncated:
            seq = seq[-self.context :]
        return seq, n_cont, truncated

    def _score_group(self, families: list[list[tuple[list[int], int, bool]]]) -> list[LoglikelihoodResult]:
        """Score pairs in two passes: each family's shared context, then every pair's continuation.

        A pair is always computed as its context (after the template's prefix) and then its
        continuation as its own segment, so its bits do not depend on whether its context was shared."""
        group = [pair for family in families for pair in family]
        cache = self.model.new_cache(len(group), max(len(seq) for seq, _, _ in group))
        tokens: list[int] = []
        segments: list[Segment] = []
        last_rows: list[int] = []
        firsts: list[torch.Tensor | None] = []
        slot = 0
        for family in families:  # pass 1: each context once, in its first pair's slot
            seq, n_cont, _ = family[0]
            context = seq[: len(seq) - n_cont]
            stored = self.kept_prompts.get(context)
            if stored is not None:  # computed by a generation: the same bits
                cache.write_prefix(slot, stored.keys, stored.values)
                firsts.append(stored.logits[None])
            else:
                # Logits at position p predict token p + 1: the context's last row predicts the first token.
                fed, segs = self._prompt_segments(cache, slot, context, self.split_at(context))
                tokens.extend(fed)
                segments.extend(segs)
                last_rows.append(len(tokens) - 1)
                firsts.append(None)
            slot += len(family)
        if tokens:
            computed = iter(self.model.forward(torch.tensor(tokens), segments, cache, torch.tensor(last_rows)))
            firsts = [next(computed)[None] if first is None else first for first in firsts]
        first_logits = torch.cat(firsts)  # type: ignore[arg-type]
        tokens, segments, slot = [], [], 0
        for family in families:  # pass 2: the continuations (all but their last token)
            context_length = len(family[0][0]) - family[0][1]
            for j, (seq, n_cont, _) in enumerate(family):
                if j:
                    cache.copy_slot(slot - j, slot, context_length)
                if n_cont > 1:
                    tokens.extend(seq[context_length:-1])
                    segments.append(Segment(slot, context_length, n_cont - 1))
                slot += 1
        rest = self.model.forward(torch.tensor(tokens), segments, cache) if tokens else first_logits[:0]
        pieces, offset = [], 0
        for f, family in enumerate(families):
            for _, n_cont, _ in family:
                if n_cont:
                    pieces.append(torch.cat([first_logits[f : f + 1], rest[offset : offset + n_cont - 1]]))
                    offset += n_cont - 1
        logits = torch.cat(pieces) if pieces else first_logits[:0]
        out = []
        offset = 0
        for seq, n_cont, truncated in group:
            targets = torch.tensor(seq[len(seq) - n_cont :], dtype=torch.long)
            lg = logits[offset : offset + n_cont, : self.vocab].double()
            offset += n_cont
            logprobs = lg.gather(1, targets[:, None])[:, 0] - torch.logsumexp(lg, dim=-1)
            correct = (lg.argmax(dim=-1) == targets).tolist()
            n_bytes = sum(len(self._token_bytes[t]) if t < self.vocab else 0 for t in targets.tolist())
            out.append(
                LoglikelihoodResult(
                    float(logprobs.sum()), n_cont, all(correct), int(sum(correct)), n_bytes, truncated
                )
            )
        return out


class _SlotBatch:
    """Rows decoding together in one KV cache: admission into free slots, one forward pass per step."""

    def __init__(self, engine: Engine, slots: int, max_len: int) -> None:
        self.engine = engine
        self.cache = engine.model.new_cache(slots, max_len)
        self.max_len = max_len
        self.free = list(range(slots - 1, -1, -1))
        self.active: list[_Row] = []
        self.joining: list[_Row] = []
        self.budget = engine.prefill_tokens

    def can_admit(self, row: _Row) -> bool:
        """A free slot, and the step's prompt budget (the first joining prompt always fits)."""
        return bool(self.free) and (not self.joining or len(row.prompt) <= self.budget)

    def admit(self, row: _Row) -> None:
        row.slot = self.free.pop()
        self.budget -= len(row.prompt)
        self.joining.append(row)

    def remove(self, row: _Row) -> None:
        """Drop a row before it finishes (its slot is reused; no other row is affected)."""
        if row in self.joining:
            self.joining.remove(row)
            self.budget += len(row.prompt)
        else:
            self.active.remove(row)
        self.free.append(row.slot)

    def grow(self, max_len: int) -> None:
        if max_len > self.max_len:
            self.cache.grow(max_len)
            self.max_len = max_len

    def step(self) -> tuple[list[_Row], list[_Row]]:
        """One forward pass over the decoding rows and the joining prompts: (rows that ran, finished).

        A decoding row may bring guessed tokens after its last one (``Engine.draft_tokens``); it keeps
        each guess the model chooses too, in order, and the first token it chooses otherwise."""
        engine = self.engine
        self.active.sort(key=lambda r: r.slot)  # slot order lets a full decoding step skip a gather
        step_rows = self.active + self.joining
        prompts = [
            engine._prompt_segments(self.cache, row.slot, row.prompt, engine.split_at(row.prompt))
            for row in self.joining
        ]
        spare = engine.draft_row_budget - len(self.active) - sum(len(fed) for fed, _ in prompts)
        tokens: list[int] = []
        segments: list[Segment] = []
        picks: list[int] = []  # logit rows: every token a decoding row feeds, a prompt's last token
        drafts: list[list[int]] = []
        for row in self.active:
            # No guess past the row's last token (so none past the cache, which holds prompt + answer).
            room = min(engine.draft_tokens, spare, row.settings.max_new_tokens - len(row.tokens) - 1)
            draft = row.draft(room) if room > 0 else []
            spare -= len(draft)
            picks.extend(range(len(tokens), len(tokens) + 1 + len(draft)))
            tokens += [row.tokens[-1], *draft]
            segments.append(Segment(row.slot, row.cached, 1 + len(draft)))
            drafts.append(draft)
        for fed, segs in prompts:
            tokens.extend(fed)
            segments.extend(segs)
            picks.append(len(tokens) - 1)
            drafts.append([])
        logits = engine.model.forward(torch.tensor(tokens), segments, self.cache, torch.tensor(picks))
        greedy = _greedy_tokens(logits, engine.vocab, engine.library_argmax)
        first_prompt = len(picks) - len(self.joining)  # each prompt's one logit row follows the decoding rows'
        for j, row in enumerate(self.joining):
            engine._keep_prompt(row.prompt, self.cache, row.slot, logits[first_prompt + j])
        finished: list[_Row] = []
        self.active, self.joining, self.budget = [], [], engine.prefill_tokens
        first = 0
        for row, draft in zip(step_rows, drafts, strict=True):
            engine.drafted += len(draft)
            for j in range(len(draft) + 1):
                row.cached = len(row.prompt) + len(row.tokens)
                token = greedy[first + j] if row.settings.greedy_plain else row.choose(logits[first + j])
                row.record_logprob(logits[first + j], token)
                data = engine._token_bytes[token] if token < engine.vocab else b""
                done = row.push(token, data, self.max_len - row.cached)
                if done or j == len(draft) or token != draft[j]:
                    break
                engine.accepted += 1
            first += len(draft) + 1
            if done:
                finished.append(row)
                self.free.append(row.slot)
            else:
                self.active.append(row)
        return step_rows, finished


@dataclass
class RowUpdate:
    """What one step of a LiveBatch produced for one request."""

    key: Any
    text: str  # new final text (UTF-8 safe; a stop string is never shown, even in part)
    result: GenerationResult | None  # set when the request is finished
    generated: int  # tokens produced so far, a final stop token included


class LiveBatch:
    """A continuous batch that requests join while it runs: the engine behind a server.

    One thread owns it. ``add`` queues a request under a caller's key; each ``step`` admits queued
    requests into free slots (within the prefill budget), runs one forward pass and returns an update
    for every request that ran. Rows are batch-invariant, so each answer is the one ``generate``
    gives that request alone, whatever joins or leaves around it. The cache grows to the longest
    admitted request and is released whenever the batch runs empty."""

    def __init__(self, engine: Engine, slots: int | None = None) -> None:
        self.engine = engine
        self.slots = slots or engine.batch_size
        self.pending: deque[_Row] = deque()
        self.batch: _SlotBatch | None = None
        self.rows: dict[Any, _Row] = {}

    def __len__(self) -> int:
        """Requests queued or running."""
        return len(self.rows)

    @property
    def running(self) -> int:
        return len(self.rows) - len(self.pending)

    def add(self, key: Any, request: GenerationRequest) -> None:
        """Queue ``request``; raises HessError for a request the engine cannot run (nothing queued)."""
        if key in self.rows:
            raise ValueError(f"key {key!r} is already in the batch")
        if request.settings.num_beams > 1:
            raise HessError("num_beams: beam search does not run in a live batch")
        row = self.engine._prepare(0, request)
        if row.truncated:
            raise HessError(
                f"prompt: {len(request.prompt_ids)} tokens + max_new_tokens "
                f"{request.settings.max_new_tokens} exceed the model's context of {self.engine.context}"
            )
        row.key = key
        self.rows[key] = row
        self.pending.append(row)

    def cancel(self, key: Any) -> bool:
        """Drop a queued or running request; its slot is free for the next step. False if unknown."""
        row = self.rows.pop(key, None)
        if row is None:
            return False
        if row in self.pending:
            self.pending.remove(row)
        elif self.batch is not None:
            self.batch.remove(row)
        return True

    def step(self) -> list[RowUpdate]:
        """Admit what fits, run one forward pass; nothing to do returns []."""
        if not self.rows:
            self.batch = None
            return []
        if self.batch is None:
            self.batch = _SlotBatch(self.engine, self.slots, self._need(self.pending[0]))
        while self.pending and self.batch.can_admit(self.pending[0]):
            row = self.pending.popleft()
            self.batch.grow(self._need(row))
            self.batch.admit(row)
        ran, finished = self.batch.step()
        done = set(map(id, finished))
        updates = []
        for row in ran:
            final = id(row) in done
            result = row.result() if final else None
            if final:
                del self.rows[row.key]
            updates.append(RowUpdate(row.key, row.text.delta(final=final), result, row.generated))
        if not self.batch.active and not self.batch.joining:
            self.batch = None  # release the cache while idle: memory stays flat
        return updates

    def build_kernels(self) -> None:
        """Build the kernels of every step this batch can run (its slots decoding, plus a step's
        prompts), so that its memory stays flat from the first request on."""
        self.engine.model.build_kernels(self.slots + self.engine.prefill_tokens, self.slots)

    def _need(self, row: _Row) -> int:
        return min(self.engine.context, len(row.prompt) + row.settings.max_new_tokens)


def _greedy_tokens(logits: torch.Tensor, vocab: int, library: bool) -> list[int]:
    """Each row's argmax over the vocabulary, by the kernel library where it runs (``library``): torch's
    argmax starts an OpenMP thread that then spins on the other core through the next step's first
    kernels (a batch-16 step of the fma path: 35.9-36.9 -> 32.7-33.1 ms on the Intel Xeon)."""
    if library and logits.dtype == torch.float32 and logits.stride(-1) == 1:
        return exact_kernels.argmax_rows(logits, vocab)
    return logits[:, :vocab].argmax(dim=-1).tolist()


def _free_block(used: list[bool], size: int) -> int | None:
    """The first slot of ``size`` consecutive free cache slots, or None."""
    run = 0
    for i, taken in enumerate(used):
        run = 0 if taken else run + 1
        if run == size:
            return i - size + 1
    return None


class _BeamSearch:
    """One request's beam search over cache slots ``base .. base + num_beams - 1`` (deterministic).

    A hypothesis ending in a stop token (or a stop string) is scored by its summed log-probability
    over (generated tokens, the stop token included) ** length_penalty; search stops when no running
    beam can beat the worst of ``num_beams`` finished hypotheses."""

    def __init__(self, row: _Row, base: int) -> None:
        self.row, self.base = row, base
        self.nb = row.settings.num_beams
        self.beams = [_Beam(row, [], 0.0)]
        self.finished: list[tuple[float, list[int], str, int]] = []  # (score, tokens, reason, stop_len)
        self.cached = 0  # positions of every running beam already in its slot
        self.steps = 0

    def feed(self) -> tuple[list[int], list[Segment]]:
        """The next tokens to run: the prompt, then the last token of each running beam."""
        if self.cached == 0:
            self.cached = len(self.row.prompt)
            return list(self.row.prompt), [Segment(self.base, 0, self.cached)]
        start = self.cached
        self.cached += 1
        return [b.tokens[-1] for b in self.beams], [
            Segment(self.base + i, start, 1) for i in range(len(self.beams))
        ]

    def _normalised(self, total: float, length: int) -> float:
        return total / (max(length, 1) ** self.row.settings.length_penalty)

    def advance(self, logits: torch.Tensor, cache: Any, token_bytes: list[bytes]) -> bool:
        """One step from the running beams' logits (one row each); True when the search is over."""
        row, nb = self.row, self.nb
        candidates: list[tuple[float, int, int]] = []  # (total logprob, beam index, token)
        for b, beam in enumerate(self.beams):
            lp = torch.log_softmax(beam.process(logits[b]).double(), dim=-1)
            values, ids = torch.topk(lp, min(2 * nb, lp.numel()))
            candidates.extend((beam.score + float(v), b, int(t)) for v, t in zip(values, ids, strict=True))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        next_beams: list[_Beam] = []
        for rank, (total, b, token) in enumerate(candidates):
            parent = self.beams[b]
            if token in row.stop_ids:
                if rank < nb:
                    self.finished.append(
                        (self._normalised(total, len(parent.tokens) + 1), parent.tokens, "stop", -1)
                    )
                continue
            child = parent.extend(token, total, token_bytes[token] if token < row.vocab else b"")
            if child.text.kept is not None:
                if rank < nb:
                    score = self._normalised(total, len(child.tokens))
                    self.finished.append((score, child.tokens, "stop_string", child.text.kept))
                continue
            next_beams.append(child)
            if len(next_beams) == nb:
                break
        self.finished.sort(key=lambda f: -f[0])
        self.finished = self.finished[:nb]
        parents = [next(i for i, b in enumerate(self.beams) if b is c.parent) for c in next_beams]
        self.beams = next_beams
        self.steps += 1
        if not self.beams or self.steps == row.settings.max_new_tokens:
            return True
        best_running = max(self._normalised(c.score, len(c.tokens)) for c in self.beams)
        if len(self.finished) >= nb and best_running <= self.finished[-1][0]:
            return True
        # Slot base + i holds beam i: copy each new beam's parent cache rows into place.
        cache.gather_slots(
            [self.base + i for i in range(len(self.beams))], [self.base + p for p in parents], self.cached
        )
        return False

    def result(self, token_bytes: list[bytes]) -> GenerationResult:
        row = self.row
        finished = list(self.finished)
        for beam in self.beams:
            if beam.tokens and beam.text.kept is None:
                finished.append((self._normalised(beam.score, len(beam.tokens)), beam.tokens, "length", -1))
        finished.sort(key=lambda f: -f[0])
        _, tokens, reason, _ = finished[0] if finished else (0.0, [], "length", -1)
        text = _StopText(row.settings.stop_strings)
        for t in tokens:
            text.push(token_bytes[t] if t < row.vocab else b"")
        return GenerationResult(
            text.text(), tokens[: text.n_kept_tokens()], reason, len(row.prompt), row.truncated
        )


class _Beam:
    def __init__(
        self,
        row: _Row,
        tokens: list[int],
        score: float,
        parent: _Beam | None = None,
        text: _StopText | None = None,
        ngrams: NgramIndex | None = None,
    ) -> None:
        self.row, self.tokens, self.score, self.parent = row, tokens, score, parent
        self.text = text or _StopText(row.settings.stop_strings)
        s = row.settings
        self.ngrams = (
            ngrams
            if ngrams is not None
            else (NgramIndex(s.no_repeat_ngram_size, row.prompt) if s.no_repeat_ngram_size else None)
        )

    def process(self, logits: torch.Tensor) -> torch.Tensor:
        s, row = self.row.settings, self.row
        logits = logits[: row.vocab]
        if s.repetition_penalty != 1.0:
            seen = sorted(t for t in set(row.prompt) | set(self.tokens) if t < row.vocab)
            logits = apply_repetition_penalty(
                logits, torch.tensor(seen, dtype=torch.long), s.repetition_penalty
            )
        if self.ngrams is not None:
            logits = ban(logits, [t for t in self.ngrams.banned() if t < row.vocab])
        if len(self.tokens) < s.min_new_tokens and row.stop_ids:
            logits = ban(logits, [t for t in row.stop_ids if t < row.vocab])
        return logits

    def extend(self, token: int, score: float, data: bytes) -> _Beam:
        text = _StopText(self.row.settings.stop_strings)
        text.buf, text.token_ends = bytearray(self.text.buf), list(self.text.token_ends)
        text.push(data)
        ngrams = None
        if self.ngrams is not None:
            ngrams = NgramIndex(self.ngrams.n)
            ngrams.tokens, ngrams.follow = (
                list(self.ngrams.tokens),
                {k: set(v) for k, v in self.ngrams.follow.items()},
            )
            ngrams.append(token)
        return _Beam(self.row, self.tokens + [token], score, self, text, ngrams)
