"""The one thread that writes to the output port: timed messages out at their clock times.

The performer (model side) decodes ahead of the clock and `submit`s `Timed` messages
with absolute clock times; this thread sleeps until each is due and sends it. It never
touches a model, so a slow decode step can make the music sparse but never late, and
the send path stays a heap pop and a port write.

It is also the only place that knows what sounds, so it owns "no stuck notes ever":
it counts every sounding (channel, key) and the sustain pedal per channel, and whatever
ends the session (`stop()`, Ctrl-C through the context manager or at exit, the port
raising, the end of input) sends note-off for every sounding key, then sustain off and
all-notes-off (CC 123) on every channel it used. `cancel_after(t)` is how the model gives
way when the player comes back: everything queued from `t` on is dropped and whatever
would still sound at `t` is released there.

Timing (benchmarks/live_scheduler.py): lateness is a fraction of a millisecond while
the other threads release the GIL (torch and numpy ops do), but a thread busy in pure
Python holds it for the interpreter's switch interval, 5 ms by default: the live app
should call `sys.setswitchinterval(0.001)` (p50 5.2 -> 1.2 ms in that benchmark).

Every message is rebuilt by `messages.clean` before it is queued, so the port never
sees an invalid byte. A key struck while it still sounds is re-struck (note-off first), and
its earlier note-off is absorbed, so on the wire every note-on has exactly one note-off.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import mido
import numpy as np

from musicgen.live.clock import Clock, Wake
from musicgen.live.messages import Timed, clean
from musicgen.live.ports import PortGone

SUSTAIN, ALL_NOTES_OFF = 64, 123
_PRIORITY = {"note_off": 0, "note_on": 2}  # at one instant: releases, controls, then strikes


class Sent(NamedTuple):
    time: float  # clock seconds when it went to the port
    scheduled: float  # when it was due (the closing messages: when the session ended)
    msg: mido.Message


@dataclass(frozen=True)
class Stats:
    sent: int
    late_p50: float  # seconds, sent minus scheduled, over the scheduled messages
    late_p99: float
    late_max: float
    stray_offs: int  # note-offs for keys not sounding: dropped, never sent
    retriggers: int  # note-ons on a sounding key: a note-off went first
    dropped: int  # queued messages that cancel_after / stop dropped
    rejected: int  # messages submitted after the scheduler stopped
    stale: int  # messages submitted with an epoch a cancel_after had ended


class Scheduler:
    """`with Scheduler(port, clock) as s: s.submit(note(...))` - stopped on leaving the block."""

    def __init__(self, port: mido.ports.BaseOutput, clock: Clock, name: str = "scheduler"):
        self.port, self.clock = port, clock
        self._lock = threading.Lock()  # held while sending: bookkeeping and wire agree
        self._wake = Wake()
        self._heap: list[tuple[float, int, int, mido.Message | None]] = []  # None: release
        self._seq = itertools.count()
        self._sounding: dict[tuple[int, int], int] = {}  # (channel, key) -> strikes held
        self._pedal: set[int] = set()  # channels with sustain down
        self._bent: set[int] = set()  # channels with the pitch wheel off centre
        self._channels: set[int] = set()
        self._lateness: list[float] = []
        self._counts = dict(stray_offs=0, retriggers=0, dropped=0, rejected=0, stale=0)
        self.epoch = 0  # cancel_after counts up: a take's submits carry the epoch it began in
        self._stopping = self._drain = False
        self.sent: list[Sent] = []
        self.error: BaseException | None = None  # PortGone: why the port stopped taking messages
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- the producer side (any thread) ------------------------------------------
    def start(self) -> Scheduler:
        self._thread.start()
        atexit.register(self.stop)  # an interpreter exiting without stop() still silences
        return self

    def submit(self, items: Timed | Iterable[Timed], epoch: int | None = None) -> bool:
        """Queue messages (all or none: ValueError before any is queued). False, and
        nothing queued, once the scheduler has stopped or its port failed, or when `epoch`
        is given and a `cancel_after` has come since it was read: decoded for a take the
        player has already interrupted. Either way the performer should end its take."""
        if isinstance(items, tuple) and len(items) == 2 and isinstance(items[1], mido.Message):
            items = [items]  # one Timed (or a plain (time, message) pair)
        items = list(items)
        entries = []
        for t, msg in items:
            if not math.isfinite(t):
                raise ValueError(f"a message's time must be finite, not {t}")
            m = clean(msg)
            entries.append((float(t), _PRIORITY.get(m.type, 1), m))
        with self._lock:
            if self._stopping or self.error is not None:
                self._counts["rejected"] += len(entries)
                return False
            if epoch is not None and epoch != self.epoch:
                self._counts["stale"] += len(entries)
                return False
            for t, prio, m in entries:
                heapq.heappush(self._heap, (t, prio, next(self._seq), m))
            self._wake.set()
        return True

    def cancel_after(self, t: float) -> int:
        """Drop every queued message due at or after `t` and release, at `t`, whatever
        would still sound then (keys and sustain). Returns how many were dropped.
        Starts a new `epoch`: submits tagged with an older one are refused from now on."""
        with self._lock:
            self.epoch += 1
            keep = [e for e in self._heap if e[0] < t]
            dropped = len(self._heap) - len(keep)
            self._counts["dropped"] += dropped
            keep.append((float(t), 0, next(self._seq), None))
            heapq.heapify(keep)
            self._heap = keep
            self._wake.set()
        return dropped

    @property
    def horizon(self) -> float:
        """The latest time queued (or now): how far ahead of the clock the performer is."""
        with self._lock:
            return max([self.clock.now()] + [e[0] for e in self._heap])

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._heap)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping and self.error is None

    def sounding(self) -> set[tuple[int, int]]:
        with self._lock:
            return set(self._sounding)

    def stop(self, drain: bool = False, timeout: float | None = None) -> None:
        """End the session: drop what is queued (or with `drain`, play it out first, for
        at most `timeout` real seconds), then silence every channel used. Idempotent."""
        with self._lock:
            self._stopping, self._drain = True, drain
            if not drain:
                self._counts["dropped"] += len(self._heap)
                self._heap.clear()
            self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():  # draining took too long: cut it short
                self.stop(drain=False)
        elif self._thread.ident is None:  # never started: nothing sent, but say so anyway
            with self._lock:
                self._silence()
        atexit.unregister(self.stop)

    def __enter__(self) -> Scheduler:
        return self if self._thread.is_alive() else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stats(self) -> Stats:
        with self._lock:
            late = np.asarray(self._lateness, dtype=np.float64)
            q = np.quantile(late, [0.5, 0.99]) if len(late) else [math.nan, math.nan]
            worst = float(late.max()) if len(late) else math.nan
            return Stats(len(self.sent), float(q[0]), float(q[1]), worst, **self._counts)

    # -- the scheduler thread ------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    self._wake.clear()  # before looking: a submit from now on wakes us
                    now = self.clock.now()
                    while self._heap and self._heap[0][0] <= now:
                        t, _, _, msg = heapq.heappop(self._heap)
                        self._dispatch(t, msg)
                    if self._stopping and (not self._drain or not self._heap):
                        return
                    due = self._heap[0][0] if self._heap else math.inf
                self.clock.sleep_until(due, self._wake)
        except Exception as exc:  # the port went away (or worse): silence, then report
            self.error = PortGone(
                f"MIDI output {self.port.name!r} stopped: {exc or type(exc).__name__}"
            )
            self.error.__cause__ = exc
        finally:
            with self._lock:
                self._silence()

    def _send(self, msg: mido.Message, scheduled: float | None) -> None:
        now = self.clock.now()
        self.port.send(msg)
        self._channels.add(msg.channel)
        self.sent.append(Sent(now, now if scheduled is None else scheduled, msg))
        if scheduled is not None:
            self._lateness.append(now - scheduled)

    def _dispatch(self, t: float, msg: mido.Message | None) -> None:
        if msg is None:
            self._release(t)
            return
        key = (msg.channel, getattr(msg, "note", -1))
        held = self._sounding.get(key, 0)
        if msg.type == "note_on":
            if held:
                self._counts["retriggers"] += 1
                self._send(mido.Message("note_off", channel=key[0], note=key[1]), t)
            self._send(msg, t)
            self._sounding[key] = held + 1
            return
        if msg.type == "note_off":
            if not held:
                self._counts["stray_offs"] += 1
            elif held > 1:
                self._sounding[key] = held - 1  # the re-strike already ended that sound
            else:
                del self._sounding[key]
                self._send(msg, t)
            return
        if msg.type == "control_change" and msg.control == SUSTAIN:
            (self._pedal.add if msg.value >= 64 else self._pedal.discard)(msg.channel)
        elif msg.type == "pitchwheel":
            (self._bent.add if msg.pitch else self._bent.discard)(msg.channel)
        self._send(msg, t)

    def _release(self, t: float | None) -> None:
        for ch, key in sorted(self._sounding):
            self._send(mido.Message("note_off", channel=ch, note=key), t)
        self._sounding.clear()
        for ch in sorted(self._pedal):
            self._send(mido.Message("control_change", channel=ch, control=SUSTAIN, value=0), t)
        self._pedal.clear()

    def _silence(self) -> None:
        """Release everything, then sustain off and all-notes-off on every channel used.
        A port that fails here is gone: nothing more can be said to it."""
        try:
            self._release(None)
            for ch in sorted(self._channels):
                self._send(
                    mido.Message("control_change", channel=ch, control=SUSTAIN, value=0), None
                )
                self._send(mido.Message("control_change", channel=ch, control=ALL_NOTES_OFF), None)
                if ch in self._bent:
                    self._send(mido.Message("pitchwheel", channel=ch, pitch=0), None)
            self._bent.clear()
        except Exception as exc:
            self.error = self.error or exc
            self._sounding.clear()
            self._pedal.clear()
