"""Piano-roll PNGs: valid files of the size asked for, whatever the score holds."""

from __future__ import annotations

import numpy as np

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
    assert instrument_name(40) == "Strings (40)"
    assert instrument_name(0, drum=True) == "Drums"


def test_an_empty_score_still_draws(tmp_path):
    out = draw_pianoroll(Score(), tmp_path / "empty.png")
    assert png_size(out) == (1000, 350)
