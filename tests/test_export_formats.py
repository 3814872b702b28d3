"""``hessgpt export --format safetensors|gguf``: files that our importers, and transformers for GGUF,
read back with the same logits, tokenizer and chat template; refusals for what a format cannot hold."""

from __future__ import annotations

import json

import pytest
import torch

from hessgpt.chat import make_chat_template
from hessgpt.cli import main
from hessgpt.config import get_preset
from hessgpt.loading import LoadedModel, load_model
from hessgpt.model import GPT

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["Hello world, 12345 ça va?", "  def f(x):\n\treturn x**2  \n\n", "naïve café 😀 <|endoftext|> end"]
CORPUS = " ".join(["the quick brown fox jumps over the lazy dog 0123456789 café naïve"] * 40)


def small_bpe_model(tmp_path, pre: str = "gpt2", seed: int = 5):
    """A tiny Llama on a BPE of ~300 ids trained here (fast to write and for transformers to read)."""
    from hessgpt.bpe_train import train_bpe

    tok = train_bpe(CORPUS, 300, pre=pre)
    config = get_preset("tiny-llama", vocab_size=tok.vocab_size)
    torch.manual_seed(seed)
    loaded = LoadedModel(GPT(config).eval(), tok, make_chat_template(None, tok), config)
    return load_model(loaded.save(tmp_path / "small.pt", meta={"epoch": 3, "val_loss": 2.5}))


def export(ck, fmt: str, out, *flags: str) -> int:
    return main(["export", str(ck), "--format", fmt, "--out", str(out), *flags])


def logits(loaded, vocab: int) -> torch.Tensor:
    ids = torch.randint(0, vocab, (2, 13), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return loaded.model(ids)[0]


def assert_same_model(again, ours) -> None:
    def described(loaded) -> dict:  # GGUF states the MLP width the preset leaves implicit
        return loaded.config.to_dict() | {"name": None, "intermediate_size": loaded.config.mlp_hidden}

    assert described(again) == described(ours)
    assert torch.equal(logits(again, ours.config.vocab_size), logits(ours, ours.config.vocab_size))
    for text in TEXTS:
        assert again.tokenizer.encode(text) == ours.tokenizer.encode(text), text
        assert again.tokenizer.encode_with_specials(text) == ours.tokenizer.encode_with_specials(text), text
    assert again.tokenizer.eos_id == ours.tokenizer.eos_id
    assert again.chat_template.source == ours.chat_template.source
    assert again.chat_template.stop_strings == ours.chat_template.stop_strings


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-llama"])
def test_safetensors_round_trip_through_hessgpt_import(tmp_path, capsys, gpt2_tok, preset):
    ours = load_model(load_model(f"preset:{preset}", seed=3).save(tmp_path / "m.pt", meta={"epoch": 2}))
    out = tmp_path / "m.safetensors"
    assert export(tmp_path / "m.pt", "safetensors", out) == 0, capsys.readouterr().err
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as fh:
        names, metadata = set(fh.keys()), fh.metadata()
    assert "transformer.h.0.ln_1.weight" in names and "lm_head.weight" not in names  # our names, tied head
    assert json.loads(metadata["hessgpt.config"]) == ours.config.to_dict()
    assert json.loads(metadata["hessgpt.tokenizer"])["name"] == "gpt2"
    assert main(["import", str(out), "--out", str(tmp_path / "back.pt")]) == 0, capsys.readouterr().err
    again = load_model(tmp_path / "back.pt")
    assert_same_model(again, ours)
    assert again.config.name == ours.config.name and again.meta["epoch"] == 2


def test_safetensors_keeps_a_trained_tokenizer_and_its_template(tmp_path, capsys):
    ours = small_bpe_model(tmp_path, pre="smollm")
    assert export(tmp_path / "small.pt", "safetensors", tmp_path / "s.safetensors") == 0, capsys.readouterr().err
    again = load_model(tmp_path / "s.safetensors")
    assert again.tokenizer.to_dict() == ours.tokenizer.to_dict()
    assert_same_model(again, ours)


@pytest.mark.slow
def test_gguf_round_trip_through_our_importer_with_the_gpt2_bpe(tmp_path, capsys, gpt2_tok):
    """About 30 s: the gguf package reads GPT-2's 158,000 tokens and merges one Python object each."""
    ours = load_model(load_model("preset:tiny-llama", seed=4).save(tmp_path / "m.pt"))
    out = tmp_path / "m.gguf"
    assert export(tmp_path / "m.pt", "gguf", out) == 0, capsys.readouterr().err
    again = load_model(out)
    assert again.meta["source_format"] == "gguf" and again.meta["quantization"] == ["F32"]
    assert_same_model(again, ours)


def test_gguf_is_read_by_transformers_with_our_logits_and_token_ids(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    ours = small_bpe_model(tmp_path)
    out = tmp_path / "small.gguf"
    assert export(tmp_path / "small.pt", "gguf", out) == 0, capsys.readouterr().err
    assert_same_model(load_model(out), ours)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=out.name,
                                                           dtype=torch.float32).eval()
    ids = torch.randint(0, ours.config.vocab_size, (2, 13), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, ours.model(ids)[0], atol=1e-4)
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=out.name)
    for text in TEXTS[:2]:
        assert tok(text, add_special_tokens=False)["input_ids"] == ours.tokenizer.encode(text), text


