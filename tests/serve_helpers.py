"""An in-process ``hessgpt serve`` on a free loopback port, for the server tests (no tests here)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from hessgpt.generate import Engine
from hessgpt.serve import ServeOptions, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """uvicorn in a thread; ``stop()`` shuts it down (the scheduler thread with it)."""

    def __init__(self, engine: Engine, options: ServeOptions) -> None:
        self.app = create_app(engine, options)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    @property
    def scheduler(self):
        return self.app.state.scheduler

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
