"""bench.py --endpoint: grading a model behind an OpenAI-compatible API (against a fake server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_fake import MODEL, FakeServer, beaten, canned_reply, token_logprob, tokens

from benchmarks.backends.base import (
    GenerationRequest,
    LikelihoodRequest,
    LikelihoodUnavailable,
    SamplingSettings,
)
from benchmarks.backends.chat_template import TemplateTokens, load_chat_template
from benchmarks.backends.openai_http import OpenAIBackend
from benchmarks.suite import load_suites
from hessgpt.chat import DEFAULT_TEMPLATE, ChatTemplate
from hessgpt.errors import HessError

ROOT = Path(__file__).resolve().parents[1]
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TIMING_KEYS = ("started", "finished", "wall_seconds", "tokens_per_second", "peak_memory_mb", "cpu_steal")


@pytest.fixture
def fake():
    with FakeServer() as server:
        yield server


def _config(tmp_path: Path, template: str = DEFAULT_TEMPLATE) -> Path:
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps({"chat_template": template, "eos_token": {"content": "<|endoftext|>"}}),
                    encoding="utf-8")
    return path


def _bench(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bench.py", *argv], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=300)


def _results(out: Path) -> dict:
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for key in TIMING_KEYS:
        data["meta"].pop(key)
    return data


def _expected(full: str, start: int, end: int) -> tuple[float, int, int, int]:
    """logprob, tokens, bytes and top-choice count of the fake model's tokens overlapping [start, end)."""
    logprob, n, first, last, correct = 0.0, 0, None, 0, 0
    position = 0
    for piece in tokens(full[:end]):
        stop = position + len(piece)
        if position < end and stop > start:
            logprob += token_logprob(piece)
            n += 1
            correct += not beaten(piece)
            first = position if first is None else first
            last = stop
        position = stop
    return logprob, n, len(full[first:last].encode()), correct


def _backend(fake: FakeServer, template: ChatTemplate | None = None, **kwargs) -> OpenAIBackend:
    return OpenAIBackend(fake.url, MODEL, template, "test", backoff=0.01, **kwargs)


# -- likelihoods: offsets ------------------------------------------------------------------------


@pytest.mark.parametrize("source", [DEFAULT_TEMPLATE, CHATML])
def test_likelihoods_score_the_tokens_that_overlap_the_answer(fake, source):
    template = ChatTemplate(source, TemplateTokens(eos="<|endoftext|>"))
    backend = _backend(fake, template)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    answers = ["Paris is the capital, of course.", "Lyon", ""]
    [scores] = backend.loglikelihood([LikelihoodRequest(messages, answers)])
    assert scores[2] is None  # nothing to score
    for answer, score in zip(answers[:2], scores[:2], strict=True):
        full = template.render_text(messages + [{"role": "assistant", "content": answer}], False)
        start = full.rfind(answer)
        logprob, n, n_bytes, correct = _expected(full, start, start + len(answer))
        assert score.logprob == pytest.approx(logprob)
        assert (score.n_tokens, score.n_bytes, score.n_correct) == (n, n_bytes, correct)
        assert score.is_greedy == (correct == n)
    if source == DEFAULT_TEMPLATE:  # " Paris" starts on the space before the answer: scored all the same,
        assert scores[0].n_bytes == len(" " + answers[0])  # as the local engine scores the assistant's tokens


def test_endpoint_without_prompt_logprobs_says_so(fake):
    fake.state.prompt_logprobs = False
    backend = _backend(fake, ChatTemplate(CHATML, TemplateTokens()))
    with pytest.raises(LikelihoodUnavailable, match="not available from this endpoint"):
        backend.loglikelihood([LikelihoodRequest([{"role": "user", "content": "Hi"}], ["Hello there"])])


# -- transport: retries, timeouts, concurrency ----------------------------------------------------


def _requests(n: int) -> list[GenerationRequest]:
    return [GenerationRequest([{"role": "user", "content": f"question number {i}"}], SamplingSettings(), f"q{i}")
            for i in range(n)]


def _generate(backend: OpenAIBackend, requests: list[GenerationRequest]) -> dict[int, str]:
    out: dict[int, str] = {}
    backend.generate(requests, lambda i, g: out.__setitem__(i, g.text))
    return out


def test_429_and_500_are_retried_until_the_answer_comes(fake):
    fake.state.failures = [429, 500, 503]
    out = _generate(_backend(fake), _requests(1))
    assert out == {0: canned_reply(_requests(1)[0].messages, 0.0, None)}
    assert fake.state.requests["/v1/chat/completions"] == 4


def test_retries_give_up_with_one_line_naming_the_endpoint(fake):
    fake.state.failures = [500] * 3
    with pytest.raises(HessError, match=r"chat/completions: HTTP 500: planned failure 500 \(gave up after 3 attempts\)"):
        _generate(_backend(fake, retries=2), _requests(1))
    fake.state.failures = [400]
    with pytest.raises(HessError, match="HTTP 400: planned failure 400"):  # a client error is not retried
        _generate(_backend(fake), _requests(1))
    assert fake.state.requests["/v1/chat/completions"] == 4


def test_a_slow_answer_times_out_and_is_retried(fake):
    fake.state.delay = 1.0
    with pytest.raises(HessError, match=r"timed out after 0.2 s \(gave up after 2 attempts\)"):
        _generate(_backend(fake, timeout=0.2, retries=1), _requests(1))
    assert fake.state.requests["/v1/chat/completions"] == 2


def test_concurrency_limit_is_respected(fake):
    fake.state.delay = 0.15
    out = _generate(_backend(fake, concurrency=3), _requests(9))
    assert sorted(out) == list(range(9))
    assert fake.state.max_in_flight == 3


