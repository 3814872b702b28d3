"""--limit takes a seeded sample stratified by tag, not the first (easiest) items of each suite."""

from __future__ import annotations

from collections import Counter

from benchmarks.runner import select_items
from benchmarks.suite import load_suites


def test_limit_is_a_seeded_stratified_sample():
    suites = load_suites()
    picked = select_items(suites, 10, seed=0)
    by_suite = Counter(suite.name for suite, _ in picked)
    assert all(by_suite[s.name] == min(10, len(s.items)) for s in suites)
    # Reproducible with the same seed, different with another.
    assert [i.id for _, i in select_items(suites, 10, seed=0)] == [i.id for _, i in picked]
    assert [i.id for _, i in select_items(suites, 10, seed=1)] != [i.id for _, i in picked]
    # Not simply the first items of each suite.
    first = {i.id for s in suites for i in s.items[:10]}
    assert {i.id for _, i in picked} != first
    # Items keep their suite order.
    for suite in suites:
        ids = [i.id for s, i in picked if s is suite]
        order = [i.id for i in suite.items if i.id in set(ids)]
        assert ids == order


def test_every_tag_group_gets_its_share():
    for suite in load_suites():
        groups = Counter((item.tags or [""])[0] for item in suite.items)
        limit = 20
        if limit >= len(suite.items):
            continue
        chosen = Counter((item.tags or [""])[0] for s, item in select_items([suite], limit, seed=3))
        assert sum(chosen.values()) == limit
        for tag, size in groups.items():
            quota = limit * size / len(suite.items)
            assert int(quota) <= chosen[tag] <= int(quota) + 1, (suite.name, tag)


def test_no_limit_selects_everything():
    suites = load_suites()
    assert len(select_items(suites, None)) == sum(len(s.items) for s in suites)
