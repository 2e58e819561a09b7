"""musicgen infill: a span written again between what comes before and after it."""

import json

import numpy as np
import pytest

from musicgen.checkpoint import load_model
from musicgen.config import GenerateConfig, InfillConfig
from musicgen.generate.infill import infill_songs, span_of
from musicgen.generate.piece import read_piece
from musicgen.midi.read import read_score
from tests.helpers import CORPUS, assert_cli_error, assert_ok, run_cli, train_tiny

PIECE = CORPUS / "bwv1.6.mid"


@pytest.fixture(scope="module")
def filler(tmp_path_factory, dataset):
    """A tiny transformer trained with half its windows rearranged for infilling."""
    out = tmp_path_factory.mktemp("filler")
    return train_tiny(dataset, out, "transformer", infill=0.5).best


def notes_outside(score, a, b):
    n = score.notes
    return np.sort(n[(n["start"] < a) | (n["start"] >= b)], order=["start", "pitch"])


def test_infill_keeps_everything_outside_the_span_and_writes_inside_it(filler, tmp_path):
    out = tmp_path / "takes"
    result = run_cli("infill", filler, PIECE, "--bars", "3-4", "-n", "3", "--out", out)
    assert_ok(result)
    original = read_score(PIECE)
    lines = original.bar_lines()
    a, b = lines[2], lines[4]
    files = sorted(out.glob("*.mid"))
    assert [f.name for f in files] == [f"bwv1.6-00{k}.mid" for k in (1, 2, 3)]
    takes = []
    for f in files:
        score = read_score(f)
        np.testing.assert_array_equal(notes_outside(score, a, b), notes_outside(original, a, b))
        inside = score.notes[(score.notes["start"] >= a) & (score.notes["start"] < b)]
        takes.append(inside)
        side = json.loads(f.with_suffix(".json").read_text())
        assert side["task"]["infill"]["start"] == 3 and side["task"]["infill"]["end"] == 4
        assert side["regenerate"].startswith("musicgen infill ")
        assert "--candidates 8" in side["regenerate"]
        assert side["settings"]["form_bias"] == 0.0  # a passage takes no pull towards form
    assert any(len(t) for t in takes)
    assert not all(np.array_equal(takes[0], t) for t in takes[1:])  # -n gives versions


def test_the_middle_never_holds_a_seam_and_ends_where_the_after_part_begins(filler):
    model = load_model(filler)
    task = InfillConfig(str(PIECE), "bars", 2, 5)
    songs, piece, span = infill_songs(model, GenerateConfig(num_samples=4, seed=3), task)
    vocab = model.vocab
    fa, fm, fe = (vocab.fill_id(s) for s in ("after", "middle", "end"))
    before, _, _ = piece.line.parts(piece.line.cut(span.start), piece.line.cut(span.end))
    for song in songs:
        assert fa not in song.ids and fm not in song.ids
        assert song.ids[-1] == fe and list(song.ids).count(fe) == 1
        stream = vocab.stream()
        stream.feed_all(before)
        stream.begin_passage()
        notes = stream.feed_all(vocab.to_universal(song.ids[:-1]))
        assert not stream.stats, stream.stats  # grammatical
        assert stream.step == span.end
        assert all(span.start <= n.step < span.end for n in notes)
        assert song.new_notes == len(notes)


def test_the_same_seed_gives_the_same_bytes(filler, tmp_path):
    def take(name, seed):
        out = tmp_path / name
        assert_ok(
            run_cli(
                "infill", filler, PIECE, "--bars", "2-3", "-n", "1", "--seed", seed, "--out", out
            )
        )
        return (out / "bwv1.6.mid").read_bytes(), json.loads((out / "bwv1.6.json").read_text())

    (a, side_a), (b, side_b), (c, _) = take("a", 5), take("b", 5), take("c", 6)
    assert a == b and a != c
    assert side_a["checkpoint_sha256"] == side_b["checkpoint_sha256"]
    assert side_a["settings"]["seed"] == 5


