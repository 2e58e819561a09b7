"""`Score` -> MIDI bytes, through symusic: a track per program, and a further track of
that program for a note that sounds while another of its key still does (one channel
cannot hold both, and a reader would pair their note-offs the wrong way round)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicgen.fsutil import atomic_write_bytes
from musicgen.midi.score import Score

TPQ = 480


def layers(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Per note, the first layer (0, 1, ...) in which no earlier note of its key still sounds."""
    out = np.zeros(len(start), dtype=np.int64)
    free: dict[int, list[float]] = {}  # key -> when each of its layers falls silent
    for i in np.argsort(start, kind="stable").tolist():
        ends = free.setdefault(int(pitch[i]), [])
        k = next((k for k, e in enumerate(ends) if e <= start[i]), len(ends))
        if k == len(ends):
            ends.append(0)
        ends[k] = end[i]
        out[i] = k
    return out


def score_to_midi_bytes(score: Score, tpq: int | None = None) -> bytes:
    """At `tpq` ticks per quarter; by default the resolution the score was read at (so
    notes kept from a file keep their exact times), or TPQ."""
    import symusic

    tpq = tpq or (score.resolution if 0 < score.resolution < 1 << 15 else TPQ)
    sm = symusic.Score(tpq)
    notes = score.notes
    keys = sorted(
        {
            (bool(d), int(p))
            for d, p in zip(notes["drum"].tolist(), notes["program"].tolist(), strict=True)
        }
    )
    for drum, program in keys:
        sel = notes[(notes["drum"] == drum) & (notes["program"] == program)]
        name = "Drums" if drum else f"Program {program}"
        start = np.round(sel["start"] * tpq).astype(np.int32)
        dur = np.maximum(np.round(sel["duration"] * tpq), 1).astype(np.int32)
        layer = layers(start, start + dur, sel["pitch"])
        for k in range(int(layer.max()) + 1 if len(layer) else 0):
            on = layer == k
            track = symusic.Track(name, program, drum)
            track.notes = symusic.Note.from_numpy(
                start[on],
                dur[on],
                sel["pitch"][on].astype(np.int8),
                np.clip(sel["velocity"][on], 1, 127).astype(np.int8),
            )
            sm.tracks.append(track)
    for quarter, qpm in score.tempos or [(0.0, 120.0)]:
        sm.tempos.append(symusic.Tempo(int(round(quarter * tpq)), qpm=float(qpm)))
    for quarter, num, den in score.time_signatures:
        sm.time_signatures.append(
            symusic.TimeSignature(int(round(quarter * tpq)), int(num), int(den))
        )
    return bytes(sm.dumps_midi())


def write_midi(score: Score, path: str | Path) -> Path:
    """Write atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, score_to_midi_bytes(score))
    return path
