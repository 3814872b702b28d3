"""Validity with real models: the reference model's grade is far above a random model's.

Both run the same bench subset (the first items of every suite) through bench.py, so this
checks the whole chain: loading, the engine, the checks, the content/guard rule and the
aggregation to /20.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ("--limit", "3", "--max-new-tokens", "64", "--no-likelihood", "--no-progress", "--quiet")


def _grade(checkpoint: str, out: Path) -> dict:
    run = subprocess.run([sys.executable, "bench.py", "--checkpoint", checkpoint, *ARGS, "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


@pytest.mark.slow  # over a minute on 2 cores: make test-slow
def test_reference_model_grades_far_above_a_random_model(smollm2_gguf, tiny_checkpoint, tmp_path):
    reference = _grade(str(smollm2_gguf), tmp_path / "reference")
    random = _grade(str(tiny_checkpoint), tmp_path / "random")
    # Grades are on the human scale (calibration maps): careful readers give SmolLM2's answers about
    # 3/10, so its grade on this subset is near 6/20 and a random model's near 0.
    assert random["grade"] < 1.0, random["grade"]
    assert reference["grade"] > random["grade"] + 4, (reference["grade"], random["grade"])
    for category in ("factual", "conversation", "instructions", "explanations"):
        assert reference["categories"][category]["score"] > random["categories"][category]["score"] + 15, category
