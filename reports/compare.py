"""Compare two runs, follow a series of checkpoints, and gate a run in CI.

Everything reads saved ``results.json`` files only (no model), so any two
runs can be compared long after they ran::

    bench.py compare runs/epoch6 runs/epoch7 [--out DIR] [--shared-items-only]
    bench.py gate --run runs/epoch7 --baseline runs/epoch6 [--max-drop 0.5] [--alpha 0.05] [--min-grade 12]

Differences are always "B minus A" (new minus old), paired item by item
(``graders.paired``); ``bench.py --checkpoint A B ...`` builds the trend
after it has run several checkpoints.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.gates import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_CATEGORY_DROP,
    DEFAULT_MAX_DROP,
    BenchRun,
    compare_runs,
    evaluate_regression,
    excerpt,
    format_p,
    grade_shortfall,
    load_run,
    p_text,
    selection_difference,
    suite_differences,
)
from graders.paired import GRADE_KEY, ItemPair, PairedComparison, PairedDifference, holm_tarone
from hessgpt import flags
from hessgpt.cpu_steal import steal_note
from hessgpt.errors import HessError
from hessgpt.machine import machine_differences
from hessgpt.safe_io import check_output_dir
from reports.render import category_label, render_template

COMPARE_FILE = "compare.html"
TREND_FILE = "trend.html"
TREND_JSON = "trend.json"
DEFAULT_OUT_ROOT = Path("reports/runs")
SIGNIFICANCE = 0.05  # for the stars in tables and the trend's "significant step"
ITEMS_IN_TABLE = 5
ITEMS_ON_PAGE = 10


# ---------------------------------------------------------------- shared helpers


def run_label(run: BenchRun) -> str:
    """A short name for a run: its checkpoint's file stem, else its directory name."""
    meta = run.results.get("meta") or {}
    checkpoint = meta.get("checkpoint") or meta.get("responses_file")
    if checkpoint:
        return Path(str(checkpoint)).stem
    return Path(run.name).name or run.name


def _unit(key: str) -> str:
    return "/20" if key == GRADE_KEY else "/100"


def _label(key: str) -> str:
    return "Grade" if key == GRADE_KEY else category_label(key)


def _official(run: BenchRun, key: str) -> tuple[float | None, list[float] | None]:
    """The value and CI results.json reports (over all of the run's items)."""
    if key == GRADE_KEY:
        return run.grade, run.results.get("grade_ci")
    entry = run.categories.get(key) or {}
    return entry.get("score"), entry.get("ci")


def _significant(d: PairedDifference) -> bool:
    return d.p_value < SIGNIFICANCE


def verdict(d: PairedDifference, alpha: float = SIGNIFICANCE) -> str:
    """What a reader may conclude: "significant", "within noise", or "too few items to say" when the
    items are too few for any difference to be significant (no finite interval). Agrees with the
    interval by construction: it excludes 0 exactly when p < alpha."""
    if d.ci is None:
        return "too few items to say"
    return "significant" if d.p_value < alpha else "within noise"


# ---------------------------------------------------------------- compare


def format_compare_table(
    a: BenchRun, b: BenchRun, comparison: PairedComparison, n_items: int = ITEMS_IN_TABLE
) -> str:
    """The terminal view of a comparison."""
    confidence = comparison.rows()[0].confidence if comparison.rows() else 0.95
    lines = [
        f"A: {a.name} ({run_label(a)})",
        f"B: {b.name} ({run_label(b)})",
        f"{len(comparison.items)} paired items; B-A with a paired sign-flip permutation test and its "
        f"{confidence * 100:g}% CI (the shifts the test keeps; Wilcoxon signed-rank as a cross-check)",
        "",
        f"{'':22} {'A':>8} {'B':>8} {'B-A':>8}  {'CI':<18} {'p':>8} {'Wilcoxon':>9}  verdict",
    ]
    for d in comparison.rows():
        digits = 2 if d.key == GRADE_KEY else 1
        ci = "(none)" if d.ci is None else f"[{d.ci[0]:+.{digits}f}, {d.ci[1]:+.{digits}f}]"
        lines.append(
            f"{d.key + ' ' + _unit(d.key):22} {d.a:8.{digits}f} {d.b:8.{digits}f} {d.diff:+8.{digits}f}  "
            f"{ci:<18} {format_p(d.p_value, SIGNIFICANCE):>8} {format_p(d.wilcoxon_p):>9}  {verdict(d)}"
        )
    lines.append(f"significant: p < {SIGNIFICANCE:g}, not corrected for the number of rows; "
                 "too few items to say: no difference on these items could be significant")
    before, after = _outputs(a), _outputs(b)
    for title, pairs in (
        ("Most regressed (A -> B)", comparison.most_regressed(n_items)),
        ("Most improved (A -> B)", comparison.most_improved(n_items)),
    ):
        lines += ["", f"{title}:"]
        lines += [
            f"  {p.id} [{p.category}] {p.a:.2f} -> {p.b:.2f}  {excerpt(before.get(p.id), 50)} -> "
            f"{excerpt(after.get(p.id), 50)}"
            for p in pairs
        ] or ["  (none)"]
    if comparison.only_a or comparison.only_b:
        lines += ["", _left_out_note(comparison)]
    return "\n".join(lines)


