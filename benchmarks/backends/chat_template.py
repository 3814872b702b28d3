"""The served model's chat template, to render a conversation as text for ``/v1/completions``.

``--chat-template`` takes a Hugging Face ``tokenizer_config.json`` (its ``chat_template``,
``bos_token`` and ``eos_token``, the files vLLM serves from), a jinja template file, or a checkpoint
``hessgpt.load_model`` can open (its own template). Templates run in ``hessgpt.chat``'s sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hessgpt.chat import ChatTemplate
from hessgpt.errors import HessError
from hessgpt.safe_io import loads_json

MAX_TEMPLATE_BYTES = 16 * 1024 * 1024
TEMPLATE_SUFFIXES = (".jinja", ".j2", ".jinja2", ".tmpl", ".txt")


@dataclass
class TemplateTokens:
    """What rendering text needs from a tokenizer: the spellings of its BOS and EOS tokens."""

    bos: str | None = None
    eos: str | None = None
    special_tokens: dict[str, int] = field(init=False)
    bos_id: int | None = field(init=False)
    eos_id: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.special_tokens = {}
        self.bos_id = self.eos_id = None
        if self.bos:
            self.special_tokens[self.bos], self.bos_id = 0, 0
        if self.eos:
            self.eos_id = self.special_tokens.setdefault(self.eos, 1)


def load_chat_template(spec: str) -> tuple[ChatTemplate, bool]:
    """The template, and whether it comes with the model's tokenizer (a checkpoint's does)."""
    path = Path(spec)
    if path.suffix == ".json" or path.suffix in TEMPLATE_SUFFIXES:
        if not path.is_file():
            raise HessError(f"--chat-template: {path}: no such file")
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            raise HessError(f"--chat-template: {path}: larger than {MAX_TEMPLATE_BYTES // 2**20} MB")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise HessError(f"--chat-template: {path}: not UTF-8 text") from None
        if path.suffix != ".json":
            return ChatTemplate(text, TemplateTokens(), origin=f"--chat-template: {path}"), False
        return _from_tokenizer_config(text, path), False
    from hessgpt.loading import load_model

    return load_model(spec).chat_template, True


def _from_tokenizer_config(text: str, path: Path) -> ChatTemplate:
    config = loads_json(text, f"--chat-template: {path}")
    if not isinstance(config, dict):
        raise HessError(f"--chat-template: {path}: expected a JSON object (a tokenizer_config.json)")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: take the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    if not isinstance(template, str) or not template:
        raise HessError(f"--chat-template: {path}: field 'chat_template' is missing or not a template string")
    return ChatTemplate(template, TemplateTokens(_spelling(config.get("bos_token")),
                                                 _spelling(config.get("eos_token"))),
                        origin=f"--chat-template: {path}")


def _spelling(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or an object with ``content``."""
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) and token else None
