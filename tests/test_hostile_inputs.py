"""A corpus of broken and hostile inputs, each refused in one line with exit code 2.

Every case is built in a temporary folder by a small generator (nothing large is committed) and run
through a real command (``bench.py``, ``hessgpt``, ``python -m reports.render``). For each, the test
asserts: no traceback, the exit code, what the message names, that the case ends within a generous
time limit, and that an existing complete run in the same place is left byte for byte intact.
Most cases run in-process (fast); a few run as subprocesses, where the exit code and the absence of
a traceback are those a shell sees.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
CASE_SECONDS = 120  # generous: a refused case takes well under a second; a hang would take forever


@dataclass
class Case:
    name: str
    command: str  # "bench", "hessgpt", "render"
    argv: Callable[[Path], list[str]]  # built from the corpus folder
    message: tuple[str, ...]  # substrings the one-line error must contain
    code: int = 2
    check: Callable[[Path], None] | None = None  # an extra assertion after the run
    subprocess: bool = False


# ----------------------------------------------------------------------------- the corpus folder


def _tiny_native(corpus: Path) -> dict:
    from hessgpt.loading import load_model

    loaded = load_model("preset:tiny-gpt2", seed=1)
    path = loaded.save(corpus / "tiny.pt")
    return torch.load(path, weights_only=True)


def _llama_native(corpus: Path) -> dict:
    from hessgpt.loading import load_model

    loaded = load_model("preset:tiny-llama", seed=1)
    path = loaded.save(corpus / "tiny-llama.pt")
    return torch.load(path, weights_only=True)


def _variant(corpus: Path, base: dict, name: str, config: dict | None = None, model: dict | None = None,
             **top: object) -> None:
    obj = {**base, "config": {**base["config"], **(config or {})}, **top}
    if model is not None:
        obj["model"] = model
    torch.save(obj, corpus / name)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def build_corpus(corpus: Path) -> None:
    """Every file the cases need, small, in ``corpus``."""
    base = _tiny_native(corpus)
    llama = _llama_native(corpus)
    weights = base["model"]
    templates = {
        "tpl-loop": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "tpl-mul": "{{ 'a' * 100000000000 }}",
        "tpl-center": "{{ 'a'|center(100000000000) }}",
        "tpl-ljust": "{{ 'a'.ljust(10**11) }}",
        "tpl-pow": "{{ 9 ** 99999999 }}",
        "tpl-output": "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
        "tpl-list": "{{ ([1] * 10**9)|length }}",
        "tpl-recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "tpl-syntax": "{% for %}",
        "tpl-escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "tpl-raise": "{{ raise_exception('template refuses') }}",
        "tpl-join": "{{ (range(100000)|join(',')) * 1000 }}",
    }
    for name, source in templates.items():
        _variant(corpus, base, f"{name}.pt", chat_template=source)
    _variant(corpus, base, "tpl-notstring.pt", chat_template=["not", "a", "string"])

    _variant(corpus, base, "layers-million.pt", {"n_layer": 10**6})
    _variant(corpus, base, "layers-900.pt", {"n_layer": 900})
    _variant(corpus, llama, "llama-block.pt", {"block_size": 10**9})
    _variant(corpus, llama, "llama-eps.pt", {"norm_eps": -1})
    _variant(corpus, llama, "llama-theta.pt", {"rope_theta": float("nan")})
    _variant(corpus, llama, "llama-memory.pt", {"n_embd": 60000, "n_head": 4, "n_kv_head": 2})
    _variant(corpus, base, "vocab-zero.pt", {"vocab_size": 0})
    _variant(corpus, base, "heads.pt", {"n_head": 5})
    _variant(corpus, base, "layers-string.pt", {"n_layer": "two"})
    _variant(corpus, base, "dropout-nan.pt", {"dropout": float("nan")})
    for name, value in (("nan", float("nan")), ("inf", float("inf"))):
        bad = dict(weights)
        bad["transformer.ln_f.weight"] = weights["transformer.ln_f.weight"].clone()
        bad["transformer.ln_f.weight"][0] = value
        _variant(corpus, base, f"weights-{name}.pt", model=bad)
    _variant(corpus, base, "weights-int64.pt",
             model={**weights, "transformer.ln_f.weight": torch.ones_like(weights["transformer.ln_f.weight"],
                                                                          dtype=torch.int64)})
    _variant(corpus, base, "weights-missing.pt",
             model={k: v for k, v in weights.items() if k != "transformer.ln_f.weight"})
    _variant(corpus, base, "version-x.pt", version="x")
    _variant(corpus, base, "version-99.pt", version=99)
    _variant(corpus, base, "tokenizer-bad.pt", tokenizer="{not json")
    torch.save({"config": base["config"], "model_state_dict": {}}, corpus / "sd-empty.pt")
    torch.save({"config": {**base["config"], "n_layer": 10**6}, "model_state_dict": weights}, corpus / "sd-layers.pt")
    with open(corpus / "evil.pkl", "wb") as fh:
        pickle.dump({"model": _Evil()}, fh, protocol=2)
    (corpus / "empty.pt").write_bytes(b"")
    data = (corpus / "tiny.pt").read_bytes()
    (corpus / "truncated.pt").write_bytes(data[: len(data) // 3])
    (corpus / "garbage.gguf").write_bytes(b"GGUF" + os.urandom(64))
    with zipfile.ZipFile(corpus / "zip-other.pt", "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")
    os.symlink(corpus / "loop-b.pt", corpus / "loop-a.pt")
    os.symlink(corpus / "loop-a.pt", corpus / "loop-b.pt")
    os.symlink(corpus / "absent.pt", corpus / "dangling.pt")
    os.mkfifo(corpus / "fifo.pt")
    (corpus / "folder-no-model").mkdir()
    (corpus / "plain-file").write_text("a file, not a folder")

    # Suites: a copy of the shipped factual suite next to hostile ones.
    suites = corpus / "suites"
    suites.mkdir()
    (suites / "factual.yaml").write_text((ROOT / "benchmarks/suites/factual.yaml").read_text())
    head = "suite: {name}\nversion: 1\nitems:\n"
    hostile_suites = {
        "bomb": head + '- id: a\n  prompt: &s "' + "x" * (1 << 20) + '"\n  references: [' + ", ".join(["*s"] * 300)
        + "]\n",
        "recursive": "suite: recursive\nversion: 1\nitems: &a [*a]\n",
        "deep": head + "- id: a\n  prompt: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "pytag": head + "- id: a\n  prompt: !!python/object/apply:os.system ['touch pwned-by-yaml']\n",
        "dupkey": head + "- id: a\n  prompt: one\n  prompt: two\n",
        "big": head + "- id: a\n  prompt: '" + "x" * (6 << 20) + "'\n",
        "unscored": head + "- id: unscored-a\n  prompt: What is 2+2?\n  checks:\n"
        "    - {type: contains_any, values: ['4'], weight: 1}\n",
    }
    for name, text in hostile_suites.items():
        folder = corpus / f"suites-{name}"
        folder.mkdir()
        (folder / f"{name}.yaml").write_text(text.replace("{name}", name))
    (corpus / "suites-latin1").mkdir()
    (corpus / "suites-latin1" / "latin.yaml").write_bytes("suite: latin\nversion: 1\nitems: [é]\n".encode("latin-1"))

    # Responses files.
    good = [{"id": "factual-geo-001", "output": "Paris."}, {"id": "factual-geo-002", "output": "Berlin."}]
    (corpus / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in good))
    (corpus / "answers-other.jsonl").write_text("".join(json.dumps({**r, "output": "No idea."}) + "\n" for r in good))
    responses = {
        "surrogate": '{"id": "factual-geo-001", "output": "\\ud800"}\n',
        "deep": "[" * 100_000 + "]" * 100_000 + "\n",
        "nan": '{"id": "factual-geo-001", "output": NaN}\n',
        "notobject": "[1, 2]\n",
        "duplicate": '{"id": "factual-geo-001", "output": "a"}\n{"id": "factual-geo-001", "output": "b"}\n',
        "blank": "\n\n",
        "noid": '{"output": "a"}\n',
    }
    for name, text in responses.items():
        (corpus / f"resp-{name}.jsonl").write_text(text)
    (corpus / "resp-latin1.jsonl").write_bytes('{"id": "a", "output": "é"}\n'.encode("latin-1"))
    os.mkfifo(corpus / "resp-fifo.jsonl")

    # Results files for the report commands.
    (corpus / "results-deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (corpus / "results-surrogate.json").write_text('{"schema_version": 1, "grade": "\\udc00"}')
    (corpus / "results-notjson.json").write_text("{grade: 12")
    os.mkfifo(corpus / "results-fifo.json")

    # Chat templates given to an endpoint run.
    (corpus / "template-syntax.jinja").write_text("{% if %}")
    (corpus / "tokenizer_config.json").write_text('{"chat_template": ' * 100_000 + "1" + "}" * 100_000)


def _tree_digest(corpus: Path) -> dict[str, str]:
    """Every file of the complete runs already in the corpus."""
    return {str(p.relative_to(corpus)): hashlib.sha256(p.read_bytes()).hexdigest()
            for name in ("run", "legacy-run") for p in sorted((corpus / name).rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- running a case


class _CaseTimeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _CaseTimeout()


def run_in_process(command: str, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run a command's ``main`` here, with a time limit; an escaping exception is a traceback."""
    from benchmarks.cli import main as bench_main
    from hessgpt.cli import main as hessgpt_main
    from reports.render import main as render_main

    main = {"bench": bench_main, "hessgpt": hessgpt_main, "render": render_main}[command]
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    old_cwd = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    except _CaseTimeout:
        pytest.fail(f"{command} {argv}: still running after {CASE_SECONDS} s")
    except Exception as exc:  # noqa: BLE001 (anything escaping main is the bug this test looks for)
        pytest.fail(f"{command} {argv}: traceback ({type(exc).__name__}: {str(exc)[:300]})")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(old_cwd)
    return int(code or 0), out.getvalue(), err.getvalue()


