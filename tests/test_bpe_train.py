"""Byte-level BPE training: a hand-worked example, a naive reference trainer, Hugging Face parity."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import pytest

from hessgpt.bpe_train import count_pretokens, iter_chunks, learn_merges, train_bpe
from hessgpt.errors import HessError
from hessgpt.tokenizer import (
    BYTE_SPELLING,
    ENDOFTEXT,
    GPT2_PATTERN,
    BPETokenizer,
    load_tokenizer,
    tokenizer_from_dict,
)

WORDS = "the cat sat on a mat and then the dog ate the hat of an old man who had a tall thin hat".split()


def random_text(seed: int, n_words: int = 3000) -> str:
    rng = random.Random(seed)
    extra = [
        "été",
        "naïve",
        "中文",
        "😀",
        "x²",
        "42",
        "3.14",
        "don't",
        "it's",
        "\t",
        "\n",
        "\n\n",
        "  ",
        "!",
        "?!",
        "--",
    ]
    parts = []
    for _ in range(n_words):
        parts.append(rng.choice(WORDS) if rng.random() < 0.8 else rng.choice(extra))
        parts.append(rng.choice([" ", " ", " ", "", "\n", ", "]))
    return "".join(parts)


# ----------------------------------------------------------------------------------------------
# A deliberately naive trainer: full recount after every merge. Slow, obviously right.
# ----------------------------------------------------------------------------------------------


def naive_merges(word_counts: dict[bytes, int], n_merges: int, min_frequency: int = 2) -> list[bytes]:
    tokens: list[bytes] = [bytes([b]) for b in range(256)]
    # Tie order of the reference: single bytes by their byte-level spelling, merged tokens by creation.
    order = {bytes([b]): BYTE_SPELLING[b] for b in range(256)}
    rank = {t: (0, order[t]) for t in tokens}
    words = [([bytes([b]) for b in w], c) for w, c in word_counts.items()]
    learned: list[bytes] = []
    while len(learned) < n_merges:
        counts: Counter = Counter()
        for symbols, c in words:
            for x, y in zip(symbols, symbols[1:], strict=False):
                counts[(x, y)] += c
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], rank[p[0]], rank[p[1]]))
        if counts[best] < min_frequency:
            break
        joined = best[0] + best[1]
        if joined not in rank:
            rank[joined] = (1, len(tokens))
            tokens.append(joined)
            learned.append(joined)
        new_words = []
        for symbols, c in words:
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            new_words.append((out, c))
        words = new_words
    return learned


def test_hand_worked_example():
    # "aaabdaaabac" is one pre-token. Pair counts: aa 4, ab 2, then 1s.
    # 1. (a, a) -> "aa" (id 256); word: aa a b d aa a b a c   -> pairs (aa,a) 2, (a,b) 2
    # 2. tie at 2: (a, b) wins over (aa, a) because a single byte sorts before a merged token -> "ab" (257)
    #    word: aa ab d aa ab a c -> (aa, ab) 2
    # 3. (aa, ab) -> "aaab" (258); every remaining pair occurs once (< min_frequency 2): stop.
    tok = train_bpe("aaabdaaabac", 300)
    assert [tok.token_bytes(i) for i in (256, 257, 258)] == [b"aa", b"ab", b"aaab"]
    assert tok.vocab_size == 260 and tok.special_tokens == {ENDOFTEXT: 259} and tok.eos_id == 259
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]
    assert tok.name == "bpe-300" and tok.kind == "bpe"


def test_overlapping_pairs_are_counted_like_a_full_recount():
    # "aaaa" merges to (aa)(aa), "aaa" to (aa)a: the incremental updates must get these right.
    counts = {b"aaaa": 5, b"aaa": 3, b"abab": 4, b"ababab": 2, b"ba": 7, b"aab": 1}
    for n in (1, 2, 3, 5, 8):
        model = learn_merges(counts, n)
        assert model.tokens[256:] == naive_merges(counts, n)


@pytest.mark.parametrize("seed", range(6))
def test_matches_naive_trainer_on_random_corpora(seed):
    rng = random.Random(seed)
    alphabet = ["a", "b", "c", "ab", "é", " "]
    text = "".join(rng.choice(alphabet) for _ in range(600))
    counts: dict[bytes, int] = {}
    for word, c in count_pretokens([text]).items():
        counts[word.encode()] = counts.get(word.encode(), 0) + c
    model = learn_merges(counts, 40, min_frequency=1)
    assert model.tokens[256:] == naive_merges(counts, 40, min_frequency=1)
    # merge k joins the two ids it names
    for k, (a, b) in enumerate(model.merges):
        assert model.tokens[256 + k] == model.tokens[a] + model.tokens[b]


def test_training_is_deterministic_and_round_trips():
    text = random_text(1)
    a = train_bpe(text, 600).to_dict()
    b = train_bpe(text, 600).to_dict()
    assert a == b
    tok = tokenizer_from_dict(json.loads(json.dumps(a)))
    rng = random.Random(5)
    for _ in range(200):
        s = "".join(
            chr(
                rng.choice(
                    [
                        rng.randint(32, 0x2FF),
                        rng.randint(0x4E00, 0x4E80),
                        rng.randint(0x1F600, 0x1F64F),
                        10,
                        9,
                    ]
                )
            )
            for _ in range(rng.randint(0, 40))
        )
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert all(0 <= i < tok.vocab_size for i in ids)
    assert len(tok.encode(text)) < len(text.encode()) / 2  # it learned something: better than 2 bytes/token


def test_special_tokens_are_above_the_base_vocabulary_and_never_learned():
    text = "<|endoftext|>".join(random_text(8, 400) for _ in range(5)) + "<|pad|><|pad|>" * 50
    tok = train_bpe(text, 300, special_tokens=(ENDOFTEXT, "<|pad|>"))
    assert tok.special_tokens == {ENDOFTEXT: 300, "<|pad|>": 301}
    assert tok.vocab_size == 302
    learned = [tok.token_bytes(i) for i in range(256, 300)]
    assert not any(b"<|" in t or b"|>" in t for t in learned)
    assert tok.encode_with_specials("cat<|endoftext|>") == tok.encode("cat") + [300]
    assert 300 not in tok.encode("cat<|endoftext|>")
    assert tok.decode(tok.encode("cat<|endoftext|>")) == "cat<|endoftext|>"


def test_stops_when_no_pair_is_frequent_enough():
    tok = train_bpe("abcdefgh", 8000)
    assert tok.vocab_size == 257  # no pair occurs twice: bytes + <|endoftext|>


def test_chunked_counting_equals_whole_text():
    text = random_text(2) + "\n  \n\tx\n\n   y \n" * 20
    whole = count_pretokens([text])
    pieces = list(iter_chunks(text, 50))
    assert "".join(pieces) == text and len(pieces) > 10
    chunked: Counter = Counter()
    for piece in pieces:
        chunked.update(count_pretokens([piece]))
    assert chunked == whole


def test_progress_reports_the_end():
    seen = []
    train_bpe(random_text(3, 500), 300, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (44, 44)


def test_save_load(tmp_path):
    tok = train_bpe(random_text(4, 800), 400)
    path = tmp_path / "tok.json"
    tok.save(path)
    again = BPETokenizer.load(path)
    assert again.to_dict() == tok.to_dict()
    assert load_tokenizer(path).encode("the old man") == tok.encode("the old man")


def test_training_from_files_and_errors(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the cat " * 100, encoding="utf-8")
    b.write_text("the hat " * 100, encoding="utf-8")
    tok = train_bpe([str(a), b], 270)
    assert tok.encode("the cat") != list(b"the cat")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(HessError, match=r"latin1.txt: not UTF-8 text \(invalid byte at offset 3\)"):
        train_bpe([bad], 300)
    with pytest.raises(HessError, match="missing.txt: file not found"):
        train_bpe([tmp_path / "missing.txt"], 300)
    with pytest.raises(HessError, match="vocab_size: must be an integer of at least 256"):
        train_bpe("abc", 255)
    with pytest.raises(HessError, match="empty"):
        train_bpe("", 300)


def test_same_vocabulary_as_huggingface_tokenizers():
    tokenizers = pytest.importorskip("tokenizers")
    text = random_text(7, 20000)
    ours = train_bpe(text, 256 + 300)
    ref = tokenizers.Tokenizer(tokenizers.models.BPE())
    ref.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=256 + 300 + 1,
        min_frequency=2,
        special_tokens=[ENDOFTEXT],
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    ref.train_from_iterator(list(iter_chunks(text, 4096)), trainer=trainer)
    unspell = {ch: b for b, ch in enumerate(BYTE_SPELLING)}
    ref_vocab = sorted(ref.get_vocab().items(), key=lambda kv: kv[1])
    ref_tokens = [bytes(unspell[c] for c in t) for t, i in ref_vocab if t != ENDOFTEXT and len(t) > 1]
    assert [ours.token_bytes(i) for i in range(256, 556)] == ref_tokens
    sample = text[:2000]
    assert len(ours.encode(sample)) == len(ref.encode(sample).ids)


def test_pattern_is_tiktokens_gpt2_pattern():
    from tiktoken_ext.openai_public import r50k_pat_str

    assert GPT2_PATTERN == r50k_pat_str


@pytest.mark.slow
def test_ten_megabytes_train_in_minutes():
    text = random_text(11, 1_500_000)  # ~10 MB
    start = time.perf_counter()
    tok = train_bpe(text, 8000)
    assert time.perf_counter() - start < 180
    assert tok.vocab_size > 1000
