"""Tokenizers: GPT-2 offline, the SmolLM2 GGUF BPE against transformers, char/word, specs, robustness."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile

import pytest

from hessgpt import assets
from hessgpt.bpe_train import train_bpe
from hessgpt.errors import HessError
from hessgpt.tokenizer import (
    ENDOFTEXT,
    UNK,
    BPETokenizer,
    char_tokenizer,
    gguf_tokenizer,
    gpt2_tokenizer,
    tokenizer_from_dict,
    word_tokenizer,
)

VARIED_TEXT = (
    "Hello world! The quick brown fox jumps over the lazy dog.\n"
    "Le cœur a ses raisons que la raison ne connaît point. À Noël, l'élève était déjà là — «très» ému.\n"
    "def add(a, b):\n\treturn a + b  # sum\n\n    if x >= 10:\n        print(f'{x:03d}')\n"
    "Numbers: 0 7 42 3.14159 1,000,000 2024-11-22 123456789012345 and  12 spaces\t\t9\n"
    "Runs:    of     spaces\n\n\n\nand newlines\r\n\r\nand tabs\t\tthere \n 1\n\n2 \t3\n"
    "Emoji 😀👍🏽🇫🇷 and CJK 中文字符 日本語のテキスト 한국어 텍스트\n"
    "Contractions: I'm, you're, he's, we've, they'll, I'd, don't, CAN'T, it’s.\n"
    "Mixed: x²+y²=z², ½ ¾ Ⅻ ٣ ۴ — unicode digits; a1b2c3; v2.0.1; $19.99; 50% off!!! ...\n"
)

RANDOM_POOL = [
    " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "\u00a0", "\u3000", "\u2028", "\x0b", "\x0c", "\x85",
    "a", "Z", "é", "ß", "ñ", "word", " the", "'s", "'ll", "'", "’", "1", "23", "456", "٣", "²", "½",
    "😀", "👍🏽", "中文", "!", "?!", ".", "-", "_", "(", ")", "{", "}", "<", ">", "|", "\u200b", "\u0301",
    "<|im_start|>", "<|endoftext|>", "\x04", "\x1d", chr(0x50000),
]  # fmt: skip


def random_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 25)):
            parts.append(rng.choice(RANDOM_POOL) if rng.random() < 0.7 else chr(rng.randint(0x20, 0x2FFF)))
        lines.append("".join(parts))
    return lines


def all_ids_decode(tok) -> None:
    for i in range(tok.vocab_size):
        assert isinstance(tok.decode([i]), str)
        assert isinstance(tok.token_bytes(i), bytes)


# ----------------------------------------------------------------------------------------------
# GPT-2 through tiktoken, offline
# ----------------------------------------------------------------------------------------------

needs_gpt2 = pytest.mark.skipif(
    not assets.gpt2_bpe_ready(), reason="GPT-2 BPE ranks not installed: run `python -m hessgpt.assets gpt2`"
)


@needs_gpt2
def test_gpt2_known_ids():
    tok = gpt2_tokenizer()
    assert (tok.kind, tok.name, tok.vocab_size, tok.eos_id) == ("tiktoken", "gpt2", 50257, 50256)
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode(" Hello world") == [18435, 995]
    assert tok.special_tokens == {ENDOFTEXT: 50256}
    # Ordinary text: the spelling is just characters.
    assert tok.encode("<|endoftext|>") == [27, 91, 437, 1659, 5239, 91, 29]
    assert tok.encode_with_specials("Hi<|endoftext|>") == [17250, 50256]
    assert tok.token_bytes(50256) == b"<|endoftext|>"
    assert tok.decode([17250, 50256], skip_special=True) == "Hi"


@needs_gpt2
def test_gpt2_spec_is_by_name_and_every_id_decodes():
    tok = gpt2_tokenizer()
    spec = json.loads(json.dumps(tok.to_dict()))
    assert spec["kind"] == "tiktoken" and spec["name"] == "gpt2" and "tokens" not in spec
    assert tokenizer_from_dict(spec).encode("Hello world") == [15496, 995]
    all_ids_decode(tok)
    text = VARIED_TEXT + "".join(random_lines(50))
    assert tok.decode(tok.encode(text)) == text


def test_gpt2_missing_ranks_say_how_to_get_them(tmp_path, monkeypatch):
    import hessgpt.tokenizer as module

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(module, "_GPT2_CACHE", {})
    with pytest.raises(
        HessError, match=r"not installed; run `python -m hessgpt.assets gpt2` \(or `make setup`\)"
    ):
        gpt2_tokenizer()
    with pytest.raises(HessError, match="not installed"):
        assets.ensure_gpt2_bpe(download=False)
    corrupt = assets.gpt2_bpe_path()
    corrupt.write_bytes(b"not the ranks")
    with pytest.raises(HessError, match="is corrupted"):
        gpt2_tokenizer()


# ----------------------------------------------------------------------------------------------
# assets: the ranks come out of a source archive, read in memory and hash-checked
# ----------------------------------------------------------------------------------------------


def make_sdist(path, members: dict[str, bytes], symlink: str | None = None) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            archive.addfile(info)


def test_cache_file_name_is_the_one_tiktoken_uses():
    from tiktoken_ext import openai_public

    source = open(openai_public.__file__, encoding="utf-8").read()
    assert f'"{assets.R50K_URL}"' in source and assets.R50K_SHA256 in source
    assert assets.gpt2_bpe_path().name == "0ea1e91bbb3a60f729a8dc8f777fd2fc07cd8df4"


def test_sdist_with_wrong_bytes_installs_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    sdist = tmp_path / "openai_whisper-20250625.tar.gz"
    make_sdist(sdist, {"openai_whisper-20250625/whisper/assets/gpt2.tiktoken": b"fake ranks"})
    with pytest.raises(HessError, match="expected 306cd27f"):
        assets.ensure_gpt2_bpe(download=False, sdist=sdist)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_sdist_members_are_never_extracted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    link = tmp_path / "link.tar.gz"
    make_sdist(link, {"../../evil.txt": b"x"}, symlink="x/whisper/assets/gpt2.tiktoken")
    with pytest.raises(HessError, match="not a regular file"):
        assets.ensure_gpt2_bpe(download=False, sdist=link)
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    empty = tmp_path / "empty.tar.gz"
    make_sdist(empty, {"pkg/README": b"hi"})
    with pytest.raises(HessError, match="no member ending in /whisper/assets/gpt2.tiktoken"):
        assets.ensure_gpt2_bpe(download=False, sdist=empty)
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(HessError, match="not a readable source archive"):
        assets.ensure_gpt2_bpe(download=False, sdist=garbage)


@needs_gpt2
def test_sdist_with_the_real_ranks_installs_them_atomically(tmp_path, monkeypatch):
    data = assets.gpt2_bpe_path().read_bytes()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    sdist = tmp_path / "openai_whisper-20250625.tar.gz"
    make_sdist(
        sdist,
        {
            "openai_whisper-20250625/setup.py": b"",
            "openai_whisper-20250625/whisper/assets/gpt2.tiktoken": data,
        },
    )
    path = assets.ensure_gpt2_bpe(download=False, sdist=sdist)
    assert path == tmp_path / "cache" / "0ea1e91bbb3a60f729a8dc8f777fd2fc07cd8df4"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == assets.R50K_SHA256
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert assets.main(["gpt2"]) == 0  # already there: nothing to download


# ----------------------------------------------------------------------------------------------
# GGUF: SmolLM2's byte-level BPE against transformers' tokenizer built from the same file
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol(smollm2_gguf):
    return gguf_tokenizer(smollm2_gguf)


@pytest.fixture(scope="module")
def hf_gguf(smollm2_gguf):
    """transformers' tokenizer from the GGUF, as converted (plain GPT-2 ByteLevel pre-tokenizer)."""
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    tok = transformers.AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)
    return tok.backend_tokenizer


