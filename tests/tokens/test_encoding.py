"""The encoding on hand-built scores: exact tokens, exact counters, both clocks."""

import dataclasses

import numpy as np
import pytest

from musicgen.config import EncodingConfig
from musicgen.midi.read import read_score
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.tokens.encoding import STAT_KEYS, decode, encode, score_grid
from musicgen.tokens.space import BOS, DRUMS, EOS, token_space

CFG = EncodingConfig(time="beats")
SECONDS = EncodingConfig(time="seconds")
SPACE = token_space(CFG)
Q = CFG.steps_per_quarter  # 48


def score(*notes, tempos=(), sigs=(), resolution=480) -> Score:
    """notes: (start, duration, pitch[, velocity[, program[, drum]]]) in quarters."""
    arr = np.zeros(len(notes), dtype=NOTE_DTYPE)
    for i, n in enumerate(notes):
        arr[i] = tuple(n) + (80, 0, False)[len(n) - 3 :]
    arr = arr[np.argsort(arr["start"], kind="stable")]
    return Score(notes=arr, tempos=list(tempos), time_signatures=list(sigs), resolution=resolution)


def strings(ids, cfg=CFG) -> list[str]:
    s = token_space(cfg).strings()
    return [s[i] for i in np.asarray(ids).tolist()]


def body(enc) -> list[str]:
    """Tokens between the header and EOS, without tempo / time-signature tokens."""
    toks = strings(enc.ids, enc.cfg)
    assert toks[0] == "BOS" and toks[-1] == "EOS"
    return [t for t in toks[1:-1] if not t.startswith(("Tempo_", "TimeSig_", "Inst_"))]


def vel(v: int, cfg=CFG) -> str:
    space = token_space(cfg)
    return f"Vel_{space.vel.values[space.vel.nearest(v)]}"


def tempo_token(qpm: float) -> str:
    values = SPACE.tempo.values
    return f"Tempo_{values[np.abs(np.log(values) - np.log(qpm)).argmin()]:g}"


def round_trip(s: Score, cfg=CFG):
    enc = encode(s, cfg)
    dec, stats = decode(enc.ids, enc.cfg)
    assert not +stats, dict(stats)
    fields = ["step", "dur", "pitch", "program", "velocity"]
    assert np.array_equal(score_grid(dec, enc.cfg)[fields], enc.notes[fields])
    return enc, dec


def test_chord_costs_no_shift_and_goes_highest_first():
    enc, dec = round_trip(score((0, 1, 60), (0, 1, 67), (0, 1, 64), (1, 0.5, 72)))
    assert strings(enc.ids) == [
        "BOS",
        "Inst_0",
        tempo_token(120.0),
        "Prog_0",
        vel(80),
        "Pitch_67",
        "Dur_48",
        "Pitch_64",
        "Dur_48",
        "Pitch_60",
        "Dur_48",
        "Shift_48",
        "Pitch_72",
        "Dur_24",
        "EOS",
    ]
    assert enc.notes["pitch"].tolist() == [67, 64, 60, 72]
    assert dec.notes["start"].tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize(
    ("gap_steps", "shifts"),
    [
        (1, ["Shift_1"]),
        (191, ["Shift_191"]),
        (192, ["Shift_192"]),
        (193, ["Shift_192", "Shift_1"]),
        (400, ["Shift_192", "Shift_192", "Shift_16"]),
    ],
)
def test_long_gaps_use_several_shifts(gap_steps, shifts):
    enc, dec = round_trip(score((0, 0.5, 60), (gap_steps / Q, 0.5, 62)))
    b = body(enc)
    assert b[b.index("Dur_24") + 1 : b.index("Pitch_62")] == shifts
    assert dec.notes["start"][1] * Q == pytest.approx(gap_steps)


