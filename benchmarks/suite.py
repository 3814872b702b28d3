"""Load and validate the benchmark suites (benchmarks/suites/<category>.yaml).

A suite file is untrusted input: it is parsed with the safe YAML loader, capped in size,
and every field is checked before anything runs. Errors name the file, the item id and
the field, in one line, so a suite author can fix them without reading code.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from graders.checks import CHECK_ROLES, CHECKS, CheckParamError, CheckSpec
from hessgpt.errors import HessError
from hessgpt.safe_yaml import parse_yaml

SUITES_DIR = Path(__file__).resolve().parent / "suites"
MAX_SUITE_BYTES = 5 * 1024 * 1024
MAX_NEW_TOKENS_LIMIT = 4096
ROLES = ("system", "user", "assistant")

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_SUITE_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_SUITE_FIELDS = ("suite", "version", "description", "roles", "items")
_ITEM_FIELDS = (
    "id",
    "prompt",
    "messages",
    "input",
    "references",
    "choices",
    "answer",
    "tags",
    "max_new_tokens",
    "checks",
)


@dataclass
class Item:
    id: str
    category: str
    prompt: str | None
    messages: list[dict[str, str]] | None
    input: str | None
    references: list[str]
    choices: list[str] | None
    answer: int | None
    tags: list[str]
    max_new_tokens: int | None
    checks: list[CheckSpec]

    def conversation(self) -> list[dict[str, str]]:
        """The messages to send the model; ``input`` is appended to the last user turn."""
        if self.messages is not None:
            turns = [dict(message) for message in self.messages]
        else:
            turns = [{"role": "user", "content": self.prompt or ""}]
        if self.input is not None:
            last = turns[-1]
            last["content"] = last["content"] + "\n\n" + self.input
        return turns

    @property
    def user_prompt(self) -> str:
        """The last user turn as written in the suite (without ``input``)."""
        if self.messages is not None:
            return self.messages[-1]["content"]
        return self.prompt or ""

    @property
    def shown_prompt(self) -> str:
        """The last user turn exactly as the model sees it (with ``input``)."""
        return self.conversation()[-1]["content"]


@dataclass
class Suite:
    name: str
    version: int
    description: str
    path: Path
    sha256: str
    items: list[Item] = field(default_factory=list)


class _SuiteError(Exception):
    """Raised inside validation; turned into a HessError with the file name."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()} (quote it in YAML)"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {value!r}"[:80]


