"""The tokenizer a checkpoint was trained with, when the checkpoint itself does not hold it.

``hessgpt import CK --tokenizer SPEC`` accepts:

- ``meta.pkl``: nanoGPT's character vocabulary (``stoi``/``itos``), read without running any code;
- ``char:FILE`` / ``word:FILE``: rebuild the project's character / word tokenizer from its training text;
- ``gpt2``: the GPT-2 BPE;
- a tokenizer JSON written by ``hessgpt tokenizer train`` (``Tokenizer.save``).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from hessgpt.errors import HessError

MAX_META_BYTES = 16 << 20  # nanoGPT's meta.pkl for characters is a few kB; a word vocabulary stays far below


class _DataOnlyUnpickler(pickle.Unpickler):
    """Builds only plain containers and scalars: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refuses to load the global {module}.{name}")


def read_meta_pkl(path: str | Path) -> Any:
    """nanoGPT's ``meta.pkl`` as a character tokenizer whose ids are nanoGPT's (``itos`` order)."""
    from hessgpt.tokenizer import CharTokenizer

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_META_BYTES:
            raise HessError(f"{path}: {size:,} bytes is too large for a nanoGPT meta.pkl (limit {MAX_META_BYTES:,})")
        data = path.read_bytes()
    except OSError as exc:
        raise HessError(f"{path}: cannot read the tokenizer file ({exc.strerror or exc})") from None
    try:
        meta = _DataOnlyUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, RecursionError) as exc:
        raise HessError(f"{path}: not a plain-data nanoGPT meta.pkl ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("itos"), dict):
        raise HessError(f"{path}: field 'itos' missing: expected nanoGPT's meta.pkl with 'stoi' and 'itos'")
    itos = meta["itos"]
    n = len(itos)
    if n == 0 or sorted(k for k in itos if type(k) is int) != list(range(n)):
        raise HessError(f"{path}: field 'itos' must map the ids 0..{max(n - 1, 0)} to characters")
    units = [itos[i] for i in range(n)]
    if not all(isinstance(u, str) and len(u) == 1 for u in units):
        raise HessError(f"{path}: field 'itos' must map ids to single characters (nanoGPT character level)")
    if len(set(units)) != n:
        raise HessError(f"{path}: field 'itos' maps two ids to the same character")
    stoi = meta.get("stoi")
    if stoi is not None and (not isinstance(stoi, dict) or any(stoi.get(u) != i for i, u in enumerate(units))):
        raise HessError(f"{path}: fields 'stoi' and 'itos' disagree")
    size_field = meta.get("vocab_size", n)
    if size_field != n:
        raise HessError(f"{path}: field 'vocab_size' is {size_field!r} but 'itos' holds {n} characters")
    # No end-of-text token: nanoGPT's character models never saw one. <unk> gets the id after the units.
    return CharTokenizer("nanogpt-char", units, ())


def tokenizer_from_arg(spec: str) -> Any:
    """The tokenizer named by ``--tokenizer`` (see the module docstring)."""
    from hessgpt.tokenizer import char_tokenizer, gpt2_tokenizer, load_tokenizer, word_tokenizer

    if spec == "gpt2":
        return gpt2_tokenizer()
    for prefix, build in (("char:", char_tokenizer), ("word:", word_tokenizer)):
        if spec.startswith(prefix):
            text_path = Path(spec.removeprefix(prefix))
            try:
                text = text_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise HessError(f"--tokenizer: cannot read the training text {text_path} ({exc})") from None
            return build(text)
    path = Path(spec)
    if not path.exists():
        raise HessError(f"--tokenizer: {spec}: no such file; give meta.pkl, char:FILE, word:FILE, gpt2 "
                        "or a tokenizer JSON")
    if path.suffix == ".pkl":
        return read_meta_pkl(path)
    return load_tokenizer(path)


def find_meta_pkl(ckpt_path: str | Path, dataset: Any) -> Path | None:
    """nanoGPT keeps meta.pkl in data/<dataset>/: look beside the checkpoint, then there."""
    ckpt_path = Path(ckpt_path)
    candidates = [ckpt_path.parent / "meta.pkl"]
    if isinstance(dataset, str) and dataset and "/" not in dataset and ".." not in dataset:
        for root in (ckpt_path.parent, ckpt_path.parent.parent, Path.cwd()):
            candidates.append(root / "data" / dataset / "meta.pkl")
    return next((c for c in candidates if c.is_file()), None)
