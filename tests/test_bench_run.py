"""bench.py with a model: reproducible, batch-size invariant, resumable after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = ("started", "finished", "wall_seconds", "tokens_per_second", "peak_memory_mb", "cpu_steal")


def _bench(*argv: str) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "bench.py", *argv, "--no-progress", "--quiet"], capture_output=True,
                         text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return run


def _results(out: Path) -> dict:
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert 0 <= data["meta"]["cpu_steal"] <= 1  # Linux counts steal in /proc/stat
    for key in TIMING_KEYS:
        data["meta"].pop(key)
    return data


ARGS = ("--limit", "2", "--max-new-tokens", "12")


def test_same_model_and_seed_give_identical_results(tiny_checkpoint, tmp_path):
    _bench("--checkpoint", str(tiny_checkpoint), *ARGS, "--out", str(tmp_path / "a"))
    _bench("--checkpoint", str(tiny_checkpoint), *ARGS, "--out", str(tmp_path / "b"), "--batch-size", "3")
    a, b = _results(tmp_path / "a"), _results(tmp_path / "b")
    a["meta"]["settings"].pop("batch_size")
    b["meta"]["settings"].pop("batch_size")
    assert a == b
    assert a["meta"]["training"] == {"epoch": 2, "step": 40, "val_loss": 9.1}
    assert a["likelihood"]["perplexity"] > 1000  # a random model knows nothing
    assert all(not row["missing"] for row in a["items"])


@pytest.mark.slow  # over a minute on 2 cores: make test-slow
def test_sampled_runs_depend_on_the_seed(tiny_checkpoint, tmp_path):
    sampled = (*ARGS, "--temperature", "1.0", "--no-likelihood")
    _bench("--checkpoint", str(tiny_checkpoint), *sampled, "--seed", "1", "--out", str(tmp_path / "s1"))
    _bench("--checkpoint", str(tiny_checkpoint), *sampled, "--seed", "1", "--out", str(tmp_path / "s1b"),
           "--batch-size", "5")
    _bench("--checkpoint", str(tiny_checkpoint), *sampled, "--seed", "2", "--out", str(tmp_path / "s2"))
    out = {name: [row["output"] for row in _results(tmp_path / name)["items"]] for name in ("s1", "s1b", "s2")}
    assert out["s1"] == out["s1b"]
    assert out["s1"] != out["s2"]


def test_interrupted_run_resumes_without_redoing_work(tiny_checkpoint, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "bench.py", "--checkpoint", str(tiny_checkpoint), "--limit", "6",
            "--max-new-tokens", "48", "--batch-size", "2", "--out", str(out), "--no-progress", "--quiet"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    work = out / "work.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if work.exists() and work.read_text(encoding="utf-8").count("\n") >= 4:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = work.read_text(encoding="utf-8").count("\n")
    assert done_before >= 4
    with open(work, "a", encoding="utf-8") as fh:
        fh.write('{"key": "cut sho')  # a line cut short by the kill
    assert not (out / "results.json").exists()

    _bench("--checkpoint", str(tiny_checkpoint), "--limit", "6", "--max-new-tokens", "48", "--out", str(out))
    records = [json.loads(line) for line in work.read_text(encoding="utf-8").splitlines()]
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)), "finished work was redone"
    _bench("--checkpoint", str(tiny_checkpoint), "--limit", "6", "--max-new-tokens", "48",
           "--out", str(tmp_path / "fresh"))
    resumed, fresh = _results(out), _results(tmp_path / "fresh")
    resumed["meta"].pop("generated_tokens")
    fresh["meta"].pop("generated_tokens")
    assert resumed["meta"].pop("reused_answers") >= 4 and fresh["meta"].pop("reused_answers") == 0
    resumed["meta"]["settings"].pop("batch_size")
    fresh["meta"]["settings"].pop("batch_size")
    assert resumed == fresh