def run_subprocess(command: str, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    prefix = {"bench": [str(ROOT / "bench.py")], "hessgpt": ["-m", "hessgpt"], "render": ["-m", "reports.render"]}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run([sys.executable, *prefix[command], *argv], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=CASE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} {argv}: still running after {CASE_SECONDS} s")
    return done.returncode, done.stdout, done.stderr


# ----------------------------------------------------------------------------- the cases


def _bench_ck(name: str, *extra: str) -> Callable[[Path], list[str]]:
    return lambda c: ["--checkpoint", str(c / name), "--suite", "factual", "--limit", "1", "--suites-dir",
                      str(c / "suites"), "--out", str(c / "fresh" / name), "--no-progress", "--quiet", *extra]


def _generate(name: str, *extra: str) -> Callable[[Path], list[str]]:
    return lambda c: ["generate", "--checkpoint", str(c / name), "--prompt", "Hello", "--chat",
                      "--max-new-tokens", "2", *extra]


def _responses(name: str, *extra: str, suites: str = "suites") -> Callable[[Path], list[str]]:
    return lambda c: ["--responses", str(c / name), "--suites-dir", str(c / suites), "--limit", "2",
                      "--out", str(c / "fresh" / f"resp-{name}-{suites}"), "--no-progress", "--quiet", *extra]


def _into_run(*extra: str, limit: str = "2") -> Callable[[Path], list[str]]:
    """A bench command aimed at the folder of the existing complete run."""
    return lambda c: ["--responses", str(c / "answers.jsonl"), "--suites-dir", str(c / "suites"), "--limit", limit,
                      "--out", str(c / "run"), "--no-progress", "--quiet", *extra]


def _not_created(name: str) -> Callable[[Path], None]:
    def check(corpus: Path) -> None:
        assert not (corpus / name).exists(), f"{name} was created: the input ran code"
    return check


def _no_results(out: str) -> Callable[[Path], None]:
    def check(corpus: Path) -> None:
        folder = corpus / "fresh" / out
        leftovers = [p.name for p in folder.iterdir()] if folder.exists() else []
        assert not [n for n in leftovers if n.startswith(("results.json", "index.html", "items.csv"))
                    or n.endswith(".tmp")], leftovers
    return check


TEMPLATE = ("chat template",)
CASES = [
    # -- hangs and unbounded resources: chat templates (in the checkpoint) run under budgets
    Case("template-nested-loops", "hessgpt", _generate("tpl-loop.pt"), ("tpl-loop.pt", "time limit")),
    Case("template-repeat-string", "hessgpt", _generate("tpl-mul.pt"), ("tpl-mul.pt", "over budget")),
    Case("template-center-filter", "hessgpt", _generate("tpl-center.pt"), ("tpl-center.pt", "center")),
    Case("template-ljust-call", "hessgpt", _generate("tpl-ljust.pt"), ("tpl-ljust.pt", "over budget")),
    Case("template-power", "hessgpt", _generate("tpl-pow.pt"), ("tpl-pow.pt", "exponent")),
    Case("template-output-size", "hessgpt", _generate("tpl-output.pt"), ("tpl-output.pt", "output exceeds")),
    Case("template-repeat-list", "hessgpt", _generate("tpl-list.pt"), ("tpl-list.pt", "over budget")),
    Case("template-recursion", "hessgpt", _generate("tpl-recursion.pt"), ("tpl-recursion.pt", "rendering failed")),
    Case("template-syntax", "hessgpt", _generate("tpl-syntax.pt"), ("tpl-syntax.pt", "invalid jinja2")),
    Case("template-sandbox-escape", "hessgpt", _generate("tpl-escape.pt"), ("tpl-escape.pt", *TEMPLATE)),
    Case("template-raise", "hessgpt", _generate("tpl-raise.pt"), ("tpl-raise.pt", "template refuses")),
    Case("template-join-repeat", "hessgpt", _generate("tpl-join.pt"), ("tpl-join.pt", "over budget")),
    Case("template-not-string", "hessgpt", _generate("tpl-notstring.pt"), ("tpl-notstring.pt", "must be a string")),
    Case("template-loop-in-bench", "bench", _bench_ck("tpl-loop.pt"), ("tpl-loop.pt", "time limit"),
         subprocess=True),
    # -- absurd sizes, checked before anything is built or allocated
    Case("config-million-layers", "bench", _bench_ck("layers-million.pt"), ("layers-million.pt", "n_layer",
                                                                            "limit")),
    Case("config-layers-vs-weights", "bench", _bench_ck("layers-900.pt"), ("layers-900.pt", "hold 2 layer")),
    Case("config-llama-context", "bench", _bench_ck("llama-block.pt"), ("llama-block.pt", "block_size", "limit")),
    Case("config-memory", "bench", _bench_ck("llama-memory.pt"), ("llama-memory.pt", "memory")),
    Case("config-state-dict-layers", "bench", _bench_ck("sd-layers.pt"), ("sd-layers.pt", "n_layer")),
    Case("generate-beams", "hessgpt", _generate("tiny.pt", "--num-beams", "1000000"), ("--num-beams", "limit of 64")),
    Case("generate-batch", "hessgpt", _generate("tiny.pt", "--batch-size", "100000000"), ("batch", "limit")),
    Case("generate-max-new", "hessgpt", _generate("tiny.pt", "--max-new-tokens", "1000000000"),
         ("max-new-tokens", "limit")),
    Case("bench-batch", "bench", _bench_ck("tiny.pt", "--batch-size", "100000000"), ("--batch-size", "limit")),
    Case("bench-samples", "bench", _bench_ck("tiny.pt", "--samples", "10000000", "--temperature", "1"),
         ("--samples", "limit")),
    Case("yaml-alias-bomb", "bench", _responses("answers.jsonl", suites="suites-bomb"), ("bomb.yaml", "aliases"),
         check=_no_results("resp-answers.jsonl-suites-bomb")),
    Case("yaml-recursive-alias", "bench", _responses("answers.jsonl", suites="suites-recursive"),
         ("recursive.yaml", "contains it")),
    Case("yaml-deep-nesting", "bench", _responses("answers.jsonl", suites="suites-deep"), ("deep.yaml",)),
    Case("yaml-big-file", "bench", _responses("answers.jsonl", suites="suites-big"), ("big.yaml", "limit")),
    # -- lost or damaged runs
    Case("out-holds-another-run", "bench", lambda c: ["--responses", str(c / "answers-other.jsonl"),
                                                      "--suites-dir", str(c / "suites"), "--limit", "2",
                                                      "--out", str(c / "run"), "--no-progress", "--quiet"],
         ("--out", "holds another run", "--overwrite")),
    Case("out-other-limit", "bench", _into_run(limit="1"), ("holds another run", "limit 2 -> 1")),
    Case("out-other-seed", "bench", _into_run("--seed", "7"), ("holds another run", "seed")),
    Case("out-other-checkpoint", "bench", lambda c: _bench_ck("tiny.pt")(c)[:-4] + ["--out", str(c / "run"),
                                                                                   "--quiet"],
         ("holds another run", "another model")),
    Case("unscored-suite", "bench", _responses("answers.jsonl", suites="suites-unscored"),
         ("unscored.yaml", "not scored", "scoring.yaml"), check=_no_results("resp-answers.jsonl-suites-unscored")),
    Case("unscored-suite-before-model", "bench",
         lambda c: ["--checkpoint", str(c / "tiny.pt"), "--suites-dir", str(c / "suites-unscored"),
                    "--out", str(c / "fresh" / "unscored-ck"), "--quiet", "--no-progress"],
         ("not scored",), check=_no_results("unscored-ck")),
    Case("out-is-a-file", "bench", lambda c: _bench_ck("tiny.pt")(c)[:-4] + ["--out", str(c / "plain-file")],
         ("--out", "plain-file", "is a file")),
    Case("out-under-a-file", "bench", lambda c: _into_run()(c)[:-4] + ["--out", str(c / "plain-file" / "sub")],
         ("--out", "cannot write")),
    Case("suite-empty-flag", "bench", _responses("answers.jsonl", "--suite", ""), ("--suite", "no suite named")),
    Case("suite-commas", "bench", _responses("answers.jsonl", "--suite", ",,,"), ("--suite", "no suite named")),
    Case("suite-unknown", "bench", _responses("answers.jsonl", "--suite", "nosuch"), ("--suite", "nosuch")),
    # -- non-finite or non-float weights, impossible configs: refused at load
    Case("weights-nan", "bench", _bench_ck("weights-nan.pt"), ("weights-nan.pt", "NaN")),
    Case("weights-inf", "bench", _bench_ck("weights-inf.pt"), ("weights-inf.pt", "infinite")),
    Case("weights-int64", "bench", _bench_ck("weights-int64.pt"), ("weights-int64.pt", "int64")),
    Case("weights-missing", "bench", _bench_ck("weights-missing.pt"), ("weights-missing.pt", "missing weight")),
    Case("config-norm-eps", "bench", _bench_ck("llama-eps.pt"), ("llama-eps.pt", "norm_eps")),
    Case("config-rope-theta", "bench", _bench_ck("llama-theta.pt"), ("llama-theta.pt", "rope_theta")),
    Case("config-vocab-zero", "bench", _bench_ck("vocab-zero.pt"), ("vocab-zero.pt", "vocab_size")),
    Case("config-heads", "bench", _bench_ck("heads.pt"), ("heads.pt", "divisible")),
    Case("config-layers-string", "bench", _bench_ck("layers-string.pt"), ("layers-string.pt", "n_layer")),
    Case("config-dropout-nan", "bench", _bench_ck("dropout-nan.pt"), ("dropout-nan.pt", "dropout")),
    Case("import-weights-nan", "hessgpt", lambda c: ["import", str(c / "weights-nan.pt"), "--out",
                                                     str(c / "fresh" / "imported.pt")], ("weights-nan.pt", "NaN"),
         check=_not_created("fresh/imported.pt")),
    Case("import-weights-int64", "hessgpt", lambda c: ["import", str(c / "weights-int64.pt"), "--out",
                                                       str(c / "fresh" / "imported.pt")], ("int64",),
         subprocess=True),
    # -- flags refused while parsing, before anything is read
    Case("seed-negative", "bench", _into_run("--seed", "-1"), ("--seed",), subprocess=True),
    Case("seed-huge", "bench", _responses("answers.jsonl", "--seed", str(2**40)), ("--seed",)),
    Case("seed-negative-responses", "bench", _responses("answers.jsonl", "--seed", "-1"), ("--seed",)),
    Case("temperature-nan", "bench", _bench_ck("tiny.pt", "--temperature", "nan"), ("--temperature", "finite")),
    Case("limit-zero", "bench", _responses("answers.jsonl", "--limit", "0"), ("--limit",)),
    Case("compare-seed", "bench", lambda c: ["compare", str(c / "run"), str(c / "run"), "--seed", "-1"],
         ("--seed",)),
    Case("gate-min-grade-nan", "bench", lambda c: ["gate", "--run", str(c / "run"), "--min-grade", "nan"],
         ("--min-grade", "finite")),
    Case("gate-alpha-inf", "bench", lambda c: ["gate", "--run", str(c / "run"), "--baseline", str(c / "run"),
                                               "--alpha", "inf"], ("--alpha", "finite")),
    Case("generate-seed", "hessgpt", _generate("tiny.pt", "--seed", "-5"), ("--seed",)),
    # -- files that are not what they claim
    Case("checkpoint-version-x", "bench", _bench_ck("version-x.pt"), ("version-x.pt", "'version'", "integer")),
    Case("checkpoint-version-99", "bench", _bench_ck("version-99.pt"), ("version-99.pt", "newer")),
    Case("checkpoint-tokenizer", "bench", _bench_ck("tokenizer-bad.pt"), ("tokenizer-bad.pt", "tokenizer")),
    Case("checkpoint-empty-state", "bench", _bench_ck("sd-empty.pt"), ("sd-empty.pt", "empty", "no weights")),
    Case("checkpoint-evil-pickle", "bench", _bench_ck("evil.pkl"), ("evil.pkl", "run code"),
         check=_not_created("pwned-by-pickle")),
    Case("checkpoint-empty-file", "bench", _bench_ck("empty.pt"), ("empty.pt", "empty")),
    Case("checkpoint-truncated", "bench", _bench_ck("truncated.pt"), ("truncated.pt",)),
    Case("checkpoint-garbage-gguf", "bench", _bench_ck("garbage.gguf"), ("garbage.gguf", "GGUF")),
    Case("checkpoint-other-zip", "bench", _bench_ck("zip-other.pt"), ("zip-other.pt",)),
    Case("checkpoint-symlink-loop", "bench", _bench_ck("loop-a.pt"), ("loop-a.pt", "symbolic link loop")),
    Case("checkpoint-dangling-link", "bench", _bench_ck("dangling.pt"), ("dangling.pt", "missing file")),
    Case("checkpoint-fifo", "bench", _bench_ck("fifo.pt"), ("fifo.pt", "FIFO")),
    Case("checkpoint-folder", "bench", _bench_ck("folder-no-model"), ("folder-no-model",)),
    Case("import-out-folder", "hessgpt", lambda c: ["import", str(c / "tiny.pt"), "--out", str(c / "suites")],
         ("--out", "is a folder")),
    Case("import-out-under-file", "hessgpt", lambda c: ["import", str(c / "tiny.pt"), "--out",
                                                        str(c / "plain-file" / "x.pt")], ("--out", "plain-file", "is a file")),
    Case("yaml-python-tag", "bench", _responses("answers.jsonl", suites="suites-pytag"), ("pytag.yaml",),
         check=_not_created("pwned-by-yaml")),
    Case("yaml-duplicate-key", "bench", _responses("answers.jsonl", suites="suites-dupkey"),
         ("dupkey.yaml", "duplicate key")),
    Case("yaml-not-utf8", "bench", _responses("answers.jsonl", suites="suites-latin1"), ("latin.yaml", "UTF-8")),
    Case("responses-surrogate", "bench", _responses("resp-surrogate.jsonl"), ("resp-surrogate.jsonl:1",
                                                                              "surrogate"),
         check=_no_results("resp-resp-surrogate.jsonl-suites")),
    Case("responses-deep", "bench", _responses("resp-deep.jsonl"), ("resp-deep.jsonl:1", "nested")),
    Case("responses-nan", "bench", _responses("resp-nan.jsonl"), ("resp-nan.jsonl:1", "NaN")),
    Case("responses-not-object", "bench", _responses("resp-notobject.jsonl"), ("resp-notobject.jsonl:1",)),
    Case("responses-duplicate", "bench", _responses("resp-duplicate.jsonl"), ("resp-duplicate.jsonl:2",
                                                                              "duplicate")),
    Case("responses-blank", "bench", _responses("resp-blank.jsonl"), ("resp-blank.jsonl", "no answers")),
    Case("responses-no-id", "bench", _responses("resp-noid.jsonl"), ("resp-noid.jsonl:1", "'id'")),
    Case("responses-latin1", "bench", _responses("resp-latin1.jsonl"), ("resp-latin1.jsonl", "UTF-8")),
    Case("responses-fifo", "bench", _responses("resp-fifo.jsonl"), ("resp-fifo.jsonl", "FIFO")),
    Case("responses-folder", "bench", _responses("suites"), ("suites", "folder")),
    Case("render-deep-json", "render", lambda c: [str(c / "results-deep.json"), "--out", str(c / "fresh" / "x.html")],
         ("results-deep.json", "nested"), subprocess=True),
    Case("render-surrogate", "render", lambda c: [str(c / "results-surrogate.json"), "--out",
                                                  str(c / "fresh" / "x.html")], ("results-surrogate.json",
                                                                                 "surrogate")),
    Case("render-not-json", "render", lambda c: [str(c / "results-notjson.json")], ("results-notjson.json",
                                                                                     "not valid JSON")),
    Case("render-fifo", "render", lambda c: [str(c / "results-fifo.json")], ("results-fifo.json", "FIFO")),
    Case("render-out-file", "render", lambda c: [str(c / "run"), "--out", str(c / "plain-file")],
         ("--out", "is a file")),
    Case("render-out-under-file", "render", lambda c: [str(c / "run"), "--out", str(c / "plain-file" / "x.html")],
         ("plain-file", "cannot write")),
    Case("compare-out-file", "bench", lambda c: ["compare", str(c / "run"), str(c / "run"), "--out",
                                                 str(c / "plain-file")], ("--out", "is a file")),
    Case("out-holds-older-run", "bench", lambda c: [*_into_run()(c)[:-4], "--out", str(c / "legacy-run")],
         ("legacy-run", "no run.json record")),
    Case("endpoint-template-syntax", "bench",
         lambda c: ["--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--chat-template",
                    str(c / "template-syntax.jinja"), "--out", str(c / "fresh" / "endpoint"), "--quiet"],
         ("template-syntax.jinja", "invalid jinja2")),
    Case("endpoint-template-deep-json", "bench",
         lambda c: ["--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--chat-template",
                    str(c / "tokenizer_config.json"), "--out", str(c / "fresh" / "endpoint"), "--quiet"],
         ("tokenizer_config.json", "nested")),
    Case("compare-missing-run", "bench", lambda c: ["compare", str(c / "run"), str(c / "no-such-run")],
         ("no-such-run",)),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from hessgpt.errors import HessError

    folder = tmp_path_factory.mktemp("hostile")
    try:
        build_corpus(folder)
    except HessError as exc:  # the GPT-2 BPE file is not installed
        pytest.skip(str(exc))
    # An existing complete run, which no case may damage.
    code, _, err = run_in_process("bench", _into_run()(folder), folder)
    assert code == 0, err
    # The same run as a folder from before runs recorded themselves (no run.json).
    shutil.copytree(folder / "run", folder / "legacy-run")
    (folder / "legacy-run" / "run.json").unlink()
    return folder


def test_corpus_is_large_enough():
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)


# Subprocess cases pay a Python and torch start-up each: they run with the slow tests.
_PARAMS = [pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.subprocess else [])
           for case in CASES]


