"""results.json: the contract between the runner, the reports, the gates and the backends.

One module owns it: its version, how it is written (atomically, strict JSON: a non-finite number
becomes null, never a bare NaN), how it is read, and how it is checked. Every reader goes through
``load_results`` or ``validate_results``, so a damaged or outdated file fails in one line naming
the file and the field.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hessgpt.errors import HessError
from hessgpt.safe_io import atomic_write_text, check_input_file, loads_json

SCHEMA_VERSION = 1
RESULTS_NAME = "results.json"


def save_results(results: Mapping[str, Any], out_dir: Path) -> Path:
    """Validate and write ``out_dir/results.json`` atomically (a reader never sees half a file)."""
    data = validate_results(_strict(results), source=str(Path(out_dir) / RESULTS_NAME))
    path = out_dir / RESULTS_NAME
    return atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False))


def _strict(value: Any) -> Any:
    """A copy with every non-finite float replaced by None: JSON has no NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Field:
    """One field of a record: ``kind`` is a type, "number" (not a bool) or "interval" ([low, high] or null)."""

    name: str
    kind: type | str
    what: str = ""  # how an error names the expected value, for a type
    required: bool = True  # a required field must be present; an optional one is checked when present
    nullable: bool = False


_CRITERION = (Field("key", str, "a string"), Field("label", str, "a string"),
              Field("points", "number", nullable=True), Field("max", "number"),
              Field("ci", "interval", required=False),
              Field("categories", list, "a list of category names", required=False))
_CATEGORY = (Field("score", "number", nullable=True), Field("ci", "interval", required=False),
             Field("n_items", "number"), Field("n_missing", "number", required=False))
_ITEM = (Field("id", str, "a string"), Field("category", str, "a string"),
         Field("output", str, "a string", required=False, nullable=True), Field("score", "number", nullable=True),
         Field("messages", list, "a list of messages", required=False, nullable=True),
         Field("references", list, "a list of strings", required=False, nullable=True),
         Field("likelihood", dict, "an object", required=False, nullable=True),
         Field("checks", list, "a list", required=False, nullable=True),
         Field("adjustments", list, "a list", required=False, nullable=True))
_CHECK = (Field("type", str, "a string"), Field("score", "number", nullable=True))
_ADJUSTMENT = (Field("factor", "number", required=False, nullable=True),)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


class _Validator:
    """Checks one results dict; every failure names the source and the field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> HessError:
        return HessError(f"{self.source}: field '{field}' {problem}")

    def require(self, obj: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in obj:
            return self._missing(f"{path}{key}")
        return obj[key]

    def _missing(self, field: str) -> Any:
        raise self.fail(
            field, "is missing; the file is not a complete results.json, re-run the bench to regenerate it"
        )

    def number(self, value: Any, field: str, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if not is_number(value):
            kind = "a number or null" if nullable else "a number"
            raise self.fail(field, f"must be {kind}, got {_short(value)}")

    def interval(self, value: Any, field: str) -> None:
        if value is None:
            return
        if not (isinstance(value, list) and len(value) == 2 and all(is_number(v) for v in value)):
            raise self.fail(field, f"must be [low, high] numbers or null, got {_short(value)}")

    def kind(
        self, value: Any, expected: type | tuple[type, ...], field: str, what: str, nullable: bool = False
    ) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, expected):
            raise self.fail(field, f"must be {what}{' or null' if nullable else ''}, got {_short(value)}")

    def record(self, obj: Any, path: str, fields: tuple[Field, ...]) -> None:
        """``obj`` is an object whose ``fields`` hold the values they describe."""
        self.kind(obj, dict, path, "an object")
        for f in fields:
            if f.required:
                value = self.require(obj, f.name, path + ".")
            elif f.name in obj:
                value = obj[f.name]
            else:
                continue
            field = f"{path}.{f.name}"
            if f.kind == "number":
                self.number(value, field, f.nullable)
            elif f.kind == "interval":
                self.interval(value, field)
            else:
                self.kind(value, f.kind, field, f.what, f.nullable)


def validate_results(data: Any, source: str = RESULTS_NAME) -> dict[str, Any]:
    """Check the fields the report relies on; raise HessError naming ``source`` and the field."""
    v = _Validator(source)
    if not isinstance(data, dict):
        raise HessError(f"{source}: expected a JSON object at the top level, got {type(data).__name__}")
    version = v.require(data, "schema_version", "")
    if version != SCHEMA_VERSION:
        raise v.fail(
            "schema_version",
            f"is {_short(version)} but this version reads schema_version {SCHEMA_VERSION}; "
            "re-run the bench with this version to regenerate the file",
        )
    # null when no category of the run counts toward the /20 (only the tools and code suites)
    v.number(v.require(data, "grade", ""), "grade", nullable=True)
    v.interval(v.require(data, "grade_ci", ""), "grade_ci")
    v.kind(v.require(data, "mention", ""), str, "mention", "a string", nullable=data.get("grade") is None)
    v.kind(data.get("partial", False), bool, "partial", "true or false", nullable=True)

    criteria = v.require(data, "criteria", "")
    v.kind(criteria, list, "criteria", "a list")
    for i, crit in enumerate(criteria):
        v.record(crit, f"criteria[{i}]", _CRITERION)

    categories = v.require(data, "categories", "")
    v.kind(categories, dict, "categories", "an object mapping category name to its scores")
    for name, cat in categories.items():
        v.record(cat, f"categories.{name}", _CATEGORY)

    for block in ("likelihood", "robustness"):
        v.kind(data.get(block), dict, block, "an object", nullable=True)
    likelihood = data.get("likelihood") or {}
    for key in ("perplexity", "bits_per_byte", "token_accuracy", "mc_accuracy"):
        v.number(likelihood.get(key), f"likelihood.{key}", nullable=True)
    v.kind(likelihood.get("per_category", {}), dict, "likelihood.per_category", "an object", nullable=True)
    robustness = data.get("robustness") or {}
    v.kind(robustness.get("findings", []), list, "robustness.findings", "a list of strings", nullable=True)

    items = v.require(data, "items", "")
    v.kind(items, list, "items", "a list")
    for i, item in enumerate(items):
        path = f"items[{i}]"
        v.record(item, path, _ITEM)
        for j, check in enumerate(item.get("checks") or []):
            v.record(check, f"{path}.checks[{j}]", _CHECK)
        for j, adjustment in enumerate(item.get("adjustments") or []):
            v.record(adjustment, f"{path}.adjustments[{j}]", _ADJUSTMENT)

    meta = v.require(data, "meta", "")
    v.kind(meta, dict, "meta", "an object")
    for key in ("model", "training", "settings", "versions", "suites"):
        v.kind(meta.get(key), dict, f"meta.{key}", "an object", nullable=True)
    v.kind((meta.get("model") or {}).get("config"), dict, "meta.model.config", "an object", nullable=True)
    for name, suite in (meta.get("suites") or {}).items():
        v.kind(suite, dict, f"meta.suites.{name}", "an object")
    return data


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a results.json (or the results.json inside a run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_NAME
    if os.path.lexists(path):
        check_input_file(path, "results")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HessError(f"{path}: file not found; pass a run directory or its {RESULTS_NAME}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HessError(f"{path}: cannot read the file ({exc})") from None
    # Files written before saving was strict may hold NaN: read it as null (unknown).
    data = loads_json(text, str(path), allow_nan=True)
    return validate_results(data, source=str(path))
