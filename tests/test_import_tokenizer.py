"""Importing character-level checkpoints: nanoGPT's meta.pkl and ``hessgpt import --tokenizer``."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from hessgpt.cli import main
from hessgpt.config import ModelConfig
from hessgpt.errors import HessError
from hessgpt.importers.tokenizer_arg import read_meta_pkl
from hessgpt.loading import load_model
from hessgpt.model import GPT

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


def _shakespeare_char(tmp_path):
    """A nanoGPT shakespeare_char layout: out-shakespeare-char/ckpt.pt and data/shakespeare_char/meta.pkl."""
    chars = sorted(set(TEXT))
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": {c: i for i, c in enumerate(chars)}}
    (tmp_path / "data" / "shakespeare_char").mkdir(parents=True)
    with open(tmp_path / "data" / "shakespeare_char" / "meta.pkl", "wb") as fh:
        pickle.dump(meta, fh)
    torch.manual_seed(0)
    cfg = ModelConfig(arch="gpt2", vocab_size=len(chars), n_layer=1, n_head=2, n_embd=16, block_size=32)
    model = GPT(cfg).eval()
    ckpt = {"model": {f"_orig_mod.{k}": v for k, v in model.state_dict().items()},
            "model_args": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32, "bias": True,
                           "vocab_size": len(chars), "dropout": 0.0},
            "iter_num": 5000, "config": {"dataset": "shakespeare_char"}}
    (tmp_path / "out-shakespeare-char").mkdir()
    torch.save(ckpt, tmp_path / "out-shakespeare-char" / "ckpt.pt")
    return tmp_path / "out-shakespeare-char" / "ckpt.pt", model, meta


def test_nanogpt_char_checkpoint_finds_meta_pkl_and_keeps_ids(tmp_path, capsys):
    ckpt, model, meta = _shakespeare_char(tmp_path)
    out = tmp_path / "native.pt"
    assert main(["import", str(ckpt), "--out", str(out)]) == 0, capsys.readouterr().err
    native = load_model(out)
    ids = native.tokenizer.encode("Speak, speak.")
    assert ids == [meta["stoi"][c] for c in "Speak, speak."]
    assert native.tokenizer.decode(ids) == "Speak, speak."
    x = torch.tensor([ids])
    with torch.no_grad():
        assert torch.allclose(native.model(x)[0], model(x)[0], atol=1e-6)


def test_tokenizer_flag_and_missing_meta_message(tmp_path, capsys, monkeypatch):
    ckpt, _model, _meta = _shakespeare_char(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    moved = tmp_path / "a" / "b" / "elsewhere.pt"
    os.replace(ckpt, moved)
    monkeypatch.chdir(tmp_path / "out-shakespeare-char")  # data/ is neither below the cwd nor near the file
    assert main(["import", str(moved), "--out", str(tmp_path / "n.pt")]) == 2
    assert "pass --tokenizer" in capsys.readouterr().err
    meta_pkl = tmp_path / "data" / "shakespeare_char" / "meta.pkl"
    assert main(["import", str(moved), "--out", str(tmp_path / "n.pt"), "--tokenizer", str(meta_pkl)]) == 0
    assert load_model(tmp_path / "n.pt").tokenizer.decode([0, 1]) == "".join(sorted(set(TEXT))[:2])


def test_meta_pkl_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "meta.pkl"
    bad.write_bytes(pickle.dumps({"itos": {0: "a"}, "x": Evil()}))
    with pytest.raises(HessError, match=r"meta.pkl: not a plain-data nanoGPT meta.pkl .*posix.system|os.system"):
        read_meta_pkl(bad)
    assert not marker.exists()
    bad.write_bytes(pickle.dumps({"itos": {0: "a", 1: "a"}}))
    with pytest.raises(HessError, match="same character"):
        read_meta_pkl(bad)


def test_project_char_model_imports_with_char_training_text(tmp_path, capsys):
    from hessgpt.tokenizer import char_tokenizer

    train = tmp_path / "train.txt"
    train.write_text(TEXT, encoding="utf-8")
    tok = char_tokenizer(TEXT)
    cfg = ModelConfig(arch="gpt2", vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=32)
    torch.manual_seed(1)
    model = GPT(cfg)
    torch.save({"config": cfg.to_dict(), "model_state_dict": model.state_dict()}, tmp_path / "mine.pt")
    # Without the tokenizer the file implies GPT-2, which the 20-row model cannot hold.
    assert main(["import", str(tmp_path / "mine.pt"), "--out", str(tmp_path / "a.pt")]) == 2
    assert "vocabulary mismatch" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "mine.pt"), "--out", str(tmp_path / "a.pt"),
                 "--tokenizer", f"char:{train}"]) == 0
    assert load_model(tmp_path / "a.pt").tokenizer.encode("All:") == tok.encode("All:")
