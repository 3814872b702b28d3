"""The code-tool protocol in chat templates: control ids only where the template (or the model's own
code block) puts them, the SFT mask that trains the code and the answer but never the result, and
unchanged rendering for models and conversations without tools."""

from __future__ import annotations

import pytest

from hessgpt.bpe_train import train_bpe
from hessgpt.chat import make_chat_template
from hessgpt.data import encode_example, record_to_example
from hessgpt.errors import HessError
from hessgpt.tokenizer import ENDOFTEXT, tokenizer_from_dict
from hessgpt.tools import CODE, END, RESULT, TOOL_TOKENS, extract_code

CORPUS = "User: what is 15 times 23?\nAssistant: print(15 * 23) The answer is 345.\n" * 30
CALL = [
    {"role": "user", "content": "What is 15 times 23?"},
    {"role": "assistant", "content": f"{CODE}\nprint(15 * 23)\n{END}"},
    {"role": "tool", "content": "345"},
    {"role": "assistant", "content": "The answer is 345."},
]


@pytest.fixture(scope="module")
def tool_tok():
    return train_bpe(CORPUS, 300, special_tokens=(ENDOFTEXT, *TOOL_TOKENS))


def _trained(tok, rendered) -> str:
    return tok.decode([t for t, m in zip(rendered.ids, rendered.assistant_mask, strict=True) if m])


def _control(tok, rendered) -> list[str]:
    names = {v: k for k, v in tok.special_tokens.items()}
    return [names[t] for t in rendered.ids if t in names]


def test_tool_tokens_sit_above_the_base_vocabulary_and_survive_a_round_trip(tool_tok):
    ids = [tool_tok.special_tokens[t] for t in (ENDOFTEXT, *TOOL_TOKENS)]
    assert ids == list(range(tool_tok.vocab_size - 4, tool_tok.vocab_size))
    again = tokenizer_from_dict(tool_tok.to_dict())
    assert again.special_tokens == tool_tok.special_tokens
    assert make_chat_template(None, again).tool_protocol.special


def test_a_tool_call_renders_as_control_ids_and_only_model_written_parts_are_trained(tool_tok):
    template = make_chat_template(None, tool_tok)
    rendered = template.render(CALL, add_generation_prompt=False)
    assert rendered.text == (f"User: What is 15 times 23?\nAssistant: {CODE}\nprint(15 * 23)\n{END}{RESULT}345\n{END}"
                             f"The answer is 345.{ENDOFTEXT}\n")
    assert _control(tool_tok, rendered) == [CODE, END, RESULT, END, ENDOFTEXT]
    # Trained: the space before the call, the code block, the answer and its end; never the result.
    assert _trained(tool_tok, rendered) == f" {CODE}\nprint(15 * 23)\n{END}The answer is 345.{ENDOFTEXT}"
    # <|end|> closes a tool block: it must not end the assistant's turn.
    assert template.end_of_turn_ids == [tool_tok.special_tokens[ENDOFTEXT]]


def test_user_and_tool_text_that_spells_the_tokens_stays_plain_text(tool_tok):
    template = make_chat_template(None, tool_tok)
    messages = [
        {"role": "user", "content": f"Please type {CODE}print(1){END} and {RESULT}"},
        {"role": "assistant", "content": f"{CODE}print('{END}'){END}"},
        {"role": "tool", "content": f"{END} {RESULT} {CODE}"},
        {"role": "assistant", "content": "Done."},
    ]
    rendered = template.render(messages, add_generation_prompt=False)
    # Only the assistant's own block markers and the template's result markers are control ids:
    # the block closes at the first <|end|>, so "')" after it is plain text of the assistant.
    assert _control(tool_tok, rendered) == [CODE, END, RESULT, END, ENDOFTEXT]
    assert f"{END} {RESULT} {CODE}" in tool_tok.decode(rendered.ids)
    user = template.render(messages[:1])
    assert _control(tool_tok, user) == []
    assert tool_tok.encode(f"{CODE}x{END}") == tool_tok.encode(CODE + "x" + END)  # plain encode never makes specials
    assert not any(tool_tok.is_special(t) for t in tool_tok.encode(f"{CODE}x{END}"))


def test_conversations_without_tools_render_exactly_as_before(tool_tok, gpt2_tok):
    plain = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! <|code|> is a word here."}]
    before = make_chat_template(None, gpt2_tok).render(plain, add_generation_prompt=False)
    assert before.ids == gpt2_tok.encode("User: Hi\nAssistant: Hello! <|code|> is a word here.") + [50256] + \
        gpt2_tok.encode("\n")
    assert all(before.assistant_mask[-len(gpt2_tok.encode(" Hello! <|code|> is a word here.")) - 2:-1])
    # A model without tool tokens speaks the fenced protocol: its messages are not parsed.
    assert make_chat_template(None, gpt2_tok).tool_protocol.name == "fenced"


def test_fenced_protocol_masks_the_output_block(gpt2_tok):
    template = make_chat_template(None, gpt2_tok)
    messages = [CALL[0], {"role": "assistant", "content": "```python\nprint(15 * 23)\n```"},
                {"role": "tool", "content": "345"}, {"role": "assistant", "content": "The answer is 345."}]
    rendered = template.render(messages, add_generation_prompt=False)
    assert "```python\nprint(15 * 23)\n```\n```output\n345\n```\nThe answer is 345." in rendered.text
    trained = _trained(gpt2_tok, rendered)
    assert "print(15 * 23)" in trained and "The answer is 345." in trained
    assert "345\n```\nThe" not in trained and "output" not in trained


def test_sft_examples_with_tool_calls_mask_the_result(tool_tok):
    example = record_to_example({"messages": CALL}, "auto", "mem")
    encoded = encode_example(example, tool_tok, make_chat_template(None, tool_tok))
    result_id = tool_tok.special_tokens[RESULT]
    at = encoded.ids.index(result_id)
    assert encoded.target[at] is False
    assert not any(encoded.target[at:at + 4])  # <|result|>, the result's text, its <|end|>
    with pytest.raises(ValueError, match="tool message"):
        record_to_example({"messages": [CALL[0], CALL[2]]}, "auto", "mem")


def test_a_tool_message_must_follow_an_assistant_message(tool_tok):
    with pytest.raises(HessError, match=r"messages\[1\].role: a tool message"):
        make_chat_template(None, tool_tok).render([CALL[0], CALL[2]])


def test_extract_code_prefers_a_python_fence():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1"
    assert extract_code("```\nx = 1\n```") == "x = 1"
    assert extract_code(f"{CODE}\nprint(2)\n{END}") == "print(2)"
    assert extract_code("def g(): return 2") == "def g(): return 2"
