"""The entry guard: each instrument of a line-up that `--prior corpus` draws comes in, and
comes back after a rest, no later than it did in the training piece the line-up was drawn
from (`train` measures when, and how long it rested)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from musicgen.config import GenerateConfig
from musicgen.generate.length import Cue

LINEUP = (0, 33, 81, 128)  # the test band's piano, bass, lead and drums


@pytest.fixture(scope="module")
def band(tmp_path_factory, pop_song):
    """A dataset of the test band's song: piano, bass and drums from the first beat, the
    lead from a sixteenth after bar 8's first beat."""
    from musicgen.config import IngestConfig
    from musicgen.data.ingest import ingest

    src = tmp_path_factory.mktemp("entries-src")
    shutil.copy(pop_song.path, src / "band.mid")
    out = tmp_path_factory.mktemp("entries") / "ds"
    ingest([src], out, ing_cfg=IngestConfig(workers=1, val_fraction=0.0))
    return out


def indifferent(data, entries, rests=None):
    """An untrained gru with every weight zero (only the rules choose), whose corpus is one
    piece of LINEUP with these entries and longest rests (quarters)."""
    from tests.helpers import untrained_model

    model = untrained_model("gru", data)
    with torch.no_grad():
        for p in model.core.parameters():
            p.zero_()
    corpus = {"lineups": [" ".join(map(str, LINEUP))], "entries": [entries], "keys": [0] * 24}
    if rests is not None:
        corpus["rests"] = [rests]
    return replace(model, meta={**model.meta, "corpus": corpus})


def first_onsets(score) -> dict[int, float]:
    """Program (128: drums) -> its first onset, in quarters."""
    n = score.notes
    programs = np.where(n["drum"], 128, n["program"])
    return {int(p): float(n["start"][programs == p].min()) for p in np.unique(programs)}


def longest_rests(score, end: float) -> dict[int, float]:
    """Program (128: drums) -> the longest it rests after its first note: from where its
    notes stop sounding to its next note, or to `end` (quarters)."""
    n = score.notes
    programs = np.where(n["drum"], 128, n["program"])
    rests = {}
    for p in np.unique(programs).tolist():
        mine = np.sort(n[programs == p], order="start")
        until, longest = -np.inf, 0.0
        for start, dur in zip(mine["start"], mine["duration"], strict=True):
            if until > -np.inf:
                longest = max(longest, start - until)
            until = max(until, start + dur)
        rests[p] = max(longest, end - until)
    return rests


def test_train_measures_when_each_instrument_of_a_line_up_comes_in_and_rests(band):
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.measures import corpus_profile

    ds = TokenDataset.open(band)
    profile = corpus_profile(ds.documents("train"), ds.vocab)
    assert profile["lineups"] == ["0 33 81 128"]
    # the lead's first note: bar 8 (32 quarters) and a sixteenth
    assert profile["entries"] == [[0.0, 0.0, 32.25, 0.0]]
    # then: the piano's chords last each beat, the bass a half beat, the lead a quarter
    # beat (a sixteenth after each beat), the drums' hits (a sixteenth) every half beat
    assert profile["rests"] == [[0.0, 0.5, 0.75, 0.25]]
    assert "textures" not in profile  # measured with the controls only


def test_train_keeps_the_texture_of_each_line_up_s_piece_bar_by_bar(band):
    from musicgen.data.controls import BarControls
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.measures import TEXTURE_BARS, corpus_profile

    ds = TokenDataset.open(band)
    docs = ds.documents("train")
    controls = BarControls(docs, ds.vocab.with_controls(), 0.8)
    profile = corpus_profile(docs, ds.vocab, controls)
    (texture,) = profile["textures"]
    assert set(texture) == {"density", "polyphony"}
    density = texture["density"]
    assert 8 < len(density) <= TEXTURE_BARS and set(density) <= set("01234-")
    # the lead comes in at bar 8: every bar from there has more notes than any before
    assert min(density[8:]) > max(density[:8])


