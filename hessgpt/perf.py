"""Generation speed and memory, ours against transformers' generate() on the same weights.

    python -m hessgpt.perf generate [--batch-sizes 1,4,16,32] [--new-tokens 128] [--threads 2]
        [--linear-kernel fma,onednn] [--precision fp32,bf16] [--int8] [--device cpu]
        [--draft-tokens 4,0] [--transformers-lookup 4]
    python -m hessgpt.perf profile [--batch-sizes 1,16] [--threads 2]   # time per op of a decode step

Every configuration runs in a fresh subprocess so that its peak resident memory (RSS, read from
/proc, which sees torch's allocations where tracemalloc does not) is its own. The configurations
take turns (ours, transformers, ours, ...) ``--repeat`` times, so a slow spell of a shared machine
falls on both, and the fastest run of each is shown. The machine's matrix-vector read bandwidth is
measured first, and again in each batch-1 run's process right after it: batch-1 decoding reads every
weight once per token, so bandwidth / weight bytes is its upper bound, and each batch-1 row says how
close it comes to the bound of its own moment (a shared machine's bandwidth drifts). The weight bytes
are those the engine reads: a weight kept as codes counts its codes. Two peaks are reported:
the whole process (loading included) and generation only (the peak is reset after loading, so a
loader's temporary copies do not count). Prompts are short chat questions, decoding is greedy with a
fixed number of new tokens (EOS ignored), so both engines do the same work.

transformers is a test/benchmark dependency only: it is imported inside the worker functions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

QUESTIONS = [
    "What is the capital of France?",
    "Tell me a joke.",
    "How do plants grow?",
    "Write a haiku about rain.",
    "What is 2+2?",
    "Who wrote Hamlet?",
    "Explain gravity simply.",
    "Name three colors.",
    "Why is the sky blue?",
    "Give me a synonym for fast.",
    "What is a prime number?",
    "Say hello in French.",
    "How many legs does a spider have?",
    "What is the largest ocean?",
    "Describe a cat in one sentence.",
    "What does a bee make?",
]
REFERENCE = "smollm2-135m-instruct"
RANDOM_PRESET = "hessgpt-51m"


# -- measuring --------------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) so later readings cover only what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    import resource

    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_LOAD_PEAK_MB = 0.0


def reset_after_loading() -> None:
    """Remember the peak so far (loading, packing, warm-up), then reset it for the generation."""
    global _LOAD_PEAK_MB
    _LOAD_PEAK_MB = peak_rss_mb()
    reset_peak_rss()


def process_peak_rss_mb() -> float:
    return max(_LOAD_PEAK_MB, peak_rss_mb())


# -- workers (run in their own process) -----------------------------------------------------------------


def _prompt_ids(loaded: Any, batch: int, chat: bool) -> list[list[int]]:
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(batch)]
    if chat:
        return [loaded.chat_template.render([{"role": "user", "content": q}]).ids for q in questions]
    return [loaded.tokenizer.encode(q) for q in questions]


def _load(model: str) -> tuple[Any, bool]:
    from hessgpt.loading import load_model

    if model == "reference":
        from hessgpt.loading import resolve

        return load_model(resolve(REFERENCE)), True
    return load_model(f"preset:{RANDOM_PRESET}", seed=0), False


def worker_hessgpt(spec: dict) -> dict:
    from hessgpt.generate import Engine, GenerationRequest, GenerationSettings

    loaded, chat = _load(spec["model"])
    engine = Engine(
        loaded, batch_size=spec["batch"], int8=spec.get("int8", False), release_model_weights=True,
        precision=spec.get("precision", "fp32"), device=spec.get("device", "cpu"), linear=spec.get("linear"),
        draft_tokens=spec.get("draft_tokens"),
    )
    prompts = _prompt_ids(loaded, spec["batch"], chat)
    settings = GenerationSettings(max_new_tokens=spec["new_tokens"], ignore_eos=True)
    engine.generate([GenerationRequest(prompts[0], GenerationSettings(max_new_tokens=4, ignore_eos=True))])
    reset_after_loading()
    start, cpu = time.perf_counter(), time.process_time()
    drafted, accepted = engine.drafted, engine.accepted
    results = engine.generate([GenerationRequest(p, settings) for p in prompts])
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    tokens = sum(len(r.token_ids) for r in results)
    return {"tokens": tokens, "seconds": seconds, "cpu_seconds": cpu_seconds, "outputs": [r.token_ids for r in results],
            "weight_bytes": engine.model.weight_bytes(), "linear": engine.model.linear_path,
            "drafted": engine.drafted - drafted, "accepted": engine.accepted - accepted}


def bandwidth_matrix_bytes(cache_bytes: int | None) -> int:
    """Twice the last-level cache, at least 128 MiB, at most 2 GiB: a matrix that the caches cannot
    hold, or the bound measures the cache (a 480 MiB L3 read 128 MiB at 50 GB/s, memory at 32)."""
    return min(max(2 * (cache_bytes or 0), 128 << 20), 2 << 30)


def worker_bandwidth(spec: dict) -> dict:
    """Read bandwidth of a matrix-vector product over a matrix larger than the caches (GB/s)."""
    import torch

    from hessgpt.machine import last_level_cache_bytes

    cols = 4096
    rows = spec.get("bytes", bandwidth_matrix_bytes(last_level_cache_bytes())) // (4 * cols)
    matrix = torch.randn(rows, cols)
    vector = torch.randn(cols)
    for _ in range(3):
        torch.mv(matrix, vector)
    best = float("inf")
    for _ in range(spec.get("runs", 20)):
        start = time.perf_counter()
        torch.mv(matrix, vector)
        best = min(best, time.perf_counter() - start)
    return {"gb_per_s": matrix.numel() * 4 / best / 1e9, "matrix_mib": matrix.numel() * 4 >> 20}


def _hf_random_gpt2(loaded: Any) -> Any:
    import transformers

    from hessgpt.importers.hf_gpt2 import _CONV1D

    cfg = loaded.config
    hf_cfg = transformers.GPT2Config(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    hf = transformers.GPT2LMHeadModel(hf_cfg)
    state = {
        k: (v.t().contiguous() if k.endswith(_CONV1D) else v) for k, v in loaded.model.state_dict().items()
    }
    state["lm_head.weight"] = state["transformer.wte.weight"]
    missing, unexpected = hf.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith((".attn.bias", ".attn.masked_bias")) for k in missing):
        raise RuntimeError(f"weight mapping to transformers failed: {missing} {unexpected}")
    return hf


def worker_transformers(spec: dict) -> dict:
    import torch
    import transformers

    loaded, chat = _load(spec["model"])
    prompts = _prompt_ids(loaded, spec["batch"], chat)
    pad = loaded.tokenizer.eos_id if loaded.tokenizer.eos_id is not None else 0
    if spec["model"] == "reference":
        from hessgpt.reference import find_gguf

        gguf = find_gguf()
        if gguf is None:
            raise RuntimeError("the reference GGUF is needed for transformers (set HESSGPT_SMOLLM2_GGUF)")
        del loaded
        hf = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    else:
        hf = _hf_random_gpt2(loaded)
        del loaded
    hf.eval()
    hf.generation_config.eos_token_id = None  # like ignore_eos: never stop, never mask EOS
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    n = spec["new_tokens"]
    with torch.inference_mode():
        hf.generate(ids[:1, -len(prompts[0]) :], max_new_tokens=4, do_sample=False, pad_token_id=pad)
        reset_after_loading()
        start, cpu = time.perf_counter(), time.process_time()
        lookup = {"prompt_lookup_num_tokens": spec["lookup"]} if spec.get("lookup") else {}
        out = hf.generate(ids, attention_mask=mask, max_new_tokens=n, do_sample=False, pad_token_id=pad, **lookup)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    new = out[:, width:]
    return {"tokens": int(new.numel()), "seconds": seconds, "cpu_seconds": cpu_seconds, "outputs": new.tolist()}


def worker_profile(spec: dict) -> dict:
    """One decode step of the reference model at ``batch`` rows (keys at 100 positions): wall time
    per step, then torch.profiler's self time per op over ``steps`` steps, with call counts per step."""
    import torch

    from hessgpt.generate import Engine
    from hessgpt.inference import Segment

    loaded, _ = _load(spec["model"])
    engine = Engine(loaded, batch_size=spec["batch"], release_model_weights=True,
                    precision=spec.get("precision", "fp32"), linear=spec.get("linear"))
    model, batch, steps = engine.model, spec["batch"], spec.get("steps", 20)
    cache = model.new_cache(batch, 128)
    generator = torch.Generator().manual_seed(0)
    model.forward(torch.randint(0, 1000, (batch * 100,), generator=generator),
                  [Segment(s, 0, 100) for s in range(batch)], cache)
    tokens, last = torch.randint(0, 1000, (batch,), generator=generator), torch.arange(batch)
    segments = [Segment(s, 100, 1) for s in range(batch)]
    for _ in range(5):
        model.forward(tokens, segments, cache, last)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        model.forward(tokens, segments, cache, last)
    wall_ms = (time.perf_counter() - start) / steps * 1e3
    cpu_ms = (time.process_time() - cpu) / steps * 1e3
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            model.forward(tokens, segments, cache, last)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    ops = [{"op": e.key, "ms_per_step": e.self_cpu_time_total / 1e3 / steps, "calls_per_step": e.count / steps}
           for e in events]
    return {"wall_ms": wall_ms, "cpu_ms": cpu_ms, "ops": ops, "linear": model.linear_path,
            "threads": torch.get_num_threads()}


