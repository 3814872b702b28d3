"""``bench.py``: run the bench on checkpoints or on answers produced elsewhere; ``compare`` and ``gate``.

    python bench.py --checkpoint epoch6.pt
    python bench.py --checkpoint 'checkpoints/run/epoch*.pt'     # each, then a trend page
    python bench.py --responses answers.jsonl
    python bench.py --endpoint http://127.0.0.1:8000/v1 --model NAME --chat-template tokenizer_config.json
    python bench.py compare RUN_A RUN_B
    python bench.py gate --run RUN --baseline RUN_OLD
    python bench.py validity --split heldout        # agreement of the graders with human scores
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hessgpt import flags
from hessgpt.errors import HessError

RUNS_DIR = Path("reports/runs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py",
        description="Grade a language model out of 20 on the HessGPT Bench suites. "
                    "Subcommands: `bench.py compare RUN_A RUN_B`, `bench.py gate --run R --baseline B`, "
                    "`bench.py export-prompts --out prompts.jsonl`, `bench.py validity --split heldout`.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", nargs="+", metavar="CK",
                     help="checkpoint file(s) or name(s) under checkpoints/; globs allowed (ordered by recorded epoch, "
                          "copies such as best.pt left out); several give a trend page; all are checked first")
    src.add_argument("--responses", metavar="FILE.jsonl",
                     help="grade answers produced elsewhere (one {\"id\", \"output\"} per line), no model")
    src.add_argument("--endpoint", metavar="URL",
                     help="grade a model served behind an OpenAI-compatible API (vLLM, llama.cpp server, "
                          "hessgpt serve), e.g. http://127.0.0.1:8000/v1; needs --model")
    http = p.add_argument_group("OpenAI-compatible endpoint (--endpoint)")
    http.add_argument("--model", help="the model name the endpoint serves (the 'model' field of each request)")
    http.add_argument("--chat-template", metavar="FILE|CHECKPOINT",
                      help="the served model's chat template, for likelihoods through /v1/completions: a "
                           "tokenizer_config.json, a jinja file, or a checkpoint (without it, likelihood metrics "
                           "are reported as not available)")
    http.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key (sent as a "
                                                           "Bearer token, never logged)")
    http.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    http.add_argument("--timeout", type=float, default=120.0, help="seconds before a request is given up and "
                                                                   "retried (default 120)")
    http.add_argument("--retries", type=int, default=5, help="retries of a request after 429, 5xx, a timeout or "
                                                             "a connection error, with exponential backoff (default 5)")
    http.add_argument("--log-requests", type=Path, metavar="FILE.jsonl",
                      help="append every request and response (with status and timing) to this JSONL file")
    p.add_argument("--out", type=Path, help="output folder (default: reports/runs/<checkpoint name>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in the output folder when it is a different run (other model, "
                        "suites or settings); without it such a folder is refused")
    p.add_argument("--suite", help="comma-separated suites to run (default: all)")
    p.add_argument("--suites-dir", type=Path, help="folder of suite YAML files (default: the shipped suites)")
    p.add_argument("--limit", type=int, help="only the first N items of each selected suite")
    p.add_argument("--seed", type=flags.seed, default=0, help="seed for sampling and bootstrap (default 0)")
    p.add_argument("--batch-size", type=int,
                   help="generation batch size (results do not depend on it; default: 32 where the CPU's exact "
                        "kernels run AVX-512 and 8 GiB are free, else 16)")
    p.add_argument("--samples", type=int, default=1, help="sampled answers per item (needs --temperature > 0)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="default answer length cap (items may override)")
    p.add_argument("--temperature", type=flags.finite_float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=flags.finite_float, default=1.0, help="nucleus sampling mass")
    p.add_argument("--repetition-penalty", type=flags.finite_float, default=1.0, help="CTRL repetition penalty (1 = off)")
    p.add_argument("--no-repeat-ngram-size", type=int, default=0, help="forbid repeating n-grams of this size")
    p.add_argument("--no-likelihood", action="store_true", help="skip perplexity, bits per byte and multiple choice")
    p.add_argument("--int8", action="store_true", help=flags.INT8_HELP)
    flags.add_engine_arguments(p)
    p.add_argument("--tools", choices=["python"], help="also answer every item through the code tool (router + "
                   "sandbox); the scorecard shows accuracy with and without it")
    p.add_argument("--code-checkpoint", metavar="CK", help="with --tools: a code model that rewrites each code block")
    p.add_argument("--max-tool-calls", type=int, default=3, help="with --tools: tool calls per answer (default 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no summary tables")
    return p


def _settings(args: argparse.Namespace):
    from benchmarks.backends.base import SamplingSettings
    from benchmarks.runner import BenchSettings
    from hessgpt.kernels import BATCH_SIZE, default_batch_size, resolve_device

    if args.int8 and args.precision != "fp32":
        raise HessError("--int8: runs in fp32 only; drop --precision bf16")
    suites = None
    if args.suite is not None:
        suites = [s.strip() for s in args.suite.split(",") if s.strip()]
        if not suites:
            raise HessError(f"--suite: no suite named in {args.suite!r}; give comma-separated suite names, "
                            "or leave the flag out to run all suites")
    sampling = SamplingSettings(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, no_repeat_ngram_size=args.no_repeat_ngram_size, seed=args.seed,
    )
    device = resolve_device(args.device)
    batch_size = args.batch_size
    if batch_size is None:
        batch_size = default_batch_size(device, args.precision, args.int8) if args.checkpoint else BATCH_SIZE
    return BenchSettings(
        suites=suites, limit=args.limit, batch_size=batch_size, samples=args.samples, sampling=sampling,
        likelihood=not args.no_likelihood, int8=args.int8, tools=args.tools, code_checkpoint=args.code_checkpoint,
        max_tool_calls=args.max_tool_calls, precision=args.precision, device=device,
    )


def _default_out(name: str) -> Path:
    stem = Path(name).stem if name.endswith((".pt", ".gguf", ".bin", ".safetensors", ".jsonl")) else Path(name).name
    parent = Path(name).parent.name
    # epoch files of different runs must not share a folder: keep the run folder's name too.
    label = f"{parent}-{stem}" if parent and parent not in (".", "checkpoints") else stem
    return RUNS_DIR / label


# -------------------------------------------------------------- checkpoints: check, order, dedup


@dataclass(frozen=True)
class CheckpointProbe:
    """What a cheap look at a checkpoint tells, without building the model."""

    arg: str  # as given on the command line (or matched by a glob)
    file: Path | None  # None for preset:NAME
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> float | None:
        return _number(self.meta.get("epoch"))

    @property
    def step(self) -> float | None:
        return _number(self.meta.get("step"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def probe_checkpoint(arg: str) -> CheckpointProbe:
    """Check that a checkpoint exists and that ``load_model`` can open it, without building it, so a
    bad file in a series of ten fails before the first run starts instead of after nine."""
    from hessgpt.loading import probe_model

    file, meta = probe_model(arg)
    return CheckpointProbe(arg, file, meta)


def is_training_state(arg: str) -> bool:
    """True for the trainer's resume file (``last_state.pt``: weights + optimiser, no tokenizer), which
    a glob such as ``checkpoints/run/*.pt`` also matches but the bench cannot grade."""
    from hessgpt.checkpoint import safe_torch_load
    from hessgpt.train import STATE_FORMAT

    path = Path(arg)
    if not path.is_file():
        return False
    try:
        obj = safe_torch_load(path)
    except HessError:
        return False
    return isinstance(obj, dict) and obj.get("format") == STATE_FORMAT


def _weights_digest(probe: CheckpointProbe) -> str:
    """sha256 of the weights alone (a native file) or of the whole file: equal for the same model."""
    import hashlib

    import torch

    from hessgpt.checkpoint import is_native, safe_torch_load, sha256_file

    assert probe.file is not None
    obj = safe_torch_load(probe.file)
    if not is_native(obj):
        return sha256_file(probe.file)
    digest = hashlib.sha256()
    for name in sorted(obj["model"]):
        tensor = obj["model"][name]
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _ordered(group: list[CheckpointProbe]) -> list[CheckpointProbe]:
    """A glob's matches by recorded (epoch, step) when every file has one, else in natural order."""
    if all(p.epoch is not None for p in group):
        return sorted(group, key=lambda p: (p.epoch, p.step or 0.0, "best_of_epochs" in p.meta))
    if all(p.step is not None for p in group):
        return sorted(group, key=lambda p: (p.step, "best_of_epochs" in p.meta))
    return group  # expand_checkpoints already sorted them naturally (epoch2 before epoch10)


def _duplicates(group: list[CheckpointProbe]) -> dict[str, str]:
    """Glob matches whose weights equal another match's: {dropped arg: kept arg}.

    The trainer's best.pt is a second copy of one epoch file (same epoch, step and weights, plus
    ``best_of_epochs``); running it again would put one model twice on the trend. Only files that
    could be copies (same epoch and step, or same size without metadata) are hashed.
    """
    candidates: dict[tuple, list[CheckpointProbe]] = {}
    for p in group:
        if p.file is None:
            continue
        key = ("meta", p.epoch, p.step) if p.epoch is not None or p.step is not None else ("size", p.file.stat().st_size)
        candidates.setdefault(key, []).append(p)
    dropped: dict[str, str] = {}
    for members in candidates.values():
        if len(members) < 2:
            continue
        # Keep the epoch file over the trainer's best copy, then the first in order.
        members = sorted(members, key=lambda p: "best_of_epochs" in p.meta)
        kept: dict[str, str] = {}
        for p in members:
            digest = _weights_digest(p)
            if digest in kept:
                dropped[p.arg] = kept[digest]
            else:
                kept[digest] = p.arg
    return dropped


def plan_checkpoints(patterns: list[str]) -> tuple[list[str], list[str]]:
    """The checkpoints to run, in order, and notes on what was left out.

    Every file is checked first (``probe_checkpoint``), so a bad one fails in one line before any
    run starts. Paths given one by one run in the order given; a glob's matches run in the order
    of their recorded epoch (or step), and a match with the same weights as another one (best.pt)
    is left out, and so is the trainer's training state (last_state.pt). The same file given twice
    runs once.
    """
    from benchmarks.runner import expand_checkpoints

    plan: list[str] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
    for pattern in patterns:
        matches = expand_checkpoints([pattern])
        probes = []
        for match in matches:
            try:
                probes.append(probe_checkpoint(match))
            except HessError:
                if not is_training_state(match):
                    raise
                if len(matches) == 1:
                    raise HessError(f"{match}: a training state (the trainer's resume file: weights and "
                                    "optimiser), not a checkpoint to grade; give an epochN.pt file of the same "
                                    "run") from None
                notes.append(f"--checkpoint: skipping {match}: a training state (for hessgpt train --resume), "
                             "not a checkpoint")
        if len(probes) > 1:
            dropped = _duplicates(probes)
            for arg, kept in dropped.items():
                notes.append(f"--checkpoint: skipping {arg}: same weights as {kept}")
            probes = _ordered([p for p in probes if p.arg not in dropped])
        for p in probes:
            key = str(p.file.resolve()) if p.file is not None else p.arg
            if key in seen:
                notes.append(f"--checkpoint: skipping {p.arg}: already listed as {seen[key]}")
                continue
            seen[key] = p.arg
            plan.append(p.arg)
    return plan, notes


def _run_dirs(base: Path, checkpoints: list[str]) -> list[Path]:
    """One folder per checkpoint under ``base``; a clash of names gets a numbered suffix."""
    out, used = [], set()
    for ck in checkpoints:
        name = _default_out(ck).name
        unique, n = name, 2
        while unique in used:
            unique, n = f"{name}-{n}", n + 1
        used.add(unique)
        out.append(base / unique)
    return out


def run_bench(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not args.endpoint:
        for flag in ("model", "chat_template", "api_key_env", "log_requests"):
            if getattr(args, flag):
                raise HessError(f"--{flag.replace('_', '-')}: only used with --endpoint")
    settings.validate()  # a bad flag fails before any file is read or any endpoint asked
    _check_suites(settings, args.suites_dir)
    if args.endpoint:
        out = args.out or RUNS_DIR / _slug(args.model or "endpoint")
        _claim(out, f"{args.endpoint} {args.model}", settings, args)
        backend = _endpoint_backend(args)
        _run_one(backend, out, settings, args)
        return 0
    if args.responses:
        from benchmarks.backends.responses import ResponsesBackend

        out = args.out or _default_out(args.responses)
        _claim(out, str(Path(args.responses).resolve()), settings, args)
        _run_one(ResponsesBackend(args.responses), out, settings, args)
        return 0
    checkpoints, notes = plan_checkpoints(args.checkpoint)
    for note in notes:
        print(note, file=sys.stderr)
    several = len(checkpoints) > 1
    base = args.out or (RUNS_DIR / "trend" if several else _default_out(checkpoints[0]))
    outs = _run_dirs(base, checkpoints) if several else [base]
    for ck, out in zip(checkpoints, outs, strict=True):  # every folder checked before the first model loads
        _claim(out, ck if ck.startswith("preset:") else str(Path(ck).resolve()), settings, args)
    for ck, out in zip(checkpoints, outs, strict=True):
        if several:
            print(f"== {ck}", file=sys.stderr)
        from benchmarks.backends.local import LocalBackend

        backend = LocalBackend(ck, batch_size=settings.batch_size, int8=settings.int8,
                               precision=settings.precision, device=settings.device)
        _run_one(backend, out, settings, args)
    if several:
        from reports.compare import build_trend, format_trend_table, write_trend_page

        trend = build_trend(outs, seed=args.seed)
        page = write_trend_page(trend, base)
        if not args.quiet:
            print(f"\nTrend over {len(outs)} checkpoints (paired grade change from the previous one):")
            print(format_trend_table(trend))
        print(f"trend: {page}")
    return 0


def _check_suites(settings: Any, suites_dir: Path | None) -> None:
    """The selected suites load and each one counts in the scoring (or is graded by computation and
    reported on its own), before any model work."""
    from benchmarks.runner import default_suite_names
    from benchmarks.suite import load_suites
    from graders.score import SCORING_PATH, load_scoring
    from graders.tool_stats import graded_by_computation

    names = settings.suites or default_suite_names(suites_dir)
    kwargs = {"names": names} if names else {}
    suites = load_suites(suites_dir, **kwargs) if suites_dir else load_suites(**kwargs)
    scored = set(load_scoring().categories)
    for suite in suites:
        if suite.name not in scored and not graded_by_computation(suite):
            raise HessError(f"{suite.path}: suite '{suite.name}' is not scored: add it to a criterion's "
                            f"categories in {SCORING_PATH}, or leave it out with --suite")


def _claim(out: Path, source: str, settings: Any, args: argparse.Namespace) -> None:
    from benchmarks.run_folder import claim_run_folder, run_identity

    claim_run_folder(out, run_identity(source, settings, args.suites_dir), args.overwrite)


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "endpoint"


def _endpoint_backend(args: argparse.Namespace) -> Any:
    import os

    from benchmarks.backends.openai_http import OpenAIBackend

    if not args.model:
        raise HessError("--model: required with --endpoint (the model name the endpoint serves)")
    if args.no_repeat_ngram_size:
        raise HessError("--no-repeat-ngram-size: not supported through an OpenAI-compatible endpoint")
    if args.retries < 0:
        raise HessError(f"--retries: must be 0 or more, got {args.retries}")
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise HessError(f"--api-key-env: the environment variable {args.api_key_env} is not set")
    template, send_ids = None, False
    if args.chat_template and not args.no_likelihood:
        from benchmarks.backends.chat_template import load_chat_template

        template, send_ids = load_chat_template(args.chat_template)
    return OpenAIBackend(args.endpoint, args.model, template, args.chat_template, send_ids, api_key=api_key,
                         concurrency=args.concurrency, timeout=args.timeout, retries=args.retries,
                         log_requests=args.log_requests)


def _run_one(backend: Any, out: Path, settings: Any, args: argparse.Namespace) -> dict:
    """One run: the runner writes results.json and items.csv, then the scorecard is rendered from them."""
    from benchmarks.runner import BenchRun, summary_table
    from reports.render import render_scorecard

    try:
        results = BenchRun(out, settings, backend, suites_dir=args.suites_dir, progress=not args.no_progress).run()
    finally:
        backend.close()
    render_scorecard(results, out / "index.html")
    if not args.quiet:
        print(summary_table(results))
    missing = sum(1 for row in results["items"] if row.get("missing"))
    if missing:
        print(f"warning: {missing} selected item(s) had no answer and count as 0", file=sys.stderr)
    print(f"scorecard: {out / 'index.html'}")
    return results


def build_validity_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py validity",
        description="Grade the labelled validity set with the bench's graders and measure agreement with the "
                    "human scores (Spearman, Kendall, same-item pairs, calibration, mean absolute error).",
    )
    p.add_argument("--split", default="heldout", choices=("dev", "heldout", "all"),
                   help="which answers to measure (default: heldout, the answers the graders were not tuned on)")
    p.add_argument("--dir", type=Path, help="folder of the labelled set (default: benchmarks/validity)")
    p.add_argument("--suites-dir", type=Path, help="folder of suite YAML files (default: the shipped suites)")
    p.add_argument("--out", type=Path, default=Path("reports/validity"),
                   help="folder for validity.html and validity.json (default: reports/validity)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--fit-calibration", action="store_true",
                   help="first refit benchmarks/calibration.yaml (raw -> human scale, per category) on the dev split")
    p.add_argument("--record", action="store_true",
                   help="write the measured agreement to the set's agreement.json, which every run's results.json "
                        "and scorecard then state (use with the held-out split)")
    return p


def run_validity(argv: list[str]) -> int:
    import json

    from benchmarks.suite import load_suites
    from graders import validity
    from reports.validity import write_validity_page

    args = build_validity_parser().parse_args(argv)
    if args.n_boot < 100:
        raise HessError(f"--n-boot: at least 100 resamples, got {args.n_boot}")
    directory = args.dir or validity.VALIDITY_DIR
    answers = validity.load_answers(directory)
    human = validity.load_human_scores(directory)
    suites = load_suites(args.suites_dir) if args.suites_dir else load_suites()
    if args.fit_calibration:
        validity.fit_calibration(answers, human, suites)
        print("calibration maps fitted on the dev split: benchmarks/calibration.yaml")
    graded = validity.with_human(validity.grade_answers(answers, suites), human)
    chosen = validity.select_split(graded, args.split)
    report = validity.measure(chosen, n_boot=args.n_boot, seed=args.seed)
    print(validity.format_report(report, args.split))
    if args.record:
        print(f"agreement recorded: {validity.write_agreement(validity.agreement_summary(report, args.split), directory)}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "validity.json").write_text(json.dumps({"split": args.split, **report}, indent=1), encoding="utf-8")
    page = write_validity_page(report, chosen, args.split, args.out)
    print(f"validity page: {page}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "compare":
            from reports.compare import compare_main

            return compare_main(argv[1:])
        if argv and argv[0] == "export-prompts":
            from benchmarks.export_prompts import export_main

            return export_main(argv[1:])
        if argv and argv[0] == "gate":
            from reports.compare import gate_main

            return gate_main(argv[1:])
        if argv and argv[0] == "validity":
            return run_validity(argv[1:])
        args = build_parser().parse_args(argv)
        return run_bench(args)
    except HessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished items are saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
