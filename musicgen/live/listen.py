"""What the player did: their notes, their pace, and when they stop and start again.

`Listener` is a plain state machine fed with clock-stamped input messages (no thread,
no port), so every rule is tested by feeding it messages by hand. `follow()` is the
thin loop that drives it from an `InputPort` on a clock and yields one stream of
events for the live app: `Played` for each message, `Rest` once no key has been down
and no key struck for `wait` seconds (the model's cue to answer), `Resumed` at the next
key struck after that (the model's cue to give way: `Scheduler.cancel_after`), `Ended`
when the input ends.

Notes are kept in clock seconds as played, and handed out as a `Score` in quarters on
the followed tempo map (tempo.py), the form the model side reads a primer in. The
sustain pedal is folded into durations as `musicgen.midi` does for files: a key released
under the pedal sounds until the pedal lifts or the key is struck again. The pedal does
not hold off a rest: a player who lifts their hands has stopped, whatever still rings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import mido
import numpy as np

from musicgen.live.clock import Clock
from musicgen.live.ports import InputPort
from musicgen.live.tempo import Metre, TempoFollower, guess_metre
from musicgen.midi import NOTE_DTYPE, Score

DRUM_CHANNEL = 9
SUSTAIN = 64


@dataclass(frozen=True)
class Played:
    time: float
    msg: mido.Message


@dataclass(frozen=True)
class Rest:
    time: float  # when the rest began to count as one: since + wait
    since: float  # the last key struck or released


@dataclass(frozen=True)
class Resumed:
    time: float
    rest: float  # seconds since the last key struck or released


@dataclass(frozen=True)
class Ended:
    time: float


Event = Played | Rest | Resumed | Ended


class Listener:
    """`wait` seconds of silence make a rest; `qpm` fixes the tempo (else it is followed,
    starting from `initial_qpm`, which also picks between half and double time)."""

    def __init__(self, wait: float = 2.0, qpm: float | None = None, initial_qpm: float = 120.0):
        if not wait > 0:
            raise ValueError(f"the rest wait must be positive, not {wait}")
        self.wait = float(wait)
        self.tempo = TempoFollower(qpm or initial_qpm, fixed=qpm is not None)
        self.resting = False
        # rows of [start s, end s or None while sounding, pitch, velocity, program, drum]
        self._rows: list[list] = []
        self._down: dict[tuple[int, int], int] = {}  # key held -> its row
        self._pedal_held: dict[tuple[int, int], int] = {}  # key released under the pedal
        self._pedal: set[int] = set()
        self._program: dict[int, int] = {}
        self._last: float | None = None  # last key struck or released

    @property
    def deadline(self) -> float:
        """The clock second a rest begins if nothing happens before (inf: none pending)."""
        if self.resting or self._down or self._last is None:
            return math.inf
        return self._last + self.wait

    def feed(self, msg: mido.Message) -> list[Event]:
        """One input message, `msg.time` its clock second."""
        t, out = float(msg.time), []
        if msg.type == "note_on" and msg.velocity > 0:
            if self.resting:
                out.append(Resumed(t, t - self._last))
                self.resting = False
            key = (msg.channel, msg.note)
            self._end(key, t)  # a key struck again cuts its own sound
            self.tempo.onset(t)
            program = self._program.get(msg.channel, 0)
            drum = msg.channel == DRUM_CHANNEL
            self._down[key] = len(self._rows)
            self._rows.append([t, None, msg.note, msg.velocity, program, drum])
            self._last = t
        elif msg.type in ("note_off", "note_on"):
            key = (msg.channel, msg.note)
            row = self._down.pop(key, None)
            if row is not None:
                if msg.channel in self._pedal:
                    self._pedal_held[key] = row
                else:
                    self._rows[row][1] = t
                self._last = t
        elif msg.type == "control_change" and msg.control == SUSTAIN:
            if msg.value >= 64:
                self._pedal.add(msg.channel)
            else:
                self._pedal.discard(msg.channel)
                for key in [k for k in self._pedal_held if k[0] == msg.channel]:
                    self._rows[self._pedal_held.pop(key)][1] = t
        elif msg.type == "program_change":
            self._program[msg.channel] = msg.program
        out.append(Played(t, msg))
        return out

    def _end(self, key: tuple[int, int], t: float) -> None:
        for held in (self._down, self._pedal_held):
            row = held.pop(key, None)
            if row is not None:
                self._rows[row][1] = t

    def poll(self, now: float) -> list[Event]:
        """A `Rest` if the deadline has passed by `now`."""
        if now >= self.deadline:
            self.resting = True
            return [Rest(self._last + self.wait, self._last)]
        return []

    def end(self, t: float) -> list[Event]:
        """The input is over: every key still held lets go at `t`."""
        for key in list(self._down) + list(self._pedal_held):
            self._end(key, t)
        return [Ended(t)]

    @property
    def num_notes(self) -> int:
        return len(self._rows)

    def score(self, now: float | None = None) -> Score:
        """The player's notes so far in quarters on the followed tempo map (quarter 0: the
        first note); notes still sounding end at `now` (default: the latest time seen).
        `Score.quarters_to_seconds(q) + listener.tempo.origin` gives back the clock second."""
        notes = np.zeros(len(self._rows), dtype=NOTE_DTYPE)
        if not self._rows:
            return Score(notes=notes, tempos=self.tempo.tempos())
        latest = max(max(r[0], r[1] or r[0]) for r in self._rows)
        now = latest if now is None else max(now, latest)
        rows = sorted(self._rows, key=lambda r: r[0])
        q_start = np.array([self.tempo.quarter_at(r[0]) for r in rows])
        q_end = np.array([self.tempo.quarter_at(now if r[1] is None else r[1]) for r in rows])
        notes["start"], notes["duration"] = q_start, np.maximum(q_end - q_start, 0.0)
        for name, col in (("pitch", 2), ("velocity", 3), ("program", 4), ("drum", 5)):
            notes[name] = [r[col] for r in rows]
        metre = self.metre()
        sigs = [(float(metre.downbeat), metre.numerator, metre.denominator)] if metre else []
        return Score(notes=notes, tempos=self.tempo.tempos(), time_signatures=sigs)

    def metre(self) -> Metre | None:
        """Beats a bar from the accents played so far, or None while unsure."""
        if not self._rows:
            return None
        starts = np.array([self.tempo.quarter_at(r[0]) for r in self._rows if not r[5]])
        vel = np.array([r[3] for r in self._rows if not r[5]])
        return guess_metre(starts, vel)


def follow(port: InputPort, clock: Clock, listener: Listener) -> Iterator[Event]:
    """The listener's events as the player plays, until the input ends (a file finished,
    the port closed: close it from another thread to stop following). Blocks on the
    clock between messages, waking for the next message or the next rest."""
    while True:
        ended = port.ended  # read first: all a port delivered before ending is then queued
        now = clock.now()
        for msg in port.drain():
            yield from listener.feed(msg)
        yield from listener.poll(now)
        if ended:
            yield from listener.end(clock.now())
            return
        clock.sleep_until(listener.deadline, port.ready)
