"""Checkpoint safety (pickled code, foreign and damaged files) and safetensors export."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from musicgen.checkpoint import export_model, load_model
from musicgen.config import ModelConfig, TrainConfig
from musicgen.data.dataset import TokenDataset
from musicgen.errors import CheckpointError
from musicgen.train import train
from tests.helpers import (
    MODEL_KW,
    MODEL_NAMES,
    SEQ_LEN,
    TRAIN_KW,
    assert_cli_error,
    assert_ok,
    run_cli,
)


class Payload:
    """Unpickling this runs a shell command: what a hostile checkpoint would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def poisoned(path: Path, marker: Path, real: Path | None = None) -> Path:
    """A checkpoint that looks like ours (state_dict, musicgen meta) plus a code payload."""
    ckpt = torch.load(real, weights_only=True) if real else {"state_dict": {}, "musicgen": {}}
    ckpt["musicgen"]["innocent"] = Payload(marker)
    torch.save(ckpt, path)
    return path


@pytest.fixture
def evil(tmp_path, trained) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    return poisoned(tmp_path / "evil.ckpt", marker, trained["gru"].best), marker


def test_pickled_code_is_refused_and_never_runs(evil):
    path, marker = evil
    with pytest.raises(CheckpointError, match="pickled code") as err:
        load_model(path)
    assert "posix.system" in str(err.value) or "os.system" in str(err.value)
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("command", ["generate", "evaluate"])
def test_cli_refuses_pickled_code_in_one_line(evil, tmp_path, command):
    path, marker = evil
    extra = ["--out", tmp_path / "song.mid", "--tokens", 5] if command == "generate" else []
    line = assert_cli_error(run_cli(command, path, *extra), "pickled code")
    assert str(path) in line
    assert not marker.exists()
    assert not (tmp_path / "song.mid").exists()


def test_resume_refuses_a_poisoned_last_checkpoint_before_lightning(
    dataset, trained, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "PWNED"
    poisoned(run / "last.ckpt", marker, trained["gru"].last)

    def no_lightning(*args, **kwargs):
        raise AssertionError("Lightning was reached with a poisoned checkpoint")

    monkeypatch.setattr("musicgen.train.run.L.Trainer", no_lightning)
    with pytest.raises(CheckpointError, match="pickled code"):
        train(
            dataset,
            run,
            ModelConfig(name="gru", **MODEL_KW),
            TrainConfig(**TRAIN_KW),
            resume=True,
            logs=False,
        )
    result = run_cli(
        "train", "--data", dataset, "--out", run, "--model", "gru", "--resume", "--no-progress"
    )
    assert_cli_error(result, "pickled code")
    assert not marker.exists()


def test_foreign_lightning_checkpoint_is_refused(trained, tmp_path):
    ckpt = torch.load(trained["gru"].best, weights_only=True)
    del ckpt["musicgen"]
    foreign = tmp_path / "foreign.ckpt"
    torch.save(ckpt, foreign)
    with pytest.raises(CheckpointError, match="not a musicgen checkpoint"):
        load_model(foreign)
    assert_cli_error(
        run_cli("generate", foreign, "--out", tmp_path / "s.mid"), "not a musicgen checkpoint"
    )
    assert_cli_error(run_cli("evaluate", foreign), "not a musicgen checkpoint")
    with pytest.raises(CheckpointError, match="not a musicgen checkpoint"):
        export_model(foreign, tmp_path / "export")
    tensor_only = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(CheckpointError, match="not a musicgen checkpoint"):
        load_model(tensor_only)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "random-bytes", "folder"])