@pytest.mark.parametrize(
    "entries",
    [[0.0, 1.0, 1.5, 3.0], [0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 2.0, 0.0]],
    ids=["apart", "all-at-once", "pairs"],
)
def test_each_instrument_comes_in_by_its_entry_and_not_without_the_guard(band, entries):
    """A model with no preference lets instruments wait; with the guard each comes in by
    the time it did in the piece its line-up was drawn from, also where several come in
    at one step (where the notes go by instrument upwards)."""
    from musicgen.generate import generate_songs

    model = indifferent(band, entries)
    cfg = GenerateConfig(unit="bars", length=4, num_samples=16, seed=4, form_bias=0)

    def onsets(guard: bool) -> list[dict[int, float]]:
        songs = generate_songs(model, replace(cfg, entry_guard=guard))[0]
        assert all(s.drawn["instruments"] == LINEUP for s in songs)
        return [first_onsets(s.score) for s in songs]

    due = dict(zip(LINEUP, entries, strict=True))
    late = [
        p for song in onsets(False) for p in LINEUP if song.get(p, float("inf")) > due[p] + 1e-9
    ]
    assert late  # without the guard, some instrument comes in later than it did, or never
    for song in onsets(True):
        assert set(song) == set(LINEUP), song
        assert all(song[p] <= due[p] + 1e-9 for p in LINEUP), song


