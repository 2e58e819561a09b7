"""`Score` -> MIDI bytes, through symusic (one track per program)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicgen.fsutil import atomic_write_bytes
from musicgen.midi.score import Score

TPQ = 480


def score_to_midi_bytes(score: Score, tpq: int = TPQ) -> bytes:
    import symusic

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
        track = symusic.Track(name, program, drum)
        start = np.round(sel["start"] * tpq).astype(np.int32)
        dur = np.maximum(np.round(sel["duration"] * tpq), 1).astype(np.int32)
        track.notes = symusic.Note.from_numpy(
            start,
            dur,
            sel["pitch"].astype(np.int8),
            np.clip(sel["velocity"], 1, 127).astype(np.int8),
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