def test_sampled_answers_get_a_seed_per_request(fake):
    settings = SamplingSettings(temperature=0.7, seed=4)
    requests = [GenerationRequest([{"role": "user", "content": "Tell a story"}], settings, "story", s) for s in range(2)]
    first, again = _generate(_backend(fake), requests), _generate(_backend(fake), requests)
    assert first == again and first[0] != first[1]


# -- the command ----------------------------------------------------------------------------------


def test_bench_endpoint_grades_greedy_answers_with_likelihoods_and_logs(fake, tmp_path):
    out, log = tmp_path / "run", tmp_path / "requests.jsonl"
    run = _bench("--endpoint", fake.url, "--model", MODEL, "--chat-template", str(_config(tmp_path)),
                 "--limit", "1", "--max-new-tokens", "6", "--out", str(out), "--no-progress",
                 "--api-key-env", "BENCH_TEST_KEY", "--log-requests", str(log), env={"BENCH_TEST_KEY": "s3cret"})
    assert run.returncode == 0, run.stderr
    results = _results(out)
    suites = {s.name: s for s in load_suites()}
    for row in results["items"]:
        item = next(it for it in suites[row["category"]].items if it.id == row["id"])
        words = tokens(canned_reply(item.conversation(), 0.0, None))
        limit = item.max_new_tokens or 6
        assert row["output"] == "".join(words[:limit])
        assert row["finish_reason"] == ("length" if len(words) > limit else "stop")
    assert results["meta"]["backend"]["kind"] == "http" and results["meta"]["backend"]["endpoint"] == fake.url
    assert results["meta"]["model"]["name"] == MODEL and results["meta"]["likelihood_note"] is None
    assert results["likelihood"]["n_references"] > 0 and results["likelihood"]["perplexity"] > 1
    assert "Likelihood: perplexity=" in run.stdout
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(entries) == sum(fake.state.requests.values())
    assert {e["url"].rsplit("/", 1)[1] for e in entries} == {"models", "completions"}
    assert all(e["status"] == 200 and "response" in e for e in entries)
    assert set(fake.state.auth_seen) == {"Bearer s3cret"} and "s3cret" not in log.read_text(encoding="utf-8")


def test_bench_endpoint_without_prompt_logprobs_reports_not_available(fake, tmp_path):
    fake.state.prompt_logprobs = False
    out = tmp_path / "run"
    run = _bench("--endpoint", fake.url, "--model", MODEL, "--chat-template", str(_config(tmp_path, CHATML)),
                 "--suite", "factual", "--limit", "2", "--out", str(out), "--no-progress")
    assert run.returncode == 0, run.stderr
    results = _results(out)
    assert results["likelihood"] is None and all(row["likelihood"] is None for row in results["items"])
    assert "not available from this endpoint" in results["meta"]["likelihood_note"]
    assert "Likelihood: not available (not available from this endpoint" in run.stdout
    assert "Likelihood metrics not available: not available from this endpoint" in \
        (out / "index.html").read_text(encoding="utf-8")


def test_bench_endpoint_flags_fail_in_one_line(fake, tmp_path):
    run = _bench("--endpoint", fake.url, "--out", str(tmp_path / "x"))
    assert run.returncode == 2 and run.stderr.startswith("error: --model: required with --endpoint")
    run = _bench("--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--retries", "0", "--out", str(tmp_path / "y"))
    assert run.returncode == 2 and "connection failed" in run.stderr and run.stderr.count("\n") == 1


def test_killed_endpoint_run_resumes_without_resending_finished_requests(fake, tmp_path):
    fake.state.delay = 0.25
    out, config = tmp_path / "run", _config(tmp_path)
    argv = ["--endpoint", fake.url, "--model", MODEL, "--chat-template", str(config), "--limit", "1",
            "--concurrency", "1", "--no-progress", "--quiet"]
    proc = subprocess.Popen([sys.executable, "bench.py", *argv, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    work = out / "work.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (work.exists() and work.read_text(encoding="utf-8").count("\n") >= 3):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = [json.loads(line) for line in work.read_text(encoding="utf-8").splitlines() if line.endswith("}")]
    assert len(stored) >= 3 and not (out / "results.json").exists()

    fake.state.delay = 0.0
    assert _bench(*argv, "--out", str(out)).returncode == 0
    suites = {it.id: it for s in load_suites() for it in s.items}
    for record in stored:  # answers stored before the kill were not asked again
        key = json.dumps(suites[record["id"]].conversation(), sort_keys=True)
        assert fake.state.chat_seen[key] == 1, record["id"]

    assert _bench(*argv, "--out", str(tmp_path / "fresh")).returncode == 0
    resumed, fresh = _results(out), _results(tmp_path / "fresh")
    for meta in (resumed["meta"], fresh["meta"]):
        meta.pop("generated_tokens")
    assert resumed["meta"].pop("reused_answers") >= 3 and fresh["meta"].pop("reused_answers") == 0
    assert resumed == fresh


def test_chat_template_files_are_checked(tmp_path):
    template, send_ids = load_chat_template(str(_config(tmp_path)))
    assert template.render_text([{"role": "user", "content": "Hi"}]) == "User: Hi\nAssistant:" and not send_ids
    bad = tmp_path / "bad.json"
    bad.write_text('{"eos_token": "</s>"}', encoding="utf-8")
    with pytest.raises(HessError, match="field 'chat_template' is missing"):
        load_chat_template(str(bad))
    with pytest.raises(HessError, match="no such file"):
        load_chat_template(str(tmp_path / "missing.jinja"))
