"""OpenAI request fields, checked: every bad field is a 400 naming it, in the OpenAI error shape.

Requests are untrusted JSON. Each field is read with its expected type and range; unknown fields
are ignored (clients send defaults such as ``user`` or ``frequency_penalty: 0``), and a field the
engine cannot honour (n > 1, a non-zero frequency penalty) is refused rather than silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """An HTTP error answered as ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.param, self.code, self.type = message, status, param, code, type_

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20
    max_stop_strings: int = 16
    max_stop_chars: int = 256
    max_messages: int = 1024
    max_prompts: int = 64  # prompts in one /v1/completions request
    max_logprobs: int = 20  # as vLLM
    default_max_tokens: int = 1024  # chat without max_tokens: this, or what the context leaves


@dataclass
class Sampling:
    max_tokens: int | None  # None: as much as the context allows (capped by Limits.default_max_tokens)
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    logprobs: int | None = None  # top alternatives per token; None = no logprobs
    echo: bool = False


@dataclass
class ChatParams:
    messages: list[dict[str, str]]
    sampling: Sampling
    model: str | None


@dataclass
class CompletionParams:
    prompts: list[str | list[int]]
    sampling: Sampling
    model: str | None


def _missing(body: dict, name: str) -> bool:
    return body.get(name) is None


def _bool(body: dict, name: str, default: bool = False) -> bool:
    if _missing(body, name):
        return default
    value = body[name]
    if not isinstance(value, bool):
        raise ApiError(f"{name}: must be a boolean, got {_show(value)}", param=name)
    return value


def _int(body: dict, name: str, low: int, high: int | None = None, default: int | None = None) -> int | None:
    if _missing(body, name):
        return default
    value = body[name]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(f"{name}: must be an integer, got {_show(value)}", param=name)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ApiError(f"{name}: must be {bound}, got {value}", param=name)
    return value


def _number(body: dict, name: str, low: float, high: float, default: float, low_open: bool = False) -> float:
    if _missing(body, name):
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(f"{name}: must be a number, got {_show(value)}", param=name)
    if value > high or value < low or (low_open and value == low):
        bound = f"in ({low}, {high}]" if low_open else f"between {low} and {high}"
        raise ApiError(f"{name}: must be {bound}, got {value}", param=name)
    return float(value)


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _stop(body: dict, limits: Limits) -> list[str]:
    if _missing(body, "stop"):
        return []
    value = body["stop"]
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(f"stop: must be a string or a list of strings, got {_show(value)}", param="stop")
    if len(stops) > limits.max_stop_strings:
        raise ApiError(
            f"stop: at most {limits.max_stop_strings} stop strings, got {len(stops)}", param="stop"
        )
    for s in stops:
        if not s:
            raise ApiError("stop: a stop string is empty", param="stop")
        if len(s) > limits.max_stop_chars:
            raise ApiError(
                f"stop: a stop string has {len(s)} characters (at most {limits.max_stop_chars})", param="stop"
            )
    return list(dict.fromkeys(stops))


def _refuse_unsupported(body: dict) -> None:
    if _int(body, "n", 1, default=1) != 1:
        raise ApiError("n: only n=1 is supported (send one request per sample)", param="n")
    for name in ("frequency_penalty", "presence_penalty"):
        if _number(body, name, -2.0, 2.0, 0.0) != 0.0:
            raise ApiError(f"{name}: not supported (use repetition_penalty)", param=name)
    if body.get("logit_bias"):
        raise ApiError("logit_bias: not supported", param="logit_bias")
    if _int(body, "best_of", 1, default=1) != 1:
        raise ApiError("best_of: only 1 is supported", param="best_of")
    if body.get("suffix"):
        raise ApiError("suffix: not supported", param="suffix")


def _sampling(body: dict, limits: Limits, max_tokens_low: int) -> Sampling:
    _refuse_unsupported(body)
    max_tokens = _int(body, "max_tokens", max_tokens_low)
    if max_tokens is None:
        max_tokens = _int(body, "max_completion_tokens", max_tokens_low)
    top_k = _int(body, "top_k", -1)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ApiError("stream_options: must be an object", param="stream_options")
    seed = _int(body, "seed", -(2**63), 2**64 - 1)
    return Sampling(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 0.0, 2.0, 1.0),
        top_p=_number(body, "top_p", 0.0, 1.0, 1.0, low_open=True),
        top_k=top_k if top_k and top_k > 0 else None,
        repetition_penalty=_number(body, "repetition_penalty", 0.0, 10.0, 1.0, low_open=True),
        seed=seed,
        stop=_stop(body, limits),
        stream=_bool(body, "stream"),
        include_usage=_bool(options or {}, "include_usage"),
    )


def _model(body: dict) -> str | None:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(f"model: must be a string, got {_show(model)}", param="model")
    return model


def _content(message: dict, i: int) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(
                    f"messages[{i}].content: only text parts are supported", param=f"messages[{i}].content"
                )
            parts.append(part["text"])
        return "".join(parts)
    raise ApiError(
        f"messages[{i}].content: must be a string or a list of text parts, got {_show(content)}",
        param=f"messages[{i}].content",
    )


def parse_chat(body: Any, limits: Limits) -> ChatParams:
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError("messages: must be a non-empty list of {role, content} objects", param="messages")
    if len(messages) > limits.max_messages:
        raise ApiError(f"messages: at most {limits.max_messages} messages, got {len(messages)}", param="messages")
    parsed = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(f"messages[{i}]: must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if role == "developer":  # the newer OpenAI name of the system role
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise ApiError(
                f"messages[{i}].role: must be system, user or assistant, got {_show(role)}",
                param=f"messages[{i}].role",
            )
        parsed.append({"role": role, "content": _content(message, i)})
    sampling = _sampling(body, limits, 1)
    if _bool(body, "logprobs"):
        sampling.logprobs = _int(body, "top_logprobs", 0, limits.max_logprobs, default=0)
        if sampling.stream:
            raise ApiError("logprobs: only supported without stream", param="logprobs")
    return ChatParams(parsed, sampling, _model(body))


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    )


def parse_completion(body: Any, limits: Limits) -> CompletionParams:
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    prompt = body.get("prompt")
    if isinstance(prompt, str) or _is_ids(prompt):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) or _is_ids(p) for p in prompt):
        prompts = list(prompt)
    else:
        raise ApiError(
            "prompt: must be a string, a list of token ids, or a list of those", param="prompt"
        )
    if len(prompts) > limits.max_prompts:
        raise ApiError(f"prompt: at most {limits.max_prompts} prompts per request, got {len(prompts)}", param="prompt")
    echo = _bool(body, "echo")
    # max_tokens 0 only makes sense with echo: the prompt's log-probabilities, nothing generated.
    sampling = _sampling(body, limits, 0 if echo else 1)
    if sampling.max_tokens is None:
        sampling.max_tokens = 16  # the OpenAI completions default
    sampling.echo = echo
    sampling.logprobs = _int(body, "logprobs", 0, limits.max_logprobs)
    if sampling.stream and (sampling.logprobs is not None or echo):
        raise ApiError("logprobs and echo are only supported without stream", param="stream")
    return CompletionParams(prompts, sampling, _model(body))
