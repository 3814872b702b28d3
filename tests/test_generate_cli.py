"""`hessgpt generate` driven like a user would: flags in, completions on stdout, speed on stderr.

Each sampling flag is checked to reach the engine: the CLI's output equals the engine's for the same
settings, and differs from plain greedy where the setting changes the answer."""

from __future__ import annotations

import json
import re

import pytest
from test_generate_helpers import make_checkpoint

from hessgpt.cli import main
from hessgpt.generate import Engine, GenerationSettings
from hessgpt.loading import load_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

PROMPTS = ["Once upon", "What is a dog?", "hi"]
SPEED = re.compile(r"^(\d+) tokens in \d+\.\d\d s: \d+\.\d tokens/s \(batch size (\d+)\)$")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "tiny.pt")


@pytest.fixture(scope="module")
def engine(checkpoint) -> Engine:
    return Engine(load_model(checkpoint), batch_size=4)


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    return path


def generate(checkpoint, capsys, *flags: str) -> tuple[str, str]:
    assert main(["generate", "--checkpoint", str(checkpoint), *flags]) == 0
    return capsys.readouterr()


def engine_texts(engine: Engine, **settings) -> list[str]:
    s = GenerationSettings(**settings)
    return [r.text for r in engine.generate([engine.text_request(p, s) for p in PROMPTS])]


def test_generate_prints_only_the_completion_and_speed_on_stderr(checkpoint, engine, capsys):
    out, err = generate(checkpoint, capsys, "--prompt", "Once upon", "--max-new-tokens", "9", "--ignore-eos")
    expected = engine.generate(
        [engine.text_request("Once upon", GenerationSettings(max_new_tokens=9, ignore_eos=True))]
    )[0]
    assert out == expected.text + "\n"
    assert SPEED.match(err.splitlines()[-1]).groups() == ("9", "1")  # one prompt: a batch of one, not 16


def test_every_sampling_flag_reaches_the_engine(checkpoint, capsys, monkeypatch):
    seen = []
    real = Engine._prepare

    def spy(self, index, request):
        seen.append(request.settings)
        return real(self, index, request)

    monkeypatch.setattr(Engine, "_prepare", spy)
    flags = ["--prompt", "hi", "--max-new-tokens", "6", "--min-new-tokens", "2", "--ignore-eos"]
    generate(checkpoint, capsys, *flags, "--temperature", "0.8", "--top-k", "7", "--top-p", "0.9")
    generate(checkpoint, capsys, *flags, "--repetition-penalty", "1.3", "--no-repeat-ngram-size", "3")
    generate(checkpoint, capsys, *flags, "--num-beams", "3", "--length-penalty", "0.5", "--seed", "11")
    generate(checkpoint, capsys, *flags, "--stop", "zz", "--stop", "q")
    sampled, penalised, beams, stops = seen
    common = (6, 2, True)
    assert (sampled.max_new_tokens, sampled.min_new_tokens, sampled.ignore_eos) == common
    assert (sampled.temperature, sampled.top_k, sampled.top_p) == (0.8, 7, 0.9)
    assert (penalised.repetition_penalty, penalised.no_repeat_ngram_size) == (1.3, 3)
    assert (beams.num_beams, beams.length_penalty, beams.seed) == (3, 0.5, 11)
    assert tuple(stops.stop_strings) == ("zz", "q")


def test_num_beams_gives_the_engines_beam_search(checkpoint, engine, prompts_file, capsys):
    out, _ = generate(
        checkpoint, capsys, "--prompts-file", str(prompts_file), "--max-new-tokens", "12", "--num-beams", "3"
    )
    beams = engine_texts(engine, max_new_tokens=12, num_beams=3)
    assert out.splitlines() == beams
    assert beams != engine_texts(engine, max_new_tokens=12)  # beam search changes an answer here


@pytest.mark.parametrize("flag", [["--top-k", "1"], ["--top-p", "0.01"]])
def test_a_one_token_filter_at_high_temperature_is_greedy(checkpoint, engine, prompts_file, capsys, flag):
    common = ["--prompts-file", str(prompts_file), "--max-new-tokens", "12", "--ignore-eos"]
    greedy, _ = generate(checkpoint, capsys, *common)
    filtered, _ = generate(checkpoint, capsys, *common, "--temperature", "1.5", "--seed", "3", *flag)
    hot, _ = generate(checkpoint, capsys, *common, "--temperature", "1.5", "--seed", "3")
    assert filtered == greedy
    assert greedy.splitlines() == engine_texts(engine, max_new_tokens=12, ignore_eos=True)
    assert hot != greedy  # without the filter, temperature 1.5 does change the text


def test_repetition_penalty_flag_changes_the_output_as_the_engine_does(
    checkpoint, engine, prompts_file, capsys
):
    common = ["--prompts-file", str(prompts_file), "--max-new-tokens", "12", "--ignore-eos"]
    out, _ = generate(checkpoint, capsys, *common, "--repetition-penalty", "1.5")
    penalised = engine_texts(engine, max_new_tokens=12, ignore_eos=True, repetition_penalty=1.5)
    assert out.splitlines() == penalised
    assert penalised != engine_texts(engine, max_new_tokens=12, ignore_eos=True)


