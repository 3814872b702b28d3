"""Training data: read Alpaca, Dolly, messages JSONL and plain text; clean; split; tokenise.

Every instruction record becomes a conversation (a list of ``{"role", "content"}`` messages), so one
chat template and one loss mask serve all instruction formats:

- Alpaca ``{"instruction", "input", "output"}`` and Dolly ``{"instruction", "context", "response"}``:
  the user turn is the instruction, followed by a blank line and the input/context when there is one
  (the same convention the bench uses for items with an ``input``); the assistant turn is the output;
- ``{"messages": [...]}`` (seed 002's format) is taken as it is;
- plain text (``.txt`` paragraphs, or ``{"text": ...}`` records) is packed into full context windows.

For conversations the loss covers only the assistant's tokens (and the end-of-turn token after them):
every other target is the ignore index ``-100``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hessgpt.errors import HessError
from hessgpt.model import IGNORE_INDEX

FORMATS = ("auto", "alpaca", "dolly", "messages", "text")
DEFAULT_SPLIT = (0.85, 0.10, 0.05)


@dataclass
class Example:
    """One training unit: a conversation, or a piece of plain text."""

    messages: list[dict[str, str]] | None = None
    text: str | None = None
    source: str = ""  # "file:line", for messages that point at the data

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def key(self) -> str:
        """Canonical content, used for duplicates, hashing and split order."""
        if self.messages is not None:
            return json.dumps(self.messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return json.dumps({"text": self.text}, ensure_ascii=False)


@dataclass
class LoadReport:
    """What reading and cleaning did, so the trainer can print it and store it."""

    files: list[dict[str, Any]] = field(default_factory=list)  # {"path", "sha256", "records"}
    bad_lines: int = 0
    bad_line_examples: list[str] = field(default_factory=list)
    empty: int = 0
    duplicates: int = 0
    kept: int = 0

    def summary(self) -> str:
        parts = [f"{self.kept} examples from {len(self.files)} file(s)"]
        if self.empty:
            parts.append(f"{self.empty} empty dropped")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates dropped")
        if self.bad_lines:
            parts.append(f"{self.bad_lines} bad lines skipped")
        return ", ".join(parts)


# ----------------------------------------------------------------------------- reading records


def _alpaca(record: dict) -> list[dict[str, str]]:
    return _instruction_messages(record.get("instruction"), record.get("input"), record.get("output"))


def _dolly(record: dict) -> list[dict[str, str]]:
    return _instruction_messages(record.get("instruction"), record.get("context"), record.get("response"))


def _instruction_messages(instruction: Any, extra: Any, answer: Any) -> list[dict[str, str]]:
    for name, value in (("instruction", instruction), ("answer", answer)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"field {name} must be a string, got {type(value).__name__}")
    if extra is not None and not isinstance(extra, str):
        raise ValueError(f"input/context must be a string, got {type(extra).__name__}")
    user = (instruction or "").strip()
    if extra and extra.strip():
        user = f"{user}\n\n{extra.strip()}"
    return [{"role": "user", "content": user}, {"role": "assistant", "content": (answer or "").strip()}]


def _messages(record: dict) -> list[dict[str, str]]:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{i}] must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user", "assistant", "tool"):
            raise ValueError(f"messages[{i}].role must be system, user, assistant or tool, got {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"messages[{i}].content must be a string")
        if role == "tool" and (not out or out[-1]["role"] != "assistant"):
            raise ValueError(f"messages[{i}]: a tool message (a code result) must follow an assistant message")
        out.append({"role": role, "content": content.strip()})
    return out


def detect_format(record: dict) -> str:
    """The instruction format a JSON record is written in."""
    if "messages" in record:
        return "messages"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if "instruction" in record and "response" in record:
        return "dolly"
    if "text" in record:
        return "text"
    keys = ", ".join(sorted(map(str, record))[:8]) or "none"
    raise ValueError(
        f"unrecognised record (keys: {keys}); expected instruction/input/output (Alpaca), "
        "instruction/context/response (Dolly), messages, or text"
    )


def record_to_example(record: Any, fmt: str, source: str) -> Example:
    """Turn one parsed JSON record into an :class:`Example` (raises ValueError when malformed)."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    kind = detect_format(record) if fmt == "auto" else fmt
    if kind == "alpaca":
        return Example(messages=_alpaca(record), source=source)
    if kind == "dolly":
        return Example(messages=_dolly(record), source=source)
    if kind == "messages":
        return Example(messages=_messages(record), source=source)
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    return Example(text=text, source=source)


def _bad(path: Path, where: str, message: str, report: LoadReport, skip: bool) -> None:
    line = f"{path}:{where}: {message}"
    if not skip:
        raise HessError(f"{line}; fix it or pass --skip-bad-lines to skip bad lines")
    report.bad_lines += 1
    if len(report.bad_line_examples) < 5:
        report.bad_line_examples.append(line)


