"""Any model behind an OpenAI-compatible HTTP endpoint (vLLM, llama.cpp's server, ``hessgpt serve``).

- Answers come from ``POST /v1/chat/completions`` (the server applies the model's chat template).
- Likelihoods come from ``POST /v1/completions`` with ``echo`` and ``logprobs``: the conversation is
  rendered as text with the model's chat template (``--chat-template``), the assistant's answer is
  appended, and the server returns the log-prob of every prompt token with its character offset.
  The tokens whose text overlaps the answer are the ones scored, as the local engine scores the
  tokens its template marks as the assistant's. When the template comes from a checkpoint, its
  tokenizer is known too: the prompt is sent as token ids (exactly what the local engine scores, and
  immune to how a server parses special-token spellings in text) and the last tokens are scored. A server that returns no prompt log-probs (llama.cpp's
  server today) makes the likelihood metrics "not available from this endpoint", never zeros.
- Requests run ``concurrency`` at a time; results reach the runner on the calling thread.
"""

from __future__ import annotations

import hashlib
import math
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.backends.answer_tokens import continuation_ids
from benchmarks.backends.base import (
    Backend,
    Capabilities,
    Generation,
    GenerationRequest,
    Likelihood,
    LikelihoodRequest,
    LikelihoodUnavailable,
    OnGeneration,
    SamplingSettings,
)
from benchmarks.backends.http_client import EndpointClient, EndpointRejected
from hessgpt.errors import HessError

NO_PROMPT_LOGPROBS = ("not available from this endpoint: /v1/completions returned no log-probabilities for "
                      "the prompt tokens (it needs echo with logprobs, as vLLM supports)")


