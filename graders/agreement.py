"""How well bench scores agree with human scores: rank correlations, same-item pair order,
calibration by quality band and mean absolute error, each with a seeded bootstrap interval.

Answers are grouped by item: several answers to one item are not independent (they share the
item's difficulty and checks), so intervals resample whole items, and the pairwise measure only
compares answers to the same item. Every function takes plain arrays, so the measurement can be
checked on hand-computed cases.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from graders.stats import percentile_interval

# Quality bands of the human score (in [0, 1]), lowest first: (name, lower bound inclusive).
# The upper bound of a band is the lower bound of the next; the last one includes 1.
LEVEL_BANDS: tuple[tuple[str, float], ...] = (
    ("bad", 0.0),
    ("poor", 0.15),
    ("partial", 0.35),
    ("good", 0.6),
    ("excellent", 0.85),
)
LEVELS = tuple(name for name, _ in LEVEL_BANDS)


def level_of(human: float) -> str:
    """The quality band of a human score in [0, 1]."""
    found = LEVEL_BANDS[0][0]
    for name, low in LEVEL_BANDS:
        if human >= low - 1e-9:
            found = name
    return found


def band_range(level: str) -> tuple[float, float]:
    """(low, high) human scores of a band; the top band includes 1."""
    names = [name for name, _ in LEVEL_BANDS]
    index = names.index(level)
    high = LEVEL_BANDS[index + 1][1] if index + 1 < len(LEVEL_BANDS) else 1.0
    return LEVEL_BANDS[index][1], high


def spearman(bench: Sequence[float], human: Sequence[float]) -> float:
    """Spearman's rho (ties get average ranks); nan when either side is constant or n < 2."""
    x, y = np.asarray(bench, dtype=float), np.asarray(human, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    # Imported here: scipy.stats takes seconds to import, and a bench run needs none of it.
    from scipy.stats import rankdata

    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def kendall(bench: Sequence[float], human: Sequence[float]) -> float:
    """Kendall's tau-b (corrects for ties on both sides); nan when undefined."""
    x, y = np.asarray(bench, dtype=float), np.asarray(human, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    from scipy.stats import kendalltau

    return float(kendalltau(x, y).statistic)


def pair_counts(bench: Sequence[float], human: Sequence[float]) -> tuple[float, int]:
    """(agreements, pairs) over the pairs of answers whose human scores differ.

    A pair counts 1 when the bench orders it as the humans do, 0 when it orders it the other
    way, and 0.5 when the bench gives both the same score (it could not tell them apart).
    """
    x, y = np.asarray(bench, dtype=float), np.asarray(human, dtype=float)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu(np.ones_like(dx, dtype=bool), k=1) & (dy != 0)
    agree = np.where(dx == 0, 0.5, (dx == dy).astype(float))
    return float(agree[upper].sum()), int(upper.sum())


def pairwise_accuracy(bench: Sequence[float], human: Sequence[float], items: Sequence[Hashable]) -> float:
    """Share of same-item answer pairs (human scores differing) that the bench orders the same way."""
    agree, total = _pair_table(np.asarray(bench, float), np.asarray(human, float), _codes(items))
    return float(agree.sum() / total.sum()) if total.sum() else float("nan")


def mean_absolute_error(bench: Sequence[float], human: Sequence[float]) -> float:
    x, y = np.asarray(bench, dtype=float), np.asarray(human, dtype=float)
    return float(np.abs(x - y).mean()) if len(x) else float("nan")


@dataclass(frozen=True)
class Estimate:
    """A measured value with its bootstrap interval (None when it cannot be measured)."""

    value: float | None
    ci: tuple[float, float] | None

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci": list(self.ci) if self.ci else None}


def _codes(items: Sequence[Hashable]) -> np.ndarray:
    index: dict[Hashable, int] = {}
    return np.fromiter((index.setdefault(i, len(index)) for i in items), dtype=np.int64, count=len(items))


def _pair_table(x: np.ndarray, y: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item: (agreements, pairs), so resampled totals are sums over the picked items."""
    n_items = int(codes.max()) + 1 if len(codes) else 0
    agree, total = np.zeros(n_items), np.zeros(n_items)
    for code in range(n_items):
        members = codes == code
        if members.sum() >= 2:
            agree[code], total[code] = pair_counts(x[members], y[members])
    return agree, total


def _finite(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


class ItemBootstrap:
    """Seeded resampling of whole items; every statistic of one report uses the same draws."""

    def __init__(self, items: Sequence[Hashable], n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> None:
        self.codes = _codes(items)
        self.n_items = int(self.codes.max()) + 1 if len(self.codes) else 0
        self.members = [np.flatnonzero(self.codes == c) for c in range(self.n_items)]
        self.level = level
        rng = np.random.default_rng(seed)
        self.picks = rng.integers(0, self.n_items, size=(n_boot, self.n_items)) if self.n_items else None
        self._indices: list[np.ndarray] | None = None

    def indices(self, draw: int) -> np.ndarray:
        """The answers of draw ``draw``: every answer of each picked item (an item picked twice counts twice)."""
        assert self.picks is not None
        if self._indices is None:
            self._indices = [np.concatenate([self.members[c] for c in row]) for row in self.picks]
        return self._indices[draw]

    def estimate(self, statistic: Callable[[np.ndarray], float], n: int) -> Estimate:
        """``statistic(indices)`` on all answers, with a percentile interval over the draws."""
        if self.picks is None:
            return Estimate(None, None)
        value = _finite(statistic(np.arange(n)))
        if value is None:
            return Estimate(None, None)
        draws = np.array([statistic(self.indices(d)) for d in range(len(self.picks))])
        draws = draws[np.isfinite(draws)]
        if len(draws) < len(self.picks) // 2:
            return Estimate(value, None)
        low, high = percentile_interval(draws, self.level)
        return Estimate(value, (round(low, 4), round(high, 4)))

    def pairwise(self, bench: np.ndarray, human: np.ndarray) -> Estimate:
        """Same-item pairwise accuracy; draws are sums of per-item counts (fast)."""
        if self.picks is None:
            return Estimate(None, None)
        agree, total = _pair_table(bench, human, self.codes)
        if total.sum() == 0:
            return Estimate(None, None)
        value = agree.sum() / total.sum()
        sums, counts = agree[self.picks].sum(axis=1), total[self.picks].sum(axis=1)
        draws = sums[counts > 0] / counts[counts > 0]
        low, high = percentile_interval(draws, self.level)
        return Estimate(_finite(value), (round(low, 4), round(high, 4)))


def agreement(
    bench: Sequence[float], human: Sequence[float], items: Sequence[Hashable], n_boot: int = 1000, seed: int = 0
) -> dict[str, object]:
    """Every agreement measure of one group of answers, with bootstrap intervals over items."""
    x, y = np.asarray(bench, dtype=float), np.asarray(human, dtype=float)
    boot = ItemBootstrap(items, n_boot=n_boot, seed=seed)
    bands = []
    levels = np.array([level_of(h) for h in y])
    for level in LEVELS:
        inside = levels == level
        if not inside.any():
            bands.append({"level": level, "n": 0, "bench": Estimate(None, None).as_dict(), "human": None})
            continue
        bench_mean = boot.estimate(lambda idx, inside=inside: _masked_mean(x, inside, idx), len(x))
        bands.append({"level": level, "range": list(band_range(level)), "n": int(inside.sum()),
                      "bench": bench_mean.as_dict(), "human": _finite(y[inside].mean())})
    return {
        "n_answers": int(len(x)),
        "n_items": boot.n_items,
        "spearman": boot.estimate(lambda idx: spearman(x[idx], y[idx]), len(x)).as_dict(),
        "kendall": boot.estimate(lambda idx: kendall(x[idx], y[idx]), len(x)).as_dict(),
        "pairwise": boot.pairwise(x, y).as_dict(),
        "mae": boot.estimate(lambda idx: mean_absolute_error(x[idx], y[idx]), len(x)).as_dict(),
        "bench_mean": _finite(x.mean()) if len(x) else None,
        "human_mean": _finite(y.mean()) if len(y) else None,
        "bands": bands,
    }


def _masked_mean(values: np.ndarray, mask: np.ndarray, idx: np.ndarray) -> float:
    picked = idx[mask[idx]]
    return float(values[picked].mean()) if len(picked) else float("nan")
