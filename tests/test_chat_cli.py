"""`hessgpt chat` driven like a user would: stdin in, stdout out.

The tiny random model answers much the same whatever it is asked, so memory, /reset and history
trimming are checked on what the engine receives: the exact token ids of each turn's prompt."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_generate_helpers import make_checkpoint

from hessgpt.cli import build_parser, main
from hessgpt.commands import chat
from hessgpt.errors import HessError
from hessgpt.generate import Engine, GenerationSettings
from hessgpt.loading import load_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "tiny.pt")


@pytest.fixture
def prompts_seen(monkeypatch) -> list[list[int]]:
    """The prompt ids of every request the chat streams, in order."""
    seen: list[list[int]] = []
    real = Engine.stream

    def spy(self, request):
        seen.append(list(request.prompt_ids))
        return real(self, request)

    monkeypatch.setattr(Engine, "stream", spy)
    return seen


def run_chat(checkpoint: Path, lines: list[str], *flags: str) -> str:
    args = build_parser().parse_args(["chat", "--checkpoint", str(checkpoint), "--temperature", "0", *flags])
    out = io.StringIO()
    assert chat.run(args, stdin=io.StringIO("".join(f"{line}\n" for line in lines)), stdout=out) == 0
    return out.getvalue()


def replies(transcript: str) -> list[str]:
    """Each streamed answer: the text after "assistant> " up to the next prompt."""
    return [part.split("\nyou> ")[0].split("\n[answer cut at")[0] for part in transcript.split("assistant> ")[1:]]


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def rendered(engine: Engine, messages: list[dict]) -> list[int]:
    return engine.chat_template.render(messages, add_generation_prompt=True).ids


def test_chat_sends_the_whole_conversation_and_reset_forgets_it(checkpoint, prompts_seen):
    said = ["My name is Ada.", "What is my name?", "Who am I?"]
    transcript = run_chat(checkpoint, [said[0], said[1], "/reset", said[2]], "--max-new-tokens", "12")
    first, second, third = (r.strip() for r in replies(transcript))
    assert "(conversation cleared)" in transcript and first  # a non-empty answer to look for
    engine = Engine(load_model(checkpoint), batch_size=1)
    assert prompts_seen == [
        rendered(engine, [user(said[0])]),
        rendered(engine, [user(said[0]), assistant(first), user(said[1])]),
        rendered(engine, [user(said[2])]),  # after /reset: nothing of before
    ]
    turn2, turn3 = (engine.tokenizer.decode(ids) for ids in prompts_seen[1:])
    assert said[0] in turn2 and f"Assistant: {first}" in turn2
    assert said[0] not in turn3 and said[1] not in turn3 and first not in turn3
    # The answers shown are the engine's answers to exactly those prompts.
    settings = GenerationSettings(max_new_tokens=12)
    request = engine.chat_request([user(said[0]), assistant(first), user(said[1])], settings)
    assert second == engine.generate([request])[0].text.strip()


def test_system_message_leads_every_turn_and_system_command_resets(checkpoint, prompts_seen):
    run_chat(checkpoint, ["one", "/system Be brief.", "two"], "--system", "Speak French.")
    engine = Engine(load_model(checkpoint), batch_size=1)
    system = {"role": "system", "content": "Speak French."}
    assert prompts_seen[0] == rendered(engine, [system, user("one")])
    assert prompts_seen[1] == rendered(engine, [{"role": "system", "content": "Be brief."}, user("two")])


def test_history_is_trimmed_oldest_first_to_fit_the_context(tmp_path, prompts_seen):
    small = make_checkpoint(tmp_path / "small.pt", block_size=96)
    said = [f"message {k}: dogs?" for k in range(5)]
    transcript = run_chat(small, said, "--max-new-tokens", "8")
    answers = [r.strip() for r in replies(transcript)]
    assert len(answers) == 5 and "oldest message(s) to fit the context" in transcript
    engine = Engine(load_model(small), batch_size=1)
    # 96 tokens hold the new message, 8 new tokens and one earlier exchange, never two.
    assert len(rendered(engine, [user(said[0]), assistant(answers[0])] * 2 + [user(said[0])])) + 8 > 96
    for k, prompt in enumerate(prompts_seen):
        assert len(prompt) + 8 <= engine.context
        expected = [user(said[k - 1]), assistant(answers[k - 1])] if k else []
        assert prompt == rendered(engine, expected + [user(said[k])])  # the newest exchange kept
        text = engine.tokenizer.decode(prompt)
        assert [j for j in range(5) if said[j] in text] == ([k - 1, k] if k else [0])
    # The trimming itself: whole exchanges, oldest first, and the newest ones kept.
    history = [user("x" * 30), assistant("ok ok")] * 3
    messages, dropped = chat.fit_conversation(engine, None, history, "y" * 30, 8)
    assert dropped > 0 and dropped % 2 == 0 and messages == history[dropped:] + [user("y" * 30)]


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


def test_params_max_new_tokens_beyond_the_context_is_refused_and_the_chat_goes_on(checkpoint, prompts_seen):
    transcript = run_chat(
        checkpoint, ["/params max_new_tokens=300", "/params", "hello"], "--max-new-tokens", "12"
    )
    assert (
        "you> error: max_new_tokens: 300 leaves no room for a prompt in the model's context of 256 tokens "
        "(at most 255)\n" in transcript
    )
    assert "max_new_tokens=12 " in transcript  # the old value kept
    assert len(replies(transcript)) == 1 and "dropped" not in transcript and len(prompts_seen) == 1
    assert "max_new_tokens=255 " in run_chat(checkpoint, ["/params max_new_tokens=255"])


def test_a_failing_turn_prints_one_line_and_keeps_the_conversation(checkpoint, prompts_seen, monkeypatch):
    real = Engine._prepare
    calls = []

    def fails_on_the_second_turn(self, index, request):
        calls.append(request)
        if len(calls) == 2:
            raise HessError("request #0: something about this turn")
        return real(self, index, request)

    monkeypatch.setattr(Engine, "_prepare", fails_on_the_second_turn)
    transcript = run_chat(checkpoint, ["first", "second", "third"], "--max-new-tokens", "6")
    assert "you> error: request #0: something about this turn\nyou> " in transcript
    first, third = (r.strip() for r in replies(transcript))
    engine = Engine(load_model(checkpoint), batch_size=1)
    # The failed turn left no trace: the third turn follows the first.
    assert prompts_seen[2] == rendered(engine, [user("first"), assistant(first), user("third")])


def test_chat_refuses_a_max_new_tokens_flag_beyond_the_context(checkpoint, capsys):
    assert main(["chat", "--checkpoint", str(checkpoint), "--max-new-tokens", "300"]) == 2
    assert capsys.readouterr().err == (
        "error: --max-new-tokens: 300 leaves no room for a prompt in the model's context of 256 tokens "
        "(at most 255)\n"
    )


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
        input="hi\n/params max_new_tokens=999\n/reset\nhi\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("chatting with tiny-chat (256 tokens of context)")
    assert "error: max_new_tokens: 999 leaves no room" in proc.stdout
    engine = Engine(load_model(checkpoint), batch_size=1)
    request = engine.chat_request([user("hi")], GenerationSettings(max_new_tokens=10))
    expected = engine.generate([request])[0].text
    assert expected and replies(proc.stdout) == [expected, expected]


def test_ctrl_c_stops_the_answer_only_and_keeps_what_was_shown(checkpoint, monkeypatch):
    real = Engine.stream
    prompts: list[list[int]] = []

    def interrupted_first_turn(self, request):
        prompts.append(list(request.prompt_ids))
        pieces = real(self, request)
        if len(prompts) == 1:
            yield next(pieces)
            yield next(pieces)
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of the answer
        yield from pieces

    monkeypatch.setattr(Engine, "stream", interrupted_first_turn)
    transcript = run_chat(checkpoint, ["tell me a story", "and then?"], "--max-new-tokens", "12")
    first, second = replies(transcript)
    assert first.endswith(" [interrupted]") and second and "[interrupted]" not in second
    partial = first.removesuffix(" [interrupted]").strip()
    engine = Engine(load_model(checkpoint), batch_size=1)
    assert prompts[1] == rendered(engine, [user("tell me a story"), assistant(partial), user("and then?")])


def test_an_answer_cut_at_max_new_tokens_is_marked(checkpoint):
    transcript = run_chat(checkpoint, ["hello"], "--max-new-tokens", "3")
    assert "\n[answer cut at max_new_tokens=3; /params max_new_tokens=N for longer answers]\n" in transcript


def test_save_and_load_a_conversation(checkpoint, prompts_seen, tmp_path):
    saved = tmp_path / "talk.json"
    transcript = run_chat(checkpoint, ["My name is Ada.", f"/save {saved}"], "--system", "Be kind.",
                          "--max-new-tokens", "6")
    (answer,) = (r.strip() for r in replies(transcript))
    data = json.loads(saved.read_text())
    assert data == {"messages": [{"role": "system", "content": "Be kind."}, user("My name is Ada."), assistant(answer)]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"messages": [user("a"), user("b")]}))
    transcript = run_chat(checkpoint, ["Hi.", f"/load {bad}", f"/load {saved}", "Who am I?"], "--max-new-tokens", "6")
    assert (f"error: /load: {bad}: messages[1].role is 'user', expected 'assistant'" in transcript)
    assert f"(loaded 2 message(s) and a system message from {saved})" in transcript
    engine = Engine(load_model(checkpoint), batch_size=1)
    assert prompts_seen[-1] == rendered(engine, data["messages"] + [user("Who am I?")])


def test_arrow_keys_edit_the_line_on_a_terminal(checkpoint, tmp_path):
    import pty
    import select

    saved = tmp_path / "t.json"
    master, slave = pty.openpty()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hessgpt", "chat", "--checkpoint", str(checkpoint), "--temperature", "0",
         "--max-new-tokens", "2"],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=Path(__file__).parent.parent, close_fds=True,
    )
    os.close(slave)
    seen = b""

    def wait_for(marker: bytes, after: int) -> int:
        nonlocal seen
        while seen.count(marker) < after:
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, seen.decode(errors="replace")
            seen += os.read(master, 4096)
        return len(seen)

    try:
        wait_for(b"you> ", 1)
        os.write(master, b"ac\x1b[DX\r")  # type "ac", left arrow, "X": the line is "aXc"
        wait_for(b"you> ", 2)
        os.write(master, f"/save {saved}\r".encode())
        wait_for(b"(saved", 1)
        # Only once the next prompt is out is the line editor reading again: a Ctrl-D sent before then
        # can be discarded when it sets up the terminal, and the chat would wait for input forever.
        wait_for(b"you> ", 3)
        os.write(master, b"\x04")  # Ctrl-D
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert json.loads(saved.read_text())["messages"][0] == user("aXc")


def test_params_warn_once_that_top_p_does_nothing_at_temperature_0(checkpoint):
    warning = "warning: top_p has no effect at temperature 0 (greedy decoding); give a temperature above 0 to sample"
    transcript = run_chat(checkpoint, ["/params top_p=0.9", "/params seed=3", "/params top_p=0.8"])
    assert transcript.count("warning:") == 1 and warning in transcript.splitlines()
    # Sampling first, then greedy while top_p < 1: the temperature change is what makes top_p useless.
    transcript = run_chat(checkpoint, ["/params temperature=0.7 top_p=0.9", "/params temperature=0"],
                          "--temperature", "0.7")
    assert transcript.count("warning:") == 1 and warning in transcript.splitlines()
    transcript = run_chat(checkpoint, ["/params temperature=0 top_k=5"], "--temperature", "0.7")
    assert "warning: top_k has no effect at temperature 0" in transcript
    assert "warning" not in run_chat(checkpoint, ["/params temperature=0.7 top_p=0.9"])
