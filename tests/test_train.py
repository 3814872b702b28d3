"""The trainer on a tiny model: learning, checkpoints, exact resume, accumulation, bad resumes."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

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


def _same_files(a, b, names) -> None:
    """The same weights and training metadata in each named checkpoint of two run folders."""
    for name in names:
        _, _, _, meta_a, state_a = read_native(safe_torch_load(a / name), name)
        _, _, _, meta_b, state_b = read_native(safe_torch_load(b / name), name)
        assert state_a.keys() == state_b.keys(), name
        for key, value in state_a.items():
            assert torch.equal(value, state_b[key]), (name, key)
        for key in ("epoch", "step", "val_loss", "tokens_seen", "best_of_epochs", "data_hash"):
            assert meta_a.get(key) == meta_b.get(key), (name, key)


# The saves of epoch 1's end, in order: epoch1.pt, best.pt, last_state.pt.
@pytest.mark.parametrize("interrupted_save", [1, 2, 3])
def test_ctrl_c_during_an_epoch_save_resumes_into_the_same_files(tmp_path, monkeypatch, interrupted_save):
    cfg = TrainConfig(epochs=2, batch_size=8, lr=2e-3, warmup_steps=2, seed=5)
    config = tiny_config(dropout=0.1)
    full = make_trainer(tmp_path / "full", cfg, config)
    full.fit()

    real_save, calls = torch.save, []

    def interrupted(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == interrupted_save:
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    cut = make_trainer(tmp_path / "cut", cfg, config)
    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    monkeypatch.setattr(torch, "save", real_save)
    state = safe_torch_load(tmp_path / "cut" / "last_state.pt")
    assert state["global_step"] == 3  # epoch 1's steps are kept in every case
    assert state["epoch"] == (2 if interrupted_save == 3 else 1)  # epoch 1 ends once its files exist
    resumed = make_trainer(tmp_path / "cut", cfg, config, seed=123)
    resumed.load_state_dict(state, "last_state.pt")
    assert resumed.fit().finished
    _same_files(tmp_path / "full", tmp_path / "cut", ["epoch1.pt", "epoch2.pt", "best.pt"])
    assert [p.rsplit("/", 1)[-1] for p in resumed.checkpoints] == ["epoch1.pt", "epoch2.pt"]
    assert resumed.best_val_loss == full.best_val_loss


def test_ctrl_c_during_the_update_waits_until_the_step_is_counted(tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=8, lr=2e-3, warmup_steps=2, seed=5)
    full = make_trainer(tmp_path / "full", cfg)
    full.fit()
    cut = make_trainer(tmp_path / "cut", cfg)
    real_zero_grad = cut.optimizer.zero_grad

    def zero_grad(*args, **kwargs):
        if cut.global_step == 1:  # the second step: weights updated, counters not yet
            signal.raise_signal(signal.SIGINT)
        real_zero_grad(*args, **kwargs)

    cut.optimizer.zero_grad = zero_grad
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    state = safe_torch_load(tmp_path / "cut" / "last_state.pt")
    assert (state["global_step"], state["step_in_epoch"]) == (2, 2)
    resumed = make_trainer(tmp_path / "cut", cfg, seed=123)
    resumed.load_state_dict(state, "last_state.pt")
    resumed.fit()
    for key, value in weights(full).items():
        assert torch.equal(value, resumed.raw_model.state_dict()[key]), key


def _count_data(tmp_path, n: int = 40) -> str:
    return write_jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "instruction": f"Count to {i % 9 + 1}, take {i}.",
                "output": " ".join(map(str, range(i % 9 + 1))),
            }
            for i in range(n)
        ],
    )


def test_sigint_to_a_training_process_then_resume_matches_an_uninterrupted_run(tmp_path):
    from hessgpt.cli import main

    data = _count_data(tmp_path)
    common = [
        "train", data, "--preset", "tiny-gpt2", "--tokenizer", "bpe:300", "--epochs", "8",
        "--batch-size", "2", "--block-size", "48", "--log-every", "1", "--warmup-steps", "2",
        "--dropout", "0.1", "--contamination", "off", "--threads", "1", "--no-progress",
    ]  # fmt: skip
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hessgpt", *common, "--out", str(cut)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics, deadline = cut / "metrics.jsonl", time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        if metrics.exists() and metrics.read_text(encoding="utf-8").count("\n") >= 3:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.002)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # interrupted mid-run (136 steps in all)
    assert err.rstrip().endswith("interrupted")
    assert f"continue with: hessgpt train --out {cut} --resume" in err
    stopped = safe_torch_load(cut / "last_state.pt")["global_step"]
    assert 3 <= stopped < 136
    assert main([*common, "--out", str(cut), "--resume"]) == 0
    assert main([*common, "--out", str(tmp_path / "full")]) == 0
    names = [f"epoch{e}.pt" for e in range(1, 9)] + ["best.pt"]
    _same_files(tmp_path / "full", cut, names)


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


def _metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def test_eval_every_adds_validation_metrics_between_epochs(tmp_path):
    data = _count_data(tmp_path, 20)
    args = _args(tmp_path, data, "--contamination", "off", "--epochs", "2", "--eval-every", "2")
    trainer = prepare(args, DistContext(), TOK).trainer
    trainer.fit()
    spe, total = trainer.steps_per_epoch, trainer.total_steps
    assert (spe, total) == (5, 10)  # 17 training windows, 4 a step
    evals = [m for m in _metrics(tmp_path / "run") if m["kind"] == "eval"]
    assert [m["step"] for m in evals] == [2, 4, 5, 6, 8, 10]  # every 2 steps, and at each epoch's end
    for m in evals:
        assert m["val_ppl"] == pytest.approx(math.exp(m["val_loss"])) and 0 <= m["val_token_accuracy"] <= 1


def test_save_every_writes_a_mid_epoch_state_that_resumes_exactly(tmp_path, monkeypatch):
    data = _count_data(tmp_path, 20)
    flags = ("--contamination", "off", "--epochs", "2", "--dropout", "0.1", "--save-every", "3")
    full = prepare(_args(tmp_path / "a", data, *flags), DistContext(), TOK).trainer
    full.fit()

    real_step = Trainer.train_step

    def dies_at_step_8(self, micro):
        if self.global_step == 7:
            raise RuntimeError("killed")  # not Ctrl-C: nothing is saved on the way out
        return real_step(self, micro)

    monkeypatch.setattr(Trainer, "train_step", dies_at_step_8)
    with pytest.raises(RuntimeError, match="killed"):
        prepare(_args(tmp_path / "b", data, *flags), DistContext(), TOK).trainer.fit()
    monkeypatch.setattr(Trainer, "train_step", real_step)
    state = safe_torch_load(tmp_path / "b" / "run" / "last_state.pt")
    assert (state["global_step"], state["epoch"], state["step_in_epoch"]) == (6, 2, 1)  # the step-6 save
    resumed = prepare(_args(tmp_path / "b", data, *flags, "--resume"), DistContext(), TOK).trainer
    assert resumed.global_step == 6 and resumed.fit().finished
    for key, value in weights(full).items():
        assert torch.equal(value, resumed.raw_model.state_dict()[key]), key
    _same_files(tmp_path / "a" / "run", tmp_path / "b" / "run", ["epoch2.pt", "best.pt"])


def test_resume_with_another_preset_is_refused_by_the_command(tmp_path):
    data = _count_data(tmp_path, 20)
    prepare(_args(tmp_path, data, "--contamination", "off"), DistContext(), TOK).trainer.fit(stop_after=2)
    again = _args(tmp_path, data, "--contamination", "off", "--resume", "--preset", "tiny-llama")
    with pytest.raises(
        HessError, match=r"last_state\.pt: the run being resumed trained a model of another shape \(arch"
    ):
        prepare(again, DistContext(), TOK)


def test_training_warns_against_the_shipped_suites_from_any_directory(tmp_path, monkeypatch, capsys):
    from hessgpt.contamination import load_suite_items, shipped_suites_dir

    suites = shipped_suites_dir()
    assert suites is not None and suites.is_dir()
    items, _ = load_suite_items(suites)
    item = next(i for i in items if i.prompts)
    records = [{"instruction": f"Name a colour, take {i}.", "output": f"Blue {i}."} for i in range(20)]
    records.append({"instruction": item.prompts[0], "output": "..."})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no benchmarks/suites here
    data = write_jsonl(tmp_path / "d.jsonl", records)
    prepared = prepare(_args(tmp_path, data, "--split", "100,0,0"), DistContext(), TOK)
    err = capsys.readouterr().err
    assert f"WARNING contamination: 1 of 21 examples overlap 1 suite item(s): {item.id}" in err
    meta = prepared.trainer.info.meta["contamination"]
    assert meta["checked"] and meta["against"] == str(suites) and meta["flagged_items"] == [item.id]


def test_bench_records_the_checkpoint_training_data_hash(tmp_path):
    from benchmarks.cli import main as bench
    from hessgpt.cli import main

    data = _count_data(tmp_path, 20)
    run = tmp_path / "run"
    argv = [
        "train", data, "--out", str(run), "--preset", "tiny-gpt2", "--tokenizer", "bpe:300",
        "--epochs", "1", "--batch-size", "4", "--block-size", "48", "--contamination", "off", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    meta = read_native(safe_torch_load(run / "epoch1.pt"), "epoch1.pt")[3]
    out = tmp_path / "bench"
    argv = ["--checkpoint", str(run / "epoch1.pt"), "--suite", "conversation", "--limit", "2"]
    assert bench([*argv, "--max-new-tokens", "8", "--out", str(out), "--no-progress", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["meta"]["training"] == {
        "epoch": 1,
        "step": meta["step"],
        "val_loss": meta["val_loss"],
        "data_hash": meta["data_hash"],
    }
    assert len(meta["data_hash"]) == 64 and isinstance(meta["val_loss"], float)


def test_resume_needs_only_the_run_folder_and_can_extend_the_epochs(tmp_path, capsys):
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [{"instruction": f"Count to {i}.", "output": " ".join(map(str, range(i)))} for i in range(1, 21)],
    )
    first = prepare(_args(tmp_path, data, "--contamination", "off", "--block-size", "64", "--lr", "1e-3"),
                    DistContext(), TOK)
    first.trainer.fit()
    stored = json.loads((tmp_path / "run" / "run_args.json").read_text())
    assert stored["data"] == [str(tmp_path / "d.jsonl")] and stored["lr"] == 1e-3 and stored["epochs"] == 1
    out = str(tmp_path / "run")
    again = prepare(build_parser().parse_args(["train", "--out", out, "--resume", "--no-progress"]), DistContext(), TOK)
    assert again.trainer.cfg.lr == 1e-3 and again.trainer.fit().finished  # nothing left to do
    assert "settings from" in capsys.readouterr().err
    longer = prepare(build_parser().parse_args(["train", "--out", out, "--resume", "--epochs", "6", "--no-progress"]),
                     DistContext(), TOK)  # 6 is the default: given explicitly, it still counts
    assert longer.trainer.epoch == 2 and longer.trainer.total_steps == 6 * first.trainer.steps_per_epoch
    assert longer.trainer.fit(stop_after=longer.trainer.steps_per_epoch * 2).global_step > 0
    assert (tmp_path / "run" / "epoch2.pt").exists()
    with pytest.raises(HessError, match=r"epochs \(1 is fewer than the run's 6"):
        prepare(build_parser().parse_args(["train", "--out", out, "--resume", "--epochs", "1"]), DistContext(), TOK)
    with pytest.raises(HessError, match="give the DATA files"):
        prepare(build_parser().parse_args(["train", "--out", str(tmp_path / "new"), "--preset", "tiny-gpt2"]),
                DistContext(), TOK)


def test_train_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: 6)", "(default: 0.0003)", "(default: cosine)", "(default: 85,10,5)"):
        assert shown in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_make_tiny_model_keeps_an_existing_run_folder_unless_forced(tmp_path):
    import shutil
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    run = tmp_path / "tiny"
    run.mkdir()
    (run / "epoch1.pt").write_bytes(b"a previous run")
    # PY=false: should the guard let the recipe through, the first command fails before any rm.
    base = ["make", "-s", "-C", str(root), "-o", "setup", "tiny-model", f"TINY_OUT={run}", "PY=false"]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and f"error: {run} already exists" in refused.stderr
    assert (run / "epoch1.pt").read_bytes() == b"a previous run"
    forced = subprocess.run([*base, "FORCE=1"], capture_output=True, text=True, timeout=60)
    assert "already exists" not in forced.stderr  # past the guard (then PY=false stops it)


@pytest.mark.parametrize("grad_clip", [0.0, 1e-3])
def test_metrics_and_curve_record_learning_rate_and_gradient_norm(tmp_path, grad_clip):
    cfg = TrainConfig(epochs=1, batch_size=4, lr=1e-3, warmup_steps=2, log_every=1, grad_clip=grad_clip)
    trainer = make_trainer(tmp_path, cfg)
    trainer.fit()
    train = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [e for e in train if e["kind"] == "train"]
    assert [e["lr"] for e in train] == [learning_rate(e["step"] - 1, trainer.total_steps, cfg) for e in train]
    # The norm before clipping: far above a clip of 1e-3 on a fresh model.
    assert all(math.isfinite(e["grad_norm"]) and e["grad_norm"] > 0.01 for e in train)
    svg = (tmp_path / "loss_curve.svg").read_text()
    assert "learning rate (0 to 0.001)" in svg and "gradient norm (0 to " in svg


def test_the_epoch_line_is_not_glued_to_the_progress_bar(tmp_path, capsys):
    import re

    config = tiny_config()
    torch.manual_seed(0)
    train = tokenize_split(conversations(24), TOK, TEMPLATE, config.block_size)
    info = RunInfo(TOK, TEMPLATE, config, data_hash="d" * 64, meta={"source": "test"})
    trainer = Trainer(GPT(config), train, None, TrainConfig(epochs=2, batch_size=8), info, tmp_path,
                      DistContext(), progress=True)
    trainer.fit()
    err = capsys.readouterr().err
    assert err.count("epoch 1/2") == 1 and err.count("epoch 2/2") == 1
    # Each epoch line starts a line of its own, after the bar was cleared (no bar text before it).
    assert not re.search(r"[^\r\n]epoch \d/2", err), err
