"""The one in-memory music type every layer passes around.

Times are in quarter notes (floats), so a score is independent of the file's
ticks per quarter and of tempo; the tempo map turns quarters into seconds.
Durations are *sounding* durations: the reader has already applied the sustain
pedal (a key released while the pedal is down sounds until the pedal lifts).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

NOTE_DTYPE = np.dtype(
    [
        ("start", np.float64),  # quarter notes from the start of the piece
        ("duration", np.float64),  # quarter notes
        ("pitch", np.int16),
        ("velocity", np.int16),
        ("program", np.int16),  # General MIDI program 0..127
        ("drum", np.bool_),
    ]
)


def empty_notes(n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=NOTE_DTYPE)


@dataclass
class Score:
    """Notes plus the tempo and metre maps of one piece."""

    notes: np.ndarray = field(default_factory=empty_notes)  # NOTE_DTYPE, sorted by start
    tempos: list[tuple[float, float]] = field(default_factory=list)  # (quarter, qpm)
    time_signatures: list[tuple[float, int, int]] = field(
        default_factory=list
    )  # (quarter, num, den)
    n_tracks: int = 0
    resolution: int = 0  # ticks per quarter of the file it was read from (0: not read from a file)
    # What the reader had to repair or leave out (a damaged file); empty for a clean read.
    warnings: list[str] = field(default_factory=list)
    # What the reader changed on purpose, counted: e.g. sustain pedal folded into durations.
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.notes.dtype != NOTE_DTYPE:
            raise TypeError("Score.notes must use NOTE_DTYPE")

    @property
    def num_notes(self) -> int:
        return int(len(self.notes))

    @property
    def end(self) -> float:
        """End of the last sounding note, in quarters."""
        if not len(self.notes):
            return 0.0
        return float(np.max(self.notes["start"] + self.notes["duration"]))

    def qpm_at(self, quarter: float) -> float:
        qpm = 120.0
        for t, q in self.tempos:
            if t <= quarter:
                qpm = q
            else:
                break
        return qpm

    def quarters_to_seconds(self, quarters: np.ndarray | float) -> np.ndarray:
        """Map quarter positions to seconds through the piecewise-constant tempo map."""
        q = np.asarray(quarters, dtype=np.float64)
        tempos = sorted(self.tempos) or [(0.0, 120.0)]
        if tempos[0][0] > 0:
            tempos = [(0.0, 120.0), *tempos]
        starts = np.array([t for t, _ in tempos])
        spq = np.array([60.0 / max(qpm, 1e-6) for _, qpm in tempos])
        # seconds at the start of each tempo segment
        seg_secs = np.concatenate([[0.0], np.cumsum(np.diff(starts) * spq[:-1])])
        idx = np.clip(np.searchsorted(starts, q, side="right") - 1, 0, len(starts) - 1)
        return seg_secs[idx] + (q - starts[idx]) * spq[idx]

    @property
    def duration_seconds(self) -> float:
        return float(self.quarters_to_seconds(self.end))

    def transposed(self, semitones: int) -> Score:
        """A copy with every pitched note moved by `semitones` (drums stay on their keys);
        a ValueError if a note would leave MIDI's 0 .. 127."""
        n = self.notes.copy()
        pitched = ~n["drum"]
        moved = n["pitch"][pitched].astype(int) + semitones
        if len(moved) and (moved.min() < 0 or moved.max() > 127):
            raise ValueError(f"moving by {semitones} takes a note past MIDI's 0 .. 127")
        n["pitch"][pitched] = moved
        return replace(
            self,
            notes=n,
            tempos=list(self.tempos),
            time_signatures=list(self.time_signatures),
            warnings=list(self.warnings),
            counts=dict(self.counts),
        )

    def until(self, end_q: float) -> Score:
        """A copy ending at `end_q` quarters: later notes dropped, sounding ones cut there."""
        n = self.notes[self.notes["start"] < end_q - 1e-9].copy()
        n["duration"] = np.minimum(n["duration"], end_q - n["start"])
        tempos = [t for t in self.tempos if t[0] < end_q] or self.tempos[:1]
        sigs = [t for t in self.time_signatures if t[0] < end_q] or self.time_signatures[:1]
        return Score(
            notes=n,
            tempos=tempos,
            time_signatures=sigs,
            n_tracks=self.n_tracks,
            resolution=self.resolution,
        )

    def bar_lines(self) -> list[float]:
        """Bar starts in quarters, from the time-signature map (4/4 if none)."""
        sigs = sorted(self.time_signatures) or [(0.0, 4, 4)]
        if sigs[0][0] > 0:
            sigs = [(0.0, 4, 4), *sigs]
        end = self.end
        bars: list[float] = []
        for i, (t, num, den) in enumerate(sigs):
            stop = sigs[i + 1][0] if i + 1 < len(sigs) else end
            length = num * 4.0 / den
            pos = t
            while pos < stop - 1e-9 and length > 0:
                bars.append(pos)
                pos += length
        return bars