def test_json_lines_and_the_speed_line(checkpoint, engine, prompts_file, capsys):
    out, err = generate(
        checkpoint,
        capsys,
        "--prompts-file",
        str(prompts_file),
        "--json",
        "--batch-size",
        "2",
        "--max-new-tokens",
        "7",
        "--ignore-eos",
    )
    records = [json.loads(line) for line in out.splitlines()]
    settings = GenerationSettings(max_new_tokens=7, ignore_eos=True)
    expected = engine.generate([engine.text_request(p, settings) for p in PROMPTS])
    assert [(r["prompt"], r["output"], r["new_tokens"]) for r in records] == [
        (p, e.text, len(e.token_ids)) for p, e in zip(PROMPTS, expected, strict=True)
    ]
    assert all(r["new_tokens"] == 7 and r["finish_reason"] == "length" for r in records)
    total, batch = SPEED.match(err.splitlines()[-1]).groups()
    assert (int(total), batch) == (21, "2")


def test_generate_json_from_a_prompts_file_is_batch_invariant(checkpoint, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(
        "What is a dog?\n\nName a color.\nhi\nWrite a short poem about rain.\n", encoding="utf-8"
    )
    runs = []
    for batch in ("1", "3"):
        out, _ = generate(
            checkpoint,
            capsys,
            "--prompts-file",
            str(prompts),
            "--chat",
            "--json",
            "--batch-size",
            batch,
            "--max-new-tokens",
            "12",
            "--temperature",
            "0.8",
            "--seed",
            "5",
        )
        runs.append([json.loads(line) for line in out.splitlines()])
    assert runs[0] == runs[1]
    assert [r["prompt"] for r in runs[0]] == [
        "What is a dog?",
        "Name a color.",
        "hi",
        "Write a short poem about rain.",
    ]
    assert all(set(r) >= {"prompt", "output", "new_tokens"} and r["new_tokens"] <= 12 for r in runs[0])


def test_a_prompt_longer_than_the_context_is_cut_and_noted_on_stderr(checkpoint, tmp_path, capsys):
    prompts = tmp_path / "long.txt"
    prompts.write_text("hi\n" + "a dog. " * 50 + "\n", encoding="utf-8")  # 350 characters, context 256
    out, err = generate(checkpoint, capsys, "--prompts-file", str(prompts), "--json", "--max-new-tokens", "8")
    short, long = (json.loads(line) for line in out.splitlines())
    assert (short["prompt_truncated"], long["prompt_truncated"], long["prompt_tokens"]) == (False, True, 248)
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == ["note: prompt 2 was longer than the context; its beginning was cut (kept 248 tokens)"]


@pytest.mark.parametrize("value", ["256", "300"])
def test_max_new_tokens_beyond_the_context_names_the_flag(checkpoint, capsys, value):
    assert (
        main(["generate", "--checkpoint", str(checkpoint), "--prompt", "hi", "--max-new-tokens", value]) == 2
    )
    assert capsys.readouterr().err == (
        f"error: --max-new-tokens: {value} leaves no room for a prompt in the model's context of 256 "
        "tokens (at most 255)\n"
    )


def test_the_default_max_new_tokens_fits_a_small_context(tmp_path, capsys):
    small = make_checkpoint(tmp_path / "small.pt", block_size=96)
    out, err = generate(small, capsys, "--prompt", "hi", "--ignore-eos", "--json")
    assert json.loads(out)["new_tokens"] == 48  # half the context, not the default 128
    assert SPEED.match(err.splitlines()[-1]).group(1) == "48"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--temperature", "-1"], "error: --temperature: must be >= 0"),
        (["--top-p", "1.5"], "error: --top-p: must be in (0, 1]"),
        (["--top-p", "0"], "error: --top-p: must be in (0, 1]"),
        (["--num-beams", "0"], "error: --num-beams: must be an integer >= 1"),
        (["--num-beams", "2", "--temperature", "0.5"], "error: --num-beams: beam search is deterministic"),
        (["--max-new-tokens", "0"], "error: --max-new-tokens: must be an integer >= 1"),
        (["--batch-size", "0"], "error: --batch-size: must be >= 1"),
    ],
)
def test_generate_bad_flags_give_one_line_errors(checkpoint, capsys, flags, message):
    assert main(["generate", "--checkpoint", str(checkpoint), "--prompt", "hi", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_generate_empty_prompts_file_and_empty_prompt(checkpoint, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    assert main(["generate", "--checkpoint", str(checkpoint), "--prompts-file", str(empty)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {empty}: the prompts file is empty (expected one prompt per line)\n"
    )
    assert main(["generate", "--checkpoint", str(checkpoint), "--prompt", ""]) == 2
    assert capsys.readouterr().err == "error: --prompt: the prompt tokenizes to nothing\n"


def test_top_p_and_top_k_at_temperature_0_warn_that_they_do_nothing(checkpoint, capsys):
    _, err = generate(checkpoint, capsys, "--prompt", "hi", "--max-new-tokens", "2", "--top-p", "0.9")
    assert err.splitlines()[0] == ("warning: --top-p has no effect at --temperature 0 (greedy decoding); "
                                   "give a temperature above 0 to sample")
    _, err = generate(checkpoint, capsys, "--prompt", "hi", "--max-new-tokens", "2", "--top-p", "0.9",
                      "--temperature", "0.8", "--top-k", "5")
    assert "warning" not in err


def test_the_speed_line_starts_on_its_own_line_when_output_and_errors_share_a_pipe(checkpoint):
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "hessgpt", "generate", "--checkpoint", str(checkpoint), "--prompt", "Once upon",
         "--max-new-tokens", "5", "--ignore-eos"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout
    assert SPEED.match(proc.stdout.splitlines()[-1]), proc.stdout