def _left_out_note(comparison: PairedComparison) -> str:
    return (
        f"left out: {len(comparison.only_a)} items only in A, {len(comparison.only_b)} only in B "
        "(A and B columns are re-aggregated over the shared items)"
    )


def _outputs(run: BenchRun) -> dict[str, Any]:
    first: dict[str, Any] = {}
    for item in run.results.get("items") or []:
        first.setdefault(str(item["id"]), item)
    return {k: v.get("output") for k, v in first.items()}


def _item_side(item: dict[str, Any] | None, score: float) -> dict[str, Any]:
    item = item or {}
    return {
        "score": score,
        "output": item.get("output"),
        "missing": bool(item.get("missing")),
        "checks": [
            {"type": c.get("type", "?"), "score": c.get("score"), "explanation": c.get("explanation") or ""}
            for c in item.get("checks") or []
            if isinstance(c, dict)
        ],
    }


def _item_views(a: BenchRun, b: BenchRun, pairs: list[ItemPair]) -> list[dict[str, Any]]:
    """Both answers of each item, side by side (first sample of each run)."""
    first_a: dict[str, dict[str, Any]] = {}
    first_b: dict[str, dict[str, Any]] = {}
    for target, run in ((first_a, a), (first_b, b)):
        for item in run.results.get("items") or []:
            target.setdefault(str(item["id"]), item)
    views = []
    for pair in pairs:
        item_a, item_b = first_a.get(pair.id) or {}, first_b.get(pair.id) or {}
        messages = item_b.get("messages") or item_a.get("messages") or []
        prompt = item_b.get("prompt") or item_a.get("prompt")
        if not prompt and messages and isinstance(messages[-1], dict):
            prompt = messages[-1].get("content")
        views.append(
            {
                "id": pair.id,
                "category": pair.category,
                "diff": pair.diff,
                "prompt": prompt or "",
                "input": item_b.get("input") or item_a.get("input"),
                "references": [str(r) for r in (item_b.get("references") or item_a.get("references") or [])],
                "a": _item_side(item_a, pair.a),
                "b": _item_side(item_b, pair.b),
            }
        )
    return views


def _meta_rows(a: BenchRun, b: BenchRun) -> list[dict[str, Any]]:
    """What differs between the two runs' settings (checkpoint, seed, sampling...)."""
    ma, mb = a.results.get("meta") or {}, b.results.get("meta") or {}

    def pick(meta: dict[str, Any], path: str) -> Any:
        value: Any = meta
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    paths = [
        "backend.kind",
        "backend.endpoint",
        "checkpoint",
        "checkpoint_sha256",
        "model.name",
        "model.params",
        "training.epoch",
        "training.step",
        "training.val_loss",
        "training.data_hash",
        "responses_file",
        "seed",
        "machine.cpu_model",
        "machine.isa",
        "machine.torch_cpu_capability",
        "machine.cuda",
    ] + [f"settings.{k}" for k in sorted(set(ma.get("settings") or {}) | set(mb.get("settings") or {}))]
    rows = []
    for path in paths:
        va, vb = pick(ma, path), pick(mb, path)
        if va is None and vb is None:
            continue
        if path.endswith(("sha256", "hash")):
            va, vb = (v[:12] if isinstance(v, str) else v for v in (va, vb))
        rows.append({"name": path, "a": va, "b": vb, "differs": va != vb})
    return rows


