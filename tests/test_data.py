"""Dataset reading, cleaning, splitting, and the SFT loss mask."""

from __future__ import annotations

import json

import pytest
import torch

from hessgpt.chat import default_chat_template
from hessgpt.data import (
    Example,
    collate,
    data_hash,
    epoch_order,
    load_dataset,
    parse_split,
    read_file,
    split_examples,
    tokenize_split,
)
from hessgpt.errors import HessError

pytestmark = pytest.mark.usefixtures("one_thread")


class ByteTokenizer:
    """Stand-in tokenizer for tests: one id per byte, plus <|endoftext|> = 256."""

    vocab_size = 257
    eos_id = 256
    bos_id = None
    special_tokens = {"<|endoftext|>": 256}

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_with_specials(self, text: str) -> list[int]:
        ids: list[int] = []
        for i, part in enumerate(text.split("<|endoftext|>")):
            if i:
                ids.append(256)
            ids.extend(self.encode(part))
        return ids

    def token_bytes(self, token: int) -> bytes:
        return b"<|endoftext|>" if token == 256 else bytes([token])

    def decode(self, ids: list[int]) -> str:
        return b"".join(self.token_bytes(t) for t in ids).decode("utf-8", "replace")

    def to_dict(self) -> dict:
        return {"kind": "test-bytes"}


def write_jsonl(path, records) -> str:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8"
    )
    return str(path)


def test_alpaca_dolly_messages_and_text_become_examples(tmp_path):
    alpaca = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
            {"instruction": "Say hi.", "input": "", "output": "Hi!"},
        ],
    )
    dolly = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "instruction": "Summarise.",
                "context": "A long text.",
                "response": "Short.",
                "category": "summarization",
            },
        ],
    )
    messages = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": "Hello"},
                    {"role": "assistant", "content": "Hello! How can I help?"},
                ]
            },
        ],
    )
    a = read_file(alpaca)
    assert a[0].messages == [
        {"role": "user", "content": "Translate to French.\n\nGood morning"},
        {"role": "assistant", "content": "Bonjour"},
    ]
    assert a[1].messages[0]["content"] == "Say hi."
    assert a[0].source.endswith("a.jsonl:1")
    assert read_file(dolly)[0].messages[0]["content"] == "Summarise.\n\nA long text."
    assert read_file(messages)[0].messages[0] == {"role": "system", "content": "Be kind."}
    text = tmp_path / "t.txt"
    text.write_text("First paragraph\nstill first.\n\n\nSecond one.\n", encoding="utf-8")
    paragraphs = read_file(text)
    assert [p.text for p in paragraphs] == ["First paragraph\nstill first.", "Second one."]
    assert paragraphs[1].source.endswith("t.txt:5")


def test_alpaca_json_list(tmp_path):
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps([{"instruction": "A", "input": "", "output": "B"}]), encoding="utf-8")
    assert read_file(path)[0].messages[1]["content"] == "B"


def test_bad_line_names_file_and_line(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"instruction": "A", "output": "B"},
            '{"instruction": "C", "output": ',
            {"foo": 1},
        ],
    )
    with pytest.raises(HessError, match=r"bad\.jsonl:2: not valid JSON.*--skip-bad-lines"):
        load_dataset([path])
    examples, report = load_dataset([path], skip_bad_lines=True)
    assert len(examples) == 1
    assert report.bad_lines == 2
    assert "bad.jsonl:3: unrecognised record (keys: foo)" in report.bad_line_examples[1]


def test_wrong_types_are_bad_lines(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"messages": [{"role": "robot", "content": "hi"}]}])
    with pytest.raises(HessError, match=r"x\.jsonl:1: messages\[0\]\.role must be"):
        load_dataset([path])


def test_cleaning_drops_empties_and_exact_duplicates(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"instruction": "A", "output": "B"},
            {"instruction": "A", "output": "B"},
            {"instruction": "A ", "output": " B"},  # same after stripping
            {"instruction": "", "output": "B"},
            {"instruction": "Q", "output": "  "},
            {"messages": [{"role": "user", "content": "only a question"}]},
            {"instruction": "A", "output": "C"},
        ],
    )
    examples, report = load_dataset([path])
    assert [e.messages[1]["content"] for e in examples] == ["B", "C"]
    assert (report.duplicates, report.empty, report.kept) == (2, 3, 2)


def test_data_hash_is_the_file_sha256(tmp_path):
    import hashlib

    path = write_jsonl(tmp_path / "h.jsonl", [{"instruction": "A", "output": "B"}])
    _, report = load_dataset([path])
    assert data_hash(report) == hashlib.sha256((tmp_path / "h.jsonl").read_bytes()).hexdigest()


def _examples(n: int) -> list[Example]:
    return [
        Example(
            messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}],
            source=f"f:{i}",
        )
        for i in range(n)
    ]


def test_split_is_deterministic_disjoint_and_sized():
    examples = _examples(200)
    train, val, test = split_examples(examples, parse_split("85,10,5"), seed=3)
    assert (len(train), len(val), len(test)) == (170, 20, 10)
    keys = [{e.key() for e in part} for part in (train, val, test)]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert keys[0] | keys[1] | keys[2] == {e.key() for e in examples}
    again = split_examples(list(reversed(examples)), parse_split("0.85,0.1,0.05"), seed=3)
    assert [e.key() for e in again[1]] == [e.key() for e in val]  # file order does not matter
    other = split_examples(examples, parse_split("85,10,5"), seed=4)
    assert {e.key() for e in other[1]} != keys[1]


