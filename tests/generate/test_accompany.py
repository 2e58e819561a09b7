"""musicgen accompany: one part kept note for note, the rest written around it."""

import json

import numpy as np
import pytest

from musicgen.config import AccompanyConfig, GenerateConfig
from musicgen.generate.accompany import accompany_songs, kept_part, top_voice
from musicgen.midi.read import read_score
from musicgen.midi.score import NOTE_DTYPE
from tests.helpers import CORPUS, assert_cli_error, assert_ok, run_cli, untrained_model

PIECE = CORPUS / "bwv1.6.mid"


def by_time(notes):
    return np.sort(notes, order=["start", "pitch", "duration", "program"])


@pytest.fixture(scope="module")
def band(tmp_path_factory, pop_song):
    """A dataset of the pop song (drums, bass, piano, lead) and an untrained model of it."""
    import shutil

    from musicgen.config import IngestConfig
    from musicgen.data.ingest import ingest

    src = tmp_path_factory.mktemp("band-src")
    shutil.copy(pop_song.path, src / "band.mid")
    out = tmp_path_factory.mktemp("band") / "ds"
    ingest([src], out, ing_cfg=IngestConfig(workers=1, val_fraction=0.0))
    return out


def test_the_top_voice_is_the_highest_sounding_note_at_each_onset():
    n = np.zeros(4, dtype=NOTE_DTYPE)
    # a held soprano C5 over an alto that moves under it, then the alto alone
    n["start"], n["duration"], n["pitch"] = [0, 0, 1, 2], [2, 1, 1, 1], [72, 64, 65, 67]
    assert top_voice(n).tolist() == [True, False, False, True]


def test_the_top_voice_comes_back_note_for_note(trained, tmp_path):
    out = tmp_path / "acc"
    assert_ok(
        run_cli("accompany", trained["gru"].best, PIECE, "--keep", "top", "-n", "2", "--out", out)
    )
    original = read_score(PIECE)
    kept = original.notes[top_voice(original.notes)]
    for f in sorted(out.glob("*.mid")):
        score = read_score(f)
        mine = score.notes[top_voice(score.notes)]
        written = {tuple(r) for r in score.notes.tolist()}
        assert all(tuple(r) in written for r in kept.tolist())  # every kept note, exactly
        assert score.num_notes > len(kept)  # and parts around it
        side = json.loads(f.with_suffix(".json").read_text())
        assert side["task"]["accompany"]["keep"] == "top"
        assert len(mine) >= 1


def test_a_kept_instrument_is_identical_and_the_model_writes_none_of_it(band, pop_song):
    model = untrained_model("transformer", band, seed=1)
    cfg = GenerateConfig(num_samples=3, seed=2)
    songs, piece, name = accompany_songs(
        model, cfg, AccompanyConfig(str(pop_song.path), "program:81")
    )
    original = piece.score.notes
    lead = original[(original["program"] == 81) & ~original["drum"]]
    assert "81" in name
    for song in songs:
        notes = song.score.notes
        mine = notes[(notes["program"] == 81) & ~notes["drum"]]
        np.testing.assert_array_equal(by_time(mine), by_time(lead))
        assert song.new_notes == len(notes) - len(lead) > 0
        # the tempo and metre are the file's
        assert song.score.tempos == piece.score.tempos


def test_an_instrument_is_chosen_by_place_program_or_name(pop_song):
    score = read_score(pop_song.path)
    lineup = [0, 33, 81, 128]
    for keep, program in [
        ("1", 0),
        ("2", 33),
        ("program:81", 81),
        ("Lead 2 (sawtooth)", 81),
        ("drums", 128),
    ]:
        kept, _, whole = kept_part(score, keep)
        assert whole == program and program in lineup
        chosen = np.where(score.notes["drum"], 128, score.notes["program"])
        assert kept.tolist() == (chosen == program).tolist()


@pytest.mark.parametrize(
    "keep, fragment",
    [
        ("9", "no such instrument"),
        ("kazoo", "no such instrument"),
        ("program:200", "0-127"),
        ("0", "from 1"),
    ],
)
def test_a_part_the_piece_lacks_exits_2_and_writes_nothing(
    trained, pop_song, tmp_path, keep, fragment
):
    out = tmp_path / "none"
    result = run_cli("accompany", trained["gru"].best, pop_song.path, "--keep", keep, "--out", out)
    assert_cli_error(result, fragment)
    assert not out.exists()


def test_keeping_the_only_instrument_leaves_nothing_to_write(trained, tmp_path):
    result = run_cli(
        "accompany", trained["gru"].best, PIECE, "--keep", "1", "--out", tmp_path / "o"
    )
    assert_cli_error(result, "only instrument", "--keep top")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"\x00" * 20)
    assert_cli_error(run_cli("accompany", trained["gru"].best, bad, "--out", tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_with_no_checkpoint_the_shipped_model_accompanies(tmp_path):
    out = tmp_path / "acc"
    assert_ok(run_cli("accompany", PIECE, "--keep", "top", "-n", "1", "--out", out))
    assert read_score(out / "bwv1.6.mid").num_notes > 0


def test_with_one_program_per_piece_the_kept_part_is_heard_on_the_piece_s_program(pop_song):
    """`programs="main"` encodes every pitched note on the piece's most used program, so
    the kept notes are forced in under that one, not the file's own."""
    import dataclasses

    from musicgen.config import EncodingConfig
    from musicgen.generate.accompany import KeptRules, kept_part
    from musicgen.generate.piece import read_piece
    from musicgen.tokens.encoding import programs_of
    from musicgen.tokens.space import DRUMS, token_space
    from musicgen.tokens.vocab import Vocabulary

    cfg = dataclasses.replace(EncodingConfig(), programs="main", time="beats")
    vocab = Vocabulary(cfg, np.arange(token_space(cfg).size))
    piece = read_piece(pop_song.path, vocab)
    main = programs_of(piece.score.notes, cfg)
    lead = int(main[~piece.score.notes["drum"]][0])
    kept, _, _ = kept_part(piece.score, "top")
    rules = KeptRules(piece, kept, piece.line.uids[: piece.line.body], 1)
    played = {note.program for note in rules.kept}
    assert played and played <= {lead, DRUMS}
    assert set(piece.score.notes["program"][kept].tolist()) - {lead}  # the file's are others
