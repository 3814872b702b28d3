"""Validity: grade a labelled set of answers with the real graders and measure agreement with humans.

The set (``benchmarks/validity/``) holds answers to real bench items, from models and written at
known quality levels, each scored 0-10 by two blind human passes (differences of 3 or more
adjudicated). Every answer is graded exactly as ``bench.py --responses`` would grade it: the
answers of one source form one run, so checks that look across answers (mode collapse, novelty
across answers) see a realistic run. :func:`measure` then compares bench and human scores per
category and overall (see :mod:`graders.agreement`).

Files (one JSON object a line):
- ``answers.jsonl``: ``{id, item, suite, source, level, class, split, output}``;
- ``labels_pass1.jsonl`` / ``labels_pass2.jsonl``: ``{id, score: 0..10, note}``;
- ``adjudicated.jsonl`` (optional): ``{id, pass1, pass2, score, reason}``.
The human score of an answer is its adjudicated score where there is one, else the mean of the
passes it has, divided by 10.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.agreement import agreement, level_of
from hessgpt.errors import HessError

VALIDITY_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "validity"
ANSWERS_FILE = "answers.jsonl"
LABEL_FILES = ("labels_pass1.jsonl", "labels_pass2.jsonl")
ADJUDICATED_FILE = "adjudicated.jsonl"
# The shipped graders' measured agreement, recorded by `bench.py validity --record` and stated in every
# run's results.json and scorecard, so a reader knows how far to trust the grade.
AGREEMENT_FILE = "agreement.json"
SPLITS = ("dev", "heldout", "all")
MAX_BYTES = 50 * 1024 * 1024

# What the bench's grades must reach on answers it was not tuned on (see tests/test_validity_agreement.py).
GOALS = {
    "spearman_overall": 0.8,  # Spearman, all categories together
    "spearman_category": 0.7,  # Spearman, every category
    "poor_mean": 0.3,  # mean bench score of answers humans rate "poor"
    "mae": 0.15,  # mean |bench - human / 10|
}


@dataclass(frozen=True)
class Answer:
    id: str
    item: str
    suite: str
    source: str
    split: str
    output: str
    level: str | None = None  # the writer's intent, for written answers
    kind: str | None = None  # the disagreement class a written answer illustrates


@dataclass(frozen=True)
class GradedAnswer:
    answer: Answer
    category: str
    bench: float
    human: float | None
    checks: list[dict[str, Any]]
    adjustments: list[dict[str, Any]]

    def explanation(self) -> str:
        """The bench's reasons in one line: every check, then every adjustment."""
        parts = [f"{c['type']} {c['score']:.2f}: {c['explanation']}" for c in self.checks]
        parts += [a["explanation"] for a in self.adjustments]
        return "; ".join(parts)


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if path.stat().st_size > MAX_BYTES:
        raise HessError(f"{path}: larger than {MAX_BYTES // 2**20} MB")
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise HessError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HessError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise HessError(f"{path}:{number}: expected a JSON object")
        rows.append((number, obj))
    return rows


def _text(where: str, obj: Mapping[str, Any], key: str, nullable: bool = False, empty: bool = False) -> Any:
    value = obj.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, str) or (not value and not empty):
        raise HessError(f"{where}: field '{key}' must be a {'string' if empty else 'non-empty string'}")
    return value


def load_answers(directory: Path = VALIDITY_DIR) -> list[Answer]:
    path = directory / ANSWERS_FILE
    if not path.exists():
        raise HessError(f"{path}: no such file (the labelled validity set)")
    answers, seen = [], set()
    for number, obj in _read_jsonl(path):
        where = f"{path}:{number}"
        answer_id = _text(where, obj, "id")
        if answer_id in seen:
            raise HessError(f"{where}: duplicate answer id {answer_id!r}")
        seen.add(answer_id)
        split = _text(where, obj, "split")
        if split not in ("dev", "heldout"):
            raise HessError(f"{where}: field 'split' must be 'dev' or 'heldout', got {split!r}")
        answers.append(Answer(
            id=answer_id, item=_text(where, obj, "item"), suite=_text(where, obj, "suite"),
            source=_text(where, obj, "source"), split=split, output=_text(where, obj, "output", empty=True),
            level=_text(where, obj, "level", nullable=True), kind=_text(where, obj, "class", nullable=True),
        ))
    if not answers:
        raise HessError(f"{path}: no answers")
    return answers


