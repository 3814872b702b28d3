"""CPU steal: the share of a run's CPU time the host gave to other work, recorded beside its times."""

import json
from pathlib import Path

from fixtures_results import make_results

from hessgpt.cpu_steal import StealMeter, read_cpu_times, steal_note
from reports.compare import compare_main


def _stat(path: Path, user: int, idle: int, steal: int) -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice: guest time is already counted in user.
    path.write_text(f"cpu  {user} 0 10 {idle} 0 0 0 {steal} 500 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2\n")


def test_steal_is_read_from_the_aggregate_cpu_line(tmp_path):
    stat = tmp_path / "stat"
    _stat(stat, user=1000, idle=3000, steal=40)
    assert read_cpu_times(stat) == (40, 1000 + 10 + 3000 + 40)


def test_share_is_stolen_ticks_over_all_ticks_since_the_meter_started(tmp_path):
    stat = tmp_path / "stat"
    _stat(stat, user=1000, idle=3000, steal=40)
    meter = StealMeter(stat)
    _stat(stat, user=1130, idle=3010, steal=100)  # 130 + 10 + 60 = 200 ticks, 60 of them stolen
    assert meter.share() == 0.3
    _stat(stat, user=1000, idle=3000, steal=40)  # nothing happened (or counters went back): no share
    assert meter.share() is None


def test_unknown_where_proc_stat_is_missing_or_has_no_steal_field(tmp_path):
    assert read_cpu_times(tmp_path / "absent") is None
    assert StealMeter(tmp_path / "absent").share() is None
    old = tmp_path / "old"
    old.write_text("cpu  1000 0 10 3000 0 0 0\n")  # kernels before 2.6.11: seven fields
    assert read_cpu_times(old) is None
    garbled = tmp_path / "garbled"
    garbled.write_text("cpu  1000 0 10 3000 0 0 0 x\n")
    assert read_cpu_times(garbled) is None


def test_only_a_notable_share_gets_a_note():
    assert steal_note(None) == "" and steal_note(0.0) == "" and steal_note(0.049) == ""
    assert "not comparable" in steal_note(0.05)


def test_the_time_line_and_the_scorecard_say_when_the_host_took_cpu_time(tmp_path):
    from benchmarks.runner import summary_table
    from reports.render import render_scorecard

    stolen = make_results(n_per_category=3)
    stolen["meta"]["cpu_steal"] = 0.31
    time_line = next(line for line in summary_table(stolen).splitlines() if line.startswith("Time:"))
    assert time_line.endswith("MB (CPU steal 31%: the host ran other work on these CPUs, so its times are not "
                              "comparable)")
    html = render_scorecard(stolen, tmp_path / "stolen").read_text(encoding="utf-8")
    assert "<th>CPU steal</th><td>31.0% <span" in html and "so its times are not comparable" in html

    quiet = make_results(n_per_category=3)
    quiet["meta"]["cpu_steal"] = 0.004
    assert "steal" not in summary_table(quiet)
    html = render_scorecard(quiet, tmp_path / "quiet").read_text(encoding="utf-8")
    assert "<th>CPU steal</th><td>0.4%</td>" in html
    # Runs recorded before steal was measured show a dash.
    html = render_scorecard(make_results(n_per_category=3), tmp_path / "old").read_text(encoding="utf-8")
    assert "<th>CPU steal</th><td>—</td>" in html


def test_compare_says_which_run_had_notable_steal(tmp_path, capsys):
    runs = []
    for name, steal in (("a", 0.01), ("b", 0.26)):
        results = make_results(seed=0, n_per_category=10)
        results["meta"]["cpu_steal"] = steal
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results), encoding="utf-8")
        runs.append(str(tmp_path / name))
    assert compare_main([*runs, "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "note: run B had 26% CPU steal: the host ran other work on these CPUs" in out
    assert "run A had" not in out
