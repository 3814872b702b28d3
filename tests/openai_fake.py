"""A tiny OpenAI-compatible server for tests (stdlib only), with a model whose numbers are known.

The fake model splits text into tokens with ``TOKEN_RE`` (words with their leading space, single
punctuation marks and whitespace characters) and gives each token a log-prob that depends on its
text only (``token_logprob``); a token is the model's top choice unless ``beaten(token)``. Answers
to chat requests are canned from the last user message. The server counts requests, records the
highest number in flight, can fail on purpose (a queue of statuses), wait before answering, or
leave out prompt log-probs (as llama.cpp's server does).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_RE = re.compile(r" ?\w+|[^\w\s]|\s")
MODEL = "fake-model"


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


def token_logprob(token: str) -> float:
    return -0.25 * (1 + sum(map(ord, token)) % 7)


def beaten(token: str) -> bool:
    """Tokens the fake model would not have chosen greedily."""
    return sum(map(ord, token)) % 2 == 1


def canned_reply(messages: list[dict], temperature: float, seed: int | None) -> str:
    user = [m["content"] for m in messages if m.get("role") == "user"][-1]
    words = user.split()
    reply = "Answer: " + " ".join(reversed(words[:6]))
    if temperature > 0:
        reply += f" (sample {seed})"
    return reply


class FakeState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prompt_logprobs = True
        self.failures: list[int] = []  # statuses to answer with, one per request, before behaving
        self.delay = 0.0
        self.requests: Counter[str] = Counter()  # path -> count (failed ones included)
        self.chat_seen: Counter[str] = Counter()  # conversation (JSON) -> answered chat requests
        self.in_flight = 0
        self.max_in_flight = 0
        self.api_key: str | None = None
        self.auth_seen: list[str | None] = []


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        state: FakeState = self.server.state
        with state.lock:
            state.requests[self.path] += 1
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "max_model_len": 2048}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        state: FakeState = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with state.lock:
            state.requests[self.path] += 1
            state.auth_seen.append(self.headers.get("Authorization"))
            failure = state.failures.pop(0) if state.failures else None
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if state.delay:
                time.sleep(state.delay)
            if failure is not None:
                headers = {"Retry-After": "0"} if failure == 429 else {}
                self._send(failure, {"error": {"message": f"planned failure {failure}"}}, headers)
                return
            if self.path == "/v1/chat/completions":
                self._chat(state, body)
            elif self.path == "/v1/completions":
                self._completion(state, body)
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})
        finally:
            with state.lock:
                state.in_flight -= 1

    def _chat(self, state: FakeState, body: dict) -> None:
        messages = body["messages"]
        words = tokens(canned_reply(messages, body.get("temperature", 1.0), body.get("seed")))
        limit = body.get("max_tokens") or len(words)
        text = "".join(words[:limit])
        with state.lock:
            state.chat_seen[json.dumps(messages, sort_keys=True)] += 1
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "length" if len(words) > limit else "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": min(limit, len(words)), "total_tokens": 0},
        })

    def _completion(self, state: FakeState, body: dict) -> None:
        prompt = body["prompt"]
        generated = "!"
        if body.get("echo") and body.get("logprobs") and state.prompt_logprobs:
            pieces = tokens(prompt) + [generated]
            offsets, position = [], 0
            for piece in pieces:
                offsets.append(position)
                position += len(piece)
            values: list[float | None] = [token_logprob(t) for t in pieces]
            tops: list[dict | None] = [{t: token_logprob(t), **({"<alt>": token_logprob(t) + 0.5} if beaten(t) else {})}
                                       for t in pieces]
            values[0], tops[0] = None, None  # nothing predicts the first token
            logprobs = {"tokens": pieces, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}
            text = prompt + generated
        else:  # like a server without prompt log-probs: only the generated token's
            logprobs = {"tokens": [generated], "token_logprobs": [-1.0], "top_logprobs": [{generated: -1.0}],
                        "text_offset": [0]}
            text = generated
        self._send(200, {"id": "cmpl-1", "object": "text_completion", "model": body["model"],
                         "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}],
                         "usage": {"prompt_tokens": len(tokens(prompt)), "completion_tokens": 1}})


class FakeServer:
    """``with FakeServer() as fake: fake.url`` -> http://127.0.0.1:PORT/v1"""

    def __init__(self) -> None:
        self.state = FakeState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
