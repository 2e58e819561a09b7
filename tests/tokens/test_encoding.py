"""The TSD-like encoding on hand-built scores: exact tokens, exact counters."""

import dataclasses

import numpy as np
import pytest

from musicgen.config import EncodingConfig
from musicgen.midi.read import read_score
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.tokens.encoding import STAT_KEYS, decode, encode, score_grid, token_space
from musicgen.tokens.space import BOS, DRUM_PROGRAM, EOS

CFG = EncodingConfig()
SPACE = token_space(CFG)


def score(*notes, tempos=(), sigs=()) -> Score:
    """notes: (start, duration, pitch[, velocity[, program[, drum]]]) in quarters."""
    arr = np.zeros(len(notes), dtype=NOTE_DTYPE)
    for i, n in enumerate(notes):
        arr[i] = tuple(n) + (80, 0, False)[len(n) - 3 :]
    arr = arr[np.argsort(arr["start"], kind="stable")]
    return Score(notes=arr, tempos=list(tempos), time_signatures=list(sigs))


def strings(ids, cfg=CFG) -> list[str]:
    s = token_space(cfg).strings()
    return [s[i] for i in np.asarray(ids).tolist()]


def body(enc, cfg=CFG) -> list[str]:
    """Tokens between BOS and EOS, without the tempo / time-signature header."""
    toks = strings(enc.ids, cfg)
    assert toks[0] == "BOS" and toks[-1] == "EOS"
    return [t for t in toks[1:-1] if not t.startswith(("Tempo_", "TimeSig_"))]


def vel_token(v: int, cfg=CFG) -> str:
    space = token_space(cfg)
    return f"Vel_{space.velocity_values[space.velocity_bin(v)]}"


def tempo_token(qpm: float) -> str:
    return f"Tempo_{SPACE.tempo_values[SPACE.tempo_bin(qpm)]:g}"


def round_trip(s: Score, cfg=CFG):
    enc = encode(s, cfg)
    dec, stats = decode(enc.ids, cfg)
    assert not +stats
    assert np.array_equal(score_grid(dec, cfg)[["step", "dur", "pitch", "program"]], enc.notes[["step", "dur", "pitch", "program"]])
    return enc, dec


def test_chord_costs_no_shift_and_goes_highest_first():
    enc, dec = round_trip(score((0, 1, 60), (0, 1, 67), (0, 1, 64), (1, 0.5, 72)))
    v = vel_token(80)
    assert strings(enc.ids) == [
        "BOS", tempo_token(120.0),
        "Prog_0", v, "Pitch_67", "Dur_12", "Pitch_64", "Dur_12", "Pitch_60", "Dur_12",
        "Shift_12", "Pitch_72", "Dur_6",
        "EOS",
    ]  # fmt: skip
    assert enc.notes["pitch"].tolist() == [67, 64, 60, 72]
    assert enc.tokens_per_note == pytest.approx(len(enc.ids) / 4)
    assert dec.notes["start"].tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize(
    ("gap_steps", "shifts"),
    [(1, ["Shift_1"]), (47, ["Shift_47"]), (48, ["Shift_48"]), (49, ["Shift_48", "Shift_1"]),
     (96, ["Shift_48", "Shift_48"]), (120, ["Shift_48", "Shift_48", "Shift_24"])],
)  # fmt: skip
def test_long_gaps_use_several_shifts(gap_steps, shifts):
    enc, dec = round_trip(score((0, 0.5, 60), (gap_steps / 12, 0.5, 62)))
    b = body(enc)
    assert b[b.index("Dur_6") + 1 : b.index("Pitch_62")] == shifts
    assert dec.notes["start"][1] * 12 == pytest.approx(gap_steps)


