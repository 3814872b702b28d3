"""The scheduler: one thread owns the engine and runs a continuous batch that requests join.

Request handlers (on the asyncio loop) submit jobs and cancellations through a thread-safe inbox.
Between two decoding steps the thread takes everything in the inbox: new jobs enter the batch's
queue (and fill free slots at the next step), cancelled jobs leave it. Each step's text and each
finished result go back to the job's asyncio queue with ``call_soon_threadsafe``.

Every step allocates and frees tensors of another size, and glibc would keep the freed memory
scattered in its heaps (the resident size climbed by 300 MB over 1,000 requests on SmolLM2), so the
thread hands it back to the system after each batch's worth of ended requests and when it goes idle.
Before its first step it builds the linear kernels of every step the batch can run: oneDNN keeps one
per shape of call, and meeting new ones request after request kept the memory growing.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass
from typing import Any

import torch

from hessgpt.errors import HessError
from hessgpt.generate import Engine, GenerationRequest, GenerationResult, LiveBatch, TokenLogprob
from hessgpt.native_memory import return_freed_memory


@dataclass
class Job:
    """One generation for one client: what to run, and where its events go."""

    key: Any
    request: GenerationRequest
    events: asyncio.Queue
    loop: asyncio.AbstractEventLoop
    score_prompt: int | None = None  # echo + logprobs: score the prompt first, with this many alternatives
    generate: bool = True  # False: score the prompt only (echo with max_tokens 0)


@dataclass
class Event:
    key: Any
    text: str = ""
    result: GenerationResult | None = None  # the job is finished
    generated: int = 0
    prompt_logprobs: list[TokenLogprob | None] | None = None
    error: str | None = None  # the job failed (nothing more comes)


class Scheduler:
    def __init__(self, engine: Engine, slots: int) -> None:
        self.engine = engine
        self.live = LiveBatch(engine, slots)
        self.jobs: dict[Any, Job] = {}
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="hessgpt-scheduler", daemon=True)
        self.steps = 0  # forward passes run
        self.cancelled = 0  # jobs dropped before they finished (their client left)
        self.finished = 0  # jobs answered in full
        self.trims = 0  # times freed memory went back to the system
        self._ended_since_trim = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._inbox.put(None)
        self._thread.join(timeout=30)

    def submit(self, job: Job) -> None:
        self._inbox.put(("add", job))

    def cancel(self, key: Any) -> None:
        self._inbox.put(("cancel", key))

    @property
    def running(self) -> int:
        return self.live.running

    @property
    def queued(self) -> int:
        return len(self.live) - self.live.running

    # -- the scheduler thread ------------------------------------------------------------------
    def _run(self) -> None:
        with torch.inference_mode():
            self.live.build_kernels()
            while not self._stopping:
                self._return_memory()
                self._take_inbox(block=not len(self.live))
                if self._stopping:
                    break
                try:
                    updates = self.live.step()
                except Exception as exc:  # a bug: fail every job in flight rather than hang them
                    self._fail_all(f"internal error: {type(exc).__name__}: {exc}")
                    continue
                self.steps += 1
                for update in updates:
                    job = self.jobs.get(update.key)
                    if job is None:
                        continue
                    if update.result is not None:
                        del self.jobs[update.key]
                        self.finished += 1
                        self._ended_since_trim += 1
                    if update.text or update.result is not None:
                        self._send(job, Event(job.key, update.text, update.result, update.generated))

    def _take_inbox(self, block: bool) -> None:
        while True:
            try:
                item = self._inbox.get(block=block)
            except queue.Empty:
                return
            block = False
            if item is None:
                return
            action, payload = item
            if action == "cancel":
                if self.live.cancel(payload):
                    self.cancelled += 1
                    self._ended_since_trim += 1
                self.jobs.pop(payload, None)
            else:
                self._admit(payload)

    def _return_memory(self) -> None:
        """After a batch's worth of ended requests, or once the batch has run empty."""
        if self._ended_since_trim and (self._ended_since_trim >= self.live.slots or not len(self.live)):
            return_freed_memory()
            self.trims += 1
            self._ended_since_trim = 0

    def _admit(self, job: Job) -> None:
        try:
            if job.score_prompt is not None:
                scores = self.engine.prompt_logprobs(job.request.prompt_ids, job.score_prompt)
                self._send(job, Event(job.key, prompt_logprobs=scores))
            if not job.generate:
                result = GenerationResult("", [], "length", len(job.request.prompt_ids), False, [])
                self._send(job, Event(job.key, result=result))
                return
            self.live.add(job.key, job.request)
            self.jobs[job.key] = job
        except HessError as exc:
            self._send(job, Event(job.key, error=str(exc)))

    def _fail_all(self, message: str) -> None:
        for key, job in list(self.jobs.items()):
            self.live.cancel(key)
            self._send(job, Event(key, error=message))
        self.jobs.clear()

    @staticmethod
    def _send(job: Job, event: Event) -> None:
        try:
            job.loop.call_soon_threadsafe(job.events.put_nowait, event)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass
