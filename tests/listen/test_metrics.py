"""Statistics on hand-made scores, against values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from musicgen.cli import cli
from musicgen.listen import metrics as M
from musicgen.midi.score import Score
from musicgen.midi.write import write_midi
from tests.helpers import score_of

from .conftest import song

C_MAJOR = [60, 62, 64, 65, 67, 69, 71]


def melody(pitches, step=1.0) -> Score:
    return score_of([(i * step, step, p) for i, p in enumerate(pitches)])


def test_c_major_scale():
    m = M.piece_metrics(melody(C_MAJOR))
    assert m["notes"] == 7
    assert m["pitch_class_entropy"] == pytest.approx(math.log2(7))
    assert m["scale_consistency"] == 1.0
    assert m["pitch_range"] == 11
    assert m["polyphony"] == 1.0
    assert m["note_density"] == 1.0  # 7 notes over 7 beats
    assert m["empty_beat_rate"] == 0.0
    assert m["distinct_4gram_share"] == 1.0
    assert m["longest_repeat_run"] == 0
    assert m["ioi_histogram"] == [0, 0, 0, 0, 1, 0, 0, 0]  # every onset a beat apart: bin "1"
    assert m["duration_histogram"] == [0, 0, 0, 0, 1, 0, 0, 0]
    assert m["pitch_class_histogram"][0] == pytest.approx(1 / 7)
    assert m["pitch_class_histogram"][1] == 0


def test_chromatic_scale_and_eighth_notes():
    m = M.piece_metrics(melody(range(60, 72), step=0.5))
    assert m["pitch_class_entropy"] == pytest.approx(math.log2(12))
    assert m["scale_consistency"] == pytest.approx(7 / 12)
    assert m["note_density"] == 2.0  # 12 eighths over 6 beats
    assert m["ioi_histogram"][M.TIME_LABELS.index("1/2")] == 1.0


def test_polyphony_is_time_weighted_over_sounding_time():
    chord_then_note = score_of([(0, 2, 60), (0, 2, 64), (0, 2, 67), (2, 2, 72)])
    assert M.polyphony(chord_then_note.notes) == pytest.approx((3 * 2 + 1 * 2) / 4)
    with_gap = score_of([(0, 1, 60), (3, 1, 62)])
    assert M.polyphony(with_gap.notes) == 1.0  # the silence does not count
    assert M.empty_beat_rate(with_gap.notes) == 0.5  # beats 1 and 2 of 0..3 are empty


def test_unison_doublings_count_once_in_the_pitch_sequence():
    doubled = score_of([(0, 1, 60, 0), (0, 1, 60, 40), (0, 1, 55, 0), (1, 1, 62, 0)])
    assert M.pitch_sequence(doubled).tolist() == [60, 55, 62]  # same onset: high to low


def test_a_repeated_motif():
    motif = [60, 62, 64, 65]
    share, run = M.repetition(np.array(motif * 4))
    assert share == pytest.approx(4 / 13)  # 13 four-grams, only the 4 rotations of the motif
    assert run == 16
    # surrounded by notes that do not repeat, the run is still the 16 notes of the motif
    assert M.longest_repeat_run(np.array([50, 52, *motif * 4, 70])) == 16
    assert M.longest_repeat_run(np.array([7, 7, 7])) == 3
    assert M.longest_repeat_run(np.array([1, 2, 1, 2, 1])) == 5
    assert M.longest_repeat_run(np.array([1, 2, 3, 4, 5])) == 0
    assert math.isnan(M.distinct_ngram_share(np.array([1, 2, 3])))


def test_empty_score_gives_nan_not_errors():
    m = M.piece_metrics(Score())
    assert m["notes"] == 0 and math.isnan(m["pitch_class_entropy"]) and math.isnan(m["polyphony"])
    json.dumps(M.jsonable(m), allow_nan=False)


@pytest.fixture
def train():
    rng = np.random.default_rng(0)
    a, b = rng.integers(40, 80, 50), rng.integers(40, 80, 50)
    return a, b, M.TrainIndex.from_sequences(["a.mid", "b.mid"], [a, b])


def test_memorisation_finds_a_copied_run_exactly(train):
    a, b, index = train
    gen = np.concatenate([[120, 121, 122, 123, 124], b[10:22], [125, 126, 127, 125, 126]])
    m = M.memorisation(gen, index)
    assert m["longest_copied_run"] == 12
    assert m["copied_from"] == "b.mid"
    assert m["copied_at_note"] == 5
    assert m["ngram8_in_train"] == pytest.approx(
        5 / 15
    )  # 22 notes: 15 eight-grams, 5 inside the copy


def test_memorisation_in_another_key(train):
    a, b, index = train
    gen = np.concatenate([[120, 121, 122, 123, 124], a[20:32] + 3, [125, 126, 127, 125, 126]])
    m = M.memorisation(gen, index)
    assert m["longest_copied_run_transposed"] == 12
    assert m["longest_copied_run"] < 12


def test_memorisation_from_scores(train):
    pieces = [("x.mid", melody(C_MAJOR * 2)), ("y.mid", melody([70, 71, 72]))]
    index = M.TrainIndex.from_scores(pieces)
    m = M.memorisation(M.pitch_sequence(melody([50, *C_MAJOR[2:], 52])), index)
    assert m["longest_copied_run"] == 5 and m["copied_from"] == "x.mid"


def test_dataset_sequences_match_decoded_pieces(tiny_dataset):
    names, seqs = M.dataset_pitch_sequences(tiny_dataset, None)
    pieces, _ = M.load_corpus(tiny_dataset)
    assert names == [n for n, _ in pieces]
    for (_, score), seq in zip(pieces, seqs, strict=True):
        assert seq.tolist() == M.pitch_sequence(score).tolist()
    assert M.TrainIndex.from_dataset(tiny_dataset, "train").pieces == len(
        M.load_corpus(tiny_dataset, "train")[0]
    )


def test_sequence_index_agrees_with_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(20):
        corpus = [rng.integers(0, 3, rng.integers(1, 30)) for _ in range(3)]
        query = rng.integers(0, 3, rng.integers(1, 30))
        best = 0
        for seq in corpus:  # longest common substring by dynamic programming
            dp = np.zeros((len(query) + 1, len(seq) + 1), dtype=int)
            for i in range(len(query)):
                for j in range(len(seq)):
                    if query[i] == seq[j]:
                        dp[i + 1, j + 1] = dp[i, j] + 1
            best = max(best, int(dp.max()))
        length, qpos, tpos = M.SequenceIndex(["a", "b", "c"], corpus).longest_common_run(query)
        assert length == best


def test_overlap_of_distributions():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 300)
    assert M.overlap(a, a) > 0.99
    assert M.overlap(a, a + 100) < 0.01
    half = M.overlap(rng.normal(0, 1, 2000), rng.normal(1, 1, 2000))
    assert half == pytest.approx(2 * 0.3085, abs=0.05)  # 2 * Phi(-1/2) for unit normals one apart
    assert M.overlap([1.0, 1.0, 1.0], [1.0, 1.0]) > 0.99  # constant samples: narrow bumps
    assert M.overlap([1.0, 1.0], [5.0, 5.0]) < 0.01
    assert math.isnan(M.overlap([], [1.0]))


def test_compare_sets_yang_lerch():
    rng = np.random.default_rng(0)
    ref = list(rng.normal(0, 1, 40))
    same = M.compare_sets(list(rng.normal(0, 1, 40)), ref)
    far = M.compare_sets(list(rng.normal(10, 1, 40)), ref)
    assert same["overlap"] > 0.7 and far["overlap"] < 0.05
    assert far["inter"] > same["inter"]
    hist = M.compare_sets([[1, 0, 0], [0.9, 0.1, 0]], [[0, 0, 1], [0, 0.1, 0.9], [0.1, 0, 0.9]])
    assert hist["inter"] > hist["intra_reference"]


def test_metrics_command_json(tmp_path, tiny_dataset, tiny_corpus):
    gen = tmp_path / "gen"
    write_midi(song(0), gen / "a.mid")
    write_midi(melody(C_MAJOR), gen / "b.mid")
    args = [
        "metrics",
        str(gen),
        "--reference",
        str(tiny_corpus),
        "--train",
        str(tiny_dataset),
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["files"]) == {"a.mid", "b.mid"}
    b = out["files"]["b.mid"]
    assert b["pitch_class_entropy"] == pytest.approx(math.log2(7))
    assert out["set"]["pieces"] == 2
    assert set(out["reference"]["overlap"]) == {*M.SCALAR_KEYS, *M.HISTOGRAM_KEYS}
    assert out["train"]["pieces"] >= 1
    # a.mid is song(0); the training split holds the same song in other keys
    assert out["files"]["a.mid"]["longest_copied_run_transposed"] >= 32
    text = CliRunner().invoke(cli, ["metrics", str(gen / "b.mid")])
    assert text.exit_code == 0 and "pitch_class_entropy" in text.output


def test_metrics_command_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"")
    result = CliRunner().invoke(cli, ["metrics", str(bad)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.strip().count("\n") == 0


def test_metrics_text_says_why_overlaps_are_missing(tmp_path, tiny_corpus):
    """One generated piece has no pairs to measure distances within: the '-' is explained."""
    gen = tmp_path / "gen"
    write_midi(song(0), gen / "a.mid")
    result = CliRunner().invoke(cli, ["metrics", str(gen), "--reference", str(tiny_corpus)])
    assert result.exit_code == 0, result.output
    last = result.stdout.rstrip().splitlines()[-1]
    assert last == "  (- : distances within a set need two pieces; the generated set holds 1 piece)"
    write_midi(melody(C_MAJOR), gen / "b.mid")
    result = CliRunner().invoke(cli, ["metrics", str(gen), "--reference", str(tiny_corpus)])
    assert "distances within a set need two pieces" not in result.stdout


# --- form ----------------------------------------------------------------------------------


def test_bars_that_recur_in_an_aabb_tune():
    from musicgen.analysis.form import bar_recurrence

    a = [[60, 62, 64, 65], [67, 65, 64, 62], [60, 64, 67, 72], [71, 67, 62, 59]]
    b = [[69, 67], [62, 71], [69, 74], [72, 60]]  # half notes: no B bar is an A bar moved
    tune = [bar for strain in (a, a, b, b) for bar in strain]  # AABB, 4-bar strains
    step = lambda bar: 4 // len(bar)  # noqa: E731
    share, distance = bar_recurrence(
        score_of(
            [
                (4 * i + j * step(bar), step(bar), p)
                for i, bar in enumerate(tune)
                for j, p in enumerate(bar)
            ]
        )
    )
    assert share == 1.0 and distance == 4.0  # every bar comes back a strain later
    rng = np.random.default_rng(0)
    wander = score_of([(k, 1, int(p)) for k, p in enumerate(rng.integers(40, 90, 64))])
    assert bar_recurrence(wander) == (0.0, pytest.approx(float("nan"), nan_ok=True))


def test_a_transposed_bar_recurs_and_metrics_report_it():
    bar = [60, 64, 67, 64]
    rows = [(j, 1, p) for j, p in enumerate(bar)] + [
        (4 + j, 1, p) for j, p in enumerate([61, 62, 63, 66])
    ]
    rows += [(8 + j, 1, p + 5) for j, p in enumerate(bar)]  # the first bar a fourth higher
    m = M.piece_metrics(score_of(rows))
    assert m["recurring_bar_share"] == pytest.approx(2 / 3) and m["recurrence_distance"] == 2.0
