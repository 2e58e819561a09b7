"""Tokens back to a score, through the stream interpreter; and the clock a decoded score
is written on."""

from __future__ import annotations

from collections import Counter

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.tokens.space import (
    DRUMS,
    token_space,
)
from musicgen.tokens.stream import Stream

# The notes exactly as the tokens describe them (steps of the piece's clock).
GRID_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("dur", np.int64),
        ("pitch", np.int64),
        ("velocity", np.int64),
        ("program", np.int64),
    ]
)


def decode(ids: np.ndarray, cfg: EncodingConfig) -> tuple[Score, Counter]:
    """Universal ids -> Score, through the stream interpreter. Tolerant: a token that
    breaks the grammar is counted in the returned stats, never fatal."""
    stream = Stream(token_space(cfg))
    notes = stream.feed_all(ids)
    out = np.zeros(len(notes), dtype=NOTE_DTYPE)
    if notes:
        arr = np.array(
            [(n.step, n.dur, n.pitch, n.velocity, n.program) for n in notes], dtype=np.int64
        )
        to_q = quarters_per_step(cfg)
        out["start"] = arr[:, 0] * to_q
        out["duration"] = arr[:, 1] * to_q
        out["pitch"] = arr[:, 2]
        out["velocity"] = arr[:, 3]
        drum = arr[:, 4] == DRUMS
        out["program"] = np.where(drum, 0, arr[:, 4])
        out["drum"] = drum
        out = out[np.argsort(out["start"], kind="stable")]
    if cfg.time == "beats":
        tempos = [(s / cfg.steps_per_quarter, q) for s, q in stream.tempos]
        sigs = [(s / cfg.steps_per_quarter, num, den) for s, num, den in stream.time_signatures]
    else:
        tempos, sigs = [(0.0, SECONDS_QPM)], []
    score = Score(notes=out, tempos=tempos, time_signatures=sigs, n_tracks=0)
    return score, +stream.stats


# Seconds mode is written at this tempo, so quarters and seconds are one scale apart.
SECONDS_QPM = 120.0


def quarters_per_step(cfg: EncodingConfig) -> float:
    if cfg.time == "beats":
        return 1.0 / cfg.steps_per_quarter
    return SECONDS_QPM / 60.0 / cfg.steps_per_second


def score_grid(score: Score, cfg: EncodingConfig) -> np.ndarray:
    """A decoded score's notes on the grid, in stream order (for round-trip checks)."""
    n = score.notes
    per_q = 1.0 / quarters_per_step(cfg)
    grid = np.zeros(len(n), dtype=GRID_DTYPE)
    grid["step"] = np.round(n["start"] * per_q)
    grid["dur"] = np.where(n["drum"], 0, np.round(n["duration"] * per_q))
    grid["pitch"] = n["pitch"]
    grid["velocity"] = n["velocity"]
    grid["program"] = np.where(n["drum"], DRUMS, n["program"])
    return grid[np.lexsort((-grid["pitch"], grid["program"], grid["step"]))]