@pytest.fixture(scope="module")
def hf_smollm(hf_gguf):
    """The same, with SmolLM2's own pre-tokenizer (its tokenizer.json: Digits(individual) + ByteLevel)."""
    from tokenizers import Tokenizer, pre_tokenizers

    tok = Tokenizer.from_str(hf_gguf.to_str())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    return tok


def test_gguf_metadata(smol):
    assert (smol.kind, smol.name, smol.pre, smol.vocab_size) == ("bpe", "gguf:smollm", "smollm", 49152)
    assert (smol.bos_id, smol.eos_id, smol.pad_id) == (1, 2, 2)
    assert smol.special_tokens["<|endoftext|>"] == 0
    assert smol.special_tokens["<|im_start|>"] == 1 and smol.special_tokens["<|im_end|>"] == 2
    assert len(smol.special_tokens) == 17


def ordinary(ref, text: str) -> list[int]:
    return ref.encode(text, add_special_tokens=False).ids


def batch(ref, lines: list[str]) -> list[list[int]]:
    return [e.ids for e in ref.encode_batch(lines, add_special_tokens=False)]


def without_specials(lines: list[str]) -> list[str]:
    return [
        line.replace("<|im_start|>", "<|im_sta rt|>").replace("<|endoftext|>", "<|endof text|>")
        for line in lines
    ]


