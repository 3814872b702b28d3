"""bench.py --endpoint against hessgpt serve gives the local backend's answers and likelihoods (SmolLM2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ("--suite", "factual,instructions", "--limit", "3", "--max-new-tokens", "24", "--no-progress", "--quiet")

pytestmark = pytest.mark.slow


def _bench(*argv: str) -> dict:
    run = subprocess.run([sys.executable, "bench.py", *argv], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert run.returncode == 0, run.stderr
    out = Path(argv[argv.index("--out") + 1])
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def test_endpoint_on_hessgpt_serve_matches_the_local_backend(smollm2_gguf, tmp_path):
    from serve_helpers import RunningServer

    from hessgpt.generate import Engine
    from hessgpt.loading import load_model
    from hessgpt.serve import ServeOptions

    checkpoint = smollm2_gguf
    server = RunningServer(Engine(load_model(checkpoint), batch_size=4), ServeOptions(model_name="smollm2"))
    try:
        served = _bench("--endpoint", server.url + "/v1", "--model", "smollm2", "--chat-template", str(checkpoint),
                        *SUBSET, "--out", str(tmp_path / "served"))
    finally:
        server.stop()
    local = _bench("--checkpoint", str(checkpoint), *SUBSET, "--out", str(tmp_path / "local"))

    assert served["meta"]["backend"]["kind"] == "http" and local["meta"]["backend"]["kind"] == "local"
    assert [r["id"] for r in served["items"]] == [r["id"] for r in local["items"]]
    assert [r["output"] for r in served["items"]] == [r["output"] for r in local["items"]]
    assert [r["score"] for r in served["items"]] == [r["score"] for r in local["items"]]
    scored = 0
    for a, b in zip(served["items"], local["items"], strict=True):
        assert (a["likelihood"] is None) == (b["likelihood"] is None), a["id"]
        if b["likelihood"] is None:
            continue
        for key, value in b["likelihood"].items():
            if key == "mc_logprobs":
                assert a["likelihood"][key] == pytest.approx(value, abs=1e-4)
            elif isinstance(value, float):
                assert a["likelihood"][key] == pytest.approx(value, abs=1e-4), (a["id"], key)
            else:
                assert a["likelihood"][key] == value, (a["id"], key)
            scored += 1
    assert scored > 0
    for key in ("perplexity", "bits_per_byte", "token_accuracy", "mc_accuracy"):
        if local["likelihood"][key] is not None:
            assert served["likelihood"][key] == pytest.approx(local["likelihood"][key], rel=1e-4)