def test_thirty_seconds_triplets_and_sixty_fourths_land_exactly():
    thirty_seconds = [(k / 8, 1 / 8, 60 + k) for k in range(8)]  # 6 steps
    sixteenth_triplets = [(1 + k / 6, 1 / 6, 70 + k) for k in range(6)]  # 8 steps
    sixty_fourths = [(2 + k / 16, 1 / 16, 80 + k) for k in range(4)]  # 3 steps
    enc, _ = round_trip(score(*thirty_seconds, *sixteenth_triplets, *sixty_fourths))
    assert enc.stats["off_grid"] == 0
    assert enc.notes["dur"].tolist() == [6] * 8 + [8] * 6 + [3] * 4


def test_quintuplets_as_played_are_within_a_ninety_sixth():
    enc = encode(score(*[(k / 5, 1 / 5, 60 + k) for k in range(5)]), CFG)
    assert enc.stats["off_grid"] == 4  # only the first sits on the grid
    err = np.abs(enc.notes["step"] / Q - np.arange(5) / 5)
    assert err.max() <= 1 / (2 * Q) + 1e-12


def test_programs_and_velocities_per_instrument():
    s = score(
        (0, 1, 60, 80, 0),
        (1, 1, 62, 82, 0),  # 82 is within 4 of 80's level: no new Vel
        (2, 1, 64, 40, 40),
        (3, 1, 65, 100, 40),
        (4, 1, 67, 81, 0),  # back on program 0: its level (not 40's) still holds
    )
    enc, dec = round_trip(s)
    b = body(enc)
    assert [t for t in b if t.startswith("Prog_")] == ["Prog_0", "Prog_40", "Prog_0"]
    assert [t for t in b if t.startswith("Vel_")] == [vel(81), vel(40), vel(100)]
    assert (
        np.abs(dec.notes["velocity"].astype(int) - [80, 82, 40, 100, 81]).max()
        <= CFG.velocity_tolerance
    )
    assert strings(enc.ids)[1:3] == ["Inst_0", "Inst_40"]  # the line-up, rising


def test_velocity_levels_change_as_rarely_as_the_tolerance_allows():
    played = [
        64,
        70,
        66,
        68,
        69,
        30,
        33,
        29,
        90,
        91,
        89,
    ]  # three phrases, each within 4 of one level
    enc, dec = round_trip(score(*[(k / 2, 0.5, 60, v) for k, v in enumerate(played)]))
    assert sum(t.startswith("Vel_") for t in body(enc)) == 3
    assert np.abs(dec.notes["velocity"].astype(int) - played).max() <= 4
    exact = dataclasses.replace(CFG, velocity_tolerance=0)
    enc0, dec0 = round_trip(score(*[(k / 2, 0.5, 60, v) for k, v in enumerate(played)]), exact)
    assert np.abs(dec0.notes["velocity"].astype(int) - played).max() <= 2  # 32 levels: half a level
    assert sum(t.startswith("Vel_") for t in body(enc0)) > 3


def test_within_a_step_instrument_then_pitch_order_with_drums_last():
    s = score(
        (0, 1, 50, 80, 40),
        (0, 1, 80, 80, 40),
        (0, 1, 40, 80, 0),
        (0, 0.1, 36, 100, 0, True),
        (0, 0.1, 42, 96, 0, True),
        (0, 1, 70, 80, 0),
    )
    enc, _ = round_trip(s)
    assert [(int(p), int(g)) for p, g in enc.notes[["program", "pitch"]].tolist()] == [
        (0, 70),
        (0, 40),
        (40, 80),
        (40, 50),
        (DRUMS, 42),
        (DRUMS, 36),
    ]
    b = body(enc)
    assert b[b.index("Prog_drums") :] == [
        "Prog_drums",
        vel(98),
        "Drum_42",
        "Drum_36",
    ]  # 96 and 100: one level
    assert "Shift_" not in " ".join(b)


