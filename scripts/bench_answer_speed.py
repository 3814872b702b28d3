"""Batch-1 speed on the bench's own questions: ours with and without guessed tokens, and transformers.

``python -m hessgpt.perf generate`` times short questions with EOS ignored, so both engines do the same
work, but what follows an answer there is text the model invents. This script answers a sample of
the bench's real requests (every ``--every``-th, the same chat template, token caps and stops as
``bench.py``) one at a time, as a chat user or a server with one user would, and prints in one run:

- our engine with guessed tokens (speculative decoding from the row's own text, the default),
- our engine without them (``draft_tokens=0``),
- transformers' ``generate()`` on the same GGUF, plain and with its own prompt lookup,

each in turns ``--rounds`` times (the fastest round shown), with how many answers are token for token
those of our engine.

    python scripts/bench_answer_speed.py                      # every 10th request, one round
    python scripts/bench_answer_speed.py --every 5 --rounds 2 --no-transformers
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REFERENCE = "checkpoints/smollm2-135m-instruct.pt"


def bench_requests(engine: Any, every: int) -> list[Any]:
    """The engine requests bench.py makes for its default suites, every ``every``-th of them."""
    from benchmarks.backends.base import SamplingSettings
    from benchmarks.backends.local import LocalBackend
    from benchmarks.runner import default_suite_names, item_sampling, select_items
    from benchmarks.suite import load_suites

    names = default_suite_names()
    suites = load_suites(names=names) if names else load_suites()
    requests = []
    for _suite, item in select_items(suites, None)[::every]:
        settings = LocalBackend.engine_settings(item_sampling(item, SamplingSettings(), engine.context))
        requests.append(engine.chat_request(item.conversation(), settings, request_id=item.id))
    return requests


def run_ours(engine: Any, requests: list[Any]) -> dict:
    drafted, accepted = engine.drafted, engine.accepted
    start = time.perf_counter()
    results = engine.generate(requests)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "answers": [r.token_ids for r in results],
            "kept": f"{engine.accepted - accepted}/{engine.drafted - drafted}" if engine.drafted > drafted else "-"}


def run_transformers(model: Any, requests: list[Any], lookup: int) -> dict:
    import torch

    answers = []
    start = time.perf_counter()
    with torch.inference_mode():
        for r in requests:
            stops = list(r.stop_token_ids)
            s = r.settings
            out = model.generate(torch.tensor([r.prompt_ids]), max_new_tokens=s.max_new_tokens, do_sample=False,
                                 eos_token_id=stops, pad_token_id=stops[0], repetition_penalty=s.repetition_penalty,
                                 **({"prompt_lookup_num_tokens": lookup} if lookup else {}))
            new = out[0, len(r.prompt_ids):].tolist()
            answers.append(new[:-1] if new and new[-1] in stops else new)
    return {"seconds": time.perf_counter() - start, "answers": answers, "kept": "-"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=REFERENCE)
    parser.add_argument("--every", type=int, default=10, help="take every N-th bench request (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each configuration, in turns")
    parser.add_argument("--no-transformers", action="store_true", help="time only our engine")
    args = parser.parse_args(argv)
    if args.every < 1 or args.rounds < 1:
        parser.error("--every and --rounds: must be integers >= 1")

    from hessgpt.generate import DRAFT_TOKENS, Engine
    from hessgpt.loading import load_model
    from hessgpt.machine import describe_machine

    loaded = load_model(args.checkpoint)
    engines = {f"hessgpt, guesses ({DRAFT_TOKENS})": Engine(loaded, batch_size=1),
               "hessgpt, no guesses": Engine(loaded, batch_size=1, draft_tokens=0)}
    requests = bench_requests(next(iter(engines.values())), args.every)
    runs = {name: (lambda e=e: run_ours(e, requests)) for name, e in engines.items()}
    if not args.no_transformers:
        import torch
        import transformers

        from hessgpt.reference import find_gguf

        gguf = find_gguf()
        if gguf is None:
            parser.error("transformers needs the SmolLM2 GGUF (make setup installs it); or pass --no-transformers")
        hf = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                               dtype=torch.float32).eval()
        runs["transformers"] = lambda: run_transformers(hf, requests, 0)
        runs[f"transformers, prompt lookup {DRAFT_TOKENS}"] = lambda: run_transformers(hf, requests, DRAFT_TOKENS)
    for engine in engines.values():  # kernels built, first-touch memory paid
        engine.generate(requests[:1])

    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, run in runs.items():
            result = run()
            if name not in best or result["seconds"] < best[name]["seconds"]:
                best[name] = result
    machine = describe_machine()
    ours = best[next(iter(engines))]["answers"]
    rates = {name: sum(len(a) for a in r["answers"]) / r["seconds"] for name, r in best.items()}
    hf_rate = rates.get("transformers")
    print(f"machine: {machine['cpu_model']} ({machine['isa']}), {machine['cpus']} CPUs; {len(requests)} bench requests "
          f"(every {args.every}-th), batch 1, greedy, stopping at the end of the turn; best of {args.rounds}")
    print(f"{'engine':<34}{'tokens':>8}{'tokens/s':>10}{'vs hf':>7}{'guesses kept':>14}  answers equal to ours")
    for name, result in best.items():
        ratio = f"{rates[name] / hf_rate:.2f}x" if hf_rate and name != "transformers" else "-"
        same = sum(a == b for a, b in zip(result["answers"], ours, strict=True))
        print(f"{name:<34}{sum(len(a) for a in result['answers']):>8}{rates[name]:>10.1f}{ratio:>7}"
              f"{result['kept']:>14}  {same}/{len(ours)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
