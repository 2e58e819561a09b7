"""What each bar of a piece is like: how many notes start in it, how many sound at once,
how high and how loud they are.

These are the attributes the bar controls ask for (tokens/controls.py): training
measures them on the corpus's bars, and `musicgen metrics` and the controls benchmark
measure them on generated bars, with these same definitions.

* density: notes (drums included) whose onsets fall in the bar;
* polyphony: at each pitched onset in the bar, how many pitched notes sound (those held
  over from earlier included), averaged over the bar's onsets;
* register: the mean pitch of the pitched notes that start in the bar;
* dynamics: the mean velocity of the notes that start in the bar.

A bar with no onset has density 0 and no other attribute (nan); a bar of drums alone
has no polyphony or register. Bars come from the score's time-signature map (4/4 if
it has none; in seconds mode, 2-second bars at the nominal 120 bpm).
"""

from __future__ import annotations

import numpy as np

from musicgen.midi.score import Score

ATTRIBUTES = ("density", "polyphony", "register", "dynamics")
_EPS = 1e-9


def note_bars(score: Score) -> tuple[np.ndarray, np.ndarray]:
    """(bar start times in quarters, the bar each note starts in)."""
    lines = np.asarray(score.bar_lines() or [0.0])
    bar = np.searchsorted(lines, score.notes["start"] + _EPS, side="right") - 1
    return lines, np.clip(bar, 0, len(lines) - 1)


def bar_features(score: Score) -> dict[str, np.ndarray]:
    """Per bar (as `note_bars` counts them): each of `ATTRIBUTES` (float, nan where the
    bar has nothing to measure)."""
    notes = score.notes
    lines, bar = note_bars(score)
    n = len(lines)
    density = np.bincount(bar, minlength=n).astype(float)
    out = {a: np.full(n, np.nan) for a in ATTRIBUTES}
    out["density"] = density
    if not len(notes):
        return out
    vel_sum = np.bincount(bar, weights=notes["velocity"].astype(float), minlength=n)
    out["dynamics"] = np.where(density > 0, vel_sum / np.maximum(density, 1), np.nan)
    pitched = ~notes["drum"]
    if pitched.any():
        pb = bar[pitched]
        count = np.bincount(pb, minlength=n).astype(float)
        pitch_sum = np.bincount(pb, weights=notes["pitch"][pitched].astype(float), minlength=n)
        out["register"] = np.where(count > 0, pitch_sum / np.maximum(count, 1), np.nan)
        out["polyphony"] = _polyphony(notes[pitched], pb, n)
    return out


def _polyphony(notes: np.ndarray, bar: np.ndarray, n: int) -> np.ndarray:
    """Per bar: the mean over its distinct onsets of how many notes sound there."""
    starts = np.sort(notes["start"])
    ends = np.sort(notes["start"] + notes["duration"])
    onsets, first = np.unique(np.round(notes["start"], 9), return_index=True)
    # sounding at t: started at or before t, not yet ended after it
    sounding = np.searchsorted(starts, onsets + _EPS, side="right") - np.searchsorted(
        ends, onsets + _EPS, side="right"
    )
    where = bar[first]
    total = np.bincount(where, weights=sounding.astype(float), minlength=n)
    count = np.bincount(where, minlength=n)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def levels(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each value's level, 0 .. len(edges), by the cut points `edges` (rising); -1 for nan.
    A value on cut points that coincide (a corpus whose bars are mostly alike, such as
    one velocity throughout) takes the middle of the levels they span."""
    edges = np.asarray(edges, dtype=float)
    values = np.asarray(values, dtype=float)
    low = np.searchsorted(edges, values, side="left")
    high = np.searchsorted(edges, values, side="right")
    return np.where(np.isnan(values), -1, (low + high) // 2)


def quantile_edges(values: np.ndarray, count: int) -> np.ndarray:
    """`count - 1` cut points that split `values` (nan left out) into `count` levels of
    about equal size: the corpus's own distribution, in its own units."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return np.zeros(count - 1)
    return np.quantile(v, np.arange(1, count) / count)
