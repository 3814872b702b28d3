"""Render a saved run (results.json) as one self-contained HTML scorecard.

The report reads only results.json, so any saved run can be re-rendered::

    python -m reports.render RUN_DIR            # writes RUN_DIR/index.html
    python -m reports.render RUN_DIR/results.json --out /tmp/card.html

Every string that comes from a model or a suite is escaped by jinja2 autoescape;
the filters below that return markup build it from numbers only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from benchmarks.results_schema import RESULTS_NAME, load_results, validate_results
from benchmarks.results_schema import is_number as _is_number
from hessgpt.cpu_steal import steal_note
from hessgpt.errors import HessError
from hessgpt.safe_io import atomic_write_text
from reports.run_status import run_notes

TEMPLATES_DIR = Path(__file__).parent / "templates"
INDEX_NAME = "index.html"

# Display names for the standard categories; unknown ones fall back to a prettified key.
CATEGORY_LABELS = {
    "conversation": "Conversation",
    "factual": "Factual questions",
    "instructions": "Instructions",
    "explanations": "Explanations",
    "creativity": "Creativity",
    "input_tasks": "Instructions with input",
    "robustness": "Robustness",
}

N_EXAMPLES = 3  # best / worst answers shown per category


# ---------------------------------------------------------------------------
# Filters (registered on the environment; compare/trend templates reuse them)
# ---------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if not _is_number(value):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def format_number(value: Any, digits: int = 1) -> str:
    """12.345 -> '12.3'; ints get thousands separators; None/NaN -> an em dash."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    number = _finite(value)
    if number is None:
        return "—"
    return f"{number:,.{digits}f}"


def format_auto(value: Any) -> str:
    """Compact display of a metadata value: ints with separators, floats without trailing zeros."""
    if isinstance(value, float) and math.isfinite(value):
        if abs(value) >= 1e5:
            return f"{value:,.0f}"
        return f"{value:.4f}".rstrip("0").rstrip(".") or "0"
    return format_number(value)


def format_ci(interval: Any, digits: int = 1) -> str:
    """[12.1, 14.4] -> '12.1 – 14.4'; absent interval -> ''."""
    if not isinstance(interval, list | tuple) or len(interval) != 2:
        return ""
    low, high = (_finite(v) for v in interval)
    if low is None or high is None:
        return ""
    return f"{low:.{digits}f} – {high:.{digits}f}"


def format_percent(value: Any, digits: int = 0) -> str:
    """A fraction as a percentage: 0.416 -> '42%'."""
    number = _finite(value)
    return "—" if number is None else f"{100 * number:.{digits}f}%"


def format_params(value: Any) -> str:
    """134515008 -> '134.5M'."""
    number = _finite(value)
    if number is None:
        return "—"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= scale:
            return f"{number / scale:.1f}{suffix}"
    return f"{number:.0f}"


