"""``hessgpt train --report-to tensorboard,wandb``: the metrics.jsonl lines, mirrored to other viewers.

Each line the trainer records (``train``: loss, lr, grad_norm, tokens, tokens_per_s; ``eval`` and
``epoch``: val_loss, val_ppl, val_token_accuracy) becomes scalars named ``KIND/FIELD`` at the line's
optimiser step. TensorBoard event files go to ``OUT/tensorboard``; Weights & Biases runs offline only
(``OUT/wandb``, uploaded later with ``wandb sync`` if wanted), under one run id kept in the folder.

Neither package is a dependency of the bench: :func:`check_installed` names the missing one before
any work starts. A resumed run writes to the same places and continues the same step numbers.
"""

from __future__ import annotations

import importlib
import os
import uuid
from pathlib import Path
from typing import Any

from hessgpt.errors import HessError

REPORTERS = ("tensorboard", "wandb")
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}
INSTALL_ALL = "pip install 'hessgpt-bench[report]'"
_NOT_SCALARS = ("kind", "step", "epoch", "time")


def parse_report_to(values: list[str] | None) -> list[str]:
    """The reporters asked for by ``--report-to`` (repeated, or comma-separated); none by default."""
    names = [part.strip().lower() for value in values or [] for part in value.split(",") if part.strip()]
    for name in names:
        if name not in (*REPORTERS, "none"):
            raise HessError(f"--report-to: unknown {name!r}; choose from {', '.join(REPORTERS)}, none")
    if "none" in names and len(set(names)) > 1:
        raise HessError("--report-to: 'none' cannot be combined with a reporter")
    return [name for name in dict.fromkeys(names) if name != "none"]


def check_installed(names: list[str]) -> None:
    """Fail now, before the data is read or a step is taken, when a reporter's package is missing."""
    for name in names:
        package = PACKAGES[name]
        try:
            importlib.import_module(package)
        except ImportError:
            raise HessError(f"--report-to {name}: the {package} package is not installed; "
                            f"pip install {package} (or {INSTALL_ALL})") from None


def scalars(entry: dict[str, Any]) -> dict[str, float]:
    """The numbers of one metrics.jsonl line, named ``KIND/FIELD``."""
    kind = entry.get("kind", "train")
    return {f"{kind}/{key}": float(value) for key, value in entry.items()
            if key not in _NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool)}


class TensorBoardReporter:
    def __init__(self, out: Path, resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # On resume, events logged after the saved state (a crash loses those steps) are hidden:
        # the resumed run logs them again, so each step shows once.
        purge = resume_step + 1 if resume_step is not None else None
        self.writer = SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=purge)

    def log(self, entry: dict[str, Any]) -> None:
        for tag, value in scalars(entry).items():
            self.writer.add_scalar(tag, value, global_step=int(entry["step"]), walltime=entry.get("time"))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbReporter:
    def __init__(self, out: Path, settings: dict[str, Any]) -> None:
        # Never the network, whatever the user's wandb settings say: no upload, no crash reports.
        os.environ["WANDB_MODE"] = "offline"
        os.environ["WANDB_ERROR_REPORTING"] = "false"
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self.wandb = wandb
        folder = out / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "hessgpt-run-id"
        run_id = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else ""
        if not run_id:
            run_id = uuid.uuid4().hex[:12]
            id_file.write_text(run_id + "\n", encoding="utf-8")
        self.run = wandb.init(project="hessgpt", name=out.resolve().name, id=run_id, resume="allow", dir=str(out),
                              mode="offline", config=settings,
                              settings=wandb.Settings(console="off", silent=True, save_code=False))

    def log(self, entry: dict[str, Any]) -> None:
        self.run.log(scalars(entry), step=int(entry["step"]))

    def close(self) -> None:
        self.run.finish()
        self.wandb.teardown()  # stops the background process wandb started for this run


def open_reporters(names: list[str], out: Path, resume_step: int | None,
                   settings: dict[str, Any]) -> list[TensorBoardReporter | WandbReporter]:
    """One reporter per name; ``resume_step``: the step the run continues from (None for a new run)."""
    reporters: list[TensorBoardReporter | WandbReporter] = []
    try:
        for name in names:
            reporters.append(TensorBoardReporter(out, resume_step) if name == "tensorboard"
                             else WandbReporter(out, settings))
    except Exception:
        close_all(reporters)
        raise
    return reporters


def close_all(reporters: list[Any]) -> None:
    for reporter in reporters:
        reporter.close()
