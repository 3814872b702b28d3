"""One tokenizer interface for every model the bench loads.

Kinds:
- ``tiktoken``: GPT-2's r50k BPE through tiktoken (``gpt2_tokenizer()``), stored in a checkpoint by name.
- ``bpe``: a byte-level BPE carried in full -- trained on the user's text (``bpe_train.train_bpe``) or imported
  from a GGUF (``gguf_tokenizer``); encoded by a tiktoken ``Encoding`` built from its ranks.
- ``char`` / ``word``: character- and word-level vocabularies built from a corpus, with ``<unk>``.

Every kind keeps the bytes of each id, so ``decode`` and ``token_bytes`` never depend on tiktoken
and never raise on an id in range. ``encode`` treats a special token's spelling as plain text;
only ``encode_with_specials`` (for chat templates) turns spellings into control ids.

``to_dict()`` is plain JSON (no code, no pickle) and ``tokenizer_from_dict`` rebuilds the tokenizer
from it, so a native checkpoint carries its tokenizer without the file it came from.
"""

from __future__ import annotations

import base64
import json
import operator
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from hessgpt.errors import HessError

FORMAT = "hessgpt.tokenizer"
FORMAT_VERSION = 1
ENDOFTEXT = "<|endoftext|>"
UNK = "<unk>"

# tiktoken's r50k/GPT-2 pre-tokenizer (possessive form, equivalent to the original GPT-2 regex).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


def _byte_level_spelling() -> list[str]:
    """GPT-2's printable character for each byte (the alphabet byte-level BPE files are written in)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    spelling = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in spelling:
            spelling[b] = chr(256 + extra)
            extra += 1
    return [spelling[b] for b in range(256)]


BYTE_SPELLING = _byte_level_spelling()


# Pre-tokenizers by name. ``smollm`` reproduces Hugging Face's Sequence[Digits(individual_digits=True),
# ByteLevel] (and llama.cpp's "smollm" pre-type) in one regex: every number character is its own
# piece, with no space glued to it, and a whitespace run directly before a digit stays whole because
# the digit ends a segment (the lookahead treats a digit like the end of the text).
SMOLLM_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++|\p{N}| ?[^\s\p{L}\p{N}]++|\s+(?![^\s\p{N}])|\s"""
PRE_TOKENIZERS = {"gpt2": GPT2_PATTERN, "smollm": SMOLLM_PATTERN}
# llama.cpp's names (tokenizer.ggml.pre) for which llama.cpp splits text with the same regexes.
GGUF_PRE_ALIASES = {
    "gpt-2": "gpt2",
    "gpt2": "gpt2",
    "mpt": "gpt2",
    "olmo": "gpt2",
    "jais": "gpt2",
    "smollm": "smollm",
    "starcoder": "smollm",
    "refact": "smollm",
    "command-r": "smollm",
    "codeshell": "smollm",
    "exaone": "smollm",
    "minerva-7b": "smollm",
}

# tiktoken's regex engine overflows its backtracking stack on whitespace runs of a few hundred
# thousand characters (a panic, not an exception). Longer runs are cut into pieces of this size
# and encoded one piece at a time: only such pathological text tokenizes differently.
MAX_SPACE_RUN = 10_000
_LONG_SPACE_RUN = re.compile(rf"\s{{{MAX_SPACE_RUN},}}")

WORD_PATTERN = r"\w+|[^\w\s]|\s+"  # words, single punctuation marks, whitespace runs (seed 004 style)
_GGUF_CONTROL = 3  # tokenizer.ggml.token_type value of control tokens


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (they cannot be encoded as UTF-8)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _specials_regex(spellings: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(spellings), key=len, reverse=True)  # longest first: "<|a|>x" before "<|a|>"
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


