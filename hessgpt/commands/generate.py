"""``hessgpt generate``: completions for one prompt or a file of prompts.

Prints only the completions on stdout (one per prompt, or one JSON object per prompt with --json);
the last line on stderr gives the generation speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hessgpt import flags
from hessgpt.commands.tool_options import add_tool_arguments, make_router, show_call
from hessgpt.errors import HessError

if TYPE_CHECKING:
    from hessgpt.generate import Engine, GenerationSettings

# Settings whose flag is not simply the setting's name with dashes.
_FLAGS = {"stop_strings": "stop"}


def add_sampling_arguments(
    parser: argparse.ArgumentParser, temperature: float = 0.0, max_new: int = 128
) -> None:
    """Flags shared with ``hessgpt chat``."""
    parser.add_argument(
        "--checkpoint", required=True, help="model file or name (see `hessgpt import`), or preset:NAME"
    )
    # None until the model is known: a default never exceeds half the context (see fit_to_model).
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help=f"tokens to generate at most (default {max_new}, or half the context of a smaller model)",
    )
    parser.set_defaults(default_max_new_tokens=max_new)
    parser.add_argument("--min-new-tokens", type=int, default=0, help="do not stop before this many tokens")
    parser.add_argument(
        "--temperature", type=float, default=temperature, help=f"0 = greedy (default {temperature})"
    )
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    parser.add_argument(
        "--top-p", type=float, default=1.0, help="nucleus sampling mass in (0, 1] (default 1)"
    )
    parser.add_argument(
        "--repetition-penalty", type=float, default=1.0, help="CTRL penalty, > 1 discourages repeats"
    )
    parser.add_argument(
        "--no-repeat-ngram-size", type=int, default=0, help="forbid repeating any n-gram of this size"
    )
    parser.add_argument("--num-beams", type=int, default=1, help="beam search width (1 = no beam search)")
    parser.add_argument("--length-penalty", type=float, default=1.0, help="beam search length exponent")
    parser.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)"
    )
    parser.add_argument("--seed", type=flags.seed, default=0, help="sampling seed (default 0)")
    parser.add_argument("--int8", action="store_true", help=flags.INT8_HELP)
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)"
    )
    flags.add_engine_arguments(parser)


def flag_error(exc: HessError) -> HessError:
    """The engine's ``max_new_tokens: ...`` message, naming the flag the user typed instead."""
    name, _, rest = str(exc).partition(":")
    return HessError(f"--{_FLAGS.get(name, name).replace('_', '-')}:{rest}")