def _string(where: str, value: Any, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _SuiteError(where, f"expected a string, got {_describe(value)}")
    if not allow_empty and not value.strip():
        raise _SuiteError(where, "must not be empty")
    return value


def _string_list(where: str, value: Any, min_len: int = 1) -> list[str]:
    if not isinstance(value, list):
        raise _SuiteError(where, f"expected a list of strings, got {_describe(value)}")
    if len(value) < min_len:
        raise _SuiteError(where, f"expected at least {min_len} entr{'y' if min_len == 1 else 'ies'}")
    return [_string(f"{where}[{i}]", v) for i, v in enumerate(value)]


def _integer(where: str, value: Any, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _SuiteError(where, f"expected an integer, got {_describe(value)}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise _SuiteError(where, f"must be {bound}, got {value}")
    return value


def _unknown_field(where: str, key: Any, known: Iterable[str]) -> _SuiteError:
    known = list(known)
    hint = get_close_matches(str(key), known, n=1)
    extra = f"; did you mean '{hint[0]}'?" if hint else f" (known: {', '.join(known)})"
    return _SuiteError(f"{where}{key}", f"unknown field{extra}")


def _messages(where: str, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise _SuiteError(
            where, f"expected a non-empty list of {{role, content}} messages, got {_describe(value)}"
        )
    messages = []
    for i, message in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(message, dict):
            raise _SuiteError(at, f"expected a mapping with role and content, got {_describe(message)}")
        for key in message:
            if key not in ("role", "content"):
                raise _unknown_field(f"{at}.", key, ("role", "content"))
        if "role" not in message:
            raise _SuiteError(f"{at}.role", "missing")
        if "content" not in message:
            raise _SuiteError(f"{at}.content", "missing")
        role = message["role"]
        if role not in ROLES:
            raise _SuiteError(f"{at}.role", f"must be one of {', '.join(ROLES)}, got {_describe(role)}")
        if role == "system" and i != 0:
            raise _SuiteError(f"{at}.role", "a system message may only come first")
        # Blank turns are allowed, like blank prompts: robustness suites test exactly that.
        messages.append(
            {"role": role, "content": _string(f"{at}.content", message["content"], allow_empty=True)}
        )
    if messages[-1]["role"] != "user":
        raise _SuiteError(f"{where}[{len(messages) - 1}].role", "the last message must be a user turn")
    return messages


def _role(where: str, value: Any) -> str:
    if value not in CHECK_ROLES:
        raise _SuiteError(where, f"must be one of {', '.join(CHECK_ROLES)}, got {_describe(value)}")
    return value


def _suite_roles(value: Any) -> dict[str, str]:
    """The suite's ``roles`` header: check type -> role, overriding the types' defaults."""
    if not isinstance(value, dict):
        raise _SuiteError("roles", f"expected a mapping like {{word_count: content}}, got {_describe(value)}")
    roles = {}
    for kind, role in value.items():
        if kind not in CHECKS:
            raise _SuiteError(f"roles.{kind}", f"unknown check '{kind}'")
        roles[kind] = _role(f"roles.{kind}", role)
    return roles


def _checks(
    where: str, value: Any, item_fields: dict[str, Any], roles: dict[str, str] | None = None
) -> list[CheckSpec]:
    if not isinstance(value, list) or not value:
        raise _SuiteError(where, f"expected a non-empty list of checks, got {_describe(value)}")
    specs = []
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(raw, dict):
            raise _SuiteError(
                at, f"expected a mapping like {{type: contains_any, values: [...]}}, got {_describe(raw)}"
            )
        kind = raw.get("type")
        if kind is None:
            raise _SuiteError(f"{at}.type", "missing")
        if not isinstance(kind, str) or kind not in CHECKS:
            hint = get_close_matches(str(kind), list(CHECKS), n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else f" (known: {', '.join(sorted(CHECKS))})"
            shown = f"'{kind}'" if isinstance(kind, str) else _describe(kind)
            raise _SuiteError(f"{at}.type", f"unknown check {shown}{extra}")
        weight = raw.get("weight", 1)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not weight >= 0
            or weight == float("inf")
        ):
            raise _SuiteError(f"{at}.weight", f"expected a number >= 0, got {_describe(weight)}")
        definition = CHECKS[kind]
        for needed in definition.needs:
            if not item_fields.get(needed):
                raise _SuiteError(f"{at}.type", f"{kind} needs the item to have {needed}")
        role = _role(f"{at}.role", raw["role"]) if "role" in raw else (roles or {}).get(kind, definition.role)
        params = {k: v for k, v in raw.items() if k not in ("type", "weight", "role")}
        try:
            validated = definition.validate(params)
        except CheckParamError as exc:
            raise _SuiteError(f"{at}.{exc.field}", exc.message) from None
        specs.append(CheckSpec(kind, weight, validated, role))  # int stays int in results.json
    if sum(spec.weight for spec in specs) <= 0:
        raise _SuiteError(where, "at least one check needs a weight above 0")
    return specs


def _item(raw: Any, index: int, category: str, roles: dict[str, str] | None = None) -> Item:
    label = f"item #{index + 1}"
    if not isinstance(raw, dict):
        raise _SuiteError(label, f"expected a mapping with id, prompt and checks, got {_describe(raw)}")
    item_id = raw.get("id")
    if isinstance(item_id, str) and _ID_RE.match(item_id):
        label = f"item {item_id}"
    elif item_id is None:
        raise _SuiteError(f"{label}: id", "missing")
    else:
        raise _SuiteError(
            f"{label}: id", f"must match [a-z0-9-]+ (at most 100 characters), got {_describe(item_id)}"
        )
    where = f"{label}: "
    for key in raw:
        if key not in _ITEM_FIELDS:
            raise _unknown_field(where, key, _ITEM_FIELDS)

    prompt = messages = None
    if ("prompt" in raw) == ("messages" in raw):
        raise _SuiteError(f"{where}prompt", "give exactly one of prompt or messages")
    if "prompt" in raw:
        # Empty and whitespace-only prompts are legitimate robustness cases.
        prompt = _string(f"{where}prompt", raw["prompt"], allow_empty=True)
    else:
        messages = _messages(f"{where}messages", raw["messages"])
    input_text = _string(f"{where}input", raw["input"]) if "input" in raw else None
    references = _string_list(f"{where}references", raw["references"]) if "references" in raw else []

    choices = answer = None
    if "choices" in raw:
        choices = _string_list(f"{where}choices", raw["choices"], min_len=2)
        if "answer" not in raw:
            raise _SuiteError(f"{where}answer", "required with choices (index of the right choice, from 0)")
        answer = _integer(f"{where}answer", raw["answer"], 0, len(choices) - 1)
    elif "answer" in raw:
        raise _SuiteError(f"{where}answer", "only allowed with choices")

    tags = _string_list(f"{where}tags", raw["tags"], min_len=0) if "tags" in raw else []
    max_new_tokens = None
    if "max_new_tokens" in raw:
        max_new_tokens = _integer(f"{where}max_new_tokens", raw["max_new_tokens"], 1, MAX_NEW_TOKENS_LIMIT)
    if "checks" not in raw:
        raise _SuiteError(f"{where}checks", "missing; every item needs at least one check")
    checks = _checks(f"{where}checks", raw["checks"], {"references": references, "input": input_text}, roles)
    return Item(
        id=item_id,
        category=category,
        prompt=prompt,
        messages=messages,
        input=input_text,
        references=references,
        choices=choices,
        answer=answer,
        tags=tags,
        max_new_tokens=max_new_tokens,
        checks=checks,
    )


def load_suite(path: str | Path) -> Suite:
    """Read and validate one suite file; raise HessError naming file, item and field."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise HessError(f"{path}: cannot read suite file ({exc.strerror or exc})") from None
    if size > MAX_SUITE_BYTES:
        raise HessError(
            f"{path}: suite file is {size} bytes, over the {MAX_SUITE_BYTES} byte limit; split it"
        )
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HessError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    data = parse_yaml(path, text, MAX_SUITE_BYTES)
    try:
        return _suite(path, data, hashlib.sha256(raw_bytes).hexdigest())
    except _SuiteError as exc:
        raise HessError(f"{path}: {exc}") from None


def _suite(path: Path, data: Any, sha256: str) -> Suite:
    if not isinstance(data, dict):
        raise _SuiteError(
            "suite", f"expected a mapping with suite, version and items at the top, got {_describe(data)}"
        )
    for key in data:
        if key not in _SUITE_FIELDS:
            raise _unknown_field("", key, _SUITE_FIELDS)
    for key in ("suite", "version", "items"):
        if key not in data:
            raise _SuiteError(key, "missing")
    name = _string("suite", data["suite"])
    if name != path.stem:
        raise _SuiteError("suite", f"'{name}' must equal the file name '{path.stem}'")
    if not _SUITE_NAME_RE.match(name):
        raise _SuiteError("suite", f"'{name}' must match [a-z0-9_]+")
    version = _integer("version", data["version"], 1)
    description = _string("description", data.get("description", ""), allow_empty=True)
    roles = _suite_roles(data["roles"]) if "roles" in data else {}
    raw_items = data["items"]
    if not isinstance(raw_items, list) or not raw_items:
        raise _SuiteError("items", f"expected a non-empty list of items, got {_describe(raw_items)}")
    items: list[Item] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_items):
        item = _item(raw, index, name, roles)
        if item.id in seen:
            raise _SuiteError(f"item {item.id}: id", "duplicate id in this suite")
        seen.add(item.id)
        items.append(item)
    return Suite(name, version, description, path, sha256, items)


def available_suites(directory: str | Path | None = None) -> list[Path]:
    directory = Path(directory) if directory is not None else SUITES_DIR
    if not directory.is_dir():
        raise HessError(f"{directory}: suite directory not found")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_suites(directory: str | Path | None = None, names: Iterable[str] | None = None) -> list[Suite]:
    """Load every suite in ``directory`` (default: the shipped suites), or only ``names``.

    Item ids must be unique across all loaded suites.
    """
    paths = available_suites(directory)
    by_name = {p.stem: p for p in paths}
    if names is not None:
        wanted = list(dict.fromkeys(names))
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            listed = ", ".join(sorted(by_name)) or "none"
            raise HessError(f"--suite: unknown suite '{unknown[0]}' (available: {listed})")
        paths = [by_name[n] for n in wanted]
    if not paths:
        raise HessError(f"{directory or SUITES_DIR}: no suite files (*.yaml) found")
    suites = [load_suite(p) for p in paths]
    owner: dict[str, Path] = {}
    for suite in suites:
        for item in suite.items:
            if item.id in owner:
                raise HessError(
                    f"{suite.path}: item {item.id}: id: duplicate id, also used in {owner[item.id]}"
                )
            owner[item.id] = suite.path
    return suites