def read_file(
    path: str | Path, fmt: str = "auto", skip_bad_lines: bool = False, report: LoadReport | None = None
) -> list[Example]:
    """Read one dataset file: ``.jsonl`` (one record a line), ``.json`` (a list of records) or text."""
    path = Path(path)
    report = report if report is not None else LoadReport()
    if fmt not in FORMATS:
        raise HessError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not path.is_file():
        raise HessError(f"{path}: no such data file")
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise HessError(f"{path}:{line}: not valid UTF-8; convert the file to UTF-8") from None
    examples: list[Example] = []
    suffix = path.suffix.lower()
    if fmt == "text" or suffix in (".txt", ".md", ".text"):
        examples = _read_text(content, path)
    elif suffix == ".json" and content.lstrip().startswith("["):
        try:
            records = json.loads(content)
        except json.JSONDecodeError as exc:
            raise HessError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        for i, record in enumerate(records):
            try:
                examples.append(record_to_example(record, fmt, f"{path}:record {i + 1}"))
            except ValueError as exc:
                _bad(path, f"record {i + 1}", str(exc), report, skip_bad_lines)
    else:
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                _bad(
                    path,
                    str(number),
                    f"not valid JSON ({exc.msg}, column {exc.colno})",
                    report,
                    skip_bad_lines,
                )
                continue
            try:
                examples.append(record_to_example(record, fmt, f"{path}:{number}"))
            except ValueError as exc:
                _bad(path, str(number), str(exc), report, skip_bad_lines)
    report.files.append(
        {"path": str(path), "sha256": hashlib.sha256(raw).hexdigest(), "records": len(examples)}
    )
    return examples


def _read_text(content: str, path: Path) -> list[Example]:
    """Paragraphs (separated by blank lines) are the units that the split assigns."""
    examples, buffer, start = [], [], 1
    for number, line in enumerate(content.splitlines(), start=1):
        if line.strip():
            if not buffer:
                start = number
            buffer.append(line)
        elif buffer:
            examples.append(Example(text="\n".join(buffer), source=f"{path}:{start}"))
            buffer = []
    if buffer:
        examples.append(Example(text="\n".join(buffer), source=f"{path}:{start}"))
    return examples


def is_empty(example: Example) -> bool:
    """No usable content: empty text, or a conversation without a non-empty assistant turn."""
    if example.messages is None:
        return not (example.text or "").strip()
    if any(not m["content"] for m in example.messages):
        return True
    return not any(m["role"] == "assistant" for m in example.messages)


def clean(examples: Iterable[Example], report: LoadReport | None = None) -> list[Example]:
    """Drop empty examples and exact duplicates (first occurrence kept)."""
    report = report if report is not None else LoadReport()
    seen: set[str] = set()
    kept = []
    for example in examples:
        if is_empty(example):
            report.empty += 1
            continue
        key = example.key()
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        kept.append(example)
    report.kept = len(kept)
    return kept


def load_dataset(
    paths: Sequence[str | Path], fmt: str = "auto", skip_bad_lines: bool = False
) -> tuple[list[Example], LoadReport]:
    """Read, then clean, every file; the report says what was dropped and why."""
    if not paths:
        raise HessError("data: no data file given")
    report = LoadReport()
    examples: list[Example] = []
    for path in paths:
        examples.extend(read_file(path, fmt, skip_bad_lines, report))
    kept = clean(examples, report)
    if not kept:
        raise HessError(f"{paths[0]}: no usable examples after cleaning ({report.summary()})")
    kinds = {e.is_chat for e in kept}
    if len(kinds) > 1:
        raise HessError(f"{paths[0]}: mixes conversations and plain text; train on one kind at a time")
    return kept, report


def data_hash(report: LoadReport) -> str:
    """Hash of the training data: the file's sha256 for one file, else a hash of the files' hashes."""
    hashes = [f["sha256"] for f in report.files]
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


# ----------------------------------------------------------------------------- splitting


