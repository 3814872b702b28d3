"""The HTTP API (FastAPI): OpenAI-compatible routes over the scheduler, and the chat page at ``/``.

Every error, ours or the framework's, is answered in the OpenAI shape
``{"error": {"message", "type", "param", "code"}}`` with a 4xx status (5xx only for a bug).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hessgpt.errors import HessError
from hessgpt.generate import ENGINE_VERSION, Engine, GenerationRequest, GenerationSettings
from hessgpt.serve.protocol import ApiError, Limits, Sampling, parse_chat, parse_completion
from hessgpt.serve.responses import (
    chat_logprobs,
    completion_logprobs,
    finish_reason,
    sse,
    usage,
)
from hessgpt.serve.scheduler import Event, Job, Scheduler

log = logging.getLogger("hessgpt.serve")
# One job of a request: what to generate, how many alternatives to score the prompt with (or None),
# and whether to generate at all (echo with max_tokens 0 scores the prompt only).
JobSpec = tuple[GenerationRequest, int | None, bool]
FINGERPRINT = f"hessgpt-engine-v{ENGINE_VERSION}"
# How often a non-streaming request checks that its client is still there.
_DISCONNECT_POLL_SECONDS = 0.5


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    model_name: str
    slots: int = 16
    max_concurrent: int = 256  # requests queued or running; more get 429
    api_key: str | None = None
    limits: Limits = dataclasses.field(default_factory=Limits)


def create_app(engine: Engine, options: ServeOptions) -> FastAPI:
    scheduler = Scheduler(engine, options.slots)
    limits = options.limits
    state = {"inflight": 0}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()

    app = FastAPI(title="hessgpt serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.scheduler = scheduler

    # -- errors ---------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(ApiError(str(exc.detail), exc.status_code, code=code).body(), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(ApiError(f"invalid request: {exc.errors()[:1]}").body(), status_code=400)

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        error = ApiError(f"internal error: {type(exc).__name__}", 500, type_="server_error")
        return JSONResponse(error.body(), status_code=500)

    def authorise(request: Request) -> None:
        if options.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), options.api_key.encode()):
            raise ApiError(
                "missing or incorrect API key (send Authorization: Bearer <key>)", 401, code="invalid_api_key"
            )

    # -- routes ---------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        html = resources.files("hessgpt.serve").joinpath("page.html").read_text("utf-8")
        # The page runs only its own inline code and talks only to this server.
        csp = (
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff"})

    @app.get("/health")
    async def health() -> dict:
        return {
            "status": "ok",
            "model": options.model_name,
            "running": scheduler.running,
            "queued": scheduler.queued,
            "finished": scheduler.finished,
            "cancelled": scheduler.cancelled,
            "in_flight": state["inflight"],  # admitted requests not yet answered (the 429 limit counts these)
            "slots": options.slots,
            "context": engine.context,
        }

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        authorise(request)
        return {
            "object": "list",
            "data": [
                {
                    "id": options.model_name,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "hessgpt",
                    "max_model_len": engine.context,
                }
            ],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        params, base = await parse(request, parse_chat)
        s = params.sampling
        gen = fit(await tokenize(engine.chat_request, params.messages, base, param="messages"), s, "messages")
        jobs = [(gen, None, True)]

        def complete(rid: str, created: int, finals: list[Event]) -> dict:
            (final,) = finals
            result = final.result
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "logprobs": chat_logprobs(engine, result) if s.logprobs is not None else None,
                "finish_reason": finish_reason(result),
            }
            return envelope(rid, "chat.completion", created, [choice], usage=usage(len(gen.prompt_ids), final.generated))

        return await respond(request, jobs, s, "chatcmpl", chat_stream, complete)

    @app.post("/v1/completions")
    async def completions(request: Request):
        params, base = await parse(request, parse_completion)
        s = params.sampling
        jobs = []
        for i, prompt in enumerate(params.prompts):
            where = "prompt" if len(params.prompts) == 1 else f"prompt[{i}]"
            if isinstance(prompt, str):
                gen = await tokenize(engine.text_request, prompt, base, param="prompt")
            else:
                # Only ids the tokenizer knows: a padding row of the embedding has no text and no log-prob.
                bad = [t for t in prompt if not 0 <= t < engine.vocab]
                if bad:
                    raise ApiError(
                        f"{where}: token id {bad[0]} is outside the vocabulary (0..{engine.vocab - 1})", param="prompt"
                    )
                gen = GenerationRequest(list(prompt), base)
            if not gen.prompt_ids:
                raise ApiError(f"{where}: the prompt is empty (it tokenizes to nothing)", param="prompt")
            generate = s.max_tokens != 0
            gen = fit(gen, s, "prompt")
            score = s.logprobs if s.echo and s.logprobs is not None else None
            jobs.append((gen, score, generate))

        def complete(rid: str, created: int, finals: list[Event]) -> dict:
            choices = []
            for i, ((gen, _, _), final) in enumerate(zip(jobs, finals, strict=True)):
                result = final.result
                prompt_text = token_text_of(gen.prompt_ids) if s.echo else ""
                logprobs = None
                if s.logprobs is not None:
                    logprobs = completion_logprobs(
                        engine, gen.prompt_ids, final.prompt_logprobs, result, s.echo, s.logprobs
                    )
                choices.append(
                    {
                        "index": i,
                        "text": prompt_text + result.text,
                        "logprobs": logprobs,
                        "finish_reason": finish_reason(result),
                    }
                )
            n_prompt, n_generated = sum(len(g.prompt_ids) for g, _, _ in jobs), sum(f.generated for f in finals)
            return envelope(rid, "text_completion", created, choices, usage=usage(n_prompt, n_generated))

        return await respond(request, jobs, s, "cmpl", completion_stream, complete)

    # -- what both routes share ------------------------------------------------------------------
    async def parse(request: Request, parser) -> tuple[Any, GenerationSettings]:
        """Authorise, read and check the body: (the parsed fields, the generation settings they ask for)."""
        authorise(request)
        params = parser(await read_json(request, limits), limits)
        return params, base_settings(params.sampling)

    async def respond(request: Request, jobs: list[JobSpec], s: Sampling, prefix: str, stream, complete):
        """Submit the jobs; stream their events, or wait for all of them and answer ``complete(...)``."""
        rid, created = f"{prefix}-{uuid.uuid4().hex}", int(time.time())
        if s.stream:
            return streaming(request, jobs, stream(rid, created, s))
        return complete(rid, created, await run_jobs(request, jobs))

    def envelope(rid: str, kind: str, created: int, choices: list[dict], **extra: Any) -> dict:
        """The fields every response and every stream chunk carries around its choices."""
        return {
            "id": rid,
            "object": kind,
            "created": created,
            "model": options.model_name,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
            **extra,
        }

    # -- helpers ----------------------------------------------------------------------------------
    async def tokenize(make, content: Any, settings: GenerationSettings, param: str) -> GenerationRequest:
        """Render and tokenize off the event loop (a 1 MB prompt takes a moment); a template that
        refuses the messages (e.g. roles out of order) is the client's error."""
        try:
            return await asyncio.to_thread(make, content, settings)
        except HessError as exc:
            raise ApiError(str(exc), param=param) from None

    def token_text_of(ids: list[int]) -> str:
        return b"".join(engine.tokenizer.token_bytes(t) for t in ids if t < engine.vocab).decode(
            "utf-8", "replace"
        )

    def base_settings(s: Sampling) -> GenerationSettings:
        return GenerationSettings(
            max_new_tokens=1,  # set by fit() once the prompt's length is known
            temperature=s.temperature,
            top_k=s.top_k,
            top_p=s.top_p,
            repetition_penalty=s.repetition_penalty,
            stop_strings=tuple(s.stop),
            seed=s.seed if s.seed is not None else secrets.randbits(63),
        )

    def fit(gen: GenerationRequest, s: Sampling, param: str) -> GenerationRequest:
        """max_tokens checked against what the context leaves after the prompt (as vLLM words it)."""
        n_prompt, context = len(gen.prompt_ids), engine.context
        room = context - n_prompt
        asked = s.max_tokens if s.max_tokens is not None else 1
        if room < max(asked, 1):
            wanted = f"{n_prompt + asked} tokens ({n_prompt} in the {param}, {asked} for the completion)"
            raise ApiError(
                f"This model's maximum context length is {context} tokens. However, you requested {wanted}. "
                f"Please reduce the length of the {param} or max_tokens.",
                param=param,
                code="context_length_exceeded",
            )
        max_new = s.max_tokens if s.max_tokens is not None else min(limits.default_max_tokens, room)
        settings = dataclasses.replace(gen.settings, max_new_tokens=max(1, max_new))
        try:
            settings.validate()
        except HessError as exc:
            raise ApiError(str(exc)) from None
        return dataclasses.replace(gen, settings=settings, logprobs=s.logprobs)

    def admit(jobs: list[JobSpec]) -> tuple[asyncio.Queue, list[Any]]:
        if state["inflight"] + len(jobs) > options.max_concurrent:
            raise ApiError(
                f"the server is busy ({state['inflight']} requests in flight, at most {options.max_concurrent}); retry later",
                429,
                code="too_many_requests",
                type_="rate_limit_error",
            )
        events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        keys = []
        for i, (gen, score, generate) in enumerate(jobs):
            key = (uuid.uuid4().hex, i)
            scheduler.submit(Job(key, gen, events, loop, score, generate))
            keys.append(key)
        state["inflight"] += len(jobs)
        return events, keys

    def release(keys: list[Any], done: set) -> None:
        for key in keys:
            if key not in done:
                scheduler.cancel(key)  # the client left: its slot is freed at the next step
        state["inflight"] -= len(keys)

    async def run_jobs(request: Request, jobs: list[JobSpec]) -> list[Event]:
        """Wait for every job; a client that disconnects cancels its jobs."""
        events, keys = admit(jobs)
        finals: dict[Any, Event] = {}
        scores: dict[Any, Any] = {}
        try:
            while len(finals) < len(keys):
                try:
                    event = await asyncio.wait_for(events.get(), _DISCONNECT_POLL_SECONDS)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        raise ApiError("client disconnected", 499) from None
                    continue
                if event.error is not None:
                    finals[event.key] = event
                    raise ApiError(event.error)
                if event.prompt_logprobs is not None:
                    scores[event.key] = event.prompt_logprobs
                if event.result is not None:
                    event.prompt_logprobs = scores.get(event.key)
                    finals[event.key] = event
        finally:
            release(keys, set(finals))
        return [finals[k] for k in keys]

    def streaming(request: Request, jobs: list[JobSpec], render) -> StreamingResponse:
        events, keys = admit(jobs)

        async def body() -> AsyncIterator[bytes]:
            done: set = set()
            try:
                async for chunk in render(events, keys, done):
                    yield chunk
            finally:
                release(keys, done)

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    def chat_stream(rid: str, created: int, s: Sampling):
        def chunk(delta: dict, reason: str | None = None) -> dict:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
            return envelope(rid, "chat.completion.chunk", created, [choice])

        async def render(events: asyncio.Queue, keys: list, done: set) -> AsyncIterator[bytes]:
            yield sse(chunk({"role": "assistant", "content": ""}))
            while True:
                event: Event = await events.get()
                if event.error is not None:
                    done.add(event.key)
                    yield sse(ApiError(event.error).body())
                    break
                if event.text:
                    yield sse(chunk({"content": event.text}))
                if event.result is not None:
                    done.add(event.key)
                    yield sse(chunk({}, finish_reason(event.result)))
                    if s.include_usage:
                        tokens = usage(event.result.prompt_tokens, event.generated)
                        yield sse(envelope(rid, "chat.completion.chunk", created, [], usage=tokens))
                    break
            yield b"data: [DONE]\n\n"

        return render

    def completion_stream(rid: str, created: int, s: Sampling):
        def chunk(index: int, text: str, reason: str | None = None) -> dict:
            choice = {"index": index, "text": text, "logprobs": None, "finish_reason": reason}
            return envelope(rid, "text_completion", created, [choice])

        async def render(events: asyncio.Queue, keys: list, done: set) -> AsyncIterator[bytes]:
            index = {key: i for i, key in enumerate(keys)}
            prompt_tokens = generated = 0
            while len(done) < len(keys):
                event: Event = await events.get()
                if event.error is not None:
                    done.update(keys)
                    yield sse(ApiError(event.error).body())
                    break
                if event.text:
                    yield sse(chunk(index[event.key], event.text))
                if event.result is not None:
                    done.add(event.key)
                    prompt_tokens += event.result.prompt_tokens
                    generated += event.generated
                    yield sse(chunk(index[event.key], "", finish_reason(event.result)))
            else:
                if s.include_usage:
                    yield sse(envelope(rid, "text_completion", created, [], usage=usage(prompt_tokens, generated)))
            yield b"data: [DONE]\n\n"

        return render

    return app


async def read_json(request: Request, limits: Limits) -> Any:
    """The body as JSON, refused past ``limits.max_body_bytes`` before it is all read."""
    limit = limits.max_body_bytes
    too_big = ApiError(f"the request body is larger than {limit} bytes", 413, code="request_too_large")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_big
    data = bytearray()
    async for piece in request.stream():
        data += piece
        if len(data) > limit:
            raise too_big
    try:
        return json.loads(bytes(data))
    except json.JSONDecodeError as exc:
        raise ApiError(f"the request body is not valid JSON ({exc.msg} at position {exc.pos})") from None
    except (UnicodeDecodeError, RecursionError):
        raise ApiError("the request body is not valid JSON (bad encoding or nesting too deep)") from None
