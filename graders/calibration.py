"""Calibration: a monotone map from the checks' raw item score to the score careful humans give.

The checks rank answers well but not on the humans' scale: a raw 0.6 is, for a careful reader,
often a poor answer. ``benchmarks/calibration.yaml`` holds, per category, a piecewise-linear,
strictly increasing map fitted on the development split of the labelled validity set
(``bench.py validity --fit-calibration``): isotonic regression of the human score on the raw
score, read at fixed knots. Being strictly increasing, the map never changes how two answers of
a category are ordered; it changes what a score means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from hessgpt.errors import HessError

CALIBRATION_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "calibration.yaml"
KNOTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
_MIN_STEP = 0.002  # between knots, so the map stays strictly increasing (no new ties)
_MIN_POINTS = 15  # fewer labelled answers in a category: it uses the map of all categories


def isotonic(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators: the non-decreasing step fit of y on x, as (distinct x, fitted y)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    keys, inverse = np.unique(xs, return_inverse=True)
    sums = np.bincount(inverse, weights=ys)
    counts = np.bincount(inverse).astype(float)
    blocks: list[list[float]] = []  # [sum, count, first key index, last key index]
    for i in range(len(keys)):
        blocks.append([sums[i], counts[i], i, i])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c, _, last = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
            blocks[-1][3] = last
    fitted = np.empty(len(keys))
    for s, c, first, last in blocks:
        fitted[int(first):int(last) + 1] = s / c
    return keys, fitted


def fit_map(raw: Sequence[float], human: Sequence[float], knots: Sequence[float] = KNOTS) -> list[list[float]]:
    """[[knot, value], ...]: the isotonic fit read at each knot (linear between fitted points,
    flat outside them), then made strictly increasing and kept in [0, 1]. A raw 0 stays 0: an
    answer that meets nothing of the task earns nothing, whatever the map."""
    keys, fitted = isotonic(raw, human)
    values = np.interp(np.asarray(knots, dtype=float), keys, fitted)
    values[0] = 0.0
    for i in range(1, len(values)):
        values[i] = max(values[i], values[i - 1] + _MIN_STEP)
    values = np.clip(values, 0.0, 1.0)
    # Clipping at 1 could flatten the top: pull the upper knots down to keep the map increasing.
    for i in range(len(values) - 2, -1, -1):
        values[i] = min(values[i], values[i + 1] - _MIN_STEP)
    values[0] = 0.0
    return [[float(k), round(float(v), 4)] for k, v in zip(knots, values, strict=True)]


def fit_maps(raw: Sequence[float], human: Sequence[float], categories: Sequence[str]) -> dict[str, list[list[float]]]:
    """One map per category: its own fit with enough labelled answers, else the fit of all answers."""
    overall = fit_map(raw, human)
    maps = {}
    for category in sorted(set(categories)):
        picked = [i for i, c in enumerate(categories) if c == category]
        maps[category] = fit_map([raw[i] for i in picked], [human[i] for i in picked]) \
            if len(picked) >= _MIN_POINTS else overall
    return maps


def apply_map(points: Sequence[Sequence[float]], raw: float) -> float:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return float(np.interp(raw, xs, ys))


def _validate(data: object, path: Path) -> dict[str, list[list[float]]]:
    if not isinstance(data, dict) or not isinstance(data.get("maps"), dict):
        raise HessError(f"{path}: expected a mapping with 'maps'")
    maps = {}
    for name, points in data["maps"].items():
        where = f"{path}: maps.{name}"
        if not isinstance(points, list) or len(points) < 2:
            raise HessError(f"{where}: expected a list of at least two [raw, calibrated] points")
        for point in points:
            if (not isinstance(point, list) or len(point) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in point)):
                raise HessError(f"{where}: each point must be [raw, calibrated] with both in [0, 1], got {point!r}")
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if any(b <= a for a, b in zip(xs, xs[1:], strict=False)) or any(b < a for a, b in zip(ys, ys[1:], strict=False)):
            raise HessError(f"{where}: raw scores must increase and calibrated scores must not decrease")
        maps[str(name)] = [[float(x), float(y)] for x, y in points]
    return maps


@lru_cache(maxsize=4)
def load_maps(path: Path = CALIBRATION_PATH) -> Mapping[str, list[list[float]]]:
    """The shipped maps; none (identity) when the file does not exist."""
    if not path.exists():
        return {}
    return _validate(yaml.safe_load(path.read_text(encoding="utf-8")), path)


def calibrate(category: str, raw: float, maps: Mapping[str, list[list[float]]] | None = None) -> float:
    """The calibrated score of a raw item score (identity for a category without a map)."""
    maps = load_maps() if maps is None else maps
    points = maps.get(category)
    return raw if points is None else round(apply_map(points, raw), 4)


def write_maps(maps: Mapping[str, list[list[float]]], path: Path, note: str) -> None:
    header = "".join(f"# {line}\n" for line in note.splitlines())
    path.write_text(header + yaml.safe_dump({"version": 1, "maps": dict(maps)}, sort_keys=False,
                                            default_flow_style=None), encoding="utf-8")
    load_maps.cache_clear()