def _suite_rows(a: BenchRun, b: BenchRun) -> list[dict[str, Any]]:
    ha, hb = a.suite_hashes(), b.suite_hashes()
    return [
        {
            "name": name,
            "a": ha.get(name),
            "b": hb.get(name),
            "same": name in ha and name in hb and ha[name] == hb[name],
        }
        for name in sorted(set(ha) | set(hb))
    ]


def compare_context(
    a: BenchRun, b: BenchRun, comparison: PairedComparison, shared_items_only: bool = False
) -> dict[str, Any]:
    """Everything compare.html shows."""
    rows = []
    for d in comparison.rows():
        official_a, ci_a = _official(a, d.key)
        official_b, ci_b = _official(b, d.key)
        rows.append(
            {
                "key": d.key,
                "label": _label(d.key),
                "unit": _unit(d.key),
                "max": 20 if d.key == GRADE_KEY else 100,
                "digits": 2 if d.key == GRADE_KEY else 1,
                "official_a": official_a,
                "official_a_ci": ci_a,
                "official_b": official_b,
                "official_b_ci": ci_b,
                "d": d,
                "significant": _significant(d),
                "verdict": verdict(d),
                "p": format_p(d.p_value, SIGNIFICANCE),
                "wilcoxon_p": format_p(d.wilcoxon_p),
                "direction": "up" if d.diff > 0 else "down" if d.diff < 0 else "flat",
            }
        )
    differences = suite_differences(a, b)
    return {
        "title": f"{run_label(a)} vs {run_label(b)}",
        "a": {"name": a.name, "label": run_label(a), "mention": a.results.get("mention")},
        "b": {"name": b.name, "label": run_label(b), "mention": b.results.get("mention")},
        "rows": rows,
        "confidence": rows[0]["d"].confidence if rows else 0.95,
        "alpha": SIGNIFICANCE,
        "n_paired": len(comparison.items),
        "n_regressed": sum(1 for p in comparison.items if p.diff < 0),
        "n_improved": sum(1 for p in comparison.items if p.diff > 0),
        "regressed": _item_views(a, b, comparison.most_regressed(ITEMS_ON_PAGE)),
        "improved": _item_views(a, b, comparison.most_improved(ITEMS_ON_PAGE)),
        "left_out": _left_out_note(comparison) if comparison.only_a or comparison.only_b else "",
        "suite_differences": differences if shared_items_only else [],
        "selection_difference": selection_difference(a, b) if shared_items_only else "",
        "suites": _suite_rows(a, b),
        "meta_rows": _meta_rows(a, b),
    }


