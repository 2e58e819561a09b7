"""Choosing the clock: beats for music on a beat grid, seconds for played music."""

import numpy as np
import pytest

from musicgen.midi.read import read_score
from musicgen.midi.score import Score
from musicgen.tokens.timebase import Timing, choose_time, timing_of


@pytest.mark.parametrize(
    ("timing", "played"),
    [
        (
            Timing(1000, 120, 48 / 384, 1),
            True,
        ),  # MAESTRO-like: on the grid about as often as chance
        (Timing(1000, 1000, 48 / 480, 1), False),  # sequenced
        (Timing(1000, 680, 48 / 480, 1), False),  # mostly sequenced, partly played (a Lakh song)
        (Timing(1000, 8, 48 / 480, 40), False),  # played against a tempo map: the map is a beat map
        (
            Timing(1000, 500, 48 / 96, 1),
            True,
        ),  # 96 ticks per quarter: half the ticks are on the grid
        (
            Timing(1000, 1000, 1.0, 1),
            False,
        ),  # 24 ticks per quarter: cannot tell, and the grid holds it
        (Timing(0, 0, 0.1, 1), False),
    ],
)
def test_looks_played(timing, played):
    assert timing.looks_played is played


def test_the_corpus_goes_with_most_of_its_notes():
    played, sequenced = Timing(3000, 300, 0.125, 1), Timing(1000, 1000, 0.1, 2)
    choice = choose_time([played, sequenced])
    assert choice.mode == "seconds" and choice.reason.startswith(
        "1 of 2 files (75% of the notes) looks played"
    )
    choice = choose_time([played, sequenced, sequenced, sequenced, Timing(1000, 1000, 0.1, 1)])
    assert choice.mode == "beats" and "43% of the notes" in choice.reason
    assert choice.to_dict() == {"mode": "beats", "reason": choice.reason}
    assert choose_time([sequenced]).mode == "beats"
    assert Timing.from_list(played.to_list()) == played


def test_timings_of_real_files(performed_chorale, pop_song, corpus_files):
    assert timing_of(read_score(performed_chorale.path), 48).looks_played
    assert not timing_of(read_score(pop_song.path), 48).looks_played
    chorale = timing_of(read_score(corpus_files[0]), 48)
    assert not chorale.looks_played and chorale.on_grid == chorale.notes
    assert np.isclose(timing_of(read_score(performed_chorale.path), 48).chance, 48 / 384)


def test_a_late_first_tempo_counts_the_default_before_it():
    late = Score(tempos=[(8.0, 90.0)])  # 120 bpm for two bars, then 90: a tempo change
    assert timing_of(late, 48).tempos == 2
    assert timing_of(Score(tempos=[(0.0, 90.0)]), 48).tempos == 1
    assert timing_of(Score(tempos=[(8.0, 120.0)]), 48).tempos == 1
