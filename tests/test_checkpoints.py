"""Checkpoints: round trips for every format, unsafe and broken files refused with one-line errors."""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from hessgpt.checkpoint import read_native, safe_torch_load, sha256_file
from hessgpt.cli import main
from hessgpt.config import PRESETS, ModelConfig, count_parameters, get_preset
from hessgpt.errors import HessError
from hessgpt.loading import build_model, load_model
from hessgpt.model import GPT

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

ROOT = Path(__file__).resolve().parents[1]



def _tiny_cfg(**kw) -> ModelConfig:
    base = {"arch": "gpt2", "vocab_size": 50257, "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32}
    base.update(kw)
    return ModelConfig(**base)


def _logits(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids)[0]


def _import(src: Path, out: Path, capsys) -> Path:
    """``hessgpt import SRC --out OUT`` in this process."""
    assert main(["import", str(src), "--out", str(out)]) == 0, capsys.readouterr().err
    assert str(out) in capsys.readouterr().out
    return out


def _ids(vocab: int, shape=(2, 9), seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


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


def test_unknown_preset_names_what_was_given():
    with pytest.raises(HessError, match=r"^--preset: unknown preset 'nope' \(known: hessgpt-51m, "):
        get_preset("nope")
    with pytest.raises(HessError, match=r"^preset:nope: unknown preset 'nope' \(known: .*tiny-gpt2.*\)"):
        load_model("preset:nope")


# ----------------------------------------------------------------------------------------------
# Round trips: each format -> native (through `hessgpt import`) -> reload, identical logits
# ----------------------------------------------------------------------------------------------


def test_native_round_trip(tmp_path, gpt2_tok):
    torch.manual_seed(0)
    loaded = load_model("preset:tiny-gpt2")
    path = loaded.save(tmp_path / "a.pt", meta={"epoch": 3, "val_loss": 2.5})
    again = load_model(path)
    ids = _ids(50257)
    assert torch.equal(_logits(loaded.model, ids), _logits(again.model, ids))
    assert again.meta["epoch"] == 3 and again.config.to_dict() == loaded.config.to_dict()
    assert again.tokenizer.encode("Hello world") == [15496, 995]
    assert again.chat_template.source == loaded.chat_template.source
    assert again.sha256 and len(again.sha256) == 64


def test_llama_native_round_trip(tmp_path, gpt2_tok):
    loaded = load_model("preset:tiny-llama", seed=1)
    again = load_model(loaded.save(tmp_path / "l.pt"))
    ids = _ids(50257, (2, 7))
    assert torch.equal(_logits(loaded.model, ids), _logits(again.model, ids))


def test_nanogpt_checkpoint(tmp_path, gpt2_tok, capsys):
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
    ids = _ids(50257, (1, 6))
    assert torch.allclose(_logits(loaded.model, ids), _logits(model, ids)[..., :50257], atol=1e-6)
    native = load_model(_import(tmp_path / "ckpt.pt", tmp_path / "native.pt", capsys))
    assert torch.equal(_logits(native.model, ids), _logits(loaded.model, ids))


def test_hf_gpt2_folder_to_native_and_back(tmp_path, gpt2_tok, capsys):
    transformers = pytest.importorskip("transformers")
    from test_model_parity import save_hf_gpt2

    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(vocab_size=50257, n_positions=32, n_embd=16, n_layer=2, n_head=2)
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    ids = _ids(50257, (1, 8))
    with torch.no_grad():
        ref = hf(ids).logits
    for folder, safe in (("bin", False), ("st", True)):
        save_hf_gpt2(hf, tmp_path / folder, safe)
        direct = load_model(tmp_path / folder)
        assert torch.allclose(_logits(direct.model, ids), ref, atol=1e-5)
        native = load_model(_import(tmp_path / folder, tmp_path / f"{folder}.pt", capsys))
        assert native.meta["source_format"] == "hf-gpt2"
        assert torch.equal(_logits(native.model, ids), _logits(direct.model, ids))
        assert native.tokenizer.encode("Hello world") == [15496, 995]
    # safetensors is recognised by its content, not its name
    shutil.copy(tmp_path / "st" / "model.safetensors", tmp_path / "st" / "weights.pt")
    renamed = load_model(tmp_path / "st" / "weights.pt")
    assert torch.allclose(_logits(renamed.model, ids), ref, atol=1e-5)


def test_plain_state_dict_with_seed_config_names(tmp_path, gpt2_tok, capsys):
    torch.manual_seed(0)
    model = GPT(_tiny_cfg())
    torch.save({"config": {"vocab_size": 50257, "embed_dim": 16, "num_heads": 2, "num_layers": 1, "max_seq_len": 32},
                "model_state_dict": model.state_dict(), "epoch": 2}, tmp_path / "mine.pt")
    loaded = load_model(tmp_path / "mine.pt")
    ids = _ids(50257, (1, 5))
    assert torch.equal(_logits(loaded.model, ids), _logits(model, ids))
    native = load_model(_import(tmp_path / "mine.pt", tmp_path / "native.pt", capsys))
    assert native.meta["source_format"] == "state-dict" and native.config.n_embd == 16
    assert torch.equal(_logits(native.model, ids), _logits(model, ids))


def test_gguf_to_native_and_back(tmp_path, capsys):
    pytest.importorskip("transformers")
    from test_model_parity import tiny_hf_llama, write_llama_gguf

    template = "{% for m in messages %}<|endoftext|>{{ m['content'] }}{% endfor %}"
    gguf_path = write_llama_gguf(tmp_path / "tiny.gguf", tiny_hf_llama(tie=False), template=template)
    direct = load_model(gguf_path)
    native = load_model(_import(gguf_path, tmp_path / "tiny.pt", capsys))
    ids = _ids(direct.config.vocab_size, (2, 11))
    assert torch.equal(_logits(native.model, ids), _logits(direct.model, ids))
    assert native.config.to_dict() == direct.config.to_dict() and not native.config.tie_embeddings
    assert native.chat_template.source == template
    assert native.tokenizer.encode(" the t") == direct.tokenizer.encode(" the t")
    assert native.tokenizer.eos_id == direct.tokenizer.eos_id
    assert native.meta["source_format"] == "gguf" and native.meta["imported_from"] == str(gguf_path)


# ----------------------------------------------------------------------------------------------
# Unsafe and broken files
# ----------------------------------------------------------------------------------------------


class _Touch:
    """A pickle payload that creates a file when unpickled the unsafe way."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_code_running_pickles_are_refused_and_never_run(tmp_path):
    # The payload is live: an ordinary unpickler does run it.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Touch(proof)))
    assert proof.exists()

    sentinel = tmp_path / "sentinel"
    files = {
        "raw4.pt": pickle.dumps(_Touch(sentinel), protocol=4),
        "raw2.pt": pickle.dumps(_Touch(sentinel), protocol=2),
        "raw0.pt": pickle.dumps(_Touch(sentinel), protocol=0),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"model": _Touch(sentinel)}, tmp_path / "zip.pt")
    torch.save({"model": _Touch(sentinel)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in [*files, "zip.pt", "legacy.pt"]:
        path = tmp_path / name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(HessError) as err:
                load_model(path)
        message = str(err.value)
        assert message.startswith(f"{path}: refused to load: opening it would run code"), message
        assert "posix.system" in message and "torch.save(model.state_dict())" in message
        assert "\n" not in message and not caught, [str(w.message) for w in caught]
        assert not sentinel.exists(), name


def test_truncated_garbage_and_unknown_files(tmp_path, gpt2_tok):
    good = load_model("preset:tiny-gpt2").save(tmp_path / "good.pt")
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        with pytest.raises(HessError, match=rf"^{path}: corrupted or truncated checkpoint .*copy or save it again$"):
            load_model(path)
    legacy = tmp_path / "legacy.pt"
    torch.save({"a": torch.zeros(100)}, legacy, _use_new_zipfile_serialization=False)
    (tmp_path / "legacy_cut.pt").write_bytes(legacy.read_bytes()[:200])
    with pytest.raises(HessError, match="corrupted or truncated checkpoint"):
        load_model(tmp_path / "legacy_cut.pt")

    unknown = "file format not recognised; supported: native HessGPT .pt, nanoGPT ckpt.pt, Hugging Face GPT-2"
    text = tmp_path / "text.pt"
    text.write_text("hello\n")
    noise = tmp_path / "noise.pt"
    noise.write_bytes(b"\x11" + bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).tolist()))
    for path in (text, noise):
        with pytest.raises(HessError, match=rf"^{path}: {unknown}.*GGUF"):
            load_model(path)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(HessError, match="the file is empty"):
        load_model(empty)
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    with pytest.raises(HessError, match=r"a plain Python pickle, not a torch.save checkpoint; save the weights"):
        load_model(plain)
    other = tmp_path / "other.pt"
    torch.save({"weights": {"a.b": torch.zeros(2)}}, other)
    with pytest.raises(HessError, match=r"unrecognised checkpoint layout \(top-level keys: weights\); supported:"):
        load_model(other)
    with pytest.raises(HessError, match=r"missing.pt: no such checkpoint file; check the path"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(HessError, match=r"missing.pt: no such file; check the path"):
        safe_torch_load(tmp_path / "missing.pt")


def test_damaged_safetensors_and_gguf(tmp_path):
    pytest.importorskip("transformers")
    from test_model_parity import tiny_hf_llama, write_llama_gguf

    from hessgpt.checkpoint import sniff

    header = b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    st = tmp_path / "w.safetensors"
    st.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    assert sniff(st) == "safetensors"
    st.write_bytes(st.read_bytes()[:-8])
    with pytest.raises(HessError, match=r"w.safetensors: corrupted or truncated safetensors file .*copy or save it again"):
        load_model(st)
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"not safetensors at all")
    with pytest.raises(HessError, match=r"fake.safetensors: not a valid safetensors file"):
        load_model(fake)
    gguf_path = write_llama_gguf(tmp_path / "t.gguf", tiny_hf_llama())
    data = gguf_path.read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) // 2])
    with pytest.raises(HessError, match=r"cut.gguf: corrupted or truncated GGUF file .*copy or download it again"):
        load_model(tmp_path / "cut.gguf")


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
    with pytest.raises(HessError, match=r"small.pt: tokenizer/model vocabulary mismatch: the tokenizer has 50257 ids "
                                        r"but the model only 1000 embedding rows; save the checkpoint with the "
                                        r"tokenizer it was trained with, or set vocab_size to at least 50257$"):
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


# ----------------------------------------------------------------------------------------------
# The reference model: imported once, re-imported only when the file on disk is not honest
# ----------------------------------------------------------------------------------------------


def test_reference_is_imported_once_and_checked_after(tmp_path, monkeypatch, capsys):
    pytest.importorskip("transformers")
    from test_model_parity import tiny_hf_llama, write_llama_gguf

    import hessgpt.loading
    from hessgpt.reference import ensure_reference

    gguf_path = write_llama_gguf(tmp_path / "ref.gguf", tiny_hf_llama())
    monkeypatch.setenv("HESSGPT_SMOLLM2_GGUF", str(gguf_path))
    calls = []
    real_load = hessgpt.loading.load_model
    monkeypatch.setattr(hessgpt.loading, "load_model", lambda p, **kw: calls.append(p) or real_load(p, **kw))

    out = ensure_reference(tmp_path / "ck")
    assert calls == [gguf_path] and out == tmp_path / "ck" / "smollm2-135m-instruct.pt"
    meta = read_native(safe_torch_load(out), out)[3]
    assert meta["source_gguf"]["sha256"] == sha256_file(gguf_path)
    stamp = out.stat().st_mtime_ns
    assert ensure_reference(tmp_path / "ck") == out  # second run: no import, nothing written
    assert calls == [gguf_path] and out.stat().st_mtime_ns == stamp and capsys.readouterr().err == ""

    out.write_bytes(b"junk")  # a junk file at the path is not a valid reference
    ensure_reference(tmp_path / "ck")
    err = capsys.readouterr().err
    assert len(calls) == 2 and err == f"{out}: not a file written by torch.save (format not recognised); importing it again\n"
    assert load_model(out).config.name == "smollm2-135m-instruct"

    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    ensure_reference(tmp_path / "ck")
    err = capsys.readouterr().err
    assert len(calls) == 3 and "corrupted or truncated checkpoint (" in err and "importing it again" in err, err

    write_llama_gguf(gguf_path, tiny_hf_llama(seed=1))  # another GGUF now installed at the same place
    os.utime(gguf_path, ns=(1, 1))
    ensure_reference(tmp_path / "ck")
    err = capsys.readouterr().err
    assert len(calls) == 4 and "imported from a different GGUF" in err, err
    assert ensure_reference(tmp_path / "ck") == out and len(calls) == 4
