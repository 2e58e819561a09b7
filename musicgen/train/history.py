"""A run's history across interruptions: OUT/logs/metrics.csv and the TensorBoard curves in
OUT/tb hold every logged row once, in step order, however often the run was resumed.

A row's step is the batch that produced it (Lightning's `_batches_that_stepped`): a run
resumed from a checkpoint at global step G trains batch G next, so the rows it owns are
those from step G on, and the rows of the interrupted run from step G on (logged after its
last complete checkpoint) are the ones it logs again.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from musicgen.fsutil import atomic_write, remove_stale_temps


def loggers(out: Path, resume_step: int | None) -> list:
    """metrics.csv and TensorBoard for a run in `out`; `resume_step`: the global step of the
    checkpoint a resumed run starts from (None: a new run, whose history starts empty)."""
    # TensorBoard keeps every event file of a folder; a resumed run writes a new one whose
    # first event (SessionLog START at purge_step) hides the later steps of the earlier files,
    # so the curve goes on from the checkpoint once. A new run in an old folder starts at 0.
    tb = TensorBoardLogger(
        out, name="tb", version="", default_hp_metric=False, purge_step=resume_step or 0
    )
    return [HistoryCSV(out, resume_step), tb]


class LogStepIsGlobalStep(Callback):
    """Rows are logged at Lightning's `_batches_that_stepped`, which in a run never stopped
    equals the global step when a batch starts (one optimizer step a batch). A run asked to
    stop (--max-time, early stopping) validates once more and SaveLast writes last.ckpt after
    that validation; Lightning, restoring it, leaves the count one behind (it adds the missing
    one only where a validation was due by schedule), and the resumed run would log each row
    a step early: one step twice in the history and its last one lost. Set it back."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        loop = trainer.fit_loop.epoch_loop
        if getattr(loop, "_batches_that_stepped", None) not in (None, trainer.global_step):
            loop._batches_that_stepped = trainer.global_step


class HistoryCSV(CSVLogger):
    """Lightning's CSVLogger deletes metrics.csv when a run starts and writes its rows every
    100 steps; this one keeps the rows a resumed run does not log again and writes each row
    as it is logged, so a run killed at any moment loses none of the rows before it."""

    def __init__(self, out: Path, resume_step: int | None):
        super().__init__(out, name="logs", version="", flush_logs_every_n_steps=1)
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> History:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = History(self.log_dir, self.resume_step)
        return self._experiment


class History(ExperimentWriter):
    """metrics.csv: the rows kept from before the resume, then this run's; a row appended as
    it comes, the whole file replaced atomically when a new column (a first validation)
    changes the header."""

    def __init__(self, log_dir: str, resume_step: int | None):
        self.resume_step = resume_step
        super().__init__(log_dir)  # calls _check_log_dir_exists

    def _check_log_dir_exists(self) -> None:
        # Lightning's deletes the file; here it is read, cut at the resume step and rewritten
        path = Path(self.metrics_file_path)
        os.makedirs(path.parent, exist_ok=True)
        remove_stale_temps(path.parent, [path.name])  # a rewrite killed half way
        kept = read_rows(path, self.resume_step) if self.resume_step is not None else []
        self.rows: list[dict] = kept
        self.metrics_keys = sorted({k for row in kept for k in row})
        if kept:
            self._rewrite()
        else:
            path.unlink(missing_ok=True)

    def save(self) -> None:
        if self.hparams:
            save_hparams_to_yaml(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), self.hparams)
        if not self.metrics:
            return
        new_keys = self._record_new_keys()
        self.rows += self.metrics
        path = Path(self.metrics_file_path)
        if new_keys or not path.exists():
            self._rewrite()
        else:
            with open(path, "a", newline="", encoding="utf-8") as fh:
                csv.DictWriter(fh, fieldnames=self.metrics_keys).writerows(self.metrics)
        self.metrics = []

    def _rewrite(self) -> None:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(self.rows)
        data = text.getvalue().encode("utf-8")
        atomic_write(self.metrics_file_path, lambda fh: fh.write(data))


def read_rows(path: Path, before: int) -> list[dict]:
    """The complete rows of `path` whose step is below `before`, as written (text). A line a
    kill cut short has no line end and is left out: it came after the last checkpoint, whose
    write followed every earlier row's."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    rows = []
    for row in csv.DictReader(lines):
        if None in row or None in row.values():  # too many or too few fields
            continue
        try:
            step = int(float(row.get("step", "")))
        except ValueError:
            continue
        if step < before:
            rows.append(row)
    return rows