def test_program_and_velocity_only_on_change():
    s = score(
        (0, 1, 60, 80, 0), (1, 1, 62, 80, 0), (2, 1, 64, 80, 40), (3, 1, 65, 30, 40),
        (4, 1, 67, 30, 0), (5, 1, 69, 31, 0),  # 31 shares 30's bin: no new Vel
    )  # fmt: skip
    enc, dec = round_trip(s)
    b = body(enc)
    assert [t for t in b if t.startswith("Prog_")] == ["Prog_0", "Prog_40", "Prog_0"]
    assert [t for t in b if t.startswith("Vel_")] == [vel_token(80), vel_token(30)]
    assert b[:4] == ["Prog_0", vel_token(80), "Pitch_60", "Dur_12"]
    assert dec.notes["program"].tolist() == [0, 0, 40, 40, 0, 0]
    assert dec.notes["velocity"].tolist() == [int(t[4:]) for t in [vel_token(v) for v in (80, 80, 80, 30, 30, 31)]]


def test_within_a_step_program_then_pitch_order():
    enc, _ = round_trip(score((0, 1, 50, 80, 40), (0, 1, 80, 80, 40), (0, 1, 40, 80, 0), (0, 1, 70, 80, 0)))
    assert [(int(p), int(g)) for p, g in enc.notes[["program", "pitch"]].tolist()] == [(0, 70), (0, 40), (40, 80), (40, 50)]
    assert body(enc).count("Prog_40") == 1 and "Shift_" not in " ".join(body(enc))


def test_triplets_and_sixteenths_land_exactly_on_the_grid():
    triplets = [(k / 3, 1 / 3, 60 + k) for k in range(6)]  # eighth-note triplets: 4 steps
    sixteenths = [(2 + k / 4, 1 / 4, 70 + k) for k in range(8)]  # 3 steps
    enc, _ = round_trip(score(*triplets, *sixteenths))
    assert enc.stats["off_grid"] == 0
    assert enc.notes["step"].tolist() == [4 * k for k in range(6)] + [24 + 3 * k for k in range(8)]
    assert enc.notes["dur"].tolist() == [4] * 6 + [3] * 8
    assert body(enc).count("Shift_4") == 6 and body(enc).count("Shift_3") == 7  # 20 -> 24 is a Shift_4 too
    quintuplets = encode(score(*[(k / 5, 1 / 5, 60) for k in range(5)]), CFG)
    assert quintuplets.stats["off_grid"] == 4  # only the first quintuplet sits on the grid


def test_duration_clipping_is_counted():
    enc, _ = round_trip(score((0, 10, 60), (0, 8, 64), (0, 8.5, 67)))  # 120, 96 and 102 steps
    assert enc.stats["durations_clipped"] == 2
    assert sorted(enc.notes["dur"].tolist()) == [96, 96, 96]


def test_zero_length_notes_are_extended_and_counted():
    enc, dec = round_trip(score((0, 0, 60), (1, 0.01, 62), (2, 1, 64)))
    assert enc.stats["durations_extended"] == 2
    assert enc.notes["dur"].tolist() == [1, 1, 12]
    assert dec.notes["duration"].min() == pytest.approx(1 / 12)


def test_out_of_range_pitches_dropped_and_counted():
    enc, _ = round_trip(score((0, 1, 20), (0, 1, 21), (0, 1, 108), (0, 1, 109), (1, 1, 127), (1, 1, 0)))
    assert enc.stats["out_of_range_dropped"] == 4
    assert sorted(enc.notes["pitch"].tolist()) == [21, 108]
    assert enc.stats["notes_in"] == 6 and enc.stats["notes_kept"] == 2


def test_drums_dropped_by_default_kept_on_request():
    s = score((0, 1, 60), (0, 0.25, 36, 100, 0, True), (0.5, 0.25, 42, 100, 0, True))
    enc = encode(s, CFG)
    assert enc.stats["drum_notes_dropped"] == 2 and enc.notes["pitch"].tolist() == [60]
    assert "Prog_drums" not in strings(enc.ids)
    cfg = dataclasses.replace(CFG, include_drums=True)
    enc, dec = round_trip(s, cfg)
    assert enc.stats["drum_notes_dropped"] == 0 and len(enc.notes) == 3
    assert enc.notes["program"].tolist() == [0, DRUM_PROGRAM, DRUM_PROGRAM]
    assert strings(enc.ids, cfg).count("Prog_drums") == 1
    assert sorted(dec.notes[["pitch", "drum"]].tolist()) == [(36, True), (42, True), (60, False)]