def cmd_profile(args: argparse.Namespace) -> int:
    from hessgpt.machine import describe_machine

    machine = describe_machine()
    print(f"machine: {machine['cpu_model']} ({machine['isa']}), {machine['cpus']} CPUs, "
          f"load average {_load_average()}; {REFERENCE}, one decode step, keys at 100 positions")
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        spec = {"engine": "profile", "model": "reference", "batch": batch, "threads": args.threads,
                "steps": args.steps, "precision": args.precision, "linear": args.linear_kernel or None}
        result = measure(spec, dict(os.environ))
        if "error" in result:
            print(f"batch {batch}: failed: {result['error']}")
            continue
        ops = result["ops"]
        total = sum(o["ms_per_step"] for o in ops)
        print(f"\nbatch {batch} ({result['linear']}, {result['threads']} threads): {result['wall_ms']:.1f} ms per "
              f"step wall, {result['cpu_ms']:.1f} ms CPU; under the profiler {total:.1f} ms in "
              f"{sum(o['calls_per_step'] for o in ops):.0f} op calls per step")
        print(f"  {'op':<34}{'ms/step':>9}{'share':>8}{'calls/step':>12}")
        for o in ops[: args.top]:
            print(f"  {o['op']:<34}{o['ms_per_step']:>9.2f}{100 * o['ms_per_step'] / total:>7.1f}%"
                  f"{o['calls_per_step']:>12.0f}")
    return 0


