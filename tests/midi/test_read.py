"""Reading MIDI into a Score, and the whole default corpus through tokens and back to MIDI."""

import time

import numpy as np
import pytest

from musicgen.config import EncodingConfig
from musicgen.errors import ReadError
from musicgen.midi.read import midi_bytes_to_score, read_score
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.midi.write import score_to_midi_bytes, write_midi
from musicgen.tokens.encoding import decode, encode, score_grid, token_space

CFG = EncodingConfig()
GRID_COLS = ("step", "dur", "pitch", "program")


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
    t0 = time.perf_counter()
    scores = {f.name: read_score(f) for f in corpus_files}
    return scores, time.perf_counter() - t0


# --- the default corpus -------------------------------------------------------------------


def test_corpus_reads_every_chorale_quickly(corpus):
    scores, seconds = corpus
    assert len(scores) == 410
    assert seconds < 2.0  # ~0.1 s on an idle machine; generous for a busy one
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
    scores, _ = corpus
    space = token_space(CFG)
    kept = 0
    problems = []
    for name, score in scores.items():
        enc = encode(score, CFG)
        s = enc.stats
        # every note read is kept or counted as dropped
        assert s["notes_in"] == score.num_notes, name
        dropped = s["drum_notes_dropped"] + s["out_of_range_dropped"] + s["duplicates_dropped"]
        assert s["notes_kept"] == len(enc.notes) == s["notes_in"] - dropped, name
        kept += len(enc.notes)

        dec, dstats = decode(enc.ids, CFG)
        assert not +dstats, f"{name}: decoder complained {dict(dstats)}"
        if why := grid_mismatch(score_grid(dec, CFG), enc.notes):
            problems.append(f"{name} tokens: {why}")
        # velocities come back as the centre of their bin
        order = np.lexsort((-dec.notes["pitch"], dec.notes["program"], np.round(dec.notes["start"] * 12)))
        assert np.array_equal(space.velocity_bin(dec.notes["velocity"][order]), enc.notes["vbin"]), name
        # tempo and metre at the start come back binned / exact
        assert dec.time_signatures[0][1:] == score.time_signatures[0][1:], name
        want_qpm = space.tempo_values[space.tempo_bin(score.tempos[0][1])]
        assert dec.tempos[0] == (0.0, pytest.approx(want_qpm)), name

        back = midi_bytes_to_score(score_to_midi_bytes(dec))
        if why := grid_mismatch(score_grid(back, CFG), enc.notes):
            problems.append(f"{name} midi: {why}")
        assert back.tempos[0][1] == pytest.approx(want_qpm, rel=1e-4), name
        assert back.time_signatures[0] == dec.time_signatures[0], name
    assert problems == []
    assert kept == 118_000


def test_written_file_reads_back(tmp_path, corpus_files):
    score = read_score(corpus_files[0])
    enc = encode(score, CFG)
    dec, _ = decode(enc.ids, CFG)
    path = write_midi(dec, tmp_path / "sub" / "rt.mid")
    assert path.is_file() and path.read_bytes()[:4] == b"MThd"
    assert grid_mismatch(score_grid(read_score(path), CFG), enc.notes) == ""


# --- reading hand-built files -------------------------------------------------------------


def test_reads_exact_notes_programs_tempo_and_metre(smf):
    melody = smf.program(0, 40, ch=1) + smf.notes((0, 72, 240, 100), (240, 74, 120, 30), ch=1)
    drums = smf.notes((0, 36, 60), (420, 38, 60), ch=9)
    conductor = smf.tempo(0, 500_000) + smf.timesig(0, 3, 2) + smf.tempo(960, 1_000_000) + smf.EOT
    data = smf.header(fmt=1, ntracks=3) + smf.track(conductor) + smf.track(melody) + smf.track(drums)
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
    body = b"RMID" + info + b"data" + len(midi).to_bytes(4, "little") + midi + b"\0" * (len(midi) & 1)
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
