"""Files in and out, with one-line errors: atomic writes, output paths checked before any work,
strict JSON read with nesting bounded and without lone surrogates.

Every output of a run goes through :func:`atomic_write_text` (a temporary file in the same folder,
then a rename): a reader never sees half a file, and a failure leaves the previous file intact.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from hessgpt.errors import HessError


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` through a temporary file and a rename."""
    path = Path(path)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise HessError(f"{path}: the text holds an unpaired surrogate (position {exc.start}), "
                        "which UTF-8 cannot store") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise HessError(f"{path}: is a folder; give a file name")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise HessError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; an output is an ordinary file
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise HessError(f"{path}: cannot write ({exc.strerror or exc}); the previous file is unchanged") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_output_dir(path: str | Path, flag: str, create: bool = True) -> Path:
    """Create ``path`` if needed and prove it writable, before any work is done for it. With
    ``create=False`` nothing is created: the folder, or its nearest existing parent, must be writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HessError(f"{flag}: {path} is a file, not a folder; give a folder for the outputs")
    if not create:
        existing = next(p for p in (path, *path.absolute().parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise HessError(f"{flag}: cannot write into {path} ({existing} is not a writable folder)")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise HessError(f"{flag}: cannot write into {path} ({exc.strerror or exc})") from None
    return path


def check_input_file(path: str | Path, what: str) -> Path:
    """An existing regular file (symlink loops, folders, FIFOs and devices named as such)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise HessError(f"{what}: {path}: a symbolic link loop") from None
        if exc.errno == errno.ENOENT:
            dangling = os.path.lexists(path)
            raise HessError(f"{what}: {path}: " + ("a symbolic link to a missing file" if dangling
                                                   else "no such file")) from None
        raise HessError(f"{what}: {path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise HessError(f"{what}: {path}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise HessError(f"{what}: {path}: {kind}; give a regular file")
    return path


def loads_json(text: str, source: str, allow_nan: bool = False) -> Any:
    """Parse JSON text from ``source``: nesting bounded, lone surrogates refused, one-line errors.

    ``allow_nan`` reads a bare NaN/Infinity as null (older files); otherwise they are refused.
    """
    def constant(name: str) -> Any:
        if allow_nan:
            return None
        raise ValueError(f"{name} is not valid JSON")

    try:
        data = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise HessError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise HessError(f"{source}: JSON nested too deeply to be a results or responses file") from None
    except ValueError as exc:
        raise HessError(f"{source}: not valid JSON ({exc})") from None
    _refuse_surrogates(data, source)
    return data


def _refuse_surrogates(data: Any, source: str) -> None:
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise HessError(f"{source}: a string holds an unpaired surrogate escape (e.g. \\ud800), "
                                "which is not text") from None
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