def run_worker(spec: dict) -> dict:
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    if spec["engine"] == "bandwidth":
        return worker_bandwidth(spec) | {"threads": torch.get_num_threads()}
    if spec["engine"] == "profile":
        return worker_profile(spec)
    result = (worker_hessgpt if spec["engine"] == "hessgpt" else worker_transformers)(spec)
    result.update(
        peak_rss_mb=round(peak_rss_mb(), 1),
        process_peak_rss_mb=round(process_peak_rss_mb(), 1),
        threads=torch.get_num_threads(),
        tokens_per_second=result["tokens"] / result["seconds"],
    )
    if spec["engine"] == "hessgpt" and spec["batch"] == 1:
        # The bound of this very run: a shared machine's bandwidth drifts by a third within minutes, so a
        # probe taken at the start of the script can make a run read 80% or 130% of "the" bound.
        result["run_gb_per_s"] = worker_bandwidth({})["gb_per_s"]
    return result


# -- the driver -----------------------------------------------------------------------------------------


def measure(spec: dict, env: dict[str, str]) -> dict:
    from hessgpt.cpu_steal import StealMeter

    cmd = [sys.executable, "-m", "hessgpt.perf", "_worker", json.dumps(spec)]
    steal = StealMeter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"cpu_steal": steal.share()}


def _agreement(ours: list[list[int]], theirs: list[list[int]]) -> str:
    """Rows with identical greedy tokens, and the mean length of the common prefix."""
    same = sum(a == b for a, b in zip(ours, theirs, strict=False))
    prefixes = []
    for a, b in zip(ours, theirs, strict=False):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        prefixes.append(n)
    return f"{same}/{len(ours)} rows, common prefix {sum(prefixes) / max(len(prefixes), 1):.0f} tokens"


def _draft_counts(text: str) -> list[int]:
    """``--draft-tokens``: comma-separated integers >= 0."""
    counts = [part.strip() for part in text.split(",") if part.strip()]
    if not all(c.isdigit() for c in counts):
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 0, got {text!r}")
    return [int(c) for c in counts]


def _variants(args: argparse.Namespace) -> list[dict]:
    """Our engine's configurations to measure: one per linear path, precision and number of draft
    tokens, then int8."""
    out = []
    drafts = args.draft_tokens or [None]
    for linear in [k for k in (args.linear_kernel or "").split(",") if k] or [None]:
        for precision in [p for p in args.precision.split(",") if p]:
            for draft in drafts:
                tags = [t for t in (linear, None if draft is None else f"guesses {draft}") if t]
                name = "hessgpt" + ("" if precision == "fp32" else f"-{precision}") + (f"[{','.join(tags)}]" if tags else "")
                out.append({"name": name, "engine": "hessgpt", "precision": precision, "linear": linear,
                            "draft_tokens": draft})
    if args.int8:
        out.append({"name": "hessgpt-int8", "engine": "hessgpt", "int8": True})
    return out


