"""The chat page in headless Chromium, driven over the DevTools protocol (``--remote-debugging-pipe``):
type a message, see the streamed answer; a model that writes ``<script>`` is shown as text.

Slow (a browser start per test). The model answering ``<script>XXXX…`` is built by hand: one token's
embedding points along its own axis and the output head maps that axis to the next token of the
string, so greedy or sampled, the answer is that string.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import torch
from serve_helpers import RunningServer
from test_generate_helpers import ByteTokenizer, tiny_loaded

from hessgpt.chat import make_chat_template
from hessgpt.config import ModelConfig
from hessgpt.generate import Engine, GenerationSettings
from hessgpt.loading import LoadedModel, build_model
from hessgpt.serve import ServeOptions

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium not installed (make browser)"),
]


class Browser:
    """Headless Chromium on a DevTools pipe (fd 3: commands in, fd 4: replies out, NUL-separated JSON)."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds() -> None:  # the child reads commands on fd 3 and writes replies on fd 4
            # Move both ends above 4 first, so neither dup2 overwrites the other; dup2 leaves 3 and 4
            # inheritable while every other pipe end stays close-on-exec.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            close_fds=False, preexec_fn=fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.console: list[str] = []

    def command(self, method: str, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("method") == "Runtime.consoleAPICalled":
                self.console.append(" ".join(str(a.get("value")) for a in reply["params"]["args"]))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> None:
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.command("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.command("Runtime.enable")
        self.command("Page.navigate", url=url)

    def eval(self, expression: str):
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                value = self.eval(expression)
            except RuntimeError as exc:  # e.g. the page is still loading
                value, last = None, exc
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression} (last error: {last})")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self._to_browser)
        os.close(self._from_browser)


def script_writer() -> LoadedModel:
    """A GPT-2 block model that answers ``<script>`` then ``X`` forever after the prompt's final ``:``."""
    tok = ByteTokenizer()
    chain = ":<script>X"
    cfg = ModelConfig(arch="gpt2", vocab_size=tok.vocab_size, n_layer=1, n_head=4, n_embd=64,
                      block_size=128, bias=True, tie_embeddings=False, name="script-writer")
    model = build_model(cfg, None, "test")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for p in params.values():
            p.zero_()
        params["transformer.ln_f.weight"].fill_(1.0)
        for axis, (current, following) in enumerate(zip(chain, chain[1:] + "X", strict=True)):
            params["transformer.wte.weight"][ord(current), axis] = 10.0
            params["lm_head.weight"][ord(following), axis] = 10.0
    return LoadedModel(model, tok, make_chat_template(None, tok), cfg, {})


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


def serve(loaded: LoadedModel) -> RunningServer:
    return RunningServer(Engine(loaded, batch_size=2), ServeOptions(model_name=loaded.config.name, slots=2))


def send(browser: Browser, text: str, temperature: str, max_tokens: int) -> str:
    """Type ``text`` into the page with these settings; the finished answer's text."""
    browser.wait_for("document.getElementById('status').textContent === 'ready'")
    browser.eval(
        f"document.getElementById('temperature').value = {json.dumps(temperature)};"
        f"document.getElementById('max_tokens').value = '{max_tokens}';"
        f"document.getElementById('seed').value = '5';"
        f"document.getElementById('input').value = {json.dumps(text)};"
        "document.getElementById('form').requestSubmit(); true"
    )
    count = browser.eval("document.querySelectorAll('.msg.assistant').length")
    browser.wait_for(f"document.querySelectorAll('.msg.assistant .meta').length === {count}")
    return browser.eval(f"document.querySelectorAll('.msg.assistant .body')[{count - 1}].textContent")


def test_typed_message_gets_the_streamed_answer_and_history_carries_over(browser):
    loaded = tiny_loaded("llama", scale=4.0, block_size=512)
    server = serve(loaded)
    try:
        engine = Engine(loaded, batch_size=1)
        browser.open(server.url + "/")
        browser.wait_for("document.getElementById('model').textContent === 'tiny-llama'")
        first = send(browser, "hello there", "0", 12)
        settings = GenerationSettings(max_new_tokens=12, temperature=0.0, top_p=0.95, seed=5)
        turn = [{"role": "user", "content": "hello there"}]
        assert first == engine.generate([engine.chat_request(turn, settings)])[0].text
        assert first  # a visible answer
        second = send(browser, "and then?", "0", 8)
        history = turn + [{"role": "assistant", "content": first}, {"role": "user", "content": "and then?"}]
        settings.max_new_tokens = 8
        assert second == engine.generate([engine.chat_request(history, settings)])[0].text
        browser.eval("document.getElementById('reset').click(); true")
        assert browser.eval("document.querySelectorAll('.msg').length") == 0
    finally:
        server.stop()


def test_model_and_user_html_is_shown_as_text_and_never_runs(browser):
    server = serve(script_writer())
    try:
        browser.open(server.url + "/")
        hostile = "<img src=x onerror=\"document.title='pwned'\">"
        answer = send(browser, hostile, "0.7", 14)
        assert answer == "<script>" + "X" * 6
        assert browser.eval("document.querySelectorAll('#log script, #log img').length") == 0
        assert browser.eval("document.querySelector('.msg.user .body').textContent") == hostile
        assert browser.eval("document.title") != "pwned"
        assert "&lt;script&gt;XXXXXX" in browser.eval("document.getElementById('log').innerHTML")
    finally:
        server.stop()
