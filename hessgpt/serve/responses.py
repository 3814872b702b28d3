"""OpenAI response pieces: usage, finish reasons, log-probability blocks, server-sent events."""

from __future__ import annotations

import codecs
import json

from hessgpt.generate import Engine, GenerationResult, TokenLogprob


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def finish_reason(result: GenerationResult) -> str:
    """OpenAI knows "stop" (a stop token or a stop string) and "length"."""
    return "length" if result.finish_reason == "length" else "stop"


def sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n"


def token_bytes(engine: Engine, token: int) -> bytes:
    return engine.tokenizer.token_bytes(token) if token < engine.vocab else b""


def token_text(engine: Engine, token: int) -> str:
    """A token as text; a token that is not whole UTF-8 is spelled ``bytes:\\xNN..`` as OpenAI does."""
    data = token_bytes(engine, token)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in data)


def completion_logprobs(
    engine: Engine,
    prompt_ids: list[int],
    prompt_scores: list[TokenLogprob | None] | None,
    result: GenerationResult,
    echo: bool,
    top: int,
) -> dict:
    """``choices[i].logprobs`` of /v1/completions: tokens, token_logprobs, top_logprobs, text_offset.

    With echo the prompt's tokens come first, the first of them with null log-probabilities (it has
    no context), as vLLM and the OpenAI API return them. ``text_offset`` is each token's character
    offset in the choice's text; ``top_logprobs`` holds the ``top`` most likely tokens and the chosen
    one."""
    entries: list[tuple[int, TokenLogprob | None]] = []
    if echo:
        scores = prompt_scores or [None] * len(prompt_ids)
        entries += list(zip(prompt_ids, scores, strict=True))
    entries += [(lp.token_id, lp) for lp in result.logprobs or []]
    tokens, values, tops, offsets = [], [], [], []
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    chars = 0
    for token, scored in entries:
        tokens.append(token_text(engine, token))
        offsets.append(chars)
        chars += len(decoder.decode(token_bytes(engine, token)))
        if scored is None:
            values.append(None)
            tops.append(None)
            continue
        values.append(scored.logprob)
        alternatives = {token_text(engine, t): v for t, v in scored.top[:top]}
        alternatives.setdefault(token_text(engine, token), scored.logprob)
        tops.append(alternatives)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


def chat_logprobs(engine: Engine, result: GenerationResult) -> dict:
    """``choices[0].logprobs`` of /v1/chat/completions: one entry per generated token."""

    def entry(token: int, value: float) -> dict:
        return {"token": token_text(engine, token), "logprob": value, "bytes": list(token_bytes(engine, token))}

    content = []
    for lp in result.logprobs or []:
        item = entry(lp.token_id, lp.logprob)
        item["top_logprobs"] = [entry(t, v) for t, v in lp.top]
        content.append(item)
    return {"content": content, "refusal": None}
