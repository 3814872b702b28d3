"""``hessgpt serve`` as a child process on a free loopback port, for the benchmark scripts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(checkpoint: Path, port: int, *options: str) -> subprocess.Popen:
    """``hessgpt serve --checkpoint CK --port PORT OPTIONS...`` on 127.0.0.1, once /health answers."""
    command = [sys.executable, "-m", "hessgpt", "serve", "--checkpoint", str(checkpoint), "--host", "127.0.0.1",
               "--port", str(port), *options]
    print("$ " + " ".join(command), flush=True)
    # stderr to a file: a pipe nobody reads would block a server that writes much.
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=log, text=True)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"hessgpt serve exited with status {proc.returncode}: {log.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if json.loads(r.read())["status"] == "ok":
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"hessgpt serve did not answer /health within {START_SECONDS} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