def test_an_asked_line_up_one_instrument_or_a_model_that_measured_no_entries_is_unguarded(band):
    from musicgen.generate.songs import drawn

    model = indifferent(band, [0.0, 1.0, 1.5, 3.0], [2.0, 0.5, None, 8.0])
    cues = drawn(model, GenerateConfig(num_samples=1))[0].cues
    q = model.vocab.cfg.steps_per_unit
    assert cues == {
        0: Cue(0, 2 * q),
        33: Cue(q, q // 2),
        81: Cue(int(1.5 * q)),
        128: Cue(3 * q, 8 * q),
    }
    assert drawn(model, GenerateConfig(num_samples=1, instruments=(0, 33)))[0].cues is None
    # trained before rests were measured: the entries alone
    before = indifferent(band, [0.0, 1.0, 1.5, 3.0])
    assert all(
        c.rest is None for c in drawn(before, GenerateConfig(num_samples=1))[0].cues.values()
    )
    older = replace(model, meta={**model.meta, "corpus": {"lineups": ["0 33 81 128"]}})
    assert drawn(older, GenerateConfig(num_samples=1))[0] == (LINEUP, None, None, None)
    single = replace(model, meta={**model.meta, "corpus": {"lineups": ["0"], "entries": [[2.0]]}})
    assert drawn(single, GenerateConfig(num_samples=1))[0] == ((0,), None, None, None)  # no band


def test_the_guard_does_not_bring_an_instrument_in_before_it_is_due(band):
    """Entries are read in quarters: instruments due at 3 quarters are not forced in at
    the first steps, so in some songs one still waits past the first quarter."""
    from musicgen.generate import generate_songs

    model = indifferent(band, [3.0, 3.0, 3.0, 3.0])
    cfg = GenerateConfig(unit="bars", length=4, num_samples=16, seed=4, form_bias=0)
    songs = generate_songs(model, cfg)[0]
    onsets = [first_onsets(s.score) for s in songs]
    assert all(max(song.values()) <= 3.0 + 1e-9 for song in onsets)
    assert any(max(song.values()) >= 1.0 for song in onsets)  # some instruments still wait


def test_no_instrument_rests_longer_than_it_did_and_does_without_the_guard(band):
    """Once in, each instrument comes back within the longest rest it took in the piece
    its line-up was drawn from (here a quarter note, the drums half a quarter), to the end
    of the piece; a model with no preference lets some rest far longer without the guard.
    The guard holds time back only: chords keep their notes (an instrument due does not
    shut out the notes of those below it at its step)."""
    from musicgen.generate import generate_songs

    rests = [1.0, 1.0, 1.0, 0.5]
    model = indifferent(band, [0.0, 0.0, 0.0, 0.0], rests)
    cfg = GenerateConfig(unit="bars", length=4, num_samples=16, seed=4, form_bias=0)
    limit = dict(zip(LINEUP, rests, strict=True))

    def overlong(guard: bool) -> list[tuple[int, float]]:
        songs = generate_songs(model, replace(cfg, entry_guard=guard))[0]
        assert all(s.drawn["instruments"] == LINEUP for s in songs)
        chords[guard] = chord_share(songs)
        found = []
        for song in songs:
            rested = longest_rests(song.score, end=16.0)
            # one that never played rested the whole piece
            found += [
                (p, rested.get(p, 16.0)) for p in LINEUP if rested.get(p, 16.0) > limit[p] + 1e-9
            ]
        return found

    chords = {}
    assert overlong(False)
    assert overlong(True) == []
    # an indifferent model's onsets are mostly chords (0.92); when an instrument due shut
    # out the others' notes, 0.74
    assert chords[True] >= 0.95 * chords[False]


def chord_share(songs) -> float:
    """The share of the pitched instruments' onsets (an instrument at a start) that are
    chords."""
    onsets = chords = 0
    for song in songs:
        n = song.score.notes[~song.score.notes["drum"]]
        for p in np.unique(n["program"]):
            _, count = np.unique(n["start"][n["program"] == p], return_counts=True)
            onsets, chords = onsets + len(count), chords + int((count >= 2).sum())
    return chords / onsets


def test_a_rest_runs_to_the_end_of_the_piece_for_an_instrument_that_stops(tmp_path):
    """The bass plays the first bar (half a quarter each beat) and stops; the piano plays
    both bars: the bass's longest rest is from its last note to the piece's end."""
    import mido

    from musicgen.config import IngestConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.ingest import ingest
    from musicgen.data.measures import corpus_profile

    mid = mido.MidiFile(ticks_per_beat=480)
    for channel, program, beats, length in ((0, 0, 8, 480), (1, 33, 4, 240)):
        track = mido.MidiTrack([mido.Message("program_change", program=program, channel=channel)])
        for _ in range(beats):
            track.append(mido.Message("note_on", note=48, velocity=80, channel=channel))
            track.append(mido.Message("note_off", note=48, channel=channel, time=length))
            track.append(mido.Message("note_off", note=0, channel=channel, time=480 - length))
        mid.tracks.append(track)
    src = tmp_path / "src"
    src.mkdir()
    mid.save(src / "stops.mid")
    ingest([src], tmp_path / "ds", ing_cfg=IngestConfig(workers=1, val_fraction=0.0))
    ds = TokenDataset.open(tmp_path / "ds")
    profile = corpus_profile(ds.documents("train"), ds.vocab)
    assert profile["lineups"] == ["0 33"]
    assert profile["entries"] == [[0.0, 0.0]]
    assert profile["rests"] == [[0.0, 8.0 - 3.5]]


def test_a_drawn_texture_is_the_drawn_line_up_s_piece_s_or_none(band):
    """Each song's texture comes from the piece its line-up was drawn from (one without a
    texture gives none, in a batch of its own), and an asked line-up draws none."""
    from musicgen.checkpoint import LoadedModel, dataset_meta
    from musicgen.config import ModelConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.generate import generate_songs
    from musicgen.models.registry import build_core
    from tests.helpers import SEQ_LEN

    vocab = TokenDataset.open(band).vocab.with_controls()
    cfg = ModelConfig(name="gru", vocab_size=len(vocab), max_len=SEQ_LEN, d_model=32, n_layers=1)
    torch.manual_seed(0)
    core = build_core(cfg).eval()
    pieces = {  # line-up -> its piece's texture
        (0, 33): {"density": "40-2", "polyphony": "1111"},
        (81, 128): None,
        (0,): {"density": "2", "polyphony": "3"},
    }
    corpus = {
        "lineups": [" ".join(map(str, u)) for u in pieces],
        "textures": list(pieces.values()),
        "keys": [1] + [0] * 23,
    }
    meta = {**dataset_meta(vocab, band), "corpus": corpus}
    model = LoadedModel(core, cfg, vocab, meta, band)
    songs, _ = generate_songs(model, GenerateConfig(num_samples=12, unit="bars", length=5, seed=4))
    assert {s.drawn["instruments"] for s in songs} == set(pieces)
    for song in songs:
        texture = pieces[song.drawn["instruments"]]
        stream = vocab.stream()
        stream.feed_all(vocab.to_universal(song.ids))
        if texture is None:
            assert "texture" not in song.drawn
            assert all(set(c) == {"key"} for c in stream.asked.values())
            continue
        for bar, controls in stream.asked.items():
            for a, levels in texture.items():
                level = levels[bar] if bar < len(levels) else "-"
                assert controls.get(a) == (None if level == "-" else int(level)), (bar, a)
    asked = GenerateConfig(num_samples=3, unit="bars", length=2, seed=4, instruments=(0,))
    assert all("texture" not in s.drawn for s in generate_songs(model, asked)[0])
