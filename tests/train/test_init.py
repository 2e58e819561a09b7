"""Where a run starts (--init): fine-tunes from a tiny base of their own, never the shipped
ones, and the corpus mapped into the base's tokens."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from musicgen.checkpoint import export_model, load_model
from musicgen.config import EncodingConfig, IngestConfig, ModelConfig, TrainConfig
from musicgen.data.dataset import TokenDataset
from musicgen.data.ingest import ingest
from musicgen.errors import MusicgenError
from musicgen.train import train
from musicgen.train.init import BASE_VERSION, resolve_init
from tests.helpers import (
    MODEL_KW,
    TRAIN_KW,
    assert_cli_error,
    assert_ok,
    corpus_files,
    run_cli,
    train_tiny,
)


@pytest.fixture(scope="module")
def bases(dataset, tmp_path_factory, monkeypatch_module):
    """A tiny GRU base that learnt every token of the encoding, in a folder of bases."""
    run = train_tiny(dataset, tmp_path_factory.mktemp("base-run"), vocab="full", init="scratch")
    root = tmp_path_factory.mktemp("bases")
    export_model(run.best, root / "gru", {"base": {"version": BASE_VERSION}})
    monkeypatch_module.setenv("MUSICGEN_BASES", str(root))
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def tune(data, out, steps=3, resume=False, **kw):
    """A fine-tune of the tiny model from the base (`resume`: going on in `out` to `steps`)."""
    cfg = TrainConfig(**{**TRAIN_KW, "max_steps": steps, "init": "base", **kw})
    return train(
        data,
        out,
        ModelConfig(name="gru", **MODEL_KW),
        cfg,
        resume=resume,
        given={"max_steps"} if resume else None,
        progress_bar=False,
        logs=False,
    )


def test_a_fine_tune_starts_from_the_base_and_zero_steps_give_its_logits(bases, dataset):
    base = load_model(bases / "gru")
    start = resolve_init("base", "gru")
    assert start.kind == "base" and start.model.path == bases / "gru"
    from musicgen.models.registry import build_core
    from musicgen.train.init import initial_weights

    core = build_core(base.model_cfg).eval()
    initial_weights(core, start)
    x = torch.randint(0, len(base.vocab), (2, 20))
    assert torch.equal(core(x)[0], base.core(x)[0])  # zero fine-tune steps: the base itself


def test_frozen_weights_stay_bit_identical_and_the_rest_train(bases, dataset, tmp_path):
    run = tune(dataset, tmp_path / "frozen", steps=4, freeze="embedding")
    base, tuned = load_model(bases / "gru"), load_model(run.last)
    b, t = base.core.state_dict(), tuned.core.state_dict()
    assert torch.equal(b["emb.weight"], t["emb.weight"])
    assert not torch.equal(b["rnn.weight_hh_l0"], t["rnn.weight_hh_l0"])
    meta = torch.load(run.last, weights_only=False)["musicgen"]
    assert meta["init"]["kind"] == "base" and meta["init"]["path"] == str(bases / "gru")
    assert meta["vocab"]["tokens"] == base.vocab.tokens  # the base's vocabulary, every token


def test_a_corpus_on_the_other_clock_is_encoded_again_into_the_base(bases, tmp_path):
    played = tmp_path / "played"
    ingest(corpus_files(6), played, EncodingConfig(time="seconds"), IngestConfig(workers=1))
    lines: list[str] = []
    cfg = TrainConfig(**{**TRAIN_KW, "max_steps": 2, "init": "base"})
    run = train(
        played,
        tmp_path / "tuned",
        ModelConfig(name="gru", **MODEL_KW),
        cfg,
        progress_bar=False,
        logs=False,
        echo=lines.append,
    )
    assert run.steps == 2
    assert len(lines) == 1 and "seconds clock on the beats clock" in lines[0]
    # the notes kept, counted another way: the played dataset's own note count
    kept = int(lines[0].split(": ")[1].split(" of ")[0].replace(",", ""))
    assert kept == TokenDataset.open(played).num_notes("train") + TokenDataset.open(
        played
    ).num_notes("val")


def test_a_base_missing_tokens_the_corpus_uses_is_refused_in_one_line(
    dataset, tmp_path, monkeypatch
):
    # a "base" that learnt only the chorales' tokens, and a corpus with drums
    run = train_tiny(dataset, tmp_path / "narrow", init="scratch")
    root = tmp_path / "bases"
    export_model(run.best, root / "gru", {"base": {"version": BASE_VERSION}})
    monkeypatch.setenv("MUSICGEN_BASES", str(root))
    from tests.helpers import write_notes_midi

    drums = tmp_path / "drums"
    drums.mkdir()
    for i in range(4):
        write_notes_midi(drums / f"d{i}.mid", [(q, 0.5, 60 + q % 5) for q in range(16)], program=33)
    data = tmp_path / "drums-data"
    ingest([drums], data, EncodingConfig(), IngestConfig(workers=1, val_fraction=0.0))
    with pytest.raises(MusicgenError, match="tokens the model does not have .* --init scratch"):
        tune(data, tmp_path / "t")


def test_a_base_of_another_version_is_refused_in_one_line(bases, tmp_path, monkeypatch):
    old = tmp_path / "old-bases"
    shutil.copytree(bases, old)
    meta = json.loads((old / "gru" / "musicgen.json").read_text())
    meta["base"]["version"] = BASE_VERSION - 1
    (old / "gru" / "musicgen.json").write_text(json.dumps(meta))
    monkeypatch.setenv("MUSICGEN_BASES", str(old))
    with pytest.raises(
        MusicgenError, match=f"base of version {BASE_VERSION - 1}; .* version {BASE_VERSION}"
    ):
        resolve_init("base", "gru")


def test_scratch_is_unchanged_and_the_cli_keeps_a_base_size(bases, dataset, tmp_path):
    run = train_tiny(dataset, tmp_path / "scratch", init="scratch")
    meta = torch.load(run.last, weights_only=False)["musicgen"]
    assert meta["init"] == {"kind": "scratch"}
    own = TokenDataset.open(dataset).vocab.with_moved().with_controls()
    assert meta["vocab"]["tokens"] == own.tokens  # the corpus's tokens, as before
    line = assert_cli_error(
        run_cli(
            "train", "--data", dataset, "--model", "gru", "--hidden", "64", "--out", tmp_path / "x"
        )
    )
    assert "--hidden: a fine-tune keeps the size of" in line and "--init scratch" in line


def test_evaluate_reads_a_dataset_in_a_fine_tune_s_vocabulary(bases, dataset, tmp_path):
    from musicgen.evaluate import evaluate

    run = tune(dataset, tmp_path / "ev", steps=2)
    rep = evaluate(load_model(run.last), data_dir=dataset, ngram=True)
    assert np.isfinite(rep.bits_per_note) and np.isfinite(rep.ngram_bits_per_note)


def test_a_run_resumes_from_its_base_stored_again_in_float16_but_not_from_another_base(
    dataset, tmp_path, monkeypatch
):
    from safetensors.torch import load_file, save_file

    run = train_tiny(dataset, tmp_path / "base-run", vocab="full", init="scratch")
    roots = {k: tmp_path / k for k in ("float32", "float16", "rebuilt")}
    export_model(run.best, roots["float32"] / "gru", {"base": {"version": BASE_VERSION}})
    export_model(
        run.best, roots["float16"] / "gru", {"base": {"version": BASE_VERSION}}, float16=True
    )
    shutil.copytree(roots["float32"], roots["rebuilt"])
    weights = roots["rebuilt"] / "gru" / "model.safetensors"
    other = {k: v + 0.01 for k, v in load_file(weights).items()}
    save_file(other, weights)

    def go(root, steps, resume=False):
        monkeypatch.setenv("MUSICGEN_BASES", str(root))
        return tune(dataset, tmp_path / "tuned", steps, resume=resume)

    go(roots["float32"], 2)
    with pytest.raises(MusicgenError, match="is another model now"):
        go(roots["rebuilt"], 4, resume=True)
    assert go(roots["float16"], 4, resume=True).steps == 4  # the same weights, half the bytes


def test_a_fine_tune_keeps_the_base_batch_and_caps_its_window_at_the_default():
    from types import SimpleNamespace

    from musicgen.cli.training import _fine_tune

    model_cfg, train_cfg = ModelConfig(name="transformer"), TrainConfig()
    base = SimpleNamespace(model_cfg=model_cfg, meta={"train": {"seq_len": 512, "batch_size": 8}})
    start = SimpleNamespace(model=base)
    m, t = _fine_tune(start, model_cfg, train_cfg, [])
    assert (t.seq_len, t.batch_size, m.max_len) == (TrainConfig().seq_len, 8, TrainConfig().seq_len)
    m, t = _fine_tune(start, model_cfg, TrainConfig(seq_len=512), ["seq_len"])
    assert (t.seq_len, t.batch_size, m.max_len) == (512, 8, 512)  # asked for: the base's own
    base.meta["train"]["seq_len"] = 64  # a shorter window than the default is kept
    m, t = _fine_tune(start, model_cfg, train_cfg, [])
    assert (t.seq_len, m.max_len) == (64, 64)


# --- a fine-tune scores where it started ---------------------------------------------------------


def test_a_fine_tune_scores_its_start_and_keeps_its_best_trained_weights(bases, dataset, tmp_path):
    run = tune(dataset, tmp_path / "worse", steps=4, lr=50.0, val_every=2)  # every step wrecks it
    assert run.steps == 4 and run.best_val_bpn > run.start_bpn > 0
    saved = torch.load(run.best, weights_only=False)["musicgen"]
    assert saved["global_step"] > 0  # trained weights, not the start's
    # the start's score is the base's own on these validation pieces
    from musicgen.evaluate import evaluate

    assert evaluate(load_model(bases / "gru"), data_dir=dataset).bits_per_note == pytest.approx(
        run.start_bpn, rel=1e-4
    )
    # resumed, it remembers where it started
    again = tune(dataset, tmp_path / "worse", steps=6, resume=True, lr=50.0, val_every=2)
    assert again.steps == 6 and again.start_bpn == pytest.approx(run.start_bpn)
    assert train_tiny(dataset, tmp_path / "scratch", init="scratch").start_bpn is None


def test_the_cli_says_what_the_start_read_and_warns_when_training_lost_to_it(
    bases, dataset, tmp_path
):
    def cli(out, *args):
        res = run_cli(
            "train", "--data", dataset, "--model", "gru", "--out", tmp_path / out,
            "--val-every", 2, "--epochs", 0, "--no-progress", *args,
        )  # fmt: skip
        assert_ok(res)
        line = next(x for x in res.stdout.splitlines() if x.startswith("before the first step: "))
        assert float(line.split(": ")[1].split()[0]) > 0
        return res.stdout

    warning = "warning: the weights it started from read your validation pieces better"
    assert warning in cli("worse", "--max-steps", 4, "--lr", 50)
    # from a start one step into training, a few more steps beat it: nothing to warn of
    early = train_tiny(dataset, tmp_path / "early", max_steps=1, vocab="full", init="scratch")
    assert warning not in cli("better", "--max-steps", 8, "--init", early.last)
