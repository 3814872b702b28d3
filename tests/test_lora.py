"""LoRA: zero-initialised updates, adapter-only training, exact merges, and refused double merges."""

from __future__ import annotations

import pytest
import torch
from test_data import ByteTokenizer
from test_train import TEMPLATE, conversations, tiny_config

from hessgpt.data import tokenize_split
from hessgpt.errors import HessError
from hessgpt.loading import LoadedModel
from hessgpt.lora import (
    LoRALinear,
    LoraSpec,
    apply_lora,
    load_adapter,
    lora_modules,
    merge_adapter_into,
    merge_lora,
    parse_lora_spec,
)
from hessgpt.model import GPT
from hessgpt.train import DistContext, RunInfo, TrainConfig, Trainer

TOK = ByteTokenizer()


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(arch: str = "gpt2", seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    extra = {"n_kv_head": 1, "bias": False} if arch == "llama" else {}
    return GPT(tiny_config(arch=arch, **extra)).eval()


def _randomise_adapters(model: GPT, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in lora_modules(model).values():
            module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=generator) * 0.05)


IDS = torch.randint(0, 257, (2, 12), generator=torch.Generator().manual_seed(0))


def test_parse_spec():
    spec = parse_lora_spec("r=8,alpha=16,targets=attn,mlp")
    assert (spec.r, spec.alpha, spec.targets, spec.scaling) == (8, 16.0, ("attn", "mlp"), 2.0)
    assert parse_lora_spec("r=4").alpha == 8.0 and parse_lora_spec("r=4").targets == ("attn",)
    with pytest.raises(HessError, match="unknown setting"):
        parse_lora_spec("r=4,rank=3")
    with pytest.raises(HessError, match="r must be at least 1"):
        parse_lora_spec("r=0")


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_untrained_adapter_changes_nothing(arch):
    model = _model(arch)
    with torch.no_grad():
        before = model(IDS)[0]
    names = apply_lora(model, parse_lora_spec("r=4,alpha=8,targets=attn,mlp"))
    expected = 4 if arch == "gpt2" else 7  # per layer: c_attn c_proj c_fc c_proj | q k v o gate up down
    assert len(names) == expected * 2
    with torch.no_grad():
        assert torch.equal(model(IDS)[0], before)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)


def test_merge_equals_w_plus_scaled_ba_and_keeps_logits():
    model = _model()
    apply_lora(model, LoraSpec(r=4, alpha=12.0, targets=("attn", "mlp")))
    _randomise_adapters(model)
    layer = model.transformer.h[0].attn.c_attn
    assert isinstance(layer, LoRALinear)
    expected_weight = layer.base.weight.detach() + layer.lora_B.detach() @ layer.lora_A.detach() * 3.0
    with torch.no_grad():
        unmerged = model(IDS)[0]
    assert merge_lora(model) == 8  # 2 layers x (c_attn, attn.c_proj, c_fc, mlp.c_proj)
    assert not lora_modules(model)  # layers are plain nn.Linear again
    assert torch.allclose(model.transformer.h[0].attn.c_attn.weight, expected_weight, atol=1e-7)
    with torch.no_grad():
        assert torch.allclose(model(IDS)[0], unmerged, atol=1e-5)


def test_merging_a_layer_twice_is_a_no_op():
    model = _model()
    apply_lora(model, LoraSpec(r=2, alpha=2.0))
    _randomise_adapters(model)
    layer = model.transformer.h[0].attn.c_attn
    assert layer.merge() is True
    once = layer.base.weight.detach().clone()
    with torch.no_grad():
        merged_out = model(IDS)[0]
    assert layer.merge() is False
    assert torch.equal(layer.base.weight, once)
    with torch.no_grad():
        assert torch.equal(model(IDS)[0], merged_out)  # a merged layer no longer adds B A x


def _train_adapter(tmp_path):
    config = tiny_config()
    torch.manual_seed(0)
    base = GPT(config)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    spec = parse_lora_spec("r=4,alpha=8,targets=attn,mlp")
    apply_lora(base, spec)
    train = tokenize_split(conversations(16), TOK, TEMPLATE, 64)
    info = RunInfo(
        TOK,
        TEMPLATE,
        config,
        "d" * 64,
        {"source": "base.pt"},
        spec,
        {"config": config.to_dict(), "sha256": "b" * 64, "path": "base.pt"},
    )
    trainer = Trainer(
        base,
        train,
        None,
        TrainConfig(epochs=2, batch_size=8, lr=1e-2, warmup_steps=0),
        info,
        tmp_path,
        DistContext(),
        log=lambda m: None,
        progress=False,
    )
    trainer.fit()
    return config, base_state, trainer


def test_training_touches_only_adapters_and_merge_reproduces_them(tmp_path):
    config, base_state, trainer = _train_adapter(tmp_path)
    model = trainer.raw_model.eval()
    for name, module in lora_modules(model).items():
        assert torch.equal(module.base.weight, base_state[f"{name}.weight"]), name  # frozen
    assert any(module.lora_B.abs().sum() > 0 for module in lora_modules(model).values())
    assert (tmp_path / "epoch1.lora.pt").exists() and (tmp_path / "epoch2.lora.pt").exists()
    assert not (tmp_path / "epoch2.pt").exists()  # adapters are saved apart from the base
    adapter = load_adapter(tmp_path / "epoch2.lora.pt")
    assert adapter.meta["epoch"] == 2 and adapter.meta["data_hash"] == "d" * 64
    assert sum(t.numel() for t in adapter.weights.values()) < 0.2 * sum(
        t.numel() for t in base_state.values()
    )

    fresh = GPT(config)
    fresh.load_state_dict(base_state)
    loaded = LoadedModel(fresh.eval(), TOK, TEMPLATE, config, {}, "base.pt", "b" * 64)
    meta = merge_adapter_into(loaded, adapter, adapter_sha="a" * 64)
    with torch.no_grad():
        assert torch.allclose(loaded.model(IDS)[0], model(IDS)[0], atol=1e-5)
    assert meta["lora_merged"][0]["adapter_sha256"] == "a" * 64

    # The merged checkpoint remembers the adapter: merging it again is refused.
    loaded.meta = meta
    with pytest.raises(HessError, match="already merged"):
        merge_adapter_into(loaded, adapter, adapter_sha="a" * 64)


def test_merge_refuses_another_base(tmp_path):
    config, base_state, _ = _train_adapter(tmp_path)
    adapter = load_adapter(tmp_path / "epoch1.lora.pt")
    other = LoadedModel(GPT(config).eval(), TOK, TEMPLATE, config, {}, "other.pt", "c" * 64)
    with pytest.raises(HessError, match="trained on base bbbbbbbbbbbb.*--force"):
        merge_adapter_into(other, adapter, "a" * 64)
    merge_adapter_into(other, adapter, "a" * 64, force=True)
    bigger = tiny_config(n_embd=64)
    with pytest.raises(HessError, match=r"another shape \(n_embd: 32 vs 64\)"):
        merge_adapter_into(
            LoadedModel(GPT(bigger), TOK, TEMPLATE, bigger, {}, "big.pt", "b" * 64), adapter, "a" * 64
        )


def test_load_adapter_rejects_a_full_checkpoint(tmp_path):
    from hessgpt.checkpoint import atomic_torch_save, build_native

    path = tmp_path / "full.pt"
    atomic_torch_save(build_native(tiny_config().to_dict(), {"kind": "test-bytes"}, None, {}), path)
    with pytest.raises(HessError, match="not a HessGPT LoRA adapter"):
        load_adapter(path)


def test_cli_train_adapter_then_merge(tmp_path, capsys):
    """Pretrain a tiny model, train an adapter on it, merge it; the merged file reproduces the adapted model."""
    from test_data import write_jsonl

    from hessgpt.checkpoint import sha256_file
    from hessgpt.cli import main
    from hessgpt.loading import load_model

    data = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"instruction": f"Spell {w}.", "output": " ".join(w)}
            for w in [
                "cat",
                "dog",
                "sun",
                "moon",
                "tree",
                "river",
                "cloud",
                "stone",
                "bread",
                "apple",
                "grape",
                "plum",
            ]
        ],
    )
    common = [
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--contamination",
        "off",
        "--no-progress",
        "--block-size",
        "64",
        "--split",
        "80,20,0",
    ]
    assert (
        main(
            [
                "train",
                data,
                "--out",
                str(tmp_path / "base"),
                "--preset",
                "tiny-gpt2",
                "--tokenizer",
                "bpe:300",
                *common,
            ]
        )
        == 0
    )
    base = tmp_path / "base" / "epoch1.pt"
    assert (
        main(
            [
                "train",
                data,
                "--out",
                str(tmp_path / "lora"),
                "--from",
                str(base),
                "--lora",
                "r=2,alpha=4,targets=attn,mlp",
                "--lr",
                "5e-2",
                *common,
            ]
        )
        == 0
    )
    adapter_path = tmp_path / "lora" / "epoch1.lora.pt"
    adapter = load_adapter(adapter_path)
    assert adapter.base["sha256"] == sha256_file(base)
    merged_path = tmp_path / "merged.pt"
    assert (
        main(
            ["lora", "merge", "--base", str(base), "--adapter", str(adapter_path), "--out", str(merged_path)]
        )
        == 0
    )

    reference = load_model(base)
    apply_lora(reference.model, adapter.spec)
    from hessgpt.lora import load_adapter_weights

    load_adapter_weights(reference.model, adapter.weights, "adapter")
    merged = load_model(merged_path)
    ids = torch.tensor([reference.tokenizer.encode("User: Spell cat.\nAssistant:")])
    with torch.no_grad():
        assert torch.allclose(merged.model(ids)[0], reference.model(ids)[0], atol=1e-5)
        assert not torch.allclose(merged.model(ids)[0], load_model(base).model(ids)[0], atol=1e-4)
    assert merged.meta["lora_merged"][0]["adapter_sha256"] == sha256_file(adapter_path)
    capsys.readouterr()
    assert (
        main(
            [
                "lora",
                "merge",
                "--base",
                str(merged_path),
                "--adapter",
                str(adapter_path),
                "--out",
                str(tmp_path / "twice.pt"),
            ]
        )
        == 2
    )
    assert "already merged" in capsys.readouterr().err
    assert not (tmp_path / "twice.pt").exists()


def test_lora_info_prints_readable_lines(tmp_path, capsys):
    from hessgpt.cli import main

    _config, _base, trainer = _train_adapter(tmp_path)
    path = tmp_path / "epoch2.lora.pt"
    assert main(["lora", "info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{path}: r=4 alpha=8 targets=") and "parameters)" in lines[0]
    assert lines[1] == f"base: base.pt sha256 {'b' * 64}"
    assert lines[2] == f"training: epoch 2, step {trainer.global_step}, data {'d' * 12}"  # no validation split
