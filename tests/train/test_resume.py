"""Resuming a run: the windows it draws, its last checkpoint, its history (metrics.csv and
TensorBoard) and the settings a resume may change."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from musicgen.config import ModelConfig, TrainConfig
from musicgen.data.datamodule import TrainPieces, TrainWindows
from musicgen.errors import MusicgenError
from musicgen.models.lm import MusicLM
from musicgen.train import train
from tests.helpers import MODEL_KW, TRAIN_KW, assert_cli_error, assert_ok, run_cli

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


def stop_asked_at(monkeypatch, step: int) -> None:
    """The run is asked to stop after step `step`, as the Timer asks when --max-time is up:
    Lightning validates once more, and last.ckpt is written after that validation."""
    real = MusicLM.on_train_batch_end

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.global_step == step:
            self.trainer.should_stop = True
        return real(self, outputs, batch, batch_idx)

    monkeypatch.setattr(MusicLM, "on_train_batch_end", on_train_batch_end)


def run(dataset, out: Path, name: str = "gru", resume: bool = False, **overrides):
    # no controls: the pieces' lengths, and with them the epochs' (EPOCH), would vary by epoch
    cfg = TrainConfig(**{**TRAIN_KW, "val_every": 5, "controls": 0.0, **overrides})
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
    """Stopped by --max-steps mid-epoch, killed between validations, stopped by --max-steps
    on an epoch's last batch, asked to stop on the next epoch's last batch (as --max-time
    does), resumed each time: every part of the run draws the items an unbroken run draws
    from the step it resumes at; and Lightning knows the loader is resumable, so it does
    not warn."""
    drawn = spy_windows(monkeypatch)
    per = 1 if name == "gru" else TRAIN_KW["batch_size"]  # a batch of pieces, or 8 windows
    epoch, total = EPOCH[name], 2 * EPOCH[name] + 4
    run(dataset, tmp_path / "whole", name, max_steps=total)
    whole = by_step(drawn, per)
    assert len(whole) == total and whole[2 * epoch][0] == (2, 0)  # into the third epoch

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
        with monkeypatch.context() as m:
            stop_asked_at(m, 2 * epoch)
            assert part(epoch, max_steps=total) == whole[epoch : 2 * epoch]
        assert part(2 * epoch, max_steps=total) == whole[2 * epoch :]
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


# --- settings on --resume: refused in one line, or applied and named in one ---------------------

TINY_CLI = [
    "--model", "gru", "--hidden", 16, "--layers", 1, "--seq-len", 32, "--batch-size", 4,
    "--epochs", 0, "--max-steps", 4, "--val-every", 2, "--warmup", 1, "--patience", 0,
    "--lr", 0.005, "--log-every", 1, "--no-progress",
]  # fmt: skip


@pytest.fixture
def tiny_run(dataset, tmp_path) -> Path:
    out = tmp_path / "run"
    assert_ok(run_cli("train", "--data", dataset, "--out", out, *TINY_CLI))
    return out


def resume(dataset, out: Path, *args):
    return run_cli("train", "--data", dataset, "--out", out, "--resume", "--no-progress", *args)


@pytest.mark.parametrize(
    "args, asked, trained",
    [
        (["--hidden", 64], "--hidden 64", "--hidden 16"),
        (["--layers", 2, "--seq-len", 64], "--layers 2, --seq-len 64", "--layers 1, --seq-len 32"),
        (["--lr", 0.01], "--lr 0.01", "--lr 0.005"),
        (["--transpose", 0], "--transpose 0", "--transpose 5"),
        (["--no-carry-state"], "--no-carry-state", "--carry-state"),
    ],
)
def test_resume_refuses_a_setting_that_cannot_change_in_one_line(
    dataset, tiny_run, args, asked, trained
):
    before = {p.name: p.read_bytes() for p in tiny_run.glob("*.ckpt")}
    line = assert_cli_error(resume(dataset, tiny_run, *args))
    assert line.startswith(f"error: cannot resume {tiny_run / 'last.ckpt'} with {asked}: ")
    assert f"the run was trained with {trained}, " in line
    assert "a resume may change --epochs, --max-steps, --max-time, --val-every" in line
    assert {p.name: p.read_bytes() for p in tiny_run.glob("*.ckpt")} == before


def test_resume_with_the_same_settings_given_or_none_goes_on_silently(dataset, tiny_run):
    """What the user leaves out comes from the checkpoint: a resume with only --data and
    --out goes on with --lr 0.005, 16 wide, context 32 (none of them the defaults)."""
    result = resume(dataset, tiny_run, "--max-steps", 6)
    assert_ok(result)
    assert f"resuming {tiny_run / 'last.ckpt'} at step 4 with --max-steps 6 (was 4); " in (
        result.stdout
    )
    meta = load(tiny_run / "last.ckpt")["musicgen"]
    assert (meta["train"]["lr"], meta["train"]["seq_len"], meta["model"]["d_model"]) == (
        0.005,
        32,
        16,
    )
    same = resume(dataset, tiny_run, *TINY_CLI, "--max-steps", 6)  # every flag as before
    assert_ok(same)
    assert [ln for ln in same.stdout.splitlines() if ln.startswith("resuming")] == [
        f"resuming {tiny_run / 'last.ckpt'} at step 6"
    ]


def test_resume_with_a_new_time_budget_says_so_in_one_line_and_uses_it(dataset, tiny_run):
    result = resume(dataset, tiny_run, "--max-time", "1h", "--max-steps", 6, "--val-every", 3)
    assert_ok(result)
    said = [ln for ln in result.stdout.splitlines() if ln.startswith("resuming")]
    assert said == [
        f"resuming {tiny_run / 'last.ckpt'} at step 4 with --max-steps 6 (was 4), --max-time 60 "
        "(was no limit), --val-every 3 (was 2); the learning-rate schedule now ends with the new "
        "limit"
    ]
    ckpt = load(tiny_run / "last.ckpt")
    assert ckpt["global_step"] == 6
    assert (
        ckpt["musicgen"]["train"]["max_time"] == 60 and ckpt["musicgen"]["train"]["val_every"] == 3
    )
    timer = [state for key, state in ckpt["callbacks"].items() if key.startswith("Timer")]
    assert timer and timer[0]["time_elapsed"]["train"] > 0  # the budget ran: a Timer counted
    again = resume(dataset, tiny_run, "--max-time", 90, "--max-steps", 8)
    assert_ok(again)
    assert re.search(r"--max-time 90 \(was 60; \d+\.\d min of it trained\)", again.stdout)
    counted = [
        s for k, s in load(tiny_run / "last.ckpt")["callbacks"].items() if k.startswith("Timer")
    ]
    # Lightning restored the count: the budget is the whole run's, not this part's
    assert counted[0]["time_elapsed"]["train"] > timer[0]["time_elapsed"]["train"]


def edited(run: Path, out: Path, **meta) -> Path:
    """A copy of `run` whose last.ckpt says `meta` (our own file: plain load is fine)."""
    shutil.copytree(run, out)
    ckpt = torch.load(out / "last.ckpt", weights_only=False)
    ckpt["musicgen"].update(meta)
    torch.save(ckpt, out / "last.ckpt")
    return out


def test_every_checkpoint_names_the_base_it_started_from_and_a_resume_keeps_it(
    dataset, tiny_run, tmp_path
):
    """`init` in every checkpoint's settings ({"kind": "scratch"} from scratch); a resumed
    fine-tune keeps the record of its base, and asking it to start elsewhere is refused."""
    assert load(tiny_run / "last.ckpt")["musicgen"]["init"] == {"kind": "scratch"}
    assert load(tiny_run / "best.ckpt")["musicgen"]["init"] == {"kind": "scratch"}
    base = {"kind": "base", "path": "checkpoints/base/gru", "sha256": "0" * 64}
    out = edited(tiny_run, tmp_path / "tuned", init=base)

    def go_on(**kw):
        return train(
            dataset,
            out,
            ModelConfig(name="gru"),
            TrainConfig(max_steps=6, **kw),
            resume=True,
            given={"max_steps", *kw},
            progress_bar=False,
            logs=False,
        )

    assert go_on().steps == 6
    assert load(out / "last.ckpt")["musicgen"]["init"] == base
    assert load(out / "best.ckpt")["musicgen"]["init"] == base
    with pytest.raises(MusicgenError, match="cannot resume .* with --init other"):
        go_on(init="other")


def test_resume_on_another_number_of_processes_is_refused(dataset, tiny_run, tmp_path):
    out = edited(tiny_run, tmp_path / "ddp", world_size=2)
    line = assert_cli_error(resume(dataset, out))
    assert "was trained by 2 processes (--devices x --num-nodes) and this run has 1" in line