def _pass_scores(path: Path, key: str = "score") -> dict[str, float]:
    scores = {}
    for number, obj in _read_jsonl(path):
        where = f"{path}:{number}"
        answer_id = _text(where, obj, "id")
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10:
            raise HessError(f"{where}: field '{key}' must be a number from 0 to 10, got {value!r}")
        if answer_id in scores:
            raise HessError(f"{where}: answer {answer_id!r} scored twice")
        scores[answer_id] = float(value)
    return scores


def load_human_scores(directory: Path = VALIDITY_DIR) -> dict[str, float]:
    """Answer id -> human score in [0, 1]: adjudicated, else the mean of the passes present."""
    passes = [_pass_scores(directory / name) for name in LABEL_FILES if (directory / name).exists()]
    if not passes:
        raise HessError(f"{directory}: no label files ({', '.join(LABEL_FILES)})")
    adjudicated_path = directory / ADJUDICATED_FILE
    adjudicated = _pass_scores(adjudicated_path) if adjudicated_path.exists() else {}
    human = {}
    for answer_id in set().union(*passes):
        if answer_id in adjudicated:
            human[answer_id] = adjudicated[answer_id] / 10
        else:
            found = [p[answer_id] for p in passes if answer_id in p]
            human[answer_id] = sum(found) / len(found) / 10
    return human


def grade_answers(answers: Sequence[Answer], suites: Iterable[Any] | None = None,
                  calibration: Mapping[str, list[list[float]]] | None = None) -> list[GradedAnswer]:
    """Grade every answer with the bench's graders, the answers of each source as one run.

    A source with several answers to one item (written answers at several quality levels) gives
    them as samples of that item, as ``--responses`` does with a ``sample`` field: samples never
    count against each other for mode collapse, and cross-answer checks compare same-sample answers.
    ``calibration``: maps to use instead of the shipped ones (``{}``: raw scores).
    """
    from benchmarks.suite import load_suites
    from graders.across import answer_contexts
    from graders.checks import grade_item

    items = {item.id: item for suite in (suites if suites is not None else load_suites()) for item in suite.items}
    for answer in answers:
        if answer.item not in items:
            raise HessError(f"validity answer {answer.id}: unknown item {answer.item!r}")
    rows_by_source: dict[str, list[tuple[Answer, dict[str, Any]]]] = {}
    samples: dict[tuple[str, str], int] = {}
    for answer in answers:
        item = items[answer.item]
        sample = samples.get((answer.source, item.id), 0)
        samples[(answer.source, item.id)] = sample + 1
        row = {"id": item.id, "category": item.category, "sample": sample, "output": answer.output,
               "missing": False, "prompt": item.user_prompt, "messages": item.conversation()}
        rows_by_source.setdefault(answer.source, []).append((answer, row))
    graded = {}
    for pairs in rows_by_source.values():
        contexts = answer_contexts(row for _, row in pairs)
        for answer, row in pairs:
            item = items[answer.item]
            grade = grade_item(item, answer.output, contexts.get((item.id, row["sample"])), calibration)
            graded[answer.id] = GradedAnswer(answer, item.category, grade.score, None, grade.checks, grade.adjustments)
    return [graded[a.id] for a in answers]


def with_human(graded: Sequence[GradedAnswer], human: Mapping[str, float]) -> list[GradedAnswer]:
    return [GradedAnswer(g.answer, g.category, g.bench, human.get(g.answer.id), g.checks, g.adjustments)
            for g in graded]