def test_damaged_files_are_refused(trained, tmp_path, damage):
    path = tmp_path / "damaged.ckpt"
    data = trained["gru"].best.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_text("this is not a checkpoint\n" * 20)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random-bytes":
        path.write_bytes(bytes(range(256)) * 8)
    else:
        path = tmp_path / "folder.ckpt"
        path.mkdir()
    with pytest.raises(CheckpointError):
        load_model(path)
    assert_cli_error(run_cli("evaluate", path))
    assert_cli_error(run_cli("generate", path, "--out", tmp_path / "s.mid"))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_model(tmp_path / "nope.ckpt")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_export_to_safetensors_gives_the_same_logits(trained, dataset, tmp_path, name):
    best = trained[name].best
    folder = export_model(best, tmp_path / "export")
    assert (folder / "model.safetensors").is_file() and (folder / "musicgen.json").is_file()
    meta = json.loads((folder / "musicgen.json").read_text())
    assert (
        meta["model"]["name"] == name
        and meta["vocab"]["tokens"]
        == TokenDataset.open(dataset).vocab.with_moved().with_controls().tokens
    )
    assert meta["aliases"] == {"head.weight": "emb.weight"}  # tied weights are stored once
    assert "head.weight" not in load_file(folder / "model.safetensors")

    x = torch.as_tensor(TokenDataset.open(dataset).split_tokens("val")[:SEQ_LEN].astype("int64"))[
        None
    ]
    original = load_model(best)
    with torch.no_grad():
        want, _ = original.core(x)
        for source in (folder, folder / "model.safetensors"):
            exported = load_model(source)
            got, _ = exported.core(x)
            assert torch.equal(got, want)
            assert exported.vocab == original.vocab and exported.model_cfg == original.model_cfg


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_float16_export_halves_the_file_and_keeps_the_logits_close(
    trained, dataset, tmp_path, name
):
    best = trained[name].best
    full = export_model(best, tmp_path / "full")
    half = export_model(best, tmp_path / "half", float16=True)
    assert {t.dtype for t in load_file(half / "model.safetensors").values()} == {torch.float16}
    ratio = (half / "model.safetensors").stat().st_size / (
        full / "model.safetensors"
    ).stat().st_size
    assert 0.45 < ratio < 0.55
    meta = json.loads((half / "musicgen.json").read_text())
    assert meta["stored_as"] == "float16"
    # the hash the float32 file had, so a run begun from it resumes from this one
    assert (
        meta["float32_sha256"]
        == hashlib.sha256((full / "model.safetensors").read_bytes()).hexdigest()
    )
    x = torch.as_tensor(TokenDataset.open(dataset).split_tokens("val")[:SEQ_LEN].astype("int64"))[
        None
    ]
    loaded = load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.core.parameters())  # read back as float32
    with torch.no_grad():
        want = torch.log_softmax(load_model(full).core(x)[0], -1)
        got = torch.log_softmax(loaded.core(x)[0], -1)
    assert not torch.equal(got, want)  # the weights were rounded...
    assert (got.exp() - want.exp()).abs().max() < 1e-2  # ...and the probabilities barely moved


def test_exported_model_generates_the_same_song(trained, tmp_path):
    best = trained["gru"].best
    folder = export_model(best, tmp_path / "export")
    args = ["--tokens", 40, "--seed", 5]
    assert_ok(run_cli("generate", best, "--out", tmp_path / "a.mid", *args))
    assert_ok(run_cli("generate", folder, "--out", tmp_path / "b.mid", *args))
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()


def test_damaged_export_is_refused(trained, tmp_path):
    folder = export_model(trained["gru"].best, tmp_path / "export")
    (folder / "musicgen.json").write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError):
        load_model(folder)
    (folder / "musicgen.json").write_text("{not json")
    with pytest.raises(CheckpointError):
        load_model(folder)
    (folder / "musicgen.json").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(folder)


def test_a_checkpoint_of_the_old_representation_is_refused_in_one_line(trained, tmp_path):
    import torch

    ckpt = torch.load(trained["gru"].best, map_location="cpu", weights_only=True)
    ckpt["musicgen"]["vocab"]["version"] = 1
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    line = assert_cli_error(
        run_cli("generate", old, "--out", tmp_path / "s.mid"), "older musicgen (representation v1)"
    )
    assert "ingest the music again and retrain" in line
    assert not (tmp_path / "s.mid").exists()
