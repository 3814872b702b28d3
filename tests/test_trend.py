"""Trend across checkpoints: the best checkpoint, significant steps, the page."""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from fixtures_results import make_results

from graders.paired import reaggregate
from reports.compare import PALETTE, build_trend, format_trend_table, line_chart, trend_context, write_trend


def checkpoint_run(base: dict[str, Any], epoch: int, shift: float) -> dict[str, Any]:
    """The base model's answers with every item score moved by ``shift``, saved as epoch N."""
    run = copy.deepcopy(base)
    for item in run["items"]:
        item["score"] = min(1.0, max(0.0, item["score"] + shift))
    grade, scores = reaggregate(run)
    run["grade"] = round(grade, 2)
    for name, score in scores.items():
        run["categories"][name]["score"] = round(score, 2)
    run["meta"]["checkpoint"] = f"checkpoints/epoch{epoch}.pt"
    run["meta"]["training"]["epoch"] = epoch
    return run


def write_series(root: Path, base: dict[str, Any], shifts: list[float]) -> list[Path]:
    dirs = []
    for epoch, shift in enumerate(shifts, start=1):
        directory = root / f"epoch{epoch}"
        directory.mkdir(parents=True)
        (directory / "results.json").write_text(
            json.dumps(checkpoint_run(base, epoch, shift)), encoding="utf-8"
        )
        dirs.append(directory)
    return dirs


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    # Mid-range scores so shifts up and down are not swallowed by clipping at 0 and 1.
    return make_results(seed=3, n_per_category=20)


def test_trend_page_marks_the_best_checkpoint(tmp_path, base):
    # Rises to epoch 3, then overfits.
    dirs = write_series(tmp_path / "runs", base, [-0.20, -0.05, 0.0, -0.12])
    page_path = write_trend(dirs, tmp_path / "trend")
    assert page_path == tmp_path / "trend" / "trend.html"
    page = page_path.read_text(encoding="utf-8")
    assert 'data-best="epoch3"' in page
    best_rows = re.findall(r'<tr class="best">\s*<td><strong>([^<]+)</strong>', page)
    assert best_rows == ["epoch3"]
    assert page.count("★ best") == 2  # the chart label and the table tag
    summary = json.loads((tmp_path / "trend" / "trend.json").read_text(encoding="utf-8"))
    assert summary["best"]["label"] == "epoch3"
    assert [p["label"] for p in summary["points"]] == ["epoch1", "epoch2", "epoch3", "epoch4"]
    # Inline SVG charts, no script.
    assert page.count('<svg class="chart"') == 2
    assert "<script" not in page


def test_steps_are_tested_pairwise(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [-0.20, -0.05, -0.05, 0.0])
    trend = build_trend(dirs)
    big, none, small = trend.steps
    assert big.significant and big.grade is not None and big.grade.diff > 2
    # Identical answers: no change at all.
    assert none.grade is not None and none.grade.diff == 0 and not none.significant
    assert small.grade is not None and small.grade.diff > 0
    table = format_trend_table(trend)
    assert "epoch4" in table.splitlines()[-1] and table.splitlines()[-1].endswith("<- best")
    assert "+0.00 (p=1.00, CI [+0.00, +0.00], within noise)" in table
    # Each row keeps its own grade CI column; the step's CI is in the step column only.
    for line, run in zip(table.splitlines()[1:], trend.runs, strict=True):
        ci = run.results["grade_ci"]
        assert f"{run.grade:.2f}  [{ci[0]:.2f}, {ci[1]:.2f}]" in line
    # The category changes of the big step are all significant (every item moved).
    assert {c["key"] for c in big.category_changes} == set(base["categories"])


def test_ties_go_to_the_earliest_checkpoint(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [0.0, 0.0, -0.1])
    trend = build_trend(dirs)
    assert trend.best == 0
    assert trend.runner_up == 1
    assert trend.best_vs_runner_up is not None and trend.best_vs_runner_up.p_value == 1.0


def test_changed_suites_do_not_break_the_trend(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [0.0, 0.05])
    results = json.loads((dirs[1] / "results.json").read_text(encoding="utf-8"))
    results["meta"]["suites"]["factual"]["sha256"] = "a" * 64
    (dirs[1] / "results.json").write_text(json.dumps(results), encoding="utf-8")
    trend = build_trend(dirs)
    assert trend.steps[0].grade is None
    assert "suites differ: factual" in trend.steps[0].problem
    page = write_trend(dirs, tmp_path / "trend").read_text(encoding="utf-8")
    assert "not compared: suites differ: factual" in page


