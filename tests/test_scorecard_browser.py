"""The scorecard in a real browser (headless Chromium): no console error, no answer script runs.

Slow (a few seconds per page load). Set HESSGPT_SCORECARD_SCREENSHOT=/some/path.png to keep
the screenshot for a look at the design.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures_results import make_results

from reports.render import render_scorecard

CHROMIUM = Path("/usr/bin/chromium")
PWNED = "<script>document.title='pwned'; console.error('answer script ran')</script>"
PWNED_IMG = "<img src=x onerror=\"document.title='pwned'\">"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="headless Chromium not installed (apt-get install -y chromium)"
    ),
]


def _chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _console_lines(stderr: str) -> list[str]:
    """Chromium logs every console message of the page as an ``INFO:CONSOLE`` line."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _title(dom: str) -> str:
    match = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert match, "no <title> in the dumped DOM"
    return match.group(1)


def test_detection_works_on_a_page_whose_script_runs(tmp_path):
    """Control: the same probes do see a script that runs, so a clean result below means something."""
    page = tmp_path / "control.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>control</title></head><body>{PWNED}</body></html>")
    proc = _chromium(tmp_path, page, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _title(proc.stdout) == "pwned"
    assert any("answer script ran" in line for line in _console_lines(proc.stderr))


def test_scorecard_runs_no_answer_script_and_logs_no_console_error(tmp_path):
    results = make_results(
        outputs={"factual-001": PWNED, "creativity-001": PWNED_IMG, "conversation-002": PWNED + PWNED_IMG}
    )
    results["items"][0]["prompt"] = PWNED
    results["robustness"]["findings"].append(PWNED_IMG)
    index = render_scorecard(results, tmp_path / "run")
    expected_title = _title(index.read_text(encoding="utf-8"))

    proc = _chromium(tmp_path, index, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert _title(dom) == expected_title != "pwned"
    assert "<script" not in dom.lower()
    assert "<img" not in dom.lower()
    assert "&lt;script&gt;document.title='pwned'" in dom  # shown as text
    assert _console_lines(proc.stderr) == []


def test_scorecard_screenshot(tmp_path):
    index = render_scorecard(make_results(), tmp_path / "run")
    shot = tmp_path / "scorecard.png"
    proc = _chromium(tmp_path, index, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank canvas
    assert _console_lines(proc.stderr) == []
    keep = os.environ.get("HESSGPT_SCORECARD_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


def test_scorecard_of_a_real_run_is_clean_in_the_browser(tmp_path):
    """A scorecard written by bench.py itself (answers from a responses file, some hostile)."""
    import json
    import sys

    from benchmarks.runner import default_suite_names
    from benchmarks.suite import load_suites

    ids = [item.id for suite in load_suites(names=default_suite_names()) for item in suite.items[:3]]
    answers = {item_id: f"Answer {n}. " + (PWNED if n % 2 else PWNED_IMG) for n, item_id in enumerate(ids)}
    responses = tmp_path / "answers.jsonl"
    responses.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in answers.items()))
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "bench.py", "--responses", str(responses), "--limit", "3", "--out", str(tmp_path / "run"),
         "--quiet", "--no-progress"],
        capture_output=True, text=True, cwd=root,
    )
    assert run.returncode == 0, run.stderr
    index = tmp_path / "run" / "index.html"
    proc = _chromium(tmp_path, index, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _title(proc.stdout) != "pwned"
    assert "<script" not in proc.stdout.lower() and "<img" not in proc.stdout.lower()
    assert _console_lines(proc.stderr) == []
