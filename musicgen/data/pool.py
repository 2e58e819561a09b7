"""Run a function over many inputs in worker processes, one input's failure
never taking the run down.

Each worker gets a chunk of inputs. Before each input it writes the input's
index and the time into shared memory, so the parent always knows which input
is in progress without a message per input. A worker that exceeds the
per-item time limit is killed; a worker that dies (a parser segfault, say) is
replaced. Either way only the input in progress is lost, with a reason; the
rest of its chunk goes back in the queue.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

_IDLE = -1.0  # the progress marker's value between chunks


@dataclass
class Failure:
    reason: str


def _failure(exc: BaseException) -> Failure:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if os.environ.get("MUSICGEN_DEBUG"):
        traceback.print_exception(exc)
    return Failure(f"{type(exc).__name__}: {msg}"[:300])


def _glibc():
    """The C library's handle on Linux with glibc; None elsewhere."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True)
    except (OSError, AttributeError):
        return None


def _die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel kill this worker when the parent dies, even by SIGKILL,
    so a worker stuck in a hanging parser never outlives an interrupted run.

    (Strictly, when the thread that forked it ends: a pool is used from one thread.)"""
    libc = _glibc()
    if libc is None:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _worker(conn, parent_end, parent_pid: int, func: Callable[[Any], Any], marker) -> None:
    _die_with_parent(parent_pid)
    # A forked worker holds a copy of the parent's end of its own pipe; closed, the
    # pipe ends when the parent dies and an idle worker exits (on any system).
    parent_end.close()
    while True:
        try:
            chunk = conn.recv()
        except EOFError:
            return
        if chunk is None:
            return
        done = []
        for index, item in chunk:
            marker[1] = time.monotonic()
            marker[0] = index
            try:
                done.append((index, func(item)))
            except Exception as exc:  # the item's fault, not the worker's: report and go on
                done.append((index, _failure(exc)))
        marker[0] = _IDLE
        conn.send(done)


@dataclass
class _Slot:
    proc: Any
    conn: Any
    marker: Any  # shared [index in progress, since when (time.monotonic)]
    chunks: deque = field(default_factory=deque)  # sent and not yet answered, oldest first

    def deadline(self, timeout: float) -> float:
        return self.marker[1] + timeout


def _context():
    # fork starts in milliseconds; the workers only parse and encode (no torch threads)
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


class WorkerPool:
    """Worker processes for one job: started by `start` (or by `run`, as many as it
    needs), stopped by `close` or on leaving a `with` block.

    Starting them before the inputs are known lets their start-up overlap with
    whatever the caller does meanwhile (finding the files, say).
    """

    def __init__(
        self, job: Callable[[Any], Any], *, workers: int, timeout: float, chunk_size: int = 16
    ):
        self.job = job
        self.workers, self.timeout, self.chunk_size = max(1, workers), timeout, max(1, chunk_size)
        self.slots: list[_Slot] = []
        self._stopped = 0  # slots told to exit
        self._ctx = _context()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, n: int | None = None) -> WorkerPool:
        while len(self.slots) < min(self.workers, n or self.workers):
            self.slots.append(self._spawn())
        return self

    def _spawn(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        marker = self._ctx.RawArray("d", [_IDLE, 0.0])
        proc = self._ctx.Process(
            target=_worker, args=(child, parent, os.getpid(), self.job, marker), daemon=True
        )
        proc.start()
        child.close()
        return _Slot(proc, parent, marker)

    def stop(self) -> None:
        """Tell the workers to exit, without waiting: they wind down while the caller goes on."""
        for slot in self.slots[self._stopped :]:
            try:
                slot.conn.send(None)
            except (OSError, ValueError):
                pass
        self._stopped = len(self.slots)

    def close(self) -> None:
        self.stop()
        for slot in self.slots:
            slot.proc.join(timeout=2)
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()
        self.slots, self._stopped = [], 0

    def run(self, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result) as chunks complete; a result may be a `Failure`."""
        if self._stopped:
            raise RuntimeError("this pool's workers were stopped")
        if not items:
            return
        timeout = self.timeout
        queue: deque = deque(range(len(items)))
        # No more workers than chunks; several chunks per worker keep every core busy to the end.
        self.start(-(-len(items) // self.chunk_size))
        slots = self.slots
        chunk = max(1, min(self.chunk_size, len(items) // (len(slots) * 4) or 1))

        def next_chunk() -> list[int]:
            # Chunks shrink near the end (to a quarter of the full size: each chunk has a
            # fixed cost), so no worker is left alone with a long last chunk.
            size = max(
                min(chunk, max(1, chunk // 4)), min(chunk, -(-len(queue) // (2 * len(slots))))
            )
            return [queue.popleft() for _ in range(min(size, len(queue)))]

        def feed(slot: _Slot) -> None:
            """Keep two chunks in flight per worker, so it never waits for the parent between them."""
            while len(slot.chunks) < 2 and queue:
                take = next_chunk()
                if not slot.chunks:
                    slot.marker[1] = (
                        time.monotonic()
                    )  # the time limit runs from now until the worker marks its first input
                    slot.marker[0] = take[0]
                slot.chunks.append(take)
                try:
                    slot.conn.send([(i, items[i]) for i in take])
                except OSError:  # the worker has died: the wait below sees it, and retires it
                    return

        def retire(slot: _Slot, reason: str) -> Iterator[tuple[int, Failure]]:
            """Stop a worker that crashed or hung: the input in progress fails, the rest go back."""
            current = int(slot.marker[0])
            if slot.proc.is_alive():
                slot.proc.kill()
            slot.proc.join()
            slot.conn.close()
            chunks, slot.chunks = list(slot.chunks), deque()
            rest = [i for c in chunks for i in c if i != current]
            if current in chunks[0]:
                yield current, Failure(reason)
            queue.extendleft(reversed(rest))

        for slot in slots:
            feed(slot)
        while any(s.chunks for s in slots):
            busy = [s for s in slots if s.chunks]
            now = time.monotonic()
            ready = wait(
                [s.conn for s in busy],
                timeout=max(0.0, min(s.deadline(timeout) for s in busy) - now),
            )
            for i, slot in enumerate(slots):
                if not slot.chunks:
                    continue
                if slot.conn in ready:
                    try:
                        done = slot.conn.recv()
                    except (EOFError, OSError):
                        slot.proc.join(timeout=1)
                        code = slot.proc.exitcode
                        if code and code < 0:
                            why = f"parser crashed (signal {-code})"
                        else:
                            why = f"parser crashed (exit code {code})" if code else "parser crashed"
                        yield from retire(slot, why)
                        slots[i] = slot = self._spawn()
                        feed(slot)
                        continue
                    slot.chunks.popleft()
                    feed(slot)
                    yield from done
                elif time.monotonic() >= slot.deadline(timeout):
                    yield from retire(slot, f"timed out after {timeout:g} s")
                    slots[i] = slot = self._spawn()
                    feed(slot)
            for slot in slots:  # inputs put back by a retired worker go to any idle one
                feed(slot)


def run_isolated(
    func: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    workers: int,
    timeout: float,
    chunk_size: int = 16,
) -> Iterator[tuple[int, Any]]:
    """Yield (index, result) as chunks complete; a result may be a `Failure`."""
    if not items:
        return
    pool = WorkerPool(func, workers=workers, timeout=timeout, chunk_size=chunk_size)
    try:
        yield from pool.run(items)
    finally:
        pool.close()
