"""``hessgpt train --report-to``: TensorBoard and offline Weights & Biases hold the metrics.jsonl values,
a resumed run continues the same logs, and a missing package stops the command before any work."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hessgpt.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "d.jsonl"
    rows = [{"instruction": f"Count to {i}.", "output": " ".join(map(str, range(i)))} for i in range(1, 41)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def train_args(data: Path, out: Path) -> list[str]:
    return ["train", str(data), "--out", str(out), "--preset", "tiny-gpt2", "--tokenizer", "bpe:300",
            "--epochs", "2", "--batch-size", "4", "--log-every", "2", "--contamination", "off", "--no-progress"]


def expected_scalars(out: Path) -> dict[str, dict[int, float]]:
    """metrics.jsonl as {tag: {step: value}}, each line's numbers under KIND/FIELD."""
    found: dict[str, dict[int, float]] = {}
    for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        for key, value in entry.items():
            if key not in ("kind", "step", "epoch", "time", "checkpoint"):
                found.setdefault(f"{entry['kind']}/{key}", {})[entry["step"]] = value
    return found


def stop_then_resume(data: Path, out: Path, *flags: str) -> None:
    """Five steps, stop, then resume from the folder alone: --report-to comes back from run_args.json."""
    assert main([*train_args(data, out), *flags, "--stop-after", "5"]) == 0
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_holds_the_metrics_and_a_resume_continues_the_same_log(tmp_path, data):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'hessgpt-bench[report]')")
    out = tmp_path / "run"
    assert main([*train_args(data, out), "--report-to", "tensorboard", "--stop-after", "3"]) == 0
    saved = (out / "last_state.pt").read_bytes()
    # Steps 4 and 5 are logged, then lost as by a crash (the state goes back to step 3) and redone.
    assert main(["train", "--out", str(out), "--resume", "--no-progress", "--stop-after", "5"]) == 0
    (out / "last_state.pt").write_bytes(saved)
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    expected = expected_scalars(out)  # a step logged twice keeps its last line
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s", "eval/val_loss",
            "epoch/val_loss"} <= set(expected)
    train_steps = sorted(expected["train/loss"])
    assert train_steps[:4] == [2, 4, 6, 8] and train_steps[-1] == 18
    logged = tensorboard_scalars(out / "tensorboard")
    assert set(logged) == set(expected)
    for tag, values in expected.items():
        steps = [step for step, _ in logged[tag]]
        assert steps == sorted(values), tag  # each step once, in order, across both processes' files
        assert [value for _, value in logged[tag]] == pytest.approx([values[s] for s in steps], rel=1e-6), tag
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 3  # one per process, one folder


def wandb_history(out: Path) -> tuple[set[str], dict[str, dict[int, float]]]:
    """(run ids, {key: {step: value}}) from the offline run files (LevelDB-style log of wandb records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_ids: set[str] = set()
    history: dict[str, dict[int, float]] = {}
    files = sorted(out.glob("wandb/offline-run-*/run-*.wandb"))
    for path in files:
        raw = path.read_bytes()
        assert raw[:4] == b":W&B", path
        pos, block, record = 7, 32768, b""
        while pos + 7 <= len(raw):
            left = block - pos % block
            _crc, length, kind = struct.unpack("<IHB", raw[pos:pos + 7]) if left >= 7 else (0, 0, 0)
            if left < 7 or (kind == 0 and length == 0):  # block padding
                pos += left
                continue
            chunk, pos = raw[pos + 7:pos + 7 + length], pos + 7 + length
            record = chunk if kind in (1, 2) else record + chunk  # FULL/FIRST start, MIDDLE/LAST continue
            if kind in (1, 4):
                message = pb.Record()
                message.ParseFromString(record)
                if message.WhichOneof("record_type") == "run":
                    run_ids.add(message.run.run_id)
                elif message.WhichOneof("record_type") == "history":
                    for item in message.history.item:
                        name = item.key or "/".join(item.nested_key)  # "train/loss" is stored as a path
                        if not name.startswith("_"):  # wandb's own _step, _runtime, _timestamp
                            history.setdefault(name, {})[message.history.step.num] = json.loads(item.value_json)
    return run_ids, history


def test_wandb_runs_offline_in_the_run_folder_and_a_resume_continues_the_same_run(tmp_path, data, monkeypatch):
    pytest.importorskip("wandb", reason="wandb not installed (pip install 'hessgpt-bench[report]')")
    monkeypatch.setenv("WANDB_MODE", "online")  # overridden: the bench never reaches the network
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    out = tmp_path / "run"
    stop_then_resume(data, out, "--report-to", "wandb")
    run_ids, logged = wandb_history(out)
    assert len(list(out.glob("wandb/offline-run-*"))) == 2 and not (tmp_path / "elsewhere").exists()
    assert run_ids == {(out / "wandb" / "hessgpt-run-id").read_text().strip()}  # one run, resumed
    expected = expected_scalars(out)
    assert set(logged) == set(expected)
    for key, values in expected.items():
        assert logged[key] == pytest.approx(values, rel=1e-12), key


@pytest.mark.parametrize("name", ["tensorboard", "wandb"])
def test_a_missing_package_stops_the_command_before_any_work(tmp_path, data, monkeypatch, capsys, name):
    monkeypatch.setitem(sys.modules, name, None)  # makes `import NAME` fail as if it were not installed
    out = tmp_path / "run"
    assert main([*train_args(data, out), "--report-to", f"{name}"]) == 2
    assert capsys.readouterr().err == (f"error: --report-to {name}: the {name} package is not installed; "
                                       f"pip install {name} (or pip install 'hessgpt-bench[report]')\n")
    assert not out.exists()  # no data read, no run folder, nothing to lose


def test_report_to_takes_a_list_and_refuses_unknown_names(tmp_path, data, capsys):
    from hessgpt.train_report import parse_report_to

    assert parse_report_to(None) == [] and parse_report_to(["none"]) == []
    assert parse_report_to(["tensorboard,wandb", "tensorboard"]) == ["tensorboard", "wandb"]
    assert main([*train_args(data, tmp_path / "run"), "--report-to", "tensorboard,mlflow"]) == 2
    assert capsys.readouterr().err == "error: --report-to: unknown 'mlflow'; choose from tensorboard, wandb, none\n"
    assert main([*train_args(data, tmp_path / "run"), "--report-to", "none,wandb"]) == 2
    assert "'none' cannot be combined" in capsys.readouterr().err


@pytest.mark.slow
def test_only_rank_0_reports_under_torchrun(tmp_path, data):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'hessgpt-bench[report]')")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                    str(port), "-m", "hessgpt", *train_args(data, out), "--report-to", "tensorboard"],
                   check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True)
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1
    expected, logged = expected_scalars(out), tensorboard_scalars(out / "tensorboard")
    assert [s for s, _ in logged["train/loss"]] == sorted(expected["train/loss"])