def write_compare_html(
    a: BenchRun, b: BenchRun, comparison: PairedComparison, out_dir: Path, shared_items_only: bool = False
) -> Path:
    return render_template(
        "compare.html", Path(out_dir) / COMPARE_FILE, **compare_context(a, b, comparison, shared_items_only)
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def compare_main(argv: Sequence[str]) -> int:
    """``bench.py compare RUN_A RUN_B``: print the table, write compare.html; exit 2 on a user error."""
    parser = argparse.ArgumentParser(
        prog="bench.py compare",
        description="Compare two finished runs item by item (B - A, paired CI and p-values) and write compare.html.",
    )
    parser.add_argument("run_a", help="the reference run (directory with results.json)")
    parser.add_argument("run_b", help="the new run (directory with results.json)")
    parser.add_argument(
        "--out", type=Path, help=f"where to write {COMPARE_FILE} (default: {DEFAULT_OUT_ROOT}/compare-A-vs-B)"
    )
    parser.add_argument(
        "--shared-items-only",
        action="store_true",
        help="compare runs of different suites on the item ids both runs answered",
    )
    parser.add_argument(
        "--seed", type=flags.seed, default=0, help="seed of the permutation test's random sign patterns, above 16 items (default 0)"
    )
    args = parser.parse_args(list(argv))
    try:
        if args.out is not None:
            check_output_dir(args.out, "--out", create=False)
        a, b, comparison = compare_runs(
            args.run_a, args.run_b, shared_items_only=args.shared_items_only, seed=args.seed
        )
        print(format_compare_table(a, b, comparison))
        machines = machine_differences(
            (a.results.get("meta") or {}).get("machine"), (b.results.get("meta") or {}).get("machine")
        )
        if machines:
            print("\nnote: the runs come from different machines (" + "; ".join(machines) + "); "
                  "kernels that round differently can change greedy answers on their own")
        for label, run in (("A", a), ("B", b)):
            steal = (run.results.get("meta") or {}).get("cpu_steal")
            if steal_note(steal):
                print(f"note: run {label} had {100 * steal:.0f}% CPU steal: {steal_note(steal)}")
        out_dir = args.out or DEFAULT_OUT_ROOT / f"compare-{_slug(run_label(a))}-vs-{_slug(run_label(b))}"
        path = write_compare_html(a, b, comparison, out_dir, args.shared_items_only)
    except HessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nwrote {path}")
    return 0


# ---------------------------------------------------------------- gate


def gate_main(argv: Sequence[str]) -> int:
    """``bench.py gate``: exit 0 when the run passes, 1 on a regression, 2 on a user error."""
    parser = argparse.ArgumentParser(
        prog="bench.py gate",
        description=(
            "Fail (exit 1) when a run is worse than its baseline by more than noise: a drop larger than its "
            "limit and significant (paired permutation test; alpha shared between the grade and the categories, "
            "Holm-Tarone)."
        ),
    )
    parser.add_argument("--run", required=True, help="the run to check (directory with results.json)")
    parser.add_argument("--baseline", help="the run to compare against (directory with results.json)")
    parser.add_argument(
        "--max-drop",
        type=flags.finite_float,
        default=DEFAULT_MAX_DROP,
        help=f"largest tolerated grade drop, /20 (default {DEFAULT_MAX_DROP:g})",
    )
    parser.add_argument(
        "--max-category-drop",
        type=flags.finite_float,
        default=DEFAULT_MAX_CATEGORY_DROP,
        help=f"largest tolerated category drop, /100 (default {DEFAULT_MAX_CATEGORY_DROP:g})",
    )
    parser.add_argument(
        "--alpha", type=flags.finite_float, default=DEFAULT_ALPHA, help=f"significance level (default {DEFAULT_ALPHA:g})"
    )
    parser.add_argument("--min-grade", type=flags.finite_float, help="also fail when the run's grade is below this (/20)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--category", action="append", help="check only this category (repeatable; default: all); the grade is "
        "checked too"
    )
    which.add_argument(
        "--grade-only", action="store_true", help="check the grade alone, no category (all of alpha on the grade)"
    )
    parser.add_argument(
        "--shared-items-only", action="store_true", help="gate runs of different suites on shared items"
    )
    parser.add_argument(
        "--seed", type=flags.seed, default=0, help="seed of the permutation test's random sign patterns, above 16 items (default 0)"
    )
    args = parser.parse_args(list(argv))
    if args.baseline is None and args.min_grade is None:
        print(
            "error: --baseline: give a baseline run to compare against (or at least --min-grade)",
            file=sys.stderr,
        )
        return 2
    categories = [] if args.grade_only else args.category
    if categories is not None and not any(c.strip() for c in categories):
        categories = []  # --category "" also means: no category check
    elif categories:
        categories = [c.strip() for c in categories if c.strip()]
    failures = []
    try:
        if args.min_grade is not None:
            shortfall = grade_shortfall(args.run, args.min_grade)
            if shortfall:
                failures.append(shortfall)
            else:
                print(f"grade {load_run(args.run).grade:.2f}/20 >= {args.min_grade:g}: ok")
        if args.baseline is not None:
            report = evaluate_regression(
                args.run,
                args.baseline,
                max_drop=args.max_drop,
                max_category_drop=args.max_category_drop,
                alpha=args.alpha,
                categories=categories,
                shared_items_only=args.shared_items_only,
                seed=args.seed,
                override="--shared-items-only",
            )
            if report.passed:
                print(report.message())
            else:
                failures.append(report.message())
    except HessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if failures:
        print("\n".join(f"FAIL {failure}" for failure in failures))
        return 1
    return 0


# ---------------------------------------------------------------- trend


@dataclass(frozen=True)
class TrendStep:
    """From one checkpoint to the next: the paired grade change and significant category changes."""

    before: int
    after: int
    grade: PairedDifference | None
    category_changes: list[dict[str, Any]]
    problem: str = ""  # why the step could not be compared (different suites)

    @property
    def significant(self) -> bool:
        return self.grade is not None and _significant(self.grade)


@dataclass(frozen=True)
class Trend:
    runs: list[BenchRun]
    labels: list[str]
    steps: list[TrendStep]
    best: int | None  # index of the highest grade (the earliest one on a tie)
    best_vs_runner_up: PairedDifference | None
    runner_up: int | None


def _unique_labels(runs: list[BenchRun]) -> list[str]:
    labels = [run_label(r) for r in runs]
    if len(set(labels)) < len(labels):
        labels = [
            f"{label} ({Path(r.name).name})" if labels.count(label) > 1 else label
            for label, r in zip(labels, runs, strict=True)
        ]
    if len(set(labels)) < len(labels):
        labels = [f"{i + 1}. {label}" for i, label in enumerate(labels)]
    return labels


def _paired_step(before: BenchRun, after: BenchRun, seed: int) -> tuple[PairedComparison | None, str]:
    differences = suite_differences(before, after)
    if differences:
        return None, "suites differ: " + ", ".join(differences)
    try:
        _, _, comparison = compare_runs(before, after, seed=seed)
    except HessError as error:
        return None, str(error)
    return comparison, ""


def build_trend(run_dirs: Sequence[Path | str | BenchRun], seed: int = 0) -> Trend:
    """Load runs in the order given (checkpoint order) and compare each with the next."""
    if not run_dirs:
        raise HessError("--checkpoint: a trend needs at least one run")
    runs = [load_run(r) for r in run_dirs]
    steps = []
    for index in range(len(runs) - 1):
        comparison, problem = _paired_step(runs[index], runs[index + 1], seed)
        changes: list[dict[str, Any]] = []
        grade = None
        if comparison is not None:
            grade = comparison.grade
            names = sorted(comparison.categories)
            rows = [comparison.categories[n] for n in names]
            decisions = holm_tarone([d.p_value for d in rows], [d.min_p for d in rows], None, SIGNIFICANCE)
            changes = [
                {"key": n, "label": _label(n), "d": d, "p": format_p(d.p_value, decision.level)}
                for n, d, decision in zip(names, rows, decisions, strict=True)
                if decision.rejected
            ]
        steps.append(TrendStep(index, index + 1, grade, changes, problem))

    graded = [(i, r.grade) for i, r in enumerate(runs) if isinstance(r.grade, int | float)]
    best = max(graded, key=lambda pair: (pair[1], -pair[0]))[0] if graded else None
    runner_up = None
    versus = None
    if best is not None and len(graded) > 1:
        runner_up = max((p for p in graded if p[0] != best), key=lambda pair: (pair[1], -pair[0]))[0]
        comparison, _ = _paired_step(runs[runner_up], runs[best], seed)
        versus = comparison.grade if comparison is not None else None
    return Trend(runs, _unique_labels(runs), steps, best, versus, runner_up)


# Colours for category lines, picked one by one as far as possible (CIELAB distance) from those before
# them; every pair differs clearly on a white page (a test checks the distances).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#BCBD22", "#882255", "#000000", "#332288", "#7F7F7F", "#17BECF"]


def _nice_range(values: list[float], floor: float, ceiling: float) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = max(0.5, (high - low) * 0.15)
    return max(floor, low - pad), min(ceiling, high + pad)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    raw = (high - low) / count
    step = (
        next(s for s in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50) if s >= raw) if raw <= 50 else 50
    )
    first = (int(low / step) + (0 if low % step == 0 else 1)) * step
    ticks = []
    value = first
    while value <= high + 1e-9:
        ticks.append(round(value, 6))
        value += step
    return ticks


