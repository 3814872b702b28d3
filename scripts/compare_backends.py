"""The same bench through the local engine and through ``hessgpt serve``: are the results the same?

    python scripts/compare_backends.py                        # SmolLM2, the full default bench
    python scripts/compare_backends.py --suite factual --limit 5 --checkpoint CK   # a quick look

Runs ``bench.py --checkpoint CK`` (local backend), then starts ``hessgpt serve --checkpoint CK`` on a
free 127.0.0.1 port and runs ``bench.py --endpoint ... --chat-template CK`` against it, each into its
own folder under ``--out`` (the same command again resumes both). Prints side by side: greedy
answers identical (goal: all), the largest |difference| of a likelihood (reference and
multiple-choice log-probabilities; goal <= 1e-4), scored token counts, likelihood metrics, the
grade, criteria and category scores. Exit status 0 when everything agrees, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve_process import free_port, start_serve, stop  # noqa: E402

from benchmarks.results_schema import load_results  # noqa: E402

DEFAULT_CHECKPOINT = Path("/work/main/checkpoints/smollm2-135m-instruct.pt")
if not DEFAULT_CHECKPOINT.exists():
    DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "smollm2-135m-instruct.pt"
LIKELIHOOD_GOAL = 1e-4
MODEL_NAME = "compared"


def bench(args: argparse.Namespace, source: list[str], out: Path) -> None:
    command = [sys.executable, str(ROOT / "bench.py"), *source, "--out", str(out), "--batch-size",
               str(args.batch_size), "--no-progress", "--quiet"]
    for flag, value in (("--suite", args.suite), ("--limit", args.limit)):
        if value is not None:
            command += [flag, str(value)]
    print("$ " + " ".join(command), flush=True)
    began = time.perf_counter()
    if subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode:
        raise SystemExit(f"bench.py failed (its error is above); the same command resumes: {out}")
    print(f"  {time.perf_counter() - began:.0f} s", flush=True)


def endpoint_port(out: Path) -> int:
    """The port of this folder's earlier endpoint run when it is free: the endpoint's URL is part of
    the run's identity, so the same port lets the same command resume."""
    record = out / "endpoint.port"
    if record.exists():
        port = int(record.read_text())
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                pass
    port = free_port()
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(str(port))
    return port


def likelihood_values(item: dict) -> list[tuple[str, float]]:
    block = item.get("likelihood") or {}
    values = []
    if block.get("reference_logprob") is not None:
        values.append(("reference", float(block["reference_logprob"])))
    values += [(f"choice {i}", float(v)) for i, v in enumerate(block.get("mc_logprobs") or []) if v is not None]
    return values