def request_seed(seed: int, request_id: str) -> int:
    """A per-request seed from the run's seed and the request id: samples differ, reruns repeat."""
    digest = hashlib.sha256(f"{seed}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class OpenAIBackend(Backend):
    kind = "http"

    def __init__(self, endpoint: str, model: str, chat_template: Any | None = None,
                 chat_template_source: str | None = None, send_ids: bool = False, api_key: str | None = None,
                 concurrency: int = 4,
                 timeout: float = 120.0, retries: int = 5, backoff: float = 1.0,
                 log_requests: Path | None = None) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise HessError(f"--endpoint: expected an http:// or https:// URL ending in /v1, got {endpoint!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise HessError(f"--concurrency: must be an integer >= 1, got {concurrency!r}")
        if not timeout > 0:
            raise HessError(f"--timeout: must be more than 0 seconds, got {timeout}")
        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self.template = chat_template
        self.template_source = chat_template_source
        self.send_ids = send_ids  # the template comes with the model's tokenizer: send token ids
        self.concurrency = concurrency
        self.client = EndpointClient(self.endpoint, api_key, timeout=timeout, retries=retries, backoff=backoff,
                                     log_path=log_requests)
        context = self._context_length()
        note = None if chat_template is not None else (
            "not available from this endpoint without the model's chat template: give --chat-template "
            "(a tokenizer_config.json, a jinja file or a checkpoint) to score answers through /v1/completions")
        self.capabilities = Capabilities(likelihood=chat_template is not None, seeds=True, logprobs=True,
                                         context_length=context, likelihood_note=note)

    def _context_length(self) -> int | None:
        """The model's window from ``GET /v1/models`` (vLLM's ``max_model_len``), when the server says."""
        try:
            listing = self.client.get("/models")
        except EndpointRejected:
            return None
        for entry in listing.get("data", []) if isinstance(listing, dict) else []:
            if isinstance(entry, dict) and entry.get("id") == self.model:
                value = entry.get("max_model_len")
                if isinstance(value, int) and not isinstance(value, bool) and value > 1:
                    return value
        return None

    def close(self) -> None:
        self.client.close()

    # -- generation -------------------------------------------------------------------------------
    def _chat_body(self, request: GenerationRequest) -> dict[str, Any]:
        s: SamplingSettings = request.settings
        if s.no_repeat_ngram_size:
            raise HessError("--no-repeat-ngram-size: not supported through an OpenAI-compatible endpoint")
        body: dict[str, Any] = {"model": self.model, "messages": request.messages, "max_tokens": s.max_new_tokens,
                                "temperature": s.temperature, "top_p": s.top_p,
                                "seed": request_seed(s.seed, request.request_id), "stream": False}
        # Not in OpenAI's API, but read by vLLM and llama.cpp's server: sent only when asked for.
        if s.top_k:
            body["top_k"] = s.top_k
        if s.repetition_penalty != 1.0:
            body["repetition_penalty"] = s.repetition_penalty
        return body

    def _chat(self, request: GenerationRequest) -> Generation:
        answer = self._post("/chat/completions", self._chat_body(request))
        choice = _first_choice(answer, "/chat/completions")
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if content is not None and not isinstance(content, str):
            raise HessError("--endpoint: /chat/completions: 'choices[0].message.content' is not a string")
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        finish = choice.get("finish_reason")
        return Generation(content or "", finish if isinstance(finish, str) else None,
                          _count(usage.get("completion_tokens")), _count(usage.get("prompt_tokens")))

    def generate(self, requests: Sequence[GenerationRequest], on_result: OnGeneration) -> None:
        if requests:
            self._chat_body(requests[0])  # an unsupported setting fails before any request is sent
        self._run_pool(requests, self._chat, on_result)

    def _run_pool(self, work: Sequence[Any], call: Callable[[Any], Any], on_result: Callable[[int, Any], None]) -> None:
        """``call`` on every element from ``concurrency`` worker threads; ``on_result`` on this thread as
        each ends. The workers are daemons: Ctrl-C or an error ends the run without waiting for the
        requests still in flight (their answers are lost, the stored ones are not)."""
        jobs: queue.SimpleQueue = queue.SimpleQueue()
        done: queue.SimpleQueue = queue.SimpleQueue()
        for job in enumerate(work):
            jobs.put(job)
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                try:
                    index, element = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((index, call(element), None))
                except BaseException as exc:  # handed to the calling thread, which raises it
                    done.put((index, None, exc))

        for n in range(min(self.concurrency, len(work))):
            threading.Thread(target=worker, name=f"endpoint-{n}", daemon=True).start()
        try:
            for _ in range(len(work)):
                index, result, error = done.get()
                if error is not None:
                    raise error
                on_result(index, result)
        finally:
            stop.set()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = self.client.post(path, body)
        except EndpointRejected as exc:
            raise HessError(f"--endpoint: {self.endpoint}{path}: {exc}") from None
        if not isinstance(answer, dict):
            raise HessError(f"--endpoint: {path}: expected a JSON object")
        return answer

    # -- likelihood -------------------------------------------------------------------------------
    def _context(self, messages: list[dict], text: str) -> tuple[str, int, int]:
        """(prompt text to send, start and end of the answer in it)."""
        full = self.template.render_text(messages + [{"role": "assistant", "content": text}],
                                         add_generation_prompt=False)
        start = full.rfind(text)
        if start < 0:
            raise HessError("--chat-template: the rendered conversation does not contain the assistant's answer")
        return full[:start + len(text)], start, start + len(text)

    def _score(self, job: tuple[list[dict], str]) -> Likelihood | None:
        messages, text = job
        if not text:
            return None
        if self.send_ids:  # the model's own tokens, as the local engine scores them
            prompt_ids = self.template.render(messages, add_generation_prompt=True).ids
            found = continuation_ids(self.template, messages, prompt_ids, text)
            if found is None:
                return None
            ids, n_bytes = found
            logprobs = self._echo(prompt_ids + ids)
            return last_logprobs(logprobs, len(prompt_ids) + len(ids), len(ids), n_bytes)
        prompt, start, end = self._context(messages, text)
        return align_logprobs(self._echo(prompt), prompt, start, end)

    def _echo(self, prompt: str | list[int]) -> Any:
        """The ``logprobs`` object of /v1/completions echoing ``prompt`` (text or token ids)."""
        body = {"model": self.model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "echo": True,
                "logprobs": 1}
        try:
            answer = self.client.post("/completions", body)
        except EndpointRejected as exc:
            raise LikelihoodUnavailable(f"not available from this endpoint: /v1/completions answered {exc}") from None
        if not isinstance(answer, dict):
            raise HessError("--endpoint: /completions: expected a JSON object")
        return _first_choice(answer, "/completions").get("logprobs")

    def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[list[Likelihood | None]]:
        jobs = [(r.messages, text) for r in requests for text in r.continuations]
        scores: list[Likelihood | None] = [None] * len(jobs)

        def keep(index: int, score: Likelihood | None) -> None:
            scores[index] = score

        self._run_pool(jobs, self._score, keep)
        out, position = [], 0
        for r in requests:
            out.append(scores[position:position + len(r.continuations)])
            position += len(r.continuations)
        return out

    # -- what it is -------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return {"backend": self.kind, "endpoint": self.endpoint, "model": self.model, "token_ids": self.send_ids,
                "chat_template": _sha(self.template.source) if self.template is not None else None}

    def describe(self) -> dict[str, Any]:
        return {"backend": {"kind": self.kind, "endpoint": self.endpoint, "model": self.model,
                            "chat_template": self.template_source, "prompt_token_ids": self.send_ids,
                            "concurrency": self.concurrency},
                "model": {"name": self.model}}


def align_logprobs(logprobs: Any, prompt: str, start: int, end: int) -> Likelihood:
    """Score the echoed prompt tokens whose text overlaps ``prompt[start:end]``.

    ``logprobs`` is the completions ``logprobs`` object: ``tokens``, ``token_logprobs``,
    ``text_offset`` (character offsets into the echoed text) and optionally ``top_logprobs``.
    """
    if not isinstance(logprobs, dict):
        raise LikelihoodUnavailable(NO_PROMPT_LOGPROBS)
    offsets, values = logprobs.get("text_offset"), logprobs.get("token_logprobs")
    tops = logprobs.get("top_logprobs")
    if not (isinstance(offsets, list) and isinstance(values, list) and len(offsets) == len(values) and offsets):
        raise LikelihoodUnavailable(NO_PROMPT_LOGPROBS)
    if not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets) or offsets[0] != 0 \
            or any(b < a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise LikelihoodUnavailable(NO_PROMPT_LOGPROBS)  # not the echoed prompt's tokens, in order
    n_prompt = sum(1 for o in offsets if o < len(prompt))  # the prompt's tokens come first, then generated ones
    if n_prompt < 2 or (n_prompt < len(offsets) and offsets[n_prompt] != len(prompt)):
        raise LikelihoodUnavailable(NO_PROMPT_LOGPROBS)  # only the generated token's log-prob came back
    inside = range(n_prompt)
    bounds = [offsets[i + 1] if i + 1 < len(offsets) else len(prompt) for i in inside]
    scored = [i for i, stop in zip(inside, bounds, strict=True)
              if offsets[i] < end and (stop > start or offsets[i] >= start)]
    if not scored:
        raise LikelihoodUnavailable(NO_PROMPT_LOGPROBS)
    n_bytes = len(prompt[offsets[scored[0]]:min(end, bounds[scored[-1]])].encode("utf-8"))
    return _likelihood(values, tops, scored, n_bytes)


def last_logprobs(logprobs: Any, n_prompt: int, n: int, n_bytes: int) -> Likelihood:
    """Score the last ``n`` of the ``n_prompt`` echoed prompt tokens (a prompt sent as token ids)."""
    if not isinstance(logprobs, dict):
        raise LikelihoodUnavailable(NO_PROMPT_LOGPROBS)
    values, tops = logprobs.get("token_logprobs"), logprobs.get("top_logprobs")
    # One entry per prompt token, then at most the one generated token.
    if not isinstance(values, list) or len(values) not in (n_prompt, n_prompt + 1):
        raise LikelihoodUnavailable(NO_PROMPT_LOGPROBS)
    return _likelihood(values, tops, list(range(n_prompt - n, n_prompt)), n_bytes)


def _likelihood(values: list, tops: Any, scored: list[int], n_bytes: int) -> Likelihood:
    total = 0.0
    correct: int | None = 0
    for i in scored:
        value = values[i]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value > 1e-6:
            raise LikelihoodUnavailable(NO_PROMPT_LOGPROBS)
        total += float(value)
        best = _best(tops[i] if isinstance(tops, list) and i < len(tops) else None)
        correct = None if best is None or correct is None else correct + (value >= best)
    return Likelihood(total, len(scored), n_bytes, None if correct is None else correct == len(scored), correct)


def _best(top: Any) -> float | None:
    """The highest log-prob among a token position's top candidates (a dict, or a list of entries)."""
    if isinstance(top, dict):
        numbers = [v for v in top.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    elif isinstance(top, list):
        numbers = [e.get("logprob") for e in top if isinstance(e, dict)
                   and isinstance(e.get("logprob"), int | float) and not isinstance(e.get("logprob"), bool)]
    else:
        return None
    return max(numbers) if numbers else None


def _first_choice(answer: dict[str, Any], path: str) -> dict[str, Any]:
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise HessError(f"--endpoint: {path}: the answer has no 'choices[0]' object")
    return choices[0]


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
