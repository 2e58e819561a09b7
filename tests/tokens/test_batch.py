"""Reading and encoding in batches gives exactly what one file at a time gives.

Ingestion reads and encodes a chunk of files in one pass of array work (every
row tagged with its file); these tests pin that nothing leaks between the files
of a batch: not a sort, a running maximum, a silence cut, a Prog/Vel change or
a tempo.
"""

import dataclasses

import numpy as np
import pytest

from musicgen.config import EncodingConfig
from musicgen.midi.read import parse_file, read_score, to_scores
from musicgen.midi.score import NOTE_DTYPE, Score, ScoreBatch
from musicgen.tokens.encoding import encode, encode_batch

CONFIGS = [
    EncodingConfig(),
    EncodingConfig(programs="main", include_drums=True),
    EncodingConfig(velocity_bins=0, time_signatures=False, steps_per_quarter=4, max_shift_steps=5,
                   max_duration_steps=7, max_silence_quarters=1.0),
    EncodingConfig(include_drums=True, pitch_min=40, pitch_max=80, tempo_bins=1),
]  # fmt: skip


def random_score(rng: np.random.Generator) -> Score:
    """Hostile but valid: off-grid onsets, zero and huge durations, drums, doublings,
    silences longer than the cap, tempo and metre changes inside them, bad metres."""
    n = int(rng.choice([0, 1, 2, 3, 10, 50, 300]))
    notes = np.zeros(n, dtype=NOTE_DTYPE)
    if rng.random() < 0.5:
        notes["start"] = rng.integers(0, 200, n) / rng.choice([1, 2, 3, 4, 12])
    else:
        notes["start"] = rng.random(n) * rng.choice([1, 10, 100, 5000])
    notes["duration"] = rng.choice([0, 0.001, 0.25, 1, 3, 40], n) * rng.random(n).round(1)
    notes["pitch"] = rng.integers(0, 128, n) if rng.random() < 0.5 else rng.integers(58, 64, n)
    notes["velocity"] = rng.integers(1, 128, n) if rng.random() < 0.5 else 90
    notes["program"] = rng.choice([0, 0, 5, 40, 127], n)
    notes["drum"] = rng.random(n) < rng.choice([0, 0.2, 1.0])
    notes = notes[np.argsort(notes["start"], kind="stable")]
    tempos = sorted((float(rng.integers(0, 100) / 4), float(rng.choice([1, 30, 60, 120, 500]))) for _ in range(rng.integers(0, 4)))
    sigs = sorted(
        (float(rng.integers(0, 100) / 2), int(rng.choice([0, 1, 3, 4, 7, 40])), int(rng.choice([3, 4, 8, 2])))
        for _ in range(rng.integers(0, 4))
    )
    return Score(notes=notes, tempos=tempos, time_signatures=sigs, n_tracks=1)


def same(a, b) -> bool:
    return (
        np.array_equal(a.ids, b.ids)
        and a.ids.dtype == b.ids.dtype
        and a.notes.tobytes() == b.notes.tobytes()
        and +a.stats == +b.stats  # unary plus drops zero counts
    )


@pytest.fixture(scope="module")
def scores(corpus_files):
    rng = np.random.default_rng(0)
    real = [read_score(f) for f in corpus_files[::20]]
    return real + [random_score(rng) for _ in range(150)] + [Score()]


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_a_batch_encodes_each_score_as_if_alone(scores, cfg):
    alone = [encode(s, cfg) for s in scores]
    rng = np.random.default_rng(1)
    order = rng.permutation(len(scores))  # neighbours differ from run to run
    for size in (2, 7, 64, len(scores)):
        for at in range(0, len(order), size):
            group = [int(i) for i in order[at : at + size]]
            got = encode_batch(ScoreBatch.of([scores[i] for i in group]), cfg)
            assert len(got) == len(group)
            for i, enc in zip(group, got, strict=True):
                assert same(enc, alone[i]), f"score {i} encodes differently in a batch of {size}"


def test_an_empty_batch():
    assert encode_batch(ScoreBatch.of([]), EncodingConfig()) == []


def test_far_out_times_fall_back_to_one_by_one():
    """Times so late that a file tag no longer fits beside them in one int64 key."""
    far = Score(notes=np.array([(2.0**40, 1.0, 60, 80, 0, False)], dtype=NOTE_DTYPE), tempos=[(0.0, 100.0)])
    near = Score(notes=np.array([(0.0, 1.0, 62, 80, 0, False)], dtype=NOTE_DTYPE))
    cfg = EncodingConfig()
    got = encode_batch(ScoreBatch.of([near, far, near]), cfg)
    assert [same(g, encode(s, cfg)) for g, s in zip(got, [near, far, near], strict=True)] == [True] * 3


def test_stats_stay_with_their_file():
    """Counters are per file: a drop in one file is never booked on its neighbour."""
    clean = Score(notes=np.array([(0.0, 1.0, 60, 80, 0, False)], dtype=NOTE_DTYPE))
    dirty = Score(notes=np.array([(0.0, 1.0, 10, 80, 0, False), (0.0, 1.0, 60, 80, 0, True)], dtype=NOTE_DTYPE))
    a, b, c = encode_batch(ScoreBatch.of([clean, dirty, clean]), EncodingConfig())
    assert +a.stats == +c.stats == {"notes_in": 1, "notes_kept": 1}
    assert b.stats["out_of_range_dropped"] == 1 and b.stats["drum_notes_dropped"] == 1 and len(b.notes) == 0


def test_reading_a_batch_equals_reading_each_file(corpus_files, tmp_path, smf):
    damaged = tmp_path / "cut.mid"
    data = corpus_files[3].read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 3])  # repaired, with a warning
    empty_after_repair = tmp_path / "only-header.mid"
    empty_after_repair.write_bytes(smf.header(ntracks=2) + smf.track(smf.notes((0, 60, 480)))[:12])
    smpte = tmp_path / "smpte.mid"
    smpte.write_bytes(smf.header(division=(256 - 25) << 8 | 40) + smf.track(smf.notes((0, 60, 1000), (0, 62, 500))))
    files = [*corpus_files[:5], damaged, smpte, corpus_files[6]]
    batch, errors = to_scores([parse_file(f) for f in files])
    assert errors == [None] * len(files)
    assert batch.sizes.tolist() == [s.num_notes for s in batch.scores]
    assert batch.notes.tobytes() == np.concatenate([s.notes for s in batch.scores]).tobytes()
    for f, got in zip(files, batch.scores, strict=True):
        want = read_score(f)
        assert dataclasses.asdict(got).keys() == dataclasses.asdict(want).keys()
        assert got.notes.tobytes() == want.notes.tobytes(), f.name
        assert (got.tempos, got.time_signatures, got.n_tracks, got.warnings) == (
            want.tempos, want.time_signatures, want.n_tracks, want.warnings,
        )  # fmt: skip
    assert batch.scores[5].warnings and batch.scores[6].tempos == [(0.0, 120.0)]

    _, errors = to_scores([parse_file(corpus_files[0]), parse_file(empty_after_repair)])
    assert errors[0] is None and "truncated" in str(errors[1])
