"""Run a function over many inputs in worker processes, one input's failure
never taking the run down.

Each worker gets a chunk of inputs and answers after each one, so the parent
always knows which input is in progress. A worker that exceeds the per-item
time limit is killed; a worker that dies (a parser segfault, say) is replaced.
Either way only the input in progress is lost, with a reason; the rest of its
chunk goes back in the queue.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any


@dataclass
class Failure:
    reason: str


def _worker(conn, func) -> None:
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        for index, item in job:
            try:
                result: Any = func(item)
            except Exception as exc:  # the item's fault, not the worker's: report and go on
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                result = Failure(f"{type(exc).__name__}: {msg}"[:300])
                if os.environ.get("MUSICGEN_DEBUG"):
                    traceback.print_exc()
            conn.send((index, result))


@dataclass
class _Slot:
    proc: Any
    conn: Any
    pending: deque = field(default_factory=deque)
    deadline: float = float("inf")


def _context():
    # fork starts in milliseconds; the workers only parse and encode (no torch threads)
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def run_isolated(
    func: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    workers: int,
    timeout: float,
    chunk_size: int = 16,
) -> Iterator[tuple[int, Any]]:
    """Yield (index, result) in completion order; a result may be a `Failure`."""
    if not items:
        return
    ctx = _context()
    queue: deque = deque(range(len(items)))
    n_workers = max(1, min(workers, -(-len(items) // max(chunk_size, 1))))
    # Small chunks near the end keep both cores busy until the last file.
    chunk = max(1, min(chunk_size, len(items) // (n_workers * 4) or 1))

    def start() -> _Slot:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, func), daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent)

    def feed(slot: _Slot) -> None:
        take = [queue.popleft() for _ in range(min(chunk, len(queue)))]
        if take:
            slot.pending.extend(take)
            slot.deadline = time.monotonic() + timeout
            slot.conn.send([(i, items[i]) for i in take])

    def retire(slot: _Slot, reason: str) -> tuple[int, Failure]:
        lost = slot.pending.popleft()
        queue.extendleft(reversed(slot.pending))
        slot.pending.clear()
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join()
        slot.conn.close()
        return lost, Failure(reason)

    slots = [start() for _ in range(n_workers)]
    try:
        for slot in slots:
            feed(slot)
        while any(s.pending for s in slots):
            busy = [s for s in slots if s.pending]
            now = time.monotonic()
            ready = wait([s.conn for s in busy], timeout=max(0.0, min(s.deadline for s in busy) - now))
            for i, slot in enumerate(slots):
                if not slot.pending:
                    continue
                if slot.conn in ready:
                    try:
                        index, result = slot.conn.recv()
                    except (EOFError, OSError):
                        slot.proc.join(timeout=1)
                        code = slot.proc.exitcode
                        if code and code < 0:
                            why = f"parser crashed (signal {-code})"
                        else:
                            why = f"parser crashed (exit code {code})" if code else "parser crashed"
                        yield retire(slot, why)
                        slots[i] = slot = start()
                        feed(slot)
                        continue
                    slot.pending.remove(index)
                    slot.deadline = time.monotonic() + timeout
                    yield index, result
                    if not slot.pending:
                        feed(slot)
                elif time.monotonic() >= slot.deadline:
                    yield retire(slot, f"timed out after {timeout:g} s")
                    slots[i] = slot = start()
                    feed(slot)
    finally:
        for slot in slots:
            try:
                slot.conn.send(None)
            except (OSError, BrokenPipeError, ValueError):
                pass
        for slot in slots:
            slot.proc.join(timeout=2)
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()
