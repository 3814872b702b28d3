"""``hessgpt serve`` through the official openai client and raw HTTP, on a tiny random model."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest
from serve_helpers import RunningServer

from hessgpt.generate import Engine, GenerationSettings
from hessgpt.loading import load_model
from hessgpt.serve import ServeOptions

pytestmark = pytest.mark.usefixtures("one_thread")

QUESTIONS = ["What is 2 + 2?", "Name a colour.", "Bonjour !", "Tell me a story about a fox", "x", "Why?", "émoji 🙂", "The end"]


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return Engine(load_model(tiny_checkpoint), batch_size=4)


@pytest.fixture(scope="module")
def server(engine):
    running = RunningServer(engine, ServeOptions(model_name="tiny", slots=4))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def post(server, path: str, body: bytes | dict, headers: dict | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_huge(server, chunked: bool) -> tuple[int, dict]:
    """A body past the 1 MB limit: announced by Content-Length (refused before it is read), or
    chunked with no length (refused once the limit is passed)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("POST", "/v1/completions")
    conn.putheader("Content-Type", "application/json")
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        piece = b"x" * 65536
        for _ in range(17):  # 1 MB + 64 KB, all of which the server reads before it answers
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
    else:
        conn.putheader("Content-Length", str(1 << 30))
        conn.endheaders()
        conn.send(b"{")  # the rest never comes: the announced size is refused at once
    response = conn.getresponse()
    try:
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def solo_chat(engine, question: str, max_tokens: int, **settings) -> str:
    request = engine.chat_request(
        [{"role": "user", "content": question}], GenerationSettings(max_new_tokens=max_tokens, **settings)
    )
    return engine.generate([request])[0].text


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    with urllib.request.urlopen(server.url + "/health") as response:
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["context"] == 256


def test_greedy_chat_equals_the_local_engine(client, engine):
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": QUESTIONS[0]}], temperature=0, max_tokens=12
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == solo_chat(engine, QUESTIONS[0], 12)
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 0 and reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_chat_is_the_same_answer_in_pieces(client, engine):
    stream = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": QUESTIONS[3]}],
        temperature=0,
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(pieces) == solo_chat(engine, QUESTIONS[3], 20)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens >= 1


def test_concurrent_requests_each_get_their_solo_answer(server, engine):
    want = [solo_chat(engine, q, 6 + 2 * i) for i, q in enumerate(QUESTIONS)]
    got: dict[int, str] = {}

    def ask(i: int) -> None:
        # A fresh client per thread: eight requests really are in flight together.
        c = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=60)
        reply = c.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": QUESTIONS[i]}], temperature=0, max_tokens=6 + 2 * i
        )
        got[i] = reply.choices[0].message.content

    steps_before = server.scheduler.steps
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(QUESTIONS))] == want
    # Batched, not one after the other: fewer forward passes than the tokens generated.
    assert server.scheduler.steps - steps_before < sum(6 + 2 * i for i in range(len(QUESTIONS)))


def test_a_seed_reproduces_a_sample_and_matches_the_engine(client, engine):
    def sample(seed: int) -> str:
        reply = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "Hi"}], temperature=1.0, top_p=0.9,
            max_tokens=16, seed=seed, extra_body={"top_k": 50},
        )
        return reply.choices[0].message.content

    first = sample(7)
    assert sample(7) == first
    assert first == solo_chat(engine, "Hi", 16, temperature=1.0, top_p=0.9, top_k=50, seed=7)
    assert len({sample(s) for s in (1, 2, 3)}) > 1


def test_completions_with_echo_and_logprobs(client, engine):
    prompt = "The capital of France is"
    reply = client.completions.create(model="tiny", prompt=prompt, max_tokens=4, temperature=0, echo=True, logprobs=2)
    choice = reply.choices[0]
    ids = engine.tokenizer.encode(prompt)
    lp = choice.logprobs
    assert choice.text.startswith(prompt)
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset) == len(lp.top_logprobs) == len(ids) + reply.usage.completion_tokens
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert "".join(lp.tokens) == choice.text
    assert [choice.text[o : o + len(t)] for o, t in zip(lp.text_offset, lp.tokens, strict=True)] == lp.tokens
    # The prompt's log-probabilities are the engine's log-likelihood of it.
    ll = engine.loglikelihood([(ids[:1], ids[1:])])[0]
    assert math.isclose(sum(lp.token_logprobs[1 : len(ids)]), ll.logprob, abs_tol=1e-6)
    for token, value, top in zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:], strict=True):
        assert top[token] == value and 2 <= len(top) <= 3 and max(top.values()) >= value
    # Scoring only (max_tokens 0), with the prompt as token ids: what a log-likelihood backend sends.
    scored = client.completions.create(model="tiny", prompt=ids, max_tokens=0, echo=True, logprobs=0)
    assert scored.choices[0].logprobs.token_logprobs == lp.token_logprobs[: len(ids)]
    assert scored.usage.completion_tokens == 0


def test_completions_without_echo_and_several_prompts(client, engine):
    reply = client.completions.create(model="tiny", prompt=["Once upon", "A B C"], max_tokens=5, temperature=0)
    assert [c.index for c in reply.choices] == [0, 1]
    for choice, prompt in zip(reply.choices, ["Once upon", "A B C"], strict=True):
        want = engine.generate([engine.text_request(prompt, GenerationSettings(max_new_tokens=5))])[0]
        assert choice.text == want.text