def test_drums_kept_by_default_as_keys_without_durations():
    s = score(
        (0, 1, 60),
        (0, 0.25, 36, 100, 0, True),
        (0.5, 0.25, 42, 100, 0, True),
        (0.5, 1, 27, 100, 0, True),
    )
    enc, dec = round_trip(s)
    assert (
        enc.stats["drum_notes_dropped"] == 0 and enc.stats["out_of_range_dropped"] == 0
    )  # key 27 is kept
    assert strings(enc.ids)[:3] == ["BOS", "Inst_0", "Inst_drums"]
    assert "Drum_27" in strings(enc.ids) and not any(
        t.startswith("Dur_") for t in body(enc)[body(enc).index("Prog_drums") :]
    )
    assert sorted(dec.notes[["pitch", "drum"]].tolist()) == [
        (27, True),
        (36, True),
        (42, True),
        (60, False),
    ]
    off = dataclasses.replace(CFG, drums=False)
    enc = encode(s, off)
    assert enc.stats["drum_notes_dropped"] == 3 and enc.notes["pitch"].tolist() == [60]
    assert "Inst_drums" not in strings(enc.ids, off)


def test_out_of_range_pitches_dropped_and_counted():
    enc, _ = round_trip(
        score((0, 1, 20), (0, 1, 21), (0, 1, 108), (0, 1, 109), (1, 1, 127), (1, 1, 0))
    )
    assert enc.stats["out_of_range_dropped"] == 4
    assert sorted(enc.notes["pitch"].tolist()) == [21, 108]
    assert enc.stats["notes_in"] == 6 and enc.stats["notes_kept"] == 2


def test_unison_duplicates_merged_and_the_longest_kept():
    s = score((0, 1, 60), (0, 2, 60), (0, 0.5, 60), (0, 1, 60, 80, 40), (1, 1, 64), (1, 1, 64))
    enc, _ = round_trip(s)
    assert enc.stats["duplicates_merged"] == 3
    assert [
        tuple(int(x) for x in n) for n in enc.notes[["step", "pitch", "program", "dur"]].tolist()
    ] == [
        (0, 60, 0, 96),  # the longest of the three
        (0, 60, 40, 48),  # another instrument: not a duplicate
        (48, 64, 0, 48),
    ]


def test_a_key_struck_again_ends_its_sound_there():
    enc, _ = round_trip(score((0, 2, 60), (1, 1, 60), (1.5, 2, 64), (1.5, 1, 67)))
    assert enc.stats["overlaps_truncated"] == 1
    assert [
        (int(a), int(b), int(c)) for a, b, c in enc.notes[["step", "pitch", "dur"]].tolist()
    ] == [
        (0, 60, 48),
        (48, 60, 48),
        (72, 67, 48),
        (72, 64, 96),
    ]


def test_long_durations_lose_resolution_by_doubling_and_are_clipped():
    # exact up to 2 quarters; then 2-step resolution to 4 quarters, 4-step to 8 quarters
    enc, _ = round_trip(score((0, 97 / Q, 60), (0, 2.5, 62), (0, 5 + 1 / Q, 64), (0, 10, 65)))
    assert sorted(enc.notes["dur"].tolist()) == [
        96,
        120,
        240,
        384,
    ]  # 97 -> 96 (tie: the lower), 241 -> 240
    assert enc.stats["durations_rounded"] == 2 and enc.stats["durations_clipped"] == 1
    # a rounded duration never reaches past the next strike of its key
    enc, _ = round_trip(score((0, 3, 60), (195 / Q, 1, 60)))
    assert enc.notes["dur"].tolist()[0] <= 195


def test_zero_length_notes_are_extended_and_counted():
    enc, dec = round_trip(score((0, 0, 60), (1, 0.001, 62), (2, 1, 64)))
    assert enc.stats["durations_extended"] == 2
    assert enc.notes["dur"].tolist() == [1, 1, 48]


