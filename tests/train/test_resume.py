"""Resuming a run: the windows it draws, its last checkpoint, its history (metrics.csv and
TensorBoard) and the settings a resume may change."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from musicgen.config import ModelConfig, TrainConfig
from musicgen.data.datamodule import TrainPieces, TrainWindows
from musicgen.models.lm import MusicLM
from musicgen.train import train
from tests.helpers import MODEL_KW, TRAIN_KW

# batches in one epoch of the fixture dataset at TRAIN_KW's batch of 8: the GRU walks whole
# pieces (TrainPieces), the transformer reads random windows (TrainWindows)
EPOCH = {"gru": 17, "transformer": 14}


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def spy_windows(monkeypatch) -> list[tuple[int, int]]:
    """(epoch, item) of every training item drawn, in order."""
    drawn: list[tuple[int, int]] = []
    rows, getitem = TrainPieces.rows, TrainWindows.__getitem__

    def spy_rows(self, k, lanes):
        drawn.append((self.epoch, k))
        return rows(self, k, lanes)

    def spy_getitem(self, i):
        drawn.append((self.epoch, i))
        return getitem(self, i)

    monkeypatch.setattr(TrainPieces, "rows", spy_rows)
    monkeypatch.setattr(TrainWindows, "__getitem__", spy_getitem)
    return drawn


def crash_at(monkeypatch, step: int) -> None:
    """The process dies (as far as the run can tell) before training step `step`."""
    real = MusicLM.training_step

    def training_step(self, *args, **kwargs):
        if self.global_step == step:
            raise RuntimeError("crash")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MusicLM, "training_step", training_step)


def run(dataset, out: Path, name: str = "gru", resume: bool = False, **overrides):
    cfg = TrainConfig(**{**TRAIN_KW, "val_every": 5, **overrides})
    return train(
        dataset,
        out,
        ModelConfig(name=name, **MODEL_KW),
        cfg,
        resume=resume,
        progress_bar=False,
        logs=False,
    )


def by_step(drawn: list[tuple[int, int]], per: int) -> list[list[tuple[int, int]]]:
    """Items grouped into the steps that drew them: `per` at a time, an epoch's last step
    taking what is left."""
    steps: list[list[tuple[int, int]]] = []
    for item in drawn:
        if not steps or len(steps[-1]) == per or steps[-1][0][0] != item[0]:
            steps.append([])
        steps[-1].append(item)
    return steps


@pytest.mark.parametrize("name", ["gru", "transformer"])
def test_a_resumed_run_draws_the_windows_an_unbroken_run_draws(
    dataset, tmp_path, monkeypatch, name
):
    """Stopped by --max-steps mid-epoch, killed between validations, stopped on an epoch's
    last batch, resumed each time: every part of the run draws the items an unbroken run
    draws from the step it resumes at; and Lightning knows the loader is resumable, so it
    does not warn."""
    drawn = spy_windows(monkeypatch)
    per = 1 if name == "gru" else TRAIN_KW["batch_size"]  # a batch of pieces, or 8 windows
    epoch, total = EPOCH[name], EPOCH[name] + 8
    run(dataset, tmp_path / "whole", name, max_steps=total)
    whole = by_step(drawn, per)
    assert len(whole) == total and whole[epoch][0] == (1, 0)  # into the second epoch

    def part(resume_at: int, **kw) -> list:
        drawn.clear()
        run(dataset, tmp_path / "broken", name, resume=resume_at > 0, **kw)
        return by_step(drawn, per)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert part(0, max_steps=3) == whole[:3]
        with monkeypatch.context() as m, pytest.raises(RuntimeError, match="crash"):
            crash_at(m, 13)
            part(3, max_steps=total)
        # Lightning fetches a batch ahead: the crashed part drew steps 3-13 and maybe 14
        assert by_step(drawn, per)[:11] == whole[3:14]
        assert load(tmp_path / "broken" / "last.ckpt")["global_step"] == 10  # its validation
        assert part(10, max_steps=epoch) == whole[10:epoch]
        assert part(epoch, max_steps=total) == whole[epoch:]
    assert not [w for w in caught if "resum" in str(w.message)], [str(w.message) for w in caught]
    assert load(tmp_path / "broken" / "last.ckpt")["global_step"] == total


def test_last_checkpoint_follows_every_validation_not_only_the_best(dataset, tmp_path, monkeypatch):
    """A killed run resumes from its latest validation, even when that one did not improve
    on the best (Lightning's save_last writes last.ckpt only with a new best.ckpt)."""
    first = {"seen": False}

    def only_the_first_is_best(self, trainer, current):
        best, first["seen"] = not first["seen"], True
        return best

    monkeypatch.setattr(ModelCheckpoint, "check_monitor_top_k", only_the_first_is_best)
    crash_at(monkeypatch, 17)
    with pytest.raises(RuntimeError, match="crash"):
        run(dataset, tmp_path / "run", max_steps=40)
    assert load(tmp_path / "run" / "best.ckpt")["global_step"] == 5
    assert load(tmp_path / "run" / "last.ckpt")["global_step"] == 15
