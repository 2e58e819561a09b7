"""Piano-roll PNGs: valid files of the size asked for, whatever the score holds."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen.listen.pianoroll import draw_pianoroll, instrument_name, png_size
from musicgen.midi.score import NOTE_DTYPE, Score

from .conftest import song

PNG = b"\x89PNG\r\n\x1a\n"


def test_png_has_the_expected_size(tmp_path):
    out = draw_pianoroll(song(0), tmp_path / "roll.png", title="song", marks=[(8.0, "new")])
    assert out.read_bytes()[:8] == PNG
    assert png_size(out) == (1000, 350)
    small = draw_pianoroll(song(0), tmp_path / "small.png", width=6, height=3, dpi=50)
    assert png_size(small) == (300, 150)


# the instruments by their colours (drums are grey, which the axes are too)
COLOURS = {"piano": "#0072B2", "strings": "#8c564b", "pipe": "#17becf"}


def bar_columns(png, colour: str) -> tuple[int, int]:
    """First and last pixel column of the longest run of columns holding `colour` drawn
    over white at any opacity (the legend's patch is a shorter run of its own)."""
    import matplotlib.image as mpimg

    ink = 255 - (mpimg.imread(png)[..., :3] * 255)  # (H, W, 3): how far from white
    want = 255 - np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    cos = (ink @ want) / (np.linalg.norm(ink, axis=-1) * np.linalg.norm(want) + 1e-9)
    hit = ((cos > 0.999) & (np.linalg.norm(ink, axis=-1) > 40)).any(axis=0)  # (W,)
    best, start = (0, 0), None
    for x, h in enumerate([*hit, False]):
        if h and start is None:
            start = x
        elif not h and start is not None:
            best = max(best, (start, x - 1), key=lambda r: r[1] - r[0])
            start = None
    return best


def test_several_instruments_drums_tempo_and_metre_changes(tmp_path):
    notes = np.zeros(4, dtype=NOTE_DTYPE)
    notes[:] = [
        (0, 1, 60, 80, 0, False),
        (1, 1, 64, 80, 40, False),
        (2, 0.5, 36, 100, 0, True),
        (6, 3, 72, 80, 73, False),
    ]
    score = Score(
        notes=notes, tempos=[(0.0, 90.0), (4.0, 140.0)], time_signatures=[(0.0, 3, 4), (3.0, 6, 8)]
    )
    out = draw_pianoroll(score, tmp_path / "multi.png")
    assert out.read_bytes()[:8] == PNG
    # each instrument in its colour, where the tempo map puts it: seconds worked out by
    # hand (4 quarters at 90 = 2.667 s, then 140 qpm), measured on the pixels drawn
    spans = {name: bar_columns(out, colour) for name, colour in COLOURS.items()}
    piano = spans["piano"][1] - spans["piano"][0]  # 1 quarter at 90 qpm: 0.667 s
    seconds = {name: (a - spans["piano"][0]) / piano * 60 / 90 for name, (a, b) in spans.items()}
    assert seconds["strings"] == pytest.approx(60 / 90, abs=0.03)
    assert seconds["pipe"] == pytest.approx(4 * 60 / 90 + 2 * 60 / 140, abs=0.05)
    pipe = (spans["pipe"][1] - spans["pipe"][0]) / piano * 60 / 90
    assert pipe == pytest.approx(3 * 60 / 140, abs=0.05)  # 3 quarters at 140 qpm
    assert instrument_name(40) == "Strings (40)"
    assert instrument_name(0, drum=True) == "Drums"


def test_an_empty_score_still_draws(tmp_path):
    out = draw_pianoroll(Score(), tmp_path / "empty.png")
    assert png_size(out) == (1000, 350)
