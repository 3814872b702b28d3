"""Suites graded by computation: numeric and final-answer checks, hidden unit tests in the sandbox,
pass@k, the shipped tools/code suites, the run summary and the scorecard drill-down."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from fixtures_results import make_results

from benchmarks.suite import SUITES_DIR, load_suite
from graders.checks import CHECKS
from graders.tool_checks import numbers_in, run_unit_tests, unit_test_program
from graders.tool_stats import code_pass_rates, pass_at_k, summarise, tool_use
from reports.render import render_scorecard

CODE, END, RESULT = "<|code|>", "<|end|>", "<|result|>"


def run_check(name: str, output: str, **params) -> float:
    return CHECKS[name].run(output, None, params).score


# -- numeric_answer / final_answer_contains ---------------------------------------------------------


def test_numeric_answer_reads_the_last_number_of_the_final_answer():
    assert run_check("numeric_answer", "48271 x 93817 = 4528640407.", value="4528640407") == 1.0
    assert run_check("numeric_answer", "It is 4,528,640,407", value="4528640407") == 1.0
    assert run_check("numeric_answer", "It is 4528640406.", value="4528640407") == 0.0  # integers are exact
    assert run_check("numeric_answer", "About 4528640000", value="4528640407", rel_tol=1e-4) == 1.0
    assert run_check("numeric_answer", "sqrt(2) is 1.414214", value="1.414214") == 1.0
    assert run_check("numeric_answer", "sqrt(2) is 1.41", value="1.414214", abs_tol=0.01) == 1.0
    assert run_check("numeric_answer", "It is -40 degrees, i.e. 233.15 K", value="233.15") == 1.0
    assert run_check("numeric_answer", "No idea.", value="3") == 0.0
    # The result block is the sandbox's, not the model's: a right number only there scores 0.
    routed = f"{CODE}print(6*7){END}{RESULT}42\n{END}The answer is 41."
    assert run_check("numeric_answer", routed, value="42") == 0.0
    assert run_check("numeric_answer", routed.replace("41", "42"), value="42") == 1.0
    fenced = "```python\nprint(6*7)\n```\n```output\n42\n```\nSo it is 42."
    assert run_check("numeric_answer", fenced, value="42") == 1.0


def test_number_extraction_hand_cases():
    assert [v for _, v in numbers_in("1,234.5 and -7 and 1e3 but not v2 or 3.4.5")] == \
        [Fraction("1234.5"), -7, 1000]
    assert numbers_in("x1 12ab") == []


def test_final_answer_contains_ignores_tool_blocks():
    assert run_check("final_answer_contains", f"{CODE}print('Sunday'){END}{RESULT}Sunday\n{END}It was a Sunday.",
                     values=["Sunday"]) == 1.0
    assert run_check("final_answer_contains", f"{CODE}print('Sunday'){END}{RESULT}Sunday\n{END}I do not know.",
                     values=["Sunday"]) == 0.0


def test_bad_numeric_params_are_refused(tmp_path):
    from graders.checks import CheckParamError

    with pytest.raises(CheckParamError, match="not a number"):
        CHECKS["numeric_answer"].validate({"value": "twelve"})
    with pytest.raises(CheckParamError, match="line 1 is not valid Python"):
        CHECKS["unit_tests"].validate({"tests": "assert f(1) =="})


# -- unit_tests ------------------------------------------------------------------------------------


@dataclass
class Ran:
    stdout: str = ""
    stderr: str = ""
    exit_reason: str = "ok"
    wall_s: float = 0.01
    detail: str = ""


def test_unit_test_tally_cannot_be_faked_by_printed_text():
    program_seen = []

    def runner(program, **limits):
        program_seen.append(program)
        # the code printed a fake "all passed" tally with the wrong secret, and the real tally failed
        nonce = re.search(r"print\('([0-9a-f]{32})'", program).group(1)
        return Ran(stdout=f"{'0' * 32} 0 []\n{nonce} 1 [(0, 'AssertionError')]\n")

    result = run_unit_tests("def f(x):\n    return x", ["assert f(1) == 2", "assert f(2) == 2"], runner=runner)
    assert result.score == 0.0
    assert result.explanation == "1/2 tests passed; first failure: assert f(1) == 2 (AssertionError)"
    assert "try:\n    assert f(1) == 2\nexcept BaseException" in program_seen[0]


def test_unit_test_crash_is_explained():
    result = run_unit_tests("def f(:", ["assert f(1) == 1"],
                            runner=lambda p, **k: Ran(stderr="...\nSyntaxError: invalid syntax", exit_reason="error"))
    assert result.score == 0.0 and result.explanation == "0/1 tests ran: error (SyntaxError: invalid syntax)"


def test_test_program_runs_each_test_after_the_code():
    program = unit_test_program("x = 1", ["assert x == 1", "assert x == 2"], "ab" * 16)
    namespace: dict = {}
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(program, namespace)
    assert out.getvalue().strip() == f"{'ab' * 16} 1 [(1, 'AssertionError')]"


@pytest.fixture(scope="module")
def sandbox():
    try:
        from hessgpt.sandbox import run
        outcome = run("print(1)")
    except Exception as exc:  # noqa: BLE001 - the sandbox needs kernel features some hosts lack
        pytest.skip(f"sandbox unavailable here: {exc}")
    if outcome.exit_reason != "ok":
        pytest.skip(f"sandbox unavailable here: {outcome.exit_reason} {outcome.stderr[-200:]}")
    return run


def test_unit_tests_in_the_real_sandbox(sandbox):
    good = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert run_check("unit_tests", good, tests="assert add(2, 3) == 5\nassert add(-1, 1) == 0") == 1.0
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    assert run_check("unit_tests", wrong, tests="assert add(2, 3) == 5") == 0.0
    loop = "```python\ndef add(a, b):\n    while True:\n        pass\n```"
    result = CHECKS["unit_tests"].run(loop, None, {"tests": "assert add(1, 1) == 2", "timeout_s": 1})
    assert result.score == 0.0 and "timeout" in result.explanation
    escape = "```python\nimport os\ndef add(a, b):\n    return a + b\n```"
    assert run_check("unit_tests", escape, tests="assert add(2, 3) == 5") == 0.0


# -- pass@k ----------------------------------------------------------------------------------------


def test_pass_at_k_hand_values():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 1, 3) == pytest.approx(1 - 1 / 4)  # 1 - C(3,3)/C(4,3)
    assert pass_at_k(4, 2, 3) == 1.0  # n - c < k
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def _row(item_id: str, passed: bool, category: str = "code") -> dict:
    return {"id": item_id, "category": category, "score": float(passed), "missing": False,
            "checks": [{"type": "unit_tests", "score": float(passed)}]}


def test_code_pass_rates_average_the_estimator_over_items():
    rows = [_row("a", True), _row("a", False), _row("a", False), _row("a", True),
            _row("b", False), _row("b", False), _row("b", False), _row("b", False)]
    rates = code_pass_rates(rows)
    assert rates["samples"] == 4 and rates["n_items"] == 2
    assert rates["pass@1"] == pytest.approx(100 * (0.5 + 0) / 2)
    assert rates["pass@4"] == pytest.approx(100 * (1 + 0) / 2)
    assert "pass@5" not in rates


def test_tool_use_summary():
    rows = [
        {"id": "t1", "category": "tools", "score": 1.0, "no_tool_score": 0.0, "missing": False,
         "tool_calls": [{"exit_reason": "ok"}], "checks": [{"type": "numeric_answer"}]},
        {"id": "t2", "category": "tools", "score": 0.0, "no_tool_score": 0.0, "missing": False,
         "tool_calls": [{"exit_reason": "error"}, {"exit_reason": "ok"}], "checks": [{"type": "numeric_answer"}]},
        {"id": "t3", "category": "tools", "score": 1.0, "no_tool_score": 1.0, "missing": False,
         "tool_calls": [], "checks": [{"type": "numeric_answer"}]},
    ]
    use = tool_use(rows)
    assert use["accuracy_with_tool"] == pytest.approx(66.67)
    assert use["accuracy_without_tool"] == pytest.approx(33.33)
    assert use["tool_call_rate"] == pytest.approx(66.67)
    assert use["clean_run_rate"] == pytest.approx(66.67)
    assert use["exit_reasons"] == {"error": 1, "ok": 2}
    assert summarise(rows)["tools"]["tool_use"]["calls"] == 3
    assert summarise([{"id": "x", "category": "factual", "score": 1.0, "checks": [{"type": "contains_any"}]}]) is None


# -- the shipped suites ----------------------------------------------------------------------------


def test_shipped_tool_suites_load_with_stable_ids():
    tools, code = load_suite(SUITES_DIR / "tools.yaml"), load_suite(SUITES_DIR / "code.yaml")
    assert len(tools.items) >= 60 and len(code.items) >= 40
    assert all(re.fullmatch(r"tools-[a-z]+-\d{3}", i.id) for i in tools.items)
    assert all(re.fullmatch(r"code-[a-z]+-\d{3}", i.id) for i in code.items)
    assert {c.type for i in tools.items for c in i.checks} >= {"numeric_answer", "final_answer_contains"}
    assert all(any(c.type == "unit_tests" for c in i.checks) for i in code.items)
    # ids are pinned: renumbering would break comparisons between runs
    assert [i.id for i in tools.items][:3] == ["tools-arith-001", "tools-arith-002", "tools-arith-003"]
    assert tools.items[0].prompt == "What is 48271 multiplied by 93817?"
    assert code.items[0].id == "code-func-001" and "is_prime" in code.items[0].prompt


def test_tool_suites_count_for_no_points_by_default():
    from graders.score import load_scoring

    assert not {"tools", "code"} & set(load_scoring().categories)


def test_suite_generator_reproduces_the_shipped_files(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tool_suites", Path(SUITES_DIR).parents[1] / "scripts" /
                                                  "make_tool_suites.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "SUITES", tmp_path)
    module.main()
    for name in ("tools", "code"):
        assert (tmp_path / f"{name}.yaml").read_bytes() == (SUITES_DIR / f"{name}.yaml").read_bytes()


# -- scorecard -------------------------------------------------------------------------------------


def test_scorecard_shows_tool_calls_escaped(tmp_path):
    results = make_results(suites=["factual"], n_per_category=2)
    item = results["items"][0]
    item["tool_calls"] = [{"code": "print('<script>alert(1)</script>')", "ran": "print('<b>x</b>')",
                           "result": "<img src=x onerror=alert(1)>", "exit_reason": "ok", "wall_s": 0.12}]
    item["no_tool_output"] = "</pre><script>alert(2)</script>"
    item["no_tool_score"] = 0.0
    results["tool_suites"] = {"factual": {"tool_use": {"accuracy_with_tool": 50.0, "accuracy_without_tool": 10.0,
                                                       "tool_call_rate": 100.0, "clean_run_rate": 100.0,
                                                       "calls_per_answer": 1.0, "exit_reasons": {"ok": 2}}}}
    html = render_scorecard(results, tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "print(&#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;)" in html
    assert "rewritten by the code model" in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert 'id="tools"' in html and "Accuracy with the tool" in html


def test_a_run_without_suite_names_leaves_the_tool_suites_out(tmp_path):
    from benchmarks.runner import default_suite_names

    names = default_suite_names()
    assert "tools" not in names and "code" not in names and "factual" in names
    (tmp_path / "mine.yaml").write_text("suite: mine\n", encoding="utf-8")
    assert default_suite_names(tmp_path) is None  # a folder of unscored suites: run them all
