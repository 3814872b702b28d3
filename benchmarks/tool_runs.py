"""``bench.py --tools python``: every selected item is also answered through the router (assistant
model -> optional code model -> sandbox), and its plain answer is kept beside it, so one run reports
accuracy with and without the tool. The routed answers are stored as they finish, like the others."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from benchmarks.store import WorkStore, work_key


def route_items(bench: Any, store: WorkStore) -> dict[tuple[str, int], dict]:
    """Routed answers for every (item, sample) of ``bench``: reused from the store or generated."""
    from hessgpt.errors import HessError
    from hessgpt.router import Router, load_code_model

    s = bench.settings
    engine = getattr(bench.backend, "engine", None)
    if engine is None:  # the router drives the engine round by round, so it needs a local model
        raise HessError("--tools: the code tool runs on a local model only (--checkpoint), "
                        f"not on a {getattr(bench.backend, 'kind', 'remote')} backend")
    identity = bench.backend.identity()
    code_model = load_code_model(s.code_checkpoint) if s.code_checkpoint else None
    todo, done = [], {}
    for _suite, item in bench.pairs:
        for sample in range(s.samples):
            gen = bench.backend.engine_settings(bench._sampling(item))
            key = work_key("route", identity, s.code_checkpoint, item.conversation(),
                           dataclasses.asdict(gen), sample, s.max_tool_calls)
            record = store.get(key)
            if record is not None:
                done[(item.id, sample)] = record
            else:
                todo.append((item, sample, gen, key))
    if not todo:
        return done
    router = Router(engine, code_model=code_model, max_calls=s.max_tool_calls)
    # Items with equal settings are routed together, a batch at a time (each round is one engine batch).
    chunk = max(1, s.batch_size)
    from benchmarks.runner import Progress

    bar = Progress(len(todo), "route", bench.progress)
    began = time.perf_counter()
    try:
        groups: dict[str, list] = {}
        for entry in todo:
            groups.setdefault(repr(dataclasses.asdict(entry[2])), []).append(entry)
        for group in groups.values():
            for start in range(0, len(group), chunk):
                part = group[start:start + chunk]
                answers = router.run([item.conversation() for item, *_ in part], part[0][2],
                                     request_ids=[f"{item.id}#{sample}" for item, sample, *_ in part])
                records = []
                for (item, sample, _gen, key), answer in zip(part, answers, strict=True):
                    bench.generated_tokens += answer.new_tokens
                    records.append({"key": key, "kind": "route", "id": item.id, "sample": sample,
                                    "output": answer.text, "new_tokens": answer.new_tokens,
                                    "finish_reason": answer.finish_reason, "prompt_tokens": answer.prompt_tokens,
                                    "prompt_truncated": answer.prompt_truncated, "tool_calls": answer.trace()})
                store.put_many(records)
                done.update({(r["id"], r["sample"]): r for r in records})
                bar.update(len(part))
    finally:
        bench.generation_seconds += time.perf_counter() - began
        bar.close()
    return done


def with_plain_answers(routed: dict[tuple[str, int], dict], plain: dict[tuple[str, int], dict]) -> dict:
    """The routed records, each carrying the same item's answer without the tool."""
    out = {}
    for key, record in routed.items():
        other = plain.get(key)
        out[key] = {**record, "no_tool_output": other.get("output") if other else None}
    return out