def test_single_checkpoint(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [0.0])
    page = write_trend(dirs, tmp_path / "trend").read_text(encoding="utf-8")
    assert 'data-best="epoch1"' in page
    assert "A single checkpoint: nothing to compare." in page


def test_line_chart_geometry():
    chart = line_chart(
        ["a", "b", "c"],
        [{"name": "g", "color": "#000", "values": [10.0, 15.0, None], "cis": [[9.0, 11.0], None, None]}],
        (5.0, 15.0),
        best=1,
    )
    dots = chart["series"][0]["dots"]
    assert len(dots) == 2  # None values are not drawn
    assert dots[1]["y"] == chart["top"]  # the top of the range sits on the top edge
    assert dots[0]["y"] == pytest.approx((chart["top"] + chart["bottom"]) / 2, abs=0.1)
    assert dots[0]["y_low"] > dots[0]["y"] > dots[0]["y_high"]  # SVG y grows downwards
    assert chart["best"]["x"] == dots[1]["x"] and chart["best"]["label"] == "b"
    assert chart["series"][0]["path"].startswith("M") and chart["series"][0]["path"].count("L") == 1


# ---------------------------------------------------------------- bench.py --checkpoint A B ... (end to end)

TINY_ARGS = ["--suite", "conversation", "--limit", "3", "--no-likelihood", "--max-new-tokens", "6", "--no-progress"]


@pytest.fixture(scope="module")
def training_run(tmp_path_factory) -> Path:
    """What the trainer leaves: epoch1, epoch2, epoch10 and best.pt, a copy of epoch2 with its own meta."""
    from hessgpt.loading import load_model

    folder = tmp_path_factory.mktemp("checkpoints") / "run"
    for epoch in (1, 2, 10):
        loaded = load_model("preset:tiny-gpt2", seed=epoch)
        meta = {"epoch": epoch, "step": 40 * epoch, "val_loss": 10.0 - epoch / 10}
        loaded.save(folder / f"epoch{epoch}.pt", meta=meta)
        if epoch == 2:
            loaded.save(folder / "best.pt", meta={**meta, "best_of_epochs": 2})
    return folder


def test_glob_of_checkpoints_writes_the_trend_and_prints_its_table(training_run, tmp_path, capsys, one_thread):
    from benchmarks.cli import main

    out = tmp_path / "trend"
    assert main(["--checkpoint", str(training_run / "*.pt"), "--out", str(out), *TINY_ARGS]) == 0
    captured = capsys.readouterr()
    # best.pt is the same model as epoch2: one point, not two; epoch10 comes after epoch2.
    assert f"skipping {training_run / 'best.pt'}: same weights as {training_run / 'epoch2.pt'}" in captured.err
    summary = json.loads((out / "trend.json").read_text(encoding="utf-8"))
    assert [p["label"] for p in summary["points"]] == ["epoch1", "epoch2", "epoch10"]
    assert [p["epoch"] for p in summary["points"]] == [1, 2, 10]
    assert (out / "trend.html").is_file()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["run-epoch1", "run-epoch10", "run-epoch2"]
    table = captured.out.split("Trend over 3 checkpoints")[1].splitlines()
    assert table[1].split()[:3] == ["checkpoint", "epoch", "step"]
    rows = [line.split()[:3] for line in table[2:5]]
    assert rows == [["epoch1", "1", "40"], ["epoch2", "2", "80"], ["epoch10", "10", "400"]]
    assert sum("<- best" in line for line in table) == 1
    assert "(p=" in table[3] and "(p=" in table[4]
    assert captured.out.rstrip().endswith(f"trend: {out / 'trend.html'}")


def test_glob_order_follows_the_recorded_epoch_not_the_name(tmp_path):
    from benchmarks.cli import plan_checkpoints
    from hessgpt.loading import load_model

    loaded = load_model("preset:tiny-gpt2", seed=0)
    for name, epoch in (("a", 3), ("b", 1), ("c", 2)):
        loaded.save(tmp_path / f"{name}.pt", meta={"epoch": epoch, "step": 10 * epoch})
    plan, notes = plan_checkpoints([str(tmp_path / "*.pt")])
    assert [Path(p).name for p in plan] == ["b.pt", "c.pt", "a.pt"]
    assert notes == []
    # Paths given one by one keep their order; the same file twice runs once.
    plan, notes = plan_checkpoints([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), str(tmp_path / "a.pt")])
    assert [Path(p).name for p in plan] == ["a.pt", "b.pt"]
    assert notes == [f"--checkpoint: skipping {tmp_path / 'a.pt'}: already listed as {tmp_path / 'a.pt'}"]


