"""Held-out scores: report arithmetic, the n-gram baseline, MIDI input with unknown tokens, --json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from musicgen.checkpoint import load_model
from musicgen.config import EncodingConfig, IngestConfig
from musicgen.data.dataset import TokenDataset
from musicgen.data.ingest import ingest
from musicgen.errors import MusicgenError
from musicgen.evaluate import evaluate, fit_ngram, score_ngram
from tests.helpers import (
    MODEL_NAMES,
    assert_cli_error,
    assert_ok,
    corpus_files,
    odd_midi,
    run_cli,
    uniform_bits,
)

FIELDS = {
    "model",
    "checkpoint",
    "pieces",
    "tokens",
    "notes",
    "bits_per_token",
    "bits_per_note",
    "perplexity",
    "accuracy",
    "context",
    "unknown_tokens",
    "files_skipped",
    "files_in_training",
    "ngram_order",
    "ngram_bits_per_note",
    "ngram_bits_per_token",
    "ngram_by_order",
    "ratio_to_ngram",
}


@pytest.fixture(scope="module")
def gru(trained):
    return load_model(trained["gru"].best)


def test_report_fields_and_their_arithmetic(gru, dataset):
    ds = TokenDataset.open(dataset)
    val = ds.documents("val")
    rep = evaluate(gru)  # the dataset recorded in the checkpoint
    assert rep.model == "gru" and rep.context == 0  # every piece whole
    assert rep.pieces == len(val)
    assert rep.tokens == sum(len(d) - 1 for d in val)  # every token after BOS
    assert rep.notes == ds.num_notes("val") > 0  # one Pitch token per note
    assert rep.bits_per_note == pytest.approx(
        rep.bits_per_token * rep.tokens / rep.notes, rel=1e-12
    )
    assert rep.perplexity == pytest.approx(2**rep.bits_per_token, rel=1e-12)
    assert 0 < rep.accuracy < 1
    assert rep.unknown_tokens == 0 and rep.files_skipped == {}
    # the baseline: best of orders 1..8 on the same tokens, and the ratio between them
    assert set(rep.ngram_by_order) == set(range(1, 9))
    assert rep.ngram_bits_per_note == pytest.approx(min(rep.ngram_by_order.values()))
    assert rep.ngram_by_order[rep.ngram_order] == pytest.approx(rep.ngram_bits_per_note)
    assert rep.ngram_bits_per_note == pytest.approx(
        rep.ngram_bits_per_token * rep.tokens / rep.notes
    )
    assert rep.ratio_to_ngram == pytest.approx(rep.bits_per_note / rep.ngram_bits_per_note)
    assert rep.ngram_by_order[2] < rep.ngram_by_order[1]  # context helps the n-gram on Bach


def test_ngram_scores_the_same_tokens(dataset, gru):
    ds = TokenDataset.open(dataset)
    val = [np.asarray(d) for d in ds.documents("val")]
    lm = fit_ngram([np.asarray(d) for d in ds.documents("train")], len(gru.vocab), 3)
    by_order, best = score_ngram(lm, val, gru.vocab.note_ids)
    assert best in (1, 2, 3)
    for k, s in by_order.items():
        assert s.tokens == sum(len(d) - 1 for d in val)
        assert s.notes == ds.num_notes("val")
        # the same figure token by token: every token after BOS, BOS given
        assert s.bits == pytest.approx(
            -sum(float(lm.log2_probs(np.asarray(d), k)[1:].sum()) for d in val)
        )


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_trained_model_beats_uniform(trained, name):
    model = load_model(trained[name].best)
    rep = evaluate(model, ngram=False)
    assert rep.bits_per_token < uniform_bits(model) - 0.5, (rep.bits_per_token, uniform_bits(model))
    assert rep.ngram_order is None and rep.ratio_to_ngram is None


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_piece_is_scored_whole_with_its_state_carried(trained, name):
    """Chunk by chunk with the state carried gives what one forward over the whole piece gives
    (for the transformer: with its window, as it generates)."""
    import torch

    from musicgen.evaluate import score_model

    model = load_model(trained[name].best)
    ds = TokenDataset.open(model.meta["data"])
    docs = [np.asarray(d, dtype=np.int64) for d in ds.documents("val")]
    chunked = score_model(model, docs)
    bits = 0.0
    with torch.no_grad():
        for d in docs:
            logits, _ = model.core(torch.from_numpy(d[None, :-1]))
            bits -= float(
                torch.log_softmax(logits[0].double(), -1)[
                    torch.arange(len(d) - 1), torch.from_numpy(d[1:])
                ].sum()
            ) / math.log(2)
    assert chunked.tokens == sum(len(d) - 1 for d in docs)
    assert chunked.bits == pytest.approx(bits, rel=1e-4)


def test_shorter_context_scores_the_same_tokens(gru):
    full, short = evaluate(gru, ngram=False), evaluate(gru, ngram=False, context=16)
    assert short.context == 16
    assert (short.tokens, short.notes, short.pieces) == (full.tokens, full.notes, full.pieces)
    assert math.isfinite(short.bits_per_token)


def test_midi_files_with_tokens_the_vocabulary_lacks(gru, tmp_path):
    odd = odd_midi(tmp_path / "odd.mid", gru)
    chorale = corpus_files()[0]
    rep = evaluate(gru, sources=[odd.path, chorale])
    assert rep.unknown_tokens == odd.unknown > 0  # counted, the chorale has none
    assert rep.pieces == 2
    assert rep.notes == 5 + _notes_of(gru, chorale)  # unknown tokens dropped, not their notes
    assert math.isfinite(rep.bits_per_note) and rep.bits_per_note > 0
    assert (
        rep.ngram_order is not None
    )  # the training split of the checkpoint's dataset trains the baseline


def _notes_of(model, path) -> int:
    from musicgen.midi.read import read_score
    from musicgen.tokens.encoding import encode

    return len(encode(read_score(path), model.encoding).notes)


def test_cli_json_is_one_object(trained, tmp_path):
    result = run_cli("evaluate", trained["gru"].best, "--json")
    assert_ok(result)
    assert len(result.stdout.strip().splitlines()) == 1
    data = json.loads(result.stdout)
    assert set(data) == FIELDS
    assert data["bits_per_note"] == pytest.approx(
        data["bits_per_token"] * data["tokens"] / data["notes"]
    )
    assert data["perplexity"] == pytest.approx(2 ** data["bits_per_token"])
    assert data["ratio_to_ngram"] == pytest.approx(
        data["bits_per_note"] / data["ngram_bits_per_note"]
    )


def test_cli_midi_sources_count_unknown_tokens(gru, trained, tmp_path):
    odd = odd_midi(tmp_path / "songs" / "odd.mid", gru)
    (tmp_path / "songs" / "broken.mid").write_bytes(b"MThd not really")
    result = run_cli("evaluate", trained["gru"].best, tmp_path / "songs", "--json", "--no-ngram")
    assert_ok(result)
    data = json.loads(result.stdout)
    assert data["unknown_tokens"] == odd.unknown
    assert data["pieces"] == 1 and data["notes"] == 5
    assert set(data["files_skipped"]) == {"broken.mid"}
    assert data["ngram_order"] is None
    text = run_cli("evaluate", trained["gru"].best, odd.path, "--no-ngram")
    assert_ok(text)
    assert f"{odd.unknown} tokens unknown to the vocabulary" in text.stdout
    assert "bits/note" in text.stdout
    assert " on 1 piece, 5 notes, " in text.stdout  # not "1 pieces"


def test_cli_evaluate_errors(trained, tmp_path):
    (tmp_path / "empty.mid").write_bytes(b"")
    assert_cli_error(
        run_cli("evaluate", trained["gru"].best, tmp_path / "empty.mid"), "no evaluable pieces"
    )
    assert_cli_error(run_cli("evaluate", tmp_path / "missing.ckpt"), "no checkpoint")


def test_dataset_with_another_vocabulary_is_refused(gru, tmp_path):
    other = tmp_path / "other"
    ingest(
        corpus_files(3),
        other,
        EncodingConfig(velocity_bins=0),
        IngestConfig(val_fraction=0.5, workers=1),
    )
    with pytest.raises(MusicgenError, match="different vocabulary"):
        evaluate(gru, data_dir=other)


def test_scoring_training_files_is_flagged(trained, dataset):
    index = json.loads((dataset / "index.json").read_text())
    train_names = {e["path"] for e in index["files"] if e["split"] == "train"}
    files = [f for f in corpus_files() if f.name in train_names][:3]
    result = run_cli(
        "evaluate", str(trained["gru"].best), *map(str, files), "--data", str(dataset), "--json"
    )
    assert_ok(result)
    assert json.loads(result.output)["files_in_training"] == 3
    text = run_cli("evaluate", str(trained["gru"].best), *map(str, files), "--data", str(dataset))
    assert "3 of these files are in the training split" in text.output