def test_each_version_is_one_of_its_candidates_drawn_by_the_after_part(filler, monkeypatch):
    from musicgen.generate.infill import _context, after_bits, choose, fill_middles

    model = load_model(filler)
    piece = read_piece(PIECE, model.vocab)
    span = span_of(piece, InfillConfig(str(PIECE), "bars", 3, 4))
    line = piece.line
    every, _, _ = fill_middles(
        model, GenerateConfig(num_samples=6, seed=2), line, span.start, span.end
    )
    kept, _, _ = fill_middles(
        model, GenerateConfig(num_samples=2, seed=2), line, span.start, span.end, candidates=3
    )
    # version b is one of candidates 3b .. 3b+2: the same draws, then one kept per group
    ctx = _context(line, span.start, span.end, model.model_cfg.max_len)
    bits = after_bits(model, ctx, [m[:-1] for m in every])
    for b, middle in enumerate(kept):
        picked = choose(bits, 3, 2)[b]
        assert 3 * b <= picked < 3 * b + 3 and np.array_equal(middle, every[picked])
    # the command's task passes its candidates on
    task = InfillConfig(str(PIECE), "bars", 3, 4, candidates=3)
    songs, _, _ = infill_songs(model, GenerateConfig(num_samples=2, seed=2), task)
    assert all(np.array_equal(s.ids, m) for s, m in zip(songs, kept, strict=True))
    # scored a few rows at a time, the same bits
    import musicgen.generate.infill as infill_module

    monkeypatch.setattr(infill_module, "SCORED_AT_ONCE", 4)
    np.testing.assert_allclose(after_bits(model, ctx, [m[:-1] for m in every]), bits, rtol=1e-5)
    # the bits are those of the after-part read straight after a middle and as much of the
    # music before it as the window still holds
    import torch

    vocab = model.vocab
    after = vocab.lookup[ctx.near_after]
    near = vocab.lookup[ctx.near_before]
    assert max(len(m) for m in every) > ctx.length - len(after)  # some leave no room before
    for k, middle in enumerate(every):
        room = max(ctx.length - len(after) - len(middle[:-1]), 0)
        row = np.concatenate([near[len(near) - min(room, len(near)) :], middle[:-1], after])
        with torch.no_grad():
            logp = torch.log_softmax(model.core(torch.from_numpy(row[None]))[0][0].float(), -1)
        start = len(row) - len(after)
        expected = -sum(logp[i - 1, row[i]].item() for i in range(start, len(row))) / np.log(2)
        assert bits[k] == pytest.approx(expected, rel=1e-4)


def test_choose_draws_in_proportion_to_how_likely_the_after_part_is():
    bits = np.array([40.0, 0.0, 40.0, 3.0, 3.0, 3.0])  # two groups of three
    picks = [choose_one for seed in range(200) for choose_one in _choose(bits, seed)]
    first, second = picks[0::2], picks[1::2]
    assert set(first) == {1}  # 40 bits against 0: the likely one, always
    assert set(second) == {3, 4, 5}  # equally likely: each of them
    assert _choose(bits, 7) == _choose(bits, 7)


def _choose(bits, seed):
    from musicgen.generate.infill import choose

    return choose(bits, 3, seed)


def test_candidates_are_recorded_and_checked(filler, tmp_path):
    out = tmp_path / "k"
    assert_ok(
        run_cli(
            "infill", filler, PIECE, "--bars", "2-3", "-n", "1", "--candidates", "2", "--out", out
        )
    )
    side = json.loads((out / "bwv1.6.json").read_text())
    assert side["task"]["infill"]["candidates"] == 2 and "--candidates 2" in side["regenerate"]
    assert_cli_error(
        run_cli(
            "infill", filler, PIECE, "--bars", "2-3", "--candidates", "0", "--out", tmp_path / "z"
        ),
        "candidates",
    )
    assert not (tmp_path / "z").exists()


def test_seconds_spans_the_same_music_as_its_bars(filler):
    model = load_model(filler)
    piece = read_piece(PIECE, model.vocab)
    lines = piece.score.bar_lines()
    seconds = piece.score.quarters_to_seconds(np.array([lines[2], lines[4]]))
    by_bars = span_of(piece, InfillConfig(str(PIECE), "bars", 3, 4))
    by_seconds = span_of(piece, InfillConfig(str(PIECE), "seconds", *seconds.tolist()))
    assert (by_bars.start, by_bars.end) == (by_seconds.start, by_seconds.end)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--bars", "40-44"], "outside the piece"),
        (["--bars", "5-3"], "empty"),
        (["--bars", "nine"], "FIRST-LAST"),
        (["--seconds", "9-9"], "empty"),
        (["--seconds", "900-910"], "outside the piece"),
        (["--bars", "1-2", "--seconds", "1-2"], "--bars FIRST-LAST or --seconds"),
        ([], "--bars FIRST-LAST or --seconds"),
    ],
)
def test_a_bad_span_exits_2_in_one_line_and_writes_nothing(filler, tmp_path, args, fragment):
    out = tmp_path / "none"
    assert_cli_error(run_cli("infill", filler, PIECE, *args, "--out", out), fragment)
    assert not out.exists()


def test_a_span_to_the_end_of_the_piece_is_refused(filler, tmp_path):
    bars = len(read_score(PIECE).bar_lines())
    result = run_cli(
        "infill", filler, PIECE, "--bars", f"{bars - 1}-{bars}", "--out", tmp_path / "x"
    )
    assert_cli_error(result, "reaches the end of the piece")


