"""Every program in tests/sandbox_attacks/ runs in the sandbox and must be contained: the verdict
its header allows, nothing it must not do observed from outside, the run back in time, and the
sandbox still working afterwards. The targets (secret files, sentinels, listeners, a victim
process) are set up here, outside the sandbox."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hessgpt.errors import HessError
from hessgpt.sandbox import EXIT_REASONS, Sandbox
from hessgpt.sandbox.supervisor import package_dirs

CORPUS = Path(__file__).parent / "sandbox_attacks"
ATTACKS = sorted(CORPUS.glob("*.py"))
REPO = Path(__file__).resolve().parent.parent
SECRET_ENV = "HESSGPT_SANDBOX_TEST_SECRET"
MARGIN_S = 4.0
CHECKS = {"secret", "sentinel", "victim-file", "listener", "victim-process"}


def _header(path: Path) -> dict[str, str]:
    fields = {}
    for line in path.read_text().splitlines():
        match = re.match(r"# (\w[\w-]*): (.*)", line)
        if not match:
            break
        fields[match[1]] = match[2].strip()
    return fields


class Targets:
    """What the attacks aim at, and the checks that they did not reach it."""

    def __init__(self, tmp: Path):
        self.secret = "hessgpt-secret-" + secrets.token_hex(8)
        home = Path.home()
        self.secret_paths = [tmp / "secret.txt", REPO / f".sandbox-secret-{secrets.token_hex(4)}",
                             home / f".sandbox-secret-{secrets.token_hex(4)}"]
        for path in self.secret_paths:
            path.write_text(self.secret)
        self.sentinels = [tmp / "sentinel", REPO / f".sandbox-sentinel-{secrets.token_hex(4)}"]
        self.victim_file = tmp / "victim.txt"
        self.victim_file.write_text("victim")
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.tcp.setblocking(False)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    def substitute(self, code: str) -> str:
        values = {
            "__SECRET_PATHS__": repr([str(p) for p in self.secret_paths]),
            "__SECRET_ENV__": SECRET_ENV,
            "__SENTINELS__": repr([str(p) for p in self.sentinels]),
            "__VICTIM_FILE__": str(self.victim_file),
            "__VICTIM_PID__": str(self.victim.pid),
            "__PARENT_PID__": str(os.getpid()),
            "__TCP_PORT__": str(self.tcp.getsockname()[1]),
            "__UDP_PORT__": str(self.udp.getsockname()[1]),
            "__REPO__": str(REPO),
            "__LIBRARIES__": repr(package_dirs()[0]),
        }
        for key, value in values.items():
            code = code.replace(key, value)
        return code

    def violations(self, checks: set[str], output: str) -> list[str]:
        found = []
        if "secret" in checks and self.secret in output:
            found.append("the planted secret appeared in the output")
        if "sentinel" in checks:
            found += [f"sentinel {p} was created" for p in self.sentinels if p.exists()]
        if "victim-file" in checks and (not self.victim_file.exists() or self.victim_file.read_text() != "victim"):
            found.append("the victim file was deleted or changed")
        if "listener" in checks:
            try:
                self.tcp.accept()
                found.append("the TCP listener received a connection")
            except BlockingIOError:
                pass
            try:
                self.udp.recv(100)
                found.append("the UDP listener received a datagram")
            except BlockingIOError:
                pass
        if "victim-process" in checks and self.victim.poll() is not None:
            found.append("the victim process was killed")
        return found

    def close(self):
        for path in self.secret_paths + self.sentinels:
            path.unlink(missing_ok=True)
        self.tcp.close()
        self.udp.close()
        self.victim.kill()
        self.victim.wait()


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    t = Targets(tmp_path_factory.mktemp("attack-targets"))
    yield t
    t.close()


@pytest.fixture(scope="module")
def sandbox(targets):
    os.environ[SECRET_ENV] = targets.secret  # the supervisor's environment holds a secret
    box = Sandbox()
    try:
        box.start()
    except HessError as exc:
        pytest.skip(str(exc))
    yield box
    box.close()
    os.environ.pop(SECRET_ENV, None)


def test_corpus_is_complete():
    assert len(ATTACKS) >= 40
    for path in ATTACKS:
        header = _header(path)
        assert header.get("attack") and header.get("expect"), f"{path.name}: needs attack and expect headers"
        assert set(header["expect"].split()) <= set(EXIT_REASONS), path.name
        assert set(header.get("must-not", "").split()) <= CHECKS, path.name


@pytest.mark.parametrize("attack", ATTACKS, ids=[p.stem for p in ATTACKS])
def test_attack_is_contained(attack, sandbox, targets):
    header = _header(attack)
    timeout = float(header.get("timeout", 2))
    result = sandbox.run(targets.substitute(attack.read_text()), timeout_s=timeout, memory_mb=100)
    output = result.stdout + result.stderr
    verdict = f"{attack.name}: {result.exit_reason} ({result.detail}); stdout {result.stdout[:300]!r}"
    assert result.exit_reason in header["expect"].split(), verdict
    assert result.wall_s < timeout + MARGIN_S, verdict
    assert "\n" not in result.detail and (result.exit_reason == "ok" or result.detail), verdict
    assert not targets.violations(set(header.get("must-not", "").split()), output), verdict
    for text in header.get("absent", "").split():
        assert text not in output, f"{verdict}: {text!r} appeared"
    if "stdout" in header:
        assert header["stdout"] in result.stdout, verdict
    after = sandbox.run("print(sum(range(10)))", timeout_s=5)
    assert (after.exit_reason, after.stdout) == ("ok", "45\n"), f"sandbox broken after {attack.name}: {after}"
    assert os.getpid() and targets.victim.poll() is None
