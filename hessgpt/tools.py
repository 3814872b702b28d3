"""The code-tool protocol: how an assistant asks for Python to be run and where the result goes.

A native HessGPT model whose tokenizer carries ``<|code|>``, ``<|end|>`` and ``<|result|>`` (control
ids above the base vocabulary) writes::

    Assistant: <|code|>print(2**64)<|end|><|result|>18446744073709551616
    <|end|>2**64 is 18446744073709551616.<|endoftext|>

The model writes the code block; the router (``hessgpt.router``) runs it and injects the
``<|result|>...<|end|>`` block; the model then continues. A model without these tokens (an imported
SmolLM2) speaks the same protocol in plain-text markers: a fenced ```` ```python ```` block, and the
result in a fenced ```` ```output ```` block.

In conversations (training data, chat history) a tool call is an assistant message whose content
holds the code block, followed by a ``tool`` message holding the result, followed by the assistant's
next message::

    {"role": "assistant", "content": "<|code|>\\nprint(15 * 23)\\n<|end|>"},
    {"role": "tool", "content": "345"},
    {"role": "assistant", "content": "15 x 23 = 345."}

Chat templates see such a run as one assistant turn (:func:`merge_tool_turns`); each part of it is a
:class:`Segment`, so the loss mask trains the code and the answer but never the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CODE, END, RESULT = "<|code|>", "<|end|>", "<|result|>"
TOOL_TOKENS = (CODE, END, RESULT)
TOOL_ROLE = "tool"

# Segment kinds of an assistant turn. The model writes TEXT, CODE_OPEN, CODE and CODE_CLOSE; the
# router writes the three RESULT kinds (never trained).
TEXT, CODE_OPEN, CODE_BODY, CODE_CLOSE = "text", "code_open", "code", "code_close"
RESULT_OPEN, RESULT_BODY, RESULT_CLOSE = "result_open", "result", "result_close"
MODEL_WRITTEN = frozenset({TEXT, CODE_OPEN, CODE_BODY, CODE_CLOSE})
MARKERS = frozenset({CODE_OPEN, CODE_CLOSE, RESULT_OPEN, RESULT_CLOSE})

# Longest tool result shown to the model (characters): a huge print must not fill the context.
MAX_RESULT_CHARS = 2000

FENCED_SYSTEM_PROMPT = (
    "You can run Python. When a question needs a computation, write a Python code block that prints "
    "the result:\n```python\nprint(...)\n```\nYou will then see its output in an ```output block. "
    "Then state the final answer in one sentence."
)


@dataclass(frozen=True)
class ToolProtocol:
    """The four markers of a tool call, as control tokens (``special``) or as plain text."""

    name: str
    code_open: str
    code_close: str
    result_open: str
    result_close: str
    special: bool
    system_prompt: str = ""  # told to a model that was not trained on the protocol

    def marker(self, kind: str) -> str:
        return {CODE_OPEN: self.code_open, CODE_CLOSE: self.code_close,
                RESULT_OPEN: self.result_open, RESULT_CLOSE: self.result_close}[kind]

    def block_re(self) -> re.Pattern[str]:
        """A complete code block in an assistant message (shortest match, any content)."""
        return re.compile(re.escape(self.code_open) + "(.*?)" + re.escape(self.code_close), re.DOTALL)


SPECIAL_PROTOCOL = ToolProtocol("special", CODE, END, RESULT, END, special=True)
FENCED_PROTOCOL = ToolProtocol("fenced", "```python\n", "```", "\n```output\n", "```\n", special=False,
                               system_prompt=FENCED_SYSTEM_PROMPT)


def has_tool_tokens(tokenizer: Any) -> bool:
    specials = getattr(tokenizer, "special_tokens", {}) or {}
    return all(t in specials for t in TOOL_TOKENS)


def protocol_for(tokenizer: Any) -> ToolProtocol:
    """Control tokens when the tokenizer has all three, else fenced plain-text blocks."""
    return SPECIAL_PROTOCOL if has_tool_tokens(tokenizer) else FENCED_PROTOCOL


def format_result(text: str) -> str:
    """A tool result as the model sees it: capped, ending with one newline."""
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"... [{len(text) - MAX_RESULT_CHARS} more characters]"
    return text if text.endswith("\n") else text + "\n"


@dataclass(frozen=True)
class Segment:
    kind: str
    text: str

    @property
    def trained(self) -> bool:
        return self.kind in MODEL_WRITTEN


def split_assistant(content: str, protocol: ToolProtocol) -> list[Segment]:
    """An assistant message's content as text and complete code blocks (an unclosed opener is text)."""
    out: list[Segment] = []
    pos = 0
    for match in protocol.block_re().finditer(content):
        if match.start() > pos:
            out.append(Segment(TEXT, content[pos:match.start()]))
        out += [Segment(CODE_OPEN, protocol.code_open), Segment(CODE_BODY, match.group(1)),
                Segment(CODE_CLOSE, protocol.code_close)]
        pos = match.end()
    if pos < len(content):
        out.append(Segment(TEXT, content[pos:]))
    return out


