"""Small models and tokenizers shared by the generation tests (no tests here)."""

from __future__ import annotations

from pathlib import Path

import torch

from hessgpt.chat import make_chat_template
from hessgpt.config import ModelConfig
from hessgpt.generate import Engine
from hessgpt.loading import LoadedModel, build_model
from hessgpt.tokenizer import Tokenizer, char_tokenizer, clean_text

EOS = 256
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'\"-\n"


class ByteTokenizer(Tokenizer):
    """One id per byte plus <|endoftext|>: multi-byte characters span several tokens."""

    kind = "test-bytes"

    def __init__(self) -> None:
        super().__init__(
            "bytes", [bytes([i]) for i in range(256)] + [b"<|endoftext|>"], {"<|endoftext|>": EOS}, eos_id=EOS
        )

    def encode(self, text: str) -> list[int]:
        return list(clean_text(text).encode("utf-8"))


def tiny_loaded(
    arch: str = "llama",
    scale: float = 1.0,
    seed: int = 0,
    block_size: int = 128,
    n_layer: int = 2,
    vocab_size: int | None = None,
) -> LoadedModel:
    """A random tiny model over the byte tokenizer. ``scale`` > 1 makes its choices decisive;
    ``vocab_size`` above the tokenizer's 257 ids pads the embedding and the output head."""
    tok = ByteTokenizer()
    torch.manual_seed(seed)
    cfg = ModelConfig(
        arch=arch,
        vocab_size=vocab_size or tok.vocab_size,
        n_layer=n_layer,
        n_head=4,
        n_kv_head=2 if arch == "llama" else None,
        n_embd=64,
        block_size=block_size,
        bias=arch == "gpt2",
        name=f"tiny-{arch}",
    )
    model = build_model(cfg, None, "test")
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() > 1:
                    p.mul_(scale)
    return LoadedModel(model, tok, make_chat_template(None, tok), cfg, {})


def make_checkpoint(path: Path, block_size: int = 256) -> Path:
    """A saved tiny chat model over a character tokenizer, for the CLI tests."""
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


def naive_greedy(
    loaded: LoadedModel, prompt: list[int], steps: int, stop: set[int] = frozenset()
) -> list[int]:
    """Full recompute of the whole sequence at every step, through the model's own forward."""
    ids = list(prompt)
    vocab = loaded.tokenizer.vocab_size
    with torch.no_grad():
        for _ in range(steps):
            logits, _ = loaded.model(torch.tensor([ids]))
            token = int(logits[0, -1, :vocab].argmax())
            if token in stop:
                break
            ids.append(token)
    return ids[len(prompt) :]


class TableModel:
    """A stand-in for the forward pass: the logits depend only on the last token, ``table[last]``."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table

    class Cache:
        def gather_slots(self, slots, parents, length) -> None:
            pass

    def new_cache(self, slots: int, max_len: int) -> TableModel.Cache:
        return TableModel.Cache()

    def forward(self, tokens, segments, cache, logit_rows=None):
        last = tokens if logit_rows is None else tokens[logit_rows]
        return self.table[last].float()


def table_engine(
    rows: dict[int, dict[int, float]], default: dict[int, float] | None = None, batch_size: int = 4
) -> Engine:
    """An engine over the byte tokenizer whose next-token probabilities are given by hand:
    ``rows[last_token] = {token: probability}``; unlisted tokens get probability 0."""
    loaded = tiny_loaded(block_size=1024, n_layer=1)
    engine = Engine(loaded, batch_size=batch_size)
    vocab = loaded.tokenizer.vocab_size
    table = torch.full((vocab, vocab), -1e9, dtype=torch.float64)
    for last in range(vocab):
        probs = rows.get(last, default or {EOS: 1.0})
        for token, p in probs.items():
            table[last, token] = torch.log(torch.tensor(p, dtype=torch.float64))
    engine.model = TableModel(table)
    return engine
