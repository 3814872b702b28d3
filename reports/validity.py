"""The validity page: how far the bench's item scores agree with careful human scores.

Numbers and chart geometry are computed here; every string (answers, explanations, item ids)
reaches the page through the template, which escapes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from graders.validity import GradedAnswer, disagreements, level_name
from reports.render import category_label, render_template

VALIDITY_PAGE = "validity.html"
SOURCE_COLORS = ("#2f6fdf", "#d9822b", "#7a4cc2", "#2c9a5a", "#c23b4b", "#5c6b7a")
_SIZE, _PAD = 240, 30


def scatter(points: Sequence[GradedAnswer], sources: Sequence[str]) -> dict[str, Any]:
    """A human (x) vs bench (y) scatter in a square of _SIZE, both axes 0-1, with the diagonal."""
    plot = _SIZE - 2 * _PAD

    def at(value: float) -> float:
        return round(_PAD + plot * min(1.0, max(0.0, value)), 1)

    dots = []
    for g in points:
        if g.human is None:
            continue
        dots.append({"x": at(g.human), "y": round(_SIZE - at(g.bench), 1),
                     "color": SOURCE_COLORS[sources.index(g.answer.source) % len(SOURCE_COLORS)],
                     "label": f"{g.answer.id} {g.answer.source}: human {g.human:.2f}, bench {g.bench:.2f}"})
    ticks = [{"value": f"{v:g}", "at": at(v), "y": round(_SIZE - at(v), 1)} for v in (0, 0.25, 0.5, 0.75, 1)]
    return {"size": _SIZE, "low": _PAD, "high": _SIZE - _PAD, "dots": dots, "ticks": ticks}


def page_context(report: Mapping[str, Any], graded: Sequence[GradedAnswer], split: str,
                 n_worst: int = 25) -> dict[str, Any]:
    labelled = [g for g in graded if g.human is not None]
    sources = sorted({g.answer.source for g in labelled})
    categories = []
    for name, group in report["categories"].items():
        members = [g for g in labelled if g.category == name]
        categories.append({"name": name, "label": category_label(name), "group": group,
                           "chart": scatter(members, sources)})
    worst = [{"id": g.answer.id, "item": g.answer.item, "category": g.category, "source": g.answer.source,
              "output": g.answer.output, "human": g.human, "level": level_name(g.human), "bench": g.bench,
              "explanation": g.explanation()} for g in disagreements(graded, n_worst)]
    return {
        "title": "Bench validity",
        "split": split,
        "report": report,
        "overall": report["overall"],
        "categories": categories,
        "legend": [{"source": s, "color": SOURCE_COLORS[i % len(SOURCE_COLORS)]} for i, s in enumerate(sources)],
        "worst": worst,
    }


def write_validity_page(report: Mapping[str, Any], graded: Sequence[GradedAnswer], split: str,
                        out_dir: Path) -> Path:
    return render_template(VALIDITY_PAGE, Path(out_dir) / VALIDITY_PAGE, **page_context(report, graded, split))
