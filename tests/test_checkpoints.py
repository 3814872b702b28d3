"""Checkpoints: round trips for every format, unsafe and broken files refused with one-line errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hessgpt.config import PRESETS, ModelConfig, count_parameters, get_preset
from hessgpt.errors import HessError
from hessgpt.loading import build_model, load_model
from hessgpt.model import GPT

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpt2_tok():
    from hessgpt.tokenizer import gpt2_tokenizer

    try:
        return gpt2_tokenizer()
    except HessError as exc:
        pytest.skip(str(exc))


def _tiny_cfg(**kw) -> ModelConfig:
    base = {"arch": "gpt2", "vocab_size": 50257, "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32}
    base.update(kw)
    return ModelConfig(**base)


def _logits(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids)[0]


def test_preset_parameter_counts():
    model = GPT(get_preset("hessgpt-51m"))
    assert model.num_parameters() == count_parameters(get_preset("hessgpt-51m"))
    # The seed model: about 51.5M parameters with tied embeddings.
    assert 51_000_000 < model.num_parameters() < 52_000_000
    for name, cfg in PRESETS.items():
        if cfg.n_embd <= 512:
            assert GPT(cfg).num_parameters() == count_parameters(cfg), name
    with torch.device("meta"):
        for name in ("hessgpt-0.3b-code", "hessgpt-0.5b"):
            cfg = get_preset(name)
            assert sum(p.numel() for p in GPT(cfg).parameters()) == count_parameters(cfg)
            assert cfg.kv_heads < cfg.n_head


def test_unknown_preset_names_the_flag():
    with pytest.raises(HessError, match=r"--preset: unknown preset 'nope'"):
        get_preset("nope")


def test_native_round_trip(tmp_path, gpt2_tok):
    torch.manual_seed(0)
    loaded = load_model("preset:tiny-gpt2")
    path = loaded.save(tmp_path / "a.pt", meta={"epoch": 3, "val_loss": 2.5})
    again = load_model(path)
    ids = torch.randint(0, 50257, (1, 9))
    assert torch.equal(_logits(loaded.model, ids), _logits(again.model, ids))
    assert again.meta["epoch"] == 3 and again.config.to_dict() == loaded.config.to_dict()
    assert again.tokenizer.encode("Hello world") == [15496, 995]
    assert again.chat_template.source == loaded.chat_template.source
    assert again.sha256 and len(again.sha256) == 64


def test_llama_native_round_trip(tmp_path, gpt2_tok):
    loaded = load_model("preset:tiny-llama", seed=1)
    again = load_model(loaded.save(tmp_path / "l.pt"))
    ids = torch.randint(0, 50257, (2, 7))
    assert torch.equal(_logits(loaded.model, ids), _logits(again.model, ids))


def test_nanogpt_checkpoint(tmp_path, gpt2_tok):
    torch.manual_seed(0)
    cfg = _tiny_cfg(vocab_size=50304)
    model = GPT(cfg)
    state = {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}
    ckpt = {"model": state, "model_args": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32,
                                           "bias": True, "vocab_size": 50304, "dropout": 0.0},
            "iter_num": 500, "best_val_loss": torch.tensor(1.75), "config": {"dataset": "shakespeare"}}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    loaded = load_model(tmp_path / "ckpt.pt")
    assert loaded.config.vocab_size == 50257 and loaded.meta["vocab_trimmed_from"] == 50304
    assert loaded.meta["step"] == 500 and loaded.meta["val_loss"] == pytest.approx(1.75)
    ids = torch.randint(0, 50257, (1, 6))
    assert torch.allclose(_logits(loaded.model, ids), _logits(model, ids)[..., :50257], atol=1e-6)
    # and through `hessgpt import` to a native file
    out = tmp_path / "native.pt"
    run = subprocess.run([sys.executable, "-m", "hessgpt", "import", str(tmp_path / "ckpt.pt"), "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert torch.allclose(_logits(load_model(out).model, ids), _logits(loaded.model, ids))


def test_hf_gpt2_bin_and_safetensors(tmp_path, gpt2_tok):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(vocab_size=50257, n_positions=32, n_embd=16, n_layer=2, n_head=2)
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    ids = torch.randint(0, 50257, (1, 8))
    with torch.no_grad():
        ref = hf(ids).logits
    for folder, safe in (("bin", False), ("st", True)):
        hf.save_pretrained(tmp_path / folder, safe_serialization=safe)
        loaded = load_model(tmp_path / folder)
        assert torch.allclose(_logits(loaded.model, ids), ref, atol=1e-5)


def test_plain_state_dict_with_seed_config_names(tmp_path, gpt2_tok):
    cfg = _tiny_cfg()
    model = GPT(cfg)
    torch.save({"config": {"vocab_size": 50257, "embed_dim": 16, "num_heads": 2, "num_layers": 1, "max_seq_len": 32},
                "model_state_dict": model.state_dict()}, tmp_path / "mine.pt")
    loaded = load_model(tmp_path / "mine.pt")
    ids = torch.randint(0, 50257, (1, 5))
    assert torch.equal(_logits(loaded.model, ids), _logits(model, ids))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_code_running_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": _Evil()}, path)
    with pytest.raises(HessError, match="refused to load"):
        load_model(path)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(HessError, match=str(raw)):
        load_model(raw)


def test_truncated_and_unknown_files_are_refused(tmp_path, gpt2_tok):
    good = load_model("preset:tiny-gpt2").save(tmp_path / "good.pt")
    data = good.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(HessError, match="corrupted or truncated"):
        load_model(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(HessError, match=str(junk)):
        load_model(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": {"a.b": torch.zeros(2)}}, other)
    with pytest.raises(HessError, match="unrecognised checkpoint layout"):
        load_model(other)
    with pytest.raises(HessError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")


def test_wrong_shapes_name_the_key(tmp_path, gpt2_tok):
    model = GPT(_tiny_cfg())
    state = model.state_dict()
    state["transformer.h.0.mlp.c_fc.weight"] = torch.zeros(3, 3)
    with pytest.raises(HessError, match="transformer.h.0.mlp.c_fc.weight"):
        build_model(_tiny_cfg(), state, "x.pt")
    state = model.state_dict()
    state["transformer.h.0.extra.weight"] = torch.zeros(2)
    with pytest.raises(HessError, match="could not place key.*transformer.h.0.extra.weight"):
        build_model(_tiny_cfg(), state, "x.pt")


def test_vocab_mismatch_is_refused(tmp_path, gpt2_tok):
    model = GPT(_tiny_cfg(vocab_size=1000))
    torch.save({"config": _tiny_cfg(vocab_size=1000).to_dict(), "model": model.state_dict()}, tmp_path / "small.pt")
    with pytest.raises(HessError, match="vocabulary mismatch"):
        load_model(tmp_path / "small.pt")


def test_interrupted_save_leaves_previous_file(tmp_path, monkeypatch, gpt2_tok):
    loaded = load_model("preset:tiny-gpt2")
    path = loaded.save(tmp_path / "ck.pt")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(HessError, match="No space left on device"):
        loaded.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 10)
    for argv in (["import", str(bad), "--out", str(tmp_path / "o.pt")],
                 ["import", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o.pt")]):
        run = subprocess.run([sys.executable, "-m", "hessgpt", *argv], capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 2
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in run.stderr


def test_presets_command_lists_counts():
    run = subprocess.run([sys.executable, "-m", "hessgpt", "presets"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0
    assert "hessgpt-51m" in run.stdout and "51,475,968" in run.stdout