def test_drum_pitch_outside_the_range_is_dropped_not_mis_encoded():
    cfg = EncodingConfig(include_drums=True, pitch_min=40)
    enc, dec = round_trip(score((0, 1, 60), (0, 1, 35, 90, 0, True)), cfg)
    assert enc.stats["out_of_range_dropped"] == 1
    assert dec.notes["pitch"].tolist() == [60]


def test_duplicates_counted_and_the_longest_kept():
    s = score((0, 1, 60), (0, 2, 60), (0, 0.5, 60), (0, 1, 60, 80, 40), (1, 1, 64), (1, 1, 64))
    enc, _ = round_trip(s)
    assert enc.stats["duplicates_dropped"] == 3
    assert [tuple(int(x) for x in n) for n in enc.notes[["step", "pitch", "program", "dur"]].tolist()] == [
        (0, 60, 0, 24),  # the longest of the three
        (0, 60, 40, 12),  # another instrument: not a duplicate
        (12, 64, 0, 12),
    ]


def test_overlapping_same_pitch_truncated_and_counted():
    enc, _ = round_trip(score((0, 2, 60), (1, 1, 60), (1.5, 2, 64), (1.5, 1, 67)))
    assert enc.stats["overlaps_truncated"] == 1
    assert [(int(a), int(b), int(c)) for a, b, c in enc.notes[["step", "pitch", "dur"]].tolist()] == [
        (0, 60, 12), (12, 60, 12), (18, 67, 12), (18, 64, 24),
    ]  # fmt: skip


def test_long_silences_shortened_and_counted():
    cap = CFG.max_silence_steps  # 16 quarters
    s = score((0, 1, 60), (100, 1, 62), (101, 1, 64), (200, 1, 65), tempos=[(0, 100.0), (50, 60.0)],
              sigs=[(0, 4, 4), (60, 3, 4)])  # fmt: skip
    enc, dec = round_trip(s)
    assert enc.stats["silences_shortened"] == 2
    assert enc.notes["step"].tolist() == [0, 12 + cap, 24 + cap, 36 + 2 * cap]
    # changes inside a removed silence are kept and move to the next note
    assert dec.tempos == [(0.0, pytest.approx(SPACE.tempo_values[SPACE.tempo_bin(100)])),
                          ((12 + cap) / 12, pytest.approx(SPACE.tempo_values[SPACE.tempo_bin(60)]))]  # fmt: skip
    assert dec.time_signatures == [(0.0, 4, 4), ((12 + cap) / 12, 3, 4)]
    # a silence at the very start is shortened too
    late = encode(score((40, 1, 60)), CFG)
    assert late.stats["silences_shortened"] == 1 and late.notes["step"].tolist() == [cap]


def test_tempo_and_time_signature_tokens():
    s = score((0, 1, 60), (4, 1, 62), (8, 1, 64), tempos=[(0, 100.0), (4, 61.0), (6, 62.0)],
              sigs=[(0, 3, 4), (4, 6, 8), (8, 5, 3)])  # fmt: skip
    enc, dec = round_trip(s)
    toks = strings(enc.ids)
    assert toks[:3] == ["BOS", "TimeSig_3/4", tempo_token(100.0)]
    # 61 and 62 qpm share a bin: one token; the 5/3 signature cannot be written
    assert toks.count(tempo_token(61.0)) == 1 and tempo_token(61.0) == tempo_token(62.0)
    assert enc.stats["time_signatures_dropped"] == 1
    i = toks.index("Pitch_62")
    assert toks[i - 2 : i] == ["TimeSig_6/8", tempo_token(61.0)]  # metre, then tempo, then the note
    assert dec.time_signatures == [(0.0, 3, 4), (4.0, 6, 8)]
    assert [t for t, _ in dec.tempos] == [0.0, 4.0]
    logs = np.log(SPACE.tempo_values)
    for (_, got), want in zip(dec.tempos, (100.0, 61.0), strict=True):
        assert got == SPACE.tempo_values[np.argmin(np.abs(logs - np.log(want)))]  # nearest in log tempo
    assert abs(np.log(dec.tempos[0][1] / 100.0)) <= (logs[1] - logs[0]) / 2 + 1e-9