def test_a_glob_skips_the_trainers_state_file_before_any_run(tmp_path, capsys):
    import torch

    from benchmarks.cli import main, plan_checkpoints
    from hessgpt.loading import load_model
    from hessgpt.train import STATE_FORMAT

    loaded = load_model("preset:tiny-gpt2", seed=0)
    for epoch in (1, 2):
        loaded.save(tmp_path / f"epoch{epoch}.pt", meta={"epoch": epoch, "step": 10 * epoch})
    state = {"format": STATE_FORMAT, "version": 1, "model": loaded.model.state_dict(), "optimizer": {},
             "global_step": 20, "epoch": 2}
    torch.save(state, tmp_path / "last_state.pt")
    plan, notes = plan_checkpoints([str(tmp_path / "*.pt")])
    assert [Path(p).name for p in plan] == ["epoch1.pt", "epoch2.pt"]
    assert notes == [f"--checkpoint: skipping {tmp_path / 'last_state.pt'}: a training state (for hessgpt train "
                     "--resume), not a checkpoint"]
    # Given alone, it is an error that says what the file is (no vocabulary message), before any run.
    assert main(["--checkpoint", str(tmp_path / "last_state.pt"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "a training state" in err and "vocab" not in err and not (tmp_path / "out").exists()


def test_a_bad_checkpoint_fails_before_any_run_starts(training_run, tmp_path, capsys):
    from benchmarks.cli import main

    good = training_run / "epoch1.pt"
    truncated = tmp_path / "epoch2.pt"
    truncated.write_bytes(good.read_bytes()[:4000])
    notes = tmp_path / "notes.pt"
    notes.write_text("not a checkpoint", encoding="utf-8")
    cases = [
        (truncated, f"{truncated}: "),
        (tmp_path / "epoch3.pt", f"{tmp_path / 'epoch3.pt'}: no such checkpoint file"),
        (notes, f"{notes}: "),
    ]
    for bad, expected in cases:
        out = tmp_path / f"out-{bad.stem}"
        assert main(["--checkpoint", str(good), str(bad), "--out", str(out), *TINY_ARGS]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {expected}"), err
        assert len(err.strip().splitlines()) == 1
        assert not out.exists()  # nothing ran, not even the good checkpoint


def cielab(colour: str) -> tuple[float, float, float]:
    """sRGB hex -> CIELAB (D65), for colour distances."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_category_colours_are_far_apart():
    # Two categories once got green #27ae60 and teal #16a085 (distance 29): hard to tell apart.
    distances = {(a, b): math.dist(cielab(a), cielab(b)) for a, b in itertools.combinations(PALETTE, 2)}
    assert min(distances.values()) > 35
    shipped = PALETTE[:7]  # one per shipped category
    assert min(d for (a, b), d in distances.items() if a in shipped and b in shipped) > 40


def test_trend_page_says_how_checkpoints_are_ordered(tmp_path, base):
    dirs = write_series(tmp_path / "runs", base, [-0.2, -0.1, 0.0])
    page = write_trend(dirs, tmp_path / "trend").read_text(encoding="utf-8")
    assert "By the epoch recorded in each checkpoint" in page and "In the order given" not in page
    page = write_trend(list(reversed(dirs)), tmp_path / "trend2").read_text(encoding="utf-8")
    assert "In the order given" in page


def test_trend_steps_never_show_an_interval_that_contradicts_the_verdict(tmp_path):
    # Three items per category (a --limit 3 run): small consistent moves between checkpoints.
    small = make_results(seed=1, n_per_category=3)
    dirs = write_series(tmp_path / "runs", small, [-0.12, -0.06, -0.05, 0.0])
    context = trend_context(build_trend(dirs))
    seen = set()
    for step in context["steps"]:
        d = step["d"]
        seen.add(step["verdict"])
        if d.ci is None:
            assert step["verdict"] == "too few items to say"
        else:
            assert (d.ci[0] > 0 or d.ci[1] < 0) == (step["verdict"] == "significant") == (d.p_value < 0.05)
    assert "significant" in seen
