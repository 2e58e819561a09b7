"""The silence guard: time runs on with nothing sounding, the opening included, no longer
than the corpus's pieces let it (measured by `train`), or than `--silence-limit` says."""

from __future__ import annotations

from dataclasses import replace

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
    assert corpus_profile(docs, v)["longest_silence"] == expected
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


def test_the_guard_reads_a_primer_s_last_silence(dataset, tmp_path):
    """A continuation's silence runs on from where the primer's last note stops sounding
    (a whole note held from 0), not from its last onset (0.5); and the guard holds."""
    from musicgen.generate import generate_songs
    from musicgen.generate.length import LengthTracker
    from musicgen.generate.primer import model_tokens
    from musicgen.midi.write import write_midi

    model = indifferent_gru(dataset)
    v = model.vocab
    held = score_of([(0, 4, 48), (0.5, 0.5, 64)])
    prompt = v.lookup[model_tokens(held, v)[1][:-1]]
    tracker = LengthTracker(v, GenerateConfig(silence_limit=1.0), prompt, 2)
    per_quarter = v.cfg.steps_per_unit
    assert [s.until for s in tracker.silences] == [4 * per_quarter] * 2

    primer = tmp_path / "primer.mid"
    write_midi(score_of([(0, 1, 60), (1, 1, 64), (2, 0.5, 67)]), primer)
    cfg = GenerateConfig(
        unit="bars", length=8, num_samples=6, seed=3, form_bias=0, primer=str(primer)
    )
    free = [longest_silence_of(s.score) for s in generate_songs(model, cfg)[0]]
    guarded = [
        longest_silence_of(s.score)
        for s in generate_songs(model, replace(cfg, silence_limit=1.0))[0]
    ]
    assert max(free) > 2.0
    assert max(guarded) <= 1.0 + 1e-9, guarded


def test_the_guard_counts_seconds_on_the_seconds_clock(tmp_path_factory, performed_chorale):
    """Played music (10 ms steps): the limit is in seconds, as `--silence-limit` says."""
    import torch

    from musicgen.checkpoint import LoadedModel, dataset_meta
    from musicgen.config import IngestConfig, ModelConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.ingest import ingest
    from musicgen.generate import generate_songs
    from musicgen.models.registry import build_core

    src = tmp_path_factory.mktemp("played-src")
    (src / "p.mid").write_bytes(performed_chorale.path.read_bytes())
    data = tmp_path_factory.mktemp("played") / "ds"
    ingest([src], data, ing_cfg=IngestConfig(workers=1, val_fraction=0.0))
    vocab = TokenDataset.open(data).vocab
    assert vocab.cfg.time == "seconds"
    cfg = ModelConfig(name="gru", vocab_size=len(vocab), d_model=16, n_layers=1, max_len=64)
    core = build_core(cfg).eval()
    with torch.no_grad():
        for p in core.parameters():
            p.zero_()
    model = LoadedModel(core, cfg, vocab, dataset_meta(vocab, data), data / "indifferent")

    def silences(limit: float) -> list[float]:
        gen = GenerateConfig(
            unit="seconds", length=12, num_samples=6, seed=2, form_bias=0, silence_limit=limit
        )
        songs = generate_songs(model, gen)[0]
        # the written score keeps 120 quarters a minute: a quarter is half a second
        return [longest_silence_of(s.score) * 0.5 for s in songs]

    free, guarded = silences(0.0), silences(0.3)
    assert max(free) > 0.6
    assert max(guarded) <= 0.3 + 1e-6, guarded
    assert max(guarded) > 0.15  # and up to the limit: read in seconds, not quarters
