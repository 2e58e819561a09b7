"""What comes back after MIDI -> tokens -> MIDI, measured in real time against what
the fixture wrote (benchmarks/fidelity.py measures the same on real files)."""

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.midi.read import midi_bytes_to_score, read_score
from musicgen.midi.write import score_to_midi_bytes
from musicgen.tokens.encoding import decode, encode


def round_trip_seconds(path, cfg=EncodingConfig()):
    """The file through tokens and back through a MIDI file, in seconds, sorted like the truth."""
    enc = encode(read_score(path), cfg)
    dec, stats = decode(enc.ids, enc.cfg)
    assert not stats
    back = midi_bytes_to_score(score_to_midi_bytes(dec))
    n = back.notes
    on = back.quarters_to_seconds(n["start"])
    end = back.quarters_to_seconds(n["start"] + n["duration"])
    order = np.lexsort((on, n["pitch"], n["drum"]))
    return (
        enc,
        on[order],
        end[order],
        n["pitch"][order].astype(int),
        n["velocity"][order].astype(int),
        n["drum"][order],
    )


def truth_sorted(built):
    order = np.lexsort((built.onsets, built.pitches, built.drums))
    return (
        built.onsets[order],
        built.ends[order],
        built.pitches[order],
        built.velocities[order],
        built.drums[order],
    )


def test_played_piano_keeps_its_timing_pedal_and_dynamics(performed_chorale):
    enc, on, end, pitch, vel, _ = round_trip_seconds(performed_chorale.path)
    t_on, t_end, t_pitch, t_vel, _ = truth_sorted(performed_chorale)
    assert enc.cfg.time == "seconds"  # auto: one tempo, onsets off the beat grid
    assert np.array_equal(pitch, t_pitch)  # every note, none merged
    assert (
        np.abs(on - t_on).max() <= 0.005 + 0.0011
    )  # 10 ms steps: within 5 ms (and a tick of the file)
    assert np.mean(np.abs(end - t_end) <= 0.030) >= 0.95  # sounding ends, the pedal applied
    assert np.abs(vel - t_vel).max() <= 4
    assert enc.stats["sustain_pedal_presses"] == performed_chorale.pedal_presses
    assert enc.stats["notes_sustained"] > len(pitch) // 2


def test_the_same_performance_in_beats_mode_is_close_too(performed_chorale):
    """A mixed corpus goes to beats: played timing then keeps 1/96 quarter (5.2 ms at the
    file's 120 bpm, which is a tempo token exactly)."""
    enc, on, _, pitch, _, _ = round_trip_seconds(
        performed_chorale.path, EncodingConfig(time="beats")
    )
    t_on, *_ = truth_sorted(performed_chorale)
    assert enc.cfg.time == "beats" and len(on) == len(t_on)
    assert np.abs(on - t_on).max() <= 60 / 120 / 96 + 0.0011


def test_a_band_keeps_every_instrument_and_every_drum_hit(pop_song):
    enc, on, end, pitch, vel, drum = round_trip_seconds(pop_song.path)
    t_on, t_end, t_pitch, t_vel, t_drum = truth_sorted(pop_song)
    assert enc.cfg.time == "beats"
    assert np.array_equal(drum, t_drum) and np.array_equal(
        pitch, t_pitch
    )  # nothing dropped, drums included
    # in beats mode time is measured in beats; the tempo comes back within 0.5%
    dec, _ = decode(enc.ids, enc.cfg)
    assert len(dec.tempos) == 1 and abs(dec.tempos[0][1] / 112 - 1) <= 0.005
    beats = lambda seconds: seconds * dec.tempos[0][1] / 60  # noqa: E731
    assert np.abs(beats(on) - t_on * 112 / 60).max() <= 1 / 48
    melodic = ~t_drum  # a General MIDI drum sound ignores its note-off
    assert np.abs(beats(end) - t_end * 112 / 60)[melodic].max() <= 1 / 16
    assert np.abs(vel - t_vel).max() <= 4
    tokens = enc.ids.tolist()
    from musicgen.tokens.space import token_space

    names = token_space(enc.cfg).strings()
    assert [names[t] for t in tokens[1:5]] == ["Inst_0", "Inst_33", "Inst_81", "Inst_drums"]
    assert enc.tokens_per_note <= 3.5
