"""The tempo follower: steady playing gives its tempo; the map works both ways; the
starting tempo picks half or double time; accents give a metre, or None when unsure."""

import numpy as np
import pytest

from musicgen.live.tempo import Metre, TempoFollower, guess_metre


def _play(follower, onsets):
    for t in onsets:
        follower.onset(t)


def test_steady_quarters_and_eighths_at_100_qpm_give_100():
    f = TempoFollower()
    beat = 0.6
    # quarters, eighths, a chord (two onsets 10 ms apart), a pause
    onsets = [0, 0.6, 1.2, 1.5, 1.8, 1.81, 2.4, 3.0, 3.3, 3.6, 6.6, 7.2]
    _play(f, [10.0 + t for t in onsets])
    assert f.qpm == pytest.approx(60 / beat, rel=0.03)
    assert f.origin == 10.0


def test_quarter_at_and_seconds_at_invert_each_other_across_tempo_changes():
    f = TempoFollower()
    _play(f, [0.0, 0.5, 1.0, 1.5, 2.1, 2.7, 3.3, 3.9, 4.5, 5.1])  # 120, then 100 qpm
    qpms = [qpm for _, _, qpm in f.segments]
    assert qpms[0] == 120 and qpms[-1] == pytest.approx(100)  # a median passes through 109
    for t in (0.0, 0.7, 2.2, 3.5, 4.6, 9.0):
        assert f.seconds_at(f.quarter_at(t)) == pytest.approx(t)
    assert f.quarter_at(0.5) == pytest.approx(1.0)


def test_the_starting_tempo_chooses_between_half_and_double_time():
    onsets = [i * 0.3 for i in range(8)]  # 200 beats a minute
    slow, fast = TempoFollower(120), TempoFollower(180)
    _play(slow, onsets)
    _play(fast, onsets)
    assert slow.qpm == pytest.approx(100)
    assert fast.qpm == pytest.approx(200)


def test_a_fixed_tempo_never_moves():
    f = TempoFollower(90, fixed=True)
    _play(f, [0.0, 0.3, 0.6, 0.9, 1.2])
    assert f.qpm == 90 and f.tempos() == [(0.0, 90.0)]
    assert f.quarter_at(2.0) == pytest.approx(3.0)


def test_nothing_maps_before_the_first_onset():
    with pytest.raises(ValueError):
        TempoFollower().quarter_at(1.0)


@pytest.mark.parametrize(
    "n, accents, downbeat",
    [(3, [100, 60, 60], 0), (4, [60, 100, 60, 80], 1), (2, [100, 70], 0)],
)
def test_accents_give_the_metre_and_its_downbeat(n, accents, downbeat):
    beats = np.arange(24)
    q = np.concatenate([beats, beats + 0.5])  # loud off-beat notes do not count
    v = np.concatenate([[accents[b % n] for b in beats], np.full(24, 127)])
    assert guess_metre(q, v) == Metre(n, 4, downbeat)


def test_even_dynamics_or_few_beats_give_no_metre():
    assert guess_metre(np.arange(32.0), np.full(32, 80)) is None
    assert guess_metre(np.arange(6.0), np.array([100, 50] * 3)) is None
