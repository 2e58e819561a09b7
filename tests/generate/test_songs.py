"""Songs from checkpoints: files and sidecars, determinism, length units, primers, errors, grammar."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from musicgen.checkpoint import load_model
from musicgen.config import FORM_BIAS, EncodingConfig
from musicgen.config.generation import KEY_PULL
from musicgen.errors import MusicgenError
from musicgen.generate import GenerateConfig, generate_songs, tokens_to_score
from musicgen.generate.primer import load_primer
from musicgen.midi.read import midi_bytes_to_score, read_score
from musicgen.midi.write import score_to_midi_bytes
from musicgen.tokens.encoding import decode
from musicgen.tokens.mapping import snap_to_vocabulary
from musicgen.tokens.space import BOS, EOS, PAD, token_space
from musicgen.tokens.vocab import Vocabulary
from tests.helpers import (
    MODEL_NAMES,
    SEQ_LEN,
    assert_cli_error,
    assert_ok,
    corpus_files,
    odd_midi,
    run_cli,
    untrained_model,
    write_notes_midi,
)

EPS = 1e-9


@pytest.fixture(scope="module")
def ckpt(trained) -> Path:
    return trained["gru"].best


@pytest.fixture(scope="module")
def gru(ckpt):
    return load_model(ckpt)


def songs_of(model, **settings):
    songs, _ = generate_songs(model, GenerateConfig(**settings))
    return songs


def bar_quarters(score) -> float:
    """Bar length of the metre chosen before any time passed (4/4 if none), as the length target counts."""
    at_start = [s for s in score.time_signatures if s[0] == 0.0]
    _, num, den = at_start[-1] if at_start else (0.0, 4, 4)
    return num * 4.0 / den


# --- files, sidecars, determinism ---------------------------------------------------------------


def test_num_samples_writes_numbered_files_with_sidecars(ckpt, tmp_path):
    out = tmp_path / "song.mid"
    result = run_cli(
        "generate",
        ckpt,
        "--out",
        out,
        "-n",
        3,
        "--notes",
        8,
        "--seed",
        7,
        "-t",
        0.9,
        "--top-p",
        0.9,
        "--top-k",
        20,
    )
    assert_ok(result)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"song-00{i}.{ext}" for i in (1, 2, 3) for ext in ("json", "mid")]
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    for i in (1, 2, 3):
        midi = tmp_path / f"song-00{i}.mid"
        side = json.loads((tmp_path / f"song-00{i}.json").read_text())
        assert side["checkpoint"] == str(ckpt) and side["checkpoint_sha256"] == digest
        assert side["model"] == "gru" and side["sample_index"] == i - 1
        assert side["settings"] == {
            "num_samples": 3,
            "temperature": 0.9,
            "top_k": 20,
            "top_p": 0.9,
            "seed": 7,
            "unit": "notes",
            "length": 8.0,
            "primer": None,
            "primer_bars": None,
            "tempo": None,
            "program": None,
            "instruments": None,
            "repeat_bias": GenerateConfig.repeat_bias,
            "repeat_context": 8,
            "form_bias": FORM_BIAS,  # the default, settled: the model learnt its corpus's form
            # the default, settled: the longest loop of 9 in 10 of its training pieces
            "loop_limit": load_model(ckpt).meta["corpus"]["longest_loop"],
            # and of its silences
            "silence_limit": load_model(ckpt).meta["corpus"]["longest_silence"],
            "entry_guard": True,
            "drawn_texture": True,
            "density": None,  # no controls asked for
            "polyphony": None,
            "register": None,
            "dynamics": None,
            "key": None,
            "key_pull": KEY_PULL,
            "key_move": True,
            "guidance": 0.0,  # settled: nothing was asked, so nothing was guided
            "prior": "corpus",
            "use_cache": True,
        }
        assert side["new_notes"] == side["notes"] == 8
        # BOS, then what the new piece took from the corpus: a key and a texture (its first
        # bar's controls) and a training piece's line-up
        drawn = side["drawn"]
        assert drawn["key"] is not None and drawn["instruments"]
        assert set(drawn["texture"]) == {"density", "polyphony"}
        assert side["primer_tokens"] == 1 + 1 + 2 + len(drawn["instruments"])
        assert read_score(midi).num_notes == 8
        assert f"{midi}: 8 notes" in result.stdout
    # the recorded command reproduces the files byte for byte
    again = tmp_path / "again"
    args = shlex.split(side["regenerate"])[2:]  # drop "musicgen generate"
    args[args.index("--out") + 1] = str(again / "song.mid")
    assert_ok(run_cli("generate", *args))
    for i in (1, 2, 3):
        assert (again / f"song-00{i}.mid").read_bytes() == (
            tmp_path / f"song-00{i}.mid"
        ).read_bytes()


def test_same_seed_same_bytes_other_seed_other_song(ckpt, tmp_path):
    def make(name: str, seed: int) -> bytes:
        assert_ok(run_cli("generate", ckpt, "--out", tmp_path / name, "--bars", 2, "--seed", seed))
        return (tmp_path / name).read_bytes()

    first = make("a.mid", 3)
    assert make("b.mid", 3) == first
    assert make("c.mid", 4) != first


# --- length units ---------------------------------------------------------------------------


def test_notes_gives_exactly_that_many_new_notes(gru):
    for song in songs_of(gru, unit="notes", length=12, num_samples=4, seed=1):
        assert song.new_notes == song.score.num_notes == 12
        assert midi_bytes_to_score(score_to_midi_bytes(song.score)).num_notes == 12


def test_tokens_gives_exactly_that_many_new_tokens(gru):
    for song in songs_of(gru, unit="tokens", length=30, num_samples=4, seed=2):
        assert len(song.ids) - song.primer_tokens == 30
        assert song.ids[0] == BOS


@pytest.mark.parametrize("bars", [1, 2, 3.5])
def test_bars_ends_within_that_many_bars(gru, bars):
    for song in songs_of(gru, unit="bars", length=bars, num_samples=4, seed=3):
        score = song.score
        limit = bars * bar_quarters(score)
        assert score.num_notes > 0
        ends = score.notes["start"] + score.notes["duration"]
        assert ends.max() <= limit + EPS, (ends.max(), limit)  # no note extends past the end
        back = midi_bytes_to_score(score_to_midi_bytes(score))
        assert back.end <= limit + EPS
        # and not short of it: the music reaches into the last bar asked for
        assert ends.max() > limit - bar_quarters(score) + EPS, (ends.max(), limit)


@pytest.mark.parametrize("seconds", [3.0, 7.5])
def test_seconds_gives_at_most_that_duration_and_close_to_it(gru, seconds):
    durations = []
    for song in songs_of(gru, unit="seconds", length=seconds, num_samples=6, seed=4):
        d = song.score.duration_seconds
        assert d <= seconds + 1e-6, d
        back = midi_bytes_to_score(score_to_midi_bytes(song.score))
        assert back.duration_seconds <= seconds + 1e-3  # ticks round to 1/480 quarter
        durations.append(d)
    # the last notes sound up to the cut; a sample may end in a rest, most do not
    assert min(durations) > 0.5 * seconds, durations
    assert np.median(durations) >= seconds - 0.25, durations


def test_seconds_and_bars_through_the_cli(ckpt, tmp_path):
    assert_ok(run_cli("generate", ckpt, "--out", tmp_path / "s.mid", "--seconds", 4, "--seed", 1))
    assert read_score(tmp_path / "s.mid").duration_seconds <= 4.0 + 1e-3
    side = json.loads((tmp_path / "s.json").read_text())
    assert side["settings"]["unit"] == "seconds" and side["seconds"] <= 4.0
    assert_ok(run_cli("generate", ckpt, "--out", tmp_path / "b.mid", "--bars", 1, "--seed", 1))
    score = read_score(tmp_path / "b.mid")
    assert score.end <= bar_quarters(score) + 1e-6
    assert_ok(run_cli("generate", ckpt, "--out", tmp_path / "t.mid", "--tokens", 17, "--seed", 1))
    side = json.loads((tmp_path / "t.json").read_text())
    assert side["tokens"] - side["primer_tokens"] == 17


# --- primers --------------------------------------------------------------------------------


def test_primer_bars_is_continued(gru):
    path = corpus_files()[0]
    bars = read_score(path).bar_lines()
    primer = load_primer(path, gru.vocab, 2)
    expected = tokens_to_score(primer.ids, gru.vocab).notes
    assert 0 < len(expected) < len(read_score(path).notes)
    assert expected["start"].max() < bars[2]  # only the first two bars
    for song in songs_of(
        gru, unit="notes", length=6, num_samples=3, seed=5, primer=str(path), primer_bars=2
    ):
        assert np.array_equal(song.ids[: len(primer.ids)], primer.ids)
        assert song.primer_tokens == len(primer.ids)
        notes = song.score.notes
        assert len(notes) == len(expected) + 6
        assert np.array_equal(notes[: len(expected)], expected)  # starts with the primer's notes
        assert notes["start"][len(expected) :].min() >= expected["start"].max()  # then goes on


def test_cli_primer(ckpt, gru, tmp_path):
    path = corpus_files()[1]
    out = tmp_path / "cont.mid"
    assert_ok(
        run_cli("generate", ckpt, "--primer", path, "--primer-bars", 2, "--notes", 5, "--out", out)
    )
    side = json.loads(out.with_suffix(".json").read_text())
    primer = load_primer(path, gru.vocab, 2)
    assert side["primer_tokens"] == len(primer.ids) and side["primer_unknown_tokens"] == 0
    assert side["new_notes"] == 5
    grid = gru.encoding.steps_per_quarter

    def keys(notes):
        return {
            (round(s * grid), int(p), round(d * grid))
            for s, p, d in zip(notes["start"], notes["pitch"], notes["duration"], strict=True)
        }

    assert keys(tokens_to_score(primer.ids, gru.vocab).notes) <= keys(read_score(out).notes)


def test_a_primer_keeps_what_the_model_can_write(ckpt, gru, tmp_path):
    odd = odd_midi(tmp_path / "odd.mid", gru)
    result = run_cli(
        "generate", ckpt, "--primer", odd.path, "--notes", 3, "--out", tmp_path / "o.mid"
    )
    assert_ok(result)
    # the unknown length, tempo and velocity become the nearest the model knows; the violin note is left out
    assert (
        "primer: 3 values unknown to the model's vocabulary became the nearest it knows"
        in result.stdout
    )
    assert "primer: 1 notes on instruments the model has never seen were left out" in result.stdout
    side = json.loads((tmp_path / "o.json").read_text())
    assert side["primer_unknown_tokens"] == 3 and side["primer_notes_left_out"] == 1
    notes = read_score(tmp_path / "o.mid").notes
    placed = set(zip(notes["start"].tolist(), notes["pitch"].tolist(), strict=True))
    assert {(0.0, 60), (1.0, 64), (2.0, 67)} <= placed and 72 in notes["pitch"]
    assert not (notes["program"] == 40).any()


def test_a_snapped_value_keeps_the_timing_of_the_next_note(gru, tmp_path):
    space = gru.vocab.space
    dur = (
        next(int(v) for v in reversed(space.dur.values) if f"Dur_{v}" not in gru.vocab.index)
        / space.cfg.steps_per_quarter
    )
    path = write_notes_midi(
        tmp_path / "p.mid", [(0.0, dur, 60), (dur, 1.0, 64), (dur + 1.0, 1.0, 67)], velocity=90
    )
    primer = load_primer(path, gru.vocab, None)
    assert primer.unknown == 1 and primer.left_out == 0
    notes = tokens_to_score(primer.ids, gru.vocab).notes
    assert notes["start"].tolist() == [0.0, dur, dur + 1.0] and notes["pitch"].tolist() == [
        60,
        64,
        67,
    ]
    assert notes["duration"][0] != dur  # the nearest length the model knows


def test_snapping_respells_gaps_and_drops_restated_values():
    cfg = EncodingConfig(time="beats")
    space = token_space(cfg)
    inst, prog, tempo = space.inst.id(0), space.prog.id(0), space.tempo.id(5)
    vel_a, vel_b = space.vel.id(10), space.vel.id(11)
    p60, p62, d12 = (
        space.pitch.id_of_value(60),
        space.pitch.id_of_value(62),
        space.dur.id_of_value(12),
    )
    shift = space.shift.id_of_value
    longest = int(space.shift.values[-1])
    # the model knows one loudness and one Shift (a quarter), not the longest Shift
    vocab = Vocabulary(cfg, [BOS, inst, tempo, prog, vel_a, p60, d12, shift(12), EOS])
    primer = [BOS, inst, tempo, prog, vel_a, p60, d12, shift(longest), shift(6), vel_b, p62, d12]
    ids, changed = snap_to_vocabulary(np.array(primer), vocab)
    # Vel_11 becomes Vel_10, which the instrument already has: left out; the long gap is one
    # quarter Shift now (the nearest the model has)
    assert ids.tolist() == [BOS, inst, tempo, prog, vel_a, p60, d12, shift(12), p62, d12]
    assert changed == 2
    stream = vocab.stream()
    for uid in ids.tolist():
        assert stream.allows(uid)
        stream.feed(uid)
    assert not stream.stats

    with_longest = Vocabulary(cfg, [BOS, inst, prog, vel_a, p60, d12, shift(12), shift(longest)])
    gap = [BOS, inst, prog, vel_a, p60, d12, shift(5), p62, d12]
    long_gap = [shift(longest), shift(longest), shift(11)]
    ids, _ = snap_to_vocabulary(np.array(gap[:6] + long_gap + gap[7:]), with_longest)
    assert ids.tolist()[6:9] == [
        shift(longest),
        shift(longest),
        shift(12),
    ]  # as the encoder spells it


def test_a_value_left_out_inside_a_rest_joins_the_gaps_around_it():
    cfg = EncodingConfig(time="beats")
    space = token_space(cfg)
    inst, prog, vel = space.inst.id(0), space.prog.id(0), space.vel.id(10)
    p60, d12, shift6 = (
        space.pitch.id_of_value(60),
        space.dur.id_of_value(12),
        space.shift.id_of_value(6),
    )
    tempo_a, tempo_b = space.tempo.id(5), space.tempo.id(6)
    shift12 = space.shift.id_of_value(12)
    vocab = Vocabulary(cfg, [BOS, inst, tempo_a, prog, vel, p60, d12, shift6, shift12])
    # a tempo change in a rest, which the model can only write as the tempo in force: left
    # out, and the rests on either side of it become one
    primer = [BOS, inst, tempo_a, prog, vel, p60, d12, shift6, tempo_b, shift6, p60, d12]
    ids, changed = snap_to_vocabulary(np.array(primer), vocab)
    assert ids.tolist() == [BOS, inst, tempo_a, prog, vel, p60, d12, shift12, p60, d12]
    assert changed == 2


def test_a_primer_on_instruments_the_model_never_saw_is_refused(gru, tmp_path):
    path = write_notes_midi(tmp_path / "v.mid", [(0.0, 1.0, 60), (1.0, 1.0, 64)], program=40)
    with pytest.raises(
        MusicgenError,
        match="no notes the model's encoding keeps .on instruments or keys the model has never seen",
    ):
        load_primer(path, gru.vocab, None)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--temperature", "-1"], "temperature"),
        (["--top-p", "0"], "top_p"),
        (["--top-p", "1.5"], "top_p"),
        (["--top-k", "-3"], "top_k"),
        (["--bars", "2", "--notes", "3"], "give one length"),
        (["--tempo", "0"], "tempo"),
        (["--primer", "missing.mid"], "does not exist"),
        (["--primer-bars", "2"], "--primer-bars needs --primer"),
        (["--device", "no-such-device"], "device"),
    ],
)
def test_bad_settings_exit_2_in_one_line(ckpt, tmp_path, args, fragment):
    assert_cli_error(run_cli("generate", ckpt, "--out", tmp_path / "x.mid", *args), fragment)
    assert not (tmp_path / "x.mid").exists()


def test_bad_files_exit_2_in_one_line(trained, tmp_path):
    out = ["--out", tmp_path / "x.mid"]
    assert_cli_error(run_cli("generate", tmp_path / "missing.ckpt", *out), "no checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "global_step": 3}, foreign)
    assert_cli_error(run_cli("generate", foreign, *out), "not a musicgen checkpoint")
    text = tmp_path / "notes.mid"
    text.write_text("these are not MIDI bytes\n")
    assert_cli_error(
        run_cli("generate", trained["gru"].best, "--primer", text, *out), "not a MIDI file"
    )
    other = tmp_path / "primer.txt"
    other.write_text("C D E F G")
    assert_cli_error(
        run_cli("generate", trained["gru"].best, "--primer", other, *out), "unsupported file type"
    )
    assert not (tmp_path / "x.mid").exists()


# --- decoding paths and grammar -------------------------------------------------------------


def test_no_cache_gives_the_same_greedy_song(ckpt, gru, tmp_path):
    n = SEQ_LEN - 4  # inside the training context, where the two paths must agree
    cached = songs_of(gru, unit="tokens", length=n, temperature=0.0)[0]
    full = songs_of(gru, unit="tokens", length=n, temperature=0.0, use_cache=False)[0]
    assert np.array_equal(cached.ids, full.ids)
    assert cached.score.num_notes > 0
    common = ["--tokens", n, "--temperature", 0]
    assert_ok(run_cli("generate", ckpt, "--out", tmp_path / "a.mid", *common))
    assert_ok(run_cli("generate", ckpt, "--out", tmp_path / "b.mid", *common, "--no-cache"))
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert json.loads((tmp_path / "b.json").read_text())["settings"]["use_cache"] is False


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_untrained_models_still_write_grammatical_music(dataset, name):
    model = untrained_model(name, dataset, seed=1)
    fam = model.vocab.families
    songs = songs_of(model, unit="tokens", length=200, num_samples=32, top_p=1.0, seed=0)
    assert len(songs) == 32
    for song in songs:
        ids = song.ids
        assert len(ids) == 201 and ids[0] == BOS
        assert not np.isin(ids[1:], [PAD, BOS, EOS]).any()
        f = fam[ids]
        prev, nxt = f[:-1], f[1:]
        assert ((nxt == "dur") <= (prev == "pitch")).all(), "a Dur without its Pitch"
        assert ((prev == "pitch") <= (nxt == "dur")).all(), "a Pitch without its Dur"
        assert ((prev == "vel") <= (nxt == "pitch")).all()
        assert ((prev == "prog") <= ((nxt == "vel") | (nxt == "pitch"))).all()
        score, stats = decode(model.vocab.to_universal(ids), model.encoding)
        assert stats["duration_without_pitch"] == 0
        assert stats["pitch_without_duration"] == int(
            f[-1] == "pitch"
        )  # only a note cut off by the length
        assert score.num_notes == song.score.num_notes == int((f == "dur").sum())
        back = midi_bytes_to_score(score_to_midi_bytes(song.score))
        assert back.num_notes == song.score.num_notes


def test_out_without_a_midi_suffix_gets_one_and_negative_seed_is_refused(trained, tmp_path):
    ckpt = str(trained["gru"].best)
    result = run_cli("generate", ckpt, "--out", str(tmp_path / "song"), "--notes", "5")
    assert_ok(result)
    assert (tmp_path / "song.mid").exists() and (tmp_path / "song.json").exists()
    bad = run_cli("generate", ckpt, "--out", str(tmp_path / "x.mid"), "--seed", "-1")
    assert bad.exit_code == 2 and "Traceback" not in bad.output


# --- a band: the line-up -------------------------------------------------------------------


@pytest.fixture(scope="module")
def band(tmp_path_factory, pop_song, performed_chorale):
    """A dataset of multi-track songs (piano, bass, lead, drums) and a violin part."""
    import shutil

    from musicgen.config import IngestConfig
    from musicgen.data.ingest import ingest

    src = tmp_path_factory.mktemp("band-src")
    for k in range(3):
        shutil.copy(pop_song.path, src / f"band{k}.mid")
    write_notes_midi(
        src / "violin.mid", [(k * 0.5, 0.5, 60 + k % 12) for k in range(64)], program=40
    )
    out = tmp_path_factory.mktemp("band") / "ds"
    ingest([src], out, ing_cfg=IngestConfig(workers=1, val_fraction=0.0))
    return out


def instruments_of(score) -> set[int]:
    return {
        128 if d else int(p)
        for p, d in zip(score.notes["program"].tolist(), score.notes["drum"].tolist(), strict=True)
    }


def test_a_song_plays_only_its_declared_line_up(band):
    model = untrained_model("gru", band, seed=3)
    for song in songs_of(model, unit="tokens", length=300, num_samples=16, top_p=1.0, seed=2):
        header = {
            int(model.vocab.space.value[u])
            for u in model.vocab.to_universal(song.ids)
            if model.vocab.space.inst.contains(u)
        }
        assert header and instruments_of(song.score) <= header


def test_instruments_choose_the_line_up(band, tmp_path):
    model = untrained_model("transformer", band, seed=4)
    cfg = dict(unit="notes", length=40, num_samples=6, top_p=1.0, seed=5)
    for song in songs_of(model, instruments=(0, 128), **cfg):
        assert instruments_of(song.score) <= {0, 128} and len(song.score.notes) == 40
        assert [model.vocab.tokens[t] for t in song.ids[:3]] == [
            "BOS",
            "Inst_0",
            "Inst_drums",
        ]  # nothing added to it
    path = tmp_path / "m"
    ckpt = _save(model, tmp_path / "band.ckpt")  # the CLI takes a file
    result = run_cli(
        "generate", ckpt, "--out", path, "--instruments", "33,drums", "--notes", 10, "--seed", 1
    )
    assert_ok(result)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["settings"]["instruments"] == [33, 128]
    assert "--instruments 33,drums" in side["regenerate"]
    assert instruments_of(read_score(path.with_suffix(".mid"))) <= {33, 128}
    line = assert_cli_error(
        run_cli("generate", ckpt, "--out", path, "--instruments", "25"), "never saw instrument 25"
    )
    assert "it knows 0, 33, 40, 81, drums" in line
    assert_cli_error(
        run_cli("generate", ckpt, "--out", path, "--instruments", "guitar"),
        "not a General MIDI program",
    )


def _save(model, path: Path) -> Path:
    """A checkpoint file of an in-memory model, as `musicgen train` writes one."""
    from musicgen.config import TrainConfig, to_dict

    torch.save(
        {
            "state_dict": {f"core.{k}": v for k, v in model.core.state_dict().items()},
            "musicgen": {
                **model.meta,
                "model": to_dict(model.model_cfg),
                "train": to_dict(TrainConfig()),
            },
        },
        path,
    )
    return path


def test_metrics_train_check_reads_a_dataset_with_drums(band, tmp_path):
    """It once parsed token strings and crashed on 'Prog_drums'; it reads through the interpreter now."""
    from musicgen.listen import metrics as M

    names, seqs = M.dataset_pitch_sequences(band, None)
    assert len(names) == 4 and all(len(s) for s in seqs)
    song = write_notes_midi(tmp_path / "s.mid", [(k, 1.0, 60 + k) for k in range(12)])
    result = run_cli("metrics", song, "--train", band, "--json")
    assert_ok(result)
    assert json.loads(result.stdout)["train"]["pieces"] == 4
