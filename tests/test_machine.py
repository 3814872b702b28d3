"""The machine record: CPU model and ISA in results.json, on the scorecard, and in compare."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures_results import make_results

from hessgpt.machine import _cpuinfo, describe_machine, isa_level, last_level_cache_bytes, machine_differences
from reports.compare import compare_main
from reports.render import render_scorecard

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx avx2
"""

EPYC_FLAGS = {"avx", "avx2", "fma", "sse2"}


def test_cpuinfo_reads_the_first_processor(tmp_path: Path):
    path = tmp_path / "cpuinfo"
    path.write_text(XEON)
    model, flags = _cpuinfo(path)
    assert model == "Intel(R) Xeon(R) Platinum 8488C"
    assert {"amx_tile", "avx512_bf16"} <= flags
    assert isa_level(flags) == "amx"
    assert isa_level(EPYC_FLAGS) == "avx2"
    assert isa_level({"avx2", "avx512f"}) == "avx512"
    assert isa_level(set()) == "baseline"
    assert _cpuinfo(tmp_path / "missing") == (None, set())


def test_machine_record_names_this_cpu():
    record = describe_machine()
    assert record["cpus"] >= 1
    assert record["isa"] in {"amx", "avx512", "avx2", "baseline"}
    assert record["torch_cpu_capability"]
    json.dumps(record)  # it goes into results.json as is


def _run(directory: Path, machine: dict) -> Path:
    results = make_results(seed=0, n_per_category=10)
    results["meta"]["machine"] = machine
    directory.mkdir(parents=True)
    (directory / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return directory


AMD = {"cpu_model": "AMD EPYC", "isa": "avx2", "isa_flags": ["avx", "avx2"], "torch_cpu_capability": "AVX2",
       "cpus": 2, "platform": "Linux", "cuda": None}
INTEL = AMD | {"cpu_model": "Intel(R) Xeon(R) Platinum 8488C", "isa": "amx", "torch_cpu_capability": "AVX512"}


def test_scorecard_run_section_shows_the_machine(tmp_path: Path):
    results = make_results(seed=0)
    results["meta"]["machine"] = INTEL
    html = render_scorecard(results, tmp_path / "run").read_text(encoding="utf-8")
    assert "<caption>Machine</caption>" in html
    assert "Intel(R) Xeon(R) Platinum 8488C" in html
    assert "amx" in html


def test_compare_says_when_runs_come_from_different_machines(tmp_path: Path, capsys):
    assert machine_differences(AMD, AMD) == []
    assert machine_differences(AMD, INTEL) == [
        "CPU: AMD EPYC vs Intel(R) Xeon(R) Platinum 8488C", "vector ISA: avx2 vs amx", "torch kernels: AVX2 vs AVX512"
    ]
    a, b = _run(tmp_path / "a", AMD), _run(tmp_path / "b", INTEL)
    assert compare_main([str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "different machines (CPU: AMD EPYC vs Intel(R) Xeon(R) Platinum 8488C" in out
    html = (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")
    assert "machine.cpu_model" in html
    c = _run(tmp_path / "c", AMD)
    assert compare_main([str(a), str(c), "--out", str(tmp_path / "cmp2")]) == 0
    assert "different machines" not in capsys.readouterr().out


def test_last_level_cache_is_the_highest_level_the_kernel_lists(tmp_path: Path):
    for name, level, size in (("index0", "1", "48K"), ("index2", "2", "2048K"), ("index3", "3", "491520K")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "level").write_text(level + "\n")
        (tmp_path / name / "size").write_text(size + "\n")
    assert last_level_cache_bytes(tmp_path) == 480 << 20
    (tmp_path / "index3" / "size").write_text("garbage\n")
    assert last_level_cache_bytes(tmp_path) == 2 << 20
    assert last_level_cache_bytes(tmp_path / "missing") is None
