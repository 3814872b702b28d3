"""Answers produced elsewhere: a JSONL file with one ``{"id": ..., "output": ...}`` object per line
(optional ``"sample"``: an integer, for several answers per item)."""

from __future__ import annotations

from pathlib import Path

from hessgpt.errors import HessError
from hessgpt.safe_io import check_input_file, loads_json

MAX_BYTES = 200 * 1024 * 1024


def read_responses(path: Path) -> dict[tuple[str, int], str]:
    check_input_file(path, "--responses")
    if path.stat().st_size > MAX_BYTES:
        raise HessError(f"--responses: {path}: larger than {MAX_BYTES // 2**20} MB")
    out: dict[tuple[str, int], str] = {}
    with open(path, encoding="utf-8", errors="strict") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as exc:
            raise HessError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        obj = loads_json(line, where)
        if not isinstance(obj, dict):
            raise HessError(f"{where}: expected an object with 'id' and 'output'")
        item_id, output, sample = obj.get("id"), obj.get("output"), obj.get("sample", 0)
        if not isinstance(item_id, str) or not item_id:
            raise HessError(f"{where}: field 'id' must be a non-empty string")
        if not isinstance(output, str):
            raise HessError(f"{where}: field 'output' must be a string (item {item_id})")
        if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
            raise HessError(f"{where}: field 'sample' must be a non-negative integer (item {item_id})")
        if (item_id, sample) in out:
            raise HessError(f"{where}: duplicate answer for item {item_id} sample {sample}")
        out[(item_id, sample)] = output
    if not out:
        raise HessError(f"--responses: {path}: no answers in the file")
    return out
