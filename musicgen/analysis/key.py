"""A piece's key, from how long each pitch class sounds.

Krumhansl–Schmuckler key finding (Krumhansl 1990, "Cognitive Foundations of Musical
Pitch", with the Krumhansl–Kessler probe-tone profiles): the duration-weighted
pitch-class histogram of the piece's pitched notes is correlated with the major and the
minor profile rotated to each of the 12 tonics, and the best of the 24 is the key.
"""

from __future__ import annotations

import numpy as np

from musicgen.midi.score import Score

# Krumhansl & Kessler (1982): ratings of how well each degree fits a major / minor context
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def key_profile(key: int) -> np.ndarray:
    """(12,) the probe-tone ratings of each pitch class (C = 0) in `key` (tonic + 12 * mode)."""
    return np.roll((MAJOR_PROFILE, MINOR_PROFILE)[key // 12], key % 12)


def pitch_class_weights(score: Score) -> np.ndarray:
    """(12,) seconds-free weights: each pitch class's total sounding length in quarters."""
    notes = score.notes[~score.notes["drum"]]
    return np.bincount(
        notes["pitch"].astype(int) % 12, weights=notes["duration"].astype(float), minlength=12
    )


def key_scores(weights: np.ndarray) -> np.ndarray:
    """(24,) the correlation of `weights` with each key's profile: index tonic + 12 * mode
    (mode 0 major, 1 minor), as tokens/controls.py numbers keys."""
    w = np.asarray(weights, dtype=float)
    out = np.full(24, np.nan)
    if w.sum() <= 0 or np.allclose(w, w[0]):
        return out
    for mode in range(2):
        for tonic in range(12):
            out[tonic + 12 * mode] = np.corrcoef(w, key_profile(tonic + 12 * mode))[0, 1]
    return out


def estimate_key(score: Score) -> int | None:
    """The key (tonic + 12 * mode), or None for a piece with no pitched notes."""
    scores = key_scores(pitch_class_weights(score))
    if np.isnan(scores).all():
        return None
    return int(np.nanargmax(scores))
