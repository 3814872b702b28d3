"""Answers produced elsewhere (a JSONL file, see ``benchmarks.responses``) as a bench backend."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.backends.base import Backend, Capabilities, Generation, GenerationRequest, OnGeneration
from benchmarks.responses import read_responses


class ResponsesBackend(Backend):
    kind = "responses"

    def __init__(self, path: str) -> None:
        self.path = path
        self.answers = read_responses(Path(path))
        self.capabilities = Capabilities(
            likelihood=False, seeds=False, logprobs=False, context_length=None, generates=False,
            likelihood_note="no model was loaded for this run (answers were read from a file)")
        self.unmatched: list[str] = []

    def samples_for(self, item_id: str, requested: int) -> list[int]:
        return sorted({s for (i, s) in self.answers if i == item_id} or {0})

    def generate(self, requests: Sequence[GenerationRequest], on_result: OnGeneration) -> None:
        # Answers whose item was not selected are noted (on stderr and in meta), not graded.
        asked = {r.item_id for r in requests}
        self.unmatched = sorted({i for i, _ in self.answers if i not in asked})
        if self.unmatched:
            shown = ", ".join(self.unmatched[:3])
            print(f"note: {len(self.unmatched)} answer(s) in {self.path} match no selected item "
                  f"(e.g. {shown}); they were not graded", file=sys.stderr)
        for index, request in enumerate(requests):
            output = self.answers.get((request.item_id, request.sample))
            if output is not None:
                on_result(index, Generation(output, None))

    def identity(self) -> dict[str, Any]:
        return {"backend": self.kind, "file": str(self.path)}

    def describe(self) -> dict[str, Any]:
        return {"backend": {"kind": self.kind}, "responses_file": self.path,
                "unmatched_responses": len(self.unmatched)}
