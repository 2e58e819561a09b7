"""Form-aware sampling: the corpus's bar recurrence learnt, and bars brought back in generation."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from musicgen.analysis.form import MAX_DISTANCE, FormPrior, bar_contents, bar_states, learn_form
from musicgen.checkpoint import load_model
from musicgen.errors import MusicgenError
from musicgen.generate import GenerateConfig, form_of, generate_songs
from musicgen.generate.form import BarCopier
from tests.helpers import assert_cli_error, run_cli, score_of

A = [[60, 62, 64, 65], [67, 65, 64, 62], [60, 64, 67, 72], [71, 67, 62, 59]]
B = [[69, 67], [62, 71], [69, 74], [72, 60]]


def tune(*strains) -> object:
    bars = [bar for strain in strains for bar in strain]
    step = lambda bar: 4 // len(bar)  # noqa: E731
    return score_of(
        [
            (4 * i + j * step(bar), step(bar), p)
            for i, bar in enumerate(bars)
            for j, p in enumerate(bar)
        ]
    )


def test_an_aabb_tune_comes_back_a_strain_later():
    assert bar_states(tune(A, A, B, B)) == [0] * 4 + [4] * 4 + [0] * 4 + [4] * 4


def test_a_bar_played_twice_running_then_its_strain_keeps_the_distance_it_had():
    twice = [A[0], A[0], A[1], A[2]]
    # bar 2 repeats bar 1 (distance 1); the strain's return keeps distance 4 even where
    # the repeated bar also equals the bar just before it
    assert bar_states(tune(twice, twice)) == [0, 1, 0, 0, 4, 4, 4, 4]


def test_the_chain_learnt_from_aabb_tunes_stays_on_its_strain():
    prior = learn_form([tune(A, A, B, B)] * 3)
    T = np.asarray(prior.transitions)
    assert T.shape == (MAX_DISTANCE + 1,) * 2
    np.testing.assert_allclose(T.sum(axis=1), 1.0)
    assert T[4, 4] == pytest.approx(6 / 7, abs=0.01)  # a strain repeated goes on ...
    assert T[4, 0] == pytest.approx(1 / 7, abs=0.01)  # ... or a new one comes
    assert T[0, 4] > 0.1 and T[0, 0] > 0.5
    back = FormPrior.from_dict(prior.to_dict())
    np.testing.assert_allclose(back.transitions, prior.transitions, atol=1e-6)


def test_the_forms_of_the_training_pieces_are_kept_as_templates():
    prior = learn_form([tune(A, A, B, B), tune(A, B)])
    assert prior.templates == ((0,) * 4 + (4,) * 4 + (0,) * 4 + (4,) * 4, (0,) * 8)
    back = FormPrior.from_dict(prior.to_dict())
    assert back.templates == prior.templates
    # a form stored before templates were learnt still loads, and plans by the chain alone
    assert FormPrior.from_dict({"transitions": prior.to_dict()["transitions"]}).templates == ()
    with pytest.raises(ValueError, match="before the piece's start"):
        FormPrior.from_dict({**prior.to_dict(), "templates": ["0 4 4"]})


def test_templates_are_capped_the_same_way_every_time(monkeypatch):
    import musicgen.analysis.form as R

    monkeypatch.setattr(R, "MAX_TEMPLATES", 3)
    tunes = [tune(A[:k], A[:k]) for k in range(1, 5)] + [tune(B, B)]
    first, again = learn_form(tunes), learn_form(tunes)
    assert len(first.templates) == 3 and first.templates == again.templates


def test_a_state_is_only_drawn_for_a_bar_that_exists():
    always_far = np.zeros((MAX_DISTANCE + 1,) * 2)
    always_far[:, 8] = 1.0
    prior = FormPrior(tuple(map(tuple, always_far)))
    rng = np.random.default_rng(0)
    assert prior.draw(0, 3, rng) == 0  # bar 3 has no bar 8 bars back: new music
    assert prior.draw(0, 8, rng) == 8


class _Stream:
    """The clock a copier reads: steps, bar origin and bar length (4 steps a bar)."""

    def __init__(self):
        self.step, self.bar_steps, self.bar_origin = 0, 4, 0

    @property
    def bar_position(self):
        return (self.step - self.bar_origin) % self.bar_steps


def _always(d: int) -> FormPrior:
    table = np.zeros((MAX_DISTANCE + 1,) * 2)
    table[:, d] = 1.0
    return FormPrior(tuple(map(tuple, table)))


HEADER = 1  # a token that is not music (as BOS, an Inst, a TimeSig or a Tempo)
MUSIC = np.ones(200, dtype=bool)
MUSIC[HEADER] = False


def _copier(d: int) -> tuple[BarCopier, _Stream]:
    copier = BarCopier(_always(d), 5.0, MUSIC)
    copier.start(np.random.default_rng(0))
    return copier, _Stream()


def _play(copier: BarCopier, stream: _Stream, tokens):
    """Feed tokens; a token >= 100 is a Shift of (token - 100) steps. Returns the suggestions
    made before each token."""
    said = []
    for t in tokens:
        said.append(copier.suggestion())
        position = stream.bar_position
        if t >= 100:
            stream.step += t - 100
        copier.push(t, position, stream)
    return said


def test_a_bar_that_comes_back_suggests_its_source_token_by_token():
    copier, stream = _copier(1)
    bar = [10, 11, 102, 12, 102]  # two notes, half a bar, a note, half a bar
    assert _play(copier, stream, [HEADER, *bar]) == [None] * 6  # the first bar is new
    assert copier.state == 1
    # the next suggests bar 1 all the way: its music, not the header before it
    assert _play(copier, stream, bar) == bar


def test_a_copy_that_diverges_waits_for_the_next_time_point_it_has():
    copier, stream = _copier(1)
    _play(copier, stream, [10, 11, 102, 12, 102])
    said = _play(copier, stream, [20, 101, 101, 12])
    # 20 is not 10: no suggestion until time moves; at position 1 bar 1 has nothing; at
    # position 2 it has 12 again
    assert said == [10, None, None, 12]


def test_a_copy_steps_over_a_level_the_grammar_refuses_as_already_in_force():
    settings = np.zeros(200, dtype=bool)
    settings[50] = True  # a Vel: bar 1 sets the level, which bar 2 already has
    copier = BarCopier(_always(1), 5.0, MUSIC, settings)
    copier.start(np.random.default_rng(0))
    stream = _Stream()
    _play(copier, stream, [50, 10, 104])
    refused = lambda t: t != 50  # noqa: E731
    assert copier.suggestion(refused) == 10  # the Vel is stepped over, its note suggested
    assert copier.suggestion(lambda t: True) == 10  # (the step is kept)
    fresh = BarCopier(_always(1), 5.0, MUSIC, settings)
    fresh.start(np.random.default_rng(0))
    _play(fresh, _Stream(), [50, 10, 104])
    assert fresh.suggestion(lambda t: True) == 50  # allowed: copied as it was
    assert fresh.suggestion() == 50  # no grammar given: nothing stepped over


def test_a_metre_set_on_a_bar_line_opens_no_extra_bar():
    copier, stream = _copier(1)
    _play(copier, stream, [10, 104])
    stream.bar_origin, stream.bar_steps = stream.step, 3  # a TimeSig right on the line
    copier.push(HEADER, 0, stream)
    assert len(copier.bars) == 2 and copier.suggestion() == 10


def test_a_copier_follows_its_template_section_after_section():
    # the chain alone would never bring a bar back; the template says: bar 2 is bar 0 again
    # (bars counted from 0)
    prior = FormPrior(_always(0).transitions, ((0, 0, 2),))
    copier = BarCopier(prior, 5.0, MUSIC)
    copier.start(np.random.default_rng(0))
    stream = _Stream()
    said = _play(copier, stream, [10, 104, 11, 104, 12, 104, 13, 104, 14, 104, 15, 104])
    # bar 2 copies bar 0; from bar 3 the form starts again: bar 5 copies bar 3
    assert said == [None] * 4 + [10, None] + [None] * 4 + [13, None]
    chain_only = BarCopier(FormPrior(_always(0).transitions), 5.0, MUSIC)
    chain_only.start(np.random.default_rng(0))
    assert set(_play(chain_only, _Stream(), [10, 104, 11, 104, 12, 104])) == {None}


def test_a_primer_longer_than_every_form_is_followed_by_a_new_section():
    prior = FormPrior(_always(0).transitions, ((0, 1),))
    copier = BarCopier(prior, 5.0, MUSIC)
    stream = _Stream()
    _play(copier, stream, [10, 104, 11, 104, 12, 104])  # three bars read, no plan
    copier.start(np.random.default_rng(0))
    # bar 3 opens a section of the form: new, then bar 4 plays it again
    assert _play(copier, stream, [13, 104, 14, 104]) == [None, None, 13, None]


def test_a_template_is_drawn_among_those_longer_than_the_primer():
    prior = FormPrior(_always(0).transitions, ((0, 1), (0, 0, 1, 1)))
    rng = np.random.default_rng(0)
    assert {prior.template(0, rng) for _ in range(32)} == set(prior.templates)
    assert {prior.template(2, rng) for _ in range(8)} == {(0, 0, 1, 1)}
    assert prior.template(4, rng) is None


def test_after_a_primer_each_row_draws_its_own_form():
    half = np.zeros((MAX_DISTANCE + 1,) * 2)
    half[:, 0] = half[:, 1] = 0.5
    primer = BarCopier(FormPrior(tuple(map(tuple, half))), 5.0, MUSIC)
    stream = _Stream()
    _play(primer, stream, [10, 104, 11, 104])  # two bars read, no plan drawn while reading
    assert primer.state == 0
    states = set()
    for row in range(16):
        copier = copy.deepcopy(primer)
        copier.start(np.random.default_rng([7, row]))
        states.add(copier.state)
    assert states == {0, 1}


def test_a_damaged_form_is_refused_in_one_line(trained):
    model = load_model(trained["gru"].best)
    for bad in (
        {"transitions": [[float("nan")]]},
        {"transitions": [[0.0]]},
        {"rows": []},
        {"transitions": [[1.0]], "templates": [[0]]},  # a template is a line of states
    ):
        damaged = dataclasses.replace(model, meta={**model.meta, "form": bad})
        with pytest.raises(MusicgenError, match="damaged"):
            generate_songs(damaged, GenerateConfig(form_bias=2.0, unit="notes", length=4))
        with pytest.raises(MusicgenError, match="damaged"):  # the default uses it too
            generate_songs(damaged, GenerateConfig(unit="notes", length=4))
    # a model told not to use it does not read it
    generate_songs(damaged, GenerateConfig(form_bias=0.0, unit="notes", length=4))


def test_form_bias_brings_bars_back_in_a_generated_piece(trained):
    model = load_model(trained["gru"].best)
    assert form_of(model) is not None  # train stored the corpus's form with the model
    model = dataclasses.replace(model, meta={**model.meta, "form": _always(1).to_dict()})

    def repeats(bias):
        cfg = GenerateConfig(num_samples=4, seed=3, unit="bars", length=6, form_bias=bias)
        songs, _ = generate_songs(model, cfg)
        same = total = 0
        for song in songs:
            bars = [c for c in bar_contents(song.score)][:6]
            total += len(bars) - 1
            same += sum(1 for x, y in zip(bars, bars[1:], strict=False) if x and x == y)
        return same / total

    assert repeats(0.0) < 0.2
    assert repeats(30.0) > 0.6


def test_form_bias_on_a_checkpoint_that_learnt_no_form_is_one_line(trained, tmp_path):
    import torch

    ckpt = torch.load(trained["gru"].best, weights_only=True)
    del ckpt["musicgen"]["form"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    result = run_cli("generate", str(old), "--form-bias", "2", "--out", str(tmp_path / "s.mid"))
    assert_cli_error(result, "has none")
    assert not (tmp_path / "s.mid").exists()


def test_by_default_a_model_with_a_form_follows_it_and_one_without_plays_on(trained, tmp_path):
    import json

    import torch

    from musicgen.config import FORM_BIAS

    result = run_cli("generate", str(trained["gru"].best), "--out", str(tmp_path / "a.mid"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a.json").read_text())["settings"]["form_bias"] == FORM_BIAS
    ckpt = torch.load(trained["gru"].best, weights_only=True)
    del ckpt["musicgen"]["form"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    result = run_cli("generate", str(old), "--out", str(tmp_path / "b.mid"))
    assert result.exit_code == 0, result.output  # an older checkpoint: no form, no error
    side = json.loads((tmp_path / "b.json").read_text())
    assert side["settings"]["form_bias"] == 0.0 and "--form-bias 0" in side["regenerate"]
