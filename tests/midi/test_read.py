"""Reading MIDI into a Score, and the whole default corpus through tokens and back to MIDI."""

import numpy as np
import pytest

from musicgen.config import EncodingConfig
from musicgen.errors import ReadError
from musicgen.midi.read import midi_bytes_to_score, read_score
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.midi.write import score_to_midi_bytes, write_midi
from musicgen.tokens.encoding import decode, encode, score_grid

CFG = EncodingConfig()  # auto: a chorale is on a beat grid
GRID_COLS = ("step", "dur", "pitch", "program", "velocity")


def grid_mismatch(got: np.ndarray, want: np.ndarray) -> str:
    """'' when the two grids hold the same notes, else what differs first."""
    if len(got) != len(want):
        return f"{len(got)} notes, expected {len(want)}"
    for col in GRID_COLS:
        bad = np.flatnonzero(got[col] != want[col])
        if len(bad):
            return f"{col} differs at note {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"
    return ""


@pytest.fixture(scope="module")
def corpus(corpus_files):
    return {f.name: read_score(f) for f in corpus_files}


# --- the default corpus -------------------------------------------------------------------


def test_corpus_reads_every_chorale(corpus):
    scores = corpus
    assert len(scores) == 410
    assert sum(s.num_notes for s in scores.values()) == 124_562
    for name, s in scores.items():
        assert s.num_notes > 0, name
        assert s.n_tracks >= 2, name
        assert np.all(np.diff(s.notes["start"]) >= 0), f"{name}: notes not sorted by start"
        assert np.all(s.notes["duration"] > 0), name
        assert not s.notes["drum"].any(), name
        assert len(s.tempos) >= 1 and len(s.time_signatures) >= 1, name
        assert not s.warnings, name
    assert scores["bwv1.6.mid"].time_signatures == [(0.0, 4, 4)]
    assert scores["bwv1.6.mid"].tempos[0][1] == pytest.approx(76.0, abs=0.01)


def test_corpus_round_trip_midi_tokens_midi(corpus):
    """Every kept note survives read -> encode -> decode, and -> MIDI -> read again."""
    scores = corpus
    kept = 0
    problems = []
    for name, score in scores.items():
        enc = encode(score, CFG)
        s = enc.stats
        # every note read is kept or counted as dropped
        assert s["notes_in"] == score.num_notes, name
        dropped = s["drum_notes_dropped"] + s["out_of_range_dropped"] + s["duplicates_merged"]
        assert s["notes_kept"] == len(enc.notes) == s["notes_in"] - dropped, name
        assert enc.cfg.time == "beats" and s["off_grid"] == 0, name
        kept += len(enc.notes)

        dec, dstats = decode(enc.ids, enc.cfg)
        assert not +dstats, f"{name}: decoder complained {dict(dstats)}"
        if why := grid_mismatch(score_grid(dec, enc.cfg), enc.notes):
            problems.append(f"{name} tokens: {why}")
        # velocities come back within the tolerance, every tempo within 0.5%, the metre exact
        original = {
            (round(n["start"] * 48), int(n["pitch"])): int(n["velocity"]) for n in score.notes
        }
        for n in enc.notes:
            assert (
                abs(int(n["velocity"]) - original[int(n["step"]), int(n["pitch"])])
                <= enc.cfg.velocity_tolerance
            ), name
        assert dec.time_signatures[0][1:] == score.time_signatures[0][1:], name
        want_qpm = score.tempos[0][1]
        assert dec.tempos[0][0] == 0.0 and abs(dec.tempos[0][1] / want_qpm - 1) <= 0.005, name

        back = midi_bytes_to_score(score_to_midi_bytes(dec))
        if why := grid_mismatch(score_grid(back, enc.cfg), enc.notes):
            problems.append(f"{name} midi: {why}")
        assert back.tempos[0][1] == pytest.approx(dec.tempos[0][1], rel=1e-4), name
        assert back.time_signatures[0] == dec.time_signatures[0], name
    assert problems == []
    assert kept == 118_000


def test_written_file_reads_back(tmp_path, corpus_files):
    score = read_score(corpus_files[0])
    enc = encode(score, CFG)
    dec, _ = decode(enc.ids, enc.cfg)
    path = write_midi(dec, tmp_path / "sub" / "rt.mid")
    assert path.is_file() and path.read_bytes()[:4] == b"MThd"
    assert grid_mismatch(score_grid(read_score(path), enc.cfg), enc.notes) == ""


# --- reading hand-built files -------------------------------------------------------------


def test_reads_exact_notes_programs_tempo_and_metre(smf):
    melody = smf.program(0, 40, ch=1) + smf.notes((0, 72, 240, 100), (240, 74, 120, 30), ch=1)
    drums = smf.notes((0, 36, 60), (420, 38, 60), ch=9)
    conductor = smf.tempo(0, 500_000) + smf.timesig(0, 3, 2) + smf.tempo(960, 1_000_000) + smf.EOT
    data = (
        smf.header(fmt=1, ntracks=3) + smf.track(conductor) + smf.track(melody) + smf.track(drums)
    )
    s = midi_bytes_to_score(data)
    assert s.n_tracks == 2  # tracks that hold notes; the conductor track holds only meta events
    assert s.tempos == [(0.0, pytest.approx(120.0)), (2.0, pytest.approx(60.0))]
    assert s.time_signatures == [(0.0, 3, 4)]
    got = sorted(s.notes.tolist())
    assert got == [
        (0.0, 0.125, 36, 64, 0, True),
        (0.0, 0.5, 72, 100, 40, False),
        (1.0, 0.125, 38, 64, 0, True),
        (1.0, 0.25, 74, 30, 40, False),
    ]
    assert s.warnings == []