def test_a_file_that_cannot_be_read_exits_2(filler, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd not really")
    assert_cli_error(run_cli("infill", filler, bad, "--bars", "1-2", "--out", tmp_path / "o"))
    assert_cli_error(
        run_cli("infill", filler, tmp_path / "missing.mid", "--bars", "1-2"), "does not exist"
    )
    assert not (tmp_path / "o").exists()


def test_a_model_not_trained_to_fill_says_so(trained, tmp_path):
    result = run_cli("infill", trained["gru"].best, PIECE, "--bars", "2-3", "--out", tmp_path / "o")
    assert_cli_error(result, "not trained for infilling", "--infill")
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def played(tmp_path_factory, performed_chorale):
    """An untrained transformer that can fill, on a dataset of played music (seconds mode)."""
    import torch

    from musicgen.checkpoint import LoadedModel, dataset_meta
    from musicgen.config import IngestConfig, ModelConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.ingest import ingest
    from musicgen.models.registry import build_core

    src = tmp_path_factory.mktemp("played-src")
    (src / "p.mid").write_bytes(performed_chorale.path.read_bytes())
    data = tmp_path_factory.mktemp("played") / "ds"
    ingest([src], data, ing_cfg=IngestConfig(workers=1, val_fraction=0.0))
    vocab = TokenDataset.open(data).vocab.with_fill()
    assert vocab.cfg.time == "seconds"
    cfg = ModelConfig(
        name="transformer", vocab_size=len(vocab), d_model=32, n_layers=1, n_heads=4, max_len=256
    )
    torch.manual_seed(0)
    core = build_core(cfg).eval()
    return LoadedModel(core, cfg, vocab, dataset_meta(vocab, data), data / "untrained")


def test_played_music_in_seconds_keeps_every_note_outside_the_span(played, performed_chorale):
    """Seconds mode (10 ms steps, the file's tempo map): a span in seconds, the rest as played."""
    model, vocab = played, played.vocab
    task = InfillConfig(str(performed_chorale.path), "seconds", 6.0, 10.0)
    songs, piece, span = infill_songs(model, GenerateConfig(num_samples=2, seed=1), task)
    original = piece.score
    a, b = piece.quarters_at_seconds([6.0, 10.0])
    half = 0.5 / vocab.cfg.steps_per_second * 2  # half a step, in quarters at the file's 120 bpm
    for song in songs:
        n, o = song.score.notes, original.notes
        keep = lambda x: x[(x["start"] < a - half) | (x["start"] >= b - half)]  # noqa: E731
        np.testing.assert_array_equal(
            np.sort(keep(n), order=["start", "pitch"]), np.sort(keep(o), order=["start", "pitch"])
        )
        new = n[(n["start"] >= a - half) & (n["start"] < b - half)]
        assert len(new) == song.new_notes
        seconds = original.quarters_to_seconds(new["start"])
        assert ((seconds >= 6.0 - 0.01) & (seconds < 10.0)).all()


def test_played_music_is_accompanied_around_its_top_voice(played, performed_chorale):
    from musicgen.config import AccompanyConfig
    from musicgen.generate.accompany import accompany_songs, top_voice

    songs, piece, _ = accompany_songs(
        played, GenerateConfig(num_samples=2, seed=4), AccompanyConfig(str(performed_chorale.path))
    )
    kept = piece.score.notes[top_voice(piece.score.notes)]
    end = piece.score.duration_seconds
    for song in songs:
        written = {tuple(r) for r in song.score.notes.tolist()}
        assert {tuple(r) for r in kept.tolist()} <= written
        assert song.new_notes == song.score.num_notes - len(kept) > 0
        # the parts around it are in the piece's time: none starts after its last onset
        starts = piece.score.quarters_to_seconds(song.score.notes["start"])
        assert starts.max() <= end + 0.01


def test_a_span_from_bar_one_keeps_the_line_up(filler):
    model = load_model(filler)
    task = InfillConfig(str(PIECE), "bars", 1, 2)
    songs, piece, span = infill_songs(model, GenerateConfig(num_samples=4, seed=9), task)
    assert span.start == 0
    inst = model.vocab.space.inst
    for song in songs:
        assert not inst.contains(model.vocab.to_universal(song.ids)).any()


def test_the_clock_skips_a_shortened_silence_as_the_encoder_does(dataset, tmp_path):
    """40 quarters of rest are cut to whole bars under the cap: times after it map back
    exactly, and a time inside it lands no later than the music after it."""
    from musicgen.data.dataset import TokenDataset
    from tests.helpers import write_notes_midi

    notes = [(q, 1.0, 60 + q) for q in range(4)] + [(44.0 + q, 1.0, 67 - q) for q in range(8)]
    path = write_notes_midi(tmp_path / "rest.mid", notes)
    vocab = TokenDataset.open(dataset).vocab
    piece = read_piece(path, vocab)
    assert piece.cut[:, 1].any(), "the fixture should hold a silence the encoder shortens"
    after = piece.steps_of([44.0, 45.0])
    np.testing.assert_allclose(piece.quarters_of(after), [44.0, 45.0])
    inside = piece.steps_of([20.0, 43.0])
    assert (inside <= after[0]).all() and inside[0] >= piece.steps_of([3.0])[0]


def test_with_no_checkpoint_the_shipped_model_fills(tmp_path):
    out = tmp_path / "takes"
    result = run_cli("infill", PIECE, "--bars", "2-3", "-n", "1", "--out", out)
    assert_ok(result)
    assert "using the pretrained default" in result.output
    assert (out / "bwv1.6.mid").exists() and (out / "bwv1.6.json").exists()
    assert_cli_error(run_cli("infill", "--bars", "2-3"), "[CHECKPOINT] FILE")