def test_long_silences_shortened_and_counted():
    cap = CFG.limit("max_silence")  # 16 quarters
    s = score(
        (0, 1, 60),
        (100, 1, 62),
        (101, 1, 64),
        (200, 1, 65),
        tempos=[(0, 100.0), (50, 60.0)],
        sigs=[(0, 4, 4), (60, 3, 4)],
    )
    enc, dec = round_trip(s)
    assert enc.stats["silences_shortened"] == 2
    # each cut is whole bars of the metre in force at the note after it (3/4 from quarter 60:
    # 27 bars, then 27 again), so a note keeps its place in the bar
    assert enc.notes["step"].tolist() == [0, 19 * Q, 20 * Q, 38 * Q]
    # changes inside a removed silence are kept and move to the next note
    assert [(t, f"Tempo_{q:g}") for t, q in dec.tempos] == [
        (0.0, tempo_token(100)),
        (19.0, tempo_token(60)),
    ]
    assert dec.time_signatures == [(0.0, 4, 4), (19.0, 3, 4)]
    late = encode(score((40, 1, 60)), CFG)
    assert late.stats["silences_shortened"] == 1 and late.notes["step"].tolist() == [cap]
    off_beat = encode(score((0, 1, 60), (41.5, 1, 62), sigs=[(0, 3, 4)]), CFG)
    assert off_beat.notes["step"].tolist() == [0, round(41.5 * Q) - 24 * Q]  # 8 bars of 3/4 cut


def test_every_tempo_change_kept_within_half_a_percent():
    rubato = [(k, 60 + 1.7 * k) for k in range(40)]  # a tempo map that changes on every beat
    s = score(*[(k, 1, 60 + k % 12) for k in range(41)], tempos=rubato)
    enc, dec = round_trip(s)
    assert len(dec.tempos) == 40
    for (t, got), (q, want) in zip(dec.tempos, rubato, strict=True):
        assert t == q and abs(got / want - 1) <= 0.005


def test_tempo_and_time_signature_tokens():
    s = score(
        (0, 1, 60),
        (4, 1, 62),
        (8, 1, 64),
        tempos=[(0, 100.0), (4, 61.0), (6, 61.2)],
        sigs=[(0, 3, 4), (4, 6, 8), (8, 5, 3)],
    )
    enc, dec = round_trip(s)
    toks = strings(enc.ids)
    assert toks[:4] == ["BOS", "Inst_0", "TimeSig_3/4", tempo_token(100.0)]
    # 61 and 61.2 qpm share a token (1% apart): one; the 5/3 signature cannot be written
    assert toks.count(tempo_token(61.0)) == 1 and tempo_token(61.0) == tempo_token(61.2)
    assert enc.stats["time_signatures_dropped"] == 1
    i = toks.index("Pitch_62")
    assert toks[i - 2 : i] == ["TimeSig_6/8", tempo_token(61.0)]  # metre, then tempo, then the note
    assert dec.time_signatures == [(0.0, 3, 4), (4.0, 6, 8)]


def test_no_tempo_means_120_and_a_late_first_tempo_keeps_120_before_it():
    _, dec = round_trip(score((0, 1, 60)))
    assert [f"Tempo_{q:g}" for _, q in dec.tempos] == [tempo_token(120.0)]
    _, dec = round_trip(score((0, 1, 60), (2, 1, 62), tempos=[(2, 90.0)]))
    assert [(t, f"Tempo_{q:g}") for t, q in dec.tempos] == [
        (0.0, tempo_token(120.0)),
        (2.0, tempo_token(90.0)),
    ]


def test_programs_main_maps_every_note_to_the_main_instrument():
    cfg = dataclasses.replace(CFG, programs="main")
    s = score((0, 1, 60, 80, 40), (1, 1, 62, 80, 40), (2, 1, 64, 80, 0), (2, 1, 64, 80, 40))
    enc, dec = round_trip(s, cfg)
    assert [t for t in strings(enc.ids, cfg) if t.startswith(("Prog_", "Inst_"))] == [
        "Inst_40",
        "Prog_40",
    ]
    assert set(dec.notes["program"].tolist()) == {40}
    assert enc.stats["duplicates_merged"] == 1  # the unison doubling became one note


def test_velocity_bins_zero_drops_velocity():
    cfg = dataclasses.replace(CFG, velocity_bins=0)
    enc, dec = round_trip(score((0, 1, 60, 20), (1, 1, 62, 120)), cfg)
    assert not any(t.startswith("Vel_") for t in strings(enc.ids, cfg))
    assert dec.notes["velocity"].tolist() == [cfg.default_velocity] * 2
    assert len(enc.ids) == 1 + 1 + 1 + 1 + 2 + 1 + 2 + 1  # BOS Inst Tempo Prog P D Shift P D EOS


