"""The router between the assistant model, the code model and the sandbox, on scripted models and
fake sandboxes: the protocol's control flow without the cost (or the randomness) of a real model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hessgpt.bpe_train import train_bpe
from hessgpt.chat import make_chat_template
from hessgpt.errors import HessError
from hessgpt.generate import GenerationResult, GenerationSettings
from hessgpt.router import Router, result_line
from hessgpt.tokenizer import ENDOFTEXT
from hessgpt.tools import CODE, END, RESULT, TOOL_TOKENS, final_answer

CORPUS = "User: what is 12 times 34?\nAssistant: print(12 * 34) The answer is 408.\n" * 30


@pytest.fixture(scope="module")
def tool_tok():
    return train_bpe(CORPUS, 320, special_tokens=(ENDOFTEXT, *TOOL_TOKENS))


@pytest.fixture(scope="module")
def plain_tok():
    return train_bpe(CORPUS, 320)


@dataclass
class Outcome:
    stdout: str = ""
    stderr: str = ""
    exit_reason: str = "ok"
    wall_s: float = 0.01
    peak_mb: float = 1.0


class FakeSandbox:
    """Records the code it is given; answers from a table (code -> Outcome), else prints 'ran'."""

    def __init__(self, table: dict[str, Outcome] | None = None) -> None:
        self.table = table or {}
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, code: str, **limits) -> Outcome:
        self.calls.append((code, limits))
        return self.table.get(code.strip(), Outcome(stdout="ran\n"))


class ScriptedEngine:
    """A 'model' that writes its script piece by piece, stopping as the router's stops ask.

    ``scripts[i]`` is the list of pieces conversation i writes, one per generation round: a piece
    ending in a stop token or stop string the request declares stops there, like the real engine."""

    def __init__(self, tokenizer, scripts: list[list[str]]) -> None:
        self.tokenizer = tokenizer
        self.chat_template = make_chat_template(None, tokenizer)
        self.scripts = [list(s) for s in scripts]
        self.prompts: list[list[int]] = []

    def generate(self, requests):
        out = []
        for request in requests:
            index = int(request.request_id.split("/")[0])
            piece = self.scripts[index].pop(0)
            self.prompts.append(list(request.prompt_ids))
            out.append(self._result(piece, request))
        return out

    def _result(self, piece: str, request) -> GenerationResult:
        specials = self.tokenizer.special_tokens
        for token in request.stop_token_ids:
            spelling = next((k for k, v in specials.items() if v == token), None)
            if spelling and piece.endswith(spelling):
                text = piece[: -len(spelling)]
                return GenerationResult(text, self.tokenizer.encode(text), "stop", len(request.prompt_ids),
                                        False, stop_token=token)
        for stop in request.settings.stop_strings:
            if piece.endswith(stop):
                text = piece[: -len(stop)]
                return GenerationResult(text, self.tokenizer.encode(text), "stop_string",
                                        len(request.prompt_ids), False, stop_string=stop)
        ids = self.tokenizer.encode(piece)[: request.settings.max_new_tokens]
        return GenerationResult(self.tokenizer.decode(ids), ids, "length", len(request.prompt_ids), False)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_one_tool_call_runs_the_code_and_injects_the_result(tool_tok):
    sandbox = FakeSandbox({"print(12 * 34)": Outcome(stdout="408\n")})
    engine = ScriptedEngine(tool_tok, [[f" {CODE}", f"\nprint(12 * 34)\n{END}", f"The answer is 408.{ENDOFTEXT}"]])
    answer = Router(engine, runner=sandbox).run([ask("what is 12 times 34?")])[0]
    assert [code for code, _ in sandbox.calls] == ["\nprint(12 * 34)\n"]
    assert sandbox.calls[0][1] == {"timeout_s": 5.0, "memory_mb": 100}
    assert answer.text == f" {CODE}\nprint(12 * 34)\n{END}{RESULT}408\n{END}The answer is 408."
    assert answer.final == "The answer is 408."
    assert answer.finish_reason == "stop"
    [call] = answer.calls
    assert (call.result, call.exit_reason, call.wall_s) == ("408\n", "ok", 0.01)
    # The model saw the result as control ids around plain text, right after its own code block.
    last_prompt = engine.prompts[-1]
    ids = tool_tok.special_tokens
    tail = [ids[END], ids[RESULT], *tool_tok.encode("408\n"), ids[END]]
    assert last_prompt[-len(tail):] == tail
    assert answer.messages == [
        {"role": "assistant", "content": f" {CODE}\nprint(12 * 34)\n{END}"},
        {"role": "tool", "content": "408\n"},
        {"role": "assistant", "content": "The answer is 408."},
    ]


def test_several_calls_then_the_limit_ends_the_answer(tool_tok):
    script = [f"{CODE}", f"print(1){END}", f"again {CODE}", f"print(2){END}", f"more {CODE}", f"print(3){END}",
              f"and more {CODE}", "never asked"]
    sandbox = FakeSandbox()
    engine = ScriptedEngine(tool_tok, [script])
    answer = Router(engine, runner=sandbox, max_calls=3).run([ask("loop")])[0]
    assert [c for c, _ in sandbox.calls] == ["print(1)", "print(2)", "print(3)"]
    assert answer.finish_reason == "tool_limit"
    assert answer.text.endswith("and more ")  # the fourth block is never opened
    assert len(answer.calls) == 3

    engine = ScriptedEngine(tool_tok, [[f"{CODE}", "unused"]])
    answer = Router(engine, runner=FakeSandbox(), max_calls=0).run([ask("no tools")])[0]
    assert answer.calls == [] and answer.finish_reason == "tool_limit"


def test_a_batch_of_conversations_advances_together(tool_tok):
    engine = ScriptedEngine(tool_tok, [[f"Hello.{ENDOFTEXT}"], [CODE, f"print(5){END}", f"Five.{ENDOFTEXT}"]])
    sandbox = FakeSandbox({"print(5)": Outcome(stdout="5\n")})
    first, second = Router(engine, runner=sandbox).run([ask("hi"), ask("five?")])
    assert (first.text, first.calls) == ("Hello.", [])
    assert second.final == "Five." and second.calls[0].result == "5\n"


def test_sandbox_errors_reach_the_model_as_one_line(tool_tok):
    crash = Outcome(stderr="Traceback (most recent call last):\n  File x\nZeroDivisionError: division by zero\n",
                    exit_reason="error")
    sandbox = FakeSandbox({"1/0": crash, "while True: pass": Outcome(exit_reason="timeout")})
    engine = ScriptedEngine(tool_tok, [[CODE, f"1/0{END}", CODE, f"while True: pass{END}", f"Sorry.{ENDOFTEXT}"]])
    answer = Router(engine, runner=sandbox).run([ask("divide")])[0]
    assert [c.result for c in answer.calls] == ["error: ZeroDivisionError: division by zero", "timeout"]
    assert [c.exit_reason for c in answer.calls] == ["error", "timeout"]
    assert f"{RESULT}error: ZeroDivisionError: division by zero\n{END}" in answer.text
    assert result_line(Outcome(stdout="", exit_reason="ok")) == "(no output)"


def test_a_runner_that_raises_is_reported_not_fatal(tool_tok):
    def broken(code, **limits):
        raise RuntimeError("boom")

    engine = ScriptedEngine(tool_tok, [[CODE, f"print(1){END}", f"Done.{ENDOFTEXT}"]])
    answer = Router(engine, runner=broken).run([ask("x")])[0]
    assert answer.calls[0].exit_reason == "killed" and answer.final == "Done."


def test_the_code_model_rewrites_the_block_before_it_runs(tool_tok):
    seen = []

    def code_model(code: str) -> str:
        seen.append(code)
        return "print(12 * 34)"

    sandbox = FakeSandbox({"print(12 * 34)": Outcome(stdout="408\n")})
    engine = ScriptedEngine(tool_tok, [[CODE, f"multiply 12 and 34{END}", f"408.{ENDOFTEXT}"]])
    answer = Router(engine, runner=sandbox, code_model=code_model).run([ask("12*34")])[0]
    assert seen == ["multiply 12 and 34"]
    assert [c for c, _ in sandbox.calls] == ["print(12 * 34)"]
    call = answer.calls[0]
    assert (call.code, call.ran, call.result) == ("multiply 12 and 34", "print(12 * 34)", "408\n")
    assert "multiply 12 and 34" in answer.text  # the transcript keeps what the assistant wrote


def test_plain_text_markers_for_a_model_without_tool_tokens(plain_tok):
    sandbox = FakeSandbox({"print(12 * 34)": Outcome(stdout="408\n")})
    engine = ScriptedEngine(plain_tok, [["Let me compute.\n```python\n", "print(12 * 34)\n```",
                                         f"The answer is 408.{ENDOFTEXT}"]])
    router = Router(engine, runner=sandbox)
    assert router.protocol.name == "fenced"
    answer = router.run([ask("what is 12 times 34?")])[0]
    assert [c for c, _ in sandbox.calls] == ["print(12 * 34)\n"]
    assert answer.text == "Let me compute.\n```python\nprint(12 * 34)\n```\n```output\n408\n```\nThe answer is 408."
    assert answer.final == "Let me compute.\nThe answer is 408."
    # The fenced model is told about the tool in a system message, and sees the output as plain text.
    first_prompt = plain_tok.decode(engine.prompts[0])
    assert first_prompt.startswith("System: You can run Python.")
    assert plain_tok.decode(engine.prompts[-1]).endswith("```output\n408\n```\n")


def test_the_token_budget_covers_every_round(tool_tok):
    engine = ScriptedEngine(tool_tok, [[CODE, f"print(1){END}", "x " * 50]])
    answer = Router(engine, runner=FakeSandbox()).run([ask("x")], GenerationSettings(max_new_tokens=12))[0]
    assert answer.finish_reason == "length"
    assert answer.new_tokens <= 12


def test_bad_router_settings_are_one_line_errors(tool_tok):
    engine = ScriptedEngine(tool_tok, [[]])
    with pytest.raises(HessError, match="--max-tool-calls"):
        Router(engine, runner=FakeSandbox(), max_calls=-1)
    with pytest.raises(HessError, match="beam search"):
        Router(engine, runner=FakeSandbox()).run([ask("x")], GenerationSettings(num_beams=2))


def test_final_answer_strips_both_protocols():
    assert final_answer(f"{CODE}print(1){END}{RESULT}1\n{END}It is 1.") == "It is 1."
    assert final_answer("```python\nprint(1)\n```\n```output\n1\n```\nIt is 1.") == "It is 1."
    assert final_answer(f"{CODE}print(1) never closed") == ""


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_checkpoint(tmp_path_factory):
    from test_generate_helpers import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ck") / "tiny.pt")


def test_generate_with_tools_prints_the_trace_as_json(chat_checkpoint, capsys, one_thread):
    import json

    from hessgpt.cli import main

    assert main(["generate", "--checkpoint", str(chat_checkpoint), "--prompt", "hi", "--tools", "python",
                 "--json", "--max-new-tokens", "8"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["tool_calls"] == [] and record["new_tokens"] <= 8 and record["final"] == record["output"].strip()
    assert main(["generate", "--checkpoint", str(chat_checkpoint), "--prompt", "hi", "--code-checkpoint", "x"]) == 2
    assert "--code-checkpoint: needs --tools python" in capsys.readouterr().err


def test_chat_with_tools_shows_each_call_and_keeps_it_in_the_history(chat_checkpoint, monkeypatch, one_thread):
    import io

    from hessgpt.cli import build_parser
    from hessgpt.commands import chat
    from hessgpt.router import RoutedAnswer, ToolCall

    seen = []

    def fake_run(self, conversations, settings=None, request_ids=None, on_call=None):
        seen.append(conversations[0])
        call = ToolCall("print(6 * 7)", "print(6 * 7)", "42\n", "ok", 0.05)
        messages = [{"role": "assistant", "content": "```python\nprint(6 * 7)\n```"},
                    {"role": "tool", "content": "42\n"}, {"role": "assistant", "content": "It is 42."}]
        text = "```python\nprint(6 * 7)\n```\n```output\n42\n```\nIt is 42."
        return [RoutedAnswer(text, [call], "stop", 5, 10, False, messages)]

    monkeypatch.setattr("hessgpt.router.Router.run", fake_run)
    args = build_parser().parse_args(["chat", "--checkpoint", str(chat_checkpoint), "--tools", "python",
                                      "--temperature", "0", "--max-new-tokens", "8"])
    out = io.StringIO()
    assert chat.run(args, stdin=io.StringIO("six times seven?\nand again?\n"), stdout=out) == 0
    transcript = out.getvalue()
    assert "[tool call 1: python, ok, 0.05 s]\n  | print(6 * 7)\n  > 42\nassistant> It is 42.\n" in transcript
    assert [m["role"] for m in seen[1]] == ["user", "assistant", "tool", "assistant", "user"]