def result_segments(result: str, protocol: ToolProtocol) -> list[Segment]:
    return [Segment(RESULT_OPEN, protocol.result_open), Segment(RESULT_BODY, format_result(result)),
            Segment(RESULT_CLOSE, protocol.result_close)]


def merge_tool_turns(messages: list[dict], protocol: ToolProtocol) -> list[dict]:
    """Messages with each run ``assistant, tool, assistant, ...`` merged into one assistant message.

    A merged message keeps ``content`` (the turn as plain text) and gains ``segments``. Assistant
    messages outside such runs are left as they are, so a conversation without tool messages renders
    exactly as before."""
    out: list[dict] = []
    for message in messages:
        role = message["role"]
        if role == TOOL_ROLE:
            previous = out[-1]
            segments = previous.get("segments") or split_assistant(previous["content"], protocol)
            segments = segments + result_segments(message["content"], protocol)
            out[-1] = {"role": "assistant", "segments": segments, "content": "".join(s.text for s in segments)}
        elif role == "assistant" and out and out[-1].get("segments") is not None:
            segments = out[-1]["segments"] + split_assistant(message["content"], protocol)
            out[-1] = {"role": "assistant", "segments": segments, "content": "".join(s.text for s in segments)}
        else:
            out.append(dict(message))
    return out


def uses_tools(messages: list[dict]) -> bool:
    """True when a conversation holds a tool message or a code block in an assistant message."""
    return any(m.get("role") == TOOL_ROLE or (m.get("role") == "assistant" and CODE in m.get("content", ""))
               for m in messages)


# -- reading answers ------------------------------------------------------------------------------

_TOOL_BLOCKS_RE = re.compile(
    r"<\|code\|>.*?(?:<\|end\|>|\Z)|<\|result\|>.*?(?:<\|end\|>|\Z)|```[^\n`]*\n.*?(?:```|\Z)", re.DOTALL)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def final_answer(text: str) -> str:
    """What the model says outside its tool calls: code blocks and results removed, in either protocol."""
    return re.sub(r"[ \t]*\n\s*", "\n", _TOOL_BLOCKS_RE.sub("\n", text)).strip()


def extract_code(answer: str) -> str:
    """The Python in an answer: its first ```python (or untagged) fenced block, else a ``<|code|>``
    block, else the whole answer."""
    fences = [(lang.lower(), body) for lang, body in _FENCE_RE.findall(answer)]
    for lang, body in fences:
        if lang in ("python", "py", "python3"):
            return body.strip("\n")
    for lang, body in fences:
        if not lang:
            return body.strip("\n")
    match = SPECIAL_PROTOCOL.block_re().search(answer)
    if match:
        return match.group(1).strip("\n")
    return answer.strip("\n")