def parse_split(text: str) -> tuple[float, float, float]:
    """``"85,10,5"`` or ``"0.85,0.1,0.05"`` -> fractions summing to one."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0 or parts[0] <= 0:
        raise HessError(
            f"--split: expected three non-negative numbers train,validation,test like 85,10,5; got {text!r}"
        )
    total = sum(parts)
    return parts[0] / total, parts[1] / total, parts[2] / total


def split_examples(
    examples: Sequence[Example], fractions: Sequence[float] = DEFAULT_SPLIT, seed: int = 0
) -> tuple[list[Example], list[Example], list[Example]]:
    """Seeded train/validation/test split.

    The order is a keyed hash of each example's content, so the split depends only on the seed and
    the set of examples (not on file order), and is disjoint because duplicates are removed first.
    A non-zero validation share always gets at least one example.
    """
    ordered = sorted(examples, key=lambda e: hashlib.sha256(f"{seed}\0{e.key()}".encode()).digest())
    n = len(ordered)
    n_val = math.floor(n * fractions[1] + 0.5)
    n_test = math.floor(n * fractions[2] + 0.5)
    if fractions[1] > 0 and n_val == 0 and n >= 2:
        n_val = 1
    if n - n_val - n_test < 1:
        raise HessError(f"--split: {n} examples are too few for a split of {fractions}")
    val, test = ordered[:n_val], ordered[n_val : n_val + n_test]
    return ordered[n_val + n_test :], val, test


def subsample(examples: Sequence[Example], fraction: float, seed: int = 0) -> list[Example]:
    """A seeded share of the examples (seed 003 trained on 10% of Alpaca)."""
    if not 0 < fraction <= 1:
        raise HessError(f"--fraction: must be in (0, 1], got {fraction}")
    if fraction == 1:
        return list(examples)
    count = max(1, round(len(examples) * fraction))
    picked = sorted(random.Random(seed).sample(range(len(examples)), count))
    return [examples[i] for i in picked]


# ----------------------------------------------------------------------------- tokenising


@dataclass
class Encoded:
    """Token ids with the positions whose token is a training target."""

    ids: list[int]
    target: list[bool]


def encode_example(example: Example, tokenizer: Any, template: Any) -> Encoded:
    """Conversations through the chat template (assistant tokens are targets); text is all targets."""
    if example.messages is not None:
        rendered = template.render(example.messages, add_generation_prompt=False)
        return Encoded(list(rendered.ids), list(rendered.assistant_mask))
    ids = list(tokenizer.encode(example.text or ""))
    if tokenizer.eos_id is not None:
        ids.append(tokenizer.eos_id)  # documents are separated by EOS once packed
    return Encoded(ids, [True] * len(ids))


def _window(ids: list[int], target: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs are ids[:-1]; the target at position i is ids[i+1] when that token is a target."""
    x = torch.tensor(ids[:-1], dtype=torch.long)
    y = torch.tensor(
        [t if keep else IGNORE_INDEX for t, keep in zip(ids[1:], target[1:], strict=True)], dtype=torch.long
    )
    return x, y


@dataclass
class TokenizedSplit:
    """Training windows: each is (inputs, targets) of at most block_size tokens."""

    windows: list[tuple[torch.Tensor, torch.Tensor]]
    truncated: int = 0  # conversations cut at the context length
    dropped: int = 0  # conversations with no target left after truncation

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def target_tokens(self) -> int:
        return sum(int((y != IGNORE_INDEX).sum()) for _, y in self.windows)


def tokenize_split(
    examples: Sequence[Example], tokenizer: Any, template: Any, block_size: int, pack: bool = False
) -> TokenizedSplit:
    """Encode examples into windows of at most ``block_size`` inputs.

    Text is always packed (concatenated with EOS between documents, cut into full windows; a last
    shorter window is kept so a small corpus still trains). Conversations are one window each
    (truncated to the context) unless ``pack`` asks to concatenate them too, which wastes no
    compute on padding; the loss mask travels with the tokens either way.
    """
    encoded = [encode_example(e, tokenizer, template) for e in examples]
    if pack or any(not e.is_chat for e in examples):
        return _pack(encoded, block_size)
    out = TokenizedSplit([])
    for item in encoded:
        ids, target = item.ids, item.target
        if len(ids) > block_size + 1:
            out.truncated += 1
            ids, target = ids[: block_size + 1], target[: block_size + 1]
        if len(ids) < 2 or not any(target[1:]):
            out.dropped += 1
            continue
        out.windows.append(_window(ids, target))
    return out


def _pack(encoded: Sequence[Encoded], block_size: int) -> TokenizedSplit:
    ids = [t for item in encoded for t in item.ids]
    target = [m for item in encoded for m in item.target]
    out = TokenizedSplit([])
    # Consecutive windows share one token: the last input of one is the first of the next.
    for start in range(0, max(len(ids) - 1, 0), block_size):
        chunk_ids = ids[start : start + block_size + 1]
        chunk_target = target[start : start + block_size + 1]
        if len(chunk_ids) < 2 or not any(chunk_target[1:]):
            continue
        out.windows.append(_window(chunk_ids, chunk_target))
    return out


def collate(
    windows: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest window; padded targets are ignored."""
    length = max(x.numel() for x, _ in windows)
    xs = torch.full((len(windows), length), pad_id, dtype=torch.long)
    ys = torch.full((len(windows), length), IGNORE_INDEX, dtype=torch.long)
    for row, (x, y) in enumerate(windows):
        xs[row, : x.numel()] = x
        ys[row, : y.numel()] = y
    return xs, ys


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order windows are visited in an epoch: a function of (seed, epoch) only, so a resumed
    run visits them exactly as the interrupted one would have."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()
