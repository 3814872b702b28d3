"""Greedy probe of a tool-calling model on held-out generated conversations, before the full suite.

Routes each question of a messages JSONL (by default the run folder's ``test.jsonl``, which training
never saw) through the model and the sandbox, and says, per question family and overall, how often
the model opened a code block, wrote exactly the reference code (its operands copied right), got the
reference result from the tool, and stated that result in its answer::

    python scripts/probe_tool_model.py checkpoints/tool/epoch1.pt [--data FILE] [--n 200] [--show 5]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("called", "code exact", "result right", "answer right")


def family(code: str) -> str:
    """The reference code's template: its first line that is not an import, literals blanked."""
    lines = [line for line in code.splitlines() if line and not line.startswith(("import", "from"))]
    shape = re.sub(r"'[^']*'", "S", lines[0] if lines else code)
    return re.sub(r"\d+(\.\d+)?", "N", shape)[:60]


def load(path: Path, n: int) -> list[dict]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        if len(messages) == 4 and messages[2]["role"] == "tool":
            code = messages[1]["content"].removeprefix("<|code|>\n").removesuffix("\n<|end|>")
            cases.append({"question": messages[0]["content"], "code": code, "result": messages[2]["content"]})
        if len(cases) == n:
            break
    return cases


def score(case: dict, answer) -> dict[str, bool]:
    from hessgpt.tools import final_answer

    calls = answer.calls
    first = calls[0] if calls else None
    stated = final_answer(answer.text).strip()
    return {
        "called": bool(calls),
        "code exact": first is not None and first.code.strip() == case["code"],
        "result right": first is not None and first.result.strip() == case["result"],
        "answer right": stated == f"The answer is {case['result']}." or stated.rstrip(".") == case["result"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", type=Path, help="messages JSONL (default: test.jsonl beside the checkpoint)")
    parser.add_argument("--n", type=int, default=200, help="questions to probe")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--show", type=int, default=5, help="wrong answers to print")
    args = parser.parse_args()

    from hessgpt.generate import Engine, GenerationSettings
    from hessgpt.loading import load_model
    from hessgpt.router import Router

    data = args.data or Path(args.checkpoint).parent / "test.jsonl"
    cases = load(data, args.n)
    engine = Engine(load_model(args.checkpoint), batch_size=args.batch_size)
    router = Router(engine, max_calls=1)
    settings = GenerationSettings(max_new_tokens=160)
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * (len(COLUMNS) + 1))
    shown = 0
    for start in range(0, len(cases), args.batch_size):
        part = cases[start:start + args.batch_size]
        answers = router.run([[{"role": "user", "content": c["question"]}] for c in part], settings)
        for case, answer in zip(part, answers, strict=True):
            marks = score(case, answer)
            for key in (family(case["code"]), "all"):
                row = totals[key]
                row[0] += 1
                for i, column in enumerate(COLUMNS):
                    row[i + 1] += marks[column]
            if not marks["answer right"] and shown < args.show:
                shown += 1
                print(f"Q: {case['question']}\n   expected: {case['code']!r} -> {case['result']}\n"
                      f"   got:      {answer.text[:300]!r}\n")
    print(f"{'family':62s} {'n':>4s} " + " ".join(f"{c:>12s}" for c in COLUMNS))
    for key in sorted(totals, key=lambda k: (k == "all", k)):
        n, *hits = totals[key]
        print(f"{key:62s} {n:4d} " + " ".join(f"{100 * h / n:11.0f}%" for h in hits))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