def _interleaved(specs: list[dict], env: dict[str, str], repeat: int) -> list[dict]:
    """Each spec run ``repeat`` times in turns; the fastest good run of each (or its first error)."""
    runs: list[list[dict]] = [[] for _ in specs]
    for _ in range(max(1, repeat)):
        for i, spec in enumerate(specs):
            runs[i].append(measure(spec, env))
    best = []
    for spec_runs in runs:
        good = [r for r in spec_runs if "error" not in r]
        best.append(max(good, key=lambda r: r["tokens_per_second"]) if good else spec_runs[0])
    return best


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cmd_generate(args: argparse.Namespace) -> int:
    from hessgpt.machine import describe_machine

    env = dict(os.environ)
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    models = [m for m in ("reference", "random") if m in args.models.split(",")]
    variants = _variants(args)
    machine = describe_machine()
    print(f"machine: {machine['cpu_model']} ({machine['isa']}, torch {machine['torch_cpu_capability']}), "
          f"{machine['cpus']} CPUs, load average {_load_average()} (1, 5, 15 min)", flush=True)
    bandwidth = measure({"engine": "bandwidth", "threads": args.threads}, env)
    gbps = bandwidth.get("gb_per_s")
    print(f"matrix-vector read bandwidth: {gbps:.1f} GB/s (fp32 sgemv over {bandwidth['matrix_mib']} MiB, more than "
          "the last-level cache holds, best of 20)" if gbps
          else f"matrix-vector read bandwidth: failed ({bandwidth.get('error')})", flush=True)
    rows = [{"engine": "bandwidth", **bandwidth}]
    print(
        f"greedy, {args.new_tokens} new tokens, short chat prompts; threads={args.threads or 'torch default'}, "
        f"OMP_WAIT_POLICY={env.get('OMP_WAIT_POLICY', 'unset')}, device={args.device}; fresh process per run, "
        f"engines in turns, best of {args.repeat}",
        flush=True,
    )
    header = (f"{'model':<24}{'engine':<24}{'batch':>6}{'tokens/s':>10}{'vs hf':>7}{'MB/token':>9}{'% bound, GB/s':>15}{'tok/CPU-s':>10}"
              f"{'steal':>6}{'peak RSS MB':>13}{'(incl. load)':>14}{'guesses kept':>14}  greedy tokens vs ours (first row)")
    print(header)
    print("-" * len(header))
    for model in models:
        name = REFERENCE if model == "reference" else f"{RANDOM_PRESET} (random)"
        for batch in batch_sizes:
            base = {"model": model, "batch": batch, "new_tokens": args.new_tokens, "threads": args.threads}
            specs = [base | v | {"device": args.device} for v in variants]
            if not args.no_transformers:
                specs.append(base | {"name": "transformers", "engine": "transformers"})
                if batch == 1 and args.transformers_lookup:  # its prompt lookup runs one row only
                    specs.append(base | {"name": f"transformers+lookup {args.transformers_lookup}",
                                         "engine": "transformers", "lookup": args.transformers_lookup})
            results = _interleaved(specs, env, args.repeat)
            plain = next((i for i, s in enumerate(specs) if s["name"] == "transformers"), None)
            hf = results[plain] if plain is not None and "error" not in results[plain] else None
            ours = next((r["outputs"] for r in results if "error" not in r), None)
            for spec, result in zip(specs, results, strict=True):
                if "error" in result:
                    print(f"{name:<24}{spec['name']:<24}{batch:>6}  failed: {result['error']}", flush=True)
                    continue
                tps = result["tokens_per_second"]
                ratio = f"{tps / hf['tokens_per_second']:.2f}x" if hf and result is not hf else "-"
                bound = "-"
                if result.get("run_gb_per_s") and result.get("weight_bytes"):
                    run_gbps = result["run_gb_per_s"]
                    bound = f"{100 * tps / (run_gbps * 1e9 / result['weight_bytes']):.0f}% of {run_gbps:.1f}"
                read = f"{result['weight_bytes'] / 1e6:.0f}" if result.get("weight_bytes") else "-"
                kept = "-"
                if result.get("drafted"):
                    kept = f"{result['accepted']}/{result['drafted']}"
                agree = "-" if result["outputs"] is ours else _agreement(ours, result["outputs"])
                steal = "-" if result.get("cpu_steal") is None else f"{100 * result['cpu_steal']:.0f}%"
                print(
                    f"{name:<24}{spec['name']:<24}{batch:>6}{tps:>10.1f}{ratio:>7}{read:>9}{bound:>15}"
                    f"{result['tokens'] / max(result['cpu_seconds'], 1e-9):>10.1f}{steal:>6}"
                    f"{result['peak_rss_mb']:>13.0f}{result['process_peak_rss_mb']:>14.0f}{kept:>14}  {agree}",
                    flush=True,
                )
                result.pop("outputs")
                rows.append({**spec, **result})
    print("tok/CPU-s: tokens per second of CPU time the process used (all its threads): on a shared machine "
          "less sensitive than tokens/s to time lost waiting for a core")
    print("steal: the share of the machine's CPU time the host gave to other work during that run (/proc/stat); "
          "a row with much of it measured the host as much as the engine")
    print("guesses kept: guessed tokens (speculative decoding from the row's own text, --draft-tokens) the model "
          "chose too, of those fed; each kept one is a token that took no pass of its own")
    print("MB/token: the bytes of weights a pass reads, less than the fp32 weights where the fma path keeps a weight "
          "imported from a quantized file as its codes (the same results)")
    print("% bound, GB/s: batch-1 tokens/s over the bound of that run, the matrix-vector bandwidth measured in its "
          "process right after it (GB/s shown) over the bytes of the weights read per token; with guesses kept a pass "
          "yields more than one token, so this can pass 100%; linear paths: "
          + ", ".join(sorted({str(r.get('linear')) for r in rows if r.get('linear')})))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        print(json.dumps(run_worker(json.loads(argv[1]))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m hessgpt.perf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="tokens per second and peak memory, ours vs transformers")
    gen.add_argument("--batch-sizes", default="1,4,16,32")
    gen.add_argument("--new-tokens", type=int, default=128)
    gen.add_argument(
        "--threads", type=int, default=None, help="torch threads in every worker (default: torch's)"
    )
    gen.add_argument(
        "--models", default="reference,random", help="reference (SmolLM2) and/or random (hessgpt-51m)"
    )
    gen.add_argument("--no-transformers", action="store_true", help="measure only our engine")
    gen.add_argument("--int8", action="store_true", help="also measure our engine with int8 weights")
    gen.add_argument("--precision", default="fp32", help="our engine's precisions to measure, comma-separated: "
                     "fp32 and/or bf16 (bf16 is not lossless)")
    gen.add_argument("--linear-kernel", default="", help="linear paths to measure side by side, comma-separated "
                     "(fma, onednn, mkl-pad4, torch; default: the one the engine picks for this CPU)")
    gen.add_argument("--draft-tokens", type=_draft_counts, default=[], help="our engine's guessed tokens (speculative decoding) per row and step to measure side "
                     "by side, comma-separated, e.g. 4,0 (default: the engine's own, DRAFT_TOKENS; 0 = none)")
    gen.add_argument("--transformers-lookup", type=int, default=0, metavar="N",
                     help="at batch 1, also run transformers with prompt_lookup_num_tokens=N, its own speculative "
                     "decoding from the prompt (default: 0, not run)")
    gen.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where our engine runs")
    gen.add_argument(
        "--omp-wait-policy",
        default="",
        help="OpenMP wait policy for every worker (default: unset, torch's own, which is what bench.py and "
        "hessgpt generate run with). PASSIVE helps only when other processes share the cores (spinning threads "
        "then wait on descheduled ones); on an idle 2-core machine it makes every small op wake sleeping "
        "threads and costs about 45%% at batch 1 and 25%% at batch 16",
    )
    gen.add_argument("--repeat", type=int, default=2, help="runs per configuration; the fastest is shown")
    gen.add_argument("--json", help="also write the measurements to this file")
    prof = sub.add_parser("profile", help="time per op of one decode step of the reference model")
    prof.add_argument("--batch-sizes", default="1,16")
    prof.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    prof.add_argument("--steps", type=int, default=20, help="decode steps timed and profiled")
    prof.add_argument("--top", type=int, default=15, help="ops shown, by self time")
    prof.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    prof.add_argument("--linear-kernel", default="", help="force a linear path (fma, onednn, mkl-pad4, torch)")
    args = parser.parse_args(argv)
    return cmd_profile(args) if args.command == "profile" else cmd_generate(args)


if __name__ == "__main__":
    sys.exit(main())
