"""The bench run: suites -> model requests in batches -> graded items -> results.json.

The runner knows models only through a ``Backend`` (``benchmarks.backends``): it asks it for answers
and log-likelihoods, stores them as they finish (``WorkStore``), hands answers to ``graders`` and
writes ``results.json`` (the contract, ``benchmarks.results_schema``) and ``items.csv``. It never
renders: the caller draws the scorecard from the results.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.backends.base import (
    Backend,
    Generation,
    GenerationRequest,
    LikelihoodRequest,
    LikelihoodUnavailable,
    SamplingSettings,
)
from benchmarks.results_schema import SCHEMA_VERSION, save_results
from benchmarks.store import WorkStore, work_key
from graders.validity import load_agreement
from hessgpt.cpu_steal import StealMeter, steal_note
from hessgpt.errors import HessError
from hessgpt.flags import MAX_BATCH_SIZE, MAX_NEW_TOKENS, MAX_SEED
from hessgpt.machine import describe_machine
from hessgpt.safe_io import atomic_write_text

MAX_SAMPLES = 1000
# A likelihood request still to score: its item id, the request, and per continuation (label, store key).
_LikelihoodTodo = tuple[str, LikelihoodRequest, list[tuple[str, str]]]


@dataclass
class BenchSettings:
    suites: list[str] | None = None
    limit: int | None = None
    batch_size: int = 16
    samples: int = 1
    # How each answer is produced; its seed is the run's seed (item selection and bootstrap use it too).
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    likelihood: bool = True
    int8: bool = False
    precision: str = "fp32"  # "bf16": the blocks' linears in bf16 (not lossless)
    device: str = "cpu"  # resolved: "cpu" or "cuda"
    tools: str | None = None  # "python": items are also answered through the router (benchmarks.tool_runs)
    code_checkpoint: str | None = None
    max_tool_calls: int = 3

    @property
    def seed(self) -> int:
        return self.sampling.seed

    def validate(self) -> None:
        s = self.sampling
        if self.limit is not None and self.limit < 1:
            raise HessError(f"--limit: must be at least 1, got {self.limit}")
        if self.batch_size < 1:
            raise HessError(f"--batch-size: must be at least 1, got {self.batch_size}")
        if self.samples < 1:
            raise HessError(f"--samples: must be at least 1, got {self.samples}")
        if self.samples > 1 and s.temperature == 0:
            raise HessError("--samples: several samples per item need --temperature above 0 (greedy answers are identical)")
        if s.max_new_tokens < 1:
            raise HessError(f"--max-new-tokens: must be at least 1, got {s.max_new_tokens}")
        if self.code_checkpoint and not self.tools:
            raise HessError("--code-checkpoint: needs --tools python")
        if self.max_tool_calls < 0:
            raise HessError(f"--max-tool-calls: must be at least 0, got {self.max_tool_calls}")
        if isinstance(s.seed, bool) or not isinstance(s.seed, int) or not 0 <= s.seed <= MAX_SEED:
            raise HessError(f"--seed: must be an integer between 0 and {MAX_SEED}, got {s.seed!r}")
        for name, value, limit in (("--batch-size", self.batch_size, MAX_BATCH_SIZE),
                                   ("--max-new-tokens", s.max_new_tokens, MAX_NEW_TOKENS),
                                   ("--samples", self.samples, MAX_SAMPLES)):
            if value > limit:
                raise HessError(f"{name}: {value} is over the limit of {limit}")

    def generation_dict(self) -> dict[str, Any]:
        sampling = {k: v for k, v in self.sampling.to_dict().items() if k != "seed"}  # the seed is recorded apart
        return {**sampling, "samples": self.samples, "batch_size": self.batch_size, "limit": self.limit,
                "int8": self.int8, "tools": self.tools, "code_checkpoint": self.code_checkpoint,
                "max_tool_calls": self.max_tool_calls if self.tools else None,
                # Recorded only when not the default, so runs made before these options resume as they were.
                **({"precision": self.precision} if self.precision != "fp32" else {}),
                **({"device": self.device} if self.device != "cpu" else {})}


def select_items(suites: list, limit: int | None, seed: int = 0) -> list[tuple[Any, Any]]:
    """(suite, item) pairs: every item, or with ``limit`` a seeded sample of that many per suite.

    The first items of a suite are often its easiest, so a limited run takes a sample stratified
    by tag instead: each tag group (an item's first tag) gets its share of the limit (largest
    remainders, ties broken by the seeded draw), and its items are drawn with a generator seeded
    from (seed, suite). The same --limit and --seed always give the same items, in suite order.
    """
    import random

    pairs = []
    for suite in suites:
        items = list(suite.items)
        if limit and limit < len(items):
            rng = random.Random(f"{seed}:{suite.name}")
            groups: dict[str, list[int]] = {}
            for index, item in enumerate(items):
                groups.setdefault((item.tags or [""])[0], []).append(index)
            names = sorted(groups)
            quotas = {g: limit * len(groups[g]) / len(items) for g in names}
            counts = {g: int(quotas[g]) for g in names}
            order = sorted(names, key=lambda g: (-(quotas[g] - counts[g]), rng.random()))
            for g in order[: limit - sum(counts.values())]:
                counts[g] += 1
            chosen = sorted(i for g in names for i in rng.sample(groups[g], counts[g]))
            items = [items[i] for i in chosen]
        pairs.extend((suite, item) for item in items)
    return pairs


def item_sampling(item: Any, sampling: SamplingSettings, context_length: int | None) -> SamplingSettings:
    """How the bench answers ``item``: the run's sampling with the item's own token cap, at most half
    the model's context (a small model must keep room for the prompt)."""
    limit = item.max_new_tokens or sampling.max_new_tokens
    if context_length:
        limit = min(limit, max(1, context_length // 2))
    return replace(sampling, max_new_tokens=limit)


def default_suite_names(suites_dir: Path | None = None) -> list[str] | None:
    """The suites a run takes when --suite is not given: those that count toward the grade
    (benchmarks/scoring.yaml lists them). Others, such as the tools and code suites, run when named.
    None (every suite) when scoring.yaml lists none of the folder's suites."""
    from benchmarks.suite import available_suites
    from graders.score import load_scoring

    scored = set(load_scoring().categories)
    names = [p.stem for p in available_suites(suites_dir) if p.stem in scored]
    return names or None


class Progress:
    """A tqdm bar with ETA on stderr (``--no-progress`` turns it off)."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="req", dynamic_ncols=True, disable=not enabled,
                        file=sys.stderr, smoothing=0.1)

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "hessgpt-bench", "sacrebleu", "tiktoken", "numpy", "scipy", "pandas",
                "jinja2", "PyYAML", "gguf", "regex"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / 1024 if sys.platform != "darwin" else rss / (1024 * 1024), 1)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class BenchRun:
    """One run of the bench over one backend (a model, an endpoint or a responses file) into one folder."""

    def __init__(self, out_dir: Path, settings: BenchSettings, backend: Backend, suites_dir: Path | None = None,
                 progress: bool = True) -> None:
        settings.validate()
        from benchmarks.suite import load_suites

        self.settings = settings
        self.out_dir = Path(out_dir)
        self.backend = backend
        self.progress = progress
        names = settings.suites or default_suite_names(suites_dir)
        kwargs = {"names": names} if names else {}
        self.suites = load_suites(suites_dir, **kwargs) if suites_dir else load_suites(**kwargs)
        if not self.suites:
            raise HessError("--suite: no suite selected")
        self.pairs = select_items(self.suites, settings.limit, settings.seed)
        self.generated_tokens = 0
        self.generation_seconds = 0.0
        self.reused_answers = 0  # taken from an earlier, interrupted run of the same folder
        self.likelihood_note: str | None = None  # why likelihoods are missing, when they are

    # -- requests ---------------------------------------------------------------------------------
    def _sampling(self, item: Any) -> SamplingSettings:
        return item_sampling(item, self.settings.sampling, self.backend.capabilities.context_length)

    def _generate_all(self, store: WorkStore | None) -> dict[tuple[str, int], dict]:
        todo: list[tuple[GenerationRequest, str]] = []
        done: dict[tuple[str, int], dict] = {}
        identity = self.backend.identity()
        for _suite, item in self.pairs:
            for sample in self.backend.samples_for(item.id, self.settings.samples):
                request = GenerationRequest(item.conversation(), self._sampling(item), item.id, sample)
                key = work_key("gen", identity, request.messages, request.settings.to_dict(), sample)
                record = store.get(key) if store else None
                if record is not None:
                    done[(item.id, sample)] = record
                else:
                    todo.append((request, key))
        self.reused_answers = len(done)
        if todo:
            done.update(self._generate_streamed(todo, store))
        return done

    def _generate_streamed(self, todo: list[tuple[GenerationRequest, str]],
                           store: WorkStore | None) -> dict[tuple[str, int], dict]:
        """Each answer is stored the moment it is finished, so an interruption loses only the
        answers in flight."""
        out: dict[tuple[str, int], dict] = {}
        bar = Progress(len(todo), "generate", self.progress and self.backend.capabilities.generates)

        def finished(index: int, result: Generation) -> None:
            request, key = todo[index]
            self.generated_tokens += result.new_tokens or 0
            record = {"key": key, "kind": "gen", "id": request.item_id, "sample": request.sample,
                      "output": result.text, "new_tokens": result.new_tokens, "finish_reason": result.finish_reason,
                      "prompt_tokens": result.prompt_tokens, "prompt_truncated": result.prompt_truncated}
            if store:
                store.put_many([record])
            out[(request.item_id, request.sample)] = record
            bar.update(1)

        began = time.perf_counter()
        try:
            self.backend.generate([request for request, _ in todo], finished)
        finally:
            if self.backend.capabilities.generates:
                self.generation_seconds += time.perf_counter() - began
            bar.close()
        return out

    def _likelihood_work(self, store: WorkStore) -> tuple[dict[str, dict[str, dict]], list[_LikelihoodTodo]]:
        """The likelihoods already stored, {item id: {label: record}}, and the requests still to score."""
        identity = self.backend.identity()
        done: dict[str, dict[str, dict]] = {}
        todo: list[_LikelihoodTodo] = []
        for _suite, item in self.pairs:
            conversation = item.conversation()
            targets = [("ref", item.references[0])] if item.references else []
            targets += [(f"choice{i}", c) for i, c in enumerate(item.choices or [])]
            missing = []
            for label, text in targets:
                key = work_key("ll", identity, conversation, text)
                record = store.get(key)
                if record is not None:
                    done.setdefault(item.id, {})[label] = record
                else:
                    missing.append((label, text, key))
            if missing:
                todo.append((item.id, LikelihoodRequest(conversation, [t for _, t, _ in missing]),
                             [(label, key) for label, _, key in missing]))
        return done, todo

    def _likelihoods(self, store: WorkStore, done: dict[str, dict[str, dict]],
                     todo: list[_LikelihoodTodo]) -> dict[str, dict[str, dict]]:
        """Score ``todo`` into ``done``, {item id: {label: record}}, stored per chunk."""
        if not todo:
            return done
        bar = Progress(sum(len(r.continuations) for _, r, _ in todo), "likelihood", self.progress)
        chunk = max(self.settings.batch_size, 4)
        try:
            for start in range(0, len(todo), chunk):
                part = todo[start:start + chunk]
                scores = self.backend.loglikelihood([request for _, request, _ in part])
                records = []
                for (item_id, request, labels), row in zip(part, scores, strict=True):
                    for (label, key), score in zip(labels, row, strict=True):
                        if score is None:  # nothing to score (the text tokenises to nothing)
                            continue
                        records.append({"key": key, "kind": "ll", "id": item_id, "label": label,
                                        "logprob": score.logprob, "n_tokens": score.n_tokens,
                                        "n_bytes": score.n_bytes, "is_greedy": score.is_greedy,
                                        "n_correct": score.n_correct})
                    bar.update(len(request.continuations))
                store.put_many(records)
                for record in records:
                    done.setdefault(record["id"], {})[record["label"]] = record
        finally:
            bar.close()
        return done

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> dict:
        """Generate (and score), grade, and write results.json and items.csv; the caller renders."""
        started, t0, self.steal = _now(), time.perf_counter(), StealMeter()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        capabilities = self.backend.capabilities
        likelihoods: dict[str, dict[str, dict]] = {}
        if not capabilities.generates:
            generations = self._generate_all(None)
            self.likelihood_note = capabilities.likelihood_note
        else:
            store = WorkStore(self.out_dir / "work.jsonl")
            scoring = self.settings.likelihood and capabilities.likelihood
            try:
                if scoring:  # scored after the same prompts are generated: the backend may keep that work
                    scored, to_score = self._likelihood_work(store)
                    self.backend.expect_likelihood([request for _, request, _ in to_score])
                generations = self._generate_all(store)
                if scoring:
                    try:
                        likelihoods = self._likelihoods(store, scored, to_score)
                    except LikelihoodUnavailable as exc:
                        likelihoods, self.likelihood_note = {}, str(exc)
                    finally:
                        self.backend.expect_likelihood([])
                elif self.settings.likelihood:
                    self.likelihood_note = capabilities.likelihood_note
                if self.settings.tools:  # the same items through the router; plain answers kept beside
                    from benchmarks.tool_runs import route_items, with_plain_answers

                    generations = with_plain_answers(route_items(self, store), generations)
            finally:
                store.close()
        if self.likelihood_note and capabilities.generates:
            print(f"note: likelihood metrics not available: {self.likelihood_note}", file=sys.stderr)
        results = self._assemble(generations, likelihoods, started, time.perf_counter() - t0)
        write_outputs(results, self.out_dir)
        return results

    def _assemble(self, generations: dict, likelihoods: dict, started: str, wall: float) -> dict:
        from graders.across import answer_contexts
        from graders.checks import grade_item
        from graders.likelihood import summarise_likelihood
        from graders.robustness import suite_findings
        from graders.score import aggregate, load_scoring
        from graders.tool_stats import summarise as summarise_tools

        items = []
        graded = []
        for suite, item in self.pairs:
            for sample in self.backend.samples_for(item.id, self.settings.samples):
                record = generations.get((item.id, sample))
                row = _item_row(item, suite.name, sample, record, likelihoods.get(item.id, {}))
                if record is not None:
                    graded.append((item, row))
                items.append(row)
        # Grading needs every answer first: mode collapse and novelty look across answers.
        contexts = answer_contexts(row for _, row in graded)
        for item, row in graded:
            grade = grade_item(item, row["output"], contexts.get((item.id, row["sample"])))
            row["score"], row["checks"], row["adjustments"] = grade.score, grade.checks, grade.adjustments
            row["content_score"] = grade.content
            if row.get("no_tool_output") is not None:
                row["no_tool_score"] = grade_item(item, row["no_tool_output"]).score
        scoring = load_scoring()
        results: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        # Only the selected items (--limit) count as expected; an unanswered one counts as missing.
        selected = [SimpleNamespace(name=s.name, version=s.version, sha256=s.sha256,
                                    items=[it for su, it in self.pairs if su is s]) for s in self.suites]
        results.update(aggregate(items, scoring, seed=self.settings.seed, suites=selected))
        results["likelihood"] = summarise_likelihood(items) if likelihoods else None
        results["robustness"] = suite_findings(items)
        results["tool_suites"] = summarise_tools(items)
        results["items"] = items
        results["meta"] = self._meta(started, wall, len(items))
        from graders.contaminated import flagged_items, mark_contaminated

        flagged = flagged_items(self.backend.training_metadata())
        if flagged:
            mark_contaminated(results, flagged, f"{results['meta'].get('checkpoint')}: training data check")
        return results

    def _meta(self, started: str, wall: float, n_items: int) -> dict:
        generates = self.backend.capabilities.generates
        meta: dict[str, Any] = {
            "checkpoint": None, "checkpoint_sha256": None, "model": None, "training": None, "responses_file": None,
            "suites": {s.name: {"sha256": s.sha256, "version": s.version, "n_items": len(s.items)} for s in self.suites},
            "settings": self.settings.generation_dict() if generates else {"limit": self.settings.limit},
            "seed": self.settings.seed, "versions": _versions(), "started": started, "finished": _now(),
            "wall_seconds": round(wall, 2), "generated_tokens": self.generated_tokens,
            "tokens_per_second": round(self.generated_tokens / self.generation_seconds, 2)
            if self.generation_seconds else None,
            "peak_memory_mb": _peak_rss_mb(), "n_items": n_items, "cpu_steal": self.steal.share(),
            "selection": {"limit": self.settings.limit, "seed": self.settings.seed if self.settings.limit else None,
                          "method": "seeded sample stratified by tag" if self.settings.limit else "all items",
                          "n_selected": len(self.pairs), "n_available": sum(len(s.items) for s in self.suites)},
            # tokens_per_second covers this session's generations only; reused ones were timed before.
            "reused_answers": self.reused_answers, "unmatched_responses": 0,
            "likelihood_note": self.likelihood_note,
            "machine": describe_machine(),  # the bench's machine; a backend that runs the model records its own
            "grader_agreement": load_agreement(),
        }
        meta.update(self.backend.describe())  # which backend produced the run, and what it knows of the model
        return meta


def _item_row(item: Any, category: str, sample: int, record: dict | None, likelihood: dict) -> dict:
    conversation = item.conversation()
    row: dict[str, Any] = {
        "id": item.id, "category": category, "sample": sample, "prompt": item.user_prompt,
        "messages": conversation, "input": item.input, "references": list(item.references or []),
        "output": record["output"] if record else None, "score": 0.0, "missing": record is None,
        "checks": [], "adjustments": [], "content_score": None, "new_tokens": record.get("new_tokens") if record else None,
        "prompt_truncated": bool(record.get("prompt_truncated")) if record else False,
        "finish_reason": record.get("finish_reason") if record else None, "likelihood": None,
        "tags": list(item.tags or []),
    }
    if record and "tool_calls" in record:  # answered through the router (--tools python)
        row["tool_calls"], row["no_tool_output"] = record["tool_calls"], record.get("no_tool_output")
    if item.choices:
        row["choices"], row["answer"] = list(item.choices), item.answer
    if likelihood:
        from graders.likelihood import ChoiceLikelihood, ReferenceLikelihood, item_likelihood

        ref = likelihood.get("ref")
        reference = ReferenceLikelihood(ref["logprob"], ref["n_tokens"], ref["n_bytes"], ref["is_greedy"],
                                        ref["n_correct"]) if ref else None
        found = [likelihood.get(f"choice{i}") for i in range(len(item.choices or []))]
        choices = [ChoiceLikelihood(c["logprob"], c["n_tokens"], c["n_bytes"]) for c in found] \
            if found and all(found) else None
        row["likelihood"] = item_likelihood(reference, choices, item.answer if choices else None)
    return row


def write_outputs(results: dict, out_dir: Path) -> None:
    """results.json (atomically) and items.csv."""
    import pandas as pd

    save_results(results, out_dir)
    columns = ["id", "category", "sample", "score", "missing", "new_tokens", "finish_reason", "prompt_truncated",
               "prompt", "output"]
    table = pd.DataFrame([{c: row.get(c) for c in columns} for row in results["items"]], columns=columns)
    atomic_write_text(out_dir / "items.csv", table.to_csv(index=False))


def summary_table(results: dict) -> str:
    """The terminal summary: grade, criteria and categories (seed 000's table, with CIs), and what
    kind of run it was (partial, limited, reused answers, contaminated items)."""
    from reports.run_status import grade_qualifiers, run_notes

    lines = []
    grade_ci = results.get("grade_ci") or [None, None]
    if results.get("grade") is None:  # only categories that scoring.yaml gives no points (tools, code)
        lines.append("Grade: - (no category of the run counts toward the /20)")
    else:
        qualifiers = grade_qualifiers(results)
        qualified = f" ({', '.join(qualifiers)} run: see below)" if qualifiers else ""
        lines.append(f"Grade: {results['grade']:.1f}/20{qualified}  [{_fmt(grade_ci[0])}, {_fmt(grade_ci[1])}]  "
                     f"Mention: {results['mention']}")
    lines += [f"  {note}" for note in run_notes(results)]
    lines.append("")
    lines.append(f"{'Criterion':<26} {'Points':>12} {'%':>6}  {'95% CI':>15}")
    for c in results["criteria"]:
        if c.get("points") is None:
            lines.append(f"{c['label']:<26} {'-':>12} {'':>6}  {'(not run)':>15}")
            continue
        ci = c.get("ci") or [None, None]
        lines.append(f"{c['label']:<26} {c['points']:>6.1f}/{c['max']:<5} {100 * c['points'] / c['max']:>5.0f}%  "
                     f"[{_fmt(ci[0])}, {_fmt(ci[1])}]")
    lines.append("")
    lines.append(f"{'Category':<14} {'Score/100':>9}  {'95% CI':>15} {'items':>6} {'missing':>8}")
    for name, cat in results["categories"].items():
        ci = cat.get("ci") or [None, None]
        lines.append(f"{name:<14} {cat['score']:>9.1f}  [{_fmt(ci[0])}, {_fmt(ci[1])}] {cat['n_items']:>6} "
                     f"{cat.get('n_missing', 0):>8}")
    like = results.get("likelihood")
    if like:
        parts = [f"{k}={like[k]:.3f}" for k in ("perplexity", "bits_per_byte", "token_accuracy", "mc_accuracy")
                 if isinstance(like.get(k), (int, float))]
        lines.append("")
        lines.append("Likelihood: " + ", ".join(parts))
    elif results.get("meta", {}).get("likelihood_note"):
        lines.append("")
        lines.append(f"Likelihood: not available ({results['meta']['likelihood_note']})")
    lines += tool_suite_lines(results.get("tool_suites"))
    meta = results.get("meta", {})
    if meta.get("tokens_per_second"):
        note = steal_note(meta.get("cpu_steal"))
        lines.append(f"Time: {meta['wall_seconds']:.0f}s, {meta['generated_tokens']} tokens generated at "
                     f"{meta['tokens_per_second']:.1f} tok/s, peak memory {meta['peak_memory_mb']:.0f} MB"
                     + (f" (CPU steal {100 * meta['cpu_steal']:.0f}%: {note})" if note else ""))
    return "\n".join(lines)


def tool_suite_lines(summary: dict | None) -> list[str]:
    """The code-tool figures of the summary table: accuracy with and without the tool, pass@k."""
    if not summary:
        return []
    lines = ["", f"{'Code tool':<14} {'with':>7} {'without':>8} {'calls':>7} {'clean':>7}  pass@k"]
    for name, entry in summary.items():
        use, rates = entry.get("tool_use") or {}, entry.get("pass_rates") or {}
        passes = ", ".join(f"{k}={v:.1f}" for k, v in rates.items() if k.startswith("pass@"))
        lines.append(f"{name:<14} {_fmt(use.get('accuracy_with_tool')):>7} {_fmt(use.get('accuracy_without_tool')):>8} "
                     f"{_fmt(use.get('tool_call_rate')):>7} {_fmt(use.get('clean_run_rate')):>7}  {passes or '-'}")
    lines.append("(with/without: accuracy /100 with and without the tool; calls: % of answers calling it; "
                 "clean: % of calls that ran without error)")
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def expand_checkpoints(patterns: Iterable[str]) -> list[str]:
    """Checkpoint arguments, with shell-style globs expanded in natural order (epoch2 before epoch10)."""
    import glob
    import re

    def natural(path: str) -> list:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]

    out: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matches = sorted(glob.glob(pattern), key=natural)
            if not matches:
                raise HessError(f"--checkpoint: no file matches {pattern!r}")
            out.extend(matches)
        else:
            out.append(pattern)
    return out