def fit_to_model(
    args: argparse.Namespace, engine: Engine, settings: GenerationSettings
) -> GenerationSettings:
    """The default ``max_new_tokens`` capped at half the model's context (room left for the prompt);
    settings that still cannot fit fail here, naming the flag, before any prompt is run."""
    if args.max_new_tokens is None:
        cap = max(1, engine.context // 2)
        settings = dataclasses.replace(settings, max_new_tokens=min(settings.max_new_tokens, cap))
    try:
        engine.check_settings(settings)
    except HessError as exc:
        raise flag_error(exc) from None
    return settings


def settings_from_args(args: argparse.Namespace) -> GenerationSettings:
    from hessgpt.generate import GenerationSettings

    given = args.max_new_tokens
    settings = GenerationSettings(
        max_new_tokens=args.default_max_new_tokens if given is None else given,
        min_new_tokens=args.min_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        num_beams=args.num_beams,
        length_penalty=args.length_penalty,
        stop_strings=tuple(args.stop),
        ignore_eos=getattr(args, "ignore_eos", False),
        seed=args.seed,
    )
    try:
        settings.validate()
    except HessError as exc:
        raise flag_error(exc) from None
    warning = greedy_warning(settings)
    if warning:
        print(warning, file=sys.stderr)
    return settings


def greedy_ignored(settings: GenerationSettings) -> list[str]:
    """The sampling settings (field names) that temperature 0 ignores: it decodes greedily."""
    if settings.temperature != 0:
        return []
    return [name for name, used in (("top_p", settings.top_p != 1.0), ("top_k", settings.top_k is not None))
            if used]


def greedy_warning(settings: GenerationSettings, spell: Callable[[str], str] | None = None) -> str | None:
    """One line saying which settings have no effect with greedy decoding, or None when all do.

    ``spell`` writes a field name as the user typed it: ``--top-p`` by default (command-line flags),
    ``top_p`` in the chat's ``/params``."""
    spell = spell or (lambda name: f"--{name.replace('_', '-')}")
    ignored = [spell(name) for name in greedy_ignored(settings)]
    if not ignored:
        return None
    return (f"warning: {' and '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect at "
            f"{spell('temperature')} 0 (greedy decoding); give a temperature above 0 to sample")


def load_engine(args: argparse.Namespace, batch_size: int = 1) -> Engine:
    import torch

    from hessgpt.generate import Engine
    from hessgpt.kernels import resolve_device
    from hessgpt.loading import load_model

    device = resolve_device(args.device)  # a missing GPU fails before the model loads
    if args.int8 and (args.precision != "fp32" or device != "cpu"):
        raise HessError("--int8: runs on the CPU in fp32 only; drop --precision bf16 / --device cuda")
    if args.threads is not None:
        if args.threads < 1:
            raise HessError(f"--threads: must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    loaded = load_model(args.checkpoint)
    return Engine(loaded, batch_size=batch_size, int8=args.int8, release_model_weights=True,
                  precision=args.precision, device=device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="the prompt text")
    source.add_argument(
        "--prompts-file", help="a UTF-8 file with one prompt per line (blank lines are skipped)"
    )
    parser.add_argument(
        "--chat",
        action="store_true",
        help="wrap each prompt as one user message with the model's chat template",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="prompts decoded together (speed only)")
    parser.add_argument("--ignore-eos", action="store_true", help="never stop on EOS / end of turn")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per prompt: prompt, output, new_tokens"
    )
    add_sampling_arguments(parser)
    add_tool_arguments(parser)


def read_prompts(args: argparse.Namespace) -> list[str]:
    if args.prompt is not None:
        return [args.prompt]
    path = Path(args.prompts_file)
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise HessError(f"{path}: cannot read the prompts file ({exc.strerror or exc})") from None
    prompts = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not prompts:
        raise HessError(f"{path}: the prompts file is empty (expected one prompt per line)")
    return prompts


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise HessError(f"--batch-size: must be >= 1, got {args.batch_size}")
    settings = settings_from_args(args)
    prompts = read_prompts(args)
    engine = load_engine(args, batch_size=args.batch_size)
    settings = fit_to_model(args, engine, settings)
    router = make_router(args, engine)
    if router is not None:
        return _run_routed(args, router, prompts, settings)
    requests = []
    for i, prompt in enumerate(prompts):
        where = "--prompt" if args.prompt is not None else f"{args.prompts_file}:{i + 1}"
        if args.chat:
            request = engine.chat_request([{"role": "user", "content": prompt}], settings)
        else:
            request = engine.text_request(prompt, settings)
        if not request.prompt_ids:
            raise HessError(f"{where}: the prompt tokenizes to nothing")
        requests.append(request)

    out = sys.stdout
    if len(requests) == 1 and not args.json and settings.num_beams == 1:
        for piece in engine.stream(requests[0]):  # a single prompt is shown as it is written
            out.write(piece)
            out.flush()
        out.write("\n")
        out.flush()  # before the speed line on stderr, which may share the terminal
        results = [engine.last_stream_result]
    else:
        results = engine.generate(requests)
        for prompt, result in zip(prompts, results, strict=True):
            if args.json:
                record = {
                    "prompt": prompt,
                    "output": result.text,
                    "new_tokens": len(result.token_ids),
                    "finish_reason": result.finish_reason,
                    "prompt_tokens": result.prompt_tokens,
                    "prompt_truncated": result.prompt_truncated,
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                out.write(result.text + "\n")
        out.flush()
    for i, result in enumerate(results):
        if result is not None and result.prompt_truncated:
            print(
                f"note: prompt {i + 1} was longer than the context; its beginning was cut "
                f"(kept {result.prompt_tokens} tokens)",
                file=sys.stderr,
            )
    stats = engine.last_stats
    batch = min(args.batch_size, len(requests))  # the batch actually decoded, not the flag's ceiling
    print(
        f"{stats.generated_tokens} tokens in {stats.seconds:.2f} s: {stats.tokens_per_second:.1f} tokens/s "
        f"(batch size {batch}{', int8' if args.int8 else ''}{', bf16' if args.precision == 'bf16' else ''}"
        f"{', ' + engine.device if engine.device != 'cpu' else ''})",
        file=sys.stderr,
    )
    return 0


def _run_routed(args: argparse.Namespace, router: Any, prompts: list[str], settings: GenerationSettings) -> int:
    """--tools python: every prompt is a chat message routed through the sandbox; calls go to stderr."""
    import time

    conversations = [[{"role": "user", "content": p}] for p in prompts]
    began = time.perf_counter()
    answers = router.run(conversations, settings, request_ids=[str(i) for i in range(len(prompts))])
    seconds = time.perf_counter() - began
    out = sys.stdout
    for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        if len(prompts) > 1 and not args.json:
            print(f"[prompt {i + 1}]", file=sys.stderr)
        for n, call in enumerate(answer.calls, 1):
            show_call(sys.stderr, n, call)
        if args.json:
            record = {"prompt": prompt, "output": answer.text, "final": answer.final,
                      "new_tokens": answer.new_tokens, "finish_reason": answer.finish_reason,
                      "prompt_tokens": answer.prompt_tokens, "prompt_truncated": answer.prompt_truncated,
                      "tool_calls": answer.trace()}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            out.write(answer.text + "\n")
        out.flush()
    tokens = sum(a.new_tokens for a in answers)
    calls = sum(len(a.calls) for a in answers)
    print(f"{tokens} tokens and {calls} tool call(s) in {seconds:.2f} s", file=sys.stderr)
    return 0