def test_stop_strings_end_the_answer(client, engine):
    full = client.completions.create(model="tiny", prompt="Hello", max_tokens=12, temperature=0).choices[0].text
    stop = full[3:5]
    assert stop.strip(), f"the tiny model's answer is too short to test stops: {full!r}"
    reply = client.completions.create(model="tiny", prompt="Hello", max_tokens=12, temperature=0, stop=[stop])
    assert reply.choices[0].text == full[: full.index(stop)]
    assert reply.choices[0].finish_reason == "stop"


def test_client_errors_come_back_as_openai_errors(client):
    with pytest.raises(openai.BadRequestError, match="max_tokens: must be >= 1"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=-3)
    with pytest.raises(openai.BadRequestError, match="maximum context length is 256 tokens"):
        client.completions.create(model="tiny", prompt="word " * 400, max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], temperature=-1)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="tiny", input="hi")


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[" * 100_000, 400, "not valid JSON"),
        ({"messages": "hi"}, 400, "messages: must be a non-empty list"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
        ({"messages": [{"role": "user", "content": 5}]}, 400, "content"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}, 400, "max_tokens: must be an integer"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 10**9}, 400, "maximum context length"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, 400, "stream: must be a boolean"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 3}, 400, "n: only n=1"),
        ({"messages": [{"role": "user", "content": "x"}], "top_p": 0}, 400, "top_p"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": ["s"] * 10_000}, 400, "at most 16 stop strings"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": ["x" * 5000]}, 400, "5000 characters"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": [""]}, 400, "empty"),
        ({"messages": [{"role": "user", "content": "word " * 1000}]}, 400, "maximum context length"),
    ],
)
def test_hostile_chat_requests_get_a_4xx_and_the_server_keeps_serving(server, client, body, status, message):
    code, reply = post(server, "/v1/chat/completions", body)
    assert code == status, reply
    assert set(reply["error"]) == {"message", "type", "param", "code"}
    assert message in reply["error"]["message"]
    ok = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert ok.choices[0].message.content is not None


def test_hostile_completion_requests(server, client):
    for body, message in [
        ({"prompt": 42}, "prompt: must be"),
        ({"prompt": [10**9]}, "outside the vocabulary"),
        ({"prompt": ""}, "empty"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens: must be >= 1"),
        ({"prompt": "x", "logprobs": 500}, "logprobs: must be between 0 and 20"),
        ({"prompt": "x", "echo": True, "stream": True}, "only supported without stream"),
        ({"prompt": ["x"] * 1000}, "at most 64 prompts"),
    ]:
        code, reply = post(server, "/v1/completions", body)
        assert code == 400 and message in reply["error"]["message"], reply
    for chunked in (False, True):
        code, reply = post_huge(server, chunked)
        assert code == 413 and "larger than 1048576 bytes" in reply["error"]["message"]
    code, reply = post(server, "/v1/nothing", {})
    assert code == 404 and "error" in reply
    assert client.completions.create(model="tiny", prompt="ok", max_tokens=2).choices[0].text is not None


def test_a_client_that_disconnects_frees_its_slot(server):
    import http.client

    cancelled = server.scheduler.cancelled
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    # Sampled from a random model: next to no guessed token is kept, so the answer takes 250 steps.
    body = json.dumps({"prompt": "Go on", "max_tokens": 250, "stream": True, "temperature": 1.0})
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    response.fp.readline()  # the first event: the request is running
    assert server.scheduler.running + server.scheduler.queued >= 1
    conn.sock.shutdown(2)
    conn.close()
    deadline = time.monotonic() + 20
    while server.scheduler.running + server.scheduler.queued and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.scheduler.running + server.scheduler.queued == 0
    assert server.scheduler.cancelled == cancelled + 1  # dropped mid-answer, not finished


def test_an_api_key_is_required_when_set(engine, capsys):
    from hessgpt.cli import main

    assert main(["serve", "--checkpoint", "unused.pt", "--api-key-env", "HESSGPT_NOPE_UNSET"]) == 2
    assert "HESSGPT_NOPE_UNSET is unset or empty" in capsys.readouterr().err
    with socket.socket() as taken:  # a port in use is reported before the model loads
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--checkpoint", "unused.pt", "--port", str(port)]) == 2
    assert f"--port: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    guarded = RunningServer(engine, ServeOptions(model_name="tiny", slots=2, api_key="s3cret"))
    try:
        denied = openai.OpenAI(base_url=guarded.url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="API key"):
            denied.models.list()
        allowed = openai.OpenAI(base_url=guarded.url + "/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in allowed.models.list().data] == ["tiny"]
        with urllib.request.urlopen(guarded.url + "/", timeout=10) as r:  # the page is public: it asks for the key
            assert b"<title>hessgpt chat</title>" in r.read()
    finally:
        guarded.stop()


@pytest.mark.slow
def test_the_serve_command_serves_on_loopback_with_an_api_key(tiny_checkpoint):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from serve_helpers import free_port

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "HESSGPT_TEST_KEY": "s3cret"}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hessgpt", "serve", "--checkpoint", str(tiny_checkpoint), "--port", str(port),
         "--api-key-env", "HESSGPT_TEST_KEY"],
        env=env, cwd=root, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        denied = openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            denied.models.list()
        allowed = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        reply = allowed.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
        assert reply.usage.completion_tokens >= 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "127.0.0.1" in proc.stderr.read()


def test_a_template_that_refuses_the_messages_is_a_400(server, engine, monkeypatch):
    from hessgpt.errors import HessError

    def refuse(*_args, **_kwargs):
        raise HessError("chat template: rendering failed (Conversation roles must alternate)")

    monkeypatch.setattr(engine, "chat_request", refuse)
    code, reply = post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]})
    assert code == 400 and "roles must alternate" in reply["error"]["message"]
    assert reply["error"]["param"] == "messages"