def test_duplicates_and_empties_are_dropped_before_a_seeded_split(tmp_path):
    import random

    records = []
    for i in range(203):
        records.append({"instruction": f"Question {i}?", "output": f"Answer {i}."})
        if i % 4 == 0:
            records.append({"instruction": f"Question {i}?", "output": f"Answer {i}."})
        if i % 10 == 0:
            records.append({"instruction": f" Question {i}? ", "output": f"Answer {i}.  "})  # same stripped
        if i % 25 == 0:
            records += [{"instruction": "", "output": "x"}, {"instruction": "q", "output": " "}]
    shuffled = list(records)
    random.Random(0).shuffle(shuffled)

    def split(path, seed: int = 7):
        examples, report = load_dataset([path])
        parts = split_examples(examples, parse_split("85,10,5"), seed)
        return report, [[e.key() for e in part] for part in parts]

    report, (train, val, test) = split(write_jsonl(tmp_path / "a.jsonl", records))
    assert (report.duplicates, report.empty, report.kept) == (51 + 21, 18, 203)
    every = train + val + test
    assert len(every) == len(set(every)) == 203  # no example twice, within or across the parts
    assert not (set(train) & set(val)) and not (set(train) & set(test)) and not (set(val) & set(test))
    answers = {json.loads(key)[1]["content"] for key in every}
    assert answers == {f"Answer {i}." for i in range(203)}  # all kept, stripped, and no empty one
    for part, share in zip((train, val, test), (0.85, 0.10, 0.05), strict=True):
        assert abs(len(part) / 203 - share) < 0.01, (len(part), share)
    _, again = split(write_jsonl(tmp_path / "b.jsonl", shuffled))  # same data, another order
    assert again == [train, val, test]
    _, other = split(tmp_path / "a.jsonl", seed=8)
    assert set(other[1]) != set(val)


def test_parse_split_rejects_nonsense():
    with pytest.raises(HessError, match="--split"):
        parse_split("85,15")
    with pytest.raises(HessError, match="--split"):
        parse_split("0,50,50")


def test_sft_targets_are_exactly_the_assistant_tokens():
    tok = ByteTokenizer()
    template = default_chat_template(tok)
    example = Example(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Yo"},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "A!"},
        ]
    )
    split = tokenize_split([example], tok, template, block_size=256)
    ((x, y),) = split.windows
    rendered = "User: Hi\nAssistant: Yo<|endoftext|>\nUser: Q\nAssistant: A!<|endoftext|>\n"
    assert tok.decode(x.tolist() + [int(y[-1]) if y[-1] != -100 else 10]) == rendered
    # Targets are the next token where that token is assistant content or its end-of-turn, else -100.
    supervised = [tok.decode([t]) for t in y.tolist() if t != -100]
    assert supervised == ["Y", "o", "<|endoftext|>", "A", "!", "<|endoftext|>"]
    # ... at exactly the positions that hold them in the rendered conversation.
    first = len(tok.encode_with_specials("User: Hi\nAssistant: "))
    second = len(tok.encode_with_specials("User: Hi\nAssistant: Yo<|endoftext|>\nUser: Q\nAssistant: "))
    expected = [first, first + 1, first + 2, second, second + 1, second + 2]
    assert [i + 1 for i, t in enumerate(y.tolist()) if t != -100] == expected


def test_sft_mask_has_no_user_or_template_tokens():
    tok = ByteTokenizer()
    template = default_chat_template(tok)
    example = Example(
        messages=[{"role": "user", "content": "question"}, {"role": "assistant", "content": "answer"}]
    )
    ((x, y),) = tokenize_split([example], tok, template, 256).windows
    targets = bytes(t for t in y.tolist() if 0 <= t < 256).decode()
    assert "question" not in targets and "User" not in targets and "Assistant" not in targets
    assert targets.strip() == "answer"


def test_text_is_packed_into_full_windows():
    tok = ByteTokenizer()
    docs = [Example(text="abcdefgh"), Example(text="ijkl")]  # 9 + 5 ids with EOS = 14 tokens
    split = tokenize_split(docs, tok, default_chat_template(tok), block_size=4)
    sizes = [x.numel() for x, _ in split.windows]
    assert sizes == [4, 4, 4, 1]  # 13 predictions: three full windows and the tail
    x0, y0 = split.windows[0]
    assert tok.decode(x0.tolist()) == "abcd" and tok.decode(y0.tolist()) == "bcde"
    assert split.windows[1][0].tolist()[0] == split.windows[0][1].tolist()[-1]
    assert all((y != -100).all() for _, y in split.windows)


def test_conversations_are_truncated_and_packed_on_request():
    tok = ByteTokenizer()
    template = default_chat_template(tok)
    long = Example(messages=[{"role": "user", "content": "x" * 50}, {"role": "assistant", "content": "ok"}])
    split = tokenize_split([long], tok, template, block_size=16)
    assert split.dropped == 1 and not split.windows  # nothing of the answer fits in 16 tokens
    short = _examples(6)
    packed = tokenize_split(short, tok, template, block_size=32, pack=True)
    unpacked = tokenize_split(short, tok, template, block_size=32)
    assert packed.target_tokens == unpacked.target_tokens
    assert all(x.numel() == 32 for x, _ in packed.windows[:-1])


def test_collate_pads_with_ignored_targets():
    x, y = collate(
        [(torch.tensor([1, 2, 3]), torch.tensor([2, 3, 4])), (torch.tensor([5]), torch.tensor([6]))], 0
    )
    assert x.tolist() == [[1, 2, 3], [5, 0, 0]]
    assert y.tolist() == [[2, 3, 4], [6, -100, -100]]


def test_epoch_order_depends_on_seed_and_epoch_only():
    assert epoch_order(50, 1, 2) == epoch_order(50, 1, 2)
    assert epoch_order(50, 1, 2) != epoch_order(50, 1, 3)
    assert sorted(epoch_order(50, 1, 2)) == list(range(50))
