"""Time byte-level BPE training: ours (pure Python) against Hugging Face ``tokenizers`` when installed.

    python scripts/bench_bpe_train.py                      # ~10 MB of synthetic text, vocab 8000
    python scripts/bench_bpe_train.py --file corpus.txt --vocab-size 8000
    python scripts/bench_bpe_train.py --mb 1 --no-reference

Prints seconds, merges per second and compression (UTF-8 bytes per token on a held-out tenth).
Both trainers see the same text, the same byte-level GPT-2 pre-tokenizer, the same min frequency.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hessgpt.bpe_train import train_bpe  # noqa: E402
from hessgpt.tokenizer import BPETokenizer  # noqa: E402

SYLLABLES = (
    "ba be bi bo bu ca ce ci co da de di do du fa fe fi fo ga ge gi go ha he hi ho "
    "ja je jo ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po "
    "ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo wa we wi ya yo za ze "
    "th sh ch st tr pr gr bl cl an en in on un er ar or ir ur es is as ou ai ei au "
    "é è ê à ç ô û ï qu gn ll ss tt mm"
).split()
PUNCT = [".", ",", ";", ":", "!", "?", " -", " (", ")", "'s", "'re", '"', "…", " —"]
CODE_LINES = [
    "def {w}({v}, {u}):\n    return {v} + {u} * {n}\n",
    "for {v} in range({n}):\n    print({w}[{v}])\n",
    "if ({v} > {n}) {{\n\t{w}({u});\n}}\n",
    "{w} = [{n}, {n}, {n}]  # {u}\n",
]
EMOJI_CJK = ["😀", "👍🏽", "中文", "日本語", "한국어", "Ω", "∑", "→", "½", "²"]


def synthetic_text(n_bytes: int, seed: int = 0) -> str:
    """Varied text: Zipf-distributed invented words (English/French-like), numbers, code, emoji, CJK."""
    rng = random.Random(seed)
    lexicon = []
    for _ in range(200_000):
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 3, 4, 5))))
        lexicon.append(word)
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(lexicon))))  # Zipf

    def words(k: int) -> list[str]:
        return rng.choices(lexicon, cum_weights=cumulative, k=k)

    parts: list[str] = []
    size = 0
    while size < n_bytes:
        kind = rng.random()
        if kind < 0.75:
            sentence = words(rng.randint(4, 20))
            sentence[0] = sentence[0].capitalize()
            for i in range(1, len(sentence)):
                if rng.random() < 0.1:
                    sentence[i] = sentence[i] + rng.choice(PUNCT)
                if rng.random() < 0.03:
                    sentence[i] = str(rng.randint(0, 10 ** rng.randint(1, 7)))
            piece = (
                " ".join(sentence)
                + rng.choice([".", ".", ".", "!", "?"])
                + rng.choice([" ", " ", "\n", "\n\n"])
            )
        elif kind < 0.9:
            a, b, c = words(3)
            piece = rng.choice(CODE_LINES).format(w=a, v=b, u=c, n=rng.randint(0, 999))
        else:
            piece = " ".join(rng.choice(EMOJI_CJK) + w for w in words(rng.randint(2, 6))) + "\n"
        parts.append(piece)
        size += len(piece.encode("utf-8"))
    return "".join(parts)


def bytes_per_token(encode, text: str) -> float:
    return len(text.encode("utf-8")) / max(1, len(encode(text)))


def run_ours(train: str, held_out: str, vocab_size: int) -> dict:
    start = time.perf_counter()
    tok = train_bpe(train, vocab_size)
    seconds = time.perf_counter() - start
    assert isinstance(tok, BPETokenizer)
    merges = tok.vocab_size - 256 - len(tok.special_tokens)
    return {"seconds": seconds, "merges": merges, "bpt": bytes_per_token(tok.encode, held_out)}


def run_reference(train: str, held_out: str, vocab_size: int) -> dict | None:
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        return None
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + 1,  # ours counts the base vocabulary; <|endoftext|> comes on top
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    from hessgpt.bpe_train import iter_chunks

    lines = list(iter_chunks(train, 1 << 16))  # pieces cut where pre-tokens are unaffected
    start = time.perf_counter()
    tok.train_from_iterator(lines, trainer=trainer)
    seconds = time.perf_counter() - start
    merges = tok.get_vocab_size() - 256 - 1
    return {
        "seconds": seconds,
        "merges": merges,
        "bpt": bytes_per_token(lambda s: tok.encode(s).ids, held_out),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", help="UTF-8 text to train on (default: synthetic text)")
    parser.add_argument("--mb", type=float, default=10.0, help="size of the synthetic text in MB")
    parser.add_argument("--vocab-size", type=int, default=8000, help="base vocabulary (256 bytes + merges)")
    parser.add_argument("--no-reference", action="store_true", help="skip the Hugging Face tokenizers run")
    args = parser.parse_args(argv)

    if args.file:
        text = Path(args.file).read_text(encoding="utf-8")
    else:
        text = synthetic_text(int(args.mb * 1_000_000))
    cut = int(len(text) * 0.9)
    cut = text.find("\n", cut) + 1 or len(text)
    train, held_out = text[:cut], text[cut:] or text[-100_000:]
    print(
        f"text: {len(train.encode('utf-8')) / 1e6:.1f} MB to train, {len(held_out.encode('utf-8')) / 1e6:.2f} MB held out"
    )

    rows = [("hessgpt (pure Python)", run_ours(train, held_out, args.vocab_size))]
    if not args.no_reference:
        ref = run_reference(train, held_out, args.vocab_size)
        rows.append(("HF tokenizers (Rust)", ref))
    print(f"{'trainer':<24}{'seconds':>10}{'merges':>9}{'merges/s':>11}{'bytes/token':>13}")
    for name, row in rows:
        if row is None:
            print(f"{name:<24}{'not installed':>43}")
            continue
        rate = row["merges"] / row["seconds"] if row["seconds"] else float("inf")
        print(f"{name:<24}{row['seconds']:>10.1f}{row['merges']:>9}{rate:>11.0f}{row['bpt']:>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