def test_write_keeps_drums_programs_and_velocities():
    notes = np.zeros(4, dtype=NOTE_DTYPE)
    notes["start"] = [0.0, 0.0, 0.5, 1.25]
    notes["duration"] = [1.0, 0.25, 0.25, 2.0]
    notes["pitch"] = [60, 36, 42, 67]
    notes["velocity"] = [100, 90, 20, 127]
    notes["program"] = [0, 0, 0, 73]
    notes["drum"] = [False, True, True, False]
    score = Score(notes=notes, tempos=[(0.0, 90.0)], time_signatures=[(0.0, 6, 8)])
    back = midi_bytes_to_score(score_to_midi_bytes(score))
    assert sorted(back.notes.tolist()) == sorted(notes.tolist())
    assert back.tempos == [(0.0, pytest.approx(90.0, rel=1e-4))]
    assert back.time_signatures == [(0.0, 6, 8)]


@pytest.mark.parametrize("name", ["a.MID", "b.Midi", "c.kar", "d.smf"])
def test_suffixes_any_case(tmp_path, smf, name):
    path = tmp_path / name
    path.write_bytes(smf.simple())
    assert read_score(path).notes["pitch"].tolist() == [60, 64, 67]


def test_riff_wrapped_rmi(tmp_path, smf):
    midi = smf.simple()
    info = b"LIST" + (4).to_bytes(4, "little") + b"INFO"
    body = (
        b"RMID" + info + b"data" + len(midi).to_bytes(4, "little") + midi + b"\0" * (len(midi) & 1)
    )
    path = tmp_path / "song.rmi"
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    assert read_score(path).notes["pitch"].tolist() == [60, 64, 67]
    path.write_bytes(b"RIFF" + (4).to_bytes(4, "little") + b"RMID")
    with pytest.raises(ReadError, match="RIFF file has no MIDI data chunk"):
        read_score(path)


def test_unsupported_and_missing_files(tmp_path):
    with pytest.raises(ReadError, match=r"unsupported file type \.txt"):
        read_score(tmp_path / "notes.txt")
    with pytest.raises(ReadError, match="cannot read file"):
        read_score(tmp_path / "missing.mid")


def test_longer_header_is_skipped_over(smf):
    data = smf.header(length=10, extra=b"\1\2\3\4") + smf.track(smf.notes((0, 60, 480)))
    s = midi_bytes_to_score(data)
    assert s.notes["pitch"].tolist() == [60] and s.warnings == []


def test_smpte_division_reads_seconds_at_120_qpm(smf):
    # 25 frames/s x 40 ticks/frame = 1000 ticks per second; at 120 qpm a quarter is 500 ticks
    division = ((256 - 25) << 8) | 40
    data = smf.header(division=division) + smf.track(smf.notes((0, 60, 500), (500, 62, 1000)))
    s = midi_bytes_to_score(data)
    assert s.notes[["start", "duration"]].tolist() == [(0.0, 1.0), (2.0, 2.0)]
    assert s.tempos == [(0.0, 120.0)]
    assert s.duration_seconds == pytest.approx(2.0)


def test_tempo_zero_is_ignored_not_clamped(smf):
    body = smf.tempo(0, 600_000) + smf.tempo(480, 0) + smf.notes((0, 60, 480))
    s = midi_bytes_to_score(smf.header() + smf.track(body))
    assert s.tempos == [(0.0, pytest.approx(100.0))]


def test_tick_overflow_drops_only_the_wrapped_notes(smf):
    # 12 notes 0x0FFFFFFF ticks apart: from the 9th on, the tick count passes 2**31
    notes = [(0x0FFFFFFF if i else 0, 60 + i, 480) for i in range(12)]
    s = midi_bytes_to_score(smf.header() + smf.track(smf.notes(*notes)))
    assert s.notes["pitch"].tolist() == list(range(60, 68))
    assert (s.notes["start"] >= 0).all()
    assert s.warnings == ["4 notes past the 2**31 tick limit dropped"]
    enc = encode(s, CFG)  # silences are cut, nothing crashes
    assert len(enc.notes) == 8 and enc.stats["silences_shortened"] == 7


def test_sustain_pedal_extends_what_sounds(smf):
    """A key released while the pedal is down sounds until the pedal lifts; a key
    released after it lifts, or a drum, is untouched."""
    ev = smf.event
    body = (
        ev(0, 0xB0, 64, 127)  # pedal down at 0
        + ev(0, 0x90, 60, 80)
        + ev(240, 0x80, 60, 0)  # C released at 240, under the pedal
        + ev(0, 0x90, 64, 80)  # E struck at 240 ...
        + ev(720, 0xB0, 64, 0)  # pedal up at 960
        + ev(240, 0x80, 64, 0)  # ... released at 1200, after the pedal: unchanged
        + ev(0, 0x90, 67, 80)
        + ev(480, 0x80, 67, 0)  # G, no pedal
        + smf.EOT
    )
    drums = smf.notes((0, 36, 100), ch=9)
    s = midi_bytes_to_score(smf.header(fmt=1, ntracks=2) + smf.track(body) + smf.track(drums))
    got = {int(n["pitch"]): (float(n["start"]), float(n["duration"])) for n in s.notes}
    assert got[60] == (0.0, 2.0)  # held to the pedal's lift at 960 ticks
    assert got[64] == (0.5, 2.0)
    assert got[67] == (2.5, 1.0)
    assert got[36] == (0.0, pytest.approx(100 / 480))
    assert s.counts == {"sustain_pedal_presses": 1, "notes_sustained": 1}
