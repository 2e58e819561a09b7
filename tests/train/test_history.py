"""A run's history (OUT/logs/metrics.csv and OUT/tb) across kills and resumes: every logged
row once, in step order, and one TensorBoard curve."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from musicgen.train.history import History, read_rows
from tests.helpers import assert_ok, run_cli

ROOT = Path(__file__).resolve().parents[2]

# `musicgen train ARGS...` in a fresh interpreter that SIGKILLs itself before training step AT
KILLED_CLI = """
import os, signal, sys
from musicgen.models.lm import MusicLM

at = int(sys.argv[1])
real = MusicLM.training_step

def training_step(self, *args, **kwargs):
    if self.global_step == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args, **kwargs)

MusicLM.training_step = training_step
from musicgen.cli import cli
cli.main(sys.argv[2:], prog_name="musicgen")
"""

VAL_EVERY, STEPS = 4, 40
HISTORY_CLI = [
    "--model", "gru", "--hidden", 16, "--layers", 1, "--seq-len", 32, "--batch-size", 4,
    "--epochs", 0, "--max-steps", STEPS, "--val-every", VAL_EVERY, "--log-every", 1,
    "--warmup", 2, "--patience", 0, "--no-progress",
]  # fmt: skip


TINY_CLI = [
    "--model", "gru", "--hidden", 16, "--layers", 1, "--seq-len", 32, "--batch-size", 4,
    "--epochs", 0, "--max-steps", 4, "--val-every", 2, "--warmup", 1, "--patience", 0,
    "--log-every", 1, "--no-progress",
]  # fmt: skip


def killed_at(at: int, *args) -> subprocess.CompletedProcess:
    # warnings are left on (no PYTHONWARNINGS): Lightning's resumability warning must not come
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("MUSICGEN_DEBUG", None)
    env.pop("PYTHONWARNINGS", None)
    cmd = [sys.executable, "-c", KILLED_CLI, str(at), "train", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def steps_of(rows: list[dict], column: str) -> list[int]:
    return [int(r["step"]) for r in rows if r.get(column) not in (None, "")]


def test_history_survives_two_sigkills_and_resumes(dataset, tmp_path):
    """Killed at a random step, resumed, killed again, resumed to the end: metrics.csv holds
    one row per step and one per validation, in step order; TensorBoard shows the same steps
    once; no warning about resumability is printed."""
    out = tmp_path / "run"
    args = ["--data", dataset, "--out", out, *HISTORY_CLI]
    rng = random.Random()
    first = rng.randrange(VAL_EVERY + 2, STEPS // 2)
    back = first // VAL_EVERY * VAL_EVERY  # the last validation, with its last.ckpt
    second = rng.randrange(first + 2, STEPS - 2)
    note = f"killed before steps {first} and {second}"

    proc = killed_at(first, *args)
    assert proc.returncode == -signal.SIGKILL, f"{note}\n{proc.stderr[-3000:]}"
    before = csv_rows(out / "logs" / "metrics.csv")
    assert max(steps_of(before, "train_loss")) == first - 1  # every row up to the kill
    proc = killed_at(second, *args, "--resume")
    assert proc.returncode == -signal.SIGKILL, f"{note}\n{proc.stderr[-3000:]}"
    assert f"resuming {out / 'last.ckpt'} at step {back}\n" in proc.stdout, proc.stdout
    assert "resumable" not in proc.stderr, proc.stderr
    again = second // VAL_EVERY * VAL_EVERY
    proc = killed_at(-1, *args, "--resume")
    assert proc.returncode == 0, f"{note}\n{proc.stderr[-3000:]}"
    assert f"resuming {out / 'last.ckpt'} at step {again}\n" in proc.stdout, proc.stdout
    assert "resumable" not in proc.stderr, proc.stderr

    rows = csv_rows(out / "logs" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == sorted(int(r["step"]) for r in rows), note
    assert steps_of(rows, "train_loss") == list(range(STEPS)), note
    validations = list(range(VAL_EVERY - 1, STEPS, VAL_EVERY))
    assert steps_of(rows, "val_loss") == validations, note
    assert all(r["train_loss"] or r["val_loss"] for r in rows), note  # no stray rows
    # the rows up to the first checkpoint are the first part's, as it wrote them
    kept = [r for r in before if int(r["step"]) < back]
    assert [{k: r[k] for k in kept[0]} for r in rows[: len(kept)]] == kept, note

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0})
    board.Reload()
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 3  # one per part
    assert [e.step for e in board.Scalars("train_loss")] == list(range(STEPS)), note
    assert [e.step for e in board.Scalars("val_loss")] == validations, note
    # the curve is the CSV's: the rows of the part that was repeated are the later part's
    tb_loss = [e.value for e in board.Scalars("train_loss")]
    csv_loss = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    assert tb_loss == pytest.approx(csv_loss, rel=1e-6), note


def test_a_new_run_in_an_old_folder_starts_its_own_history(dataset, tmp_path):
    out = tmp_path / "run"
    for _ in range(2):  # the second run, without --resume, replaces the first
        result = run_cli("train", "--data", dataset, "--out", out, *TINY_CLI)
        assert_ok(result)
        assert "resuming" not in result.stdout
    assert steps_of(csv_rows(out / "logs" / "metrics.csv"), "train_loss") == [0, 1, 2, 3]


HEADER = "epoch,lr,step,train_loss\r\n"


def test_rows_from_the_resume_step_on_and_a_line_cut_short_are_left_out(tmp_path):
    path = tmp_path / "metrics.csv"
    rows = "".join(f"0,0.1,{s},{3 - s / 10}\r\n" for s in range(6))
    path.write_text(HEADER + rows + "0,0.1,6,2.", encoding="utf-8", newline="")  # killed mid-row
    assert [r["step"] for r in read_rows(path, 100)] == ["0", "1", "2", "3", "4", "5"]
    assert [r["step"] for r in read_rows(path, 4)] == ["0", "1", "2", "3"]
    path.write_text(HEADER + "0,0.1,1\r\n0,0.1,2,2.5\r\n", encoding="utf-8", newline="")
    assert [r["step"] for r in read_rows(path, 100)] == ["2"]  # a row short of fields is not one


def test_a_resumed_writer_keeps_the_rows_before_it_and_adds_its_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    rows = "".join(f"0,0.1,{s},{3 - s / 10}\r\n" for s in range(8))
    path.write_text(HEADER + rows, encoding="utf-8", newline="")
    history = History(str(tmp_path), resume_step=5)
    assert [r["step"] for r in csv_rows(path)] == ["0", "1", "2", "3", "4"]  # cut at once
    history.log_metrics({"train_loss": 2.0, "lr": 0.1, "epoch": 0}, step=5)
    history.save()  # appended
    history.log_metrics({"val_loss": 1.5, "epoch": 0}, step=5)
    history.save()  # a new column: the file is rewritten whole
    got = csv_rows(path)
    assert [(r["step"], r["train_loss"], r["val_loss"]) for r in got[-3:]] == [
        ("4", "2.6", ""),
        ("5", "2.0", ""),
        ("5", "", "1.5"),
    ]
    assert not list(tmp_path.glob(".metrics.csv.*.tmp"))
    History(str(tmp_path), resume_step=None)  # a new run: its history starts empty
    assert not path.exists()


def test_a_run_stopped_early_and_resumed_logs_each_step_once(dataset, tmp_path, monkeypatch):
    """A run asked to stop (as --max-time or early stopping do) validates once more and saves
    after it; resumed from there, its rows still carry the steps that produced them."""
    from musicgen.config import ModelConfig, TrainConfig
    from musicgen.models.lm import MusicLM
    from musicgen.train import train
    from tests.helpers import MODEL_KW, TRAIN_KW

    real = MusicLM.on_train_batch_end

    def stop_at_6(self, outputs, batch, batch_idx):
        if self.global_step == 6:
            self.trainer.should_stop = True  # what the Timer does when --max-time is up
        return real(self, outputs, batch, batch_idx)

    cfg = {**TRAIN_KW, "max_steps": 10, "val_every": 4, "log_every": 1}
    out = tmp_path / "run"
    model = ModelConfig(name="gru", **MODEL_KW)
    with monkeypatch.context() as m:
        m.setattr(MusicLM, "on_train_batch_end", stop_at_6)
        assert train(dataset, out, model, TrainConfig(**cfg), progress_bar=False).steps == 6
    assert (
        train(dataset, out, model, TrainConfig(**cfg), resume=True, progress_bar=False).steps == 10
    )
    rows = csv_rows(out / "logs" / "metrics.csv")
    assert steps_of(rows, "train_loss") == list(range(10))
    assert steps_of(rows, "val_loss") == [3, 5, 7]  # as scheduled (after 4 and 8), and at the stop
