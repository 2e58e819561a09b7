"""Form: do bars come back? Self-similarity of a piece's bars.

A bar's content is the set of its pitched notes as (onset within the bar on a
1/12-quarter grid, pitch). Two bars *match* when their contents are equal, or
equal after moving every pitch by one interval (a sequence, a strain repeated in
another key). Real tunes are built from phrases that come back (AABB: an 8-bar
strain, repeated, then another); a piece that wanders never matches a bar.

* `recurring_bar_share`: the share of the piece's non-empty bars that match some
  other bar of it;
* `recurrence_distance`: for those bars, the mean distance in bars to the nearest
  match (8 in an AABB tune of 8-bar strains; 1 for a bar played twice running).

Bars come from the score's time-signature map (4/4 if it has none), so a piece
in seconds mode (one nominal 120 bpm) counts 2-second bars.
"""

from __future__ import annotations

import math

import numpy as np

from musicgen.midi.score import Score

GRID = 12  # steps per quarter that onsets within a bar are compared on: 16ths and triplets


def bar_contents(score: Score) -> list[tuple]:
    """Per bar, its pitched notes as a sorted tuple of (onset step within the bar, pitch)."""
    notes = score.notes[~score.notes["drum"]]
    lines = score.bar_lines()
    if not lines or not len(notes):
        return []
    starts = np.asarray(lines + [max(score.end, lines[-1]) + 1e-9])
    bar = np.searchsorted(starts, notes["start"] + 1e-9, side="right") - 1
    pos = np.round((notes["start"] - starts[np.clip(bar, 0, len(lines) - 1)]) * GRID).astype(int)
    out: list[list] = [[] for _ in lines]
    for b, p, k in zip(bar.tolist(), pos.tolist(), notes["pitch"].tolist(), strict=True):
        if 0 <= b < len(lines):
            out[b].append((p, k))
    return [tuple(sorted(set(c))) for c in out]


def _shape(content: tuple) -> tuple:
    """A bar's content with its pitches measured from its lowest: equal for transpositions."""
    low = min(k for _, k in content)
    return tuple((p, k - low) for p, k in content)


def bar_recurrence(score: Score) -> tuple[float, float]:
    """(recurring_bar_share, recurrence_distance); nan for a piece without two non-empty bars."""
    bars = bar_contents(score)
    filled = [i for i, c in enumerate(bars) if c]
    if len(filled) < 2:
        return math.nan, math.nan
    seen: dict[tuple, list[int]] = {}
    for i in filled:
        seen.setdefault(_shape(bars[i]), []).append(i)
    distances = []
    for group in seen.values():
        if len(group) < 2:
            continue
        for i in group:
            distances.append(min(abs(i - j) for j in group if j != i))
    share = len(distances) / len(filled)
    return share, (float(np.mean(distances)) if distances else math.nan)
