"""A server under mixed traffic gives back everything a request held once it ends: its job, its
batch row and slot, its place in the in-flight count, and the memory its tensors used."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_helpers import RunningServer

from hessgpt.generate import Engine, GenerationRequest, GenerationSettings, LiveBatch
from hessgpt.loading import load_model
from hessgpt.serve import ServeOptions

pytestmark = pytest.mark.usefixtures("one_thread")

SLOTS = 4


def send(port: int, path: str, body: dict, leave_early: bool = False) -> int:
    """One request on its own connection; ``leave_early`` hangs up after the first streamed event."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        if leave_early:
            response.fp.readline()
            conn.sock.shutdown(2)
            return response.status
        response.read()
        return response.status
    finally:
        conn.close()


def traffic(i: int) -> tuple[str, dict, bool]:
    """Request ``i`` of a mix: plain, streamed and abandoned chats, batched and scored completions, errors."""
    chat = {"messages": [{"role": "user", "content": f"Question {i}: {'why ' * (i % 7)}?"}], "temperature": 0}
    kind = i % 6
    if kind == 0:
        return "/v1/chat/completions", {**chat, "max_tokens": 3 + i % 5}, False
    if kind == 1:
        return "/v1/chat/completions", {**chat, "max_tokens": 6, "stream": True}, False
    if kind == 2:
        return "/v1/chat/completions", {**chat, "max_tokens": 200, "stream": True}, True
    if kind == 3:
        return "/v1/completions", {"prompt": [f"a {i}", "bb", [5, 6, 7]], "max_tokens": 4}, False
    if kind == 4:
        return "/v1/completions", {"prompt": f"score {i}", "max_tokens": 0, "echo": True, "logprobs": 1}, False
    return "/v1/chat/completions", {**chat, "max_tokens": -1}, False  # refused: a 400


def test_after_many_requests_every_per_request_structure_is_empty(tiny_checkpoint):
    # One token per step (no guessed tokens): an abandoned stream must still be running when its client
    # hangs up, and this tiny model repeats itself enough to keep most guesses.
    engine = Engine(load_model(tiny_checkpoint), batch_size=SLOTS, draft_tokens=0)
    server = RunningServer(engine, ServeOptions("tiny", slots=SLOTS))
    try:
        n = 120
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: send(server.port, *traffic(i)), range(n)))
        assert statuses.count(400) == n // 6 and statuses.count(200) == n - n // 6
        scheduler = server.scheduler
        deadline = time.monotonic() + 30  # abandoned streams are cancelled at the scheduler's next step
        while (scheduler.jobs or len(scheduler.live)) and time.monotonic() < deadline:
            time.sleep(0.05)
        with urllib.request.urlopen(server.url + "/health", timeout=30) as response:
            health = json.loads(response.read())
        assert health["in_flight"] == 0 and health["running"] == 0 and health["queued"] == 0
        assert scheduler.jobs == {} and scheduler.live.rows == {} and not scheduler.live.pending
        assert scheduler.live.batch is None  # the batch ran empty: its KV cache is released
        ended = scheduler.finished + scheduler.cancelled
        assert ended >= n // 6 * (1 + 1 + 3) and scheduler.cancelled >= 1
        # Freed memory went back to the system during the run (every batch's worth of ended
        # requests: several end in one step) and once more when it went idle.
        assert ended // (3 * SLOTS) <= scheduler.trims <= ended
        assert scheduler._ended_since_trim == 0
    finally:
        server.stop()


def test_a_batch_that_never_runs_empty_keeps_its_whole_slot_pool(tiny_checkpoint):
    """Under steady traffic the batch lives on: every ended request, finished or cancelled, must
    give its slot back to the pool while a long request keeps the batch running."""
    engine = Engine(load_model(tiny_checkpoint), batch_size=SLOTS)
    live = LiveBatch(engine, SLOTS)
    long = GenerationSettings(max_new_tokens=150, temperature=0.0, ignore_eos=True)
    live.add("long", GenerationRequest([1, 2, 3], long))
    for i in range(40):
        settings = GenerationSettings(max_new_tokens=1 + i % 4, temperature=0.0, ignore_eos=True)
        live.add(i, GenerationRequest([4 + i % 9] * (1 + i % 5), settings))
    steps = 0
    while len(live) > 1:
        live.step()
        steps += 1
        if steps % 5 == 0 and len(live) > 2:
            live.cancel(next(k for k in live.rows if k != "long"))
    assert list(live.rows) == ["long"] and live.batch is not None
    assert sorted(live.batch.free) == sorted(set(range(SLOTS)) - {live.rows["long"].slot})


def test_a_live_batch_runs_only_the_linear_shapes_it_built_at_start(tiny_checkpoint, monkeypatch):
    """oneDNN keeps a kernel per shape of call: a long-running batch must not meet a new shape with
    every new mix of prompt lengths and batch sizes, or its memory grows request after request."""
    from hessgpt import kernels

    if not kernels.is_batch_invariant("onednn"):
        pytest.skip("the oneDNN path is not exact on this machine (the engine never picks it here)")
    engine = Engine(load_model(tiny_checkpoint), batch_size=SLOTS, prefill_tokens=96, linear="onednn")
    shapes: set[tuple[int, int, bool, int]] = set()
    product = kernels.OneDNNLinear._product

    def recorded(self, x, residual):
        shapes.add((self.in_features, self.out_features, residual is not None, x.shape[0]))
        return product(self, x, residual)

    monkeypatch.setattr(kernels.OneDNNLinear, "_product", recorded)
    live = LiveBatch(engine, SLOTS)
    live.build_kernels()
    built = set(shapes)
    row_counts = kernels.row_buckets(SLOTS + 96)
    assert {rows for *_, rows in built} == set(row_counts)
    assert len(built) == 4 * len(row_counts) + len(kernels.row_buckets(SLOTS))  # 4 per layer + the head
    for i in range(60):  # prompts of 1..97 tokens joining a running batch, answers of 1..7 tokens
        settings = GenerationSettings(max_new_tokens=1 + i % 7, temperature=0.0, ignore_eos=True)
        live.add(i, GenerationRequest([5 + i % 11] * (1 + (i * 37) % 97), settings))
        if i % 3 == 2:
            live.step()
    while len(live):
        live.step()
    assert shapes == built
