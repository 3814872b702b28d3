"""The sandbox runs ordinary programs correctly (the whitelisted libraries, stdin, output, errors
and their verdicts), refuses bad arguments, prints results from the CLI, and refuses to run at all
where the OS isolation is missing unless told to run unsafely."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from hessgpt.cli import main
from hessgpt.errors import HessError
from hessgpt.sandbox import EXIT_REASONS, SandboxResult, run, shared_sandbox

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def isolation_available():
    try:
        shared_sandbox().start()
    except HessError as exc:
        pytest.skip(str(exc))


def test_result_is_frozen_with_a_documented_verdict():
    result = run("print(6 * 7)")
    assert isinstance(result, SandboxResult)
    assert (result.stdout, result.stderr, result.exit_reason, result.detail) == ("42\n", "", "ok", "")
    assert result.exit_reason in EXIT_REASONS and result.ok and not result.unsafe
    assert result.wall_s > 0 and result.peak_mb > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.stdout = "changed"


def test_standard_library_computation():
    code = textwrap.dedent(
        """
        import math, cmath, fractions, decimal, statistics, itertools, functools, collections, heapq, bisect
        import json, re, datetime, calendar, string, textwrap, operator, typing, dataclasses, enum, copy
        import unicodedata, random
        print(math.comb(10, 3), cmath.sqrt(-1), fractions.Fraction(3, 6), decimal.Decimal("0.1") * 3)
        print(statistics.median([3, 1, 2]), list(itertools.accumulate([1, 2, 3])), heapq.nsmallest(2, [5, 1, 4]))
        print(json.dumps({"a": [1, 2]}), re.findall(r"\\d+", "a1b22"), datetime.date(2024, 2, 29).isoformat())
        print(unicodedata.name("é"), collections.Counter("abca").most_common(1), calendar.isleap(2000))
        print(0 <= random.random() < 1)
        """
    )
    result = run(code)
    assert result.exit_reason == "ok", result.stderr
    assert result.stdout.splitlines() == [
        "120 1j 1/2 0.3",
        "2 [1, 3, 6] [1, 4]",
        '{"a": [1, 2]} [\'1\', \'22\'] 2024-02-29',
        "LATIN SMALL LETTER E WITH ACUTE [('a', 2)] True",
        "True",
    ]


def test_numpy():
    if importlib.util.find_spec("numpy") is None:
        pytest.skip("numpy is not installed")
    result = run("import numpy as np\na = np.arange(12).reshape(3, 4)\nprint(a.sum(), np.linalg.det(np.eye(3)))")
    assert (result.exit_reason, result.stdout) == ("ok", "66 1.0\n"), result.stderr


def test_sympy():
    if importlib.util.find_spec("sympy") is None:
        pytest.skip("sympy is not installed")
    result = run("import sympy as sp\nx = sp.symbols('x')\nprint(sp.factor(x**2 - 1), sp.integrate(2 * x, x))")
    assert (result.exit_reason, result.stdout) == ("ok", "(x - 1)*(x + 1) x**2\n"), result.stderr


def test_random_differs_between_runs():
    code = "import random, numpy\nprint(random.getrandbits(64), numpy.random.randint(1 << 30))"
    assert run(code).stdout != run(code).stdout


def test_stdin_and_sys_view():
    code = "import sys\nnumbers = [int(line) for line in sys.stdin]\nprint(sum(numbers), input.__name__)"
    result = run(code, stdin="1\n2\n39\n")
    assert (result.exit_reason, result.stdout) == ("ok", "42 input\n")
    assert run("import sys\nsys.modules").detail == "AttributeError: sys.modules is not available in the sandbox"
    assert run("print(input())", stdin="ligne é\n").stdout == "ligne é\n"


def test_errors_give_the_last_traceback_line():
    result = run("def f(x):\n    return 1 / x\nprint('before')\nf(0)")
    assert result.exit_reason == "error"
    assert result.stdout == "before\n"
    assert result.detail == "ZeroDivisionError: division by zero"
    assert 'File "<sandbox>", line 2, in f' in result.stderr and "return 1 / x" in result.stderr
    assert "hessgpt" not in result.stderr  # the sandbox's own frames are not shown
    assert run("raise SystemExit(3)").detail == "SystemExit: exit status 3"
    assert run("import sys\nsys.exit(0)").exit_reason == "ok"
    assert run("x = (").exit_reason == "error"


def test_verdicts_for_limits():
    assert run("import os").exit_reason == "forbidden"
    assert run("open('/etc/hostname')").exit_reason == "forbidden"
    memory = run("x = bytearray(300 * 1024 * 1024)", memory_mb=100)
    assert (memory.exit_reason, memory.detail) == ("memory", "MemoryError")
    assert run("x = bytearray(300 * 1024 * 1024)\nprint(len(x))", memory_mb=400).stdout == "314572800\n"
    timeout = run("while True: pass", timeout_s=0.5)
    assert timeout.exit_reason == "timeout" and timeout.detail == "killed after 0.5 s of wall-clock time"
    flood = run("print('x' * 200_000)")
    assert flood.exit_reason == "output_limit"
    assert flood.stdout.endswith("\n[output truncated at 65536 bytes]\n") and len(flood.stdout) < 66_000


def test_bad_arguments_are_refused():
    with pytest.raises(HessError, match="timeout_s"):
        run("print(1)", timeout_s=0)
    with pytest.raises(HessError, match="memory_mb"):
        run("print(1)", memory_mb=-5)
    with pytest.raises(HessError, match="code must be text"):
        run(b"print(1)")


def test_cli_prints_output_and_verdict(tmp_path, capsys):
    program = tmp_path / "prog.py"
    program.write_text("print(input().upper())\n1 / 0\n")
    (tmp_path / "in.txt").write_text("hello\n")
    assert main(["sandbox", "run", str(program), "--stdin", str(tmp_path / "in.txt")]) == 1
    out, err = capsys.readouterr()
    assert out == "HELLO\n"
    assert err.splitlines()[-1].startswith("sandbox: error: ZeroDivisionError: division by zero (")
    assert main(["sandbox", "run", str(program), "--stdin", str(tmp_path / "in.txt"), "--json"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["exit_reason"] == "error" and record["stdout"] == "HELLO\n" and record["unsafe"] is False
    assert main(["sandbox", "run", str(tmp_path / "missing.py")]) == 2
    assert "file: cannot read" in capsys.readouterr().err


# Simulates a host without user namespaces (e.g. a container whose seccomp profile denies unshare):
# a filter on the calling process refuses unshare, and the filter is inherited by the sandbox.
_NO_NAMESPACES = textwrap.dedent(
    """
    import ctypes, errno
    from hessgpt.errors import HessError
    from hessgpt.sandbox import run, seccomp
    program = b"".join([
        seccomp._insn(seccomp.LD_W_ABS, 0, 0, seccomp.NR_OFFSET),
        seccomp._insn(seccomp.JEQ_K, 0, 1, 272),  # unshare
        seccomp._insn(seccomp.RET_K, 0, 0, seccomp.RET_ERRNO | errno.EPERM),
        seccomp._insn(seccomp.RET_K, 0, 0, seccomp.RET_ALLOW),
    ])
    seccomp.load(program)
    try:
        run("print(1)")
        print("RAN UNPROTECTED")
    except HessError as exc:
        print("refused:", exc)
    result = run("print(40 + 2)", unsafe=True)
    print("unsafe:", result.exit_reason, result.unsafe, result.stdout.strip())
    print(result.summary())
    """
)


def test_refuses_without_isolation_unless_unsafe():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", _NO_NAMESPACES], capture_output=True, text=True, env=env, timeout=120)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0].startswith("refused: sandbox: refusing to run untrusted code, OS isolation is unavailable")
    assert "unshare" in lines[0] and "--unsafe-sandbox" in lines[0]
    assert lines[1] == "unsafe: ok True 42"
    assert "[UNSAFE: no OS isolation]" in lines[2]


def test_a_dead_sandbox_process_gives_a_verdict_and_is_replaced():
    from hessgpt.sandbox import Sandbox

    with Sandbox(preload=("math",)) as box:
        box.start()
        first = box._proc
        timer = threading.Timer(1.0, first.kill)  # the template dies (as if OOM-killed) mid-run
        timer.start()
        result = box.run("import time\ntime.sleep(5)", timeout_s=6)
        timer.join()
        assert (result.exit_reason, result.detail) == (
            "killed",
            "the sandbox process died during the run (a new one serves the next run)",
        )
        again = box.run("print('back')")
        assert (again.exit_reason, again.stdout) == ("ok", "back\n") and box._proc is not first
