"""The player's pace: a tempo map from clock seconds to quarter notes, and a metre guess.

The model thinks in quarters (a score model's bars and beats), the player in seconds.
`TempoFollower` keeps a piecewise-constant tempo map anchored at the player's first
onset (quarter 0), so every time maps both ways and the map written into a `Score`
plays the notes back at exactly the seconds they were played.

Tempo comes from inter-onset intervals (IOIs), the simplest cue there is: each IOI
(chord notes merged, pauses left out) is folded by octaves into one band of beat
lengths around the starting tempo, and the median of the recent ones is the beat. The
band decides between half and double time, which IOIs alone cannot: with the default
120 qpm the follower reports 85-170 qpm. It follows pace, not phase: beats stay where
the first onset put them (no beat tracking; a fixed `--tempo` is exact).
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np

CHORD = 0.05  # onsets closer than this (s) are one onset: a chord, a roll
PAUSE = 2.0  # an IOI longer than this (s) is a pause, not a rhythm
MIN_IOIS = 3  # IOIs needed before the first estimate
CHANGE = 0.03  # a new estimate within 3% of the current tempo leaves the map alone


class Metre(NamedTuple):
    numerator: int
    denominator: int
    downbeat: int  # beats after quarter 0 of the first downbeat (0 .. numerator-1)


class TempoFollower:
    def __init__(self, qpm: float = 120.0, fixed: bool = False, window: int = 8) -> None:
        if not (math.isfinite(qpm) and qpm > 0):
            raise ValueError(f"a tempo must be a positive number of quarters a minute, not {qpm}")
        self.initial, self.fixed = float(qpm), fixed
        self.origin: float | None = None  # clock second of quarter 0: the first onset
        self.segments: list[tuple[float, float, float]] = []  # (clock s, quarter, qpm)
        self._iois: deque[float] = deque(maxlen=window)
        self._last: float | None = None
        beat = 60.0 / qpm
        self._band = (beat / math.sqrt(2), beat * math.sqrt(2))

    @property
    def qpm(self) -> float:
        return self.segments[-1][2] if self.segments else self.initial

    def onset(self, t: float) -> None:
        if self.origin is None:
            self.origin = t
            self.segments.append((t, 0.0, self.initial))
        if self._last is not None and t - self._last < CHORD:
            return  # part of the onset before
        if self._last is not None and t - self._last <= PAUSE and not self.fixed:
            self._iois.append(self._fold(t - self._last))
            if len(self._iois) >= MIN_IOIS:
                qpm = 60.0 / float(np.median(self._iois))
                if abs(qpm - self.qpm) > CHANGE * self.qpm:
                    self.segments.append((t, self.quarter_at(t), qpm))
        self._last = t

    def _fold(self, ioi: float) -> float:
        lo, hi = self._band
        while ioi < lo:
            ioi *= 2.0
        while ioi >= hi:
            ioi /= 2.0
        return ioi

    def quarter_at(self, t: float) -> float:
        """Quarters since the first onset; beyond the map, at the current tempo."""
        if not self.segments:
            raise ValueError("no onset yet: quarter 0 is the first note played")
        s, q, qpm = self.segments[0]
        for seg in self.segments:
            if seg[0] <= t:
                s, q, qpm = seg
        return q + (t - s) * qpm / 60.0

    def seconds_at(self, quarter: float) -> float:
        """The clock second of a quarter position (future ones at the current tempo):
        what the performer schedules a model's note at."""
        if not self.segments:
            raise ValueError("no onset yet: quarter 0 is the first note played")
        s, q, qpm = self.segments[0]
        for seg in self.segments:
            if seg[1] <= quarter:
                s, q, qpm = seg
        return s + (quarter - q) * 60.0 / qpm

    def tempos(self) -> list[tuple[float, float]]:
        """The map as a Score's (quarter, qpm) list."""
        return [(q, qpm) for _, q, qpm in self.segments] or [(0.0, self.initial)]


def guess_metre(quarters: np.ndarray, velocity: np.ndarray, min_beats: int = 12) -> Metre | None:
    """2, 3 or 4 beats a bar from accents: the beats (onsets within 0.15 of a quarter) whose
    loudest note is louder, every n-th beat, than the others. None when fewer than
    `min_beats` beats were played or no pattern stands out by 6 velocity steps."""
    q = np.asarray(quarters, dtype=np.float64)
    on_beat = np.abs(q - np.round(q)) < 0.15
    loudest: dict[int, float] = {}
    for b, v in zip(
        np.round(q[on_beat]).astype(int).tolist(),
        np.asarray(velocity)[on_beat].tolist(),
        strict=True,
    ):
        loudest[b] = max(loudest.get(b, 0.0), float(v))
    if len(loudest) < min_beats:
        return None
    beats = np.array(list(loudest))
    vel = np.array(list(loudest.values()))
    best: tuple[float, int, int] = (6.0, 0, 0)  # (accent, n, phase): at least 6 steps
    for n in (2, 3, 4):
        for phase in range(n):
            down = beats % n == phase
            if down.all() or not down.any():
                continue
            accent = float(vel[down].mean() - vel[~down].mean())
            if accent > best[0] + 1e-9:
                best = (accent, n, phase)
    return Metre(best[1], 4, best[2]) if best[1] else None
