"""From item scores to category scores (/100), criteria points and the grade (/20).

The rules (also in benchmarks/scoring.yaml):
- item score = mean of its samples; a missing answer scores 0;
- category score = 100 x mean of its item scores;
- criterion points = max x mean(category scores of the criterion present in the run) / 100;
- grade = sum of points; when whole criteria are absent (a run on some suites only) they get
  ``points: null`` and the grade is rescaled to the scale (20) over the criteria present;
  a run missing any scored category is flagged ``partial: true``;
- every interval is a seeded percentile bootstrap over items, resampled within categories.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from graders.stats import bootstrap_grade, percentile_interval
from hessgpt.errors import HessError

SCORING_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "scoring.yaml"
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Criterion:
    key: str
    label: str
    points: float
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Mention:
    min: float
    label: str


@dataclass(frozen=True)
class Scoring:
    scale: float
    criteria: tuple[Criterion, ...]
    mentions: tuple[Mention, ...]  # highest minimum first
    confidence_level: float = 0.95
    version: int = 1

    def mention_for(self, grade: float) -> str:
        """The highest mention whose minimum the grade (on ``scale``) reaches."""
        for mention in self.mentions:
            if grade >= mention.min:
                return mention.label
        return self.mentions[-1].label

    @property
    def categories(self) -> list[str]:
        return [c for criterion in self.criteria for c in criterion.categories]


# ---------------------------------------------------------------- loading


class _ScoringError(Exception):
    pass


def _number(where: str, value: Any, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _ScoringError(f"{where}: expected a number, got {value!r}")
    if (positive and value <= 0) or value < 0:
        raise _ScoringError(f"{where}: must be {'> 0' if positive else '>= 0'}, got {value}")
    return float(value)


def _label(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _ScoringError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _fields(where: str, raw: Any, required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _ScoringError(f"{where}: expected a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in required and key not in optional:
            raise _ScoringError(f"{where}{'.' if where else ''}{key}: unknown field")
    for key in required:
        if key not in raw:
            raise _ScoringError(f"{where}{'.' if where else ''}{key}: missing")
    return raw


def _criteria(raw: Any) -> tuple[Criterion, ...]:
    if not isinstance(raw, list) or not raw:
        raise _ScoringError("criteria: expected a non-empty list")
    criteria = []
    owner: dict[str, str] = {}
    for i, entry in enumerate(raw):
        where = f"criteria[{i}]"
        entry = _fields(where, entry, ("key", "label", "points", "categories"))
        key = entry["key"]
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise _ScoringError(f"{where}.key: expected a name like factual_precision, got {key!r}")
        if any(c.key == key for c in criteria):
            raise _ScoringError(f"{where}.key: duplicate criterion '{key}'")
        categories = entry["categories"]
        if not isinstance(categories, list) or not categories:
            raise _ScoringError(f"{where}.categories: expected a non-empty list of suite names")
        for j, category in enumerate(categories):
            if not isinstance(category, str) or not category:
                raise _ScoringError(f"{where}.categories[{j}]: expected a suite name, got {category!r}")
            if category in owner:
                raise _ScoringError(
                    f"{where}.categories[{j}]: '{category}' already counts for {owner[category]}"
                )
            owner[category] = key
        criteria.append(
            Criterion(
                key,
                _label(f"{where}.label", entry["label"]),
                _number(f"{where}.points", entry["points"]),
                tuple(categories),
            )
        )
    return tuple(criteria)


def _mentions(raw: Any) -> tuple[Mention, ...]:
    if not isinstance(raw, list) or not raw:
        raise _ScoringError("mentions: expected a non-empty list of {min, label}")
    mentions = []
    for i, entry in enumerate(raw):
        entry = _fields(f"mentions[{i}]", entry, ("min", "label"))
        mentions.append(
            Mention(
                _number(f"mentions[{i}].min", entry["min"], positive=False),
                _label(f"mentions[{i}].label", entry["label"]),
            )
        )
    minimums = [m.min for m in mentions]
    if len(set(minimums)) != len(minimums):
        raise _ScoringError("mentions: two mentions have the same min")
    if 0 not in minimums:
        raise _ScoringError("mentions: one mention needs min 0 so that every grade has a mention")
    return tuple(sorted(mentions, key=lambda m: -m.min))


def load_scoring(path: str | Path | None = None) -> Scoring:
    """Read and validate a scoring file (default: benchmarks/scoring.yaml)."""
    path = Path(path) if path is not None else SCORING_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HessError(f"{path}: cannot read scoring file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise HessError(f"{path}: {line}YAML syntax error: {getattr(exc, 'problem', None) or exc}") from None
    try:
        data = _fields("", data, ("criteria", "mentions"), ("version", "scale", "confidence_level"))
        criteria = _criteria(data["criteria"])
        scale = _number("scale", data.get("scale", 20))
        total = sum(c.points for c in criteria)
        if not math.isclose(total, scale):
            raise _ScoringError(f"criteria: points add up to {total:g}, expected the scale {scale:g}")
        level = _number("confidence_level", data.get("confidence_level", 0.95))
        if level >= 1:
            raise _ScoringError(f"confidence_level: must be below 1, got {level}")
        version = data.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int):
            raise _ScoringError(f"version: expected an integer, got {version!r}")
        mentions = _mentions(data["mentions"])
    except _ScoringError as exc:
        raise HessError(f"{path}: {exc}") from None
    return Scoring(scale, criteria, mentions, level, version)


# ---------------------------------------------------------------- aggregation


@dataclass
class _ItemTally:
    category: str
    scores: list[float]
    all_missing: bool = True


def _tally(rows: Iterable[Mapping[str, Any]]) -> dict[str, _ItemTally]:
    items: dict[str, _ItemTally] = {}
    for row in rows:
        item_id, category = str(row["id"]), str(row["category"])
        missing = bool(row.get("missing"))
        score = row.get("score")
        if not missing and (score is None or not math.isfinite(float(score))):
            raise ValueError(f"item {item_id}: answered but has no score")
        tally = items.setdefault(item_id, _ItemTally(category, []))
        if tally.category != category:
            raise ValueError(
                f"item {item_id}: rows disagree on its category ({tally.category} vs {category})"
            )
        tally.scores.append(0.0 if missing else float(score))
        tally.all_missing = tally.all_missing and missing
    return items


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def _interval(draws: np.ndarray | None, level: float, factor: float = 1.0) -> list[float] | None:
    if draws is None:
        return None
    low, high = percentile_interval(draws * factor, level)
    return [_round(low), _round(high)]


def aggregate(
    item_rows: Iterable[Mapping[str, Any]],
    scoring: Scoring,
    seed: int = 0,
    n_boot: int = 2000,
    suites: Iterable[Any] | None = None,
) -> dict[str, Any]:
    """The ``grade``, ``grade_ci``, ``mention``, ``partial``, ``criteria`` and ``categories``
    blocks of results.json.

    ``item_rows`` are dicts with at least id, category, score and missing (one row per sample).
    ``suites`` (optional, objects with name, version, sha256, items) adds each category's suite
    hash and version, and counts suite items that have no row at all as missing.
    ``n_boot=0`` skips the intervals (they are then null).
    """
    items = _tally(item_rows)
    suite_info: dict[str, Any] = {}
    for suite in suites or ():
        suite_info[suite.name] = suite
        for suite_item in suite.items:
            if suite_item.id not in items:
                items[suite_item.id] = _ItemTally(suite.name, [0.0])
    if not items:
        raise HessError("no items to score: the run produced no answers and no suite was given")

    by_category: dict[str, list[float]] = {}
    missing_count: dict[str, int] = {}
    for tally in items.values():
        by_category.setdefault(tally.category, []).append(sum(tally.scores) / len(tally.scores))
        missing_count[tally.category] = missing_count.get(tally.category, 0) + int(tally.all_missing)
    known_order = [c for c in scoring.categories if c in by_category]
    order = known_order + sorted(c for c in by_category if c not in known_order)
    means = {c: float(np.mean(by_category[c])) for c in order}

    present = [(criterion, [c for c in criterion.categories if c in means]) for criterion in scoring.criteria]
    present = [(criterion, cats) for criterion, cats in present if cats]
    present_max = sum(criterion.points for criterion, _ in present)
    factor = scoring.scale / present_max if present_max else 0.0

    def points(category_means: Mapping[str, Any], criterion: Criterion, cats: list[str]) -> Any:
        return criterion.points * sum(category_means[c] for c in cats) / len(cats)

    def grade_of(category_means: Mapping[str, Any]) -> Any:
        return factor * sum(points(category_means, criterion, cats) for criterion, cats in present)

    draws: dict[str, np.ndarray] = {}
    grade_draws = None
    if n_boot > 0:
        grade_draws, draws = bootstrap_grade(
            {c: by_category[c] for c in order},
            lambda m: grade_of(m) if present else np.zeros(n_boot),
            n_boot,
            seed,
        )
    level = scoring.confidence_level

    categories = {}
    for category in order:
        suite = suite_info.get(category)
        categories[category] = {
            "score": _round(100 * means[category]),
            "ci": _interval(draws.get(category), level, 100.0),
            "n_items": len(by_category[category]),
            "n_missing": missing_count[category],
            "suite_hash": getattr(suite, "sha256", None),
            "suite_version": getattr(suite, "version", None),
        }

    present_cats = {criterion.key: cats for criterion, cats in present}
    criteria = []
    for criterion in scoring.criteria:
        cats = present_cats.get(criterion.key)
        top = int(criterion.points) if float(criterion.points).is_integer() else criterion.points
        entry: dict[str, Any] = {"key": criterion.key, "label": criterion.label, "points": None, "max": top}
        entry["ci"] = None
        if cats:
            entry["points"] = _round(points(means, criterion, cats))
            entry["ci"] = _interval(points(draws, criterion, cats), level) if draws else None
        entry["categories"] = list(criterion.categories)
        criteria.append(entry)

    grade = _round(grade_of(means)) if present else None
    return {
        "grade": grade,
        "grade_ci": _interval(grade_draws, level) if present else None,
        "mention": scoring.mention_for(grade) if grade is not None else None,
        # Partial as soon as one scored category is absent, even if its criterion still has points.
        "partial": any(c not in means for c in scoring.categories),
        "criteria": criteria,
        "categories": categories,
    }
