"""The core commands as a user meets them: one-line errors with exit code 2, `tokenizer train` with its
default output, and `generate --chat` printing only the completion."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from test_checkpoints import _Touch

from hessgpt.cli import main
from hessgpt.loading import load_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture(scope="module")
def tiny_native(tmp_path_factory, gpt2_tok) -> Path:
    """A native tiny GPT-2 with the default chat template; weights scaled so its choices are decisive."""
    loaded = load_model("preset:tiny-gpt2", seed=0)
    with torch.no_grad():
        for p in loaded.model.parameters():
            if p.dim() > 1:
                p.mul_(4.0)
    return loaded.save(tmp_path_factory.mktemp("ck") / "tiny.pt")


def _one_error_line(argv: list[str], capsys) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not caught, [str(w.message) for w in caught]
    return lines[0]


def test_bad_inputs_give_one_line_naming_the_file_or_flag(tmp_path, capsys, gpt2_tok):
    text = tmp_path / "text.pt"
    text.write_text("hello\n")
    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes([0x11, *torch.randint(0, 256, (512,), generator=torch.Generator().manual_seed(3)).tolist()]))
    sentinel = tmp_path / "sentinel"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Touch(sentinel), protocol=4))
    good = load_model("preset:tiny-gpt2").save(tmp_path / "good.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:5000])
    out = str(tmp_path / "o.pt")
    cases = {
        text: f"error: {text}: file format not recognised; supported: native HessGPT .pt, nanoGPT ckpt.pt, "
              "Hugging Face GPT-2 .bin/.safetensors/folder, GGUF (Llama), a hessgpt .safetensors export, "
              "or a .pt holding "
              "{'config': ..., 'model_state_dict': ...}",
        noise: f"error: {noise}: file format not recognised; supported: ",
        evil: f"error: {evil}: refused to load: opening it would run code (its pickle calls posix.system); ",
        cut: f"error: {cut}: corrupted or truncated checkpoint (",
        tmp_path / "missing.pt": f"error: {tmp_path / 'missing.pt'}: no such checkpoint file; check the path",
    }
    for path, expected in cases.items():
        assert _one_error_line(["import", str(path), "--out", out], capsys).startswith(expected)
    assert not sentinel.exists() and not Path(out).exists()
    line = _one_error_line(["generate", "--checkpoint", "preset:nope", "--prompt", "hi"], capsys)
    assert line.startswith("error: preset:nope: unknown preset 'nope' (known: hessgpt-51m, ")
    assert line.endswith("; `hessgpt presets` lists them")


def test_refused_pickle_in_a_real_process_prints_one_line(tmp_path):
    # torch warns about pickle protocol 4 before refusing; in a real process that would be two more lines.
    sentinel = tmp_path / "sentinel"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Touch(sentinel), protocol=4))
    run = subprocess.run([sys.executable, "-m", "hessgpt", "import", str(evil), "--out", str(tmp_path / "o.pt")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {evil}: refused to load"), run.stderr
    assert not sentinel.exists()


def test_tokenizer_train_writes_beside_the_text_by_default(tmp_path, capsys):
    from hessgpt.tokenizer import load_tokenizer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat, the hat sat on the cat. " * 50, encoding="utf-8")
    assert main(["tokenizer", "train", str(corpus), "--vocab-size", "300"]) == 0
    written = tmp_path / "corpus.tokenizer.json"
    assert capsys.readouterr().out.startswith(f"{written}: ")
    tok = load_tokenizer(written)
    assert tok.decode(tok.encode("the cat sat")) == "the cat sat" and len(tok.encode("the cat")) < 7
    assert main(["tokenizer", "train", str(corpus), "--vocab-size", "280", "--out", str(tmp_path / "t.json")]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 't.json'}: ")
    assert _one_error_line(["tokenizer", "train", str(corpus), "--vocab-size", "100"], capsys).startswith(
        "error: --vocab-size: must be at least 256")


def _naive_chat_completion(path: Path, prompt: str, steps: int) -> str:
    """Greedy decoding by full recompute through the model's forward (no engine, no cache)."""
    loaded = load_model(path)
    template = loaded.chat_template
    ids = template.render([{"role": "user", "content": prompt}]).ids
    ends = set(template.end_of_turn_ids)
    new: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            nxt = int(loaded.model(torch.tensor([ids + new]))[0][0, -1].argmax())
            if nxt in ends:
                break
            new.append(nxt)
    text = loaded.tokenizer.decode(new)
    for stop in template.stop_strings:
        text = text.split(stop)[0]
    return text


def test_generate_chat_prints_only_the_completion(tiny_native, capsys):
    argv = ["generate", "--checkpoint", str(tiny_native), "--prompt", "Name a colour.", "--chat",
            "--max-new-tokens", "8", "--temperature", "0"]
    assert main(argv) == 0
    first, err = capsys.readouterr()
    assert main(argv) == 0
    second, _ = capsys.readouterr()
    assert first == second  # deterministic
    template = load_model(tiny_native).chat_template  # the documented native default
    assert template.render_text([{"role": "user", "content": "Name a colour."}]) == "User: Name a colour.\nAssistant:"
    assert template.end_of_turn_ids == [50256]
    expected = _naive_chat_completion(tiny_native, "Name a colour.", 8)
    assert expected and first == expected + "\n", (first, expected)
    assert "Name a colour" not in first and "User:" not in first and "Assistant:" not in first
    assert " tokens in " in err.splitlines()[-1]  # the speed line goes to stderr, not stdout


def test_presets_command_lists_counts(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "hessgpt-51m" in out and "51,475,968" in out


def test_tokenizer_train_says_when_the_text_gives_fewer_merges_than_asked(tmp_path, capsys):
    from hessgpt.tokenizer import load_tokenizer

    corpus = tmp_path / "small.txt"
    corpus.write_text("the cat sat on the mat. " * 20, encoding="utf-8")
    assert main(["tokenizer", "train", str(corpus), "--vocab-size", "8000"]) == 0
    tok = load_tokenizer(tmp_path / "small.tokenizer.json")
    base = tok.vocab_size - len(tok.special_tokens)
    assert base < 8000
    assert capsys.readouterr().err == (
        f"note: {base} base ids instead of --vocab-size 8000: the text has only {base - 256} pairs seen "
        "at least twice to merge (more text would give more merges)\n")
    assert main(["tokenizer", "train", str(corpus), "--vocab-size", "260"]) == 0
    assert capsys.readouterr().err == ""  # the size asked was reached: nothing to say
