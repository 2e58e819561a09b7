"""Time for live play, behind one small interface so tests never wait on the wall clock.

Everything in `musicgen.live` (the scheduler, the file player, the listener) reads time
through a `Clock` and blocks only in `Clock.sleep_until`. Production uses `RealClock`
(monotonic seconds); tests use `ManualClock`, which moves only when the test says so,
and can tell the test when every worker thread is asleep again ("quiescent"), so a test
asserts on what happened at a clock time without sleeping or racing (the idea of
fake clocks such as Go's clockwork `BlockUntil`).

A sleeper must also wake early: a new event earlier than the one it waits for, a
cancel, a stop. That is what `Wake` is for: an Event that also rouses a `ManualClock`
sleeper at once (a plain `threading.Event` could only be noticed by polling).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


class Wake:
    """A `threading.Event` that can also notify clocks waiting on it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def set(self) -> None:
        self._event.set()
        with self._lock:
            listeners = list(self._listeners)
        for notify in listeners:  # outside our lock: a listener takes its clock's lock
            notify()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def _subscribe(self, notify: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(notify)

    def _unsubscribe(self, notify: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.remove(notify)


@runtime_checkable
class Clock(Protocol):
    """Seconds on one monotonic time line shared by input, scheduler and recorder."""

    def now(self) -> float: ...

    def sleep_until(self, t: float, wake: Wake | None = None) -> bool:
        """Block until `now() >= t` (returns True) or `wake` is set (returns False).
        `t` may be `math.inf`: sleep until woken."""
        ...


MAX_WAIT = 0.1  # seconds: the longest a RealClock sleeps before it looks again


class RealClock:
    """`time.monotonic`, so a system clock change never shifts the music.

    `Event.wait(timeout)` wakes a little late (tens of microseconds on Linux, more
    on a loaded machine); `spin` seconds before the deadline the clock stops
    waiting on the event and yields in a short loop instead, trading a little CPU
    for lateness. 0 (the default) never spins; see benchmarks/live_scheduler.py.
    """

    def __init__(self, spin: float = 0.0) -> None:
        self.spin = max(0.0, float(spin))

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float, wake: Wake | None = None) -> bool:
        while True:
            if wake is not None and wake.is_set():
                return False
            dt = t - time.monotonic()
            if dt <= 0:
                return True
            if dt > self.spin:
                if wake is None and math.isinf(dt):
                    raise ValueError("sleeping forever needs a wake")
                # never one wait without end: Python runs a signal's handler (Ctrl-C) in the
                # main thread only when that thread runs, and a signal the kernel hands to
                # another thread does not wake a main thread blocked on a lock, so an idle
                # session could hold a Ctrl-C until the player's next note
                wait = min(dt - self.spin, MAX_WAIT)
                if wake is not None:
                    if wake.wait(wait):
                        return False
                else:
                    time.sleep(wait)
            else:
                time.sleep(0)  # yield the GIL while spinning out the last stretch


class ManualClock:
    """A clock the test drives. Thread-safe; time only moves by `advance` / `set`.

    `wait_for_sleepers(n)` blocks the test until `n` threads are asleep in
    `sleep_until` with a deadline still ahead and no wake pending: at that point every
    worker has done all it had to do up to `now()`. Its `timeout` is a real-time safety
    net against a hung test, never part of an assertion.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._cond = threading.Condition()
        self._sleepers: list[tuple[float, Wake | None]] = []

    def now(self) -> float:
        with self._cond:
            return self._now

    def set(self, t: float) -> None:
        with self._cond:
            if t < self._now:
                raise ValueError(f"a clock never goes back ({t} < {self._now})")
            self._now = float(t)
            self._cond.notify_all()

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError("a clock never goes back")
        with self._cond:
            self._now += float(dt)
            self._cond.notify_all()

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def sleep_until(self, t: float, wake: Wake | None = None) -> bool:
        entry = (t, wake)
        if wake is not None:
            wake._subscribe(self._notify)
        try:
            with self._cond:
                self._sleepers.append(entry)
                self._cond.notify_all()  # a test in wait_for_sleepers re-counts
                try:
                    while self._now < t and not (wake is not None and wake.is_set()):
                        self._cond.wait()
                    return self._now >= t and not (wake is not None and wake.is_set())
                finally:
                    self._sleepers.remove(entry)
                    self._cond.notify_all()
        finally:
            if wake is not None:
                wake._unsubscribe(self._notify)

    def _blocked(self) -> int:
        return sum(
            1 for t, w in self._sleepers if t > self._now and not (w is not None and w.is_set())
        )

    def wait_for_sleepers(self, n: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._blocked() < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self._blocked()} of {n} threads asleep on the clock")
                self._cond.wait(left)
