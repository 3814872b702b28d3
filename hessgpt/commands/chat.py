"""``hessgpt chat``: a multi-turn conversation in the terminal, streamed as the model writes.

The whole conversation is sent at every turn (the model remembers what was said); when it no longer
fits in the context, the oldest exchanges are dropped first. Commands: /reset, /params key=value ...,
/system TEXT, /save FILE, /load FILE, /help, /quit.

Ctrl-C while the model writes stops that answer only: the part already shown is kept in the
conversation the model sees next, and marked ``[interrupted]`` on screen. On a terminal, lines are edited with readline (arrows, history).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from hessgpt.commands.generate import (
    add_sampling_arguments,
    fit_to_model,
    greedy_ignored,
    greedy_warning,
    load_engine,
    settings_from_args,
)
from hessgpt.commands.tool_options import add_tool_arguments, make_router, show_call
from hessgpt.errors import HessError

HELP = """commands:
  /reset                      forget the conversation
  /params                     show the generation settings
  /params temperature=0.7 top_p=0.9 ...   change them (max_new_tokens, top_k, repetition_penalty, seed, ...)
  /system TEXT                set the system message (empty TEXT removes it); also resets
  /save FILE                  write the conversation as JSON ({"messages": [{"role", "content"}, ...]})
  /load FILE                  replace the conversation (and system message) with a saved one
  /quit                       leave (or Ctrl-D); Ctrl-C stops the answer being written"""

MAX_CONVERSATION_BYTES = 16 << 20
INTERRUPTED = " [interrupted]"

# Settings a user may change with /params (the rest are fixed by the chat itself).
_PARAMS = (
    "temperature",
    "top_k",
    "top_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "max_new_tokens",
    "min_new_tokens",
    "num_beams",
    "length_penalty",
    "seed",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", default=None, help="system message at the start of the conversation")
    add_sampling_arguments(parser, temperature=0.7, max_new=256)
    add_tool_arguments(parser)


def parse_params(text: str, settings: Any, check: Callable[[Any], None] | None = None) -> Any:
    """``temperature=0.7 top_p=0.9`` applied to ``settings`` (validated; HessError names the bad one).

    ``check`` (the engine's ``check_settings``) also refuses settings that cannot fit the model's
    context, so a bad value is rejected when typed rather than at the next message."""
    changes: dict[str, Any] = {}
    for pair in text.split():
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in _PARAMS:
            raise HessError(f"/params: expected key=value with key in {', '.join(_PARAMS)}; got {pair!r}")
        if value.lower() in ("none", "off", ""):
            if key != "top_k":
                raise HessError(f"{key}: needs a value")
            changes[key] = None
            continue
        try:
            number = float(value)
        except ValueError:
            raise HessError(f"{key}: {value!r} is not a number") from None
        current = getattr(settings, key)
        is_int = key in (
            "top_k",
            "no_repeat_ngram_size",
            "max_new_tokens",
            "min_new_tokens",
            "num_beams",
            "seed",
        )
        if is_int and not number.is_integer():
            raise HessError(f"{key}: must be an integer, got {value}")
        changes[key] = int(number) if is_int or isinstance(current, bool) else number
    updated = dataclasses.replace(settings, **changes)
    (check or type(updated).validate)(updated)
    return updated


def save_conversation(path: str, system: str | None, history: list[dict]) -> None:
    messages = ([{"role": "system", "content": system}] if system else []) + history
    try:
        Path(path).write_text(json.dumps({"messages": messages}, ensure_ascii=False, indent=1) + "\n",
                              encoding="utf-8")
    except OSError as exc:
        raise HessError(f"/save: {path}: {exc.strerror or exc}") from None


def load_conversation(path: str) -> tuple[str | None, list[dict]]:
    """(system message, history) from a /save file, or a bare list of messages; checked field by field."""
    try:
        if Path(path).stat().st_size > MAX_CONVERSATION_BYTES:
            raise HessError(f"/load: {path}: larger than {MAX_CONVERSATION_BYTES:,} bytes")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise HessError(f"/load: {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HessError(f"/load: {path}: not a JSON conversation ({exc})") from None
    messages = data.get("messages") if isinstance(data, dict) else data
    if not isinstance(messages, list):
        raise HessError(f"/load: {path}: field 'messages' must be a list of {{role, content}} objects")
    system = None
    if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
        system = messages[0].get("content")
        if not isinstance(system, str):
            raise HessError(f"/load: {path}: messages[0].content must be a string")
        messages = messages[1:]
    offset = 1 if system is not None else 0
    history = []
    for i, message in enumerate(messages):
        where = f"/load: {path}: messages[{i + offset}]"
        expected = "user" if i % 2 == 0 else "assistant"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise HessError(f"{where} must be an object with exactly 'role' and 'content'")
        if message["role"] != expected:
            raise HessError(f"{where}.role is {message['role']!r}, expected {expected!r} "
                            "(user and assistant alternate, after an optional system message)")
        if not isinstance(message["content"], str):
            raise HessError(f"{where}.content must be a string")
        history.append({"role": message["role"], "content": message["content"]})
    if len(history) % 2:
        raise HessError(f"/load: {path}: the last message must be the assistant's answer")
    return system or None, history


def _read_line(stdin: TextIO, out: TextIO, interactive: bool) -> str | None:
    """One line typed by the user (None at end of input); with readline on a terminal."""
    if interactive:
        try:
            return input("you> ")
        except EOFError:
            return None
    out.write("you> ")
    out.flush()
    line = stdin.readline()
    return line.rstrip("\r\n") if line else None


def _enable_readline() -> bool:
    """Line editing and history for input() when both ends are a terminal (not on Windows' consoles)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    try:
        import readline  # noqa: F401  (importing it is what gives input() editing and history)
    except ImportError:
        pass
    return True


def show_params(settings: Any) -> str:
    return " ".join(f"{key}={getattr(settings, key)}" for key in _PARAMS)


def fit_conversation(
    engine: Any, system: str | None, history: list[dict], user: str, max_new_tokens: int
) -> tuple[list[dict], int]:
    """The messages to send, dropping the oldest exchanges until prompt + answer fit the context.

    Returns (messages, number of earlier messages dropped). If the last message alone is too long,
    the engine keeps its end and reports the truncation."""
    head = [{"role": "system", "content": system}] if system else []
    kept = list(history)
    dropped = 0
    budget = engine.context - max_new_tokens
    while kept:
        messages = head + kept + [{"role": "user", "content": user}]
        if len(engine.chat_template.render(messages).ids) <= budget:
            return messages, dropped
        # Drop the oldest exchange (a user message and the answer to it, tool calls included).
        cut = next((i for i in range(1, len(kept)) if kept[i]["role"] == "user"), len(kept))
        kept = kept[cut:]
        dropped += cut
    return head + [{"role": "user", "content": user}], dropped


def run(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    interactive = stdin is None and stdout is None and _enable_readline()
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    settings = settings_from_args(args)
    engine = load_engine(args, batch_size=1)
    settings = fit_to_model(args, engine, settings)
    router = make_router(args, engine)
    system = args.system
    history: list[dict] = []
    turn = 0
    out.write(
        f"chatting with {engine.config.name} ({engine.context} tokens of context); /help for commands\n"
    )
    while True:
        try:
            text = _read_line(stdin, out, interactive)
        except KeyboardInterrupt:  # Ctrl-C at the prompt drops the line typed so far, like a shell
            out.write("\n(Ctrl-D or /quit to leave)\n")
            continue
        if text is None:  # end of input
            out.write("\n")
            return 0
        if not text.strip():
            continue
        command, _, rest = text.strip().partition(" ")
        if command in ("/quit", "/exit"):
            return 0
        if command == "/help":
            out.write(HELP + "\n")
            continue
        if command == "/reset":
            history.clear()
            out.write("(conversation cleared)\n")
            continue
        if command == "/system":
            system = rest.strip() or None
            history.clear()
            out.write(f"(system message {'set' if system else 'removed'}; conversation cleared)\n")
            continue
        if command == "/params":
            before = settings
            try:
                if rest.strip():
                    settings = parse_params(rest, settings, engine.check_settings)
            except HessError as exc:
                out.write(f"error: {exc}\n")
                continue
            out.write(show_params(settings) + "\n")
            # Said once, when a change makes a setting useless, not again while it stays so.
            if greedy_ignored(settings) != greedy_ignored(before):
                warning = greedy_warning(settings, spell=str)
                if warning:
                    out.write(warning + "\n")
            continue
        if command in ("/save", "/load"):
            try:
                if not rest.strip():
                    raise HessError(f"{command}: needs a FILE")
                if command == "/save":
                    save_conversation(rest.strip(), system, history)
                    out.write(f"(saved {len(history)} message(s) to {rest.strip()})\n")
                else:
                    system, history = load_conversation(rest.strip())
                    out.write(f"(loaded {len(history)} message(s)"
                              f"{' and a system message' if system else ''} from {rest.strip()})\n")
            except HessError as exc:
                out.write(f"error: {exc}\n")
            continue
        if command.startswith("/") and command[1:].isalpha():
            out.write(f"unknown command {command}; /help lists them\n")
            continue

        if router is not None:
            try:
                messages, dropped = fit_conversation(engine, system, history, text, settings.max_new_tokens)
                answer = router.run([messages], settings, request_ids=[f"turn-{turn}"])[0]
            except HessError as exc:
                out.write(f"error: {exc}\n")
                continue
            if dropped:
                out.write(f"(dropped the {dropped} oldest message(s) to fit the context)\n")
            for n, call in enumerate(answer.calls, 1):
                show_call(out, n, call)
            out.write("assistant> " + answer.final + "\n")
            turn += 1
            history = history[dropped:] + [{"role": "user", "content": text}] + answer.messages
            continue

        answering = False
        shown: list[str] = []
        interrupted = False
        try:
            messages, dropped = fit_conversation(engine, system, history, text, settings.max_new_tokens)
            # Each turn draws from its own seeded stream, so a conversation replays identically.
            request = engine.chat_request(messages, settings, request_id=f"turn-{turn}")
            pieces = engine.stream(request)
            first = next(pieces, "")  # the request is checked here, before anything is printed
            if dropped:
                out.write(f"(dropped the {dropped} oldest message(s) to fit the context)\n")
            out.write("assistant> " + first)
            out.flush()
            answering = True
            shown.append(first)
            for piece in pieces:
                out.write(piece)
                out.flush()
                shown.append(piece)
        except HessError as exc:  # one bad turn: say why, keep the conversation as it was
            out.write(("\n" if answering else "") + f"error: {exc}\n")
            continue
        except KeyboardInterrupt:  # stop this answer only; the conversation goes on
            if not answering:
                out.write("\n(interrupted before the answer started)\n")
                continue
            interrupted = True
            pieces.close()
        result = None if interrupted else engine.last_stream_result
        out.write((INTERRUPTED if interrupted else "") + "\n")
        if result is not None and result.finish_reason == "length":
            out.write(f"[answer cut at max_new_tokens={settings.max_new_tokens}; "
                      "/params max_new_tokens=N for longer answers]\n")
        if result is not None and result.prompt_truncated:
            out.write("(your message was longer than the context; its beginning was cut)\n")
        turn += 1
        history = history[dropped:]
        history.append({"role": "user", "content": text})
        answer = "".join(shown) if interrupted else (result.text if result else "")
        history.append({"role": "assistant", "content": answer.strip()})
