"""The speed script prints what a reader needs: the machine, its bandwidth bound and each engine's row."""

from __future__ import annotations

import argparse
import re

import pytest

from hessgpt import perf


def test_each_linear_path_precision_and_number_of_guesses_is_its_own_row():
    args = argparse.Namespace(linear_kernel="onednn,mkl-pad4", precision="fp32,bf16", int8=True, draft_tokens=[])
    names = [v["name"] for v in perf._variants(args)]
    assert names == ["hessgpt[onednn]", "hessgpt-bf16[onednn]", "hessgpt[mkl-pad4]", "hessgpt-bf16[mkl-pad4]",
                     "hessgpt-int8"]
    plain = perf._variants(argparse.Namespace(linear_kernel="", precision="fp32", int8=False, draft_tokens=[]))
    assert plain == [{"name": "hessgpt", "engine": "hessgpt", "precision": "fp32", "linear": None,
                      "draft_tokens": None}]
    guesses = perf._variants(argparse.Namespace(linear_kernel="fma", precision="fp32", int8=False, draft_tokens=[4, 0]))
    assert [(v["name"], v["draft_tokens"]) for v in guesses] == [("hessgpt[fma,guesses 4]", 4),
                                                                  ("hessgpt[fma,guesses 0]", 0)]


def test_a_bad_number_of_guesses_is_refused_while_the_flags_are_parsed(capsys):
    with pytest.raises(SystemExit) as stop:
        perf.main(["generate", "--draft-tokens", "4,x"])
    assert stop.value.code == 2
    assert "--draft-tokens: must be comma-separated integers >= 0, got '4,x'" in capsys.readouterr().err


def test_bandwidth_is_a_positive_rate():
    result = perf.worker_bandwidth({"runs": 2, "bytes": 16 << 20})
    assert result["gb_per_s"] > 0 and result["matrix_mib"] == 16


def test_the_bandwidth_matrix_is_larger_than_the_last_level_cache():
    assert perf.bandwidth_matrix_bytes(None) == 128 << 20
    assert perf.bandwidth_matrix_bytes(32 << 20) == 128 << 20  # a 32 MiB L3: 128 MiB is four times it
    assert perf.bandwidth_matrix_bytes(480 << 20) == 960 << 20
    assert perf.bandwidth_matrix_bytes(4 << 30) == 2 << 30


@pytest.mark.slow
def test_generate_prints_machine_bandwidth_and_share_of_the_bound(capsys):
    code = perf.main(["generate", "--models", "random", "--batch-sizes", "1", "--no-transformers",
                      "--new-tokens", "4", "--repeat", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "machine: " in out and "load average" in out
    assert re.search(r"matrix-vector read bandwidth: \d+\.\d GB/s", out)
    row = next(line for line in out.splitlines() if line.startswith("hessgpt-51m (random)"))
    # tokens/s, no hf ratio, MB of weights per token, % of the bound measured after the run, that
    # bandwidth, tok/CPU-s, the share of CPU time the host took during the run
    assert re.search(r"\s1\s+\d+\.\d\s+-\s+\d+\s+\d+% of \d+\.\d\s+\d+\.\d\s+\d+%", row)
    assert "steal: the share of the machine's CPU time" in out
