"""Sandbox overhead per run, against a plain ``python -c`` subprocess.

    python scripts/bench_sandbox.py            # 30 runs of each program
    python scripts/bench_sandbox.py --runs 100

Two programs: ``print(1)`` and the same with numpy imported. Each is run N times through
``hessgpt.sandbox`` (a fresh jailed process forked from the warm template: namespaces, rlimits,
seccomp, import guard) and N times as ``python -I -c`` in a plain subprocess (no isolation, the
interpreter starts from scratch; for ``print(1)`` also ``python -I -S -c``, without site-packages). Prints median and p95 wall time per run, side by side, and the
one-off cost of starting the template (preloading numpy and sympy).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hessgpt.sandbox import Sandbox  # noqa: E402

PROGRAMS = {"print(1)": "print(1)", "numpy": "import numpy\nprint(numpy.arange(3).sum())"}


def _times(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _row(label: str, times: list[float]) -> str:
    p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
    return f"{label:<40} {statistics.median(times) * 1000:>9.1f} {p95 * 1000:>9.1f}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    start = time.perf_counter()
    box = Sandbox()
    box.start()
    startup = time.perf_counter() - start
    print(f"{_cpu_name()}, {args.runs} runs each; template start (preloads {', '.join(box.preloaded[-2:])}): {startup:.2f} s")
    print(f"{'program / how':<40} {'median ms':>9} {'p95 ms':>9}")
    try:
        for name, code in PROGRAMS.items():
            def sandboxed(code=code):
                result = box.run(code)
                if not result.ok:
                    raise SystemExit(f"sandbox run failed: {result.summary()}")

            def plain(code=code):
                subprocess.run([sys.executable, "-I", "-c", code], check=True, capture_output=True)

            sandboxed()  # warm-up
            print(_row(f"{name} / sandbox", _times(sandboxed, args.runs)))
            print(_row(f"{name} / python -I -c subprocess", _times(plain, args.runs)))
            if name == "print(1)":  # the bare interpreter start, without site-packages
                def bare(code=code):
                    subprocess.run([sys.executable, "-I", "-S", "-c", code], check=True, capture_output=True)

                print(_row(f"{name} / python -I -S -c subprocess", _times(bare, args.runs)))
    finally:
        box.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