def fit_calibration(answers: Sequence[Answer], human: Mapping[str, float], suites: Iterable[Any] | None = None,
                    path: Path | None = None) -> dict[str, list[list[float]]]:
    """Fit the calibration maps on the dev split's raw scores and write them (see graders.calibration)."""
    from graders.calibration import CALIBRATION_PATH, fit_maps, write_maps

    dev = [a for a in answers if a.split == "dev" and a.id in human]
    if not dev:
        raise HessError("--fit-calibration: no labelled dev answers")
    graded = grade_answers(dev, suites, calibration={})
    maps = fit_maps([g.bench for g in graded], [human[g.answer.id] for g in graded], [g.category for g in graded])
    note = (f"Calibration maps: raw item score -> score on the human scale, per category.\n"
            f"Fitted by `bench.py validity --fit-calibration` on {len(dev)} labelled dev answers of "
            f"benchmarks/validity\n(isotonic regression read at fixed knots, strictly increasing). Do not edit by hand.")
    write_maps(maps, path or CALIBRATION_PATH, note)
    return maps


def select_split(graded: Sequence[GradedAnswer], split: str) -> list[GradedAnswer]:
    if split not in SPLITS:
        raise HessError(f"--split: expected one of {', '.join(SPLITS)}, got {split!r}")
    return [g for g in graded if split == "all" or g.answer.split == split]


