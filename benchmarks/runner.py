"""The bench run: suites -> model requests in batches -> graded items -> results.json.

The runner never renders and never grades by itself: it asks the backend for outputs and
log-likelihoods, stores them as they finish (``WorkStore``), hands outputs to ``graders`` and writes
``results.json`` (the contract), ``items.csv`` and the scorecard.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.responses import read_responses
from benchmarks.store import WorkStore, work_key
from hessgpt.errors import HessError

SCHEMA_VERSION = 1


@dataclass
class BenchSettings:
    suites: list[str] | None = None
    limit: int | None = None
    seed: int = 0
    batch_size: int = 16
    samples: int = 1
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    likelihood: bool = True
    int8: bool = False

    def validate(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise HessError(f"--limit: must be at least 1, got {self.limit}")
        if self.batch_size < 1:
            raise HessError(f"--batch-size: must be at least 1, got {self.batch_size}")
        if self.samples < 1:
            raise HessError(f"--samples: must be at least 1, got {self.samples}")
        if self.samples > 1 and self.temperature == 0:
            raise HessError("--samples: several samples per item need --temperature above 0 (greedy answers are identical)")
        if self.max_new_tokens < 1:
            raise HessError(f"--max-new-tokens: must be at least 1, got {self.max_new_tokens}")

    def generation_dict(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "repetition_penalty": self.repetition_penalty,
                "no_repeat_ngram_size": self.no_repeat_ngram_size, "samples": self.samples,
                "batch_size": self.batch_size, "limit": self.limit, "int8": self.int8}


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
    for pkg in ("torch", "hessgpt-bench", "sacrebleu", "rouge-score", "tiktoken", "numpy", "scipy", "pandas",
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
    """One run of the bench over one model (or one responses file) into one folder."""

    def __init__(self, out_dir: Path, settings: BenchSettings, checkpoint: str | None = None,
                 responses: str | None = None, suites_dir: Path | None = None, progress: bool = True) -> None:
        if (checkpoint is None) == (responses is None):
            raise HessError("bench: give exactly one of --checkpoint or --responses")
        settings.validate()
        from benchmarks.suite import load_suites

        self.settings = settings
        self.out_dir = Path(out_dir)
        self.checkpoint = checkpoint
        self.responses = responses
        self.progress = progress
        kwargs = {"names": settings.suites} if settings.suites else {}
        self.suites = load_suites(suites_dir, **kwargs) if suites_dir else load_suites(**kwargs)
        if not self.suites:
            raise HessError("--suite: no suite selected")
        self.pairs = select_items(self.suites, settings.limit, settings.seed)
        self.loaded = None
        self.engine = None
        self.generated_tokens = 0
        self.generation_seconds = 0.0
        self.reused_answers = 0  # taken from an earlier, interrupted run of the same folder
        self.unmatched_responses: list[str] = []

    # -- model side -------------------------------------------------------------------------------
    def _load(self) -> None:
        from hessgpt.loading import load_model

        self.loaded = load_model(self.checkpoint)  # fails before any work starts
        from hessgpt.generate import Engine

        self.engine = Engine(self.loaded, batch_size=self.settings.batch_size, int8=self.settings.int8)

    def _model_id(self) -> str:
        return self.loaded.sha256 or str(self.loaded.meta.get("source"))

    def _gen_settings(self, item: Any):
        from hessgpt.generate import GenerationSettings

        s = self.settings
        # Half the context at most: a small model must keep room for the prompt.
        cap = max(1, self.loaded.config.block_size // 2)
        return GenerationSettings(
            max_new_tokens=min(item.max_new_tokens or s.max_new_tokens, cap), temperature=s.temperature, top_k=s.top_k,
            top_p=s.top_p, repetition_penalty=s.repetition_penalty, no_repeat_ngram_size=s.no_repeat_ngram_size,
            seed=s.seed,
        )

    def _generate_all(self, store: WorkStore) -> dict[tuple[str, int], dict]:
        from hessgpt.generate import ENGINE_VERSION

        todo, done = [], {}
        for _suite, item in self.pairs:
            for sample in range(self.settings.samples):
                gen = self._gen_settings(item)
                key = work_key("gen", ENGINE_VERSION, self._model_id(), item.conversation(), dataclasses.asdict(gen),
                               sample, self.settings.int8)
                record = store.get(key)
                if record is not None:
                    done[(item.id, sample)] = record
                else:
                    todo.append((item, sample, gen, key))
        self.reused_answers = len(done)
        if todo:
            done.update(self._generate_streamed(todo, store))
        return done

    def _generate_streamed(self, todo: list, store: WorkStore) -> dict[tuple[str, int], dict]:
        """All remaining items in one continuous batch (no slot idles at a chunk's tail); each answer
        is stored the moment it is finished, so an interruption loses only the answers in flight."""
        requests = [self.engine.chat_request(item.conversation(), gen, request_id=f"{item.id}#{sample}")
                    for item, sample, gen, _ in todo]
        out: dict[tuple[str, int], dict] = {}
        bar = Progress(len(todo), "generate", self.progress)

        def finished(index: int, result: Any) -> None:
            item, sample, _gen, key = todo[index]
            self.generated_tokens += len(result.token_ids)
            record = {"key": key, "kind": "gen", "id": item.id, "sample": sample, "output": result.text,
                      "new_tokens": len(result.token_ids), "finish_reason": result.finish_reason,
                      "prompt_tokens": result.prompt_tokens, "prompt_truncated": result.prompt_truncated}
            store.put_many([record])
            out[(item.id, sample)] = record
            bar.update(1)

        began = time.perf_counter()
        try:
            self.engine.generate(requests, on_result=finished)
        finally:
            self.generation_seconds += time.perf_counter() - began
            bar.close()
        return out

    def _run_chunks(self, todo: list, desc: str, store: WorkStore, compute) -> list[dict]:
        """Run the work in chunks, storing each chunk's records as soon as it is finished."""
        out: list[dict] = []
        if not todo:
            return out
        bar = Progress(len(todo), desc, self.progress)
        chunk = max(self.settings.batch_size * 2, 8)
        try:
            for start in range(0, len(todo), chunk):
                part = todo[start:start + chunk]
                records = compute(part)
                store.put_many(records)
                out.extend(records)
                bar.update(len(part))
        finally:
            bar.close()
        return out

    def _likelihood_pairs(self, item: Any) -> list[tuple[str, list[int], list[int], int]]:
        """(label, context ids, continuation ids, continuation bytes) for references and choices."""
        template, tok = self.loaded.chat_template, self.loaded.tokenizer
        conversation = item.conversation()
        prompt_ids = template.render(conversation, add_generation_prompt=True).ids
        out = []
        targets = [("ref", item.references[0])] if item.references else []
        targets += [(f"choice{i}", c) for i, c in enumerate(item.choices or [])]
        for label, text in targets:
            full = template.render(conversation + [{"role": "assistant", "content": text}], add_generation_prompt=False)
            if full.ids[:len(prompt_ids)] == prompt_ids:
                tail = zip(full.ids[len(prompt_ids):], full.assistant_mask[len(prompt_ids):], strict=True)
                end_ids = set(template.end_of_turn_ids)
                continuation = [t for t, m in tail if m and t not in end_ids]
            else:  # a template whose prompt is not a prefix of the answered conversation
                continuation = tok.encode(text)
            if not continuation:
                continue
            n_bytes = sum(len(tok.token_bytes(t)) for t in continuation)
            out.append((label, prompt_ids, continuation, n_bytes))
        return out

    def _likelihoods(self, store: WorkStore) -> dict[str, dict[str, dict]]:
        from hessgpt.generate import ENGINE_VERSION

        todo, done = [], {}
        for _suite, item in self.pairs:
            for label, context, continuation, n_bytes in self._likelihood_pairs(item):
                key = work_key("ll", ENGINE_VERSION, self._model_id(), context, continuation)
                record = store.get(key)
                if record is not None:
                    done.setdefault(item.id, {})[label] = record
                else:
                    todo.append((item.id, label, context, continuation, n_bytes, key))
        for record in self._run_chunks(todo, "likelihood", store, self._likelihood_chunk):
            done.setdefault(record["id"], {})[record["label"]] = record
        return done

    def _likelihood_chunk(self, part: list) -> list[dict]:
        results = self.engine.loglikelihood([(ctx, cont) for _, _, ctx, cont, _, _ in part])
        return [{"key": key, "kind": "ll", "id": item_id, "label": label, "logprob": res.logprob,
                 "n_tokens": res.n_tokens, "n_bytes": n_bytes, "is_greedy": res.is_greedy, "n_correct": res.n_correct}
                for (item_id, label, _ctx, _cont, n_bytes, key), res in zip(part, results, strict=True)]

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> dict:
        started, t0 = _now(), time.perf_counter()
        if self.checkpoint is not None:
            self._load()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.responses is not None:
            outputs = read_responses(Path(self.responses))
            generations = {(i, s): {"output": o, "missing": False} for (i, s), o in outputs.items()}
            selected = {item.id for _, item in self.pairs}
            self.unmatched_responses = sorted({i for i, _ in outputs if i not in selected})
            if self.unmatched_responses:
                shown = ", ".join(self.unmatched_responses[:3])
                print(f"note: {len(self.unmatched_responses)} answer(s) in {self.responses} match no selected item "
                      f"(e.g. {shown}); they were not graded", file=sys.stderr)
            likelihoods: dict[str, dict[str, dict]] = {}
        else:
            store = WorkStore(self.out_dir / "work.jsonl")
            try:
                generations = self._generate_all(store)
                likelihoods = self._likelihoods(store) if self.settings.likelihood else {}
            finally:
                store.close()
        results = self._assemble(generations, likelihoods, started, time.perf_counter() - t0)
        write_outputs(results, self.out_dir)
        return results

    def _assemble(self, generations: dict, likelihoods: dict, started: str, wall: float) -> dict:
        from graders.across import answer_contexts
        from graders.checks import grade_item
        from graders.likelihood import summarise_likelihood
        from graders.robustness import suite_findings
        from graders.score import aggregate, load_scoring

        items = []
        graded = []
        samples = self.settings.samples if self.responses is None else None
        for suite, item in self.pairs:
            sample_ids = range(samples) if samples else sorted(
                {s for (i, s) in generations if i == item.id} or {0})
            for sample in sample_ids:
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
        scoring = load_scoring()
        results: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        # Only the selected items (--limit) count as expected; an unanswered one counts as missing.
        selected = [SimpleNamespace(name=s.name, version=s.version, sha256=s.sha256,
                                    items=[it for su, it in self.pairs if su is s]) for s in self.suites]
        results.update(aggregate(items, scoring, seed=self.settings.seed, suites=selected))
        results["likelihood"] = summarise_likelihood(items) if likelihoods else None
        results["robustness"] = suite_findings(items)
        results["items"] = items
        results["meta"] = self._meta(started, wall, len(items))
        if self.loaded is not None:
            from graders.contaminated import flagged_items, mark_contaminated

            flagged = flagged_items(self.loaded.meta)
            if flagged:
                mark_contaminated(results, flagged, f"{self.checkpoint}: training data check")
        return results

    def _meta(self, started: str, wall: float, n_items: int) -> dict:
        meta: dict[str, Any] = {
            "checkpoint": self.checkpoint, "checkpoint_sha256": None, "model": None, "training": None,
            "responses_file": self.responses,
            "suites": {s.name: {"sha256": s.sha256, "version": s.version, "n_items": len(s.items)} for s in self.suites},
            "settings": self.settings.generation_dict() if self.responses is None else {"limit": self.settings.limit},
            "seed": self.settings.seed, "versions": _versions(), "started": started, "finished": _now(),
            "wall_seconds": round(wall, 2), "generated_tokens": self.generated_tokens,
            "tokens_per_second": round(self.generated_tokens / self.generation_seconds, 2)
            if self.generation_seconds else None,
            "peak_memory_mb": _peak_rss_mb(), "n_items": n_items,
            "selection": {"limit": self.settings.limit, "seed": self.settings.seed if self.settings.limit else None,
                          "method": "seeded sample stratified by tag" if self.settings.limit else "all items",
                          "n_selected": len(self.pairs), "n_available": sum(len(s.items) for s in self.suites)},
            # tokens_per_second covers this session's generations only; reused ones were timed before.
            "reused_answers": self.reused_answers, "unmatched_responses": len(self.unmatched_responses),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
        if self.loaded is not None:
            meta["checkpoint_sha256"] = self.loaded.sha256
            meta["model"] = {"name": self.loaded.config.name, "params": self.loaded.model.num_parameters(),
                             "arch": self.loaded.config.arch, "config": self.loaded.config.to_dict(),
                             "tokenizer": getattr(self.loaded.tokenizer, "name", None)}
            m = self.loaded.meta
            training = {k: m.get(k) for k in ("epoch", "step", "val_loss", "data_hash") if m.get(k) is not None}
            meta["training"] = training or None
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
    """results.json (atomically), items.csv and the scorecard."""
    import pandas as pd

    from reports.render import render_scorecard

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "results.json.tmp"
    tmp.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, out_dir / "results.json")
    columns = ["id", "category", "sample", "score", "missing", "new_tokens", "finish_reason", "prompt_truncated",
               "prompt", "output"]
    pd.DataFrame([{c: row.get(c) for c in columns} for row in results["items"]], columns=columns).to_csv(
        out_dir / "items.csv", index=False)
    render_scorecard(results, out_dir / "index.html")


def summary_table(results: dict) -> str:
    """The terminal summary: grade, criteria and categories (seed 000's table, with CIs), and what
    kind of run it was (partial, limited, reused answers, contaminated items)."""
    from reports.run_status import grade_qualifiers, run_notes

    lines = []
    grade_ci = results.get("grade_ci") or [None, None]
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
    meta = results.get("meta", {})
    if meta.get("tokens_per_second"):
        lines.append(f"Time: {meta['wall_seconds']:.0f}s, {meta['generated_tokens']} tokens generated at "
                     f"{meta['tokens_per_second']:.1f} tok/s, peak memory {meta['peak_memory_mb']:.0f} MB")
    return "\n".join(lines)


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
