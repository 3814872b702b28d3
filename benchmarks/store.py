"""Finished work, written as it completes, so an interrupted run loses nothing.

``work.jsonl`` in the run folder holds one JSON object per finished generation or likelihood, keyed by
a hash of everything that determines it (model, item content, settings, seed, sample). A second run
of the same command reads it back and skips what is already there; a changed input gets a new key
and is redone. A line cut short by a kill is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def work_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class WorkStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict] = {}
        self.dropped_lines = 0
        if path.exists():
            self._load()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")

    def _load(self) -> None:
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    self.dropped_lines += 1  # a line cut short by an interruption
                    continue
                if isinstance(record, dict) and isinstance(record.get("key"), str):
                    self.records[record["key"]] = record
        if self.dropped_lines:
            # Rewrite without the broken tail so new lines do not glue onto it.
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as out:
                for record in self.records.values():
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            os.replace(tmp, self.path)

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def put_many(self, records: list[dict]) -> None:
        for record in records:
            self.records[record["key"]] = record
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