def measure(graded: Sequence[GradedAnswer], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Agreement overall and per category (labelled answers only), plus goal checks."""
    labelled = [g for g in graded if g.human is not None]

    def group(members: Sequence[GradedAnswer]) -> dict[str, Any]:
        return agreement([g.bench for g in members], [g.human for g in members],
                         [g.answer.item for g in members], n_boot=n_boot, seed=seed)

    categories = sorted({g.category for g in labelled})
    report: dict[str, Any] = {
        "n_answers": len(graded),
        "n_unlabelled": len(graded) - len(labelled),
        "overall": group(labelled) if labelled else None,
        "categories": {c: group([g for g in labelled if g.category == c]) for c in categories},
        "sources": _by_source(labelled),
    }
    report["goals"] = goal_checks(report)
    return report


def _by_source(labelled: Sequence[GradedAnswer]) -> list[dict[str, Any]]:
    out = []
    for source in sorted({g.answer.source for g in labelled}):
        members = [g for g in labelled if g.answer.source == source]
        out.append({"source": source, "n": len(members),
                    "bench": round(sum(g.bench for g in members) / len(members), 4),
                    "human": round(sum(g.human for g in members) / len(members), 4)})
    return out


def goal_checks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each goal with the measured value and whether it is met (None: not measurable)."""
    overall = report.get("overall") or {}
    checks = [_goal("Spearman, overall", (overall.get("spearman") or {}).get("value"), ">=",
                    GOALS["spearman_overall"])]
    for name, group in report.get("categories", {}).items():
        checks.append(_goal(f"Spearman, {name}", group["spearman"]["value"], ">=", GOALS["spearman_category"]))
    poor = next((b for b in overall.get("bands", []) if b["level"] == "poor"), None)
    checks.append(_goal("mean bench score of 'poor' answers", poor["bench"]["value"] if poor else None, "<=",
                        GOALS["poor_mean"]))
    checks.append(_goal("mean absolute error", (overall.get("mae") or {}).get("value"), "<=", GOALS["mae"]))
    return checks


def _goal(name: str, value: float | None, op: str, target: float) -> dict[str, Any]:
    met = None if value is None else (value >= target if op == ">=" else value <= target)
    return {"name": name, "value": value, "op": op, "target": target, "met": met}


def disagreements(graded: Sequence[GradedAnswer], n: int = 25) -> list[GradedAnswer]:
    """The labelled answers where bench and humans differ most, largest gap first."""
    labelled = [g for g in graded if g.human is not None]
    return sorted(labelled, key=lambda g: (-abs(g.bench - g.human), g.answer.id))[:n]


def format_report(report: Mapping[str, Any], split: str) -> str:
    """The terminal table: one line per category and overall, then calibration and goals."""
    lines = [f"Validity ({split} split): {report['overall']['n_answers'] if report['overall'] else 0} labelled "
             f"answers" + (f", {report['n_unlabelled']} without labels" if report["n_unlabelled"] else "")]
    header = f"{'group':<14} {'n':>4} {'items':>5}  {'Spearman':>20}  {'Kendall':>20}  {'pairwise':>20}  {'MAE':>20}"
    lines += ["", header]
    groups = [*report["categories"].items(), ("overall", report["overall"])] if report["overall"] else []
    for name, group in groups:
        cells = [_fmt_estimate(group[key]) for key in ("spearman", "kendall", "pairwise", "mae")]
        lines.append(f"{name:<14} {group['n_answers']:>4} {group['n_items']:>5}  " + "  ".join(f"{c:>20}" for c in cells))
    if report["overall"]:
        lines += ["", f"{'human level':<12} {'n':>4}  {'bench mean':>20}  {'human mean':>10}"]
        for band in report["overall"]["bands"]:
            human = "-" if band["human"] is None else f"{band['human']:.2f}"
            lines.append(f"{band['level']:<12} {band['n']:>4}  {_fmt_estimate(band['bench']):>20}  {human:>10}")
        lines += ["", f"{'source':<16} {'n':>4}  {'bench mean':>10}  {'human mean':>10}"]
        for row in report["sources"]:
            lines.append(f"{row['source']:<16} {row['n']:>4}  {row['bench']:>10.2f}  {row['human']:>10.2f}")
    lines += ["", "Goals:"]
    for goal in report["goals"]:
        mark = {True: "met", False: "NOT met", None: "n/a"}[goal["met"]]
        value = "-" if goal["value"] is None else f"{goal['value']:.3f}"
        lines.append(f"  {goal['name']:<40} {value:>7} {goal['op']} {goal['target']:<5} {mark}")
    return "\n".join(lines)


def _fmt_estimate(estimate: Mapping[str, Any]) -> str:
    if estimate.get("value") is None:
        return "-"
    ci = estimate.get("ci")
    return f"{estimate['value']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def agreement_summary(report: Mapping[str, Any], split: str) -> dict[str, Any]:
    """What a scorecard states of the graders' agreement: overall Spearman and MAE with their intervals,
    Spearman per category, and the mean bench score per human level."""
    overall = report["overall"]
    if not overall:
        raise HessError("--record: no labelled answers to measure")
    return {
        "split": split,
        "n_answers": overall["n_answers"],
        "n_items": overall["n_items"],
        "spearman": overall["spearman"],
        "mae": overall["mae"],
        "categories": {name: group["spearman"]["value"] for name, group in report["categories"].items()},
        "levels": {band["level"]: {"bench": band["bench"]["value"], "human": band["human"]}
                   for band in overall["bands"] if band["n"]},
    }


def write_agreement(summary: Mapping[str, Any], directory: Path = VALIDITY_DIR) -> Path:
    path = directory / AGREEMENT_FILE
    path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return path


def load_agreement(directory: Path = VALIDITY_DIR) -> dict[str, Any] | None:
    """The recorded agreement, or None when none is recorded or the file is not a valid record."""
    path = directory / AGREEMENT_FILE
    try:
        if path.stat().st_size > 64 * 1024:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        ok = (isinstance(data, dict) and data.get("split") in SPLITS and isinstance(data["n_answers"], int)
              and all(isinstance(data[key]["value"], (int, float)) for key in ("spearman", "mae")))
    except (KeyError, TypeError):
        ok = False
    return data if ok else None


def level_name(human: float | None) -> str | None:
    return None if human is None else level_of(human)
