"""scripts/bench_answer_speed.py: the bench's own requests at batch 1, with and without guessed tokens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_both_configurations_give_the_same_answers_and_a_row_each(tiny_checkpoint):
    run = subprocess.run([sys.executable, "scripts/bench_answer_speed.py", "--checkpoint", str(tiny_checkpoint),
                          "--every", "40", "--no-transformers"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "bench requests (every 40-th), batch 1" in lines[0]
    n = int(lines[0].split("; ")[1].split()[0])
    rows = {line[:34].strip(): line.split() for line in lines[2:]}
    assert set(rows) == {"hessgpt, guesses (4)", "hessgpt, no guesses"}
    for row in rows.values():
        assert row[-1] == f"{n}/{n}"  # every answer token for token the same
    assert rows["hessgpt, guesses (4)"][-5] == rows["hessgpt, no guesses"][-5]  # the same number of tokens


def test_bad_arguments_are_refused_before_any_model_loads():
    run = subprocess.run([sys.executable, "scripts/bench_answer_speed.py", "--every", "0"], capture_output=True,
                         text=True, cwd=ROOT)
    assert run.returncode == 2 and "--every and --rounds: must be integers >= 1" in run.stderr