def line_chart(
    labels: list[str],
    series: list[dict[str, Any]],
    y_range: tuple[float, float],
    best: int | None = None,
    width: int = 760,
    height: int = 280,
) -> dict[str, Any]:
    """Pixel geometry of a line chart with CI whiskers, for the inline SVG in trend.html.

    ``series``: [{"name", "color", "values": [value or None], "cis": [[low, high] or None]}].
    Only numbers are computed here; the template escapes every label.
    """
    left, right, top, bottom = 52, 16, 16, 56
    inset = 48  # keeps the first and last checkpoint labels inside the frame
    low, high = y_range
    span = (high - low) or 1.0
    n = len(labels)
    plot_w, plot_h = width - left - right - 2 * inset, height - top - bottom

    def x_at(i: int) -> float:
        return left + inset + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y_at(v: float) -> float:
        clamped = min(high, max(low, v))
        return top + plot_h * (1 - (clamped - low) / span)

    drawn = []
    for s in series:
        dots, path = [], []
        for i, value in enumerate(s["values"]):
            if value is None:
                continue
            ci = s.get("cis", [None] * n)[i]
            x, y = round(x_at(i), 1), round(y_at(value), 1)
            path.append(f"{'M' if not path else 'L'}{x},{y}")
            dots.append(
                {
                    "x": x,
                    "y": y,
                    "value": value,
                    "label": labels[i],
                    "y_low": round(y_at(ci[0]), 1) if ci else None,
                    "y_high": round(y_at(ci[1]), 1) if ci else None,
                    "best": i == best,
                }
            )
        drawn.append({"name": s["name"], "color": s["color"], "path": " ".join(path), "dots": dots})
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": height - bottom,
        "y_ticks": [{"y": round(y_at(t), 1), "label": f"{t:g}"} for t in _ticks(low, high)],
        "x_ticks": [{"x": round(x_at(i), 1), "label": label} for i, label in enumerate(labels)],
        "series": drawn,
        "best": None if best is None else {"x": round(x_at(best), 1), "label": labels[best]},
    }


