"""The router: an assistant model that calls Python, an optional code model, and the sandbox.

The assistant model generates until it opens a code block (``<|code|>``, or a ```` ```python ````
fence for a model without the tool tokens), then until the block closes. The block goes to the code
model when there is one (it gets the block as its prompt and answers with refined code), then to the
sandbox; the sandbox's stdout, or its error in one line, is injected as the result block and the
assistant model continues. After ``max_calls`` calls, a new code block ends the answer.

Every conversation of a batch advances together, one generation round at a time, so a bench run keeps
its batching. The sandbox is a parameter (``runner``): tests pass a fake that records its calls.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hessgpt.errors import HessError
from hessgpt.generate import GenerationRequest, GenerationSettings
from hessgpt.tokenizer import clean_text
from hessgpt.tools import (
    CODE,
    END,
    RESULT,
    ToolProtocol,
    extract_code,
    final_answer,
    format_result,
)

DEFAULT_MAX_CALLS = 3
Runner = Callable[..., Any]  # run(code, timeout_s=..., memory_mb=...) -> .stdout .stderr .exit_reason .wall_s
Refiner = Callable[[str], str]
CODE_MODEL_MAX_NEW_TOKENS = 256


def default_runner() -> Runner:
    """The OS-level Python sandbox (``hessgpt.sandbox.run``)."""
    try:
        from hessgpt.sandbox import run
    except ImportError as exc:
        raise HessError(f"--tools python: the Python sandbox (hessgpt.sandbox) is not available ({exc})") from None
    return run


@dataclass
class ToolCall:
    code: str  # as the assistant model wrote it
    ran: str  # what the sandbox ran (the code model's version when there is one)
    result: str  # what the assistant model was shown
    exit_reason: str  # the sandbox's: ok, error, timeout, memory, output_limit, forbidden, killed
    wall_s: float  # sandbox wall time

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RoutedAnswer:
    text: str  # the whole assistant turn, code and result blocks included
    calls: list[ToolCall]
    finish_reason: str  # stop | length | stop_string | tool_limit
    new_tokens: int  # tokens the assistant model generated
    prompt_tokens: int
    prompt_truncated: bool = False
    messages: list[dict] = field(default_factory=list)  # the turn as assistant and tool messages

    @property
    def final(self) -> str:
        """The answer outside the tool blocks."""
        return final_answer(self.text)

    def trace(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.calls]


def result_line(outcome: Any) -> str:
    """What the model is shown: stdout when the code ran, else its error in one line."""
    reason = getattr(outcome, "exit_reason", "error")
    stdout = getattr(outcome, "stdout", "") or ""
    if reason == "ok":
        return stdout if stdout.strip() else "(no output)"
    lines = [line.strip() for line in (getattr(outcome, "stderr", "") or "").splitlines() if line.strip()]
    detail = getattr(outcome, "detail", "") or (lines[-1] if lines else "")  # the sandbox's one-line summary
    detail = detail.strip().splitlines()[0] if detail.strip() else ""
    return f"{reason}: {detail}" if detail else reason


@dataclass
class _Session:
    index: int
    request_id: str
    prompt_ids: list[int]
    ids: list[int] = field(default_factory=list)  # the assistant turn so far, as the model sees it
    text: str = ""  # the same, as text
    calls: list[ToolCall] = field(default_factory=list)
    in_code: bool = False
    code_start: int = 0  # index in ``text`` where the open block's code begins
    new_tokens: int = 0
    finish_reason: str | None = None
    truncated: bool = False
    rounds: int = 0
    messages: list[dict] = field(default_factory=list)
    turn_start: int = 0  # index in ``text`` where the current assistant message begins


class Router:
    """Routes one or many conversations through the assistant model, the code model and the sandbox."""

    def __init__(
        self,
        engine: Any,
        runner: Runner | None = None,
        code_model: Refiner | None = None,
        max_calls: int = DEFAULT_MAX_CALLS,
        timeout_s: float = 5.0,
        memory_mb: int = 100,
        protocol: ToolProtocol | None = None,
    ) -> None:
        if isinstance(max_calls, bool) or not isinstance(max_calls, int) or max_calls < 0:
            raise HessError(f"--max-tool-calls: must be an integer >= 0, got {max_calls!r}")
        self.engine = engine
        self.template = engine.chat_template
        self.tokenizer = engine.tokenizer
        self.protocol = protocol or self.template.tool_protocol
        self.runner = runner if runner is not None else default_runner()
        self.code_model = code_model
        self.max_calls = max_calls
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        if self.protocol.special:
            specials = self.tokenizer.special_tokens
            self.code_id, self.end_id, self.result_id = specials[CODE], specials[END], specials[RESULT]

    # -- prompts ------------------------------------------------------------------------------
    def prepare(self, messages: list[dict]) -> list[dict]:
        """The conversation as the model gets it: with the protocol's instructions when it has any."""
        prompt = self.protocol.system_prompt
        if not prompt:
            return messages
        if messages and messages[0]["role"] == "system":
            return [{"role": "system", "content": f"{messages[0]['content']}\n\n{prompt}"}, *messages[1:]]
        return [{"role": "system", "content": prompt}, *messages]

    def _request(self, session: _Session, settings: GenerationSettings) -> GenerationRequest:
        left = settings.max_new_tokens - session.new_tokens
        stops = list(self.template.stop_strings) + list(settings.stop_strings)
        stop_ids = list(self.template.end_of_turn_ids)
        if self.protocol.special:
            stop_ids.append(self.end_id if session.in_code else self.code_id)
        else:
            stops.append(self.protocol.code_close if session.in_code else self.protocol.code_open)
        gen = dataclasses.replace(settings, max_new_tokens=left, stop_strings=tuple(dict.fromkeys(stops)))
        return GenerationRequest(session.prompt_ids + session.ids, gen, stop_ids,
                                 f"{session.request_id}/{session.rounds}")

    # -- the loop -----------------------------------------------------------------------------
    def run(
        self,
        conversations: Sequence[list[dict]],
        settings: GenerationSettings | None = None,
        request_ids: Sequence[str] | None = None,
        on_call: Callable[[int, ToolCall], None] | None = None,
    ) -> list[RoutedAnswer]:
        """One routed answer per conversation, in order. ``on_call(index, call)`` sees each tool call."""
        settings = settings or GenerationSettings()
        if settings.num_beams > 1:
            raise HessError("--tools python: beam search cannot be routed; use num_beams 1")
        ids = list(request_ids) if request_ids is not None else [str(i) for i in range(len(conversations))]
        sessions = [
            _Session(i, rid, self.template.render(self.prepare(list(msgs)), add_generation_prompt=True).ids)
            for i, (msgs, rid) in enumerate(zip(conversations, ids, strict=True))
        ]
        active = list(sessions)
        while active:
            requests = [self._request(s, settings) for s in active]
            results = self.engine.generate(requests)
            for session, result in zip(active, results, strict=True):
                session.rounds += 1
                session.truncated = session.truncated or result.prompt_truncated
                self._advance(session, result, settings, on_call)
            active = [s for s in active if s.finish_reason is None]
        out = []
        for s in sessions:
            tail = s.text[s.turn_start:]
            messages = s.messages + ([{"role": "assistant", "content": tail}] if tail or not s.messages else [])
            out.append(RoutedAnswer(s.text, s.calls, s.finish_reason or "length", s.new_tokens, len(s.prompt_ids),
                                    s.truncated, messages))
        return out

    def _advance(self, session: _Session, result: Any, settings: GenerationSettings,
                 on_call: Callable[[int, ToolCall], None] | None) -> None:
        session.new_tokens += len(result.token_ids) + (result.finish_reason == "stop")
        self._append_model(session, result)
        opened = self._hit(result, self.code_id if self.protocol.special else None, self.protocol.code_open)
        closed = self._hit(result, self.end_id if self.protocol.special else None, self.protocol.code_close)
        if not session.in_code and opened:
            if len(session.calls) >= self.max_calls:
                session.finish_reason = "tool_limit"
                return
            self._append_marker(session, self.protocol.code_open, self.code_id if self.protocol.special else None)
            session.in_code, session.code_start = True, len(session.text)
        elif session.in_code and closed:
            code = session.text[session.code_start:]
            self._append_marker(session, self.protocol.code_close, self.end_id if self.protocol.special else None)
            session.in_code = False
            call = self._call(code)
            session.calls.append(call)
            session.messages += [{"role": "assistant", "content": session.text[session.turn_start:]},
                                 {"role": "tool", "content": call.result}]
            self._append_result(session, call.result)
            session.turn_start = len(session.text)
            if on_call:
                on_call(session.index, call)
        else:
            session.finish_reason = result.finish_reason
            return
        if session.new_tokens >= settings.max_new_tokens:
            session.finish_reason = "length"

    @staticmethod
    def _hit(result: Any, token: int | None, marker: str) -> bool:
        if token is not None:
            return result.finish_reason == "stop" and result.stop_token == token
        return result.finish_reason == "stop_string" and result.stop_string == marker

    # -- the transcript -----------------------------------------------------------------------
    def _append_model(self, session: _Session, result: Any) -> None:
        session.text += result.text
        if self.protocol.special:
            session.ids += list(result.token_ids)
        else:  # a stop string may cut a token: re-encode the plain text
            session.ids = self.tokenizer.encode(session.text)

    def _append_marker(self, session: _Session, marker: str, token: int | None) -> None:
        session.text += marker
        if token is not None:
            session.ids.append(token)
        else:
            session.ids = self.tokenizer.encode(session.text)

    def _append_result(self, session: _Session, result: str) -> None:
        shown = format_result(result)
        p = self.protocol
        if p.special:
            session.ids += [self.result_id, *self.tokenizer.encode(shown), self.end_id]
            session.text += f"{p.result_open}{shown}{p.result_close}"
        else:
            session.text += f"{p.result_open}{shown}{p.result_close}"
            session.ids = self.tokenizer.encode(session.text)

    def _call(self, code: str) -> ToolCall:
        ran = code
        if self.code_model is not None:
            ran = self.code_model(code) or code
        ran = clean_text(ran)  # lone surrogates cannot be sent as UTF-8
        began = time.perf_counter()
        try:
            outcome = self.runner(ran, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        except HessError as exc:  # refused before it ran (too large): the model is told, the run goes on
            return ToolCall(code, ran, f"forbidden: {exc}", "forbidden", round(time.perf_counter() - began, 4))
        except Exception as exc:  # a runner bug must not lose the whole run: the model sees it
            return ToolCall(code, ran, f"killed: {type(exc).__name__}", "killed", round(time.perf_counter() - began, 4))
        wall = getattr(outcome, "wall_s", None)
        return ToolCall(code, ran, result_line(outcome), getattr(outcome, "exit_reason", "error"),
                        round(float(wall if wall is not None else time.perf_counter() - began), 4))


class CodeModel:
    """A second model that gets the assistant's code block as its prompt and answers with refined code."""

    def __init__(self, engine: Any, settings: GenerationSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or GenerationSettings(max_new_tokens=CODE_MODEL_MAX_NEW_TOKENS)

    def __call__(self, code: str) -> str:
        request = self.engine.chat_request([{"role": "user", "content": code}], self.settings)
        answer = self.engine.generate([request])[0].text
        return extract_code(answer).strip() or code


def load_code_model(path: str, batch_size: int = 1) -> CodeModel:
    from hessgpt.generate import Engine
    from hessgpt.loading import load_model

    return CodeModel(Engine(load_model(path), batch_size=batch_size))
