"""How a score becomes tokens."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from musicgen.config.fields import _check_types, opt

TIME_MODES = ("auto", "beats", "seconds")
DRUMS = (
    128  # the program number that stands for the drum kit in Inst_ and Prog_ tokens and line-ups
)


@dataclass(frozen=True)
class EncodingConfig:
    """How a score becomes tokens. See musicgen/tokens/encoding.py for the scheme.

    `time` picks the clock: "beats" counts steps of 1/steps_per_quarter of a quarter
    note (scores, sequenced music: the tempo map and bars are kept), "seconds"
    counts steps of 1/steps_per_second s (played music with one nominal tempo),
    "auto" lets ingestion decide per corpus (musicgen/tokens/timebase.py).
    Settings named *_quarters apply in beats mode, *_seconds in seconds mode.
    """

    time: str = opt(
        "auto",
        "Clock: beats (a grid of 1/48 quarter, tempo map and bars kept), seconds (10 ms steps, for played music), or auto (chosen per corpus).",
    )
    steps_per_quarter: int = (
        48  # 32nds are 6 steps, sixteenth triplets 8; any onset within 1/96 quarter
    )
    steps_per_second: int = 100  # 10 ms: any onset within 5 ms
    max_shift_quarters: float = (
        4.0  # one Shift token moves at most this far; longer gaps use several
    )
    max_shift_seconds: float = 1.0
    # Durations are exact up to the first limit, then lose one bit of resolution per doubling
    # (error at most 1/2 step x 2^k), up to the second, where longer notes are clipped (counted).
    exact_duration_quarters: float = 2.0
    max_duration_quarters: float = opt(
        8.0,
        "Longest note in beats mode, in quarters; longer ones are clipped (counted).",
        flag="max-duration",
    )
    exact_duration_seconds: float = 1.0
    max_duration_seconds: float = 8.0
    max_silence_quarters: float = 16.0  # longer silences are shortened (counted)
    max_silence_seconds: float = 8.0
    pitch_min: int = 21
    pitch_max: int = 108
    velocity_bins: int = opt(32, "Velocity levels kept; 0 drops velocity.")
    # A note within this many velocity units of its instrument's current level keeps it
    # without a new Vel token (played music changes velocity on nearly every note).
    velocity_tolerance: int = 4
    default_velocity: int = 80
    programs: str = opt(
        "note", "Keep each note's instrument (note), or map all to the piece's main one (main)."
    )
    drums: bool = opt(True, "Keep drum-channel notes (each drum key a token of its own).")
    tempo_min: float = 20.0
    tempo_max: float = 400.0
    tempo_step: float = (
        0.01  # neighbouring Tempo tokens differ by 1%, so every tempo is kept within 0.5%
    )
    time_signatures: bool = True

    def __post_init__(self) -> None:
        _check_types(self)
        if self.time not in TIME_MODES:
            raise ValueError(f"time must be one of {', '.join(TIME_MODES)}, got {self.time!r}")
        if self.steps_per_quarter < 1 or self.steps_per_second < 1:
            raise ValueError("steps_per_quarter and steps_per_second must be at least 1")
        for unit in ("quarters", "seconds"):
            shift, exact, longest = (
                getattr(self, f"{k}_{unit}")
                for k in ("max_shift", "exact_duration", "max_duration")
            )
            if self.steps(shift, unit) < 1 or self.steps(exact, unit) < 1 or longest < exact:
                raise ValueError(
                    f"need max_shift_{unit} and exact_duration_{unit} of at least one step, and max_duration_{unit} >= exact_duration_{unit}"
                )
        if not 0 <= self.pitch_min <= self.pitch_max <= 127:
            raise ValueError("need 0 <= pitch_min <= pitch_max <= 127")
        if not 0 <= self.velocity_bins <= 127:
            raise ValueError("velocity_bins must be in 0..127")
        if self.velocity_tolerance < 0:
            raise ValueError("velocity_tolerance must be >= 0")
        if self.programs not in ("note", "main"):
            raise ValueError("programs must be 'note' or 'main'")
        if not (0 < self.tempo_min < self.tempo_max) or not 0 < self.tempo_step < 1:
            raise ValueError("need 0 < tempo_min < tempo_max and 0 < tempo_step < 1")

    def steps(self, amount: float, unit: str) -> int:
        """`amount` quarters or seconds in steps of that unit's clock."""
        per = self.steps_per_quarter if unit == "quarters" else self.steps_per_second
        return int(round(amount * per))

    @property
    def unit(self) -> str:
        """The unit steps count in: "quarters" (beats mode) or "seconds"."""
        if self.time == "auto":
            raise ValueError(
                "the time mode is not decided yet (time='auto'); see musicgen.tokens.timebase"
            )
        return "quarters" if self.time == "beats" else "seconds"

    @property
    def steps_per_unit(self) -> int:
        return self.steps_per_quarter if self.unit == "quarters" else self.steps_per_second

    def bar_steps(self, num: int = 4, den: int = 4) -> int:
        """Steps in one bar of num/den (beats; 4/4 before any time signature), or of the
        nominal 2-second bar of played music (seconds: one 4/4 bar at 120 qpm)."""
        if self.unit == "quarters":
            return num * 4 * self.steps_per_quarter // den
        return 2 * self.steps_per_second

    def limit(self, name: str) -> int:
        """A limit of the decided clock in steps: max_shift, exact_duration, max_duration, max_silence."""
        return self.steps(getattr(self, f"{name}_{self.unit}"), self.unit)

    def tempo_values(self) -> list[float]:
        """Tempo token values, spaced by `tempo_step` in log tempo (perceived tempo is ratio-like),
        anchored at 120 qpm, MIDI's default, so a file that never sets a tempo keeps it exactly."""
        ratio = math.log(1.0 + self.tempo_step)
        lo = math.ceil(math.log(self.tempo_min / 120.0) / ratio - 1e-9)
        hi = math.floor(math.log(self.tempo_max / 120.0) / ratio + 1e-9)
        return [round(120.0 * math.exp(k * ratio), 2) for k in range(lo, hi + 1)]

    def velocity_values(self) -> list[int]:
        """Level centres over 1..127."""
        n = self.velocity_bins
        if n == 0:
            return []
        width = 127 / n
        return sorted({int(round(1 + width * (i + 0.5))) for i in range(n)})

    def duration_values(self) -> list[int]:
        """Every duration a Dur token can stand for, in steps of the decided clock."""
        exact, longest = self.limit("exact_duration"), self.limit("max_duration")
        values = list(range(1, exact + 1))
        step, top = 2, exact
        while top < longest:
            top = min(2 * top, longest)
            values += list(range(values[-1] + step, top + 1, step))
            step *= 2
        if values[-1] != longest:
            values.append(longest)
        return values

    def resolved(self, time: str) -> EncodingConfig:
        return dataclasses.replace(self, time=time)
