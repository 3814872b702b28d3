"""Data files the tokenizers need, fetched once into a local cache and never at run time.

The GPT-2 BPE ranks (tiktoken's ``r50k_base.tiktoken``) are published as a blob that this project
cannot reach; the same bytes ship inside the PyPI source distribution of ``openai-whisper``
(``whisper/assets/gpt2.tiktoken``). ``ensure_gpt2_bpe()`` takes them from there (PyPI is reachable),
checks the sha256 that tiktoken itself checks, and writes them where tiktoken's cache looks, so
``tiktoken.get_encoding("r50k_base")`` works offline.

    python -m hessgpt.assets gpt2              # download the sdist with pip, install the file
    python -m hessgpt.assets gpt2 --from FILE  # same, from an sdist already on disk
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from hessgpt.errors import HessError

# The blob tiktoken_ext/openai_public.py names for r50k_base (the GPT-2 BPE); tiktoken caches a
# download under sha1(url) and only trusts it when its sha256 is this one.
R50K_URL = "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken"
R50K_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"

WHISPER_SDIST = "openai-whisper==20250625"
WHISPER_MEMBER_SUFFIX = "/whisper/assets/gpt2.tiktoken"
MAX_MEMBER_BYTES = 8 * 1024 * 1024  # the real file is 835,554 bytes; refuse anything absurd

HOW_TO_GET_GPT2 = "run `python -m hessgpt.assets gpt2` (or `make setup`) once to install it"


def tiktoken_cache_dir() -> Path:
    """tiktoken's cache folder; pins ``TIKTOKEN_CACHE_DIR`` to ``~/.cache/hessgpt/tiktoken`` when unset.

    Must run before tiktoken reads an encoding: with the variable unset tiktoken would use a folder
    in /tmp, which does not survive a reboot.
    """
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        os.environ["TIKTOKEN_CACHE_DIR"] = str(Path.home() / ".cache" / "hessgpt" / "tiktoken")
    return Path(os.environ["TIKTOKEN_CACHE_DIR"])


def gpt2_bpe_path() -> Path:
    """Where tiktoken looks for the r50k ranks (the file may not exist yet)."""
    return tiktoken_cache_dir() / hashlib.sha1(R50K_URL.encode()).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gpt2_bpe_ready() -> bool:
    """True when the cached ranks exist and carry the expected hash."""
    path = gpt2_bpe_path()
    return path.is_file() and _sha256(path.read_bytes()) == R50K_SHA256


def read_member_from_sdist(sdist: Path) -> bytes:
    """The bytes of ``whisper/assets/gpt2.tiktoken`` inside the sdist, read into memory only.

    Nothing is extracted to disk, so member names (``../``, absolute paths, links) cannot write
    anywhere; only a regular file of sensible size is accepted.
    """
    try:
        with tarfile.open(sdist, "r:*") as archive:
            for member in archive:
                if not member.name.endswith(WHISPER_MEMBER_SUFFIX):
                    continue
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    raise HessError(f"{sdist}: {member.name} is not a regular file of expected size")
                handle = archive.extractfile(member)
                if handle is None:
                    raise HessError(f"{sdist}: cannot read {member.name}")
                return handle.read(MAX_MEMBER_BYTES + 1)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise HessError(f"{sdist}: not a readable source archive ({exc})") from None
    raise HessError(f"{sdist}: no member ending in {WHISPER_MEMBER_SUFFIX}; is it the {WHISPER_SDIST} sdist?")


def install_gpt2_bpe(data: bytes, source: str) -> Path:
    """Verify the ranks and write them atomically (temporary file + rename) into tiktoken's cache."""
    digest = _sha256(data)
    if digest != R50K_SHA256:
        raise HessError(
            f"{source}: gpt2.tiktoken has sha256 {digest}, expected {R50K_SHA256}; the file is not the GPT-2 BPE"
        )
    path = gpt2_bpe_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def download_whisper_sdist(dest: Path) -> Path:
    """``pip download`` the openai-whisper sdist (no dependencies, no wheel) into ``dest``."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        WHISPER_SDIST,
        "-d",
        str(dest),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob("openai_whisper-*.tar.gz")) + sorted(dest.glob("openai-whisper-*.tar.gz"))
    if result.returncode != 0 or not found:
        last = (result.stderr.strip().splitlines() or ["no sdist was saved"])[-1]
        raise HessError(
            f"{WHISPER_SDIST}: pip download failed ({last}); the GPT-2 BPE cannot be installed offline"
        )
    return found[0]


def ensure_gpt2_bpe(download: bool = True, sdist: str | Path | None = None) -> Path:
    """Path of the verified GPT-2 BPE ranks in tiktoken's cache, installing them if needed.

    With ``sdist`` the ranks come from that local archive; otherwise, with ``download``, pip fetches
    the openai-whisper sdist from PyPI. With neither, a missing file is a HessError.
    """
    if gpt2_bpe_ready():
        return gpt2_bpe_path()
    if sdist is not None:
        return install_gpt2_bpe(read_member_from_sdist(Path(sdist)), str(sdist))
    if not download:
        raise HessError(f"{gpt2_bpe_path()}: GPT-2 BPE ranks not installed; {HOW_TO_GET_GPT2}")
    with tempfile.TemporaryDirectory(prefix="hessgpt-whisper-") as tmp:
        archive = download_whisper_sdist(Path(tmp))
        return install_gpt2_bpe(read_member_from_sdist(archive), str(archive))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hessgpt.assets", description="Install data files the tokenizers need."
    )
    parser.add_argument("asset", choices=["gpt2"], help="gpt2: the GPT-2 BPE ranks for tiktoken (r50k_base)")
    parser.add_argument(
        "--from", dest="sdist", metavar="FILE", help="use this openai-whisper sdist instead of downloading it"
    )
    args = parser.parse_args(argv)
    try:
        print(ensure_gpt2_bpe(download=True, sdist=args.sdist))
    except HessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
