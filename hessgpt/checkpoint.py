"""The native checkpoint format: one file, loaded without executing code.

A native file is a ``torch.save`` of a plain dict::

    {"format": "hessgpt-checkpoint", "version": 1,
     "config": {...ModelConfig fields...},
     "tokenizer": "<JSON of Tokenizer.to_dict()>",
     "chat_template": "<jinja2 string>",
     "meta": {"epoch": 6, "step": 1200, "val_loss": 2.13, "data_hash": "...", "source": "..."},
     "model": {state dict}}

It is read back with ``torch.load(weights_only=True)``, whose unpickler only builds tensors and
plain containers: a file that tries to run code is refused. Writes go to a temporary file in the same
folder and are renamed into place, so an interrupted or failed save never leaves a corrupt checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from hessgpt.errors import HessError

FORMAT = "hessgpt-checkpoint"
VERSION = 1


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """Save to ``path`` through a temporary file and a rename (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a checkpoint is an ordinary file
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise HessError(f"{path}: could not write checkpoint ({exc.strerror or exc}); nothing was replaced") from None
        raise
    return path


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load`` restricted to tensors and plain containers, with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise HessError(f"{path}: no such file")
    if path.is_dir():
        raise HessError(f"{path}: is a folder, expected a checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported content"
        if "weights_only" in str(exc) or "Unsupported" in str(exc) or "global" in str(exc).lower():
            raise HessError(
                f"{path}: refused to load: the file contains Python objects that would run code on load "
                f"({first[:160]}); only tensors and plain data are accepted"
            ) from None
        raise HessError(f"{path}: corrupted or truncated checkpoint ({first[:160]})") from None
    except Exception as exc:  # the unpickler fails in many ways on a damaged file (IndexError, KeyError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HessError(f"{path}: corrupted or truncated checkpoint, cannot be read ({first[:160]})") from None


def _is_zip(path: Path) -> bool:
    # torch's zip format can be memory-mapped, which avoids a second copy of the weights.
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def build_native(config: dict, tokenizer: dict, chat_template: str | None, state_dict: dict,
                 meta: dict | None = None) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": config,
        "tokenizer": json.dumps(tokenizer, separators=(",", ":")),
        "chat_template": chat_template or "",
        "meta": _plain(meta or {}),
        "model": state_dict,
    }


def _plain(value: Any) -> Any:
    """Keep metadata to the types the safe loader accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def is_native(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def read_native(obj: dict, path: str | Path) -> tuple[dict, dict, str, dict, dict]:
    """Validate a native checkpoint dict: (config, tokenizer spec, chat template, meta, state dict)."""
    version = obj.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise HessError(f"{path}: checkpoint format version {version!r} is newer than this hessgpt supports ({VERSION})")
    for key, kind in (("config", dict), ("tokenizer", str), ("model", dict)):
        if not isinstance(obj.get(key), kind):
            raise HessError(f"{path}: field '{key}' is missing or not a {kind.__name__}")
    try:
        tokenizer = json.loads(obj["tokenizer"])
    except json.JSONDecodeError as exc:
        raise HessError(f"{path}: field 'tokenizer' is not valid JSON ({exc.msg})") from None
    template = obj.get("chat_template") or ""
    meta = obj.get("meta") or {}
    return obj["config"], tokenizer, template, meta, obj["model"]