def test_no_tempo_means_120():
    enc, dec = round_trip(score((0, 1, 60)))
    assert tempo_token(120.0) in strings(enc.ids)
    assert dec.tempos == [(0.0, pytest.approx(SPACE.tempo_values[SPACE.tempo_bin(120.0)]))]


def test_programs_main_maps_every_note_to_the_main_instrument():
    cfg = dataclasses.replace(CFG, programs="main")
    s = score((0, 1, 60, 80, 40), (1, 1, 62, 80, 40), (2, 1, 64, 80, 0), (2, 1, 64, 80, 40))
    enc, dec = round_trip(s, cfg)
    assert [t for t in strings(enc.ids, cfg) if t.startswith("Prog_")] == ["Prog_40"]
    assert set(dec.notes["program"].tolist()) == {40}
    assert enc.stats["duplicates_dropped"] == 1  # the unison doubling became one note


def test_velocity_bins_zero_drops_velocity():
    cfg = dataclasses.replace(CFG, velocity_bins=0)
    enc, dec = round_trip(score((0, 1, 60, 20), (1, 1, 62, 120)), cfg)
    assert not any(t.startswith("Vel_") for t in strings(enc.ids, cfg))
    assert dec.notes["velocity"].tolist() == [cfg.default_velocity] * 2
    assert len(enc.ids) == 1 + 1 + 1 + 2 + 1 + 2 + 1  # BOS Tempo Prog P D Shift P D EOS


def test_empty_score_encodes_to_a_header_only():
    enc = encode(Score(), CFG)
    assert len(enc.notes) == 0 and enc.ids[0] == BOS and enc.ids[-1] == EOS
    assert enc.stats["notes_kept"] == 0


def test_stats_use_the_documented_keys():
    s = score((0, 0, 60), (0, 0, 60), (0, 1, 10), (0, 1, 36, 80, 0, True), (0, 200, 64), sigs=[(0, 7, 3)])
    enc = encode(s, CFG)
    assert set(enc.stats) <= set(STAT_KEYS)


def test_decode_is_tolerant_and_counts_stray_tokens():
    p, d = SPACE.pitch_id(60), SPACE.dur_id(12)
    ids = np.array([BOS, d, p, p, d, SPACE.shift_id(12), p, EOS, p, d])
    dec, stats = decode(ids, CFG)
    assert stats == {"duration_without_pitch": 1, "pitch_without_duration": 2}
    assert dec.notes[["start", "duration", "pitch"]].tolist() == [(0.0, 1.0, 60)]  # nothing after EOS


def test_chorale_tokens_per_note(corpus_files):
    enc = encode(read_score(corpus_files[0]), CFG)
    assert 2.0 < enc.tokens_per_note < 3.0
    assert len(enc.notes) == 445


def test_time_tables_agree_with_the_token_names():
    """Generation follows time through these tables; they must say what the tokens say."""
    cfg = EncodingConfig(steps_per_quarter=6, tempo_bins=5)
    space = token_space(cfg)
    shift, qpm, bar = space.time_tables()
    for uid, name in enumerate(space.strings()):
        kind, _, value = name.partition("_")
        want = (0, 0.0, 0)
        if kind == "Shift":
            want = (int(value), 0.0, 0)
        elif kind == "Tempo":
            want = (0, float(value), 0)
        elif kind == "TimeSig":
            num, den = map(int, value.split("/"))
            want = (0, 0.0, num * 4 * 6 // den)
        assert (shift[uid], qpm[uid], bar[uid]) == pytest.approx(want, rel=1e-4), name
    assert bar[space.timesig_id(3, 4)] == 18 and bar[space.timesig_id(6, 8)] == 18
