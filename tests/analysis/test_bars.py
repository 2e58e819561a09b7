"""Per-bar attributes and key, measured on bars written out by hand (never with the code
that places the control tokens)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musicgen.analysis.bars import bar_features, levels, quantile_edges
from musicgen.analysis.key import estimate_key
from musicgen.midi.score import NOTE_DTYPE, Score


def score(rows, sigs=((0.0, 4, 4),)) -> Score:
    """Rows of (start, duration, pitch, velocity[, drum]) in quarters."""
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    for i, r in enumerate(rows):
        notes[i] = (r[0], r[1], r[2], r[3], 0, bool(r[4]) if len(r) > 4 else False)
    order = np.argsort(notes["start"], kind="stable")
    return Score(notes=notes[order], tempos=[(0.0, 120.0)], time_signatures=list(sigs))


def test_each_bar_counted_by_hand():
    s = score(
        [
            # bar 1: a C major chord held two beats, a melody note on beat 3 over a held bass
            (0, 2, 60, 60),
            (0, 2, 64, 60),
            (0, 2, 67, 60),
            (0, 4, 48, 100),
            (2, 1, 72, 100),
            # bar 2: nothing; bar 3: two drum hits and one low note
            (8, 0.25, 36, 120, True),
            (9, 0.25, 38, 120, True),
            (9, 1, 40, 30),
        ]
    )
    f = bar_features(s)
    assert f["density"].tolist() == [5, 0, 3]  # drums count as onsets
    # beat 1: 4 notes sound; beat 3: the melody note and the held bass
    assert f["polyphony"][0] == pytest.approx((4 + 2) / 2)
    assert f["register"][0] == pytest.approx((60 + 64 + 67 + 48 + 72) / 5)
    assert f["dynamics"][0] == pytest.approx((60 * 3 + 100 + 100) / 5)
    assert math.isnan(f["polyphony"][1]) and math.isnan(f["register"][1])
    assert f["polyphony"][2] == 1 and f["register"][2] == 40  # the drums are not pitched
    assert f["dynamics"][2] == pytest.approx((120 + 120 + 30) / 3)


def test_bars_follow_the_metre():
    # 3/4: onsets at 0, 3 and 6 quarters fall in bars 1, 2 and 3
    s = score([(0, 1, 60, 80), (3, 1, 62, 80), (6, 1, 64, 80)], sigs=((0.0, 3, 4),))
    assert bar_features(s)["density"].tolist() == [1, 1, 1]


def test_levels_cut_at_the_corpus_quantiles_and_ties_take_the_middle():
    values = np.arange(100, dtype=float)
    edges = quantile_edges(values, 5)
    assert edges.tolist() == pytest.approx([19.8, 39.6, 59.4, 79.2])
    assert levels(np.array([0, 25, 50, 75, 99, np.nan]), edges).tolist() == [0, 1, 2, 3, 4, -1]
    flat = quantile_edges(np.full(50, 90.0), 5)  # one velocity throughout
    assert levels(np.array([90.0, 10.0, 120.0]), flat).tolist() == [2, 0, 4]


SCALE = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


@pytest.mark.parametrize("tonic", [0, 2, 7, 10])
def test_key_of_a_scale_and_its_triad(tonic):
    def piece(steps, triad):
        rows = [(i, 1, 60 + tonic + d, 80) for i, d in enumerate(steps)]
        rows += [(8, 4, 60 + tonic + d, 80) for d in triad]  # the tonic triad, held
        return score(rows)

    assert estimate_key(piece(SCALE, (0, 4, 7))) == tonic  # major: tonic + 12 * 0
    assert estimate_key(piece(HARMONIC_MINOR, (0, 3, 7))) == tonic + 12


def test_no_key_without_pitched_notes():
    assert estimate_key(score([(0, 0.25, 36, 100, True)])) is None
    assert estimate_key(Score()) is None