def test_gguf_ids_equal_smollm_pretokenizer_reference(smol, hf_smollm):
    assert smol.encode(VARIED_TEXT) == ordinary(hf_smollm, VARIED_TEXT)
    lines = without_specials(random_lines(400, seed=1))
    refs = batch(hf_smollm, lines)
    mismatches = [line for line, ref in zip(lines, refs, strict=True) if smol.encode(line) != ref]
    assert mismatches == []


def test_gguf_ids_equal_transformers_gguf_conversion_with_its_pretokenizer(smol, hf_gguf):
    # transformers' GGUF converter has no "smollm" entry and keeps GPT-2's ByteLevel regex; with the
    # same regex our ids are identical, which checks vocabulary, merges and ids end to end.
    plain = tokenizer_from_dict(dict(smol.to_dict(), pre="gpt2"))  # = gguf_tokenizer(path, pre="gpt2")
    assert plain.encode(VARIED_TEXT) == ordinary(hf_gguf, VARIED_TEXT)
    lines = without_specials(random_lines(400, seed=2))
    refs = batch(hf_gguf, lines)
    assert [line for line, ref in zip(lines, refs, strict=True) if plain.encode(line) != ref] == []
    # Where the two pre-tokenizers differ: whitespace right before a digit.
    assert smol.encode("  1") == [256, 33]  # "ĠĠ" + "1", as SmolLM2 was trained
    assert ordinary(hf_gguf, "  1") == [216, 216, 33]
    # Text without such a run is the same either way.
    assert smol.encode("Hello world, it's 2024.") == ordinary(hf_gguf, "Hello world, it's 2024.")


def test_gguf_bytes_missing_from_the_vocabulary_are_dropped_like_the_reference(smol, hf_smollm):
    # 0x04 is not in SmolLM2's vocabulary: it vanishes and its neighbours merge as if it were not there.
    assert smol.encode("|\x04's") == ordinary(hf_smollm, "|\x04's") == [7619, 99]
    for text in ["a\x04b", "x" + chr(0x50000) + "y", "\x04", "a \x1d 1 \x04\x04 2"]:
        assert smol.encode(text) == ordinary(hf_smollm, text)
    template = "\x04<|im_start|>a\x04b<|im_end|>"
    assert smol.encode_with_specials(template) == ordinary(hf_smollm, template)


def test_gguf_template_text_uses_control_ids(smol, hf_smollm):
    template = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert smol.encode_with_specials(template) == ordinary(hf_smollm, template)
    assert smol.encode_with_specials(template)[0] == 1
    assert 1 not in smol.encode("<|im_start|>") and 0 not in smol.encode("<|endoftext|>")
    assert smol.decode(smol.encode("<|im_start|>user")) == "<|im_start|>user"


def test_gguf_decode_matches_reference(smol, hf_smollm):
    ids = smol.encode(VARIED_TEXT)
    assert smol.decode(ids) == VARIED_TEXT == hf_smollm.decode(ids, skip_special_tokens=False)
    with_specials = smol.encode_with_specials("<|im_start|>user\nhi<|im_end|>")
    assert smol.decode(with_specials) == hf_smollm.decode(with_specials, skip_special_tokens=False)
    assert smol.decode(with_specials, skip_special=True) == "user\nhi"
    for i in [17, 100, 256, 1000, 20000, 49151]:
        assert smol.decode([i]) == hf_smollm.decode([i], skip_special_tokens=False)


def test_gguf_spec_round_trip_without_the_gguf(smol):
    text = json.dumps(smol.to_dict())
    assert len(text) < 1_000_000
    spec = json.loads(text)
    assert spec["merge_order"] is None  # SmolLM2's ids follow its merge order
    again = tokenizer_from_dict(spec)
    assert (again.name, again.vocab_size, again.special_tokens, again.eos_id, again.bos_id, again.pad_id) == (
        smol.name, smol.vocab_size, smol.special_tokens, smol.eos_id, smol.bos_id, smol.pad_id,
    )  # fmt: skip
    assert all(again.token_bytes(i) == smol.token_bytes(i) for i in range(smol.vocab_size))
    for line in [VARIED_TEXT, *random_lines(100, seed=3)]:
        assert again.encode(line) == smol.encode(line)
        assert again.encode_with_specials(line) == smol.encode_with_specials(line)


