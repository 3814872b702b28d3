"""How often does the regression gate cry wolf, and how often does it catch a real drop?

Simulates pairs of runs (baseline, new) whose truth is known, gates each pair exactly as
``bench.py gate`` does (grade + the seven categories, max_drop 0.5/20, max_category_drop 5/100,
alpha 0.05), and prints the share of pairs that fail:

* **null**: both runs are noisy draws of the same model: any failure is a false alarm;
* **drop D**: the new model's true item scores fall in three categories (conversation, factual,
  explanations) so that its true grade is D points lower: a failure is a catch (power).

Each item has a true score (uniform in [0.35, 0.95]); a run's score is the true score plus
Gaussian noise (sd 0.15), clipped to [0, 1]; a share of the items (40%) answer the same in both
runs (greedy answers that did not move), as between two epochs. For comparison it also prints
what plain Holm over the same eight p-values would decide (the correction before Holm-Tarone).

    python scripts/simulate_gates.py                 # 1,000 pairs per setting, seed 0
    python scripts/simulate_gates.py --pairs 200 --sizes 3 10 --permutations 2000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import graders.paired  # noqa: E402
from graders.gates import evaluate_regression  # noqa: E402
from graders.paired import holm_adjust  # noqa: E402

# The Wilcoxon p-value is a cross-check shown in messages, never part of the decision: skipping it
# halves the time of a simulation without changing any outcome.
graders.paired.wilcoxon_p_value = lambda contributions: None

CATEGORIES = ["conversation", "creativity", "explanations", "factual", "input_tasks", "instructions", "robustness"]
CRITERIA = [
    {"key": "factual_precision", "max": 8, "categories": ["factual", "explanations"]},
    {"key": "conversational_quality", "max": 5, "categories": ["conversation"]},
    {"key": "instruction_following", "max": 4, "categories": ["instructions", "input_tasks"]},
    {"key": "creativity", "max": 2, "categories": ["creativity"]},
    {"key": "robustness", "max": 1, "categories": ["robustness"]},
]
DROPPED = {"conversation", "factual", "explanations"}
# Grade points lost per unit of item score lost in DROPPED: (8/2 + 8/2 + 5) / 100 x 100.
GRADE_PER_ITEM_POINT = 4 + 4 + 5
NOISE = 0.15
UNCHANGED = 0.4


def results(ids: list[tuple[str, str]], scores: np.ndarray) -> dict:
    """A minimal results.json dict: items, criteria and suites (all the gate reads)."""
    return {
        "schema_version": 1,
        "items": [{"id": i, "category": c, "score": float(s)} for (i, c), s in zip(ids, scores, strict=True)],
        "criteria": CRITERIA,
        "categories": {c: {} for c in CATEGORIES},
        "meta": {"suites": {c: {"sha256": c} for c in CATEGORIES}},
    }


def simulate_pair(rng: np.random.Generator, n: int, grade_drop: float) -> tuple[dict, dict]:
    ids = [(f"{c}-{k:03d}", c) for c in CATEGORIES for k in range(n)]
    truth = rng.uniform(0.35, 0.95, len(ids))
    hit = np.array([c in DROPPED for _, c in ids])
    new_truth = truth - hit * grade_drop / GRADE_PER_ITEM_POINT
    base = np.clip(truth + rng.normal(0, NOISE, len(ids)), 0, 1)
    new = np.clip(new_truth + rng.normal(0, NOISE, len(ids)), 0, 1)
    same = rng.random(len(ids)) < UNCHANGED
    new = np.where(same, np.clip(base - hit * grade_drop / GRADE_PER_ITEM_POINT, 0, 1), new)
    return results(ids, base), results(ids, new)


def run_setting(rng: np.random.Generator, n: int, grade_drop: float, pairs: int, permutations: int) -> dict:
    failed = holm_failed = grade_failed = 0
    drops = []
    for _ in range(pairs):
        base, new = simulate_pair(rng, n, grade_drop)
        report = evaluate_regression(new, base, n_permutations=permutations, seed=int(rng.integers(1 << 31)))
        failed += not report.passed
        grade_failed += report.checks[0].failed
        drops.append(report.checks[0].difference.drop)
        adjusted = holm_adjust([c.difference.p_value for c in report.checks])
        holm_failed += any(c.too_large and p < 0.05 for c, p in zip(report.checks, adjusted, strict=True))
    return {"failed": failed / pairs, "grade_failed": grade_failed / pairs, "holm_failed": holm_failed / pairs,
            "mean_drop": float(np.mean(drops))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000, help="simulated pairs per setting (default 1000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 6, 10, 57],
                        help="items per category (default 3 6 10 57; 57 is about the shipped suites)")
    parser.add_argument("--drops", type=float, nargs="+", default=[0.0, 1.0, 4.0],
                        help="true grade drops, /20 (0 = the null; default 0 1 4)")
    parser.add_argument("--permutations", type=int, default=2000,
                        help="Monte Carlo sign patterns for more than 16 items (default 2000; the gate uses 10000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    half_width = 1.96 * math.sqrt(0.05 * 0.95 / args.pairs)
    print(f"{args.pairs} pairs per setting, seed {args.seed}, {args.permutations} Monte Carlo patterns; "
          f"a rate of 0.05 is measured within +-{half_width:.3f} (95%)")
    print(f"{'items/category':>14} {'true drop':>9} {'mean drop':>9} {'gate fails':>10} {'grade fails':>11} "
          f"{'plain Holm':>10}  meaning")
    for n in args.sizes:
        for drop in args.drops:
            began = time.perf_counter()
            row = run_setting(rng, n, drop, args.pairs, args.permutations)
            meaning = "false alarms" if drop == 0 else "power"
            print(f"{n:>14} {drop:>9.1f} {row['mean_drop']:>9.2f} {row['failed']:>10.3f} {row['grade_failed']:>11.3f} "
                  f"{row['holm_failed']:>10.3f}  {meaning} ({time.perf_counter() - began:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
