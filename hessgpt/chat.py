"""Chat templates: messages -> token ids, and the mask of the assistant's tokens.

Templates are jinja2 strings in the Hugging Face convention (``messages``, ``add_generation_prompt``,
``bos_token``, ``eos_token``). They come from untrusted files (a GGUF carries its own), so they run in
jinja2's immutable sandbox, under budgets (see :mod:`hessgpt.template_budget`): a render that runs too
long or builds too much text stops with an error naming the template's file.

Message contents never pass through the special-token parser: the template is rendered with a marker
in place of each content, the template's own text is tokenised with its special tokens, and each
content is tokenised as ordinary text. A user who types ``<|im_end|>`` gets those characters, not a
control token.

The code tool (``hessgpt.tools``) is the one exception, and only in the assistant's own turns: when the
tokenizer has the tool tokens, a complete ``<|code|>...<|end|>`` block in an assistant message becomes
control ids, and a ``tool`` message after it is rendered as ``<|result|>...<|end|>`` inside the same
assistant turn. User, system and tool contents stay plain text whatever they spell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateError

from hessgpt.errors import HessError
from hessgpt.template_budget import BudgetedEnvironment, render_within_budget
from hessgpt.tools import END, MARKERS, TOOL_ROLE, ToolProtocol, merge_tool_turns, protocol_for, uses_tools

# The default template of native HessGPT models (GPT-2 vocabulary, no extra tokens): plain role
# prefixes and <|endoftext|> closing each assistant turn, the format of the seed model's SFT data.
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}System: {{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Assistant: {{ message['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
DEFAULT_STOP_STRINGS = ("\nUser:", "\nSystem:")

ROLES = ("system", "user", "assistant", TOOL_ROLE)
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"
_MARK_RE = re.compile(f"{_MARK_OPEN}(\\d+){_MARK_CLOSE}")


def _raise(message: str) -> None:
    raise TemplateError(message)


_ENV = BudgetedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_ENV.globals["raise_exception"] = _raise


@dataclass
class Rendered:
    ids: list[int]
    assistant_mask: list[bool]  # True where the token belongs to an assistant turn (content + end of turn)
    text: str = ""


@dataclass
class ChatTemplate:
    source: str
    tokenizer: Any
    stop_strings: tuple[str, ...] = field(default_factory=tuple)
    origin: str = "chat template"  # the file the template came from, named in errors

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            raise HessError(f"{self.origin}: chat template must be a string, got {type(self.source).__name__}")
        try:
            self._template = _ENV.from_string(self.source)
        except (TemplateError, RecursionError, MemoryError) as exc:
            raise HessError(f"{self.origin}: chat template: invalid jinja2 ({str(exc)[:200]})") from None

    @property
    def tool_protocol(self) -> ToolProtocol:
        """How this model calls the code tool: control tokens if its tokenizer has them, else fences."""
        return protocol_for(self.tokenizer)

    @property
    def end_of_turn_ids(self) -> list[int]:
        """Token ids that end an assistant turn: the template's closing special token and EOS."""
        ids: list[int] = []
        specials = self.tokenizer.special_tokens
        tool_end = END if self.tool_protocol.special else None  # closes a tool block, not the turn
        for spelling in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>"):
            if spelling in specials and spelling in self.source and spelling != tool_end:
                ids.append(specials[spelling])
        eos = self.tokenizer.eos_id
        if eos is not None and eos not in ids:
            ids.append(eos)
        return ids

    def render_text(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The rendered prompt as text (for display; ``render`` is what the model sees)."""
        validate_messages(messages)
        return self._render(self._merged(messages), add_generation_prompt, markers=False)

    def _merged(self, messages: list[dict]) -> list[dict]:
        """Tool calls folded into their assistant turns; other conversations are left untouched."""
        protocol = self.tool_protocol
        if any(m["role"] == TOOL_ROLE for m in messages) or (protocol.special and uses_tools(messages)):
            return merge_tool_turns(messages, protocol)
        return messages

    def _content_pieces(self, message: dict) -> list[tuple[str, bool, bool]]:
        """(text, is_special, is_trained) pieces of one message's content."""
        assistant = message["role"] == "assistant"
        segments = message.get("segments")
        if segments is None:
            return [(message["content"], False, assistant)]
        special = self.tool_protocol.special
        return [(s.text, special and s.kind in MARKERS, assistant and s.trained) for s in segments if s.text]

    def _render(self, messages: list[dict], add_generation_prompt: bool, markers: bool) -> str:
        shown = [
            {"role": m["role"], "content": f"{_MARK_OPEN}{i}{_MARK_CLOSE}" if markers else m["content"]}
            for i, m in enumerate(messages)
        ]
        specials = self.tokenizer.special_tokens
        eos = self.tokenizer.eos_id
        bos = self.tokenizer.bos_id
        names = {v: k for k, v in specials.items()}
        variables = {"messages": shown, "add_generation_prompt": add_generation_prompt,
                     "eos_token": names.get(eos, ""), "bos_token": names.get(bos, "")}
        extra = sum(len(m["content"]) for m in messages)
        return render_within_budget(self._template, variables, self.origin, extra_chars=extra)

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> Rendered:
        validate_messages(messages)
        messages = self._merged(messages)
        text = self._render(messages, add_generation_prompt, markers=True)
        # Split into pieces: (text, is_special, is_assistant_content).
        pieces: list[tuple[str, bool, bool]] = []
        pos = 0
        for match in _MARK_RE.finditer(text):
            pieces.extend(self._template_pieces(text[pos:match.start()]))
            index = int(match.group(1))
            if index >= len(messages):
                raise HessError(f"{self.origin}: chat template produced an unknown message marker")
            pieces.extend(self._content_pieces(messages[index]))
            pos = match.end()
        pieces.extend(self._template_pieces(text[pos:]))

        ids: list[int] = []
        mask: list[bool] = []
        specials = self.tokenizer.special_tokens
        ends = set(self.end_of_turn_ids)
        run: list[tuple[str, bool]] = []
        after_assistant = False
        for piece, is_special, is_assistant in pieces + [("", True, False)]:
            if not is_special:
                run.append((piece, is_assistant))
                if piece:
                    after_assistant = is_assistant
                continue
            before = len(ids)
            self._encode_run(run, ids, mask)
            run = []
            if piece:
                token = specials[piece]
                if is_assistant and len(ids) > before and not mask[-1] and not self.tokenizer.decode(ids[-1:]).strip():
                    # The space between "Assistant:" and a tool call is the model's first token.
                    mask[-1] = True
                ids.append(token)
                # The end-of-turn token right after an assistant's words belongs to its turn,
                # so supervised fine-tuning teaches the model to stop. A tool marker the model
                # writes itself (<|code|>, <|end|>) is trained; one the router writes is not.
                mask.append(is_assistant or (after_assistant and token in ends))
                after_assistant = False
        plain = _MARK_RE.sub(lambda m: messages[int(m.group(1))]["content"], text)
        return Rendered(ids, mask, plain)

    def _template_pieces(self, text: str) -> list[tuple[str, bool, bool]]:
        if not text:
            return []
        pattern = self._special_pattern()
        if pattern is None:
            return [(text, False, False)]
        out: list[tuple[str, bool, bool]] = []
        pos = 0
        for match in pattern.finditer(text):
            if match.start() > pos:
                out.append((text[pos:match.start()], False, False))
            out.append((match.group(0), True, False))
            pos = match.end()
        if pos < len(text):
            out.append((text[pos:], False, False))
        return out

    def _special_pattern(self) -> re.Pattern | None:
        if not hasattr(self, "_specials_re"):
            spellings = sorted(self.tokenizer.special_tokens, key=len, reverse=True)
            self._specials_re = re.compile("|".join(map(re.escape, spellings))) if spellings else None
        return self._specials_re

    def _encode_run(self, run: list[tuple[str, bool]], ids: list[int], mask: list[bool]) -> None:
        """Encode adjacent ordinary text as one string (so tokens form as they would in plain text)
        and mark the tokens that overlap an assistant's content, by byte offsets."""
        text = "".join(piece for piece, _ in run)
        if not text:
            return
        spans = []
        offset = 0
        for piece, is_assistant in run:
            size = len(piece.encode("utf-8", "surrogatepass"))
            if is_assistant and size:
                spans.append((offset, offset + size))
            offset += size
        position = 0
        for token in self.tokenizer.encode(text):
            end = position + len(self.tokenizer.token_bytes(token))
            ids.append(token)
            mask.append(any(start < end and position < stop for start, stop in spans))
            position = end


def validate_messages(messages: Any, source: str = "messages") -> None:
    if not isinstance(messages, list) or not messages:
        raise HessError(f"{source}: expected a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise HessError(f"{source}[{i}]: expected an object with 'role' and 'content'")
        if message.get("role") not in ROLES:
            raise HessError(f"{source}[{i}].role: must be one of {', '.join(ROLES)}, got {message.get('role')!r}")
        if not isinstance(message.get("content"), str):
            raise HessError(f"{source}[{i}].content: must be a string")
        if message["role"] == TOOL_ROLE and (i == 0 or messages[i - 1].get("role") != "assistant"):
            raise HessError(f"{source}[{i}].role: a tool message (a code result) must follow an assistant message")


def default_chat_template(tokenizer: Any) -> ChatTemplate:
    return ChatTemplate(DEFAULT_TEMPLATE, tokenizer, DEFAULT_STOP_STRINGS)


def make_chat_template(source: str | None, tokenizer: Any, origin: str = "chat template") -> ChatTemplate:
    """A model's own template when it has one, else the documented native default.

    A file saved with the default template stores its text: read back, it is the default again, stop
    strings included (``\nUser:`` ends an answer of a model that does not emit its end token)."""
    if source and source != DEFAULT_TEMPLATE:
        return ChatTemplate(source, tokenizer, origin=origin)
    return default_chat_template(tokenizer)