def test_gguf_every_id_decodes(smol):
    all_ids_decode(smol)


def test_gguf_rejects_other_tokenizer_models(tmp_path):
    with pytest.raises(HessError, match="GGUF file not found"):
        gguf_tokenizer(tmp_path / "none.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 20)
    with pytest.raises(HessError, match="bad.gguf"):
        gguf_tokenizer(bad)


def write_gguf(path, tokens, merges, model="gpt2", pre="smollm", types=None):
    """A GGUF holding only tokenizer metadata (enough for gguf_tokenizer)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model(model)
    if pre is not None:
        writer.add_tokenizer_pre(pre)
    if tokens is not None:
        writer.add_token_list(tokens)
        writer.add_token_types(types or [3 if t.startswith("<|") else 1 for t in tokens])
    writer.add_token_merges(merges)
    writer.add_eos_token_id(0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_with_ids_out_of_merge_order(tmp_path):
    from hessgpt.tokenizer import BYTE_SPELLING

    # "Ġthe" has a smaller id than the two merges that come before it.
    tokens = ["<|endoftext|>", "Ġthe", *BYTE_SPELLING, "Ġt", "he"]
    tok = gguf_tokenizer(write_gguf(tmp_path / "t.gguf", tokens, ["Ġ t", "h e", "Ġt he"]))
    assert tok.encode(" the") == [1]
    assert tok.encode(" t he") == [258, 2 + ord(" "), 259]  # " he" has no "Ġh" merge
    assert tok.encode(" theta") == [1, 2 + ord("t"), 2 + ord("a")]
    assert tok.encode_with_specials("<|endoftext|> the") == [0, 1]
    spec = json.loads(json.dumps(tok.to_dict()))
    assert spec["merge_order"][-3:] == [258, 259, 1]
    assert tokenizer_from_dict(spec).encode(" the t he") == [1, 258, 34, 259]


def test_gguf_tokenizer_errors(tmp_path):
    from hessgpt.tokenizer import BYTE_SPELLING

    tokens = ["<|endoftext|>", *BYTE_SPELLING, "Ġt"]
    with pytest.raises(
        HessError, match=r"tokenizer.ggml.pre 'qwen2' is not supported \(supported: codeshell, command-r"
    ):
        gguf_tokenizer(write_gguf(tmp_path / "a.gguf", tokens, ["Ġ t"], pre="qwen2"))
    assert gguf_tokenizer(tmp_path / "a.gguf", pre="gpt2").encode(" t") == [257]
    no_pre = gguf_tokenizer(write_gguf(tmp_path / "b.gguf", tokens, ["Ġ t"], pre=None))
    assert no_pre.pre == "gpt2"
    with pytest.raises(HessError, match=r"c.gguf: tokenizer.ggml.model 'llama' is not supported"):
        gguf_tokenizer(write_gguf(tmp_path / "c.gguf", tokens, ["Ġ t"], model="llama"))
    with pytest.raises(HessError, match=r"d.gguf: tokenizer.ggml.merges\[1\] 'x y' does not make a token"):
        gguf_tokenizer(write_gguf(tmp_path / "d.gguf", tokens, ["Ġ t", "x y"]))
    with pytest.raises(HessError, match="e.gguf: GGUF field 'tokenizer.ggml.tokens' is missing"):
        gguf_tokenizer(write_gguf(tmp_path / "e.gguf", None, ["Ġ t"]))


# ----------------------------------------------------------------------------------------------
# BPE with ids that do not follow the merge order
# ----------------------------------------------------------------------------------------------


def test_ids_out_of_merge_order_are_mapped_back():
    text = "the cat sat on the mat; the hat, the bat and the rat sat flat. " * 30
    base = train_bpe(text, 320)
    spec = base.to_dict()
    non_special = [i for i in range(base.vocab_size) if i not in base.special_tokens.values()]
    rng = random.Random(0)
    shuffled = non_special[:]
    rng.shuffle(shuffled)
    perm = dict(zip(non_special, shuffled, strict=True)) | {i: i for i in base.special_tokens.values()}
    tokens = [None] * base.vocab_size
    for old, item in enumerate(spec["tokens"]):
        tokens[perm[old]] = item
    spec2 = dict(spec, tokens=tokens, merge_order=[perm[i] for i in non_special])
    moved = tokenizer_from_dict(json.loads(json.dumps(spec2)))
    for sample in ["the cat sat", "flat rats", text[:200], "<|endoftext|> hat"]:
        assert moved.encode(sample) == [perm[i] for i in base.encode(sample)]
        assert moved.encode_with_specials(sample) == [perm[i] for i in base.encode_with_specials(sample)]
        assert moved.decode(moved.encode(sample)) == sample
    assert tokenizer_from_dict(moved.to_dict()).to_dict() == moved.to_dict()


# ----------------------------------------------------------------------------------------------
# Character and word level (seed 004)
# ----------------------------------------------------------------------------------------------

CORPUS = "Harry parut envie. — Hermione, répondit Ron. Je suis là !\nHarry sourit.\n"


def test_char_tokenizer():
    tok = char_tokenizer(CORPUS)
    chars = sorted(set(CORPUS))
    assert tok.kind == "char" and tok.units == chars
    assert tok.special_tokens == {UNK: len(chars), ENDOFTEXT: len(chars) + 1}
    assert tok.vocab_size == len(chars) + 2 and tok.eos_id == len(chars) + 1
    assert tok.encode("Harry") == [chars.index(c) for c in "Harry"]
    assert tok.decode(tok.encode(CORPUS)) == CORPUS
    assert tok.encode("Hz") == [chars.index("H"), tok.unk_id]  # 'z' never seen
    assert tok.decode(tok.encode("Hz"), skip_special=True) == "H"
    assert tok.encode_with_specials("Ron<|endoftext|>") == tok.encode("Ron") + [tok.eos_id]
    assert tok.eos_id not in tok.encode("<|endoftext|>")
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.to_dict() == tok.to_dict() and again.encode(CORPUS) == tok.encode(CORPUS)


def test_word_tokenizer():
    tok = word_tokenizer(CORPUS)
    assert tok.kind == "word"
    assert tok.units[:4] == [" ", ".", "\n", "Harry"]  # most frequent first, ties alphabetical
    assert tok.decode(tok.encode(CORPUS)) == CORPUS
    ids = tok.encode("Harry répondit: Dumbledore.")
    assert tok.decode(ids) == "Harry répondit<unk> <unk>."
    assert tok.encode_with_specials("Ron.<|endoftext|>") == tok.encode("Ron.") + [tok.eos_id]
    rare = word_tokenizer(CORPUS, min_freq=2)
    assert "Hermione" not in rare.units and "Harry" in rare.units
    assert rare.encode("Hermione") == [rare.unk_id]
    again = tokenizer_from_dict(json.loads(json.dumps(rare.to_dict())), source="ckpt.pt")
    assert again.encode(CORPUS) == rare.encode(CORPUS)


# ----------------------------------------------------------------------------------------------
# Specs and robustness
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_bpe():
    return train_bpe(VARIED_TEXT * 3, 400)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "sentencepiece"}, "field 'kind' is 'sentencepiece'"),
        ({"format": "other"}, "field 'format'"),
        ({"version": 2}, "field 'version' is 2"),
        ({"pre": "llama3"}, "field 'pre' is 'llama3'"),
        ({"tokens": "abc"}, "field 'tokens' must be a non-empty list"),
        ({"tokens@3": "!!not base64"}, r"field 'tokens\[3\]' is not valid base64"),
        ({"tokens@5": 7}, r"field 'tokens\[5\]' must be a base64 string"),
        (
            {"special_tokens": {"<|endoftext|>": "x"}},
            "field 'special_tokens' must map spellings to integer ids",
        ),
        ({"special_tokens": {"<|endoftext|>": 10**6}}, "field 'special_tokens' ids must be distinct"),
        ({"merge_order": [1, 1]}, "field 'merge_order' must list distinct"),
        ({"eos_id": -1}, "field 'eos_id' must be null or an id"),
        ({"vocab_size": 12}, "field 'vocab_size' is 12"),
    ],
)
def test_bad_specs_name_source_and_field(small_bpe, change, message):
    spec = json.loads(json.dumps(small_bpe.to_dict()))
    for key, value in change.items():
        if "@" in key:
            field, index = key.split("@")
            spec[field][int(index)] = value
        else:
            spec[key] = value
    with pytest.raises(HessError, match=f"^my.pt: tokenizer {message}"):
        tokenizer_from_dict(spec, source="my.pt")


def test_bad_char_word_specs():
    spec = char_tokenizer("abc").to_dict()
    with pytest.raises(HessError, match="ckpt: tokenizer field 'units'"):
        tokenizer_from_dict(dict(spec, units=["a", "a"]), source="ckpt")
    with pytest.raises(HessError, match="ckpt: tokenizer field 'special_tokens' must start with '<unk>'"):
        tokenizer_from_dict(dict(spec, special_tokens={ENDOFTEXT: 3, UNK: 4}), source="ckpt")
    with pytest.raises(HessError, match="ckpt: tokenizer spec must be an object"):
        tokenizer_from_dict(["not", "a", "dict"], source="ckpt")
    with pytest.raises(HessError, match="only tiktoken encoding available offline is 'gpt2'"):
        tokenizer_from_dict({"kind": "tiktoken", "name": "cl100k_base"}, source="ckpt")


def robust_tokenizers(small_bpe):
    return [small_bpe, char_tokenizer(CORPUS), word_tokenizer(CORPUS)]


def test_encode_never_crashes_on_any_unicode(small_bpe):
    rng = random.Random(9)
    nasty = [
        "\ud800",
        "a\udfffb",
        "\ud83d\ude00",
        "\x00",
        "\uffff",
        "\U0010ffff",
        "\ufeff",
        "<|endoftext",
        "|>",
    ]
    for tok in robust_tokenizers(small_bpe):
        for _ in range(200):
            text = "".join(
                rng.choice(nasty) if rng.random() < 0.3 else chr(rng.randint(0, 0x10FFFF))
                for _ in range(rng.randint(0, 12))
            )
            ids = tok.encode(text) + tok.encode_with_specials(text)
            assert all(type(i) is int and 0 <= i < tok.vocab_size for i in ids)
            tok.decode(ids)
    assert small_bpe.decode(small_bpe.encode("x\ud800y")) == "x\ufffdy"  # lone surrogate replaced


def test_decode_rejects_ids_out_of_range_by_name(small_bpe):
    for tok in robust_tokenizers(small_bpe):
        n = tok.vocab_size
        with pytest.raises(HessError, match=f"token id {n}: out of range"):
            tok.decode([1, n])
        with pytest.raises(HessError, match="token id -1: out of range"):
            tok.decode([-1])
        with pytest.raises(HessError, match=f"token id {n + 5}: out of range"):
            tok.token_bytes(n + 5)
        all_ids_decode(tok)


def test_partial_utf8_decodes_to_replacement(small_bpe):
    ids = small_bpe.encode("😀")
    assert len(ids) > 1  # an emoji is several byte tokens in a small vocabulary
    assert small_bpe.decode(ids[:1]) == "\ufffd"
    assert b"".join(small_bpe.token_bytes(i) for i in ids) == "😀".encode()


def test_decode_accepts_numpy_and_torch_ids(small_bpe):
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    ids = small_bpe.encode("Hello world")
    assert small_bpe.decode(np.array(ids)) == "Hello world"
    assert small_bpe.decode(torch.tensor(ids)) == "Hello world"
    with pytest.raises(HessError, match="not an integer"):
        small_bpe.decode([1.5])


def test_bpe_repr_and_load_class(small_bpe, tmp_path):
    assert "bpe-400" in repr(small_bpe)
    small_bpe.save(tmp_path / "t.json")
    assert isinstance(BPETokenizer.load(tmp_path / "t.json"), BPETokenizer)
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(HessError, match="broken.json: not a tokenizer JSON file"):
        BPETokenizer.load(tmp_path / "broken.json")


def test_huge_whitespace_runs_do_not_crash(small_bpe):
    # tiktoken's regex engine panics (stack overflow) on ~1M-character whitespace runs.
    for text in [" " * 1_000_000 + "a", "\n" * 1_000_000 + "1<|endoftext|>", "x" + "\t " * 500_000]:
        ids = small_bpe.encode(text)
        assert small_bpe.decode(ids) == text
        assert small_bpe.decode(small_bpe.encode_with_specials(text)) == text
    short = "a" + " " * 500 + "b"
    assert small_bpe.encode(short) == small_bpe.tiktoken_encoding.encode_ordinary(
        short
    )  # no cut below the limit


def test_gguf_huge_whitespace_runs_do_not_crash(smol):
    text = "\x04" + " " * 1_000_000 + "1"
    assert smol.decode(smol.encode(text)) == text[1:]
