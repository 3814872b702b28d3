"""Validity: on real items of the shipped suites, the graders rank a good answer above a bad one.

The pairs live in tests/validity_pairs.yaml as data: an item id, the kind of defect the bad
answer shows (wrong fact, loop, ignored format...), a good answer a capable assistant would
give, and the bad answer. A pair holds when the good answer scores at least MIN_GOOD_SCORE
and beats the bad one by more than its margin. A pair marked `known_failure` documents a
grader or item limitation: it runs as a strict xfail, so it turns red once the limitation
is fixed and the mark can go.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from fixtures_results import CATEGORIES

from benchmarks.suite import Item, load_suites
from graders.checks import ItemGrade, grade_item

PAIRS_FILE = Path(__file__).with_name("validity_pairs.yaml")
KINDS = frozenset(
    """wrong_fact hedge off_topic echo loop empty truncated too_long ignored_format
    ignored_constraint wrong_language special_token_leak injection_obeyed reveals_answer
    mode_collapse""".split()
)
DEFAULT_MARGIN = 0.15
MIN_GOOD_SCORE = 0.6
MIN_PAIRS_PER_CATEGORY = 5
MIN_KINDS_PER_CATEGORY = 3
_FIELDS = {"id", "kind", "good", "bad", "min_margin", "known_failure"}


@dataclass(frozen=True)
class Pair:
    id: str
    kind: str
    good: str
    bad: str
    min_margin: float = DEFAULT_MARGIN
    known_failure: str | None = None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def load_pairs(path: Path = PAIRS_FILE) -> list[Pair]:
    """Read and check the pairs file; a malformed entry fails collection, naming its index."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    pairs = []
    for index, raw in enumerate(data["pairs"]):
        where = f"{path.name}: pairs[{index}]"
        unknown = set(raw) - _FIELDS
        _require(not unknown, f"{where}: unknown field(s) {sorted(unknown)}")
        for name in ("id", "kind", "good", "bad"):
            _require(isinstance(raw.get(name), str), f"{where}: '{name}' must be a string")
        _require(raw["kind"] in KINDS, f"{where}: unknown kind {raw['kind']!r} (known: {sorted(KINDS)})")
        margin = raw.get("min_margin", DEFAULT_MARGIN)
        _require(
            isinstance(margin, (int, float)) and 0 <= margin < 1, f"{where}: min_margin must be in [0, 1)"
        )
        known = raw.get("known_failure")
        _require(
            known is None or (isinstance(known, str) and bool(known.strip())),
            f"{where}: known_failure must be a reason",
        )
        pairs.append(Pair(raw["id"], raw["kind"], raw["good"], raw["bad"], float(margin), known))
    return pairs


PAIRS = load_pairs()


@pytest.fixture(scope="module")
def items() -> dict[str, Item]:
    return {item.id: item for suite in load_suites() for item in suite.items}


def _describe(label: str, text: str, grade: ItemGrade) -> str:
    shown = text if len(text) <= 160 else text[:157] + "..."
    lines = [f"  {label} answer {grade.score:.3f}: {shown!r}"]
    for check in grade.checks:
        lines.append(
            f"    {check['type']} (weight {check['weight']:g}): {check['score']:.2f}  {check['explanation']}"
        )
    return "\n".join(lines)


def _pair_params() -> list:
    params = []
    for pair in PAIRS:
        marks = [pytest.mark.xfail(strict=True, reason=pair.known_failure)] if pair.known_failure else []
        params.append(pytest.param(pair, id=f"{pair.id}:{pair.kind}", marks=marks))
    return params


@pytest.mark.parametrize("pair", _pair_params())
def test_good_answer_outscores_bad_answer(pair: Pair, items: dict[str, Item]) -> None:
    item = items.get(pair.id)
    assert item is not None, f"{pair.id}: no such item in the shipped suites"
    good = grade_item(item, pair.good)
    bad = grade_item(item, pair.bad)
    report = "\n".join(
        [
            f"{pair.id} ({pair.kind}): good {good.score:.3f}, bad {bad.score:.3f}, "
            f"margin {good.score - bad.score:+.3f} (required > {pair.min_margin:g}, good >= {MIN_GOOD_SCORE:g})",
            _describe("good", pair.good, good),
            _describe("bad", pair.bad, bad),
        ]
    )
    assert good.score >= MIN_GOOD_SCORE, report
    assert good.score > bad.score + pair.min_margin, report


def test_every_category_has_enough_pairs_of_several_kinds(items: dict[str, Item]) -> None:
    # Known failures do not count: coverage means pairs the graders actually get right.
    kinds: dict[str, list[str]] = defaultdict(list)
    for pair in PAIRS:
        if pair.id in items and pair.known_failure is None:
            kinds[items[pair.id].category].append(pair.kind)
    for category in CATEGORIES:
        found = kinds.get(category, [])
        assert len(found) >= MIN_PAIRS_PER_CATEGORY, f"{category}: {len(found)} passing pairs"
        assert len(set(found)) >= MIN_KINDS_PER_CATEGORY, f"{category}: kinds {sorted(set(found))}"


def test_pairs_are_distinct() -> None:
    seen = set()
    for pair in PAIRS:
        key = (pair.id, pair.kind)
        assert key not in seen, f"{pair.id}: two pairs of kind {pair.kind}"
        seen.add(key)
        assert pair.good.strip() != pair.bad.strip(), f"{pair.id}: good and bad answers are the same"


def test_load_pairs_rejects_malformed_entries(tmp_path: Path) -> None:
    path = tmp_path / "pairs.yaml"
    path.write_text("pairs:\n  - {id: factual-geo-001, kind: typo, good: 'Paris.', bad: 'Lyon.'}\n")
    with pytest.raises(ValueError, match=r"pairs\[0\]: unknown kind 'typo'"):
        load_pairs(path)
    path.write_text("pairs:\n  - {id: factual-geo-001, kind: empty, good: 'Paris.', bad: '', margin: 0.1}\n")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['margin'\]"):
        load_pairs(path)
