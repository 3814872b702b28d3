"""Items the model may have seen in training: flagged in the results, and the grade without them.

The trainer checks its data against the suites (``hessgpt.contamination``) and records the suite
items that overlap in the checkpoint's metadata. A model that saw an item's answer in training is
not answering it, it is remembering it: the run keeps grading those items as usual (so grades stay
comparable), marks each one ``contaminated: true``, and reports the grade and category scores
recomputed without them, so a reader can see how much of the grade they carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graders.paired import reaggregate


def flagged_items(training_meta: Mapping[str, Any] | None) -> list[str]:
    """Suite item ids a checkpoint's training data overlapped; none when the overlapping examples were
    dropped before training (``--contamination drop``) or the check did not run."""
    record = (training_meta or {}).get("contamination")
    if not isinstance(record, Mapping) or not record.get("checked") or record.get("dropped"):
        return []
    return sorted({str(i) for i in record.get("flagged_items") or [] if isinstance(i, str | int)})


def mark_contaminated(results: dict[str, Any], flagged: Iterable[str], source: str) -> None:
    """Flag the run's items whose id is in ``flagged`` and add ``results["contamination"]``.

    ``contamination`` holds the flagged item ids that were graded, the grade and category scores
    recomputed without them (``grade_without``, ``categories_without``; a category left with no item
    is dropped and the grade rescaled, as for a partial run), and where the list came from.
    """
    wanted = set(flagged)
    graded = sorted({str(it["id"]) for it in results.get("items") or [] if str(it["id"]) in wanted})
    for item in results.get("items") or []:
        item["contaminated"] = str(item["id"]) in wanted
    if not graded:
        results["contamination"] = {"items": [], "source": source, "grade_without": results.get("grade"),
                                    "categories_without": None}
        return
    clean = dict(results, items=[it for it in results["items"] if not it["contaminated"]])
    grade, scores = reaggregate(clean)
    results["contamination"] = {
        "items": graded,
        "source": source,
        "grade_without": None if grade is None else round(grade, 2),
        "categories_without": {name: round(score, 2) for name, score in sorted(scores.items())},
    }