def trend_context(trend: Trend) -> dict[str, Any]:
    """Everything trend.html shows."""
    runs, labels = trend.runs, trend.labels
    categories = sorted({c for r in runs for c in r.categories})
    grades = [r.grade if isinstance(r.grade, int | float) else None for r in runs]
    grade_cis = [r.results.get("grade_ci") for r in runs]
    known = [g for g in grades if g is not None] + [v for ci in grade_cis if ci for v in ci if v is not None]
    grade_chart = line_chart(
        labels,
        [{"name": "Grade", "color": PALETTE[0], "values": grades, "cis": grade_cis}],
        _nice_range(known, 0, 20) if known else (0, 20),
        trend.best,
    )
    category_series = [
        {
            "name": category_label(name),
            "color": PALETTE[i % len(PALETTE)],
            "values": [(r.categories.get(name) or {}).get("score") for r in runs],
            "cis": [(r.categories.get(name) or {}).get("ci") for r in runs],
        }
        for i, name in enumerate(categories)
    ]
    category_chart = line_chart(labels, category_series, (0, 100), None)
    # Label each segment of the grade line with its paired change; significant steps stand out.
    by_label = {d["label"]: d for d in grade_chart["series"][0]["dots"]}
    grade_chart["steps"] = [
        {
            "x": (by_label[labels[s.before]]["x"] + by_label[labels[s.after]]["x"]) / 2,
            "y": (by_label[labels[s.before]]["y"] + by_label[labels[s.after]]["y"]) / 2 - 8,
            "text": f"{s.grade.diff:+.2f}{' *' if s.significant else ''}",
            "significant": s.significant,
        }
        for s in trend.steps
        if s.grade is not None and labels[s.before] in by_label and labels[s.after] in by_label
    ]
    points = []
    for i, run in enumerate(runs):
        training = (run.results.get("meta") or {}).get("training") or {}
        points.append(
            {
                "label": labels[i],
                "name": run.name,
                "grade": grades[i],
                "grade_ci": grade_cis[i],
                "mention": run.results.get("mention"),
                "epoch": training.get("epoch"),
                "step": training.get("step"),
                "val_loss": training.get("val_loss"),
                "categories": {c: run.categories.get(c) or {} for c in categories},
                "best": i == trend.best,
            }
        )
    steps = [
        {
            "before": labels[s.before],
            "after": labels[s.after],
            "d": s.grade,
            "significant": s.significant,
            "verdict": "" if s.grade is None else verdict(s.grade),
            "p": "" if s.grade is None else format_p(s.grade.p_value, SIGNIFICANCE),
            "direction": "flat"
            if s.grade is None
            else ("up" if s.grade.diff > 0 else "down" if s.grade.diff < 0 else "flat"),
            "changes": s.category_changes,
            "problem": s.problem,
        }
        for s in trend.steps
    ]
    epochs = [((r.results.get("meta") or {}).get("training") or {}).get("epoch") for r in runs]
    by_epoch = all(isinstance(e, int | float) for e in epochs) and epochs == sorted(epochs)
    return {
        "title": f"Trend over {len(runs)} checkpoints",
        "order": "By the epoch recorded in each checkpoint" if by_epoch and len(runs) > 1 else "In the order given",
        "points": points,
        "categories": [{"key": c, "label": category_label(c)} for c in categories],
        "steps": steps,
        "best": None if trend.best is None else labels[trend.best],
        "runner_up": None if trend.runner_up is None else labels[trend.runner_up],
        "best_vs_runner_up": trend.best_vs_runner_up,
        "best_vs_runner_up_p": ""
        if trend.best_vs_runner_up is None
        else format_p(trend.best_vs_runner_up.p_value, SIGNIFICANCE),
        "best_vs_runner_up_verdict": "" if trend.best_vs_runner_up is None else verdict(trend.best_vs_runner_up),
        "alpha": SIGNIFICANCE,
        "grade_chart": grade_chart,
        "category_chart": category_chart,
    }