def test_gguf_refuses_gpt2_models_and_char_tokenizers_naming_the_format_to_use(tmp_path, capsys, gpt2_tok):
    load_model("preset:tiny-gpt2", seed=3).save(tmp_path / "g.pt")
    assert export(tmp_path / "g.pt", "gguf", tmp_path / "g.gguf") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--format gguf" in err and "'gpt2'" in err and "--format safetensors" in err
    from hessgpt.tokenizer import char_tokenizer

    tok = char_tokenizer(CORPUS)
    config = get_preset("tiny-llama", vocab_size=tok.vocab_size)
    LoadedModel(GPT(config).eval(), tok, make_chat_template(None, tok), config).save(tmp_path / "c.pt")
    assert export(tmp_path / "c.pt", "gguf", tmp_path / "c.gguf") == 2
    err = capsys.readouterr().err
    assert "byte-level BPE" in err and "char" in err and "--format safetensors" in err
    assert not (tmp_path / "g.gguf").exists() and not (tmp_path / "c.gguf").exists()
    assert export(tmp_path / "c.pt", "safetensors", tmp_path / "c.safetensors") == 0  # which it says to use
    again = load_model(tmp_path / "c.safetensors")
    assert again.tokenizer.encode("the fox") == tok.encode("the fox")


@pytest.mark.parametrize("fmt", ["safetensors", "gguf", "hf"])
def test_an_existing_out_is_replaced_only_with_overwrite(tmp_path, capsys, gpt2_tok, fmt):
    if fmt == "gguf":
        ours = small_bpe_model(tmp_path)
    else:  # our importer reads GPT-2 folders back (transformers reads Llama ones)
        ours = load_model(load_model("preset:tiny-gpt2", seed=3).save(tmp_path / "small.pt"))
    out = tmp_path / ("folder" if fmt == "hf" else f"m.{fmt}")
    if fmt == "hf":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        out.write_text("mine")
    assert export(tmp_path / "small.pt", fmt, out) == 2
    assert capsys.readouterr().err == f"error: --out: {out} already exists; pass --overwrite to replace it\n"
    assert (out / "notes.txt" if fmt == "hf" else out).read_text() == "mine"
    assert export(tmp_path / "small.pt", fmt, out, "--overwrite") == 0, capsys.readouterr().err
    vocab = ours.config.vocab_size
    assert torch.allclose(logits(load_model(out), vocab), logits(ours, vocab), atol=1e-5)
    assert not list(tmp_path.glob("**/.*.tmp"))


