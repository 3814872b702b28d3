"""The run folder: checked before any model is loaded, and never silently given to another run.

A folder records which run it holds in ``run.json`` (what was graded, the suites, the settings that
change answers, the seed). The same command again resumes there; a different run is refused unless
``--overwrite`` is given, and a folder with a run but no record (an older or copied run) counts as
different. With ``--overwrite`` the previous run's cached answers are dropped at once, while its
results and scorecard stay in place until the new run replaces them (atomically) at its end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hessgpt.errors import HessError
from hessgpt.safe_io import atomic_write_text, check_output_dir, loads_json

RUN_RECORD = "run.json"
RUN_FILES = ("results.json", "work.jsonl", "items.csv", "index.html")
# Settings that only change speed: a run may resume with other values.
_SPEED_ONLY = ("batch_size",)


def run_identity(source: str, settings: Any, suites_dir: Path | None) -> dict[str, Any]:
    """What makes two runs the same run: the model (or answers file), suites, answer settings, seed."""
    generation = {k: v for k, v in settings.generation_dict().items() if k not in _SPEED_ONLY}
    return {"source": source, "suites": sorted(settings.suites) if settings.suites else "all",
            "suites_dir": str(Path(suites_dir).resolve()) if suites_dir else None,
            "settings": generation, "likelihood": settings.likelihood, "seed": settings.seed}


def _difference(previous: dict[str, Any] | None, identity: dict[str, Any]) -> str:
    if previous is None:
        return "a run with no run.json record"
    for key, what in (("source", "another model or answers file"), ("suites", "other suites"),
                      ("suites_dir", "another suites folder"), ("seed", "another seed")):
        if previous.get(key) != identity[key]:
            return f"{what} ({previous.get(key)!r})"
    old, new = previous.get("settings") or {}, identity["settings"]
    changed = [f"{k} {old.get(k)!r} -> {new[k]!r}" for k in new if old.get(k) != new[k]]
    if previous.get("likelihood") != identity["likelihood"]:
        changed.append("likelihood on/off")
    return "other settings (" + ", ".join(changed[:3]) + ")"


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = loads_json(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, HessError):
        return None
    return data if isinstance(data, dict) else None


def claim_run_folder(out: Path, identity: dict[str, Any], overwrite: bool) -> None:
    """Make ``out`` this run's folder, or refuse in one line (before any model is loaded)."""
    out = Path(out)
    check_output_dir(out, "--out")
    record = out / RUN_RECORD
    previous = _read_record(record) if record.exists() else None
    holds_run = any((out / name).exists() for name in RUN_FILES)
    if holds_run and previous != identity:
        if not overwrite:
            raise HessError(f"--out: {out} holds another run ({_difference(previous, identity)}); give another "
                            "folder, or --overwrite to replace it")
        (out / "work.jsonl").unlink(missing_ok=True)  # the replaced run's cached answers
    atomic_write_text(record, json.dumps(identity, indent=1, sort_keys=True))
