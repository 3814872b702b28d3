"""`hessgpt chat` and `hessgpt generate` driven like a user would: stdin in, stdout/stderr out."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hessgpt.chat import make_chat_template
from hessgpt.cli import build_parser, main
from hessgpt.commands import chat
from hessgpt.config import ModelConfig
from hessgpt.generate import Engine, GenerationSettings
from hessgpt.loading import LoadedModel, build_model, load_model
from hessgpt.tokenizer import char_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'\"-\n"


def make_checkpoint(path: Path, block_size: int = 256) -> Path:
    tok = char_tokenizer(ALPHABET)
    torch.manual_seed(0)
    cfg = ModelConfig(
        arch="llama",
        vocab_size=tok.vocab_size,
        n_layer=2,
        n_head=4,
        n_kv_head=2,
        n_embd=64,
        block_size=block_size,
        bias=False,
        name="tiny-chat",
    )
    model = build_model(cfg, None, "test")
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(4.0)
    LoadedModel(model, tok, make_chat_template(None, tok), cfg, {}).save(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "tiny.pt")


def run_chat(checkpoint: Path, lines: list[str], *flags: str) -> str:
    args = build_parser().parse_args(["chat", "--checkpoint", str(checkpoint), "--temperature", "0", *flags])
    out = io.StringIO()
    assert chat.run(args, stdin=io.StringIO("".join(f"{line}\n" for line in lines)), stdout=out) == 0
    return out.getvalue()


def replies(transcript: str) -> list[str]:
    """Each streamed answer: the text after "assistant> " up to the next prompt."""
    return [part.split("\nyou> ")[0] for part in transcript.split("assistant> ")[1:]]


def test_chat_remembers_the_conversation_and_reset_forgets_it(checkpoint):
    transcript = run_chat(
        checkpoint, ["Hello there", "Hello there", "/reset", "Hello there"], "--max-new-tokens", "12"
    )
    first, second, after_reset = replies(transcript)
    assert "(conversation cleared)" in transcript
    assert after_reset == first  # same (empty) history, greedy: the same answer
    # The second answer was generated from the whole conversation so far.
    engine = Engine(load_model(checkpoint), batch_size=1)
    settings = GenerationSettings(max_new_tokens=12, temperature=0.0, top_p=1.0)
    history = [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": first.strip()},
        {"role": "user", "content": "Hello there"},
    ]
    expected = engine.generate([engine.chat_request(history, settings, request_id="turn-1")])[0].text
    assert second == expected


def test_params_command_changes_and_validates_settings(checkpoint):
    transcript = run_chat(
        checkpoint,
        ["/params temperature=0.5 top_p=0.9 top_k=20", "/params top_p=2", "/params colour=red", "/params"],
    )
    lines = [line for line in transcript.splitlines() if line.startswith(("you> temperature", "you> error"))]
    assert lines[0].startswith("you> temperature=0.5 top_k=20 top_p=0.9")
    assert lines[1] == "you> error: top_p: must be in (0, 1], got 2.0"
    assert lines[2].startswith("you> error: /params: expected key=value")
    assert lines[3] == lines[0]  # the bad values changed nothing


def test_history_is_trimmed_to_fit_the_context(tmp_path):
    small = make_checkpoint(tmp_path / "small.pt", block_size=96)
    long_message = "tell me a story about a dog " * 2
    transcript = run_chat(small, [long_message] * 4, "--max-new-tokens", "8")
    assert len(replies(transcript)) == 4
    assert "oldest message(s) to fit the context" in transcript
    engine = Engine(load_model(small), batch_size=1)
    history = [{"role": "user", "content": long_message}, {"role": "assistant", "content": "ok ok"}] * 3
    messages, dropped = chat.fit_conversation(engine, None, history, long_message, 8)
    assert dropped > 0 and dropped % 2 == 0 and messages[-1] == {"role": "user", "content": long_message}
    assert len(engine.chat_template.render(messages).ids) + 8 <= engine.context
    assert messages[:-1] == history[dropped:]  # the most recent exchanges are the ones kept


def test_chat_through_a_real_terminal_pipe(checkpoint):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hessgpt",
            "chat",
            "--checkpoint",
            str(checkpoint),
            "--temperature",
            "0",
            "--max-new-tokens",
            "10",
        ],
        input="hi\n/reset\nhi\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.returncode == 0, proc.stderr
    first, second = replies(proc.stdout)
    assert first == second and proc.stdout.startswith("chatting with tiny-chat")


# -- hessgpt generate --------------------------------------------------------------------------------


def test_generate_prints_only_the_completion_and_speed_on_stderr(checkpoint, capsys):
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(checkpoint),
                "--prompt",
                "Once upon",
                "--max-new-tokens",
                "9",
                "--ignore-eos",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    engine = Engine(load_model(checkpoint))
    expected = engine.generate(
        [engine.text_request("Once upon", GenerationSettings(max_new_tokens=9, ignore_eos=True))]
    )[0]
    assert out == expected.text + "\n"
    assert err.strip().splitlines()[-1].startswith("9 tokens in ") and "tokens/s" in err


def test_generate_json_from_a_prompts_file_is_batch_invariant(checkpoint, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(
        "What is a dog?\n\nName a color.\nhi\nWrite a short poem about rain.\n", encoding="utf-8"
    )
    runs = []
    for batch in ("1", "3"):
        assert (
            main(
                [
                    "generate",
                    "--checkpoint",
                    str(checkpoint),
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
                ]
            )
            == 0
        )
        records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        runs.append(records)
    assert runs[0] == runs[1]
    assert [r["prompt"] for r in runs[0]] == [
        "What is a dog?",
        "Name a color.",
        "hi",
        "Write a short poem about rain.",
    ]
    assert all(set(r) >= {"prompt", "output", "new_tokens"} and r["new_tokens"] <= 12 for r in runs[0])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--temperature", "-1"], "error: --temperature: must be >= 0"),
        (["--top-p", "1.5"], "error: --top-p: must be in (0, 1]"),
        (["--top-p", "0"], "error: --top-p: must be in (0, 1]"),
        (["--num-beams", "0"], "error: --num-beams: must be an integer >= 1"),
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