def test_a_tampered_safetensors_export_is_refused_with_the_field_named(tmp_path, gpt2_tok):
    from safetensors.torch import load_file, save_file

    from hessgpt.errors import HessError

    load_model("preset:tiny-llama", seed=3).save(tmp_path / "m.pt")
    assert export(tmp_path / "m.pt", "safetensors", tmp_path / "m.safetensors") == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as fh:
        metadata = fh.metadata()
    state = load_file(str(tmp_path / "m.safetensors"))
    bad = tmp_path / "bad.safetensors"
    config = json.loads(metadata["hessgpt.config"])
    save_file(state, str(bad), metadata={**metadata, "hessgpt.config": json.dumps({**config, "n_layer": 3})})
    with pytest.raises(HessError, match=r"bad\.safetensors: missing weight\(s\): transformer\.h\.2\."):
        load_model(bad)
    save_file(state, str(bad), metadata={**metadata, "hessgpt.tokenizer": "{not json"})
    with pytest.raises(HessError, match="'hessgpt.tokenizer' is not valid JSON"):
        load_model(bad)


@pytest.mark.slow
def test_smollm2_exports_to_gguf_and_safetensors_with_identical_logits(smollm2, tmp_path):
    """The reference model (~30 s per format on two cores): our importer reads both back exactly,
    transformers reads the GGUF with logits matching ours."""
    transformers = pytest.importorskip("transformers")
    from hessgpt.exporters.gguf_llama import export_gguf
    from hessgpt.exporters.native_safetensors import export_safetensors

    ids = torch.tensor([smollm2.tokenizer.encode("The capital of France is")])
    with torch.no_grad():
        expected = smollm2.model(ids)[0]
    export_gguf(smollm2, tmp_path / "s.gguf")
    export_safetensors(smollm2, tmp_path / "s.safetensors")
    for name in ("s.gguf", "s.safetensors"):
        again = load_model(tmp_path / name)
        with torch.no_grad():
            assert torch.equal(again.model(ids)[0], expected), name
        assert again.tokenizer.encode(TEXTS[0]) == smollm2.tokenizer.encode(TEXTS[0])
        assert again.chat_template.source == smollm2.chat_template.source
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="s.gguf",
                                                           dtype=torch.float32).eval()
    with torch.no_grad():
        assert (hf(ids).logits - expected).abs().max().item() < 1e-3


def weights_of(loaded) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in loaded.model.state_dict().items()}


@pytest.mark.parametrize(("fmt", "dtype", "types"), [("gguf", "f16", ["F16", "F32"]), ("gguf", "q8_0", ["F32", "Q8_0"]),
                                                     ("safetensors", "f16", None), ("safetensors", "bf16", None)])
def test_smaller_weight_types_hold_the_rounded_weights(tmp_path, capsys, fmt, dtype, types):
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    ours = small_bpe_model(tmp_path)
    out = tmp_path / f"small.{dtype}.{fmt}"
    assert export(tmp_path / "small.pt", fmt, out, "--dtype", dtype) == 0, capsys.readouterr().err
    again = load_model(out)
    if types is not None:
        assert again.meta["quantization"] == types
    for key, value in weights_of(ours).items():
        if value.dim() == 1 or dtype == "f16":  # norms stay F32 in GGUF
            rounded = value if value.dim() == 1 and fmt == "gguf" else value.half().float()
        elif dtype == "bf16":
            rounded = value.bfloat16().float()
        else:  # llama.cpp's 8-bit blocks of 32, as the gguf package computes them
            q8 = GGMLQuantizationType.Q8_0
            rounded = torch.from_numpy(dequantize(quantize(value.numpy(), q8), q8).copy())
        assert torch.equal(weights_of(again)[key], rounded), key
    assert out.stat().st_size < (tmp_path / "small.pt").stat().st_size * 0.6


def test_a_weight_type_the_format_cannot_hold_is_refused(tmp_path, capsys, gpt2_tok):
    load_model("preset:tiny-llama", seed=3).save(tmp_path / "m.pt")
    assert export(tmp_path / "m.pt", "safetensors", tmp_path / "m.safetensors", "--dtype", "q8_0") == 2
    assert capsys.readouterr().err == "error: --dtype: --format safetensors writes f32, f16, bf16, not q8_0\n"
    assert export(tmp_path / "m.pt", "hf", tmp_path / "hf", "--dtype", "f16") == 2
    assert "--format hf writes f32" in capsys.readouterr().err