class Tokenizer:
    """Base class: ids 0..vocab_size-1, each with its bytes; special tokens are control ids."""

    kind: str = ""
    name: str = ""
    vocab_size: int = 0
    special_tokens: dict[str, int]
    eos_id: int | None = None
    bos_id: int | None = None
    pad_id: int | None = None

    def __init__(
        self,
        name: str,
        id_bytes: list[bytes],
        special_tokens: dict[str, int],
        eos_id: int | None = None,
        bos_id: int | None = None,
        pad_id: int | None = None,
    ) -> None:
        self.name = name
        self._id_bytes = id_bytes
        self.vocab_size = len(id_bytes)
        self.special_tokens = dict(special_tokens)
        self._special_ids = frozenset(self.special_tokens.values())
        self._specials_re = _specials_regex(self.special_tokens)
        self.eos_id, self.bos_id, self.pad_id = eos_id, bos_id, pad_id

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Ids of ordinary text: special spellings in it are plain text, never control ids."""
        raise NotImplementedError

    def encode_with_specials(self, text: str) -> list[int]:
        """Ids of template text: known special spellings become their control ids."""
        text = clean_text(text)
        if self._specials_re is None:
            return self.encode(text)
        ids: list[int] = []
        pos = 0
        for match in self._specials_re.finditer(text):
            if match.start() > pos:
                ids.extend(self.encode(text[pos : match.start()]))
            ids.append(self.special_tokens[match.group(0)])
            pos = match.end()
        if pos < len(text):
            ids.extend(self.encode(text[pos:]))
        return ids

    # -- decoding ---------------------------------------------------------------------------
    def _checked_ids(self, ids: Sequence[int]) -> list[int]:
        try:
            out = [operator.index(i) for i in ids]
        except TypeError:
            bad = next(i for i in ids if not hasattr(i, "__index__"))
            raise HessError(f"token id {bad!r}: not an integer (tokenizer {self.name})") from None
        if out and (min(out) < 0 or max(out) >= self.vocab_size):
            bad = next(i for i in out if not 0 <= i < self.vocab_size)
            raise HessError(
                f"token id {bad}: out of range for tokenizer {self.name} (0..{self.vocab_size - 1})"
            )
        return out

    def token_bytes(self, id: int) -> bytes:
        """Raw bytes of one token (a special's spelling in UTF-8)."""
        return self._id_bytes[self._checked_ids([id])[0]]

    def decode_bytes(self, ids: Sequence[int], skip_special: bool = False) -> bytes:
        table, specials = self._id_bytes, self._special_ids
        checked = self._checked_ids(ids)
        if skip_special:
            return b"".join(table[i] for i in checked if i not in specials)
        return b"".join(table[i] for i in checked)

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 (a split character) become U+FFFD."""
        return self.decode_bytes(ids, skip_special).decode("utf-8", "replace")

    def is_special(self, id: int) -> bool:
        return id in self._special_ids

    # -- storage ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def _header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "name": self.name,
            "vocab_size": self.vocab_size,
            "special_tokens": dict(self.special_tokens),
            "eos_id": self.eos_id,
            "bos_id": self.bos_id,
            "pad_id": self.pad_id,
        }

    def save(self, path: str | Path) -> None:
        """Write ``to_dict()`` as JSON (temporary file + rename, so a crash leaves no half file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            raise HessError(f"{path}: cannot write the tokenizer ({exc.strerror or exc})") from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} kind={self.kind} vocab_size={self.vocab_size}>"


# ---------------------------------------------------------------------------------------------
# BPE through tiktoken
# ---------------------------------------------------------------------------------------------


class BPETokenizer(Tokenizer):
    """Byte-level BPE encoded by tiktoken, whatever the ids of the model it belongs to.

    tiktoken merges by token rank, so its ranks must follow the merge order. When the model's own
    ids already do (GPT-2, our trained BPE, SmolLM2) the rank is the id; otherwise tiktoken gets
    ranks in merge order and a table maps them back to ids. Single bytes missing from the vocabulary
    (SmolLM2 lacks 21, e.g. 0x04) are dropped inside each pre-token before merging, as Hugging Face's
    BPE does: such text takes a slower Python path so tiktoken never sees those bytes.
    """

    kind = "bpe"

    def __init__(
        self,
        name: str,
        id_bytes: list[bytes],
        special_tokens: dict[str, int],
        pre: str,
        merge_order: list[int] | None = None,
        eos_id: int | None = None,
        bos_id: int | None = None,
        pad_id: int | None = None,
        kind: str = "bpe",
        encoding: Any = None,
    ) -> None:
        super().__init__(name, id_bytes, special_tokens, eos_id, bos_id, pad_id)
        import tiktoken

        self.kind = kind
        self.pre = pre
        if pre not in PRE_TOKENIZERS:
            raise HessError(f"pre-tokenizer {pre!r}: unknown (known: {', '.join(sorted(PRE_TOKENIZERS))})")
        self.pattern = PRE_TOKENIZERS[pre]
        specials = self._special_ids
        if merge_order is None:
            merge_order = [i for i in range(self.vocab_size) if i not in specials]
        self.merge_order = merge_order
        self._identity = all(x < y for x, y in zip(merge_order, merge_order[1:], strict=False))
        offset = 0 if self._identity else self.vocab_size + 256  # above every id and dummy byte rank
        ranks = {id_bytes[i]: (i if self._identity else offset + k) for k, i in enumerate(merge_order)}
        present = {token[0] for token in ranks if len(token) == 1}
        self._dropped = bytes(b for b in range(256) if b not in present)
        for b in self._dropped:  # ranks tiktoken can never reach (we strip these bytes first)
            ranks[bytes([b])] = self.vocab_size + b
        if self._identity:
            self._rank_to_id = None
        else:
            table = list(range(offset + len(merge_order)))
            for k, i in enumerate(merge_order):
                table[offset + k] = i
            self._rank_to_id = table
        self._enc = encoding or tiktoken.Encoding(
            name=name, pat_str=self.pattern, mergeable_ranks=ranks, special_tokens=dict(self.special_tokens)
        )
        self._pieces_re = None

    @property
    def tiktoken_encoding(self) -> Any:
        """The underlying ``tiktoken.Encoding`` (its ids are ranks, equal to ours when ``merge_order`` is monotone)."""
        return self._enc

    def _to_ids(self, ranks: list[int]) -> list[int]:
        if self._rank_to_id is None:
            return ranks
        table = self._rank_to_id
        return [table[r] for r in ranks]

    def _has_dropped(self, text: str) -> bool:
        if not self._dropped:
            return False
        data = text.encode("utf-8")
        return len(data.translate(None, self._dropped)) != len(data)

    def _encode_dropping(self, text: str) -> list[int]:
        """Slow path: pre-tokenize in Python, strip bytes the vocabulary lacks, BPE each piece."""
        import regex

        if self._pieces_re is None:
            self._pieces_re = regex.compile(self.pattern)
        out: list[int] = []
        for piece in self._pieces_re.findall(text):
            data = piece.encode("utf-8").translate(None, self._dropped)
            if data:
                out.extend(self._enc._encode_single_piece(data))
        return self._to_ids(out)

    def _split_long_runs(self, text: str) -> list[str] | None:
        """``text`` cut inside whitespace runs longer than MAX_SPACE_RUN, or None when there are none."""
        if len(text) < MAX_SPACE_RUN:
            return None
        cuts = []
        for match in _LONG_SPACE_RUN.finditer(text):
            cuts.extend(range(match.start() + MAX_SPACE_RUN, match.end(), MAX_SPACE_RUN))
        if not cuts:
            return None
        bounds = [0, *cuts, len(text)]
        return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]

    def encode(self, text: str) -> list[int]:
        text = clean_text(text)
        pieces = self._split_long_runs(text)
        if pieces is not None:
            return [i for piece in pieces for i in self.encode(piece)]
        if self._has_dropped(text):
            return self._encode_dropping(text)
        return self._to_ids(self._enc.encode_ordinary(text))

    def encode_with_specials(self, text: str) -> list[int]:
        text = clean_text(text)
        pieces = self._split_long_runs(text)
        if pieces is not None:
            return [i for piece in pieces for i in self.encode_with_specials(piece)]
        if self._has_dropped(text):
            return super().encode_with_specials(text)
        return self._to_ids(self._enc.encode(text, allowed_special="all", disallowed_special=()))

    def to_dict(self) -> dict[str, Any]:
        spec = self._header()
        if self.kind == "tiktoken":
            return spec  # a named encoding: rebuilt from its name, not stored
        specials = self._special_ids
        spec["pre"] = self.pre
        spec["tokens"] = [
            None if i in specials else base64.b64encode(token).decode("ascii")
            for i, token in enumerate(self._id_bytes)
        ]
        default_order = [i for i in range(self.vocab_size) if i not in specials]
        spec["merge_order"] = None if self.merge_order == default_order else list(self.merge_order)
        return spec

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a tokenizer JSON written by ``save`` (any kind)."""
        return load_tokenizer(path)


def load_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HessError(f"{path}: tokenizer file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HessError(f"{path}: not a tokenizer JSON file ({exc})") from None
    return tokenizer_from_dict(spec, source=str(path))


# ---------------------------------------------------------------------------------------------
# GPT-2 (r50k) through tiktoken, offline
# ---------------------------------------------------------------------------------------------

_GPT2_CACHE: dict[str, BPETokenizer] = {}


def gpt2_tokenizer() -> Tokenizer:
    """GPT-2's BPE (tiktoken r50k_base, identical ranks to "gpt2"): 50,257 ids, eos 50256.

    Never downloads: the ranks must already be in tiktoken's cache (``python -m hessgpt.assets gpt2``).
    """
    if "gpt2" in _GPT2_CACHE:
        return _GPT2_CACHE["gpt2"]
    from hessgpt import assets

    path = assets.gpt2_bpe_path()  # also pins TIKTOKEN_CACHE_DIR before tiktoken reads it
    if not assets.gpt2_bpe_ready():
        state = "is corrupted" if path.exists() else "is not installed"
        raise HessError(f"{path}: the GPT-2 BPE ranks {state}; {assets.HOW_TO_GET_GPT2}")
    import tiktoken

    # tiktoken's "gpt2" reads two other files (encoder.json, vocab.bpe); r50k_base is the same BPE
    # (same ranks, regex and <|endoftext|>) from the one file we install.
    enc = tiktoken.get_encoding("r50k_base")
    n = enc.n_vocab
    id_bytes = [enc.decode_single_token_bytes(i) for i in range(n)]
    tok = BPETokenizer(
        "gpt2",
        id_bytes,
        {ENDOFTEXT: enc.eot_token},
        pre="gpt2",
        eos_id=enc.eot_token,
        kind="tiktoken",
        encoding=enc,
    )
    _GPT2_CACHE["gpt2"] = tok
    return tok


# ---------------------------------------------------------------------------------------------
# BPE from a GGUF file
# ---------------------------------------------------------------------------------------------


_UNICODE_TO_BYTE = {char: b for b, char in enumerate(BYTE_SPELLING)}
# str.translate table: alphabet characters -> the byte they spell (as a latin-1 character), every
# other character below U+0144 -> U+FFFF, which latin-1 cannot encode (so the fallback kicks in).
_SPELLING_TABLE = {c: 0xFFFF for c in range(0x144)} | {ord(ch): b for ch, b in _UNICODE_TO_BYTE.items()}


def _spelled_to_bytes(token: str) -> bytes:
    """Bytes of a byte-level token; a token outside that alphabet is taken as plain UTF-8 text."""
    try:
        return token.translate(_SPELLING_TABLE).encode("latin-1")
    except UnicodeEncodeError:
        return token.encode("utf-8")


def _gguf_field(reader: Any, key: str, source: str, required: bool = True) -> Any:
    from gguf import GGUFValueType

    field = reader.fields.get(key)
    if field is None:
        if required:
            raise HessError(f"{source}: GGUF field '{key}' is missing")
        return None
    try:
        if field.types[0] == GGUFValueType.ARRAY:
            if field.types[-1] == GGUFValueType.STRING:
                return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
            return [int(field.parts[i][0]) for i in field.data]
        if field.types[0] == GGUFValueType.STRING:
            return bytes(field.parts[field.data[0]]).decode("utf-8")
        return field.parts[field.data[0]][0].item()
    except (UnicodeDecodeError, IndexError, ValueError) as exc:
        raise HessError(f"{source}: GGUF field '{key}' is unreadable ({exc})") from None


def gguf_tokenizer(reader_or_path: Any, pre: str | None = None) -> Tokenizer:
    """The byte-level BPE stored in a GGUF (``tokenizer.ggml.*``), yielding the model's own ids.

    ``pre`` overrides the pre-tokenizer named by ``tokenizer.ggml.pre`` (e.g. ``"gpt2"`` to
    reproduce a converter that ignores it).
    """
    if isinstance(reader_or_path, (str, os.PathLike)):
        from gguf import GGUFReader

        source = str(reader_or_path)
        try:
            reader = GGUFReader(source)
        except FileNotFoundError:
            raise HessError(f"{source}: GGUF file not found") from None
        except Exception as exc:  # the gguf package raises plain ValueError/struct errors on bad files
            raise HessError(
                f"{source}: not a readable GGUF file ({str(exc).splitlines()[0][:160]})"
            ) from None
    else:
        reader = reader_or_path
        source = str(getattr(reader, "path", "GGUF"))

    model = _gguf_field(reader, "tokenizer.ggml.model", source)
    if model != "gpt2":
        raise HessError(
            f"{source}: tokenizer.ggml.model {model!r} is not supported (only 'gpt2', byte-level BPE)"
        )
    # Without the field, use GPT-2's regex, as transformers' GGUF converter does.
    gguf_pre = _gguf_field(reader, "tokenizer.ggml.pre", source, required=False) or "gpt2"
    if pre is None:
        if gguf_pre not in GGUF_PRE_ALIASES:
            raise HessError(
                f"{source}: tokenizer.ggml.pre {gguf_pre!r} is not supported "
                f"(supported: {', '.join(sorted(GGUF_PRE_ALIASES))})"
            )
        pre = GGUF_PRE_ALIASES[gguf_pre]
    tokens = _gguf_field(reader, "tokenizer.ggml.tokens", source)
    merges = _gguf_field(reader, "tokenizer.ggml.merges", source)
    types = _gguf_field(reader, "tokenizer.ggml.token_type", source, required=False) or [1] * len(tokens)
    if len(types) != len(tokens):
        raise HessError(
            f"{source}: tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} tokens"
        )

    special_tokens = {
        t: i for i, (t, kind) in enumerate(zip(tokens, types, strict=True)) if kind == _GGUF_CONTROL
    }
    id_bytes = [
        t.encode("utf-8") if kind == _GGUF_CONTROL else _spelled_to_bytes(t)
        for t, kind in zip(tokens, types, strict=True)
    ]
    ids_by_spelling = {t: i for i, t in enumerate(tokens) if types[i] != _GGUF_CONTROL}
    # tiktoken ranks: every single byte, then each merge's result in merge order. Other tokens
    # (never produced by a merge) are decode-only, as in the reference BPE.
    control_ids = set(special_tokens.values())
    order: list[int] = []
    seen_bytes: set[bytes] = set()
    for i, token in enumerate(id_bytes):
        if len(token) == 1 and i not in control_ids and token not in seen_bytes:
            seen_bytes.add(token)
            order.append(i)
    for k, merge in enumerate(merges):
        left, sep, right = merge.partition(" ")
        joined = ids_by_spelling.get(left + right)
        if not sep or joined is None:
            raise HessError(
                f"{source}: tokenizer.ggml.merges[{k}] {merge!r} does not make a token of the vocabulary"
            )
        if id_bytes[joined] not in seen_bytes:  # a later merge to the same bytes adds nothing for tiktoken
            seen_bytes.add(id_bytes[joined])
            order.append(joined)

    def special_id(key: str) -> int | None:
        value = _gguf_field(reader, f"tokenizer.ggml.{key}", source, required=False)
        if value is None:
            return None
        if not 0 <= int(value) < len(tokens):
            raise HessError(f"{source}: tokenizer.ggml.{key} {value} is outside the vocabulary")
        return int(value)

    return BPETokenizer(
        f"gguf:{gguf_pre}",
        id_bytes,
        special_tokens,
        pre=pre,
        merge_order=order,
        eos_id=special_id("eos_token_id"),
        bos_id=special_id("bos_token_id"),
        pad_id=special_id("padding_token_id"),
    )


# ---------------------------------------------------------------------------------------------
# BPE trained on the user's text
# ---------------------------------------------------------------------------------------------


def read_texts(text_or_paths: Any) -> list[str]:
    """A ``str`` is the text itself; a path, or a list/tuple of paths (str or Path), names UTF-8 files."""
    if isinstance(text_or_paths, str):
        return [text_or_paths]
    paths = [text_or_paths] if isinstance(text_or_paths, os.PathLike) else list(text_or_paths)
    texts = []
    for p in paths:
        path = Path(p)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise HessError(f"{path}: file not found") from None
        except OSError as exc:
            raise HessError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise HessError(
                f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8"
            ) from None
    return texts


# ---------------------------------------------------------------------------------------------
# Character and word level (seed 004)
# ---------------------------------------------------------------------------------------------


class _VocabTokenizer(Tokenizer):
    """Shared part of char and word tokenizers: a list of units, then <unk> and specials above."""

    def __init__(self, name: str, units: list[str], specials: Sequence[str]) -> None:
        spellings = [UNK] + [s for s in dict.fromkeys(specials) if s != UNK]
        id_bytes = [u.encode("utf-8") for u in units] + [s.encode("utf-8") for s in spellings]
        special_map = {s: len(units) + k for k, s in enumerate(spellings)}
        super().__init__(name, id_bytes, special_map, eos_id=special_map.get(ENDOFTEXT))
        self.units = units
        self.unk_id = special_map[UNK]
        self._unit_ids = {u: i for i, u in enumerate(units)}

    def _split(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        get, unk = self._unit_ids.get, self.unk_id
        return [get(u, unk) for u in self._split(clean_text(text))]

    def to_dict(self) -> dict[str, Any]:
        spec = self._header()
        spec["units"] = list(self.units)
        return spec


class CharTokenizer(_VocabTokenizer):
    kind = "char"

    def _split(self, text: str) -> list[str]:
        return list(text)


class WordTokenizer(_VocabTokenizer):
    kind = "word"
    _word_re = re.compile(WORD_PATTERN)

    def _split(self, text: str) -> list[str]:
        return self._word_re.findall(text)


def _corpus_text(text: Any) -> str:
    return "".join(clean_text(t) for t in read_texts(text))


def char_tokenizer(text: Any, special_tokens: Sequence[str] = (ENDOFTEXT,)) -> CharTokenizer:
    """One id per distinct character of the corpus (sorted), then <unk> and ``special_tokens``."""
    corpus = _corpus_text(text)
    return CharTokenizer("char", sorted(set(corpus)), special_tokens)


def word_tokenizer(
    text: Any, min_freq: int = 1, special_tokens: Sequence[str] = (ENDOFTEXT,), max_words: int | None = None
) -> WordTokenizer:
    """One id per word, punctuation mark or whitespace run seen ``min_freq`` times (most frequent
    first, ties alphabetical), then <unk> and ``special_tokens``. Rarer units encode as <unk>."""
    counts = Counter(WordTokenizer._word_re.findall(_corpus_text(text)))
    units = sorted((u for u, c in counts.items() if c >= min_freq), key=lambda u: (-counts[u], u))
    if max_words is not None:
        units = units[:max_words]
    return WordTokenizer("word", units, special_tokens)


# ---------------------------------------------------------------------------------------------
# Rebuilding from a spec
# ---------------------------------------------------------------------------------------------


def tokenizer_from_dict(d: dict, source: str = "checkpoint") -> Tokenizer:
    """Rebuild a tokenizer from ``to_dict()`` output; a bad spec is a HessError naming source and field."""

    def bad(field: str, what: str) -> HessError:
        return HessError(f"{source}: tokenizer field '{field}' {what}")

    if not isinstance(d, dict):
        raise HessError(f"{source}: tokenizer spec must be an object, got {type(d).__name__}")
    if d.get("format", FORMAT) != FORMAT:
        raise bad("format", f"is {d.get('format')!r}, expected {FORMAT!r}")
    version = d.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise bad("version", f"is {version!r}; this hessgpt reads version {FORMAT_VERSION}")
    kind = d.get("kind")
    if kind not in ("tiktoken", "bpe", "char", "word"):
        raise bad("kind", f"is {kind!r}, expected one of tiktoken, bpe, char, word")
    name = d.get("name", kind)
    if not isinstance(name, str):
        raise bad("name", "must be a string")

    if kind == "tiktoken":
        if name not in ("gpt2", "r50k_base"):
            raise bad("name", f"is {name!r}; the only tiktoken encoding available offline is 'gpt2'")
        return gpt2_tokenizer()

    specials = d.get("special_tokens", {})
    if not isinstance(specials, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in specials.items()
    ):
        raise bad("special_tokens", "must map spellings to integer ids")

    if kind in ("char", "word"):
        units = d.get("units")
        if not isinstance(units, list) or not all(isinstance(u, str) and u for u in units):
            raise bad("units", "must be a list of non-empty strings")
        if len(set(units)) != len(units):
            raise bad("units", "has duplicates")
        spellings = sorted(specials, key=specials.__getitem__)
        expected = list(range(len(units), len(units) + len(specials)))
        if not spellings or spellings[0] != UNK or [specials[s] for s in spellings] != expected:
            raise bad("special_tokens", f"must start with {UNK!r} and take the ids right after the units")
        cls = CharTokenizer if kind == "char" else WordTokenizer
        tok = cls(name, units, spellings[1:])
        _check_size(tok, d, bad)
        return tok

    # kind == "bpe"
    pre = d.get("pre")
    if pre not in PRE_TOKENIZERS:
        raise bad("pre", f"is {pre!r}, expected one of {', '.join(sorted(PRE_TOKENIZERS))}")
    tokens = d.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        raise bad("tokens", "must be a non-empty list")
    special_ids = set(specials.values())
    if any(not 0 <= v < len(tokens) for v in special_ids) or len(special_ids) != len(specials):
        raise bad("special_tokens", f"ids must be distinct and inside 0..{len(tokens) - 1}")
    id_bytes: list[bytes] = []
    by_id = {v: k for k, v in specials.items()}
    for i, item in enumerate(tokens):
        if i in special_ids:
            if item is not None:
                raise bad(f"tokens[{i}]", "must be null: the id belongs to a special token")
            id_bytes.append(by_id[i].encode("utf-8"))
            continue
        if not isinstance(item, str):
            raise bad(f"tokens[{i}]", "must be a base64 string")
        try:
            data = base64.b64decode(item, validate=True)
        except ValueError:
            raise bad(f"tokens[{i}]", "is not valid base64") from None
        if not data:
            raise bad(f"tokens[{i}]", "is empty")
        id_bytes.append(data)
    order = d.get("merge_order")
    if order is not None:
        if not isinstance(order, list) or not all(type(i) is int and 0 <= i < len(tokens) for i in order):
            raise bad("merge_order", "must be a list of ids of the vocabulary")
        if len(set(order)) != len(order) or special_ids & set(order):
            raise bad("merge_order", "must list distinct non-special ids")
    ranked = order if order is not None else [i for i in range(len(tokens)) if i not in special_ids]
    if len({id_bytes[i] for i in ranked}) != len(ranked):
        raise bad("tokens", "has two mergeable tokens with the same bytes")
    for field in ("eos_id", "bos_id", "pad_id"):
        value = d.get(field)
        if value is not None and (type(value) is not int or not 0 <= value < len(tokens)):
            raise bad(field, f"must be null or an id in 0..{len(tokens) - 1}")
    tok = BPETokenizer(
        name,
        id_bytes,
        specials,
        pre=pre,
        merge_order=order,
        eos_id=d.get("eos_id"),
        bos_id=d.get("bos_id"),
        pad_id=d.get("pad_id"),
    )
    _check_size(tok, d, bad)
    return tok


def _check_size(tok: Tokenizer, d: dict, bad: Callable[[str, str], HessError]) -> None:
    size = d.get("vocab_size", tok.vocab_size)
    if size != tok.vocab_size:
        raise bad("vocab_size", f"is {size!r} but the spec holds {tok.vocab_size} ids")
