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
import io
import json
import os
import pickletools
import tempfile
import warnings
import zipfile
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise HessError(f"{path}: could not write checkpoint ({exc.strerror or exc}); nothing was replaced") from None
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


def sniff(path: str | Path) -> str | None:
    """What a file is, from its first bytes: "zip" (torch.save), "pickle", "safetensors", "gguf" or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"GGUF"):
        return "gguf"
    if len(head) == 9 and head[8:9] == b"{":
        # safetensors: an 8-byte little-endian header length, then the JSON header itself.
        size = int.from_bytes(head[:8], "little")
        if 2 <= size <= 100_000_000:
            return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"  # PROTO opcode: a raw pickle, or torch's legacy (pre-1.6) format
    if head:
        # Protocols 0 and 1 have no header: a pickle only if its opcodes parse up to STOP.
        with open(path, "rb") as fh:
            if _scan_pickles(fh.read(1 << 20))[1]:
                return "pickle"
    return None


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load`` restricted to tensors and plain containers, with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise HessError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise HessError(f"{path}: is a folder; give the checkpoint file inside it")
    kind = sniff(path)
    if kind not in ("zip", "pickle"):
        raise HessError(f"{path}: not a file written by torch.save (format not recognised); "
                        "give the checkpoint file itself")
    try:
        with warnings.catch_warnings():
            # torch warns on pickle protocols above 2 before refusing them; our error says it all.
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            # The zip format can be memory-mapped: no second copy of the weights in memory.
            return torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "zip")
    except Exception:  # the unpickler fails in many ways on a damaged file (IndexError, KeyError, ...)
        raise _explain_failure(path, kind) from None


# Globals a torch.save file legitimately names; torch's weights-only unpickler builds only these kinds.
_PLAIN_GLOBALS = {"collections OrderedDict", "builtins set", "builtins frozenset", "builtins bytearray",
                  "builtins complex", "builtins slice", "_codecs encode"}


def _explain_failure(path: Path, kind: str) -> HessError:
    """Why torch.load refused a file, found by reading its pickle opcodes (never executing them)."""
    pickles: list[bytes] = []
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("data.pkl")]
                if not names:
                    return HessError(f"{path}: a zip archive but not a torch.save checkpoint (no data.pkl); "
                                     "give a checkpoint file")
                pickles = [archive.read(n) for n in names]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            return HessError(f"{path}: corrupted or truncated checkpoint (its zip directory is unreadable); "
                             "the file is incomplete or damaged: copy or save it again")
    else:
        with open(path, "rb") as fh:
            pickles = [fh.read(_SCAN_BYTES)]
    globals_, first, complete = [], None, True
    for data in pickles:
        found, values, ok = _scan_pickles(data)
        globals_ += found
        first = values[0] if values and first is None else first
        complete = complete and ok
    unsafe = [g for g in globals_ if not g.startswith("torch") and g not in _PLAIN_GLOBALS]
    if unsafe:
        shown = unsafe[0].replace(" ", ".")
        return HessError(f"{path}: refused to load: opening it would run code (its pickle calls {shown}); "
                         "only tensors and plain data are accepted, so re-save the weights with "
                         "torch.save(model.state_dict()) from a copy you trust")
    if kind == "pickle" and complete and first != _TORCH_LEGACY_MAGIC:
        return HessError(f"{path}: a plain Python pickle, not a torch.save checkpoint; "
                         "save the weights with torch.save(...) instead")
    return HessError(f"{path}: corrupted or truncated checkpoint (its data cannot be read); "
                     "the file is incomplete or damaged: copy or save it again")


_SCAN_BYTES = 16 << 20  # the pickled structure sits before the tensor bytes; this is ample
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of torch's legacy format


def _scan_pickles(data: bytes) -> tuple[list[str], list[Any], bool]:
    """Globals named by the pickles at the start of ``data``, the first pickle's integer value (if it
    is one), and whether the first pickle is complete. Opcodes are only read, never executed."""
    stream = io.BytesIO(data)
    found: list[str] = []
    values: list[Any] = []
    complete = True
    while stream.tell() < len(data):
        strings: list[str] = []
        try:
            ops = list(pickletools.genops(stream))
        except Exception:  # ends early, or reaches the raw tensor bytes after the pickles
            complete = complete and bool(values)
            break
        for op, arg, _ in ops:
            if op.name in ("GLOBAL", "INST"):
                found.append(str(arg))
            elif op.name == "STACK_GLOBAL":
                found.append(f"{strings[-2]} {strings[-1]}" if len(strings) >= 2 else "an imported function")
            elif isinstance(arg, str):
                strings.append(arg)
        ints = [arg for op, arg, _ in ops if isinstance(arg, int) and op.name in ("LONG1", "LONG4")]
        values.append(ints[0] if ints else None)
    return found, values, complete


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
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise HessError(f"{path}: field 'version' must be a positive integer, got {version!r}")
    if version > VERSION:
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
