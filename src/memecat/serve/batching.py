"""Server-side micro-batching: requests queue on the event loop, one inference thread scores them in batches.

The queue is bounded (a full queue refuses at once, so a client learns to back off instead of waiting), a
batch closes when it holds `max_batch_size` memes or its oldest meme has waited `max_wait_s`, and a caller
that gives up (deadline or disconnect) leaves its meme to be skipped. The model runs in a single thread: torch
modules are not guaranteed thread-safe, and a model's ONNX/torch kernels use the cores themselves. That thread
runs at a lower CPU priority than the event loop, so probes answer at once on a saturated machine.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
MODEL_THREAD_NICENESS = 10  # how much lower than the HTTP loop the model's CPU priority is


def _lower_priority() -> None:
    """Run the model thread, and the threads it starts (ONNX Runtime's pool, image decoders), below the event
    loop's CPU priority: on a saturated machine the kernel then serves probes and small requests first, and
    the model takes the rest. Linux sets niceness per thread; elsewhere this does nothing."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MODEL_THREAD_NICENESS)
        except OSError:
            log.debug("could not lower the model thread's priority")


class QueueFull(Exception):
    """No room for the request's memes; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int, depth: int):
        super().__init__(f"the model's queue is full ({depth} memes waiting); retry in {retry_after} s")
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """The request's deadline passed before its memes were scored."""


class ShuttingDown(Exception):
    """The server stopped before the meme was scored."""


@dataclass(eq=False)
class _Job:
    payload: Any
    future: asyncio.Future
    queued_at: float
    abandoned: bool = False


@dataclass
class BatchStats:
    """Hooks a metrics layer fills in: called on the event loop after every batch."""

    on_batch: Callable[[int, float], None] = lambda size, seconds: None
    on_reject: Callable[[str], None] = lambda reason: None


@dataclass
class MicroBatcher:
    """`handler(payloads) -> results` runs in the inference thread; a result that is an exception is raised to
    that payload's caller alone."""

    handler: Callable[[list[Any]], list[Any]]
    max_batch_size: int
    max_wait_s: float
    max_queue: int
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self._jobs: deque[_Job] = deque()
        self._live = 0  # queued jobs not abandoned
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._batch_seconds = 0.05  # running mean of a batch's duration, for Retry-After

    # --- the inference thread ---------------------------------------------------------------------
    @property
    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="memecat-model", initializer=_lower_priority)
        return self._pool

    def run_in_model_thread(self, fn: Callable[[], Any]) -> asyncio.Future:
        """Work outside batches (the warm-up), in turn with them."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # --- queue ---------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Memes waiting for the model (not counting the batch being scored)."""
        return self._live

    def ensure_running(self) -> None:
        """Start the batching task on the running loop (again, if the loop it ran on has gone)."""
        loop = asyncio.get_running_loop()
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        self._loop, self._arrived = loop, asyncio.Event()
        self._jobs.clear()
        self._live = 0
        self._task = loop.create_task(self._run(), name="memecat-batcher")

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: whole batches ahead times a batch's mean duration."""
        return max(1, math.ceil((self._live / self.max_batch_size + 1) * self._batch_seconds))

    def submit(self, payloads: Sequence[Any]) -> list[_Job]:
        """Queue all `payloads` or none: QueueFull when they do not fit."""
        self.ensure_running()
        if self._live + len(payloads) > self.max_queue:
            self.stats.on_reject("queue_full")
            raise QueueFull(self.retry_after(), self._live)
        now = time.monotonic()
        jobs = [_Job(p, self._loop.create_future(), now) for p in payloads]
        self._jobs.extend(jobs)
        self._live += len(jobs)
        self._arrived.set()
        return jobs

    def abandon(self, jobs: Sequence[_Job]) -> None:
        """The caller no longer waits: skip what is still queued."""
        for job in jobs:
            if not job.future.done() and not job.abandoned:
                job.abandoned = True
                if job in self._jobs:
                    self._live -= 1

    async def results(self, jobs: Sequence[_Job], deadline: float) -> list[Any]:
        """Each job's result or exception, in order; DeadlineExceeded when not all are done by `deadline`
        (a time.monotonic() value)."""
        try:
            timeout = max(0.0, deadline - time.monotonic())
            _, pending = await asyncio.wait([j.future for j in jobs], timeout=timeout)
            if pending:
                self.stats.on_reject("timeout")
                raise DeadlineExceeded()
            return [j.future.exception() or j.future.result() for j in jobs]
        finally:
            self.abandon(jobs)

    # --- the batching loop -----------------------------------------------------------------------
    def _take(self) -> list[_Job]:
        batch = []
        while self._jobs and len(batch) < self.max_batch_size:
            job = self._jobs.popleft()
            if not job.abandoned:
                self._live -= 1
                batch.append(job)
        return batch

    def _drop_abandoned_head(self) -> None:
        while self._jobs and self._jobs[0].abandoned:
            self._jobs.popleft()

    async def _gather(self) -> None:
        """Wait for a first meme, then until the batch is full or the oldest has waited max_wait_s."""
        while True:
            self._drop_abandoned_head()
            if self._jobs:
                break
            self._arrived.clear()
            await self._arrived.wait()
        close_at = self._jobs[0].queued_at + self.max_wait_s
        while self._live < self.max_batch_size:
            remaining = close_at - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._gather()
            batch = self._take()
            if not batch:
                continue
            started = time.perf_counter()
            try:
                outcomes = await loop.run_in_executor(self._executor, self._score, [j.payload for j in batch])
            except asyncio.CancelledError:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(ShuttingDown())
                raise
            except Exception as exc:  # noqa: BLE001 - the thread could not run it; the loop goes on
                outcomes = [exc] * len(batch)
            seconds = time.perf_counter() - started
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * seconds
            self.stats.on_batch(len(batch), seconds)
            for job, outcome in zip(batch, outcomes):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    def _score(self, payloads: list[Any]) -> list[Any]:
        try:
            outcomes = self.handler(payloads)
        except Exception as exc:
            log.exception("scoring a batch of %d failed", len(payloads))
            outcomes = [exc] * len(payloads)
        return outcomes

    async def stop(self) -> None:
        """Cancel the loop, fail whatever still waits, and let the inference thread finish its batch."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for job in self._jobs:
            if not job.future.done():
                job.future.set_exception(ShuttingDown())
        self._jobs.clear()
        self._live = 0
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
