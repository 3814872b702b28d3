"""The trainer on a tiny model: learning, checkpoints, exact resume, accumulation, bad resumes."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_data import ByteTokenizer, write_jsonl

from hessgpt.chat import default_chat_template
from hessgpt.checkpoint import read_native, safe_torch_load
from hessgpt.cli import build_parser
from hessgpt.commands.train import prepare
from hessgpt.config import ModelConfig
from hessgpt.data import Example, tokenize_split
from hessgpt.errors import HessError
from hessgpt.model import GPT
from hessgpt.train import DistContext, RunInfo, TrainConfig, Trainer, learning_rate, param_groups

pytestmark = pytest.mark.usefixtures("one_thread")


TOK = ByteTokenizer()
TEMPLATE = default_chat_template(TOK)


def tiny_config(**kw) -> ModelConfig:
    base = dict(
        arch="gpt2",
        vocab_size=257,
        n_layer=2,
        n_head=2,
        n_embd=32,
        block_size=64,
        dropout=0.0,
        name="test-tiny",
    )
    base.update(kw)
    return ModelConfig(**base)


def conversations(n: int, offset: int = 0) -> list[Example]:
    words = ["red", "blue", "green", "cat", "dog", "sun"]
    return [
        Example(
            messages=[
                {"role": "user", "content": f"Say {words[i % 6]}"},
                {"role": "assistant", "content": f"{words[i % 6]} {i + offset}"},
            ]
        )
        for i in range(n)
    ]


def make_trainer(
    out, cfg: TrainConfig, config: ModelConfig | None = None, examples=None, seed: int = 0, tokenizer=TOK
) -> Trainer:
    config = config or tiny_config()
    torch.manual_seed(seed)
    model = GPT(config)
    examples = examples or conversations(24)
    train = tokenize_split(examples, tokenizer, TEMPLATE, config.block_size)
    val = tokenize_split(conversations(4, offset=100), tokenizer, TEMPLATE, config.block_size)
    info = RunInfo(tokenizer, TEMPLATE, config, data_hash="d" * 64, meta={"source": "test"})
    return Trainer(model, train, val, cfg, info, out, DistContext(), log=lambda m: None, progress=False)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.raw_model.state_dict().items()}


def test_loss_falls_when_overfitting(tmp_path):
    cfg = TrainConfig(
        epochs=4, batch_size=2, lr=1e-2, warmup_steps=2, schedule="constant", log_every=1, weight_decay=0.0
    )
    trainer = make_trainer(tmp_path, cfg, examples=conversations(8))
    result = trainer.fit()
    losses = [h["loss"] for h in result.history if h["kind"] == "train"]
    assert len(losses) == 16
    assert sum(losses[-4:]) / 4 < 0.6 * losses[0], losses
    assert sorted(losses[-4:])[-1] < min(losses[:4]), losses
    assert losses[0] > math.log(257) * 0.8  # starts near uniform over the byte vocabulary


def test_epoch_checkpoints_carry_training_metadata(tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-3, warmup_steps=1)
    result = make_trainer(tmp_path, cfg).fit()
    assert result.finished and result.global_step == 6  # 24 windows / 8 per step x 2 epochs
    for epoch in (1, 2):
        obj = safe_torch_load(tmp_path / f"epoch{epoch}.pt")
        config, tokenizer, template, meta, state = read_native(obj, "x")
        assert meta["epoch"] == epoch and meta["step"] == 3 * epoch
        assert meta["data_hash"] == "d" * 64 and meta["source"] == "test"
        assert isinstance(meta["val_loss"], float) and meta["val_ppl"] == pytest.approx(
            math.exp(meta["val_loss"])
        )
        assert 0 <= meta["val_token_accuracy"] <= 1
        assert tokenizer == {"kind": "test-bytes"} and config["n_embd"] == 32
        assert "lm_head.weight" not in state  # tied to the embedding
    best = read_native(safe_torch_load(tmp_path / "best.pt"), "x")[3]
    assert best["val_loss"] == min(
        read_native(safe_torch_load(tmp_path / f"epoch{e}.pt"), "x")[3]["val_loss"] for e in (1, 2)
    )
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {line["kind"] for line in lines} == {"train", "eval", "epoch"}
    svg = (tmp_path / "loss_curve.svg").read_text()
    assert svg.startswith("<svg") and "polyline" in svg and "circle" in svg
    assert (tmp_path / "last_state.pt").exists()


@pytest.mark.parametrize("stop_after", [2, 3, 4])  # mid-epoch, at an epoch boundary, in the second epoch
def test_resume_matches_an_uninterrupted_run(tmp_path, stop_after):
    cfg = TrainConfig(epochs=2, batch_size=8, lr=2e-3, warmup_steps=2, log_every=1, seed=5)
    config = tiny_config(dropout=0.1)  # dropout makes the randomness part of what must be restored
    full = make_trainer(tmp_path / "full", cfg, config)
    full.fit()

    first = make_trainer(tmp_path / "cut", cfg, config)
    result = first.fit(stop_after=stop_after)
    assert not result.finished and result.global_step == stop_after
    state = safe_torch_load(tmp_path / "cut" / "last_state.pt")  # weights_only=True
    resumed = make_trainer(tmp_path / "cut", cfg, config, seed=123)  # different init: must be overwritten
    resumed.load_state_dict(state, "last_state.pt")
    assert resumed.fit().finished
    for key, value in weights(full).items():
        assert torch.equal(value, resumed.raw_model.state_dict()[key]), key
    assert resumed.global_step == full.global_step


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    big = make_trainer(
        tmp_path / "a", TrainConfig(epochs=1, batch_size=8, grad_accum=1, lr=1e-3, warmup_steps=0)
    )
    small = make_trainer(
        tmp_path / "b", TrainConfig(epochs=1, batch_size=2, grad_accum=4, lr=1e-3, warmup_steps=0)
    )
    big.fit()
    small.fit()
    for key, value in weights(big).items():
        assert torch.allclose(value, small.raw_model.state_dict()[key], atol=1e-6), key


def test_resume_refuses_another_shape_or_tokenizer_or_data(tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=8)
    make_trainer(tmp_path, cfg).fit(stop_after=4)
    state = safe_torch_load(tmp_path / "last_state.pt")
    with pytest.raises(HessError, match=r"another shape \(n_embd: 32 vs 64\)"):
        make_trainer(tmp_path, cfg, tiny_config(n_embd=64)).load_state_dict(state, "last_state.pt")

    class OtherTokenizer(ByteTokenizer):
        def to_dict(self) -> dict:
            return {"kind": "other"}

    with pytest.raises(HessError, match="another tokenizer"):
        make_trainer(tmp_path, cfg, tokenizer=OtherTokenizer()).load_state_dict(state, "last_state.pt")
    changed = make_trainer(tmp_path, cfg)
    changed.info.data_hash = "e" * 64
    with pytest.raises(HessError, match="training data changed"):
        changed.load_state_dict(state, "last_state.pt")
    with pytest.raises(HessError, match="is a model checkpoint, not a training state.*--from"):
        make_trainer(tmp_path, cfg).load_state_dict(safe_torch_load(tmp_path / "epoch1.pt"), "epoch1.pt")
    with pytest.raises(HessError, match="settings differ.*lr"):
        make_trainer(tmp_path, TrainConfig(epochs=2, batch_size=8, lr=1.0)).load_state_dict(state, "s")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    cfg = TrainConfig(epochs=2, batch_size=8)
    trainer = make_trainer(tmp_path, cfg)
    trainer.fit(stop_after=3)  # epoch 1 done and saved
    before = (tmp_path / "epoch1.pt").read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *a, **kw):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    trainer.best_val_loss = -1.0  # nothing new is "best": only epoch2.pt and the state are written
    with pytest.raises(HessError, match="No space left on device"):
        trainer.fit()
    monkeypatch.setattr(torch, "save", real_save)
    assert not (tmp_path / "epoch2.pt").exists()
    assert (tmp_path / "epoch1.pt").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_schedule_warmup_then_decay():
    cfg = TrainConfig(lr=1.0, warmup_steps=4, min_lr_ratio=0.1, schedule="cosine")
    assert [learning_rate(s, 20, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate(4, 20, cfg) == pytest.approx(1.0)
    assert learning_rate(19, 20, cfg) == pytest.approx(0.1)
    assert learning_rate(11, 20, cfg) == pytest.approx(0.55, abs=0.05)  # cosine midpoint
    linear = TrainConfig(lr=1.0, warmup_steps=0, min_lr_ratio=0.0, schedule="linear")
    assert [round(learning_rate(s, 5, linear), 4) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_no_weight_decay_on_biases_and_norms():
    model = GPT(tiny_config())
    decay, no_decay = param_groups(model, 0.1)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0
    total = sum(p.numel() for p in decay["params"]) + sum(p.numel() for p in no_decay["params"])
    assert total == model.num_parameters()  # the tied embedding counted once


def _args(tmp_path, data, *extra):
    return build_parser().parse_args(
        [
            "train",
            data,
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "tiny-gpt2",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--no-progress",
            *extra,
        ]
    )


def test_command_warns_about_contaminated_examples(tmp_path, capsys):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "factual.yaml").write_text(
        "suite: factual\nversion: 1\nitems:\n  - id: factual-geo-001\n    prompt: What is the capital of France?\n"
        "    checks: [{type: non_empty}]\n",
        encoding="utf-8",
    )
    records = [{"instruction": f"Name a colour number {i}.", "output": f"Blue {i}."} for i in range(30)]
    records.append({"instruction": "what is the capital of france", "output": "Paris."})
    data = write_jsonl(tmp_path / "d.jsonl", records)
    prepared = prepare(
        _args(tmp_path, data, "--against", str(suites), "--split", "100,0,0"), DistContext(), TOK
    )
    err = capsys.readouterr().err
    assert "WARNING contamination: 1 of 31 examples overlap 1 suite item(s): factual-geo-001" in err
    assert prepared.trainer.info.meta["contamination"]["flagged_items"] == ["factual-geo-001"]
    dropped = prepare(
        _args(
            tmp_path / "b", data, "--against", str(suites), "--split", "100,0,0", "--contamination", "drop"
        ),
        DistContext(),
        TOK,
    )
    assert len(dropped.train_examples) == 30
    with pytest.raises(HessError, match="overlap 1 suite item"):
        prepare(
            _args(tmp_path / "c", data, "--against", str(suites), "--contamination", "error"),
            DistContext(),
            TOK,
        )


def test_command_trains_and_refuses_to_overwrite_a_run(tmp_path):
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [{"instruction": f"Count to {i}.", "output": " ".join(map(str, range(i)))} for i in range(1, 21)],
    )
    args = _args(tmp_path, data, "--contamination", "off", "--block-size", "64")
    prepared = prepare(args, DistContext(), TOK)
    assert prepared.trainer.info.model_config.vocab_size == 257  # the preset follows the tokenizer
    assert (len(prepared.train_examples), len(prepared.val_examples), len(prepared.test_examples)) == (
        17,
        2,
        1,
    )
    prepared.trainer.fit()
    meta = read_native(safe_torch_load(tmp_path / "run" / "epoch1.pt"), "x")[3]
    assert meta["data_hash"] == prepared.trainer.info.data_hash and meta["split"]["train"] == 17
    with pytest.raises(HessError, match="already holds a run.*--resume"):
        prepare(args, DistContext(), TOK)
    resumed = prepare(
        _args(tmp_path, data, "--contamination", "off", "--block-size", "64", "--resume"), DistContext(), TOK
    )
    assert resumed.trainer.epoch == 2 and resumed.trainer.fit().finished  # nothing left to do


def test_cli_names_the_bad_line_and_can_skip_it(tmp_path, capsys):
    from hessgpt.cli import main

    good = [json.dumps({"instruction": f"Say {i}.", "output": f"{i}!"}) for i in range(12)]
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(good[:3] + ['{"instruction": "oops"'] + good[3:]) + "\n", encoding="utf-8")
    args = [
        "train",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--preset",
        "tiny-gpt2",
        "--tokenizer",
        "bpe:260",
        "--epochs",
        "1",
        "--contamination",
        "off",
        "--no-progress",
        "--block-size",
        "32",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{data}:4: not valid JSON" in err and err.count("\n") == 1
    assert main([*args, "--skip-bad-lines"]) == 0
    assert "12 examples from 1 file(s), 1 bad lines skipped" in capsys.readouterr().err


def test_bf16_autocast_trains_on_cpu(tmp_path):
    from hessgpt.train import autocast_dtype

    assert autocast_dtype("auto", torch.device("cpu")) is None  # fp32 on CPU unless asked
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    trainer = make_trainer(tmp_path, TrainConfig(epochs=1, batch_size=8, lr=1e-3, precision="bf16"))
    result = trainer.fit()
    losses = [h["loss"] for h in result.history if h["kind"] == "train"]
    assert all(math.isfinite(v) for v in losses)
    assert next(trainer.raw_model.parameters()).dtype == torch.float32  # master weights stay fp32