def test_empty_score_encodes_to_a_header_only():
    enc = encode(Score(), CFG)
    assert len(enc.notes) == 0 and enc.ids.tolist() == [BOS, EOS]
    with_a_tempo = Score()
    with_a_tempo.tempos = [(0.0, 90.0)]  # a tempo alone, nothing sounding: still `BOS EOS`
    assert encode(with_a_tempo, CFG).ids.tolist() == [BOS, EOS]
    assert enc.stats["notes_kept"] == 0


def test_stats_use_the_documented_keys():
    s = score(
        (0, 0, 60), (0, 0, 60), (0, 1, 10), (0, 1, 36, 80, 0, True), (0, 200, 64), sigs=[(0, 7, 3)]
    )
    enc = encode(s, CFG)
    assert set(enc.stats) <= set(STAT_KEYS)


def test_decode_is_tolerant_and_counts_stray_tokens():
    p, d = SPACE.pitch.id_of_value(60), SPACE.dur.id_of_value(48)
    prog, v, sh = SPACE.prog.id(0), SPACE.vel.id(10), SPACE.shift.id_of_value(48)
    ids = np.array([BOS, SPACE.inst.id(0), prog, v, d, p, p, d, sh, p, EOS, p, d])
    dec, stats = decode(ids, CFG)
    assert stats == {"duration_without_pitch": 1, "pitch_without_duration": 2}
    assert dec.notes[["start", "duration", "pitch"]].tolist() == [
        (0.0, 1.0, 60)
    ]  # nothing after EOS


# --- seconds mode -------------------------------------------------------------------------------


def test_seconds_mode_counts_ten_millisecond_steps_through_the_tempo_map():
    # quarters at 60 qpm are one second each; at 120 qpm half a second
    s = score((0, 1, 60), (1, 1, 62), (2, 0.5, 64), (2.5, 0.5, 65), tempos=[(0, 60.0), (2, 120.0)])
    enc, dec = round_trip(s, SECONDS)
    assert enc.cfg.time == "seconds"
    assert enc.notes["step"].tolist() == [0, 100, 200, 225] and enc.notes["dur"].tolist() == [
        100,
        100,
        25,
        25,
    ]
    assert not any(t.startswith(("Tempo_", "TimeSig_")) for t in strings(enc.ids, SECONDS))
    # decoded at a nominal 120 qpm: the seconds are exactly the original's
    assert dec.tempos == [(0.0, 120.0)]
    assert dec.quarters_to_seconds(dec.notes["start"]).tolist() == pytest.approx([0, 1, 2, 2.25])


def test_seconds_mode_keeps_expressive_timing_to_five_milliseconds():
    rng = np.random.default_rng(3)
    onsets = np.sort(rng.uniform(0, 60, 300))  # seconds, anywhere
    s = score(
        *[
            (t * 2, rng.uniform(0.05, 1.0), int(rng.integers(40, 90)), int(rng.integers(20, 120)))
            for t in onsets
        ]
    )
    enc, dec = round_trip(s, SECONDS)
    got = np.sort(dec.quarters_to_seconds(dec.notes["start"]))
    assert np.abs(got - onsets).max() <= 0.005 + 1e-9


def test_auto_chooses_the_clock_for_a_lone_score():
    played = score(
        *[(k * 0.37 + 0.013 * (k % 7), 0.3, 60 + k % 12) for k in range(200)], resolution=384
    )
    assert encode(played, EncodingConfig()).cfg.time == "seconds"
    sequenced = score(*[(k / 2, 0.5, 60 + k % 12) for k in range(200)], resolution=384)
    assert encode(sequenced, EncodingConfig()).cfg.time == "beats"


def test_chorale_tokens_per_note(corpus_files):
    enc = encode(read_score(corpus_files[0]), CFG)
    assert 2.0 < enc.tokens_per_note < 2.5
    assert len(enc.notes) == 445