def compare(local: dict, endpoint: dict) -> bool:
    """Print the comparison; True when answers, likelihoods (to the goal) and grades all agree."""
    by_key = {(it["id"], it.get("sample", 0)): it for it in endpoint["items"]}
    same, differ, missing = 0, [], 0
    worst, worst_at, scored, counts_differ = 0.0, None, 0, []
    for item in local["items"]:
        other = by_key.get((item["id"], item.get("sample", 0)))
        if other is None or item.get("output") is None or other.get("output") is None:
            missing += 1
            continue
        if item["output"] == other["output"]:
            same += 1
        else:
            differ.append(item["id"])
        mine, theirs = dict(likelihood_values(item)), dict(likelihood_values(other))
        for name in mine.keys() & theirs.keys():
            scored += 1
            delta = abs(mine[name] - theirs[name])
            if delta > worst:
                worst, worst_at = delta, f"{item['id']} {name}"
        a, b = item.get("likelihood") or {}, other.get("likelihood") or {}
        if mine.keys() != theirs.keys() or a.get("reference_tokens") != b.get("reference_tokens"):
            counts_differ.append(item["id"])

    n = len(local["items"])
    print()
    print(f"{'':40}{'local':>14}{'endpoint':>14}")
    print(f"{'greedy answers identical':40}{f'{same}/{n}':>14}")
    if missing:
        print(f"{'items missing on one side':40}{missing:>14}")
    for item_id in differ[:5]:
        print(f"  differs: {item_id}")
    print(f"{'likelihoods compared':40}{scored:>14}")
    worst_text = f"{worst:.2e}" + (f"  ({worst_at})" if worst_at else "")
    print(f"{'max |delta| of a log-probability':40}{worst_text:>14}  (goal <= {LIKELIHOOD_GOAL:g})")
    print(f"{'items scored on other tokens':40}{len(counts_differ):>14}")
    like_a, like_b = local.get("likelihood") or {}, endpoint.get("likelihood") or {}
    for key in ("perplexity", "bits_per_byte", "token_accuracy", "mc_accuracy"):
        print(f"{key:40}{_fmt(like_a.get(key), 6):>14}{_fmt(like_b.get(key), 6):>14}")
    print(f"{'grade /20':40}{_fmt(local.get('grade'), 3):>14}{_fmt(endpoint.get('grade'), 3):>14}")
    grades_equal = local.get("grade") == endpoint.get("grade")
    crit_b = {c["key"]: c.get("points") for c in endpoint["criteria"]}
    for crit in local["criteria"]:
        points = crit.get("points")
        grades_equal &= points == crit_b.get(crit["key"])
        print(f"  {crit['label']:38}{_fmt(points, 3):>14}{_fmt(crit_b.get(crit['key']), 3):>14}")
    for name, cat in local["categories"].items():
        theirs = (endpoint["categories"].get(name) or {}).get("score")
        grades_equal &= cat.get("score") == theirs
        print(f"  {'category ' + name:38}{_fmt(cat.get('score'), 2):>14}{_fmt(theirs, 2):>14}")
    if endpoint["meta"].get("likelihood_note"):
        print(f"endpoint likelihood note: {endpoint['meta']['likelihood_note']}")
    agree = not differ and not missing and not counts_differ and scored > 0 and worst <= LIKELIHOOD_GOAL
    agree = agree and grades_equal
    print(f"\nverdict: {'the two backends agree' if agree else 'the two backends DIFFER'} "
          f"(answers {'identical' if not differ and not missing else 'differ'}, likelihoods "
          f"{'within' if scored and worst <= LIKELIHOOD_GOAL else 'beyond'} {LIKELIHOOD_GOAL:g}, grades "
          f"{'equal' if grades_equal else 'differ'})")
    return agree


def _fmt(value: object, digits: int) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "runs" / "compare-backends",
                        help="folder of the two runs, local/ and endpoint/ (default reports/runs/compare-backends)")
    parser.add_argument("--suite", help="comma-separated suites (default: the bench's default suites)")
    parser.add_argument("--limit", type=int, help="items per suite (default: all)")
    parser.add_argument("--batch-size", type=int, default=16, help="local batch and server slots (default 16)")
    parser.add_argument("--concurrency", type=int, default=16, help="endpoint requests in flight (default 16)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds an endpoint request may take (default 1800: the comparison is not about "
                             "latency, and 16 requests share the server's batch on a busy machine)")
    parser.add_argument("--compare-only", action="store_true", help="compare the two runs already in --out")
    args = parser.parse_args()
    if not args.checkpoint.exists():
        raise SystemExit(f"{args.checkpoint}: no such checkpoint (`hessgpt reference` installs SmolLM2)")
    local_dir, endpoint_dir = args.out / "local", args.out / "endpoint"
    if not args.compare_only:
        print(f"machine load before: {os.getloadavg()[0]:.1f} (1 min), threads: "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)
        bench(args, ["--checkpoint", str(args.checkpoint)], local_dir)
        port = endpoint_port(args.out)
        server = start_serve(args.checkpoint, port, "--batch-size", str(args.batch_size), "--model-name", MODEL_NAME)
        try:
            bench(args, ["--endpoint", f"http://127.0.0.1:{port}/v1", "--model", MODEL_NAME, "--chat-template",
                         str(args.checkpoint), "--concurrency", str(args.concurrency),
                         "--timeout", str(args.timeout)], endpoint_dir)
        finally:
            stop(server)
        print(f"machine load after: {os.getloadavg()[0]:.1f} (1 min)", flush=True)
    return 0 if compare(load_results(local_dir), load_results(endpoint_dir)) else 1


if __name__ == "__main__":
    sys.exit(main())
