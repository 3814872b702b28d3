"""Load test of ``hessgpt serve``: concurrent streaming clients against the local batched engine.

    python scripts/bench_serve.py                                  # SmolLM2, 64 clients, 1000 requests
    python scripts/bench_serve.py --requests 200 --max-tokens 16   # a quicker look

Starts ``hessgpt serve`` on a free 127.0.0.1 port, sends ``--requests`` greedy chat requests from
``--clients`` concurrent streaming clients (each takes the next prompt when its answer is done, so
traffic is bounded), then runs the same prompts through ``Engine.generate`` in this process at the
same batch size. Prints side by side: errors and lost requests, answers identical to the engine's,
aggregate tokens/s (server vs local, goal >= 80%), time to first token p50/p95, and the server's
resident memory: sampled during the run (first / last / max), and its curve at 0, 1/4, 1/2 and all
of the requests, each taken once the server is idle (the load pauses there), with a verdict. Memory
may grow while the server warms up (first half); after that it should stay flat (goal: the second
half adds at most ``RSS_TOLERANCE_MB`` or 2%), and what kind of memory it is at each mark (the main
malloc heap, other anonymous memory, files). ``--no-local`` skips the local engine (memory and
errors only).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve_process import free_port, start_serve, stop  # noqa: E402

DEFAULT_CHECKPOINT = Path("/work/main/checkpoints/smollm2-135m-instruct.pt")
if not DEFAULT_CHECKPOINT.exists():
    DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "smollm2-135m-instruct.pt"

SUBJECTS = (
    "the moon, rivers, bread, chess, volcanoes, bees, the Eiffel Tower, rain, music, the ocean, "
    "trains, gardens, winter, computers, cats, mountains, coffee, libraries, bicycles, stars, "
    "Paris, honey, forests, clocks, snow, the internet, deserts, whales, books, tea"
).split(", ")
FORMS = (
    "What is {s}?",
    "Write one sentence about {s}.",
    "Give me a fun fact about {s}.",
    "Why do people like {s}?",
    "Describe {s} in a few words.",
)


def prompts(n: int) -> list[str]:
    """``n`` distinct chat questions of varied length."""
    out = []
    i = 0
    while len(out) < n:
        form = FORMS[i % len(FORMS)]
        subject = SUBJECTS[(i // len(FORMS)) % len(SUBJECTS)]
        round_ = i // (len(FORMS) * len(SUBJECTS))
        out.append(form.format(s=subject) + (f" (question {round_ + 1})" if round_ else ""))
        i += 1
    return out


@dataclass
class Outcome:
    text: str = ""
    ttft: float | None = None
    completion_tokens: int = 0
    finish: str | None = None
    error: str | None = None


RSS_TOLERANCE_MB = 16


@dataclass
class Load:
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    rss: list[tuple[int, int]] = field(default_factory=list)  # (requests done, RSS bytes), every 0.5 s
    rss_marks: dict[int, int] = field(default_factory=dict)  # requests done -> RSS bytes, at 0, 1/4, 1/2, all
    kinds: dict[int, dict[str, int]] = field(default_factory=dict)  # the same marks: resident bytes by kind
    seconds: float = 0.0


def curve_marks(n: int) -> list[int]:
    return sorted({0, n // 4, n // 2, n})


def memory_verdict(marks: dict[int, int]) -> str:
    """Flat, or growing: judged on the second half of the run (the first quarter may warm up)."""
    done = sorted(marks)
    half, end = marks[done[len(done) // 2]], marks[done[-1]]
    late_mb, warm_mb = (end - half) / (1 << 20), (half - marks[done[0]]) / (1 << 20)
    tolerance = max(RSS_TOLERANCE_MB, 0.02 * half / (1 << 20))
    peak = f"highest mark {(max(marks.values()) - marks[done[0]]) / (1 << 20):+.0f} MB over the start"
    if late_mb <= tolerance:
        return (f"flat: {late_mb:+.0f} MB over the second half (tolerance {tolerance:.0f} MB; "
                f"warm-up {warm_mb:+.0f} MB; {peak})")
    return (f"GROWING: {late_mb:+.0f} MB over the second half (tolerance {tolerance:.0f} MB; "
            f"first half {warm_mb:+.0f} MB; {peak})")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def resident_by_kind(pid: int) -> dict[str, int]:
    """Resident bytes of the main malloc heap, of other anonymous memory (thread heaps, large blocks,
    Python's arenas) and of files (code, the memory-mapped checkpoint)."""
    kinds = {"heap": 0, "anon": 0, "file": 0}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if not head[0].endswith(":"):  # a mapping's first line: address range, perms, offset, dev, inode[, path]
            name = head[5] if len(head) > 5 else ""
        elif head[0] == "Rss:":
            kind = "heap" if name == "[heap]" else "anon" if not name or name.startswith("[") else "file"
            kinds[kind] += int(head[1]) * 1024
    return kinds


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    options = ["--batch-size", str(args.batch_size), "--max-concurrent", str(max(256, args.clients))]
    return start_serve(args.checkpoint, port, *options, *(["--threads", str(args.threads)] if args.threads else []))


def idle_rss(port: int, pid: int) -> int:
    """The server's RSS once it has nothing running or queued (what it keeps, not what it is using)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            health = json.loads(r.read())
        if not health["running"] and not health["queued"]:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # the scheduler hands freed memory back as it goes idle
    return rss_bytes(pid)


def run_load(args: argparse.Namespace, port: int, pid: int, questions: list[str]) -> Load:
    """``args.clients`` threads, each one keep-alive connection streaming one request at a time.

    The load pauses at 1/4, 1/2 and the end of the requests: once the server is idle its RSS is
    taken, so the memory curve compares what the server keeps, not how busy it was at that moment."""
    load = Load()
    todo: list[int] = []
    lock = threading.Lock()

    def one(conn: http.client.HTTPConnection, i: int) -> Outcome:
        out = Outcome()
        body = {
            "model": "bench", "messages": [{"role": "user", "content": questions[i]}], "temperature": 0,
            "max_tokens": args.max_tokens, "stream": True, "stream_options": {"include_usage": True},
        }
        sent = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            out.error = f"HTTP {response.status}: {response.read()[:200]!r}"
            return out
        done = False
        for raw in iter(response.readline, b""):
            line = raw.decode("utf-8").rstrip("\n")
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                continue
            chunk = json.loads(data)
            if "error" in chunk:
                out.error = chunk["error"]["message"]
            if chunk.get("usage"):
                out.completion_tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                piece = choice["delta"].get("content")
                if piece:
                    if out.ttft is None:
                        out.ttft = time.perf_counter() - sent
                    out.text += piece
                out.finish = choice.get("finish_reason") or out.finish
        if not done and out.error is None:
            out.error = "stream ended without [DONE]"
        return out

    def client_loop() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                if not todo:
                    break
                i = todo.pop()
            try:
                outcome = one(conn, i)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                outcome = Outcome(error=f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            with lock:
                load.outcomes[i] = outcome
                done = len(load.outcomes)
            if done % max(1, len(questions) // 10) == 0:
                print(f"  {done}/{len(questions)} requests done", file=sys.stderr, flush=True)
        conn.close()

    finished = threading.Event()

    def sample_memory() -> None:
        while not finished.wait(0.5):
            load.rss.append((len(load.outcomes), rss_bytes(pid)))

    sampler = threading.Thread(target=sample_memory, daemon=True)
    load.rss.append((0, rss_bytes(pid)))
    load.rss_marks[0] = idle_rss(port, pid)
    load.kinds[0] = resident_by_kind(pid)
    sampler.start()
    marks = curve_marks(len(questions))
    for begin, end in itertools.pairwise(marks):
        todo[:] = list(range(begin, end))[::-1]
        clients = [threading.Thread(target=client_loop) for _ in range(min(args.clients, end - begin))]
        start = time.perf_counter()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        load.seconds += time.perf_counter() - start
        load.rss_marks[end] = idle_rss(port, pid)
        load.kinds[end] = resident_by_kind(pid)
    finished.set()
    sampler.join()
    return load


def run_local(args: argparse.Namespace, questions: list[str]) -> tuple[list, float, int]:
    import torch

    from hessgpt.generate import Engine, GenerationSettings
    from hessgpt.loading import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    engine = Engine(load_model(args.checkpoint), batch_size=args.batch_size, release_model_weights=True)
    settings = GenerationSettings(max_new_tokens=args.max_tokens, temperature=0.0)
    requests = [engine.chat_request([{"role": "user", "content": q}], settings) for q in questions]
    start = time.perf_counter()
    results = engine.generate(requests)
    seconds = time.perf_counter() - start
    return results, seconds, engine.last_stats.generated_tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--clients", type=int, default=64, help="concurrent streaming clients (default 64)")
    parser.add_argument("--requests", type=int, default=1000, help="total requests (default 1000)")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per answer at most (default 32)")
    parser.add_argument("--batch-size", type=int, default=16, help="server and local engine batch (default 16)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in both (default: torch's)")
    parser.add_argument("--no-local", action="store_true", help="the server only: errors, speed and memory")
    args = parser.parse_args()
    if not args.checkpoint.exists():
        raise SystemExit(f"{args.checkpoint}: no such checkpoint (`hessgpt reference` installs SmolLM2)")
    questions = prompts(args.requests)
    port = free_port()
    server = start_server(args, port)
    try:
        load = run_load(args, port, server.pid, questions)
    finally:
        stop(server)
    local, local_seconds, local_tokens = [], 0.0, 0
    if not args.no_local:
        print(f"local: Engine.generate on the same {len(questions)} prompts, batch {args.batch_size}")
        local, local_seconds, local_tokens = run_local(args, questions)
    return report(load, questions, local, local_seconds, local_tokens)


def report(load: Load, questions: list[str], local: list, local_seconds: float, local_tokens: int) -> int:
    outcomes = load.outcomes
    errors = [o for o in outcomes.values() if o.error]
    lost = len(questions) - len(outcomes)
    served_tokens = sum(o.completion_tokens for o in outcomes.values() if not o.error)
    server_tps = served_tokens / load.seconds
    ttfts = [o.ttft for o in outcomes.values() if o.ttft is not None]
    mb = 1 << 20
    print()
    print(f"{'':34}{'server':>14}{'local engine' if local else '':>16}")
    print(f"{'requests (errors / lost)':34}{f'{len(outcomes) - len(errors)} ({len(errors)} / {lost})':>14}"
          f"{len(local) if local else '':>16}")
    if local:
        same = sum(1 for i, o in outcomes.items() if not o.error and o.text == local[i].text)
        local_tps = local_tokens / local_seconds
        print(f"{'answers identical to the engine':34}{f'{same}/{len(questions)}':>14}")
        print(f"{'generated tokens':34}{served_tokens:>14}{local_tokens:>16}")
        print(f"{'wall seconds':34}{load.seconds:>14.1f}{local_seconds:>16.1f}")
        print(f"{'aggregate tokens/s':34}{server_tps:>14.1f}{local_tps:>16.1f}")
        print(f"{'server / local':34}{server_tps / local_tps:>14.0%}{'(goal >= 80%)':>16}")
    else:
        print(f"{'generated tokens':34}{served_tokens:>14}")
        print(f"{'wall seconds':34}{load.seconds:>14.1f}")
        print(f"{'aggregate tokens/s':34}{server_tps:>14.1f}")
    if ttfts:
        print(f"{'time to first token p50 / p95 (s)':34}{f'{statistics.median(ttfts):.2f} / {percentile(ttfts, 0.95):.2f}':>14}")
    rss = [r for _, r in load.rss if r]
    if rss:
        print(
            f"{'server RSS MB first / last / max':34}"
            f"{f'{rss[0] / mb:.0f} / {rss[-1] / mb:.0f} / {max(rss) / mb:.0f}':>14}  ({len(rss)} samples)"
        )
    growing = False
    if len(load.rss_marks) >= 3:
        curve = " ".join(f"{done}:{r / mb:.0f}" for done, r in sorted(load.rss_marks.items()))
        print(f"{'idle server RSS MB at requests':34}  {curve}")
        kinds = " ".join(f"{done}:{k['heap'] / mb:.0f}/{k['anon'] / mb:.0f}/{k['file'] / mb:.0f}"
                         for done, k in sorted(load.kinds.items()))
        print(f"{'  of which heap / anon / file MB':34}  {kinds}")
        verdict = memory_verdict(load.rss_marks)
        growing = verdict.startswith("GROWING")
        print(f"{'memory':34}  {verdict}")
    for o in errors[:5]:
        print(f"error: {o.error}")
    return 1 if errors or lost or growing else 0


if __name__ == "__main__":
    sys.exit(main())