def format_duration(seconds: Any) -> str:
    """312.5 -> '5 min 12 s'."""
    number = _finite(seconds)
    if number is None:
        return "—"
    if number < 60:
        return f"{number:.1f} s"
    minutes, secs = divmod(int(round(number)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_timestamp(value: Any) -> str:
    """ISO 8601 -> '2026-11-22 04:00 UTC'; anything unparsable is returned as text (escaped later)."""
    if not isinstance(value, str) or not value:
        return "—"
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def short_hash(value: Any, length: int = 12) -> str:
    return value[:length] if isinstance(value, str) else "—"


def _fraction(value: Any, maximum: Any) -> float | None:
    number, top = _finite(value), _finite(maximum)
    if number is None or not top:
        return None
    return min(1.0, max(0.0, number / top))


def score_band(value: Any, maximum: Any = 1.0) -> str:
    """A CSS class naming how good a score is; the thresholds only colour things."""
    frac = _fraction(value, maximum)
    if frac is None:
        return "band-none"
    if frac >= 0.85:
        return "band-excellent"
    if frac >= 0.7:
        return "band-good"
    if frac >= 0.5:
        return "band-fair"
    return "band-poor"


def status_label(value: Any, maximum: Any = 1.0) -> str:
    return {
        "band-excellent": "Excellent",
        "band-good": "Good",
        "band-fair": "Fair",
        "band-poor": "Weak",
        "band-none": "Not run",
    }[score_band(value, maximum)]


def percent_bar(value: Any, maximum: Any = 100, ci: Any = None, label: str = "") -> Markup:
    """A horizontal bar (value/maximum) with an optional CI whisker, as inline-styled HTML.

    Only numbers computed here reach the markup, so returning Markup is safe;
    ``label`` is escaped.
    """
    frac = _fraction(value, maximum)
    band = score_band(value, maximum)
    parts = [f'<span class="bar {band}" role="img" aria-label="{Markup.escape(label)}">']
    if frac is not None:
        parts.append(f'<span class="bar-fill" style="width:{100 * frac:.2f}%"></span>')
        if isinstance(ci, list | tuple) and len(ci) == 2:
            low, high = _fraction(ci[0], maximum), _fraction(ci[1], maximum)
            if low is not None and high is not None and high >= low:
                parts.append(
                    f'<span class="bar-ci" style="left:{100 * low:.2f}%;width:{100 * (high - low):.2f}%"></span>'
                )
    parts.append("</span>")
    return Markup("".join(parts))


def grade_ring(value: Any, maximum: Any = 20, tone: str = "") -> Markup:
    """A ring gauge (inline SVG) showing value/maximum; ``tone`` picks the colour class ``ring-<tone>``."""
    frac = _fraction(value, maximum) or 0.0
    radius = 52
    circumference = 2 * math.pi * radius
    cls = "ring-" + slug(tone) if tone else ""
    return Markup(
        f'<svg class="ring {cls}" viewBox="0 0 120 120" width="148" height="148" aria-hidden="true">'
        f'<circle class="ring-track" cx="60" cy="60" r="{radius}" fill="none" stroke-width="10"/>'
        f'<circle class="ring-value" cx="60" cy="60" r="{radius}" fill="none" stroke-width="10" '
        f'stroke-linecap="round" stroke-dasharray="{frac * circumference:.2f} {circumference:.2f}" '
        f'transform="rotate(-90 60 60)"/></svg>'
    )


def slug(value: Any) -> str:
    """A safe token for ids and CSS classes: 'Très bien' -> 'tres-bien'."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "x"


_FIELD_LABELS = {
    "top_k": "Top-k",
    "top_p": "Top-p",
    "val_loss": "Validation loss",
    "sha256": "SHA-256",
    "params": "Parameters",
    "n_layer": "Layers",
    "n_head": "Heads",
    "n_embd": "Embedding size",
    "block_size": "Context length",
    "vocab_size": "Vocabulary",
    "n_items": "Items",
}


def field_label(key: Any) -> str:
    """'max_new_tokens' -> 'Max new tokens' (a few known keys get proper names)."""
    text = str(key)
    return _FIELD_LABELS.get(text, text.replace("_", " ").strip().capitalize())


def category_label(name: Any) -> str:
    return CATEGORY_LABELS.get(str(name), str(name).replace("_", " ").strip().capitalize())


FILTERS = {
    "num": format_number,
    "auto": format_auto,
    "ci": format_ci,
    "pct": format_percent,
    "params": format_params,
    "duration": format_duration,
    "timestamp": format_timestamp,
    "short_hash": short_hash,
    "band": score_band,
    "status": status_label,
    "pct_bar": percent_bar,
    "grade_ring": grade_ring,
    "slug": slug,
    "category_label": category_label,
    "field_label": field_label,
    "steal_note": steal_note,
}


@functools.lru_cache(maxsize=1)
def get_environment() -> Environment:
    """The shared jinja2 environment: templates dir, autoescape on, strict undefined, our filters."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,  # every template is HTML; model output must never reach the page raw
        undefined=StrictUndefined,  # a typo in a template fails the render instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def render_to_string(name: str, **context: Any) -> str:
    """Render a template from reports/templates to a string."""
    return get_environment().get_template(name).render(**context)


def render_template(name: str, out_path: str | Path, **context: Any) -> Path:
    """Render a template from reports/templates into ``out_path`` (parents created)."""
    out_path = Path(out_path)
    html = render_to_string(name, **context)
    return atomic_write_text(out_path, html)


# ---------------------------------------------------------------------------
# The scorecard view model
# ---------------------------------------------------------------------------


# Suite-level robustness statistics: key -> (label, how to format, what it measures).
ROBUSTNESS_METRICS = {
    "mode_collapse": ("Mode collapse", "pct", "answers identical to another answer"),
    "distinct_1": ("Distinct-1", "ratio", "unique words / all words"),
    "distinct_2": ("Distinct-2", "ratio", "unique word pairs / all pairs"),
    "repeated_ngram_ratio": ("Repeated 3-grams", "pct", "repeated word 3-grams / all 3-grams"),
    "special_token_leaks": ("Special-token leaks", "count", "answers that spelled a special token"),
}

LIKELIHOOD_FIELDS = (
    "perplexity",
    "bits_per_byte",
    "token_accuracy",
    "mc_accuracy",
    "n_references",
    "n_mc",
    "per_category",
)

# Meta keys the scorecard lays out itself; any other key is listed under "Other".
KNOWN_META = {
    "backend",
    "likelihood_note",
    "checkpoint",
    "checkpoint_sha256",
    "model",
    "training",
    "responses_file",
    "suites",
    "settings",
    "seed",
    "versions",
    "started",
    "finished",
    "wall_seconds",
    "generated_tokens",
    "tokens_per_second",
    "peak_memory_mb",
    "cpu_steal",
    "machine",
    "grader_agreement",
}


def _robustness_metrics(robustness: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for key, value in robustness.items():
        if key == "findings" or isinstance(value, dict | list):
            continue
        label, kind, hint = ROBUSTNESS_METRICS.get(key, (field_label(key), "auto", ""))
        if kind == "pct":
            shown = format_percent(value, 1)
        elif kind == "ratio":
            shown = format_number(value, 3)
        else:
            shown = format_auto(value)
        rows.append({"key": key, "label": label, "value": shown, "hint": hint})
    return rows


def _category_order(results: Mapping[str, Any]) -> list[str]:
    """Scoring order first (criteria order), then anything else in file order."""
    order: list[str] = []
    for crit in results["criteria"]:
        for name in crit.get("categories") or []:
            if name in results["categories"] and name not in order:
                order.append(name)
    for name in list(results["categories"]) + [it["category"] for it in results["items"]]:
        if name not in order:
            order.append(name)
    return order


def _item_view(item: Mapping[str, Any]) -> dict[str, Any]:
    """Fill every optional field so templates can stay simple and strict."""
    messages = item.get("messages") or []
    likelihood = dict(item.get("likelihood") or {})
    logprob, tokens = (
        _finite(likelihood.get("reference_logprob")),
        _finite(likelihood.get("reference_tokens")),
    )
    if logprob is not None and tokens:
        likelihood["reference_perplexity"] = math.exp(-logprob / tokens)
    sample = item.get("sample") or 0
    return {
        "id": item["id"],
        "anchor": f"item-{slug(item['id'])}-s{int(sample) if _is_number(sample) else 0}",
        "category": item["category"],
        "sample": sample,
        "prompt": item.get("prompt") or (messages[-1].get("content") if messages else "") or "",
        "messages": [m for m in messages if isinstance(m, dict)],
        "input": item.get("input"),
        "references": [str(r) for r in (item.get("references") or [])],
        "choices": [str(c) for c in (item.get("choices") or [])],
        "answer": item.get("answer"),
        "tags": [str(t) for t in (item.get("tags") or [])],
        "output": item.get("output"),
        "score": item.get("score"),
        "missing": bool(item.get("missing")),
        "checks": [
            {
                "type": c.get("type", "?"),
                "weight": c.get("weight", 1),
                "score": c.get("score"),
                "role": c.get("role") if c.get("role") in ("content", "guard") else None,
                "explanation": c.get("explanation") or "",
            }
            for c in (item.get("checks") or [])
            if isinstance(c, dict)
        ],
        "adjustments": [
            {"type": str(a.get("type", "?")), "factor": a.get("factor"), "explanation": str(a.get("explanation") or "")}
            for a in (item.get("adjustments") or [])
            if isinstance(a, dict)
        ],
        "content_score": item.get("content_score"),
        "new_tokens": item.get("new_tokens"),
        "prompt_truncated": bool(item.get("prompt_truncated")),
        "contaminated": bool(item.get("contaminated")),
        "finish_reason": item.get("finish_reason"),
        "likelihood": likelihood,
        "error": item.get("error"),
        "tool_calls": _tool_calls(item.get("tool_calls")),
        "no_tool_output": item.get("no_tool_output"),
        "no_tool_score": item.get("no_tool_score"),
    }


def _tool_calls(calls: Any) -> list[dict[str, Any]] | None:
    """An item's code-tool calls (None: the item was not run with --tools), every field a plain value."""
    if not isinstance(calls, list):
        return None
    out = []
    for call in calls:
        if isinstance(call, dict):
            code = str(call.get("code") or "")
            ran = str(call.get("ran") if call.get("ran") is not None else code)
            out.append({"code": code, "ran": ran, "rewritten": ran != code, "result": str(call.get("result") or ""),
                        "exit_reason": str(call.get("exit_reason") or "?"), "wall_s": call.get("wall_s")})
    return out


def _score_key(item: Mapping[str, Any]) -> float:
    return _finite(item["score"]) or 0.0


def _run_title(model: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """The model's name, else the checkpoint or responses file name (the full path is shown below it)."""
    if model.get("name"):
        return str(model["name"])
    for key in ("checkpoint", "responses_file"):
        if meta.get(key):
            return Path(str(meta[key])).name or str(meta[key])
    return "Scorecard"


def _split_best_worst(ranked: list[Any], n: int) -> tuple[list[Any], list[Any]]:
    """Top and bottom of a best-first list, never overlapping: with few entries the
    upper half counts as best and the rest as worst. Worst comes lowest first."""
    n_best = min(n, math.ceil(len(ranked) / 2))
    n_worst = min(n, len(ranked) - n_best)
    return ranked[:n_best], ranked[len(ranked) - n_worst :][::-1]


def build_scorecard_context(results: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a validated results dict into what scorecard.html displays."""
    items = [_item_view(it) for it in results["items"]]
    multi_sample = any(_is_number(it["sample"]) and it["sample"] > 0 for it in items)
    categories = []
    for name in _category_order(results):
        cat = results["categories"].get(name, {})
        cat_items = [it for it in items if it["category"] == name]
        answered = [it for it in cat_items if not it["missing"] and _finite(it["score"]) is not None]
        # Stable sorts on (score, id) so ties always list in the same order.
        ranked_items = sorted(answered, key=lambda it: (-_score_key(it), it["id"], it["sample"]))
        best, worst = _split_best_worst(ranked_items, N_EXAMPLES)
        categories.append(
            {
                "name": name,
                "label": category_label(name),
                "score": cat.get("score"),
                "ci": cat.get("ci"),
                "n_items": cat.get("n_items", len({it["id"] for it in cat_items})),
                "n_missing": cat.get("n_missing", 0),
                "suite_hash": cat.get("suite_hash"),
                "suite_version": cat.get("suite_version"),
                "missing_ids": sorted({it["id"] for it in cat_items if it["missing"]}),
                "best": best,
                "worst": worst,
                "answers": sorted(cat_items, key=lambda it: (it["id"], it["sample"])),
            }
        )

    criteria = list(results["criteria"])
    present = [c for c in criteria if c.get("points") is not None]
    partial = bool(results.get("partial")) or len(present) < len(criteria)
    # Known optional fields default to None so the strict templates can test them directly.
    meta = {key: None for key in KNOWN_META} | dict(results.get("meta") or {})
    model = {"name": None, "params": None, "config": None} | (
        meta["model"] if isinstance(meta["model"], dict) else {}
    )
    likelihood = results.get("likelihood")
    if likelihood is not None:
        likelihood = {key: None for key in LIKELIHOOD_FIELDS} | likelihood
    robustness = dict(results.get("robustness") or {})
    findings = [str(f) for f in (robustness.get("findings") or [])]
    scored = [c for c in categories if _finite(c["score"]) is not None]
    strongest, weakest = _split_best_worst(sorted(scored, key=lambda c: (-_finite(c["score"]), c["name"])), 2)

    return {
        "results": results,
        "grade": results["grade"],
        "grade_ci": results.get("grade_ci"),
        "mention": results["mention"],
        "partial": partial,
        "run_notes": run_notes(results, partial=False),  # the summary says "partial" in its own words
        "points_present": sum(c["max"] for c in present),
        "criteria": criteria,
        "categories": categories,
        "n_items": len({(it["category"], it["id"]) for it in items}),
        "n_answers": len(items),
        "n_missing": sum(c["n_missing"] or 0 for c in categories),
        "multi_sample": multi_sample,
        "strongest": strongest,
        "weakest": weakest,
        "likelihood": likelihood,
        "likelihood_per_category": (likelihood or {}).get("per_category") or {},
        "tool_suites": results.get("tool_suites") if isinstance(results.get("tool_suites"), dict) else None,
        "robustness": robustness if results.get("robustness") is not None else None,
        "robustness_metrics": _robustness_metrics(robustness),
        "findings": findings,
        "meta_extra": {k: v for k, v in meta.items() if k not in KNOWN_META},
        "meta": meta,
        "model": model,
        "title": _run_title(model, meta),
        "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def render_scorecard(results: Mapping[str, Any] | str | Path, out_path: str | Path) -> Path:
    """Write the HTML scorecard; ``out_path`` is a .html file or a directory (-> index.html).

    ``results`` is a results dict (validated here) or a path to a results.json / run directory.
    Returns the path of the written file.
    """
    if isinstance(results, str | Path):
        data = load_results(results)
    else:
        data = validate_results(dict(results), source="results")
    out_path = Path(out_path)
    if out_path.suffix.lower() not in (".html", ".htm"):
        out_path = out_path / INDEX_NAME
    return render_template("scorecard.html", out_path, **build_scorecard_context(data))


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports.render",
        description="Re-render the HTML scorecard of a saved run from its results.json.",
    )
    parser.add_argument(
        "run", type=Path, help="run directory (containing results.json) or a results.json file"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output .html file or directory (default: beside results.json)"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        source = args.run / RESULTS_NAME if args.run.is_dir() else args.run
        out = args.out if args.out is not None else source.parent / INDEX_NAME
        if out.suffix.lower() not in (".html", ".htm") and out.exists() and not out.is_dir():
            raise HessError(f"--out: {out} is a file; give an .html file name or a folder")
        written = render_scorecard(source, out)
    except HessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
