"""pytest plugin: regression gates on HessGPT Bench runs.

Registered through the ``pytest11`` entry point, so installing hessgpt-bench
is enough. It adds the options

* ``--bench-run DIR``: a finished run (a directory with results.json) to gate;
* ``--bench-checkpoint CK``: run the bench on a checkpoint first (``bench.py --checkpoint CK
  --out DIR`` in a subprocess, importing this installation's ``benchmarks`` even when the project
  has its own package of that name), then gate that run;
* ``--bench-baseline DIR``: the run to compare against;
* ``--bench-out DIR`` / ``--bench-args "..."``: where ``--bench-checkpoint`` writes
  its run, and extra arguments for that bench run;

and the session fixtures ``bench_run`` and ``bench_baseline`` (both
``graders.gates.BenchRun``). Tests that use a fixture whose option is absent
are skipped with a message naming the option, so gate tests can live in a
normal test suite. The assertion helpers live in ``graders.gates``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from benchmarks.results_schema import RESULTS_NAME as RESULTS_FILE

if TYPE_CHECKING:
    from graders.gates import BenchRun

# pytest loads this plugin in every session of an environment where hessgpt-bench is
# installed, so numpy/scipy (through graders.gates) are imported only when a gate runs.


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hessgpt-bench", "HessGPT Bench regression gates")
    group.addoption(
        "--bench-run", metavar="DIR", help="a finished bench run (directory with results.json) to gate"
    )
    group.addoption(
        "--bench-checkpoint",
        metavar="CK",
        help="run the bench on this checkpoint first, then gate the new run",
    )
    group.addoption("--bench-baseline", metavar="DIR", help="a finished bench run to compare against")
    group.addoption(
        "--bench-out",
        metavar="DIR",
        help="where --bench-checkpoint writes its run (default: a temporary directory)",
    )
    group.addoption(
        "--bench-args",
        metavar="ARGS",
        default="",
        help='extra arguments for the --bench-checkpoint run, e.g. "--suite factual --limit 20"',
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--bench-run") and config.getoption("--bench-checkpoint"):
        raise pytest.UsageError("--bench-run and --bench-checkpoint: give one of them, not both")


def pytest_report_header(config: pytest.Config) -> list[str]:
    parts = []
    for flag in ("--bench-run", "--bench-checkpoint", "--bench-baseline"):
        value = config.getoption(flag)
        if value:
            parts.append(f"{flag} {value}")
    return [f"hessgpt-bench gates: {', '.join(parts)}"] if parts else []


def _load(path: str, flag: str) -> BenchRun:
    from graders.gates import load_run
    from hessgpt.errors import HessError

    try:
        return load_run(path)
    except HessError as error:
        pytest.fail(f"{flag}: {error}", pytrace=False)


def _find_results(out_dir: Path) -> Path:
    """The run directory the bench wrote: out_dir itself, or its only sub-run."""
    if (out_dir / RESULTS_FILE).is_file():
        return out_dir
    found = sorted(out_dir.rglob(RESULTS_FILE))
    return found[0].parent if len(found) == 1 else out_dir


def package_root() -> Path:
    """The folder that holds this installation's ``benchmarks`` package (beside ``graders``)."""
    return Path(__file__).resolve().parent.parent


# ``python -m benchmarks.cli`` would find a user's own ``benchmarks`` package first (the current
# directory leads sys.path), so the child drops the cwd from its path and, unless our root already
# comes before any other ``benchmarks``, puts it first.
_BENCH_ENTRY = """\
import os, sys
root = sys.argv.pop(1)
cwd = os.path.realpath(os.getcwd())
paths = [p for p in sys.path if os.path.realpath(p or ".") != cwd]
ahead = paths[: paths.index(root)] if root in paths else paths
if root not in paths or any(os.path.exists(os.path.join(p, "benchmarks")) for p in ahead):
    paths.insert(0, root)
sys.path[:] = paths
from benchmarks.cli import main
sys.exit(main(sys.argv[1:]))
"""


def bench_command(checkpoint: str, out_dir: Path, extra_args: list[str]) -> list[str]:
    """The child process that runs our bench, whatever packages the current directory holds."""
    root = package_root()
    if not (root / "benchmarks" / "cli.py").is_file():
        pytest.fail(f"--bench-checkpoint: {root}: no benchmarks/cli.py beside graders/; reinstall hessgpt-bench",
                    pytrace=False)
    return [sys.executable, "-c", _BENCH_ENTRY, str(root), "--checkpoint", checkpoint, "--out", str(out_dir),
            *extra_args]


def run_bench(checkpoint: str, out_dir: Path, extra_args: list[str]) -> BenchRun:
    """Run the bench on a checkpoint in a subprocess and load the run it wrote."""
    completed = subprocess.run(bench_command(checkpoint, out_dir, extra_args), capture_output=True, text=True,
                               check=False)
    if completed.returncode != 0:
        tail = (completed.stderr.strip() or completed.stdout.strip() or "no output").splitlines()[-1]
        pytest.fail(
            f"--bench-checkpoint {checkpoint}: the bench run failed (exit {completed.returncode}): {tail}",
            pytrace=False,
        )
    return _load(str(_find_results(out_dir)), "--bench-checkpoint")


@pytest.fixture(scope="session")
def bench_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BenchRun:
    """The run under test, from --bench-run DIR or a fresh bench of --bench-checkpoint CK."""
    config = request.config
    run_dir = config.getoption("--bench-run")
    if run_dir:
        return _load(run_dir, "--bench-run")
    checkpoint = config.getoption("--bench-checkpoint")
    if checkpoint:
        out = config.getoption("--bench-out")
        out_dir = Path(out) if out else tmp_path_factory.mktemp("bench-run")
        try:
            extra = shlex.split(config.getoption("--bench-args") or "")
        except ValueError as error:
            pytest.fail(f"--bench-args: cannot split it ({error})", pytrace=False)
        return run_bench(checkpoint, out_dir, extra)
    pytest.skip(
        "no bench run to gate: give --bench-run DIR (a finished run) or --bench-checkpoint CK (run the bench first)"
    )


@pytest.fixture(scope="session")
def bench_baseline(request: pytest.FixtureRequest) -> BenchRun:
    """The run to compare against, from --bench-baseline DIR."""
    baseline = request.config.getoption("--bench-baseline")
    if not baseline:
        pytest.skip("no baseline to compare against: give --bench-baseline DIR (a finished run)")
    return _load(baseline, "--bench-baseline")
