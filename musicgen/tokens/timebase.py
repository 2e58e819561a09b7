"""Beats or seconds: which clock a corpus is written in (`--time auto`).

Sequenced music (scores, chorales, most pop files) puts its onsets on a beat
grid and carries a tempo map that means something: it is encoded in beats, so
bars, metre and every tempo change survive. Played music (a piano performance
recorded at the file's default tempo) has onsets anywhere: its beats mean
nothing, and it is encoded in seconds, so expressive timing survives.

A file *looks played* when both hold:

* its onsets sit on the 1/48-quarter grid hardly more often than chance would put
  them there (chance: the share of the file's tick positions that lie on the grid,
  e.g. 1 in 10 at 480 ticks per quarter), and
* it has a single tempo (a tempo map with changes is a beat map, however the
  notes were entered).

A corpus is encoded in seconds when the files that look played hold most of its
notes; otherwise in beats. Either way beats mode keeps played timing to within
1/96 of a quarter (5 ms at 120 bpm), so a mixed corpus loses little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.midi.score import Score


@dataclass(frozen=True)
class Timing:
    """What the choice needs to know of one file."""

    notes: int
    on_grid: int  # onsets on the beats-mode grid
    chance: (
        float  # share of tick positions that are on that grid (1: the grid is as fine as the ticks)
    )
    tempos: int  # distinct tempo values

    @property
    def looks_played(self) -> bool:
        if not self.notes or self.chance >= 1.0 or self.tempos > 1:
            return False
        return self.on_grid / self.notes < (1.0 + self.chance) / 2

    def to_list(self) -> list:
        return [self.notes, self.on_grid, round(self.chance, 6), self.tempos]

    @classmethod
    def from_list(cls, data: Sequence) -> Timing:
        notes, on_grid, chance, tempos = data
        return cls(int(notes), int(on_grid), float(chance), int(tempos))


def timing_of(score: Score, steps_per_quarter: int) -> Timing:
    starts = score.notes["start"] * steps_per_quarter
    on_grid = int(np.sum(np.abs(starts - np.round(starts)) < 1e-6))
    tpq = score.resolution
    chance = math.gcd(steps_per_quarter, tpq) / tpq if tpq > 0 else 1.0
    values = {round(q, 2) for _, q in score.tempos}
    if score.tempos and min(score.tempos)[0] > 0:  # MIDI plays 120 until the first tempo event
        values.add(120.0)
    tempos = len(values) or 1
    return Timing(score.num_notes, on_grid, chance, tempos)


@dataclass(frozen=True)
class TimeChoice:
    mode: str  # "beats" or "seconds"
    reason: str

    def to_dict(self) -> dict:
        return {"mode": self.mode, "reason": self.reason}


def choose_time(timings: Sequence[Timing]) -> TimeChoice:
    played = [t for t in timings if t.looks_played]
    notes = sum(t.notes for t in timings)
    played_notes = sum(t.notes for t in played)
    files = f"{len(played)} of {len(timings)} file{'s' if len(timings) != 1 else ''}"
    look = "looks" if len(played) == 1 else "look"
    share = played_notes / notes if notes else 0.0
    on_grid = sum(t.on_grid for t in played) / max(played_notes, 1)
    if notes and share > 0.5:
        return TimeChoice(
            "seconds",
            f"{files} ({share:.0%} of the notes) {look} played: one tempo, and only {on_grid:.0%} of their "
            "onsets on a 1/48-quarter grid, about what chance gives",
        )
    if played:
        return TimeChoice(
            "beats",
            f"{files} ({share:.0%} of the notes) {look} played, the rest are on a beat grid",
        )
    return TimeChoice(
        "beats",
        "onsets sit on a beat grid" + (" or the files carry a tempo map" if timings else ""),
    )


def resolve_time(cfg: EncodingConfig, scores: Sequence[Score]) -> tuple[EncodingConfig, TimeChoice]:
    """`cfg` with its time mode decided for these scores (unchanged if it was not 'auto')."""
    if cfg.time != "auto":
        return cfg, TimeChoice(cfg.time, "asked for")
    choice = choose_time([timing_of(s, cfg.steps_per_quarter) for s in scores])
    return cfg.resolved(choice.mode), choice
