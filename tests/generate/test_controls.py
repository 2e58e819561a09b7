"""Generation steered by controls: the plan forced at each bar, nothing else, one-line
errors for what cannot be asked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from musicgen.checkpoint import LoadedModel, dataset_meta, load_model
from musicgen.config import GenerateConfig, ModelConfig
from musicgen.data.dataset import TokenDataset
from musicgen.generate import generate_songs
from musicgen.models.registry import build_core
from tests.helpers import SEQ_LEN, assert_cli_error, assert_ok, run_cli


@pytest.fixture(scope="module")
def steerable(dataset) -> LoadedModel:
    """An untrained GRU whose vocabulary has the control tokens."""
    vocab = TokenDataset.open(dataset).vocab.with_controls()
    cfg = ModelConfig(name="gru", vocab_size=len(vocab), max_len=SEQ_LEN, d_model=32, n_layers=1)
    torch.manual_seed(0)
    return LoadedModel(build_core(cfg).eval(), cfg, vocab, dataset_meta(vocab, dataset), dataset)


def asked(model, ids) -> dict[int, dict[str, int]]:
    """Read back through a stream: the controls each bar was given."""
    stream = model.vocab.stream()
    stream.feed_all(model.vocab.to_universal(ids))
    return stream.asked


def test_the_plan_is_forced_at_every_bar_and_the_last_level_holds(steerable):
    cfg = GenerateConfig(
        unit="bars", length=6, num_samples=3, seed=2, density=(1, 2, 5), key="D minor"
    )
    songs, _ = generate_songs(steerable, cfg)
    for song in songs:
        got = asked(steerable, song.ids)
        bars = sorted(got)
        assert bars[0] == 0 and len(bars) >= 3
        for bar in bars:  # every bar the stream entered, with what the plan says of it
            assert got[bar] == {"key": 2 + 12, "density": [0, 1, 4][min(bar, 2)]}


def test_guidance_steers_only_when_a_control_is_asked(steerable):
    # the decoder's own tests check the arithmetic; here: what a song asks reaches it
    plan = dict(unit="bars", length=4, num_samples=3, seed=4, density=(1, 5), key="E minor")
    plain = generate_songs(steerable, GenerateConfig(**plan, guidance=0.0))[0]
    guided = generate_songs(steerable, GenerateConfig(**plan))[0]  # GUIDANCE by default
    assert any(not np.array_equal(a.ids, b.ids) for a, b in zip(plain, guided, strict=True))
    for song in guided:  # the plan is still forced, bar by bar
        got = asked(steerable, song.ids)
        assert got and all(
            c == {"key": 4 + 12, "density": [0, 4][min(b, 1)]} for b, c in got.items()
        )
    # nothing asked; a key drawn from the corpus, which is a hint and not guided
    from dataclasses import replace

    keys = [0] * 24
    keys[2 + 12] = 5  # D minor, the corpus's only key
    model = replace(steerable, meta={**steerable.meta, "corpus": {"lineups": [], "keys": keys}})
    for prior in ("model", "corpus"):
        free = dict(unit="bars", length=4, num_samples=3, seed=4, prior=prior)
        a = generate_songs(model, GenerateConfig(**free, guidance=0.0))[0]
        b = generate_songs(model, GenerateConfig(**free, guidance=3.0))[0]
        assert all(np.array_equal(x.ids, y.ids) for x, y in zip(a, b, strict=True))
    assert all(s.drawn["key"] == "D minor" for s in b)


def test_guidance_guides_on_the_asked_attributes_and_an_asked_key_only():
    from musicgen.generate.controls import ControlPlan

    class Vocab:  # compact ids: bar control (a, level) at 5a + level, key k at 100 + k
        def __len__(self):
            return 130

        def ctrl_id(self, a, level):
            return ["density", "polyphony", "register", "dynamics"].index(a) * 5 + level

        def key_id(self, k):
            return 100 + k

    plan = ControlPlan(key=3, levels={"register": (1, 2)})
    got = np.flatnonzero(plan.guided(Vocab()))
    assert got.tolist() == [*range(10, 15), *range(100, 124)]
    got = np.flatnonzero(plan.drawn_key().guided(Vocab()))
    assert got.tolist() == list(range(10, 15))


def pitch_classes(score) -> np.ndarray:
    notes = score.notes[~score.notes["drum"]]
    return notes["pitch"].astype(int) % 12


def test_an_asked_key_pulls_every_pitch_towards_it(steerable):
    # an untrained model ignores its Key token: the pull alone decides
    key = dict(unit="bars", length=4, num_samples=4, seed=5, key="D minor")
    loose = [
        pitch_classes(s.score)
        for s in generate_songs(steerable, GenerateConfig(**key, key_pull=0))[0]
    ]
    tight = [
        pitch_classes(s.score)
        for s in generate_songs(steerable, GenerateConfig(**key, key_pull=60))[0]
    ]
    assert len(np.unique(np.concatenate(loose))) > 3
    # a pull this strong leaves the tonic alone (the next rating, A's, is e^-10 times as likely)
    assert np.concatenate(tight).size and set(np.concatenate(tight).tolist()) == {2}


def test_a_key_drawn_from_the_corpus_pulls_no_more_than_a_hint(steerable):
    """--prior corpus draws the key (here always D minor); it pulls at most
    DRAWN_KEY_PULL, so even --key-pull 60 leaves the melody its other pitch classes,
    where the same pull on an asked key leaves only the tonic (the test above)."""
    from dataclasses import replace

    from musicgen.config.generation import DRAWN_KEY_PULL

    keys = [0] * 24
    keys[2 + 12] = 5  # D minor, the corpus's only key
    model = replace(steerable, meta={**steerable.meta, "corpus": {"lineups": [], "keys": keys}})
    cfg = GenerateConfig(unit="bars", length=4, num_samples=4, seed=5, key_pull=60)
    songs, _ = generate_songs(model, cfg)
    assert all(s.drawn["key"] == "D minor" for s in songs)
    assert DRAWN_KEY_PULL < 60
    assert len(np.unique(np.concatenate([pitch_classes(s.score) for s in songs]))) > 3


C_MAJOR = [(q, 1, p) for q, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])]


def test_a_piece_in_the_mode_asked_is_moved_to_the_tonic_asked_the_nearer_way():
    from musicgen.analysis.key import estimate_key
    from musicgen.config.controls import parse_key
    from musicgen.generate.controls import landing_shift
    from tests.helpers import score_of

    score = score_of(C_MAJOR)
    assert estimate_key(score) == parse_key("C major")
    assert landing_shift(score, parse_key("G major")) == -5  # down a fourth, not up a fifth
    assert landing_shift(score, parse_key("F# major")) == -6
    assert landing_shift(score, parse_key("E major")) == 4
    assert landing_shift(score, parse_key("C major")) == 0  # there already
    assert landing_shift(score, parse_key("A minor")) == 0  # moving cannot change the mode
    moved = score.transposed(-5)
    assert estimate_key(moved) == parse_key("G major")
    # near the bottom of MIDI's range, the other way round
    low = score_of([(q, d, p - 60) for q, d, p in C_MAJOR])  # 0 .. 12
    assert landing_shift(low, parse_key("G major")) == 7
    assert landing_shift(score_of([]), parse_key("G major")) == 0  # nothing pitched


def test_drums_stay_on_their_keys_when_a_piece_moves():
    from tests.helpers import score_of

    score = score_of([(0, 1, 60), (0, 1, 36)])
    score.notes["drum"][1] = True
    moved = score.transposed(3)
    assert moved.notes["pitch"].tolist() == [63, 36]
    assert score.notes["pitch"].tolist() == [60, 36]  # a copy: the score is as it was
    with pytest.raises(ValueError, match="past MIDI's 0 .. 127"):
        score.transposed(68)


def test_an_asked_key_lands_where_the_mode_came_out_as_asked(steerable, tmp_path):
    """A new piece in the mode asked but on another tonic is moved into the key asked;
    --no-key-move keeps the same draw where the model put it."""
    from musicgen.analysis.key import estimate_key
    from musicgen.config.controls import parse_key
    from musicgen.generate import write_songs

    # no pull: the untrained model's pieces land on any tonic
    cfg = GenerateConfig(unit="bars", length=4, num_samples=8, seed=5, key="D major", key_pull=0)
    songs = generate_songs(steerable, cfg)[0]
    kept = generate_songs(steerable, GenerateConfig(**{**vars(cfg), "key_move": False}))[0]
    majors = 0
    for song, raw in zip(songs, kept, strict=True):
        assert raw.moved == 0 and -6 <= song.moved <= 5
        drum = raw.score.notes["drum"]
        moved = song.score.notes["pitch"] - raw.score.notes["pitch"]
        assert (moved[~drum] == song.moved).all() and not moved[drum].any()
        assert song.score.notes["start"].tolist() == raw.score.notes["start"].tolist()
        landed = estimate_key(raw.score)
        if landed is not None and landed // 12 == 0:  # came out major: now in D major
            assert estimate_key(song.score) == parse_key("D major")
            majors += landed != parse_key("D major")
    assert majors and sum(s.moved != 0 for s in songs) == majors  # the only ones moved
    paths = write_songs(songs, tmp_path / "s.mid", steerable, cfg, None)
    sides = [json.loads(p.with_suffix(".json").read_text()) for p in paths]
    assert [s.get("moved_semitones", 0) for s in sides] == [s.moved for s in songs]
    assert "--no-key-move" in write_sidecar_command(steerable, kept, cfg, tmp_path)


def write_sidecar_command(model, songs, cfg, tmp_path) -> str:
    from musicgen.generate import write_songs

    off = GenerateConfig(**{**vars(cfg), "key_move": False})
    path = write_songs(songs[:1], tmp_path / "raw.mid", model, off, None)[0]
    return json.loads(path.with_suffix(".json").read_text())["regenerate"]


def test_a_continued_key_is_never_moved_and_a_drawn_one_is_as_an_asked_one(steerable, tmp_path):
    from dataclasses import replace

    from musicgen.analysis.key import estimate_key
    from musicgen.config.controls import parse_key
    from tests.helpers import write_notes_midi

    primer = write_notes_midi(tmp_path / "p.mid", [(q, 1, 60 + q % 5) for q in range(8)])
    cfg = GenerateConfig(unit="bars", length=3, num_samples=8, seed=5, primer=str(primer))
    assert all(s.moved == 0 for s in generate_songs(steerable, replace(cfg, key="F# major"))[0])
    keys = [0] * 24
    keys[6] = 5  # the corpus is all in F# major: every new piece draws it
    model = replace(steerable, meta={**steerable.meta, "corpus": {"lineups": [], "keys": keys}})
    new = replace(cfg, primer=None, key_pull=0)
    drawn = generate_songs(model, new)[0]
    kept = generate_songs(model, replace(new, key_move=False))[0]
    majors = 0
    for song, raw in zip(drawn, kept, strict=True):
        assert song.drawn["key"] == "F# major" and raw.moved == 0
        landed = estimate_key(raw.score)
        if landed is not None and landed // 12 == 0:  # came out major: now in F# major
            assert estimate_key(song.score) == parse_key("F# major")
            majors += landed != parse_key("F# major")
        else:
            assert song.moved == 0
    assert majors and sum(s.moved != 0 for s in drawn) == majors
    # a move shifts every bar's register: a piece asked for one stays where it came out
    from musicgen.generate.controls import landing_shift

    for cfg_register in (replace(new, register=(1,)), replace(new, key="G major", register=(1,))):
        low = generate_songs(model, cfg_register)[0]
        key = parse_key(cfg_register.key or "F# major")
        assert any(landing_shift(s.score, key) for s in low)  # would have moved
        assert all(s.moved == 0 for s in low)


def test_the_pull_follows_the_key_profile(steerable):
    from musicgen.generate.controls import ControlPlan

    vocab = steerable.vocab
    bias = ControlPlan.of(GenerateConfig(key="G major", key_pull=2.0), vocab).pitch_bias(vocab)
    pitch = vocab.families == "pitch"
    value = dict(
        zip(vocab.space.value[vocab.uids[pitch]].astype(int).tolist(), bias[pitch], strict=True)
    )
    assert value[67] == value[55] == 0.0  # G, the tonic, in any octave
    assert value[62] == pytest.approx(2.0 * np.log(5.19 / 6.35))  # D, the fifth
    assert value[61] < value[66] < value[62]  # C# below F#, the leading tone, below the fifth
    assert not bias[~pitch].any()  # nothing else: no drum, no duration, no control
    assert (
        ControlPlan.of(GenerateConfig(key="G major", key_pull=0), vocab).pitch_bias(vocab) is None
    )
    assert ControlPlan.of(GenerateConfig(density=(2,)), vocab).pitch_bias(vocab) is None


def test_no_control_is_drawn_unless_asked(steerable):
    songs, _ = generate_songs(steerable, GenerateConfig(unit="tokens", length=200, seed=1))
    for song in songs:
        assert not steerable.vocab.control_mask[song.ids].any()


def test_a_primer_plan_starts_at_the_first_new_bar(steerable, tmp_path):
    from tests.helpers import write_notes_midi

    primer = write_notes_midi(tmp_path / "p.mid", [(q, 1, 60 + q) for q in range(6)])  # 1.5 bars
    cfg = GenerateConfig(unit="bars", length=3, seed=0, primer=str(primer), register=(5, 1))
    song = generate_songs(steerable, cfg)[0][0]
    got = asked(steerable, song.ids)
    # the primer's two bars are its own (the second is half played): the plan's first bar
    # is the first one the continuation enters, the third
    assert min(got) == 2 and got[2] == {"register": 4}
    assert all(v == {"register": 0} for b, v in got.items() if b > 2)


def test_controls_through_the_cli_and_the_sidecar(steerable, tmp_path, trained):
    # a model trained with the defaults learnt the controls
    ckpt = trained["gru"].best
    plan = tmp_path / "plan.yaml"
    plan.write_text("key: Bb major\nbars:\n  1: {density: 1}\n  3: {density: 4, dynamics: 2}\n")
    out = tmp_path / "s.mid"
    assert_ok(run_cli("generate", ckpt, "--out", out, "--bars", 4, "--plan", plan, "--seed", 3))
    side = json.loads(out.with_suffix(".json").read_text())
    s = side["settings"]
    assert s["density"] == [1, 1, 4] and s["dynamics"] == [2, 2, 2] and s["key"] == "Bb major"
    assert "--density 1,1,4" in side["regenerate"] and "--key 'Bb major'" in side["regenerate"]
    assert s["polyphony"] is None and s["register"] is None


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--density", "7"], "--density '7': give a level from 1 to 5"),
        (["--register", "1,x"], "--register '1,x'"),
        (["--key", "H minor"], "--key 'H minor'"),
        (["--key", "D", "--key-pull", "-1"], "key_pull must be >= 0"),
        (["--key", "D", "--guidance", "-1"], "guidance must be between 0 (off) and 100"),
        (["--key", "D", "--guidance", "inf"], "guidance must be between 0 (off) and 100"),
        (["--key", "D", "--no-cache"], "--guidance needs the cache"),
        (["--density", "2", "--plan", "PLAN"], "--density is given twice"),
    ],
)
def test_bad_controls_are_one_line(trained, tmp_path, args, fragment):
    plan = tmp_path / "plan.yaml"
    plan.write_text("bars:\n  1: {density: 1}\n")
    args = [str(plan) if a == "PLAN" else a for a in args]
    result = run_cli("generate", trained["gru"].best, "--out", tmp_path / "x.mid", *args)
    assert_cli_error(result, fragment)


def test_a_model_without_controls_refuses_them_in_one_line(dataset, tmp_path):
    from tests.helpers import train_tiny

    run = train_tiny(dataset, tmp_path / "run", "gru", controls=0.0)
    assert not load_model(run.best).vocab.has_controls
    result = run_cli("generate", run.best, "--out", tmp_path / "x.mid", "--density", "2")
    assert_cli_error(result, "--density: this model was trained without control tokens")


def test_plans_spell_levels_per_bar():
    cfg = GenerateConfig(density=[2], polyphony=(1, 1, 3))
    assert cfg.density == (2,) and cfg.polyphony == (1, 1, 3)
    with pytest.raises(Exception, match="level from 1 to 5"):
        GenerateConfig(dynamics=(0,))
    assert np.array_equal(np.array(cfg.polyphony), [1, 1, 3])


def test_a_new_piece_takes_a_line_up_and_a_key_of_the_corpus(steerable):
    from dataclasses import replace

    from musicgen.generate.songs import drawn

    meta = {"corpus": {"lineups": ["0 128", "40"], "keys": [0] * 14 + [5] + [0] * 9}}
    model = replace(steerable, meta={**steerable.meta, **meta})
    picks = drawn(model, GenerateConfig(num_samples=40, seed=3))
    assert {p.lineup for p in picks} == {(0, 128), (40,)}  # each a training piece's, both drawn
    assert {p.key for p in picks} == {"D minor"}  # the only key the corpus is in
    assert drawn(model, GenerateConfig(num_samples=3, prior="model")) == [(None,) * 4] * 3
    assert drawn(model, GenerateConfig(num_samples=2, key="F major"))[0].key is None  # asked
    # a model learnt from a corpus of one line-up writes it: the header, read back
    vocab = steerable.vocab
    meta = {"corpus": {"lineups": ["0"], "keys": [1] + [0] * 23}}
    songs, _ = generate_songs(
        replace(steerable, meta={**steerable.meta, **meta}),
        GenerateConfig(num_samples=2, unit="bars", length=2),
    )
    for song in songs:
        stream = vocab.stream()
        stream.feed_all(vocab.to_universal(song.ids))
        assert stream.instruments == {0} and stream.asked[0]["key"] == 0  # C major
        assert song.drawn == {"instruments": (0,), "key": "C major"}


# two training pieces of the one instrument the test model knows, and their textures per
# bar from 0, as train stores them: "-" a bar without notes
TEXTURES = [{"density": "01-4", "polyphony": "2222"}, {"density": "3", "polyphony": "1"}]


def textured(steerable):
    """The steerable model with a corpus of two pieces and their textures."""
    from dataclasses import replace

    corpus = {"lineups": ["0", "0"], "textures": TEXTURES, "keys": [0] * 14 + [5] + [0] * 9}
    return replace(steerable, meta={**steerable.meta, "corpus": corpus})


def as_options(texture: dict) -> dict:
    """A stored texture as a sidecar spells it: levels 1..5, "-" none."""
    return {a: "".join(c if c == "-" else str(int(c) + 1) for c in t) for a, t in texture.items()}


def test_a_new_piece_takes_the_texture_of_the_piece_its_line_up_comes_from(steerable):
    model = textured(steerable)
    cfg = GenerateConfig(num_samples=8, unit="bars", length=5, seed=2)
    songs, _ = generate_songs(model, cfg)
    spelt = [as_options(t) for t in TEXTURES]
    assert sorted({spelt.index(s.drawn["texture"]) for s in songs}) == [0, 1]  # both drawn
    for song in songs:
        texture = TEXTURES[spelt.index(song.drawn["texture"])]
        got = asked(model, song.ids)
        assert max(got) >= 4  # five bars: the last is past either texture's end
        for bar, controls in got.items():
            for a, levels in texture.items():
                # each bar's level, as the piece had it; none in a bar without notes there,
                # nor after its bars
                level = levels[bar] if bar < len(levels) else "-"
                assert controls.get(a) == (None if level == "-" else int(level)), (bar, a)
            assert controls["key"] == 2 + 12  # the key drawn beside it
    # a hint, as a drawn key: guidance guides on what is asked, never on a drawn texture
    from musicgen.generate.controls import ControlPlan

    vocab = model.vocab
    texture = {"density": (0, 1), "polyphony": (2,)}
    ids = {a: [vocab.ctrl_id(a, lvl) for lvl in range(5)] for a in texture}
    plan = ControlPlan.of(GenerateConfig(key="D minor", density=(3,)), vocab)
    guided = plan.with_texture(texture).guided(vocab)
    assert guided[ids["density"]].all() and guided[vocab.key_id(14)]  # asked: guided
    assert not guided[ids["polyphony"]].any()  # drawn: not
    assert not ControlPlan(None, {}).with_texture(texture).guided(vocab).any()


def test_an_asked_level_or_no_drawn_texture_takes_the_place_of_the_drawn_one(steerable):
    model = textured(steerable)
    base = dict(num_samples=4, unit="bars", length=3, seed=5)
    spelt = [as_options(t) for t in TEXTURES]
    for song in generate_songs(model, GenerateConfig(**base, density=(5,)))[0]:
        assert set(song.drawn["texture"]) == {"polyphony"}  # the density was asked
        (k,) = [
            k for k, s in enumerate(spelt) if s["polyphony"] == song.drawn["texture"]["polyphony"]
        ]
        poly = TEXTURES[k]["polyphony"]
        for bar, controls in asked(model, song.ids).items():
            assert controls["density"] == 4
            assert controls.get("polyphony") == (int(poly[bar]) if bar < len(poly) else None)
    for song in generate_songs(model, GenerateConfig(**base, drawn_texture=False))[0]:
        assert "texture" not in song.drawn
        assert all(set(c) == {"key"} for c in asked(model, song.ids).values())
    # a model trained before textures were measured draws as it did
    from dataclasses import replace

    old = {k: v for k, v in model.meta["corpus"].items() if k != "textures"}
    older = replace(model, meta={**model.meta, "corpus": old})
    for song in generate_songs(older, GenerateConfig(**base))[0]:
        assert "texture" not in song.drawn


def test_infill_and_accompany_force_the_plan_and_guide_on_it(dataset, monkeypatch):
    """The passage tasks take the controls as generate does: forced where their part
    enters a bar, and guided on (by default) through the same decoder."""
    from musicgen.config import AccompanyConfig, InfillConfig
    from musicgen.generate import decoder as dec
    from musicgen.generate.accompany import accompany_songs
    from musicgen.generate.infill import infill_songs
    from tests.helpers import CORPUS

    vocab = TokenDataset.open(dataset).vocab.with_controls().with_fill()
    cfg = ModelConfig(name="gru", vocab_size=len(vocab), max_len=SEQ_LEN, d_model=32, n_layers=1)
    torch.manual_seed(0)
    model = LoadedModel(build_core(cfg).eval(), cfg, vocab, dataset_meta(vocab, dataset), dataset)
    made = []
    real = dec.make_decoder
    monkeypatch.setattr(
        dec, "make_decoder", lambda *a, **kw: made.append(real(*a, **kw)) or made[-1]
    )
    piece = str(CORPUS / "bwv1.6.mid")
    density = [vocab.ctrl_id("density", lvl) for lvl in range(5)]
    key = vocab.key_id(2 + 12)  # D minor
    asked_ = GenerateConfig(num_samples=2, seed=1, density=(5,), key="D minor")
    fill = infill_songs(model, asked_, InfillConfig(piece, "bars", 2, 3, candidates=1))[0]
    keep = accompany_songs(model, asked_, AccompanyConfig(piece, "top"))[0]
    for songs in (fill, keep):
        for song in songs:
            ids = np.asarray(song.ids)
            assert (ids == density[4]).sum() >= 1 and (ids == key).sum() >= 1
            assert not np.isin(ids, density[:4]).any()  # only the level asked
    guided = [d for d in made if isinstance(d, dec.GuidedDecoder)]
    assert len(guided) == 2 and all(d.guidance == 4.0 for d in guided)
    assert all(bool(d.unguided[density].all()) and bool(d.unguided[key]) for d in guided)
