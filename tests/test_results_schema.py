"""results.json: one module writes, reads and checks it."""

from __future__ import annotations

import json
import math

import pytest
from fixtures_results import make_results

from benchmarks.results_schema import SCHEMA_VERSION, load_results, save_results
from hessgpt.errors import HessError


def test_save_writes_strict_json_that_loads_back(tmp_path):
    results = make_results(n_per_category=2)
    results["items"][0]["likelihood"] = {"reference_logprob": -math.inf, "reference_tokens": 3}
    results["meta"]["tokens_per_second"] = math.nan
    path = save_results(results, tmp_path)
    text = path.read_text(encoding="utf-8")
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in results.json"))
    loaded = load_results(tmp_path)
    assert loaded["schema_version"] == SCHEMA_VERSION
    assert loaded["items"][0]["likelihood"]["reference_logprob"] is None
    assert loaded["meta"]["tokens_per_second"] is None
    assert not list(tmp_path.glob("*.tmp"))


def test_save_refuses_an_invalid_results_dict(tmp_path):
    results = make_results(n_per_category=1)
    del results["grade"]
    with pytest.raises(HessError, match="field 'grade' is missing"):
        save_results(results, tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_files_with_bare_nan_from_older_runs_read_as_null(tmp_path):
    results = make_results(n_per_category=1)
    results["meta"]["tokens_per_second"] = math.nan
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")  # json's default: bare NaN
    assert "NaN" in (tmp_path / "results.json").read_text(encoding="utf-8")
    assert load_results(tmp_path)["meta"]["tokens_per_second"] is None