@pytest.mark.parametrize("case", _PARAMS)
def test_hostile_input_is_refused_in_one_line(case: Case, corpus: Path):
    before = _tree_digest(corpus)
    runner = run_subprocess if case.subprocess else run_in_process
    code, _out, err = runner(case.command, case.argv(corpus), corpus)
    assert "Traceback" not in err, err
    assert code == case.code, err
    lines = [line for line in err.splitlines() if line.startswith("error:") or ": error:" in line]
    assert len(lines) == 1, err
    for part in case.message:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    assert _tree_digest(corpus) == before, "an existing run was changed"
    if case.check is not None:
        case.check(corpus)


def test_same_command_resumes_and_overwrite_replaces(corpus: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(corpus / "run", run)
    argv = ["--responses", str(corpus / "answers.jsonl"), "--suites-dir", str(corpus / "suites"), "--limit", "2",
            "--out", str(run), "--no-progress", "--quiet"]
    code, _, err = run_in_process("bench", argv, corpus)
    assert code == 0, err  # the same run again is accepted
    other = [*argv, "--seed", "5"]
    code, _, err = run_in_process("bench", other, corpus)
    assert code == 2 and "holds another run" in err
    code, _, err = run_in_process("bench", [*other, "--overwrite"], corpus)
    assert code == 0, err
    assert json.loads((run / "results.json").read_text())["meta"]["seed"] == 5
    assert json.loads((run / "run.json").read_text())["seed"] == 5
