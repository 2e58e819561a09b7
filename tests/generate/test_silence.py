"""The silence guard: time runs on with nothing sounding, the opening included, no longer
than the corpus's pieces let it (measured by `train`), or than `--silence-limit` says."""

from __future__ import annotations

import numpy as np

from musicgen.analysis.features import Silence
from musicgen.config import GenerateConfig
from tests.generate.test_sampling import indifferent_gru
from tests.helpers import assert_cli_error, run_cli, score_of, untrained_model


def test_silence_counts_from_the_last_note_to_stop_sounding():
    s = Silence(0)
    s.note(8, 4)  # a lead-in of 8
    s.note(10, 2)  # inside the first note: nothing silent
    s.note(20, 1)  # 8 after the first note ends at 12
    assert (s.longest, s.until) == (8, 21)
    s.note(40, 1)  # 19 after 21
    assert s.longest == 19 and s.notes == 4
    assert s.at(50).item() == 50 - 41


def longest_silence_of(score) -> float:
    """In quarters, read from the notes as a listener hears them."""
    notes = score.notes[np.argsort(score.notes["start"], kind="stable")]
    s = Silence(0)
    for start, dur in zip(notes["start"], notes["duration"], strict=True):
        s.note(float(start), float(dur))
    return s.longest


def test_train_measures_the_corpus_s_silences_and_generation_takes_them_as_the_limit(dataset):
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.measures import corpus_profile, longest_silence
    from musicgen.generate.primer import model_tokens
    from musicgen.generate.songs import settle

    v = TokenDataset.open(dataset).vocab
    pieces = [
        score_of([(2, 1, 60), (10, 1, 62)]),  # a lead-in of 2 quarters, then 7 silent
        score_of([(0, 1, 60), (1, 1, 62), (2, 2, 64)]),  # none
    ]
    docs = [v.lookup[model_tokens(p, v)[1]] for p in pieces]
    per_quarter = v.cfg.steps_per_unit
    # LOOP_QUANTILE of the way from 0 to 7 quarters, up to a whole step
    expected = round(np.ceil(0.9 * 7 * per_quarter) / per_quarter, 4)
    assert longest_silence(docs, v) == expected
    assert corpus_profile(docs, v, keys=[0, 0])["longest_silence"] == expected
    assert longest_silence(docs[1:], v) == round(1 / per_quarter, 4)  # never silent: a step
    model = untrained_model("gru", dataset)
    model.meta["corpus"] = {"longest_silence": 3.5}
    assert settle(GenerateConfig(), model).silence_limit == 3.5
    assert settle(GenerateConfig(silence_limit=0), model).silence_limit == 0
    assert settle(GenerateConfig(), model, passage=True).silence_limit == 0
    model.meta["corpus"] = {}  # a model trained before the guard: off
    assert settle(GenerateConfig(), model).silence_limit == 0


def test_the_guard_keeps_every_silence_within_the_limit_from_the_first_note_on(dataset):
    """A model with no preference draws long shifts as often as notes, so its pieces wait
    and fall silent; with the guard no silence, the opening's included, is longer than
    the limit."""
    from musicgen.generate import generate_songs

    model = indifferent_gru(dataset)

    def silences(limit: float) -> list[float]:
        cfg = GenerateConfig(
            unit="bars", length=8, num_samples=6, seed=2, form_bias=0, silence_limit=limit
        )
        return [longest_silence_of(s.score) for s in generate_songs(model, cfg)[0]]

    free, guarded = silences(0.0), silences(1.0)
    assert max(free) > 2.0  # the model alone waits
    assert max(guarded) <= 1.0 + 1e-9, guarded
    assert max(guarded) > 0.5  # and waits up to the limit: the limit is read in quarters


def test_a_bad_silence_limit_is_one_line(trained, tmp_path):
    for bad in ("-2", "inf"):
        result = run_cli(
            "generate", trained["gru"].best, "--out", tmp_path / "x.mid", "--silence-limit", bad
        )
        assert_cli_error(result, "silence_limit must be a finite number >= 0")
