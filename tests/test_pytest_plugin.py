"""The pytest plugin, exercised by running the user-facing example gate file with pytester."""

from __future__ import annotations

import copy
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import scipy.stats  # noqa: F401  (see below)
from fixtures_results import CATEGORIES, make_results

import graders.gates  # noqa: F401
from graders.paired import reaggregate

# In-process pytester runs restore sys.modules afterwards, and numpy/scipy C extensions
# cannot be imported a second time: importing them here keeps them loaded across runs.

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "test_regression_gates.py"
WRONG = "Lyon is the capital of Germany."


def good_model() -> dict[str, Any]:
    # Above the example's floors: grade >= 13, factual >= 70.
    scores = dict.fromkeys(
        CATEGORIES,
        75.0,
    )
    return make_results(seed=0, n_per_category=20, category_scores=scores)


def broken_factual(results: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(results)
    for item in new["items"]:
        if item["category"] == "factual":
            item["score"] = 0.0
            item["output"] = WRONG
    grade, scores = reaggregate(new)
    new["grade"] = round(grade, 2)
    for name, score in scores.items():
        new["categories"][name]["score"] = round(score, 2)
    return new


def write_run(directory: Path, results: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return directory


@pytest.fixture
def gate_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user project with the example gate file copied in, and three saved runs."""
    pytester.makepyfile(test_regression_gates=EXAMPLE.read_text(encoding="utf-8"))
    good = good_model()
    write_run(pytester.path / "runs" / "epoch6", good)
    write_run(pytester.path / "runs" / "epoch7", good)
    write_run(pytester.path / "runs" / "broken", broken_factual(good))
    return pytester


def test_plugin_is_registered_through_the_pytest11_entry_point():
    registered = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert registered.get("hessgpt_bench") == "graders.pytest_plugin"


def test_gates_pass_on_a_good_run(gate_project):
    result = gate_project.runpytest("--bench-run", "runs/epoch7", "--bench-baseline", "runs/epoch6")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["hessgpt-bench gates: --bench-run runs/epoch7, --bench-baseline runs/epoch6"]
    )


def test_gates_fail_on_a_regression_with_the_right_message(gate_project):
    result = gate_project.runpytest("--bench-run", "runs/broken", "--bench-baseline", "runs/epoch6")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: grade *.**/20 (95% CI *) is below the required 13/20: runs/broken",
            "*AssertionError: factual: score 0.0/100 * is below the required 70/100: runs/broken",
            "*AssertionError: regression in grade, factual: runs/broken vs baseline runs/epoch6, 140 paired items*",
            "*  factual: 75.0 -> 0.0 /100, drop 75.0 > 5 (*% CI * to * of the drop), p < 0.001 vs its share of alpha *: "
            "significant*20 of 20 items worse*",
            "*items that regressed most*",
            f'*factual-0* [[]factual[]] * -> 0.00: "*" -> "{WRONG}"',
        ]
    )
    # The helpers' own source is hidden from the traceback: the message is what the user reads.
    assert "report = evaluate_regression(" not in result.stdout.str()


def test_gates_skip_with_the_option_to_give(gate_project):
    result = gate_project.runpytest("-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(
        ["*no bench run to gate: give --bench-run DIR (a finished run) or --bench-checkpoint CK*"]
    )
    result = gate_project.runpytest("-rs", "--bench-run", "runs/epoch7")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*no baseline to compare against: give --bench-baseline DIR*"])


def test_unreadable_run_is_a_one_line_failure(gate_project):
    result = gate_project.runpytest("--bench-run", "runs/nowhere")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*--bench-run: runs/nowhere: no such run*"])
    assert "Traceback" not in result.stdout.str()


def test_run_and_checkpoint_are_exclusive(gate_project):
    result = gate_project.runpytest("--bench-run", "runs/epoch7", "--bench-checkpoint", "ck.pt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--bench-run and --bench-checkpoint: give one of them, not both*"])


# A project of the user's that has its own ``benchmarks`` package: it must not replace ours.
DECOY = "raise SystemExit('the project\\'s own benchmarks package was run instead of hessgpt-bench')\n"
TINY_ARGS = ["--suite", "conversation", "--limit", "3", "--no-likelihood", "--max-new-tokens", "6", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hessgpt.loading import load_model

    folder = tmp_path_factory.mktemp("ck")
    return load_model("preset:tiny-gpt2", seed=5).save(folder / "epoch7.pt", meta={"epoch": 7, "step": 70})


def test_checkpoint_option_runs_our_bench_beside_a_local_benchmarks_package(
    gate_project, tiny_checkpoint, monkeypatch, one_thread
):
    from benchmarks.cli import main

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the bench child: a tiny model gains nothing from threads
    gate_project.mkpydir("benchmarks")
    for name in ("__init__.py", "cli.py", "__main__.py"):
        (gate_project.path / "benchmarks" / name).write_text(DECOY, encoding="utf-8")
    baseline = gate_project.path / "runs" / "tiny"
    assert main(["--checkpoint", str(tiny_checkpoint), "--out", str(baseline), *TINY_ARGS, "--quiet"]) == 0

    result = gate_project.runpytest(
        "--bench-checkpoint",
        str(tiny_checkpoint),
        "--bench-baseline",
        "runs/tiny",
        "--bench-out",
        "fresh",
        "--bench-args",
        " ".join(TINY_ARGS),
        "-p",
        "no:cacheprovider",
    )
    # A random model is below both floors, and no worse than itself.
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*AssertionError: grade *.**/20 * is below the required 13/20*: fresh"])
    assert "own benchmarks package" not in result.stdout.str()
    fresh = json.loads((gate_project.path / "fresh" / "results.json").read_text(encoding="utf-8"))
    assert fresh["meta"]["checkpoint"] == str(tiny_checkpoint)
    assert fresh["meta"]["training"]["epoch"] == 7
    assert list(fresh["meta"]["suites"]) == ["conversation"] and len(fresh["items"]) == 3


def test_checkpoint_option_reports_a_failed_bench_in_one_line(gate_project, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = gate_project.runpytest("--bench-checkpoint", "checkpoints/missing.pt", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*--bench-checkpoint checkpoints/missing.pt: the bench run failed (exit 2): "
            "error: checkpoints/missing.pt: no such checkpoint file*"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_clear_grade_drop_on_tiny_categories_fails_in_pytest(pytester):
    """Seven categories of 3 items and a 4-point grade drop (p about 0.016): the gate fails."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_gates import drop_concentrated

    pytester.makepyfile(test_regression_gates=EXAMPLE.read_text(encoding="utf-8"))
    base = make_results(seed=3, n_per_category=3)
    write_run(pytester.path / "runs" / "e10", base)
    write_run(pytester.path / "runs" / "e2", drop_concentrated(base))
    result = pytester.runpytest("--bench-run", "runs/e2", "--bench-baseline", "runs/e10", "-k", "no_regression")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["*AssertionError: regression in grade: runs/e2 vs baseline runs/e10, 21 paired items*"])