def format_trend_table(trend: Trend) -> str:
    """The terminal view of a trend: one row per checkpoint, with its step from the previous one."""
    trainings = [((r.results.get("meta") or {}).get("training") or {}) for r in trend.runs]
    # Epoch / step only when a checkpoint recorded them: they say why the rows are in this order.
    show_epoch = any(t.get("epoch") is not None or t.get("step") is not None for t in trainings)
    width = max([28] + [len(label) + 1 for label in trend.labels])
    epoch_head = f" {'epoch':>5} {'step':>7}" if show_epoch else ""
    lines = [f"{'checkpoint':{width}}{epoch_head} {'grade':>7}  {'95% CI':<15} step from previous"]
    for i, run in enumerate(trend.runs):
        ci = run.results.get("grade_ci") or [None, None]
        ci_text = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if None not in ci else ""
        step = ""
        if i > 0:
            s = trend.steps[i - 1]
            if s.grade is None:
                step = f"not compared ({s.problem})" if s.problem else ""
            else:
                step_ci = s.grade.ci
                step_ci_text = "" if step_ci is None else f", CI [{step_ci[0]:+.2f}, {step_ci[1]:+.2f}]"
                step = (f"{s.grade.diff:+.2f} ({p_text(s.grade.p_value, SIGNIFICANCE)}{step_ci_text}, "
                        f"{verdict(s.grade)})")
        best = "  <- best" if i == trend.best else ""
        grade = f"{run.grade:7.2f}" if isinstance(run.grade, int | float) else f"{'-':>7}"
        epoch = ""
        if show_epoch:
            t = trainings[i]
            epoch = f" {_cell(t.get('epoch')):>5} {_cell(t.get('step')):>7}"
        lines.append(f"{trend.labels[i]:{width}}{epoch} {grade}  {ci_text:<15} {step}{best}".rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def write_trend(run_dirs: Sequence[Path | str | BenchRun], out_dir: Path, seed: int = 0) -> Path:
    """Write trend.html (and trend.json) for runs given in checkpoint order; return the page's path."""
    return write_trend_page(build_trend(run_dirs, seed=seed), out_dir)


def write_trend_page(trend: Trend, out_dir: Path) -> Path:
    """Write trend.html and trend.json for an already built trend; return the page's path."""
    out_dir = Path(out_dir)
    page = render_template(TREND_FILE, out_dir / TREND_FILE, **trend_context(trend))
    summary = {
        "best": None
        if trend.best is None
        else {"index": trend.best, "label": trend.labels[trend.best], "run": trend.runs[trend.best].name},
        "points": [
            {
                "label": label,
                "run": run.name,
                "checkpoint": (run.results.get("meta") or {}).get("checkpoint"),
                "epoch": ((run.results.get("meta") or {}).get("training") or {}).get("epoch"),
                "step": ((run.results.get("meta") or {}).get("training") or {}).get("step"),
                "grade": run.grade,
                "grade_ci": run.results.get("grade_ci"),
            }
            for label, run in zip(trend.labels, trend.runs, strict=True)
        ],
        "steps": [
            {
                "from": trend.labels[s.before],
                "to": trend.labels[s.after],
                "grade_diff": None if s.grade is None else s.grade.diff,
                "grade_ci": None if s.grade is None or s.grade.ci is None else list(s.grade.ci),
                "verdict": None if s.grade is None else verdict(s.grade),
                "p_value": None if s.grade is None else s.grade.p_value,
                "significant": s.significant,
                "problem": s.problem or None,
            }
            for s in trend.steps
        ],
    }
    (out_dir / TREND_JSON).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return page
